"""jomo_impute: joint-model imputation of continuous and categorical targets (mitml's jomoImpute)."""
from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from types import SimpleNamespace
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from .._frame import Codebook, ColumnCodec, check_columns
from .._model import formula_from_type, prepare_model
from .._random import spawn_seeds
from ..chains import SEGMENT, check_run, run_tasks
from ..formula import parse_formula
from ..result import ImputationResult
from ._gibbs import cluster_crossproducts
from ._jomo_kernel import (
    cluster_rows_crossproducts,
    jomo_draw_counts,
    jomo_hr_iterate,
    jomo_iterate,
)
from ._layout import pattern_layout, row_blocks
from ._prior import check_prior

__all__ = ["jomo_impute"]

#: latent_bounds="jomo": jomo's rejection sampler keeps only latent draws inside (-3, 4)
JOMO_LATENT_BOUNDS = (-3.0, 4.0)


def _check_latent_bounds(latent_bounds) -> tuple[float, float]:
    """``None`` (exact probit model), ``"jomo"`` or a pair (lo, hi) with lo < 0 < hi."""
    if latent_bounds is None:
        return (-np.inf, np.inf)
    if isinstance(latent_bounds, str):
        if latent_bounds == "jomo":
            return JOMO_LATENT_BOUNDS
        raise ValueError(f"`latent_bounds` must be None, 'jomo' or a pair (lo, hi); got {latent_bounds!r}.")
    try:
        lo, hi = (float(x) for x in latent_bounds)
    except (TypeError, ValueError):
        raise TypeError(
            f"`latent_bounds` must be None, 'jomo' or a pair of numbers (lo, hi) such as (-3.0, 4.0); "
            f"got {latent_bounds!r}."
        ) from None
    if not (lo < 0.0 < hi):
        raise ValueError(
            f"`latent_bounds` = {latent_bounds!r} must satisfy lo < 0 < hi (every category needs room "
            "on its side of 0); use None for the exact model or (-3.0, 4.0) as in jomo."
        )
    return (lo, hi)


# ----------------------------------------------------------------------------- model set-up
def _is_categorical(s: pd.Series) -> bool:
    return (isinstance(s.dtype, pd.CategoricalDtype) or pd.api.types.is_bool_dtype(s)
            or pd.api.types.is_object_dtype(s) or pd.api.types.is_string_dtype(s))


