"""jomo_impute's model set-up: targets classified (continuous / categorical, ordered or not),
category codes, the level-2 part of the formula, mitml's ``type`` codes, priors and the working
column layout of a group."""

from __future__ import annotations

import builtins
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._frame import (
    Codebook,
    ColumnCodec,
    check_columns,
    check_scale,
    check_values,
    codes_by_column,
)
from .._model import formula_from_type, prepare_model
from ..formula import parse_formula, term_variables
from ._prior import check_prior

#: latent_bounds="jomo": jomo's rejection sampler keeps only latent draws inside (-3, 4)
JOMO_LATENT_BOUNDS = (-3.0, 4.0)


def _check_latent_bounds(latent_bounds) -> tuple[float, float]:
    """``None`` (exact probit model), ``"jomo"`` or a pair (lo, hi) with lo < 0 < hi."""
    if latent_bounds is None:
        return (-np.inf, np.inf)
    if isinstance(latent_bounds, str):
        if latent_bounds == "jomo":
            return JOMO_LATENT_BOUNDS
        raise ValueError(
            f"`latent_bounds` must be None, 'jomo' or a pair (lo, hi); got {latent_bounds!r}."
        )
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
    return (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(s)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
    )


def _categories(s: pd.Series, name: str) -> tuple[list, bool]:
    """All levels of a categorical target (in the column's order) and whether it is ordered."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.dtype.categories), bool(s.dtype.ordered)
    vals = s.dropna()
    if pd.api.types.is_bool_dtype(s) or (
        len(vals) and all(isinstance(v, (bool, np.bool_)) for v in vals)
    ):
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
        codes_ = codes_by_column(missing_code, [name]).get(name, [])
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
            raise ValueError(
                f"target '{name}' has value(s) {sorted(set(map(str, bad)))[:5]} outside "
                f"its levels {cats}."
            )
        return c
    c[c < 0] = np.nan
    return c


@dataclass
class _Target:
    name: str
    kind: str  # "continuous" | "categorical"
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
    return (
        [x for x in targets if x.kind == "continuous"]
        + [x for x in targets if x.kind == "categorical"],
        codes,
    )


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
    f2 = None if level2 is None else parse_formula(level2)
    model_cols = [*f.targets, *term_variables(f.fixed)]
    model_cols += term_variables(f.random) if f.random else []
    if f2 is not None:
        model_cols += [*f2.targets, *term_variables(f2.fixed)]
    extra = [c for c in (f.cluster, group) if c is not None]
    codebook, pdf = Codebook.from_data(data, missing_code, model_cols + extra, check=False)
    check_values(pdf, model_cols)  # before the targets are classified (text mixed with numbers)
    check_columns(pdf, f.targets, "target(s)")
    order, codes = _classify_targets(pdf, f.targets, missing_code)
    continuous = [x.name for x in order if x.kind == "continuous"]
    if f2 is not None:
        continuous += [t for t in f2.targets if t in pdf.columns and not _is_categorical(pdf[t])]
    check_scale(pdf, continuous, "jomo_impute", stacklevel=4)
    work = pdf.copy()
    for t, c in codes.items():
        work[t] = c
    rhs = f.text.split("~", 1)[1]
    ftext = (
        " + ".join(f"`{x.name}`" if not x.name.isidentifier() else x.name for x in order)
        + " ~ "
        + rhs
    )
    spec, _ = prepare_model(
        work,
        ftext,
        None,
        group,
        None,
        require_cluster=False,
        method="jomo_impute",
        check_data=False,
    )
    spec.formula = f.text
    l2 = None if level2 is None else _prepare_level2(pdf, level2, f, spec, missing_code)
    codebook.targets = [
        ColumnCodec(x.name)
        if x.kind == "continuous"
        else ColumnCodec(x.name, "categorical", categories=x.categories, ordered=x.ordered)
        for x in order + ([] if l2 is None else l2["order"])
    ]
    return spec, codebook, order, l2


def _prepare_level2(pdf: pd.DataFrame, text: str, f1, spec, missing_code=None) -> dict:
    """Level-2 targets (constant within clusters) and predictors (cluster means of level-1 ones)."""
    f2 = parse_formula(text)
    if f1.cluster is None:
        raise ValueError(
            "level-2 targets need a cluster term in the level-1 formula, e.g. '(1|id)'."
        )
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
            raise ValueError(
                f"level-2 predictor '{v}' has missing values; predictors must be complete."
            )
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
            f"replaced with cluster means ({', '.join(replaced)}).",
            UserWarning,
            stacklevel=4,
        )
    X2_all, x2_names = design_matrix(f2.fixed, work)
    Y2_all = np.column_stack([values[x.name] for x in order2])
    cols = list(pdf.columns)
    return {
        "formula": text,
        "targets": [x.name for x in order2],
        "order": order2,
        "x_names": x2_names,
        "X": X2_all,
        "Y": Y2_all,
        "positions": [cols.index(x.name) for x in order2],
    }


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
        raise TypeError(
            "`type` must be a mapping {column: code} with mitml's codes 1, 2, 3, -1, -2, 0, "
            f"or a list of two such mappings; got {builtins.type(type).__name__}."
        )
    formula, tgroup = formula_from_type(t1)
    if t2 is not None:
        bad = {k: v for k, v in t2.items() if v not in (1, 2, 3, -1, -2, 0)}
        if bad:
            raise ValueError(f"level-2 `type` codes must be among 1, 2, 3, -1, -2, 0; got {bad}.")
        y2 = [k for k, v in t2.items() if v == 1]
        if not y2:
            raise ValueError(
                "the level-2 `type` names no target (code 1); drop it or mark a level-2 "
                "target with 1."
            )
        g2 = [k for k, v in t2.items() if v == -1]
        if tgroup is None and g2:  # as mitml: the level-2 codes may name the group
            tgroup = g2[0]
        formula = [
            formula,
            " + ".join(y2) + " ~ " + " + ".join(["1"] + [k for k, v in t2.items() if v in (2, 3)]),
        ]
    if group is not None and tgroup is not None and group != tgroup:
        raise ValueError(
            f"`group` ({group!r}) and the group column in `type` (code -1: {tgroup!r}) disagree."
        )
    return formula, group or tgroup


def _default_prior(r: int, d: int, hr: bool = False) -> dict:
    out: dict[str, Any] = {"Binv": np.eye(r), "Dinv": np.eye(d)} if d else {"Binv": np.eye(r)}
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
    cat_start: np.ndarray  # first latent column of each categorical target
    cat_k1: np.ndarray  # latent columns (observed levels - 1)
    levels: list  # per categorical target: codes (into its categories) of observed levels
    names: list  # column names
    cat_ord: np.ndarray  # 1 for ordinal targets (one latent, thresholds), else 0

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
