"""pan_impute: two-level joint-model imputation of continuous targets (mitml's panImpute)."""
from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from .._model import GroupData, prepare_model
from .._random import spawn_seeds
from ..chains import SEGMENT, check_run, run_tasks
from ..exceptions import raise_for_status
from ..result import ImputationResult
from ._gibbs import cluster_crossproducts
from ._layout import row_blocks
from ._pan_kernel import ChainStore, PanData, PanParams, pan_iterate, pan_work
from ._prior import check_prior

__all__ = ["pan_impute"]


def _default_prior(r: int, q: int) -> dict:
    return {"a": float(r), "Binv": np.eye(r), "c": float(r * q), "Dinv": np.eye(r * q)}


def _check_prior(prior: Mapping | None, r: int, q: int) -> dict:
    d = r * q
    return check_prior(prior, _default_prior(r, q), {"Binv": r, "Dinv": d},
                       {"a": (r - 1, "degrees of freedom"), "c": (d - 1, "degrees of freedom")})


def _run_chain(tick, *, gd: GroupData, seed: int, prior: dict, n_burn: int, n_iter: int, m_c: int,
               diag_only: bool, intercept: bool):
    """One chain of one group: burn-in, then m_c imputations n_iter iterations apart."""
    X, Z, clus = gd.X, gd.Z, gd.clus
    N, p = X.shape
    q = Z.shape[1]
    r = gd.Y.shape[1]
    d = q * r
    J = len(gd.cluster_labels)
    miss = np.isnan(gd.Y)
    obs_mean = np.array([np.nanmean(gd.Y[:, t]) for t in range(r)])
    # with an intercept the targets are centred internally (better conditioned sufficient statistics)
    shift = obs_mean if intercept else np.zeros(r)
    with np.errstate(invalid="ignore"):
        Y = gd.Y - shift
    Y[miss] = np.broadcast_to(obs_mean - shift, Y.shape)[miss]
    XtX = np.ascontiguousarray(X.T @ X)
    ZtZ, ZtX = cluster_crossproducts(X, Z, clus, J)
    # complete rows -> constant cross-products; incomplete rows -> transposed blocks by pattern
    lay = row_blocks(X, Z, Y, clus, J, miss)
    rows, Yi = lay["rows"], lay["Yi"]
    beta = np.linalg.solve(XtX, X.T @ Y)
    res = Y - X @ beta
    Sigma = np.cov(res, rowvar=False).reshape(r, r) + 1e-8 * np.eye(r)
    dg = np.diag(Sigma).copy()
    dg[dg <= 0] = 1.0
    Sigma = np.diag(dg) if np.linalg.eigvalsh(Sigma).min() <= 0 else Sigma
    Psi = np.kron(np.diag(0.5 * dg), np.eye(q)) if q else np.zeros((0, 0))
    B = np.zeros((q, r, J))
    # missing cells (target-major, then local row) -> position in the incomplete block Yi
    pos_of_row = np.full(N, -1, dtype=np.int64)
    pos_of_row[rows] = np.arange(len(rows))
    cells = np.argwhere(miss.T)
    ct, cr = cells[:, 0], cells[:, 1]
    cpos = pos_of_row[cr]
    shapes = dict(beta=(p, r), psi=(d, 1 if diag_only else d), sigma=(r, 1 if diag_only else r))
    burn = {k: np.zeros(sh + (n_burn,)) for k, sh in shapes.items()}
    imp = {k: np.zeros(sh + (m_c * n_iter,)) for k, sh in shapes.items()}
    draws = np.zeros((len(ct), m_c))
    rng = np.random.default_rng(seed)
    dfs = np.concatenate([prior["c"] + J - np.arange(d), prior["a"] + N - np.arange(r)])
    data = PanData(XtX, ZtZ, ZtX, lay["XtYc"], lay["ZtYc"], lay["YtYc"], lay["Xi"], lay["Zi"],
                   lay["Ci"], lay["Seg"], lay["pat_start"], lay["pat_obs"], lay["pat_nobs"],
                   lay["pat_mis"], lay["pat_nmis"], np.ascontiguousarray(prior["Binv"]),
                   np.ascontiguousarray(prior["Dinv"]), dfs)
    par = PanParams(beta, Sigma, Psi, B, Yi, lay["XtYi"], lay["ZtYi"], lay["YtYi"])
    work = pan_work(data, r, len(ct))

    def advance(n, rec0, ch):
        store = ChainStore(ch["beta"], ch["psi"], ch["sigma"])
        done = 0
        while done < n:
            k = min(SEGMENT, n - done)
            code = pan_iterate(k, rec0 + done, rng, data, par, work, store)
            raise_for_status(code, sampler="pan_impute")
            done += k
            tick(k)

    advance(n_burn, 0, burn)
    for k in range(m_c):
        advance(n_iter, k * n_iter, imp)
        draws[:, k] = Yi[ct, cpos] + shift[ct]
    if intercept:  # the intercept row of beta back on the data's scale
        for ch in (burn, imp):
            ch["beta"][0] += shift[:, None]
    return burn, imp, draws, (ct, cr)