def _categories(s: pd.Series, name: str) -> tuple[list, bool]:
    """All levels of a categorical target (in the column's order) and whether it is ordered."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.dtype.categories), bool(s.dtype.ordered)
    vals = s.dropna()
    if pd.api.types.is_bool_dtype(s) or (len(vals) and all(isinstance(v, (bool, np.bool_)) for v in vals)):
        return [False, True], False
    try:
        return sorted(vals.unique().tolist()), False
    except TypeError:
        raise TypeError(
            f"target '{name}' mixes values of different types ({sorted({type(v).__name__ for v in vals})}); "
            "convert it to one type (e.g. astype(str)) or to a pandas Categorical."
        ) from None


def _codes(s: pd.Series, cats: list, name: str, missing_code) -> np.ndarray:
    """Integer codes into ``cats`` as float (NaN where missing); an error for values outside."""
    if missing_code is not None:
        codes_ = [missing_code] if np.isscalar(missing_code) else list(missing_code)
        clash = [c for c in codes_ if any(c == k or str(c) == str(k) for k in cats)]
        if clash:
            raise ValueError(
                f"`missing_code` {clash} is a category of the categorical target '{name}' "
                f"(categories {cats}); a category code cannot also mean missing: recode that category "
                "or mark missing values as NaN/None instead."
            )
    if isinstance(s.dtype, pd.CategoricalDtype):
        c = s.cat.codes.to_numpy().astype(np.float64)
    else:
        codes = pd.Categorical(s, categories=cats).codes
        c = np.where(codes >= 0, codes, np.nan).astype(np.float64)
        bad = s[s.notna().to_numpy() & (codes < 0)].tolist()
        if bad:
            raise ValueError(f"target '{name}' has value(s) {sorted(set(map(str, bad)))[:5]} outside "
                             f"its levels {cats}.")
        return c
    c[c < 0] = np.nan
    return c


@dataclass
class _Target:
    name: str
    kind: str           # "continuous" | "categorical"
    categories: list | None = None
    ordered: bool = False


def _classify_targets(pdf: pd.DataFrame, names, missing_code) -> tuple[list, dict]:
    """Targets in the samplers' order (continuous ones first, then categorical ones) and the
    category codes of the categorical ones (name -> float array, NaN missing)."""
    targets, codes = [], {}
    for t in names:
        s = pdf[t]
        if _is_categorical(s):
            cats, ordered = _categories(s, t)
            codes[t] = _codes(s, cats, t, missing_code)
            targets.append(_Target(t, "categorical", cats, ordered))
        else:
            targets.append(_Target(t, "continuous"))
    return ([x for x in targets if x.kind == "continuous"] + [x for x in targets if x.kind == "categorical"],
            codes)


def _prepare(data, formula, group, missing_code):
    """ModelSpec (continuous targets first, categorical ones as codes), the codebook, the level-1
    target order and the level-2 part (None without level-2 targets)."""
    level2 = None
    if isinstance(formula, (list, tuple)):
        if len(formula) != 2 or not all(isinstance(x, str) for x in formula):
            raise ValueError(
                "`formula` as a list must hold two strings [level-1 formula, level-2 formula], e.g. "
                f"['y + x ~ 1 + (1|id)', 'w ~ 1']; got {formula!r}."
            )
        formula, level2 = formula
    f = parse_formula(formula)
    codebook, pdf = Codebook.from_data(data, missing_code)
    check_columns(pdf, f.targets, "target(s)")
    order, codes = _classify_targets(pdf, f.targets, missing_code)
    work = pdf.copy()
    for t, c in codes.items():
        work[t] = c
    rhs = f.text.split("~", 1)[1]
    ftext = " + ".join(f"`{x.name}`" if not x.name.isidentifier() else x.name for x in order) + " ~ " + rhs
    spec, _ = prepare_model(work, ftext, None, group, None, require_cluster=False, method="jomo_impute")
    spec.formula = f.text
    l2 = None if level2 is None else _prepare_level2(pdf, level2, f, spec, missing_code)
    codebook.targets = [ColumnCodec(x.name) if x.kind == "continuous" else
                        ColumnCodec(x.name, "categorical", categories=x.categories, ordered=x.ordered)
                        for x in order + ([] if l2 is None else l2["order"])]
    return spec, codebook, order, l2


def _prepare_level2(pdf: pd.DataFrame, text: str, f1, spec, missing_code=None) -> dict:
    """Level-2 targets (constant within clusters) and predictors (cluster means of level-1 ones)."""
    f2 = parse_formula(text)
    if f1.cluster is None:
        raise ValueError("level-2 targets need a cluster term in the level-1 formula, e.g. '(1|id)'.")
    if f2.cluster is not None:
        raise ValueError(f"the level-2 formula {text!r} must not have a random-effects term.")
    check_columns(pdf, list(f2.targets), "level-2 target(s)")
    both = set(f2.targets) & set(f1.targets)
    if both:
        raise ValueError(f"column(s) {sorted(both)} are targets at both levels; name each once.")
    clus = pd.factorize(pdf[f1.cluster])[0]
    order2, values = _classify_targets(pdf, f2.targets, missing_code)
    for t in f2.targets:
        if t not in values:
            values[t] = pdf[t].to_numpy(dtype=np.float64, na_value=np.nan)
    for t in f2.targets:
        vals = values[t]
        g = pd.DataFrame({"c": clus, "v": vals}).dropna().groupby("c")["v"]
        spread = g.max() - g.min()
        bad = spread[spread > 1e-10 * max(1.0, float(np.nanmax(np.abs(vals))))]
        if len(bad):
            lab = pdf[f1.cluster].iloc[int(np.flatnonzero(clus == bad.index[0])[0])]
            lab = lab.item() if hasattr(lab, "item") else lab
            raise ValueError(
                f"level-2 target '{t}' varies within cluster {f1.cluster}={lab!r} (and {len(bad) - 1} "
                "other cluster(s)); a level-2 target must be constant within clusters: move it to the "
                "level-1 formula or fix the data."
            )
    work = pdf.copy()
    from ..formula import design_matrix, term_variables

    preds = term_variables(f2.fixed)
    check_columns(pdf, preds, "level-2 predictor(s)")
    replaced = []
    for v in preds:
        if work[v].isna().any():
            raise ValueError(f"level-2 predictor '{v}' has missing values; predictors must be complete.")
        if pd.api.types.is_numeric_dtype(work[v]) and not pd.api.types.is_bool_dtype(work[v]):
            x = work[v].to_numpy(dtype=np.float64)
            means = np.bincount(clus, weights=x) / np.bincount(clus)
            if np.abs(x - means[clus]).max() > 1e-10 * max(1.0, np.abs(x).max()):
                work[v] = means[clus]
                replaced.append(v)
    if replaced:
        import warnings

        warnings.warn(
            "NOTE: predictor variables at level 1 were found in the level-2 equation and were "
            f"replaced with cluster means ({', '.join(replaced)}).", UserWarning, stacklevel=4)
    X2_all, x2_names = design_matrix(f2.fixed, work)
    Y2_all = np.column_stack([values[x.name] for x in order2])
    cols = list(pdf.columns)
    return {"formula": text, "targets": [x.name for x in order2], "order": order2, "x_names": x2_names,
            "X": X2_all, "Y": Y2_all, "positions": [cols.index(x.name) for x in order2]}


def _cluster_level(gd, l2) -> tuple:
    """Per-cluster level-2 design (J, p2) and targets (J, r2) of one group."""
    J = len(gd.cluster_labels)
    first = np.full(J, -1, np.int64)
    rr = np.arange(len(gd.rows))[::-1]
    first[gd.clus[rr]] = rr
    X2 = np.ascontiguousarray(l2["X"][gd.rows][first])
    Yr = l2["Y"][gd.rows]
    Y2 = np.full((J, Yr.shape[1]), np.nan)
    for t in range(Yr.shape[1]):
        ok = ~np.isnan(Yr[:, t])
        Y2[gd.clus[ok], t] = Yr[ok, t]
    return X2, Y2


def _formula_of_type(formula, type, group):
    """mitml's ``type`` codes (one mapping, or [level-1, level-2] mappings) -> (formula, group)."""
    if (formula is None) == (type is None):
        raise ValueError("jomo_impute needs exactly one of `formula` or `type`.")
    if type is None:
        return formula, group
    if isinstance(type, (list, tuple)):
        if len(type) != 2 or not all(isinstance(t, Mapping) for t in type):
            raise TypeError(
                "`type` as a list must hold two mappings [level-1 codes, level-2 codes], e.g. "
                "[{'y': 1, 'id': -2}, {'w': 1}]; got " + repr(type) + "."
            )
        t1, t2 = type
    elif isinstance(type, Mapping):
        t1, t2 = type, None
    else:
        raise TypeError("`type` must be a mapping {column: code} with mitml's codes 1, 2, 3, -1, -2, 0, "
                        f"or a list of two such mappings; got {builtins.type(type).__name__}.")
    formula, tgroup = formula_from_type(t1)
    if t2 is not None:
        bad = {k: v for k, v in t2.items() if v not in (1, 2, 3, -1, -2, 0)}
        if bad:
            raise ValueError(f"level-2 `type` codes must be among 1, 2, 3, -1, -2, 0; got {bad}.")
        y2 = [k for k, v in t2.items() if v == 1]
        if not y2:
            raise ValueError("the level-2 `type` names no target (code 1); drop it or mark a level-2 "
                             "target with 1.")
        g2 = [k for k, v in t2.items() if v == -1]
        if tgroup is None and g2:  # as mitml: the level-2 codes may name the group
            tgroup = g2[0]
        formula = [formula, " + ".join(y2) + " ~ " + " + ".join(["1"] + [k for k, v in t2.items() if v in (2, 3)])]
    if group is not None and tgroup is not None and group != tgroup:
        raise ValueError(f"`group` ({group!r}) and the group column in `type` (code -1: {tgroup!r}) disagree.")
    return formula, group or tgroup


