"""pan_impute: two-level joint-model imputation of continuous targets (mitml's panImpute)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from .._model import GroupData, prepare_model
from .._validation import check_run
from ..result import ImputationResult, RunSettings
from ._layout import design_crossproducts, row_blocks
from ._pan_kernel import ChainStore, PanData, PanParams, pan_iterate, pan_work
from ._prior import check_prior
from .driver import Chain, assemble_result, run_chains
from .pan3 import pan3_impute, random_terms

__all__ = ["pan_impute"]


def _default_prior(r: int, q: int) -> dict:
    return {"a": float(r), "Binv": np.eye(r), "c": float(r * q), "Dinv": np.eye(r * q)}


def _check_prior(prior: Mapping | None, r: int, q: int) -> dict:
    d = r * q
    return check_prior(
        prior,
        _default_prior(r, q),
        {"Binv": r, "Dinv": d},
        {"a": (r - 1, "degrees of freedom"), "c": (d - 1, "degrees of freedom")},
    )


def _make_chain(
    gd: GroupData, seed: int, *, prior: dict, diag_only: bool, intercept: bool
) -> Chain:
    """One chain of one group, as the driver runs it: start values, data layout, kernel state."""
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
    ZtZ, ZtX = design_crossproducts(X, Z, clus, J)
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
    rng = np.random.default_rng(seed)
    dfs = np.concatenate([prior["c"] + J - np.arange(d), prior["a"] + N - np.arange(r)])
    data = PanData(
        XtX,
        ZtZ,
        ZtX,
        lay["XtYc"],
        lay["ZtYc"],
        lay["YtYc"],
        lay["Xi"],
        lay["Zi"],
        lay["Ci"],
        lay["Seg"],
        lay["pat_start"],
        lay["pat_obs"],
        lay["pat_nobs"],
        lay["pat_mis"],
        lay["pat_nmis"],
        np.ascontiguousarray(prior["Binv"]),
        np.ascontiguousarray(prior["Dinv"]),
        dfs,
    )
    par = PanParams(beta, Sigma, Psi, B, Yi, lay["XtYi"], lay["ZtYi"], lay["YtYi"])
    work = pan_work(data, r, len(ct))

    def advance(n, rec0, store):
        code = pan_iterate(n, rec0, rng, data, par, work, ChainStore(**store))
        return code, int(work.failed_at[0])

    def finish(burn, imp):
        if intercept:  # the intercept row of beta back on the data's scale
            for ch in (burn, imp):
                ch["beta"][0] += shift[:, None]

    return Chain(
        advance=advance,
        shapes=dict(beta=(p, r), psi=(d, 1 if diag_only else d), sigma=(r, 1 if diag_only else r)),
        current=lambda: Yi[ct, cpos] + shift[ct],
        cells=(ct, cr),
        finish=finish,
    )


def pan_impute(
    data: Any,
    formula: str | None = None,
    *,
    type: Mapping[str, int] | None = None,
    m: int = 10,
    n_burn: int = 5000,
    n_iter: int = 100,
    group: str | None = None,
    prior: Mapping | None = None,
    seed=None,
    keep_chains: str = "full",
    chains: int = 1,
    n_threads: int | None = None,
    missing_code=None,
    progress: bool | None = None,
    client: Any = None,
) -> ImputationResult:
    """Impute continuous level-1 targets under pan's two-level joint model (mitml's panImpute).

    Parameters
    ----------
    data : pandas or polars DataFrame; rows in any order; cluster ids of any type.
    formula : ``"y1 + y2 ~ 1 + x + (1 + x | cluster)"``: targets on the left, complete predictors on
        the right, one random-effects term (a random slope is not added as a fixed effect).
        Two terms for nested factors, ``"y ~ 1 + x + (1 + z|school) + (1|school:class)"``, give
        the three-level model (:mod:`pymitml.samplers.pan3`; prior keys ``c3``, ``Dinv3`` for
        the outer level, chains ``psi`` for the inner level and ``psi3`` for the outer one).
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
    missing_code : value(s) that mean missing besides NaN/null (e.g. -99): a number or a list,
        applied to the model's numeric columns only; or a dict ``{column: value(s)}`` for exactly
        the columns named (any column of the data). The converted cells are counted per column
        in a :class:`~pymitml.exceptions.MissingCodeWarning` and in ``.codebook.missing_code_cells``.
    progress : show a progress bar (default: only in an interactive terminal).
    client : a ``dask.distributed.Client``: the (group, chain) tasks run on its cluster;
        the same seed gives the same imputations as a local run (needs ``pymitml[dask]``).

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
    >>> imp = pm.pan_impute(
    ...     df, "ReadDis + SES ~ 1 + CognAbility + (1|ID)", m=5, n_burn=500, n_iter=50, seed=1
    ... )
    >>> implist = imp.complete()
    """
    m, n_burn, n_iter, chains, per_chain = check_run(m, n_burn, n_iter, chains, keep_chains)
    three = random_terms(formula) if formula is not None else None
    if (
        three is not None and formula is not None
    ):  # two nested random terms: the three-level model (samplers/pan3.py)
        if type is not None:
            raise ValueError("pan_impute needs exactly one of `formula` or `type`.")
        return pan3_impute(
            data,
            formula,
            three,
            m=m,
            n_burn=n_burn,
            n_iter=n_iter,
            chains=chains,
            per_chain=per_chain,
            group=group,
            prior=prior,
            seed=seed,
            keep_chains=keep_chains,
            n_threads=n_threads,
            missing_code=missing_code,
            progress=progress,
            client=client,
        )
    spec, codebook = prepare_model(data, formula, type, group, missing_code, method="pan_impute")
    r, q = len(spec.targets), len(spec.z_names)
    prior_ = _check_prior(prior, r, q)
    intercept = bool(spec.x_names) and spec.x_names[0] == "(Intercept)"
    for gd in spec.groups:
        if len(gd.cluster_labels) < 2:
            raise ValueError(
                f"the cluster id '{spec.cluster}' has a single cluster"
                + ("" if gd.label is None else f" in group {spec.group}={gd.label!r}")
                + "; a two-level model needs at least two clusters."
            )
    make = partial(
        _make_chain, prior=prior_, diag_only=keep_chains == "diagonal", intercept=intercept
    )
    labels = [gd.label for gd in spec.groups]
    out = run_chains(
        lambda g, c, s: make(spec.groups[g], s),
        labels,
        n_burn=n_burn,
        n_iter=n_iter,
        per_chain=per_chain,
        seed=seed,
        n_threads=n_threads,
        progress=progress,
        client=client,
        sampler="pan_impute",
    )
    qn = [f"{t}:{z}" for t in spec.targets for z in spec.z_names]
    param_names = {
        "beta": (spec.x_names, spec.targets),
        "psi": (qn, qn if keep_chains == "full" else ["var"]),
        "sigma": (spec.targets, spec.targets if keep_chains == "full" else ["var"]),
    }
    settings = RunSettings(
        n_burn=n_burn,
        n_iter=n_iter,
        m=m,
        chains=chains,
        keep_chains=keep_chains,
        group=spec.group,
        cluster=spec.cluster,
        seed=seed if isinstance(seed, int) else None,
    )
    return assemble_result(
        out,
        blocks=("beta", "psi", "sigma"),
        group_rows=[gd.rows for gd in spec.groups],
        target_columns=spec.target_positions,
        method="pan",
        formula=spec.formula,
        targets=spec.targets,
        prior=[prior_] * len(labels),
        settings=settings,
        codebook=codebook,
        param_names=param_names,
        group_labels=labels,
        extra={
            "target_positions": spec.target_positions,
            "x_names": spec.x_names,
            "z_names": spec.z_names,
        },
    )
