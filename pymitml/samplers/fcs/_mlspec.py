"""A chained-equations run with several cluster variables (three-level or cross-classified
data), checked once: grouping factors and levels, methods, random terms, predictors.

Every incomplete variable is imputed at its own level (:mod:`pymitml.levels`): a level-1
variable row by row, a variable that is constant within the groups of a factor once per group.
Its model has lme4-style random terms (``"(1|school) + (1 + x|school:class)"``), by default a
random intercept for every factor above its level (nested) or for every factor (a crossed
level-1 variable). The predictor matrix has codes 1 (predictor) and 0 (unused) only: random
slopes come from the random terms and cluster means from ``cluster_means``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..._frame import Codebook
from ...levels import Levels, detect_levels, factor_codes
from ._columns import Column, encode_column
from ._passive import parse_passive
from ._spec import FcsSpec, _codec, _drop_incomplete_predictors, _predictor_matrix, _visit, _where

__all__ = ["ML_METHODS", "MlSpec", "MlTarget", "Term", "parse_random", "prepare_ml"]

#: methods with several cluster variables: name -> kinds accepted (n numeric, b binary,
#: o ordered categories (more than two), c unordered categories (more than two))
ML_METHODS = {
    "ml.lmer": "n",
    "ml.pmm": "nb",
    "ml.bin": "b",
    "ml.polr": "boc",
    "ml.polyreg": "boc",
}
#: the one-cluster methods' counterparts (named in the error for a 2l.* method)
_COUNTERPART = {
    "2l.pan": "ml.lmer",
    "2l.norm": "ml.lmer",
    "2l.lmer": "ml.lmer",
    "2l.pmm": "ml.pmm",
    "2l.bin": "ml.bin",
    "2l.polr": "ml.polr",
    "2l.polyreg": "ml.polyreg",
    "2lonly.norm": "ml.lmer",
    "2lonly.pmm": "ml.pmm",
    "pmm": "ml.pmm",
    "norm": "ml.lmer",
    "logreg": "ml.bin",
    "polr": "ml.polr",
    "polyreg": "ml.polyreg",
}


def _kind(c: Column) -> str:
    if c.binary:
        return "b"
    if c.kind == "categorical":
        return "o" if c.ordered else "c"
    return "n"


def _default(c: Column) -> str:
    return {"b": "ml.bin", "o": "ml.polr", "c": "ml.polyreg", "n": "ml.lmer"}[_kind(c)]


@dataclass
class Term:
    """One random term ``(1 + x | g)``: its grouping factor and slope columns."""

    factor: str
    slopes: list[int]
    intercept: bool = True
    text: str = ""


@dataclass
class MlTarget:
    """How one target is imputed: the factor of its level (None: rows) and its random terms."""

    unit: str | None
    terms: list[Term]


@dataclass
class MlSpec(FcsSpec):
    """An :class:`FcsSpec` with several grouping factors (rows sorted by all of them, outermost
    first). ``codes[f]`` is the group of every sorted row in factor f."""

    levels: Levels | None = None
    codes: dict[str, np.ndarray] = field(default_factory=dict)
    n_groups: dict[str, int] = field(default_factory=dict)
    models: dict[int, MlTarget] = field(default_factory=dict)
    cluster_means: bool = True

    def unit_codes(self, unit: str | None) -> tuple[np.ndarray, int]:
        """(group of every sorted row, number of groups) of a unit (None: every row its own)."""
        if unit is None:
            n = len(self.order)
            return np.arange(n, dtype=np.int64), n
        return self.codes[unit], self.n_groups[unit]


_TERM = re.compile(r"\(([^()|]*)\|([^()|]*)\)")


def parse_random(text: str, target: str, names: list[str]) -> list[tuple[str, list[str], bool]]:
    """``"(1|school) + (1 + x|school:class)"`` -> [(factor, slope columns, intercept), ...]."""
    if not isinstance(text, str):
        raise TypeError(f"`random['{target}']` must be a string of lme4 terms; got {text!r}.")
    rest = _TERM.sub("", text).replace("+", "").strip()
    terms = _TERM.findall(text)
    if rest or not terms:
        raise ValueError(
            f"`random['{target}']` = {text!r} is not a sum of lme4 random terms such as "
            "'(1|school) + (1 + x|school:class)'."
        )
    out = []
    for lhs, g in terms:
        parts = [p.strip() for p in lhs.replace("-", "+-").split("+") if p.strip()]
        intercept = not any(p in ("0", "-1") for p in parts)
        slopes = [p for p in parts if p not in ("0", "1", "-1")]
        unknown = [p for p in slopes if p not in names]
        if unknown:
            raise ValueError(
                f"`random['{target}']`: {unknown} in '({lhs}|{g})' are not columns of the data; "
                "random slopes are column names."
            )
        if not intercept and not slopes:
            raise ValueError(f"`random['{target}']`: the term '({lhs}|{g})' has no effect.")
        out.append((":".join(c.strip() for c in g.split(":")), slopes, intercept))
    return out


def _methods(method: Any, cols: list[Column], skip: set[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for c in cols:
        if c.name in skip or not c.n_missing:
            out[c.name] = ""
        else:
            out[c.name] = _default(c)
    if isinstance(method, str):
        method = {c.name: method for c in cols if c.n_missing and c.name not in skip}
    if method is not None:
        if not isinstance(method, Mapping):
            raise TypeError(
                f"`method` must be a dict {{column: method}} or one string; got {type(method).__name__}."
            )
        unknown = sorted(set(map(str, method)) - {c.name for c in cols} | (set(method) & skip))
        if unknown:
            raise ValueError(
                f"`method` names {unknown}, which are not columns to impute (cluster variables "
                "are never imputed)."
            )
        out.update({str(k): v for k, v in method.items()})
    for c in cols:
        m = out[c.name]
        if not isinstance(m, str):
            raise TypeError(f"the method of '{c.name}' must be a string; got {m!r}.")
        if m == "" or m.strip().startswith("~"):
            continue
        if m not in ML_METHODS:
            alt = _COUNTERPART.get(m)
            hint = (
                f" ({m!r} takes one cluster variable, cluster='class'; its counterpart here is "
                f"{alt!r}, which imputes '{c.name}' at its own level)"
                if alt
                else ""
            )
            raise ValueError(
                f"method {m!r} of '{c.name}' is not available with several cluster variables"
                f"{hint}; use one of {sorted(ML_METHODS)}, '' (not imputed) or a passive "
                "formula."
            )
        kind = _kind(c)
        if kind not in ML_METHODS[m]:
            what = {
                "b": "binary",
                "o": f"ordered categorical with {c.n_categories} categories",
                "c": f"categorical with {c.n_categories} categories",
                "n": "numeric",
            }
            fits = sorted(k for k, v in ML_METHODS.items() if kind in v)
            raise ValueError(
                f"method {m!r} does not fit '{c.name}' ({what[kind]}); use one of {fits}."
            )
    return out


def _ml_predictor_matrix(pred: Any, names: list[str], skip: set[str]) -> np.ndarray:
    if pred is None:
        P = np.ones((len(names), len(names)), dtype=np.int64) - np.eye(len(names), dtype=np.int64)
    else:
        if isinstance(pred, pd.DataFrame):
            pred = pred.replace(-2, 0)
        elif isinstance(pred, np.ndarray):
            pred = np.where(pred == -2, 0, pred)
        P = _predictor_matrix(pred, names, None)
        bad = sorted({int(v) for v in P.ravel() if v not in (0, 1)})
        if bad:
            raise ValueError(
                f"`predictor_matrix` codes {bad} are mice's 2l codes; with several cluster "
                "variables use 1 (predictor) or 0 (unused): random slopes are given by `random` "
                "('(1 + x|class)') and cluster means by `cluster_means`."
            )
    for k, n in enumerate(names):
        if n in skip:
            P[k, :] = 0
            P[:, k] = 0
    return P


def _terms_of(
    spec: MlSpec, t: int, unit: str | None, random: Mapping[str, str], pdf: pd.DataFrame
) -> list[Term]:
    """The random terms of target t (given or default), checked against its level."""
    lv = spec.levels
    assert lv is not None
    names = spec.names
    name = names[t]
    facs = [f.name for f in lv.factors]
    if name in random:
        parsed = parse_random(random[name], name, names)
    elif unit is None:
        parsed = [(f, [], True) for f in facs]
    elif lv.nested:
        parsed = [(f, [], True) for f in facs[: facs.index(unit)]]
    else:
        parsed = []
    unit_codes, n_units = spec.unit_codes(unit)
    out = []
    for g, slopes, icpt in parsed:
        if g not in spec.codes:
            cols = set(g.split(":"))
            allowed = {c for f in lv.factors for c in f.columns}
            if not cols <= allowed:
                raise ValueError(
                    f"random term of '{name}' groups by '{g}', which is not one of the cluster "
                    f"variables {facs} (or an interaction of them, 'a:b')."
                )
            f = factor_codes(pdf, g)
            spec.codes[g] = f.codes[spec.order]
            spec.n_groups[g] = f.n_groups
        gc = spec.codes[g]
        if unit is not None:
            pairs = np.unique(np.column_stack([unit_codes, gc]), axis=0)
            if len(pairs) != n_units or len(np.unique(gc)) == n_units:
                raise ValueError(
                    f"random term '({'1' if icpt else '0'}{''.join(' + ' + s for s in slopes)}"
                    f"|{g})' of '{name}' groups by '{g}', but '{name}' is a '{unit}'-level "
                    f"variable (one value per {unit}): a term at its own level is its "
                    "residual, and one varying within its groups has nothing to model; its "
                    "random terms can group only by factors above its level."
                )
        idx = [names.index(s) for s in slopes]
        for s, k in zip(slopes, idx):
            if k == t or s in {c for f in lv.factors for c in f.columns}:
                raise ValueError(
                    f"random slope '{s}' of '{name}' is the target or a cluster variable; "
                    "slopes are predictors."
                )
        text = f"({'1' if icpt else '0'}{''.join(' + ' + s for s in slopes)}|{g})"
        out.append(Term(g, idx, icpt, text))
    return out


def prepare_ml(
    data: Any,
    *,
    cluster: Sequence[str],
    crossed: bool,
    levels: Mapping[str, Any] | None,
    random: Mapping[str, str] | None,
    method: Any,
    predictor_matrix: Any,
    visit_sequence: Any,
    where: Any,
    cluster_means: bool,
) -> tuple[MlSpec, Codebook]:
    """Check the arguments of a run with several cluster variables; build the spec."""
    codebook, pdf = Codebook.from_data(data)
    names = [str(c) for c in pdf.columns]
    lv = detect_levels(pdf, cluster, crossed=crossed, levels=levels)
    order = np.lexsort([f.codes for f in reversed(lv.factors)]).astype(np.int64)
    skip = {c for f in lv.factors for c in f.columns}
    cols = [encode_column(pdf.iloc[:, k], names[k], k, order) for k in range(len(names))]
    for c in cols:
        c.level = 0 if c.name in skip else lv.number(lv.level_of[c.name])
    P = _ml_predictor_matrix(predictor_matrix, names, skip)
    meths = _methods(method, cols, skip)
    w = _where(where, pdf, names, order)
    if w is None:
        w = np.column_stack([np.isnan(c.values) for c in cols])
    passive = {}
    for k, c in enumerate(cols):
        if w[:, k].any() and not meths[c.name] and c.name not in skip and where is not None:
            raise ValueError(
                f"`where` marks cells of '{c.name}', whose method is ''; give it a method or "
                "clear its column of `where`."
            )
        if meths[c.name].strip().startswith("~"):
            passive[k] = parse_passive(meths[c.name], c.name, names)
    for k, c in enumerate(cols):
        if c.name in skip or (where is None and not meths[c.name]):
            w[:, k] = False  # not imputed: its missing cells stay missing
    inner = lv.factors[-1]
    clus = inner.codes[order]
    start = np.searchsorted(clus, np.arange(inner.n_groups + 1)).astype(np.int64)
    spec = MlSpec(
        cols,
        meths,
        P,
        [],
        w,
        ", ".join(f.name for f in lv.factors),
        clus,
        start,
        order,
        passive,
        levels=lv,
        codes={f.name: f.codes[order] for f in lv.factors},
        n_groups={f.name: f.n_groups for f in lv.factors},
        cluster_means=bool(cluster_means),
    )
    spec.visit = _visit(visit_sequence, cols, meths, w)
    _drop_incomplete_predictors(spec)
    rnd = dict(random or {})
    unknown = sorted(set(map(str, rnd)) - {names[t] for t in spec.visit if t not in passive})
    if unknown:
        raise ValueError(
            f"`random` names {unknown}, which are not imputed variables; give random terms for "
            f"{[names[t] for t in spec.visit if t not in passive]}."
        )
    for t in spec.visit:
        if t in passive:
            continue
        unit = lv.level_of[names[t]]
        spec.models[t] = MlTarget(unit, _terms_of(spec, t, unit, rnd, pdf))
    codebook.targets = [_codec(cols[k]) for k in spec.targets]
    return spec, codebook