def _default_prior(r: int, d: int, hr: bool = False) -> dict:
    out = {"Binv": np.eye(r), "Dinv": np.eye(d)} if d else {"Binv": np.eye(r)}
    if hr:
        out["a"] = float(r)
    return out


def _check_prior(prior: Mapping | None, r: int, d: int, hr: bool = False) -> dict:
    scalars = {"a": (0.0, "prior degrees of freedom of random_L1")} if hr else {}
    return check_prior(prior, _default_prior(r, d, hr), {"Binv": r, "Dinv": d}, scalars)


@dataclass
class _Layout:
    """Columns of one group's working matrix: continuous targets, then latent blocks."""

    n_con: int
    cat_start: np.ndarray   # first latent column of each categorical target
    cat_k1: np.ndarray      # latent columns (observed levels - 1)
    levels: list            # per categorical target: codes (into its categories) of observed levels
    names: list             # column names
    cat_ord: np.ndarray = None  # 1 for ordinal targets (one latent, thresholds), else 0

    @property
    def r(self) -> int:
        return self.n_con + int(self.cat_k1.sum())


def _layout(Ycodes: np.ndarray, order: list, where: str) -> _Layout:
    n_con = sum(x.kind == "continuous" for x in order)
    starts, k1s, levels, names = [], [], [], [x.name for x in order[:n_con]]
    col = n_con
    for j, x in enumerate(order[n_con:]):
        obs = np.unique(Ycodes[:, n_con + j][~np.isnan(Ycodes[:, n_con + j])]).astype(np.int64)
        if len(obs) < 2:
            seen = [x.categories[k] for k in obs]
            raise ValueError(
                f"categorical target '{x.name}' has only one observed level {seen} {where}(levels "
                f"{x.categories}); a categorical target needs at least two observed levels: drop it "
                "from the model or impute it as a constant."
            )
        starts.append(col)
        levels.append(obs)
        if x.ordered:  # ordinal probit: one latent, K - 1 thresholds (the first fixed at 0)
            k1s.append(1)
            names.append(x.name)
            col += 1
            continue
        k1s.append(len(obs) - 1)
        names += [f"{x.name}.{x.categories[k]}" for k in obs[:-1]]
        col += len(obs) - 1
    ords = np.array([int(x.ordered) for x in order[n_con:]], np.int64)
    return _Layout(n_con, np.array(starts, np.int64), np.array(k1s, np.int64), levels, names, ords)


