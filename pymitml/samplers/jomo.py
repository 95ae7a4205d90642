"""jomo_impute: joint-model imputation of continuous and categorical targets (mitml's jomoImpute).

The model set-up is in :mod:`._jomo_targets`, a chain's start-up and run in :mod:`._jomo_start`
and :mod:`._jomo_chain`, the kernels in :mod:`._jomo_kernel` and :mod:`._jomo_hr_kernel`.
"""
from __future__ import annotations

import builtins
from collections.abc import Mapping
from functools import partial
from typing import Any

import numpy as np

from .._random import spawn_seeds
from ..chains import check_run, run_tasks
from ..result import ImputationResult
from ._jomo_chain import RunSettings, _run_chain, _run_chain_hr
from ._jomo_targets import (  # noqa: F401  (JOMO_LATENT_BOUNDS and the helpers are imported from here)
    JOMO_LATENT_BOUNDS,
    _check_latent_bounds,
    _check_prior,
    _cluster_level,
    _formula_of_type,
    _layout,
    _prepare,
)

__all__ = ["jomo_impute"]


# ----------------------------------------------------------------------------- public entry point
def jomo_impute(data: Any, formula: str | list | None = None, *, random_L1: str = "none", m: int = 10,
                n_burn: int = 5000, n_iter: int = 100, seed=None, group: str | None = None,
                prior: Mapping | None = None, keep_chains: str = "full", chains: int = 1,
                n_threads: int | None = None, missing_code=None, progress: bool | None = None, type=None,
                latent_bounds=None) -> ImputationResult:
    """Impute continuous and categorical targets under jomo's joint model (mitml's jomoImpute).

    Model: the level-1 targets (continuous ones; K - 1 latent normals per nominal target with K
    observed levels; one latent normal cut at thresholds per ordered target) follow the
    multivariate linear mixed model ``Y = X beta + Z u_j + e``, ``e ~ N(0, Sigma)``; level-2 targets
    follow ``Y2_j = X2_j beta2 + u2_j`` with ``(u_j, u2_j) ~ N(0, Psi)``. The latent block of a
    nominal target in Sigma is fixed to 1 on the diagonal and 0.5 off it (an ordinal latent has
    variance 1 and its first threshold at 0). Categorical level-2 targets have their latent
    normals (one set per cluster) in Y2_j, with their block of Psi fixed the same way (as jomo's
    ``jomo2com``; ordered ones, which jomo lacks, get one latent and thresholds). Without a
    cluster term the model is single-level.

    Parameters
    ----------
    data : pandas or polars DataFrame.
    formula : ``"y + x + sex ~ 1 + z + (1|clus)"``, or ``[level-1 formula, level-2 formula]`` such as
        ``["y + sex ~ 1 + (1|clus)", "w ~ 1 + z"]`` for level-2 targets (constant within clusters;
        level-1 predictors named on the level-2 side are replaced by their cluster means, with a
        warning). Categorical targets (at both levels): pandas Categorical (ordered ones are
        ordinal), polars Categorical/Enum, string and boolean columns; numeric columns are
        continuous.
    random_L1 : ``"none"``, or ``"mean"`` / ``"full"``: cluster-specific level-1 covariance matrices
        Sigma_j ~ IW(a, Lambda) with Lambda and a estimated, for every kind of target and with
        level-2 targets (jomo's ``jomo1ranconhr``, ``jomo1rancathr``, ``jomo2hr``): the latent
        blocks of categorical targets stay fixed in every Sigma_j, whose free elements then get
        jomo's Metropolis-Hastings steps; ``"mean"`` stores the average of the Sigma_j per
        iteration, ``"full"`` every cluster's (stacked cluster-major, ``r J`` rows).
    m, n_burn, n_iter : imputations, burn-in iterations, iterations between imputations.
    seed : int, numpy Generator or None; results do not depend on ``n_threads``.
    group : column whose levels are imputed completely separately.
    prior : dict with ``Binv`` (r x r, r = continuous targets + latent columns), ``Dinv``
        (q r + r2 square, r2 = continuous level-2 targets + their latent columns) and, with ``random_L1``, ``a`` (prior degrees of freedom); defaults are
        identity matrices and a = r as in mitml.
    keep_chains : ``"full"`` or ``"diagonal"``.
    chains : independent chains (each draws m / chains imputations).
    n_threads : worker threads (default: up to the number of cores).
    missing_code : value(s) meaning missing in numeric columns (e.g. -99).
    progress : show a progress bar (default: only in an interactive terminal).
    type : alternative to ``formula``: mitml's codes ``{column: code}`` (1 target, 2 fixed
        predictor, 3 fixed + random predictor, -1 group, -2 cluster id, 0 unused), or for level-2
        targets a list of two such mappings ``[level-1 codes, level-2 codes]`` (jomoImpute's list
        of two type vectors; on the level-2 side only 1, 2 and 0 are meaningful, the cluster id
        comes from the level-1 codes).
    latent_bounds : ``None`` (default), ``"jomo"`` or a pair ``(lo, hi)`` with lo < 0 < hi.
        ``None`` samples the latent normals of binary and nominal targets under the exact probit
        model. jomo itself draws them with a rejection sampler that only keeps values inside
        (-3, 4), i.e. from a normal truncated to that box as well as to the region of the
        observed category; this pulls jomo's latent-scale parameters (the latent rows and columns
        of beta, sigma and psi) slightly towards 0 compared with the exact model, so use
        ``latent_bounds="jomo"`` (same as ``(-3.0, 4.0)``) to reproduce jomoImpute's chains within
        Monte Carlo error. Continuous targets and the imputed categories are hardly affected.
        Ordered targets (thresholds, not in jomo) always use the exact model.

    Returns
    -------
    ImputationResult
        ``method="jomo"``; chains ``beta`` (predictors x columns), ``beta2`` (with level-2 targets),
        ``psi`` (two-level models) and ``sigma`` laid out like mitml's; ``extra["thresholds"]``
        holds the threshold chains of ordinal targets (both levels) and ``extra["random_L1_df"]`` the chain of a.
        ``.complete()`` restores the categories and dtypes.

    Notes
    -----
    As in jomo, Sigma ~ IW(N - 1, Binv + S) given the residuals when all targets are continuous;
    with categorical targets its free elements have jomo's flat-prior target, likewise Psi (and
    ``Dinv`` is unused) when there are categorical level-2 targets. With one categorical target at
    a level that target is an inverse Wishart restricted to the fixed latent block, and the free
    elements are drawn from it exactly (much better mixing than jomo's steps); with several, by
    jomo's element-wise random-walk Metropolis-Hastings (``extra["sigma_acceptance"]``; NaN when
    no such step is taken). Latent normals are drawn by exact truncated-normal Gibbs steps;
    jomo's rejection sampler only keeps latents inside (-3, 4), which shifts its latent-scale
    estimates slightly (see ``latent_bounds``).

    Examples
    --------
    >>> import pymitml as pm
    >>> df = pm.datasets.random_intercept(30, 10, seed=1)
    >>> imp = pm.jomo_impute(df, "y + x ~ 1 + z + w + (1|id)", m=2, n_burn=200, n_iter=20, seed=1)
    >>> len(imp.complete())
    2
    """
    m, n_burn, n_iter, chains, per_chain = check_run(m, n_burn, n_iter, chains, keep_chains)
    if random_L1 not in ("none", "mean", "full"):
        raise ValueError(f"`random_L1` must be 'none', 'mean' or 'full'; got {random_L1!r}.")
    box = _check_latent_bounds(latent_bounds)
    formula, group = _formula_of_type(formula, type, group)
    if not isinstance(formula, (str, list, tuple)):
        raise TypeError(f"`formula` must be a string or a list of two strings; got {builtins.type(formula).__name__}.")
    spec, codebook, order, l2 = _prepare(data, formula, group, missing_code)
    r2 = 0 if l2 is None else len(l2["targets"])
    single = spec.cluster is None
    hr = random_L1 != "none"
    if hr:
        if single:
            raise ValueError(
                "`random_L1` = 'mean' / 'full' needs a cluster term in `formula` (cluster-specific "
                "covariance matrices); add '(1|cluster)' or use random_L1='none'."
            )
    intercept = bool(spec.x_names) and spec.x_names[0] == "(Intercept)"
    q = 0 if single else len(spec.z_names)
    G = len(spec.groups)
    seeds = spawn_seeds(seed, G * chains)
    tasks, layouts, layouts2, priors = [], [], [], []
    for g, gd in enumerate(spec.groups):
        where = "" if gd.label is None else f"in group {spec.group}={gd.label!r} "
        lay = _layout(gd.Y, order, where)
        if not single and len(gd.cluster_labels) < 2:
            raise ValueError(f"the cluster id '{spec.cluster}' has a single cluster {where}; "
                             "a two-level model needs at least two clusters.")
        lay2 = None if l2 is None else _layout(_cluster_level(gd, l2)[1], l2["order"], where)
        pr = _check_prior(prior, lay.r, q * lay.r + (0 if lay2 is None else lay2.r), hr)
        layouts.append(lay)
        layouts2.append(lay2)
        priors.append(pr)
        for c in range(chains):
            settings = RunSettings(seed=seeds[g * chains + c], prior=pr, n_burn=n_burn, n_iter=n_iter,
                                   m_c=per_chain[c], diag_only=keep_chains == "diagonal", intercept=intercept,
                                   single=single, box=box, mode=int(random_L1 == "full"), chain=c, group=gd.label)
            tasks.append(partial(_run_chain_hr if hr else _run_chain, gd=gd, lay=lay, settings=settings, l2=l2,
                                 lay2=lay2))
    total = G * chains * n_burn + G * m * n_iter
    out = run_tasks(tasks, total, n_threads=n_threads, progress=progress)
    blocks = ("beta", "sigma") if single else (("beta", "beta2", "psi", "sigma") if r2 else ("beta", "psi", "sigma"))
    # groups may differ in their number of latent columns: pad with NaN as mitml does
    rmax = max(lay.r for lay in layouts)
    r2w = max(lay2.r for lay2 in layouts2) if r2 else 0  # level-2 working columns (with latents)
    names2 = max(layouts2, key=lambda lay2: lay2.r).names if r2 else []

    jmax = max(len(gd.cluster_labels) for gd in spec.groups)

    def pad(a, b):
        if b == "beta":
            shape = (a.shape[0], rmax)
        elif b == "beta2":
            shape = (a.shape[0], r2w)
        elif keep_chains == "diagonal":
            shape = (q * rmax + r2w if b == "psi" else rmax * (jmax if random_L1 == "full" else 1), 1)
        elif b == "sigma" and random_L1 == "full":
            shape = (rmax * jmax, rmax)
        else:
            k = q * rmax + r2w if b == "psi" else rmax
            shape = (k, k)
        o = np.full(shape + a.shape[2:], np.nan)
        o[:a.shape[0], :a.shape[1]] = a
        return o

    def stack(phase):
        return {b: np.stack([np.stack([pad(out[g * chains + c][phase][b], b) for c in range(chains)], axis=-1)
                             for g in range(G)], axis=-2) for b in blocks}

    ch_burn, ch_imp = stack(0), stack(1)
    rows_all, cols_all, vals = [], [], []
    tpos = np.asarray([spec.target_positions[spec.targets.index(x.name)] for x in order]
                      + ([] if l2 is None else l2["positions"]), np.int64)
    for g, gd in enumerate(spec.groups):
        ct, cr = out[g * chains][3]
        rows_all.append(gd.rows[cr])
        cols_all.append(tpos[ct])
        vals.append(np.concatenate([out[g * chains + c][2] for c in range(chains)], axis=1))
    rows_all = np.concatenate(rows_all)
    cols_all = np.concatenate(cols_all)
    vals = np.concatenate(vals, axis=0)
    rank = {int(pp): k for k, pp in enumerate(tpos)}
    order_ = np.lexsort((rows_all, np.array([rank[int(c)] for c in cols_all], dtype=np.int64)))
    index = np.column_stack([rows_all[order_], cols_all[order_]]).astype(np.int64)
    replacement = np.ascontiguousarray(vals[order_])
    names = max(layouts, key=lambda lay: lay.r).names
    z_names = [] if single else spec.z_names
    qn = [f"{t}:{z}" for t in names for z in z_names] + names2
    if random_L1 == "full":
        # cluster labels (one group) or cluster positions within each group (several groups)
        labels = spec.groups[0].cluster_labels if G == 1 else range(1, jmax + 1)
        srows = [f"{t}[{lab}]" for lab in labels for t in names]
    else:
        srows = names
    param_names = {"beta": (spec.x_names, names),
                   "sigma": (srows, names if keep_chains == "full" else ["var"])}
    if not single:
        param_names["psi"] = (qn, qn if keep_chains == "full" else ["var"])
    if r2:
        param_names["beta2"] = (l2["x_names"], names2)
    settings = {"n_burn": n_burn, "n_iter": n_iter, "m": m, "chains": chains, "keep_chains": keep_chains,
                    "group": spec.group, "cluster": spec.cluster, "random_L1": random_L1,
                    "seed": seed if isinstance(seed, int) else None}
    acc = np.array([[out[g * chains + c][4] for c in range(chains)] for g in range(G)])
    # thresholds of ordinal targets (the first is fixed at 0): name -> (K - 1, iterations, groups)
    thresholds = {}
    for v, x in enumerate(order[layouts[0].n_con:]):
        if x.ordered:
            K = max(len(lay.levels[v]) for lay in layouts)
            arr = np.full((K - 1, m * n_iter, G), np.nan)
            for g in range(G):
                kg = len(layouts[g].levels[v])
                arr[:kg - 1, :, g] = np.concatenate(
                    [out[g * chains + c][1]["gam"][v, 1:kg] for c in range(chains)], axis=-1)
            thresholds[x.name] = arr
    if r2:  # level-2 ordinal targets: rows after the level-1 categorical ones
        n1 = len(layouts[0].cat_k1)
        for v, x in enumerate(l2["order"][layouts2[0].n_con:]):
            if x.ordered:
                K = max(len(lay2.levels[v]) for lay2 in layouts2)
                arr = np.full((K - 1, m * n_iter, G), np.nan)
                for g in range(G):
                    kg = len(layouts2[g].levels[v])
                    arr[:kg - 1, :, g] = np.concatenate(
                        [out[g * chains + c][1]["gam"][n1 + v, 1:kg] for c in range(chains)], axis=-1)
                thresholds[x.name] = arr
    return ImputationResult(
        method="jomo", formula=formula, targets=[x.name for x in order] + ([] if l2 is None else l2["targets"]),
        prior=priors, settings=settings,
        par_burnin={b: v[..., 0] for b, v in ch_burn.items()},
        par_imputation={b: v[..., 0] for b, v in ch_imp.items()},
        par_chains_burnin=ch_burn, par_chains_imputation=ch_imp,
        replacement=replacement, index=index, codebook=codebook, param_names=param_names,
        group_labels=[gd.label for gd in spec.groups],
        extra={"target_positions": [int(x) for x in tpos], "x_names": spec.x_names, "z_names": z_names,
               "single_level": single, "sigma_acceptance": acc, "thresholds": thresholds,
               "random_L1_df": (np.stack([out[g * chains][1]["a"] for g in range(G)], axis=-1) if hr else None)},
    )
