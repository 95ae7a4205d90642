"""Congeniality check: does the analysis model ask for structure the imputation model lacked?

Multiple imputation is unbiased for an analysis only if the imputation model contains the
associations the analysis estimates (Meng 1994; for multilevel data Enders, Mistler & Keller
2016, Grund, Luedtke & Robitzsch 2018). A term of the analysis that the imputation model left
out is imputed as if its effect were zero, so its estimate is biased toward zero. The check
compares an analysis formula (lme4 grammar) with the model of an :class:`ImputationResult`
(pan / jomo joint models, or chained equations with their predictor matrix) and reports:

* the grouping factor differs from the imputation's cluster variable;
* a variable of the analysis is absent from the imputation model;
* an interaction or nonlinear term (``x:w``, ``I(x^2)``) involves an imputed variable (joint
  normal models and the 2l methods impute under linear associations) or, with an imputed
  response, is missing from the imputation model;
* a random slope of an imputed predictor (random-intercept imputation flattens the slope
  variance), or of a complete predictor when the response was imputed without that slope;
* a cluster mean of a variable (a column constant within clusters equal to another column's
  cluster means) that the imputation model lacked (with an imputed response), or that was
  computed before imputation although the variable was imputed.

Nothing is checked when the analysis uses no imputed variable.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .._frame import as_pandas
from ..exceptions import PymitmlWarning
from ..formula import parse_formula, term_variables

__all__ = [
    "CompatibilityIssue",
    "CompatibilityReport",
    "CompatibilityWarning",
    "check_compatibility",
]


class CompatibilityWarning(PymitmlWarning):
    """The analysis model uses a term the imputation model did not include."""


@dataclass(frozen=True)
class CompatibilityIssue:
    """One mismatch: the analysis ``term``, its ``kind`` and an explanation with the fix."""

    term: str
    kind: str
    message: str


@dataclass(frozen=True)
class CompatibilityReport:
    """The issues found (empty: the analysis is compatible as far as the check can see)."""

    analysis: str
    imputation: str
    issues: tuple[CompatibilityIssue, ...]
    imputed: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.issues

    def lines(self) -> list[str]:
        if self.ok:
            return [
                f"Compatibility: the analysis uses only terms the imputation model ({self.imputation}) includes."
            ]
        out = [
            f"Compatibility: {len(self.issues)} term(s) of the analysis the imputation model ({self.imputation}) lacked:"
        ]
        out += [f"  {i.term}: {i.message}" for i in self.issues]
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())

    __repr__ = __str__


# --------------------------------------------------------------------------------------------
# the imputation model, normalised
# --------------------------------------------------------------------------------------------
@dataclass
class _ImpModel:
    kind: str  # "joint" or "fcs"
    label: str
    cluster: str | None
    targets: set[str]
    variables: set[str]
    terms: set[frozenset[str]]  # fixed terms with 2+ variables or functions, by variable set
    term_texts: set[str]
    slopes: set[str]  # complete predictors with random slopes
    pred: pd.DataFrame | None  # FCS predictor matrix


def _terms(rhs: str) -> list[str]:
    import formulaic

    return [str(t) for t in formulaic.Formula(rhs) if str(t) != "1"]


def _norm(term: str) -> str:
    return term.replace(" ", "").replace("**", "^")


def _joint_model(imp: Any) -> _ImpModel:
    forms = imp.formula if isinstance(imp.formula, (list, tuple)) else [imp.formula]
    targets, variables, terms, texts, slopes = set(), set(), set(), set(), set()
    cluster = getattr(imp.settings, "cluster", None) if hasattr(imp, "settings") else None
    for text in forms:
        from ..samplers.pan3 import random_terms  # on use: it loads the numba kernels

        three = random_terms(str(text))  # pan's three-level model: two nested random terms
        f = parse_formula(str(text) if three is None else f"{three.lhs} ~ {three.fixed}")
        if three is not None:
            rand = " + ".join(e for e, _ in three.terms)
            f = replace(f, random=rand, cluster=None)
            variables |= {c for _, g in three.terms for c in g.split(":")}
        targets |= set(f.targets)
        variables |= set(f.variables)
        for t in _terms(f.fixed):
            vs = frozenset(term_variables(t))
            if len(vs) > 1 or "(" in t:
                terms.add(vs)
                texts.add(_norm(t))
        if f.random:
            slopes |= {v for v in term_variables(f.random)}
        cluster = cluster or f.cluster
    if cluster:
        variables.add(cluster)
    return _ImpModel("joint", imp.method, cluster, targets, variables, terms, texts, slopes, None)


def _cluster_columns(imp: Any) -> set[str]:
    """The cluster columns of a run with several cluster variables (empty otherwise): an
    analysis grouping factor made of them (also an interaction) was modelled."""
    lv = (getattr(imp, "extra", None) or {}).get("levels")
    return {c for f in lv.factors for c in f.columns} if lv is not None else set()


def _fcs_model(imp: Any) -> _ImpModel:
    P = imp.predictor_matrix
    methods = imp.methods or {}
    targets = {v for v, m in methods.items() if m}
    cluster = getattr(imp.settings, "cluster", None)
    variables = set(P.index) if P is not None else set(methods)
    return _ImpModel("fcs", "fcs", cluster, targets, variables, set(), set(), set(), P)


@dataclass(frozen=True)
class _Analysis:
    """The parts of an lme4 analysis formula the check reads (several random terms allowed)."""

    targets: tuple[str, ...]
    fixed: str
    random: str | None  # the random terms' expressions joined with " + "
    cluster: str | None  # the first grouping factor
    groups: tuple[str, ...]
    variables: list[str]


def _parse_analysis(text: str) -> _Analysis:
    try:
        from ..lmm._terms import parse_lmer_formula
    except ImportError:  # pragma: no cover - an older lmm
        f = parse_formula(text)
        groups: tuple[str, ...] = (f.cluster,) if f.cluster else ()
        return _Analysis(f.targets, f.fixed, f.random, f.cluster, groups, f.variables)
    f2 = parse_lmer_formula(text)
    groups = tuple(dict.fromkeys(t.name for t in f2.random))
    random = " + ".join(t.expr for t in f2.random) or None
    return _Analysis(
        (f2.response,), f2.fixed, random, groups[0] if groups else None, groups, f2.variables
    )


def _model_of(imp: Any) -> _ImpModel:
    if getattr(imp, "method", None) == "fcs" or getattr(imp, "predictor_matrix", None) is not None:
        return _fcs_model(imp)
    if getattr(imp, "formula", None) is None:
        raise TypeError(
            "`imp` must be an ImputationResult from pm.pan_impute, pm.jomo_impute or "
            f"pm.fcs_impute; got {type(imp).__name__}."
        )
    return _joint_model(imp)


def _pred(model: _ImpModel, target: str, v: str) -> int:
    P = model.pred
    if P is None or target not in P.index or v not in P.columns:
        return 0
    return int(P.loc[target, v])


# --------------------------------------------------------------------------------------------
# cluster means
# --------------------------------------------------------------------------------------------
def _cluster_mean_of(d: pd.DataFrame, v: str, cluster: str, candidates: list[str]) -> str | None:
    """The variable whose cluster means column ``v`` holds, if any."""
    col = d[v]
    if not pd.api.types.is_numeric_dtype(col) or cluster not in d:
        return None
    g = d[cluster]
    if not np.allclose(col.groupby(g).transform("std").fillna(0.0), 0.0, atol=1e-10):
        return None  # not constant within clusters
    for u in candidates:
        if u == v or u not in d or not pd.api.types.is_numeric_dtype(d[u]):
            continue
        if np.allclose(d[u].groupby(g).transform("mean"), col, rtol=1e-8, atol=1e-10):
            return u
    return None


# --------------------------------------------------------------------------------------------
# the check
# --------------------------------------------------------------------------------------------
def check_compatibility(imp: Any, analysis: str, *, warn: bool = True) -> CompatibilityReport:
    """Compare an analysis formula with the imputation model of ``imp``; warn about each term
    the imputation model did not include (see the module docstring for the rules).

    Parameters
    ----------
    imp : an :class:`~pymitml.ImputationResult` (pan, jomo or fcs).
    analysis : the analysis formula in lme4 grammar, e.g. ``"y ~ x * w + (1 + x | g)"``.
    warn : issue a :class:`CompatibilityWarning` per issue (default) besides returning them.

    Returns
    -------
    CompatibilityReport
        ``.issues`` (term, kind, message), ``.ok``; printing lists them.

    Examples
    --------
    >>> imp = pm.pan_impute(df, "y ~ 1 + x + (1 | g)", m=20)  # doctest: +SKIP
    >>> pm.check_compatibility(imp, "y ~ x * w + (1 + x | g)")  # doctest: +SKIP
    """
    if not isinstance(analysis, str):
        raise TypeError(f"`analysis` must be a formula string; got {type(analysis).__name__}.")
    model = _model_of(imp)
    f = _parse_analysis(analysis)
    data = as_pandas(imp.complete(0))
    imputed = {c for c in data.columns if data[c].isna().any()} & (
        model.targets or set(data.columns)
    )
    response = f.targets[0] if f.targets else None
    fixed_terms = _terms(f.fixed)
    used = list(f.variables)
    label = model.label
    issues: list[CompatibilityIssue] = []
    if not imputed & set(used):
        return CompatibilityReport(analysis, label, (), tuple(sorted(imputed)))

    def add(term: str, kind: str, msg: str) -> None:
        issues.append(CompatibilityIssue(term, kind, msg))

    several = _cluster_columns(imp)  # fcs_impute with several cluster variables
    for grp in f.groups:
        if model.cluster and grp != model.cluster and not set(grp.split(":")) <= several:
            add(
                f"| {grp}",
                "grouping factor",
                f"the analysis groups by '{grp}' but the imputation model by "
                f"'{model.cluster}': the variation between levels of '{grp}' was not "
                "modelled; impute with that cluster variable (or a three-level model).",
            )
    y_imp = response in imputed
    complete1 = None
    cm_of: dict[str, str] = {}
    for v in used:
        if v in model.variables or v in f.groups:
            continue
        if complete1 is None:
            complete1 = as_pandas(imp.complete(1))
        u = _cluster_mean_of(
            complete1, v, f.cluster or model.cluster or "", used + sorted(model.variables)
        )
        if u is not None:
            cm_of[v] = u
            continue
        add(
            v,
            "variable",
            f"'{v}' is not in the imputation model: its associations with the imputed "
            f"variables ({', '.join(sorted(imputed & set(used)))}) were imputed as zero; add it "
            "to the imputation model.",
        )
    for v, u in cm_of.items():
        if u in imputed:
            assert complete1 is not None
            c2: pd.DataFrame = (
                as_pandas(imp.complete(2)) if int(getattr(imp, "m", 2)) >= 2 else complete1
            )
            if np.allclose(c2[v], complete1[v]) and not np.allclose(c2[u], complete1[u]):
                add(
                    f"{v} (cluster mean of {u})",
                    "cluster mean",
                    f"'{v}' holds cluster means of '{u}' computed before imputation; recompute it "
                    f"in every imputed data set (implist.within(...), pm.cluster_means).",
                )
        if y_imp:
            has = (
                _pred(model, str(response), u) in (3, 4)
                if model.kind == "fcs"
                else (u in model.targets and response in model.targets)
            )
            if not has:
                add(
                    f"{v} (cluster mean of {u})",
                    "cluster mean",
                    f"the analysis estimates a contextual effect of '{u}' (its cluster mean '{v}'), "
                    f"but '{response}' was imputed without it; "
                    + (
                        f"set predictor_matrix['{response}', '{u}'] = 3 (fixed + cluster mean)."
                        if model.kind == "fcs"
                        else f"add '{v}' as a predictor of the imputation model, or impute '{u}' "
                        "jointly with the response."
                    ),
                )
    for t in fixed_terms:
        vs = set(term_variables(t))
        if len(vs) < 2 and "(" not in t:
            if (
                model.kind == "fcs" and t in used
            ):  # main effects: each imputed variable's predictors
                for target in imputed & (vs | {response}):
                    other = str(response) if target != response else t
                    if other in cm_of or other == target:
                        continue
                    if _pred(model, target, other) == 0:
                        add(
                            t,
                            "predictor",
                            f"'{target}' was imputed without '{other}' as a predictor; set "
                            f"predictor_matrix['{target}', '{other}'] = 1.",
                        )
            continue
        imp_vars = sorted(vs & imputed)
        if imp_vars:
            add(
                t,
                "interaction" if ":" in t else "nonlinear term",
                f"'{t}' involves imputed variable(s) {imp_vars}; {label} imputes under linear "
                "associations, so this effect is biased toward zero. Use substantive-model-"
                "compatible imputation (pm.model_impute) or impute separately by group.",
            )
        elif y_imp and _norm(t) not in model.term_texts:
            add(
                t,
                "interaction" if ":" in t else "nonlinear term",
                f"'{response}' was imputed without the term '{t}'; add it to the imputation model.",
            )
    for a in term_variables(f.random or ""):
        if a in imputed:
            add(
                f"(... {a} | {f.cluster})",
                "random slope",
                f"random slope of imputed variable '{a}': random-intercept imputation does not "
                "preserve slope variation (it is biased toward zero); use pm.model_impute with "
                "this random slope.",
            )
        elif y_imp:
            has = (
                _pred(model, str(response), a) in (2, 4)
                if model.kind == "fcs"
                else a in model.slopes
            )
            if not has:
                add(
                    f"(... {a} | {f.cluster})",
                    "random slope",
                    f"'{response}' was imputed without a random slope of '{a}'; "
                    + (
                        f"set predictor_matrix['{response}', '{a}'] = 2."
                        if model.kind == "fcs"
                        else f"add '{a}' to the random part of the imputation model."
                    ),
                )
    report = CompatibilityReport(analysis, label, tuple(issues), tuple(sorted(imputed)))
    if warn:
        for i in issues:
            warnings.warn(f"{i.term}: {i.message}", CompatibilityWarning, stacklevel=2)
    return report