def _level1_start(gd, lay: _Layout, intercept: bool, X: np.ndarray) -> SimpleNamespace:
    """Starting state of the level-1 part, shared by both samplers: the working matrix ``Y``
    (continuous targets, centred with an intercept, then the latents of the categorical ones), its
    missing cells ``miss``, the local level of every row's category (``cat_local``, -1 missing),
    ordinal thresholds ``gam`` (with proposal SDs and acceptance counters), the OLS ``beta`` and
    a residual covariance ``Sigma`` whose latent blocks are fixed (``free`` marks the rest)."""
    N = len(X)
    r = lay.r
    nc = lay.n_con
    ncat = len(lay.cat_k1)
    Y = np.zeros((N, r))
    miss = np.zeros((N, r), dtype=bool)
    cmiss = np.isnan(gd.Y[:, :nc])
    obs_mean = np.array([np.nanmean(gd.Y[:, t]) for t in range(nc)])
    shift = np.zeros(r)
    if intercept:
        shift[:nc] = obs_mean
    Y[:, :nc] = np.where(cmiss, obs_mean, gd.Y[:, :nc]) - shift[:nc]
    miss[:, :nc] = cmiss
    cat_local = np.full((ncat, N), -1, np.int64)
    Kmax = max([len(lv) for lv in lay.levels], default=2)
    cat_K = np.array([len(lv) for lv in lay.levels], np.int64)
    gam = np.full((ncat, Kmax + 1), np.inf)
    gam[:, 0] = -np.inf
    gam[:, 1] = 0.0
    thr_sd = np.full((ncat, Kmax + 1), 0.05)
    thr_acc = np.zeros((ncat, Kmax + 1), np.int64)
    n_thr = int(sum(K - 2 for K, o in zip(cat_K, lay.cat_ord) if o and K > 2))
    for v in range(ncat):
        codes = gd.Y[:, nc + v]
        c0, k1 = lay.cat_start[v], lay.cat_k1[v]
        ok = ~np.isnan(codes)
        loc = np.full(N, -1, np.int64)
        loc[ok] = np.searchsorted(lay.levels[v], codes[ok].astype(np.int64))  # levels are sorted codes
        cat_local[v] = loc
        if lay.cat_ord[v]:
            K = len(lay.levels[v])
            cum = np.cumsum(np.bincount(loc[ok], minlength=K))[:-1] / ok.sum()
            z0 = norm.ppf(np.clip(cum, 1e-6, 1 - 1e-6))
            gam[v, 1:K] = z0 - z0[0]
            gam[v, K:] = np.inf
            mid = np.empty(K)
            mid[0], mid[K - 1] = gam[v, 1] - 0.5, gam[v, K - 1] + 0.5
            mid[1:K - 1] = 0.5 * (gam[v, 1:K - 1] + gam[v, 2:K])
            Y[:, c0] = np.where(ok, mid[np.maximum(loc, 0)], 0.0)
            miss[:, c0] = ~ok
            continue
        blk = np.where(ok[:, None], -0.5, 0.0) * np.ones((N, k1))
        rows_obs = np.flatnonzero(ok & (loc < k1))
        blk[rows_obs, loc[rows_obs]] = 0.5
        Y[:, c0:c0 + k1] = blk
        miss[:, c0:c0 + k1] = ~ok[:, None]
    beta = np.linalg.solve(X.T @ X, X.T @ Y)
    res = Y - X @ beta
    Sigma = np.eye(r)
    free = np.ones((r, r), dtype=bool)
    if nc:
        Sc = np.atleast_2d(np.cov(res[:, :nc], rowvar=False))
        Sigma[:nc, :nc] = Sc if np.linalg.eigvalsh(Sc).min() > 1e-8 else np.diag(np.maximum(np.diag(Sc), 1e-3))
    for v in range(ncat):
        c0, k1 = lay.cat_start[v], lay.cat_k1[v]
        Sigma[c0:c0 + k1, c0:c0 + k1] = 0.5 + 0.5 * np.eye(k1)
        free[c0:c0 + k1, c0:c0 + k1] = False  # (an ordinal latent: its variance, fixed to 1)
    return SimpleNamespace(Y=Y, miss=miss, shift=shift, cat_local=cat_local, cat_K=cat_K, gam=gam, thr_sd=thr_sd,
                           thr_acc=thr_acc, n_thr=n_thr, beta=beta, Sigma=Sigma, free=free)