def pan_impute(data: Any, formula: str | None = None, *, type: Mapping[str, int] | None = None,
               m: int = 10, n_burn: int = 5000, n_iter: int = 100, group: str | None = None,
               prior: Mapping | None = None, seed=None, keep_chains: str = "full",
               chains: int = 1, n_threads: int | None = None, missing_code=None,
               progress: bool | None = None) -> ImputationResult:
    """Impute continuous level-1 targets under pan's two-level joint model (mitml's panImpute).

    Parameters
    ----------
    data : pandas or polars DataFrame; rows in any order; cluster ids of any type.
    formula : ``"y1 + y2 ~ 1 + x + (1 + x | cluster)"``: targets on the left, complete predictors on
        the right, one random-effects term (a random slope is not added as a fixed effect).
    type : alternative to ``formula``: mitml's codes ``{column: code}`` (1 target, 2 fixed,
        3 fixed + random, -1 group, -2 cluster, 0 unused).
    m : number of imputations. n_burn : burn-in iterations. n_iter : iterations between imputations.
    group : column whose levels are imputed completely separately (own chain and parameters).
    prior : dict with mitml's ``a``, ``Binv`` (Sigma ~ IW(a, Binv)), ``c``, ``Dinv`` (Psi ~ IW(c, Dinv));
        defaults a = r, Binv = I_r, c = q r, Dinv = I_{qr} as in mitml.
    seed : int, numpy Generator or None; the same seed gives identical imputations whatever
        ``n_threads`` is.
    keep_chains : ``"full"`` or ``"diagonal"`` (store only the variances of psi and sigma).
    chains : independent chains; each draws m / chains imputations after its own burn-in.
    n_threads : worker threads for (group, chain) tasks (default: up to the number of cores).
    missing_code : value(s) that mean missing in numeric columns (e.g. -99), besides NaN/null.
    progress : show a progress bar (default: only in an interactive terminal).

    Returns
    -------
    ImputationResult
        ``.complete()`` gives the MitmlList of m completed data sets. Imputed values are
        continuous: an integer target comes back as float (NumPy ints -> float64, pandas'
        nullable Int64 -> Float64, polars ints -> Float64); float dtypes are kept.

    Examples
    --------
    >>> import pymitml as pm
    >>> df = pm.datasets.studentratings()
    >>> imp = pm.pan_impute(df, "ReadDis + SES ~ 1 + CognAbility + (1|ID)", m=5, n_burn=500,
    ...                     n_iter=50, seed=1)
    >>> implist = imp.complete()
    """
    m, n_burn, n_iter, chains, per_chain = check_run(m, n_burn, n_iter, chains, keep_chains)
    spec, codebook = prepare_model(data, formula, type, group, missing_code, method="pan_impute")
    r, q = len(spec.targets), len(spec.z_names)
    prior_ = _check_prior(prior, r, q)
    intercept = bool(spec.x_names) and spec.x_names[0] == "(Intercept)"
    G = len(spec.groups)
    seeds = spawn_seeds(seed, G * chains)
    tasks = []
    for g, gd in enumerate(spec.groups):
        if len(gd.cluster_labels) < 2:
            raise ValueError(
                f"the cluster id '{spec.cluster}' has a single cluster"
                + ("" if gd.label is None else f" in group {spec.group}={gd.label!r}")
                + "; a two-level model needs at least two clusters."
            )
        for c in range(chains):
            tasks.append(partial(_run_chain, gd=gd, seed=seeds[g * chains + c], prior=prior_,
                                 n_burn=n_burn, n_iter=n_iter, m_c=per_chain[c],
                                 diag_only=keep_chains == "diagonal", intercept=intercept))
    total = G * chains * n_burn + G * m * n_iter
    out = run_tasks(tasks, total, n_threads=n_threads, progress=progress)
    # assemble chains: (rows, cols, iterations, groups, chains)
    blocks = ("beta", "psi", "sigma")
    ch_burn = {b: np.stack([np.stack([out[g * chains + c][0][b] for c in range(chains)], axis=-1)
                            for g in range(G)], axis=-2) for b in blocks}
    ch_imp = {b: np.stack([np.stack([out[g * chains + c][1][b] for c in range(chains)], axis=-1)
                           for g in range(G)], axis=-2) for b in blocks}
    # replacement matrix: cells ordered by target, then row; imputations chain by chain
    rows_all, cols_all, vals = [], [], []
    for g, gd in enumerate(spec.groups):
        ct, cr = out[g * chains][3]
        rows_all.append(gd.rows[cr])
        cols_all.append(np.asarray(spec.target_positions, dtype=np.int64)[ct])
        vals.append(np.concatenate([out[g * chains + c][2] for c in range(chains)], axis=1))
    rows_all = np.concatenate(rows_all) if rows_all else np.zeros(0, np.int64)
    cols_all = np.concatenate(cols_all) if cols_all else np.zeros(0, np.int64)
    vals = np.concatenate(vals, axis=0) if vals else np.zeros((0, m))
    tpos = {p: k for k, p in enumerate(spec.target_positions)}
    order = np.lexsort((rows_all, np.array([tpos[c] for c in cols_all], dtype=np.int64)))
    index = np.column_stack([rows_all[order], cols_all[order]]).astype(np.int64)
    replacement = np.ascontiguousarray(vals[order])
    qn = [f"{t}:{z}" for t in spec.targets for z in spec.z_names]
    param_names = {
        "beta": (spec.x_names, spec.targets),
        "psi": (qn, qn if keep_chains == "full" else ["var"]),
        "sigma": (spec.targets, spec.targets if keep_chains == "full" else ["var"]),
    }
    settings = dict(n_burn=n_burn, n_iter=n_iter, m=m, chains=chains, keep_chains=keep_chains,
                    group=spec.group, cluster=spec.cluster, seed=seed if isinstance(seed, int) else None)
    return ImputationResult(
        method="pan", formula=spec.formula, targets=spec.targets, prior=[prior_] * G,
        settings=settings,
        par_burnin={b: v[..., 0] for b, v in ch_burn.items()},
        par_imputation={b: v[..., 0] for b, v in ch_imp.items()},
        par_chains_burnin=ch_burn, par_chains_imputation=ch_imp,
        replacement=replacement, index=index, codebook=codebook, param_names=param_names,
        group_labels=[gd.label for gd in spec.groups],
        extra={"target_positions": spec.target_positions, "x_names": spec.x_names,
               "z_names": spec.z_names},
    )
