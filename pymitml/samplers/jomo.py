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

from .._validation import check_run
from ..result import ImputationResult, RunSettings
from ._jomo_chain import RunSettings as _ChainSettings
from ._jomo_chain import _run_chain, _run_chain_hr
from ._jomo_targets import (  # noqa: F401  (JOMO_LATENT_BOUNDS and the helpers are imported from here)
    JOMO_LATENT_BOUNDS,
    _check_latent_bounds,
    _check_prior,
    _cluster_level,
    _formula_of_type,
    _Layout,
    _layout,
    _prepare,
)
from .driver import Chain, ChainOutput, assemble_result, run_chains

__all__ = ["jomo_impute"]


# ----------------------------------------------------------------------------- public entry point
def jomo_impute(
    data: Any,
    formula: str | list | None = None,
    *,
    random_L1: str = "none",
    m: int = 10,
    n_burn: int = 5000,
    n_iter: int = 100,
    seed=None,
    group: str | None = None,
    prior: Mapping | None = None,
    keep_chains: str = "full",
    chains: int = 1,
    n_threads: int | None = None,
    missing_code=None,
    progress: bool | None = None,
    client: Any = None,
    type=None,
    latent_bounds=None,
) -> ImputationResult:
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
    missing_code : value(s) that mean missing besides NaN/null (e.g. -99): a number or a list,
        applied to the model's numeric columns only; or a dict ``{column: value(s)}`` for exactly
        the columns named (any column of the data). The converted cells are counted per column
        in a :class:`~pymitml.exceptions.MissingCodeWarning` and in ``.codebook.missing_code_cells``.
    progress : show a progress bar (default: only in an interactive terminal).
    client : a ``dask.distributed.Client``: the (group, chain) tasks run on its cluster;
        the same seed gives the same imputations as a local run (needs ``pymitml[dask]``).
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
        raise TypeError(
            f"`formula` must be a string or a list of two strings; got {builtins.type(formula).__name__}."
        )
    spec, codebook, order, l2 = _prepare(data, formula, group, missing_code)
    single = spec.cluster is None
    hr = random_L1 != "none"
    if hr and single:
        raise ValueError(
            "`random_L1` = 'mean' / 'full' needs a cluster term in `formula` (cluster-specific "
            "covariance matrices); add '(1|cluster)' or use random_L1='none'."
        )
    q = 0 if single else len(spec.z_names)
    layouts, layouts2, priors = _group_layouts(spec, order, l2, prior, (single, q, hr))
    base: dict[str, Any] = {
        "n_burn": n_burn,
        "n_iter": n_iter,
        "diag_only": keep_chains == "diagonal",
        "single": single,
        "intercept": bool(spec.x_names) and spec.x_names[0] == "(Intercept)",
        "box": box,
        "mode": int(random_L1 == "full"),
    }
    run = _run_chain_hr if hr else _run_chain

    def make_chain(g: int, c: int, seed_gc: int) -> Chain:
        gd = spec.groups[g]
        settings = _ChainSettings(
            seed=seed_gc, prior=priors[g], m_c=per_chain[c], chain=c, group=gd.label, **base
        )
        return run(gd, layouts[g], settings, l2, layouts2[g])

    labels = [gd.label for gd in spec.groups]
    out = run_chains(
        make_chain,
        labels,
        n_burn=n_burn,
        n_iter=n_iter,
        per_chain=per_chain,
        seed=seed,
        n_threads=n_threads,
        progress=progress,
        client=client,
        sampler="jomo_impute",
    )
    lays2 = [
        lay2 for lay2 in layouts2 if lay2 is not None
    ]  # all of them with level-2 targets, else none
    blocks = (
        ("beta", "sigma")
        if single
        else (("beta", "beta2", "psi", "sigma") if lays2 else ("beta", "psi", "sigma"))
    )
    tpos = np.asarray(
        [spec.target_positions[spec.targets.index(x.name)] for x in order]
        + ([] if l2 is None else l2["positions"]),
        np.int64,
    )
    z_names = [] if single else spec.z_names
    return assemble_result(
        out,
        blocks=blocks,
        group_rows=[gd.rows for gd in spec.groups],
        target_columns=tpos,
        pad=partial(
            _pad,
            dims=(
                q,
                max(lay.r for lay in layouts),
                max((x.r for x in lays2), default=0),
                max(len(gd.cluster_labels) for gd in spec.groups),
            ),
            diagonal=keep_chains == "diagonal",
            full=random_L1 == "full",
        ),
        method="jomo",
        formula=formula,
        targets=[x.name for x in order] + ([] if l2 is None else l2["targets"]),
        prior=priors,
        settings=RunSettings(
            n_burn=n_burn,
            n_iter=n_iter,
            m=m,
            chains=chains,
            keep_chains=keep_chains,
            group=spec.group,
            cluster=spec.cluster,
            random_L1=random_L1,
            seed=seed if isinstance(seed, int) else None,
        ),
        codebook=codebook,
        param_names=_param_names(spec, layouts, lays2, l2, (keep_chains, random_L1)),
        group_labels=labels,
        extra={
            "target_positions": [int(x) for x in tpos],
            "x_names": spec.x_names,
            "z_names": z_names,
            "single_level": single,
            "sigma_acceptance": np.array([[o.extra for o in outs] for outs in out]),
            "thresholds": _threshold_chains(out, order, l2, layouts, lays2),
            "random_L1_df": np.stack([outs[0].imputation["a"] for outs in out], axis=-1)
            if hr
            else None,
        },
    )