def _level2_start(gd, l2, lay: _Layout, lay2, st: SimpleNamespace, Psi: np.ndarray, q: int, J: int) -> SimpleNamespace:
    """Starting state of the level-2 part (both samplers): per-cluster targets (continuous ones
    centred with an intercept, then latents) and design, clusters arranged by missingness pattern,
    the joint Psi of (u_j, u2_j) (``Psi`` holds the level-1 block), and the thresholds of ordinal
    targets of both levels in one array (level-2 rows after the level-1 ones)."""
    Sigma = st.Sigma
    d = q * lay.r
    gam, thr_sd, thr_acc, cat_K, n_thr = st.gam, st.thr_sd, st.thr_acc, st.cat_K, st.n_thr
    ncat2 = 0
    cat2_start = cat2_k1 = np.zeros(0, np.int64)
    if lay2 is not None:
        cat2_start, cat2_k1 = lay2.cat_start, lay2.cat_k1
    cat2_obs = np.zeros((0, J), np.int64)
    free2 = np.zeros((0, 0), dtype=bool)
    if l2 is not None:
        # working level-2 matrix (J, r2): continuous targets (centred with an intercept), then the
        # K - 1 latent normals of each nominal level-2 target (one set per cluster)
        X2c, Y2codes = _cluster_level(gd, l2)
        nc2 = lay2.n_con
        ncat2 = len(lay2.cat_k1)
        r2, p2 = lay2.r, X2c.shape[1]
        if np.all(np.isnan(Y2codes), axis=0).any():
            raise ValueError("a level-2 target has no observed value in this group; drop it from the model.")
        Y2c = np.zeros((J, r2))
        miss2 = np.zeros((J, r2), dtype=bool)
        miss2[:, :nc2] = np.isnan(Y2codes[:, :nc2])
        mean2 = np.zeros(r2)
        mean2[:nc2] = np.nanmean(Y2codes[:, :nc2], axis=0)
        Y2c[:, :nc2] = np.where(miss2[:, :nc2], mean2[:nc2], Y2codes[:, :nc2])
        cat2_obs = np.full((ncat2, J), -1, np.int64)
        K2 = np.array([len(lv) for lv in lay2.levels], np.int64)
        gam2 = np.full((ncat2, max(K2, default=2) + 1), np.inf)
        gam2[:, 0] = -np.inf
        gam2[:, 1] = 0.0
        for v in range(ncat2):
            codes = Y2codes[:, nc2 + v]
            c0, k1 = lay2.cat_start[v], lay2.cat_k1[v]
            ok = ~np.isnan(codes)
            cat2_obs[v, ok] = np.searchsorted(lay2.levels[v], codes[ok].astype(np.int64))
            if lay2.cat_ord[v]:  # ordinal: one latent cut at thresholds (the first at 0)
                K = len(lay2.levels[v])
                cum = np.cumsum(np.bincount(cat2_obs[v, ok], minlength=K))[:-1] / ok.sum()
                z0 = norm.ppf(np.clip(cum, 1e-6, 1 - 1e-6))
                gam2[v, 1:K] = z0 - z0[0]
                mid = np.empty(K)
                mid[0], mid[K - 1] = gam2[v, 1] - 0.5, gam2[v, K - 1] + 0.5
                mid[1:K - 1] = 0.5 * (gam2[v, 1:K - 1] + gam2[v, 2:K])
                Y2c[:, c0] = np.where(ok, mid[np.maximum(cat2_obs[v], 0)], 0.0)
                miss2[:, c0] = ~ok
                continue
            blk = np.where(ok[:, None], -0.5, 0.0) * np.ones((J, k1))
            sel = np.flatnonzero(ok & (cat2_obs[v] < k1))
            blk[sel, cat2_obs[v, sel]] = 0.5
            Y2c[:, c0:c0 + k1] = blk
            miss2[:, c0:c0 + k1] = ~ok[:, None]
        shift2 = mean2 if (l2["x_names"] and l2["x_names"][0] == "(Intercept)") else np.zeros(r2)
        Y2 = np.ascontiguousarray((Y2c - shift2).T)
        X2 = np.ascontiguousarray(X2c.T)
        Lx2 = np.ascontiguousarray(np.linalg.cholesky(X2c.T @ X2c))
        aug = np.zeros((J, d + r2), dtype=bool)
        aug[:, d:] = miss2
        perm2, pat2_start, p2obs, n2obs, p2mis, n2mis = pattern_layout(aug, miss2.any(axis=1))
        n_cells2 = int(miss2.sum())
        beta2 = np.zeros((p2, r2))
        res2 = Y2.T - X2c @ np.linalg.lstsq(X2c, Y2.T, rcond=None)[0]
        v2 = np.maximum(res2.var(axis=0), 1e-3)
        Psi = np.zeros((d + r2, d + r2))
        Psi[:d, :d] = np.kron(np.diag(0.5 * np.diag(Sigma)), np.eye(q))
        Psi[d:, d:] = np.diag(v2)
        if ncat2:
            free2 = np.ones((d + r2, d + r2), dtype=bool)
            for v in range(ncat2):  # latent block: 1 on the diagonal, 0.5 off it (fixed)
                c0, k1 = d + lay2.cat_start[v], lay2.cat_k1[v]
                Psi[c0:c0 + k1, c0:c0 + k1] = 0.5 + 0.5 * np.eye(k1)
                free2[c0:c0 + k1, c0:c0 + k1] = False
    else:
        r2 = p2 = n_cells2 = 0
        X2, Y2, Lx2 = np.zeros((0, J)), np.zeros((0, J)), np.zeros((0, 0))
        perm2, pat2_start = np.zeros(0, np.int64), np.zeros(1, np.int64)
        p2obs = p2mis = np.zeros((0, d), np.int64)
        n2obs = n2mis = np.zeros(0, np.int64)
        beta2 = np.zeros((0, 0))
        shift2 = np.zeros(0)
    du = d + r2
    cat_ord_all = lay.cat_ord
    if ncat2:  # level-2 thresholds in the rows after the level-1 ones
        width = max(gam.shape[1], gam2.shape[1])

        def widen(a, fill):
            return np.hstack([a, np.full((a.shape[0], width - a.shape[1]), fill, a.dtype)])

        gam = np.ascontiguousarray(np.vstack([widen(gam, np.inf), widen(gam2, np.inf)]))
        thr_sd = np.full(gam.shape, 0.05)
        thr_acc = np.zeros(gam.shape, np.int64)
        cat_K = np.concatenate([cat_K, K2])
        cat_ord_all = np.concatenate([lay.cat_ord, lay2.cat_ord])
        n_thr += int(sum(K - 2 for K, o in zip(K2, lay2.cat_ord) if o and K > 2))
    return SimpleNamespace(ncat2=ncat2, cat2_start=cat2_start, cat2_k1=cat2_k1, cat2_obs=cat2_obs,
                           free2=free2, r2=r2, p2=p2, n_cells2=n_cells2, X2=X2, Y2=Y2, Lx2=Lx2, perm2=perm2,
                           pat2_start=pat2_start, p2obs=p2obs, n2obs=n2obs, p2mis=p2mis, n2mis=n2mis,
                           beta2=beta2, shift2=shift2, du=du, gam=gam, thr_sd=thr_sd, thr_acc=thr_acc,
                           cat_K=cat_K, cat_ord_all=cat_ord_all, n_thr=n_thr, Psi=Psi)


def _run_chain(tick, *, gd, lay: _Layout, seed: int, prior: dict, n_burn: int, n_iter: int, m_c: int,
               diag_only: bool, intercept: bool, single: bool, box, l2=None, lay2=None, mode=0):
    X, Z, clus = gd.X, gd.Z, gd.clus
    if single:
        Z = np.zeros((len(X), 0))
        clus = np.zeros(len(X), np.int64)
    N, p = X.shape
    q = Z.shape[1]
    r = lay.r
    J = 1 if single else len(gd.cluster_labels)
    nc = lay.n_con
    ncat = len(lay.cat_k1)
    st = _level1_start(gd, lay, intercept, X)
    Y, miss, shift, cat_local, cat_K, gam, thr_sd, thr_acc, n_thr, beta, Sigma, free = (getattr(st, k) for k in (
        "Y", "miss", "shift", "cat_local", "cat_K", "gam", "thr_sd", "thr_acc", "n_thr", "beta", "Sigma", "free"))
    varying = miss.any(axis=1) | (ncat > 0)
    XtX = np.ascontiguousarray(X.T @ X)
    Lx = np.ascontiguousarray(np.linalg.cholesky(XtX))
    ZtZ, ZtX = cluster_crossproducts(X, Z, clus, J)
    blk = row_blocks(X, Z, Y, clus, J, miss, varying)
    rows, pat_start, pobs, nobs, pmis, nmis = (blk[k] for k in (
        "rows", "pat_start", "pat_obs", "pat_nobs", "pat_mis", "pat_nmis"))
    XtYc, ZtYc, YtYc, XtYi, ZtYi, YtYi = (blk[k] for k in ("XtYc", "ZtYc", "YtYc", "XtYi", "ZtYi", "YtYi"))
    Xi, Zi, Yi, Ci, Seg = blk["Xi"], blk["Zi"], blk["Yi"], blk["Ci"], blk["Seg"]
    cat_obs = np.ascontiguousarray(cat_local[:, rows]) if ncat else np.zeros((0, len(rows)), np.int64)
    # start (see _level1_start): Psi = diag/2
    Psi = np.diag(np.repeat(0.5 * np.diag(Sigma), q)) if q else np.zeros((0, 0))
    if q:  # target-major order of vec(u): index t * q + a
        Psi = np.kron(np.diag(0.5 * np.diag(Sigma)), np.eye(q))
    B = np.zeros((q, r, J))
    pos_of_row = np.full(N, -1, dtype=np.int64)
    pos_of_row[rows] = np.arange(len(rows))
    n_cells = int(sum(nmis[g] * (pat_start[g + 1] - pat_start[g]) for g in range(len(nmis))))
    n_free = int(np.triu(free).sum()) if ncat else 0
    L2 = _level2_start(gd, l2, lay, lay2, st, Psi, q, J)
    (ncat2, cat2_start, cat2_k1, cat2_obs, free2, r2, p2, n_cells2, X2, Y2, Lx2, perm2, pat2_start,
     p2obs, n2obs, p2mis, n2mis, beta2, shift2, du, gam, thr_sd, thr_acc, cat_K, cat_ord_all, n_thr,
     Psi) = (
        getattr(L2, k) for k in ('ncat2', 'cat2_start', 'cat2_k1', 'cat2_obs', 'free2', 'r2', 'p2',
            'n_cells2', 'X2', 'Y2', 'Lx2', 'perm2', 'pat2_start', 'p2obs', 'n2obs', 'p2mis',
            'n2mis', 'beta2', 'shift2', 'du', 'gam', 'thr_sd', 'thr_acc', 'cat_K', 'cat_ord_all',
            'n_thr', 'Psi'))
    n_free2 = int(np.triu(free2).sum()) if ncat2 else 0
    n_norm, n_unif = jomo_draw_counts(J, p, q, r, n_cells, len(rows), int(lay.cat_k1.sum()), n_free,
                                      p2, r2, n_cells2, n_thr, int(cat2_k1.sum()) if ncat2 else 0, n_free2)
    shapes = {"beta": (p, r), "psi": (du, 1 if diag_only else du), "sigma": (r, 1 if diag_only else r),
                  "beta2": (p2, r2)}
    shapes["gam"] = gam.shape
    burn = {k: np.zeros(sh + (n_burn,)) for k, sh in shapes.items()}
    imp = {k: np.zeros(sh + (m_c * n_iter,)) for k, sh in shapes.items()}
    ct, cr, cpos = _missing_cells(gd, l2, pos_of_row)
    draws = np.zeros((len(ct), m_c))
    rng = np.random.default_rng(seed)
    dfs = np.concatenate([J + du - np.arange(du), N - 1 - np.arange(r)]).astype(float)
    nrm_buf = np.empty((1, n_norm))
    unif_buf = np.empty((1, max(n_unif, 1)))
    chi_buf = np.empty((1, du + r))
    accepted = np.zeros(1, np.int64)
    state = (Lx, XtX, ZtZ, ZtX, XtYc, ZtYc, YtYc, Xi, Zi, Ci, Seg, Yi, pat_start, pobs, nobs, pmis, nmis,
             N,
             lay.cat_start, lay.cat_k1, cat_obs, free, float(box[0]), float(box[1]),
             np.ascontiguousarray(prior["Binv"]), np.ascontiguousarray(prior.get("Dinv", np.zeros((0, 0)))),
             beta, Sigma, Psi, B, XtYi, ZtYi, YtYi)

    state2 = (X2, Lx2, Y2, perm2, pat2_start, p2obs, n2obs, p2mis, n2mis, beta2)

    def advance(n, rec0, ch):
        done = 0
        while done < n:
            k = min(SEGMENT, n - done)
            code = jomo_iterate(k, rec0 + done, diag_only, rng, dfs, nrm_buf, unif_buf, chi_buf, *state,
                                ch["beta"], ch["psi"], ch["sigma"], accepted, *state2, ch["beta2"],
                                cat_K, cat_ord_all, gam, thr_sd, thr_acc, ch["gam"],
                                cat2_start, cat2_k1, cat2_obs, free2)
            if code == 10:
                raise RuntimeError("internal error: the pre-drawn random numbers do not match the sampler's "
                                   "layout; please report this with the model formula.")
            if code:
                raise FloatingPointError(
                    f"a covariance matrix lost positive definiteness during sampling (step {code}); rescale the "
                    "variables (e.g. to unit variance) or use a more informative `prior`."
                )
            done += k
            tick(k)
            _tune_thresholds(thr_sd, thr_acc, k, adapt and n_thr)

    adapt = True
    advance(n_burn, 0, burn)
    adapt = False
    for k in range(m_c):
        advance(n_iter, k * n_iter, imp)
        draws[:, k] = _imputed_values(Yi, Y2, ct, cr, cpos, clus, lay, lay2, shift, shift2, gam)
    _restore_intercepts((burn, imp), shift if intercept and nc else None, shift2 if r2 else None)
    n_total = n_burn + m_c * n_iter
    # one categorical target at a level (and enough rows / clusters): exact draws there, no MH
    n_mh = (n_free if ncat > 1 or N - r - 1 <= r - 1 else 0) + (n_free2 if ncat2 > 1 or J - du - 1 <= du - 1 else 0)
    return burn, imp, draws, (ct, cr), (accepted[0] / (n_mh * n_total) if n_mh else np.nan)