def _group_layouts(
    spec, order: list, l2, prior: Mapping | None, model: tuple
) -> tuple[list, list, list]:
    """Per group: the layout of the level-1 working matrix, of the level-2 one (None without
    level-2 targets) and the checked prior; ``model`` = (single-level, q, random_L1)."""
    single, q, hr = model
    layouts: list[_Layout] = []
    layouts2: list[_Layout | None] = []
    priors: list[dict] = []
    for gd in spec.groups:
        where = "" if gd.label is None else f"in group {spec.group}={gd.label!r} "
        lay = _layout(gd.Y, order, where)
        if not single and len(gd.cluster_labels) < 2:
            raise ValueError(
                f"the cluster id '{spec.cluster}' has a single cluster {where}; "
                "a two-level model needs at least two clusters."
            )
        lay2 = None if l2 is None else _layout(_cluster_level(gd, l2)[1], l2["order"], where)
        priors.append(_check_prior(prior, lay.r, q * lay.r + (0 if lay2 is None else lay2.r), hr))
        layouts.append(lay)
        layouts2.append(lay2)
    return layouts, layouts2, priors


def _pad(a: np.ndarray, b: str, *, dims: tuple, diagonal: bool, full: bool) -> np.ndarray:
    """Groups may differ in their number of latent columns: block ``b``'s draws ``a`` padded with
    NaN to the widest group's shape, as mitml does. ``dims`` = (q, widest r, widest level-2 r,
    most clusters)."""
    q, rmax, r2w, jmax = dims
    if b == "beta":
        shape: tuple = (a.shape[0], rmax)
    elif b == "beta2":
        shape = (a.shape[0], r2w)
    elif diagonal:
        shape = (q * rmax + r2w if b == "psi" else rmax * (jmax if full else 1), 1)
    elif b == "sigma" and full:
        shape = (rmax * jmax, rmax)
    else:
        k = q * rmax + r2w if b == "psi" else rmax
        shape = (k, k)
    o = np.full(shape + a.shape[2:], np.nan)
    o[: a.shape[0], : a.shape[1]] = a
    return o


def _param_names(spec, layouts: list[_Layout], lays2: list[_Layout], l2, keep: tuple) -> dict:
    """Row and column names of every block; ``keep`` = (keep_chains, random_L1)."""
    keep_chains, random_L1 = keep
    names = max(layouts, key=lambda lay: lay.r).names
    names2 = max(lays2, key=lambda lay2: lay2.r).names if lays2 else []
    single = spec.cluster is None
    qn = [f"{t}:{z}" for t in names for z in ([] if single else spec.z_names)] + names2
    if random_L1 == "full":
        # cluster labels (one group) or cluster positions within each group (several groups)
        jmax = max(len(gd.cluster_labels) for gd in spec.groups)
        labels = spec.groups[0].cluster_labels if len(spec.groups) == 1 else range(1, jmax + 1)
        srows = [f"{t}[{lab}]" for lab in labels for t in names]
    else:
        srows = names
    param_names = {
        "beta": (spec.x_names, names),
        "sigma": (srows, names if keep_chains == "full" else ["var"]),
    }
    if not single:
        param_names["psi"] = (qn, qn if keep_chains == "full" else ["var"])
    if lays2:
        param_names["beta2"] = (l2["x_names"], names2)
    return param_names


def _threshold_chains(
    out: list[list[ChainOutput]], order: list, l2, layouts: list[_Layout], lays2: list[_Layout]
) -> dict:
    """Threshold chains of the ordinal targets (the first threshold is fixed at 0): name ->
    (K - 1, iterations, groups); level-2 ones from the rows after the level-1 categorical ones."""
    levels = [
        (v, x, [lay.levels[v] for lay in layouts]) for v, x in enumerate(order[layouts[0].n_con :])
    ]
    if lays2:
        n1 = len(layouts[0].cat_k1)
        levels += [
            (n1 + v, x, [lay2.levels[v] for lay2 in lays2])
            for v, x in enumerate(l2["order"][lays2[0].n_con :])
        ]
    thresholds = {}
    for row, x, lv in levels:
        if not x.ordered:
            continue
        K = max(len(lvg) for lvg in lv)
        arr = np.full((K - 1, sum(o.imputation["gam"].shape[-1] for o in out[0]), len(out)), np.nan)
        for g, outs in enumerate(out):
            kg = len(lv[g])
            arr[: kg - 1, :, g] = np.concatenate(
                [o.imputation["gam"][row, 1:kg] for o in outs], axis=-1
            )
        thresholds[x.name] = arr
    return thresholds