def _run_chain_hr(tick, *, gd, lay: _Layout, seed: int, prior: dict, n_burn: int, n_iter: int,
                  m_c: int, diag_only: bool, intercept: bool, mode: int, box, l2=None, lay2=None, **_):
    """One chain with cluster-specific level-1 covariance matrices (random_L1 = "mean" / "full")."""
    X, Z, clus = gd.X, gd.Z, gd.clus
    N, p = X.shape
    q = Z.shape[1]
    r = lay.r
    J = len(gd.cluster_labels)
    nc = lay.n_con
    ncat = len(lay.cat_k1)
    st = _level1_start(gd, lay, intercept, X)
    Y, miss, shift, beta, Sigma, gam = st.Y, st.miss, st.shift, st.beta, st.Sigma, st.gam
    # rows with missing cells or latents: stored by pattern and cluster; the others enter through
    # their per-cluster cross-products
    blk = row_blocks(X, Z, Y, clus, J, miss, miss.any(axis=1) | (ncat > 0))
    rows, pat_start, pobs, nobs, pmis, nmis = (blk[k] for k in (
        "rows", "pat_start", "pat_obs", "pat_nobs", "pat_mis", "pat_nmis"))
    Xi, Zi, Yi, Ci = blk["Xi"], blk["Zi"], blk["Yi"], blk["Ci"]
    comp = blk["comp"]
    XtYc, ZtYc, YtYc = np.zeros((J, p, r)), np.zeros((J, q, r)), np.zeros((J, r, r))
    cluster_rows_crossproducts(np.ascontiguousarray(X[comp].T), np.ascontiguousarray(Z[comp].T),
                               np.ascontiguousarray(Y[comp].T), clus[comp], XtYc, ZtYc, YtYc)
    cat_obs = np.ascontiguousarray(st.cat_local[:, rows]) if ncat else np.zeros((0, len(rows)), np.int64)
    nj = np.bincount(clus, minlength=J).astype(np.float64)
    XtXj = np.empty((J, p, p))  # per-cluster arrays of this sampler are cluster-major
    for k in range(p):  # set-up only (p^2 bincounts)
        for k2 in range(p):
            XtXj[:, k, k2] = np.bincount(clus, weights=X[:, k] * X[:, k2], minlength=J)
    ZtZ, ZtX = (np.ascontiguousarray(np.moveaxis(x, -1, 0)) for x in cluster_crossproducts(X, Z, clus, J))
    a0 = r + 2.0
    SigJ = np.ascontiguousarray(np.repeat(Sigma[None], J, axis=0))
    Lam = Sigma * (a0 - r - 1.0)
    Psi = np.kron(np.diag(0.5 * np.diag(Sigma)), np.eye(q))
    B = np.zeros((q, r, J))
    a_state, a_sd, a_acc = np.array([a0]), np.array([0.3]), np.zeros(1, np.int64)
    mh_acc = np.zeros(1, np.int64)
    free = st.free if ncat else np.zeros((r, r), dtype=bool)
    n_free = int(np.triu(free).sum())
    L2 = _level2_start(gd, l2, lay, lay2, st, Psi, q, J)
    du, gam, r2 = L2.du, L2.gam, L2.r2
    n_free2 = int(np.triu(L2.free2).sum()) if L2.ncat2 else 0
    Ginv = np.linalg.inv(prior["Binv"])
    pos_of_row = np.full(N, -1, np.int64)
    pos_of_row[rows] = np.arange(len(rows))
    ct, cr, cpos = _missing_cells(gd, l2, pos_of_row)
    ns = 1 if diag_only else r
    shapes = {"beta": (p, r), "psi": (du, 1 if diag_only else du), "sigma": ((r if mode == 0 else r * J), ns),
              "gam": gam.shape, "beta2": (L2.p2, r2)}
    burn = {k: np.zeros(sh + (n_burn,)) for k, sh in shapes.items()}
    imp = {k: np.zeros(sh + (m_c * n_iter,)) for k, sh in shapes.items()}
    burn["a"], imp["a"] = np.zeros(n_burn), np.zeros(m_c * n_iter)
    draws = np.zeros((len(ct), m_c))
    rng = np.random.default_rng(seed)
    cat = (lay.cat_start, lay.cat_k1, cat_obs, L2.cat_K, L2.cat_ord_all, gam, L2.thr_sd, L2.thr_acc,
           float(box[0]), float(box[1]), free, mh_acc)
    lev2 = (L2.X2, L2.Lx2, L2.Y2, L2.perm2, L2.pat2_start, L2.p2obs, L2.n2obs, L2.p2mis, L2.n2mis, L2.beta2)

    def advance(n, rec0, ch, adapt):
        done = 0
        while done < n:
            k = min(SEGMENT, n - done)
            code = jomo_hr_iterate(k, rec0 + done, mode,
                                   Xi, Zi, Ci, Yi, pat_start, pobs, nobs, pmis, nmis, nj, XtXj, ZtZ, ZtX,
                                   XtYc, ZtYc, YtYc,
                                   Ginv, np.ascontiguousarray(prior["Dinv"]), float(prior["a"]), beta, SigJ,
                                   L2.Psi, Lam, a_state, a_sd, a_acc, B, ch["beta"], ch["psi"], ch["sigma"],
                                   ch["a"], rng, *cat, ch["gam"], *lev2, ch["beta2"], L2.cat2_start, L2.cat2_k1,
                                   L2.cat2_obs, L2.free2)
            if code:
                raise FloatingPointError(
                    f"a covariance matrix lost positive definiteness during sampling (random_L1, step {code}); "
                    "rescale the variables or use a more informative `prior`."
                )
            if adapt:  # burn-in only: tune the proposals of the degrees of freedom and the thresholds
                rate = a_acc[0] / k
                a_sd[0] *= 0.7 if rate < 0.25 else (1.4 if rate > 0.55 else 1.0)
            _tune_thresholds(L2.thr_sd, L2.thr_acc, k, adapt and L2.n_thr)
            a_acc[0] = 0
            done += k
            tick(k)

    advance(n_burn, 0, burn, True)
    for k in range(m_c):
        advance(n_iter, k * n_iter, imp, False)
        draws[:, k] = _imputed_values(Yi, L2.Y2, ct, cr, cpos, clus, lay, lay2, shift, L2.shift2, gam)
    _restore_intercepts((burn, imp), shift if intercept and nc else None, L2.shift2 if r2 else None)
    n_total = n_burn + m_c * n_iter
    n_mh = (n_free * J if ncat > 1 else 0) + n_free2  # one level-1 categorical target: exact draws of Sigma_j
    return burn, imp, draws, (ct, cr), (mh_acc[0] / (n_mh * n_total) if n_mh else np.nan)


def _missing_cells(gd, l2, pos_of_row):
    """Missing cells (data column, row) of a group: the level-1 targets' (continuous, then
    categorical), then the level-2 targets' (each row of a cluster whose value is missing), with
    the position of each row in the sampler's block."""
    cells = np.argwhere(np.isnan(gd.Y).T)
    ct, cr = cells[:, 0], cells[:, 1]
    if l2 is not None:
        cells2 = np.argwhere(np.isnan(l2["Y"][gd.rows]).T)
        ct = np.concatenate([ct, cells2[:, 0] + gd.Y.shape[1]])
        cr = np.concatenate([cr, cells2[:, 1]])
    return ct, cr, pos_of_row[cr]


def _imputed_values(Yi, Y2, ct, cr, cpos, clus, lay: _Layout, lay2, shift, shift2, gam) -> np.ndarray:
    """The current values of the missing cells: level-1 ones from the stored rows, level-2 ones
    from their cluster's values (categories from the latents, see :func:`_current_values`)."""
    n1 = lay.n_con + len(lay.cat_k1)
    out = np.empty(len(ct))
    sel1 = ct < n1
    out[sel1] = _current_values(Yi, ct[sel1], cpos[sel1], lay, shift, gam)
    if lay2 is not None:
        sel2 = ~sel1
        out[sel2] = _current_values(Y2, ct[sel2] - n1, clus[cr[sel2]], lay2, shift2, gam[len(lay.cat_k1):])
    return out


def _tune_thresholds(thr_sd, thr_acc, k, adapt) -> None:
    """After k iterations: during burn-in (``adapt``) tune the threshold proposals towards an
    acceptance of about 0.45; then reset the acceptance counts."""
    if adapt:
        rate = thr_acc / k
        thr_sd[:] = np.where(rate < 0.3, thr_sd * 0.7, np.where(rate > 0.6, thr_sd * 1.4, thr_sd))
    thr_acc[:] = 0


def _restore_intercepts(chains, shift, shift2) -> None:
    """Targets were centred internally: put the intercept rows of beta (and beta2) back on the
    data's scale (``None``: nothing to restore)."""
    for ch in chains:
        if shift is not None:
            ch["beta"][0] += shift[:, None]
        if shift2 is not None:
            ch["beta2"][0] += shift2[:, None]


def _current_values(Yi, ct, cpos, lay: _Layout, shift, gam) -> np.ndarray:
    """Values of the missing cells: continuous draws, or category codes from the latents."""
    out = np.empty(len(ct))
    nc = lay.n_con
    con = ct < nc
    out[con] = Yi[ct[con], cpos[con]] + shift[ct[con]]
    for v in range(len(lay.cat_k1)):
        sel = np.flatnonzero(ct == nc + v)
        if not len(sel):
            continue
        c0, k1 = lay.cat_start[v], lay.cat_k1[v]
        if lay.cat_ord[v]:  # level = number of thresholds below the latent
            K = len(lay.levels[v])
            local = np.searchsorted(gam[v, 1:K], Yi[c0, cpos[sel]], side="left")
            out[sel] = lay.levels[v][local]
            continue
        lat = Yi[c0:c0 + k1][:, cpos[sel]]
        top = lat.max(axis=0)
        local = np.where(top > 0, lat.argmax(axis=0), k1)
        out[sel] = lay.levels[v][local]
    return out


# ----------------------------------------------------------------------------- public entry point
def jomo_impute(data: Any, formula: str | list | None = None, random_L1: str = "none", m: int = 10, n_burn: int = 5000,
                n_iter: int = 100, seed=None, group: str | None = None, prior: Mapping | None = None,
                keep_chains: str = "full", chains: int = 1, n_threads: int | None = None,
                missing_code=None, progress: bool | None = None, *, type=None,
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
            tasks.append(partial(_run_chain_hr if hr else _run_chain, mode=int(random_L1 == "full"), gd=gd, lay=lay, seed=seeds[g * chains + c], prior=pr,
                                 n_burn=n_burn, n_iter=n_iter, m_c=per_chain[c],
                                 diag_only=keep_chains == "diagonal", intercept=intercept,
                                 single=single, box=box, l2=l2, lay2=lay2))
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
