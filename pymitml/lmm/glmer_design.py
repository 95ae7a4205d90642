"""The response side of a glmer model: R's binomial/Poisson responses, prior weights, offsets.

The fixed- and random-effects designs are lmer's (:func:`._design.build_design`); this module
turns the left-hand side into a numeric response and prior weights as R's ``family$initialize``
does, and reads ``offset(...)`` terms and the ``weights=``/``offset=`` arguments:

* binomial, 0/1 response (numeric, bool, or a factor whose first level is the failure: every
  other level is a success, as R codes factors): y in {0, 1}, weights 1;
* binomial, proportion with ``weights=`` (the numbers of trials): y in [0, 1];
* binomial, ``cbind(successes, failures)``: y = s / (s + f), weights = s + f (times ``weights``);
* Poisson: non-negative counts (non-integer counts warn as R's ``dpois`` does).
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._frame import as_pandas, check_columns
from ..formula import parse_formula
from ._design import LmerDesign, build_design
from ._family import Family
from ._multi_design import MultiDesign, build_multi_design
from ._terms import parse_lmer_formula

__all__ = ["GlmerDesign", "build_glmer_design"]

#: column name of the response handed to lmer's design builder
_RESPONSE = "glmer_response_"
_CBIND = re.compile(r"^\s*cbind\s*\((.*)\)\s*$", re.S)
_OFFSET = re.compile(r"\+?\s*offset\s*\(")
_IDENT = re.compile(r"[A-Za-z_.][\w.]*")


@dataclass(frozen=True, eq=False)
class GlmerDesign:
    """lmer's design plus the GLMM response: y (n,), prior weights (n,), offset (n,)."""

    lmer: LmerDesign | MultiDesign
    formula: str
    response: str
    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    family: Family
    trials: bool


def _split_top(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        cur += ch
    parts.append(cur)
    return [p.strip() for p in parts]


def _take_offsets(rhs: str) -> tuple[str, list[str]]:
    """Remove ``offset(expr)`` terms from a right-hand side; return it and the expressions."""
    exprs: list[str] = []
    while True:
        m = _OFFSET.search(rhs)
        if m is None:
            return rhs, exprs
        depth, k = 1, m.end()
        while k < len(rhs) and depth:
            depth += rhs[k] == "("
            depth -= rhs[k] == ")"
            k += 1
        exprs.append(rhs[m.end() : k - 1])
        rhs = (rhs[: m.start()] + rhs[k:]).strip()
        rhs = re.sub(r"^\s*\+", "", rhs).strip() or "1"


def _several_terms(formula: str, rhs: str) -> bool:
    """True when the random part needs the general design (several terms, a:b, a/b, ||)."""
    terms = parse_lmer_formula(f"{_RESPONSE} ~ {rhs}").random
    return len(terms) > 1 or len(terms[0].groups) > 1 or "||" in rhs


def _variables(expr: str, df: pd.DataFrame, what: str) -> list[str]:
    names = [v for v in dict.fromkeys(_IDENT.findall(expr)) if v in df.columns]
    if not names:
        raise ValueError(f"{what} {expr!r} names no column of `data`.")
    return names


def _evaluate(expr: str, df: pd.DataFrame, what: str) -> np.ndarray:
    expr = expr.strip()
    if expr in df.columns:
        s = df[expr]
    else:
        try:
            s = df.eval(expr)
        except Exception as exc:
            raise ValueError(f"could not evaluate {what} {expr!r} in `data`: {exc}") from None
    return _as_float(s, f"{what} {expr!r}")


def _as_float(s: Any, what: str) -> np.ndarray:
    s = pd.Series(s)
    if pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=float)
    if not pd.api.types.is_numeric_dtype(s):
        raise ValueError(f"{what} must be numeric; got dtype {s.dtype}.")
    return s.to_numpy(dtype=np.float64, na_value=np.nan)


def _factor_response(s: pd.Series, name: str) -> np.ndarray:
    """A two-level factor as R's binomial codes it: the first level is failure (0)."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        levels = list(s.cat.categories)
    else:
        levels = sorted(s.dropna().unique().tolist(), key=str)
    if len(levels) < 2:
        raise ValueError(
            f"response '{name}' has {len(levels)} level(s) {levels}; a binomial response "
            "needs two (the first level is the failure)."
        )
    out = np.where(s.isna(), np.nan, (s != levels[0]).astype(float))
    return out.astype(float)


def _argument_column(value: Any, df: pd.DataFrame, name: str) -> np.ndarray | None:
    if value is None:
        return None
    if isinstance(value, str):
        check_columns(df, [value], f"`{name}`")
        return _as_float(df[value], f"`{name}` column '{value}'")
    arr = np.asarray(value, dtype=float).reshape(-1)
    if arr.shape[0] != len(df):
        raise ValueError(
            f"`{name}` must be a column name or have one value per row of `data` ({len(df)}); "
            f"got {arr.shape[0]} values."
        )
    return arr


def _binomial_response(lhs, df, weights):
    """(y, prior weights, trials?) of a binomial left-hand side."""
    m = _CBIND.match(lhs)
    if m:
        parts = _split_top(m.group(1))
        if len(parts) != 2:
            raise ValueError(
                f"`cbind(...)` on the left of '~' needs two columns (successes, failures); got "
                f"{lhs!r}."
            )
        s = _evaluate(parts[0], df, "successes")
        f = _evaluate(parts[1], df, "failures")
        ok = ~(np.isnan(s) | np.isnan(f))
        if np.any((s[ok] < 0) | (f[ok] < 0)):
            bad = int(np.sum((s[ok] < 0) | (f[ok] < 0)))
            raise ValueError(
                f"response {lhs!r} has negative counts in {bad} row(s) (successes > trials?); "
                "cbind(successes, failures) needs counts >= 0."
            )
        n = s + f
        with np.errstate(invalid="ignore", divide="ignore"):
            y = np.where(n > 0, s / n, 0.0)
        y[~ok] = np.nan
        w = n if weights is None else weights * n
        return y, w, True
    col = df[lhs] if lhs in df.columns else None
    if col is not None and (
        isinstance(col.dtype, pd.CategoricalDtype)
        or col.dtype == object
        or pd.api.types.is_string_dtype(col)
    ):
        y = _factor_response(col, lhs)
    else:
        y = _evaluate(lhs, df, "response")
    ok = ~np.isnan(y)
    if np.any((y[ok] < 0) | (y[ok] > 1)):
        lo, hi = float(np.min(y[ok])), float(np.max(y[ok]))
        raise ValueError(
            f"response '{lhs}' must be in [0, 1] for the binomial family (0/1, or a proportion "
            f"with `weights=` the numbers of trials); got values in [{lo:g}, {hi:g}]. For counts "
            "of successes use cbind(successes, failures) on the left of '~'."
        )
    w = np.ones_like(y) if weights is None else weights
    return y, w, weights is not None


def _response(lhs, df, family, weights):
    if family.name == "binomial":
        return _binomial_response(lhs, df, weights)
    if _CBIND.match(lhs):
        raise ValueError(f"cbind(...) responses are for the binomial family; got {lhs!r}.")
    y = _evaluate(lhs, df, "response")
    ok = ~np.isnan(y)
    if np.any(y[ok] < 0):
        raise ValueError(
            f"response '{lhs}' has negative values ({int(np.sum(y[ok] < 0))} row(s)); "
            "negative values are not allowed for the 'poisson' family."
        )
    w = np.ones_like(y) if weights is None else weights
    return y, w, False


def _check_integers(d_y, w, family, lhs, trials):
    if family.name == "poisson":
        bad = d_y[np.abs(d_y - np.rint(d_y)) > 1e-7 * np.maximum(1.0, np.abs(d_y))]
        if bad.size:
            warnings.warn(
                f"non-integer x = {bad[0]:f} in response '{lhs}' ({bad.size} non-integer "
                "count(s)); the Poisson log-likelihood (logLik, AIC) is -Inf there, as in R.",
                UserWarning,
                stacklevel=4,
            )
        return
    k = d_y * w
    if np.any(np.abs(k - np.rint(k)) > 1e-3) or (not trials and np.any((d_y > 0) & (d_y < 1))):
        warnings.warn(
            f"non-integer #successes in a binomial glm! (response '{lhs}')",
            UserWarning,
            stacklevel=4,
        )


def _complete_rows(df, columns, extra, na_action):
    na = df[columns].isna().to_numpy().any(axis=1) if columns else np.zeros(len(df), bool)
    for name, arr in extra.items():
        if arr is not None:
            na |= np.isnan(arr)
    if na.any() and na_action == "fail":
        raise ValueError(
            f"missing values in {int(na.sum())} row(s) of the analysis data (response, "
            "predictors, weights or offset). glmer does not drop rows silently: pass "
            "na_action='omit' to analyse complete cases (lme4's default), or impute first."
        )
    return ~na


def build_glmer_design(
    formula: str, data: Any, family: Family, weights: Any, offset: Any, na_action: str
) -> GlmerDesign:
    """Validate the model and build lmer's design plus the GLMM response (see module doc)."""
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(f"`formula` must be a string with one '~'; got {formula!r}.")
    if na_action not in ("fail", "omit"):
        raise ValueError(f"`na_action` must be 'fail' or 'omit'; got {na_action!r}.")
    lhs, rhs = (s.strip() for s in formula.split("~"))
    rhs, offset_exprs = _take_offsets(rhs)
    several = _several_terms(formula, rhs)
    df = as_pandas(data).reset_index(drop=True)
    if several:
        rhs_vars = [v for v in parse_lmer_formula(f"{_RESPONSE} ~ {rhs}").variables[1:]]
    else:
        rhs_vars = parse_formula(f"{_RESPONSE} ~ {rhs}").variables[1:]
    check_columns(df, rhs_vars, "formula term(s)")
    lhs_vars = _variables(lhs.removeprefix("cbind"), df, "response")
    w_arg = _argument_column(weights, df, "weights")
    o_arg = _argument_column(offset, df, "offset")
    if w_arg is not None and np.any(w_arg[~np.isnan(w_arg)] < 0):
        raise ValueError("`weights` must be non-negative (prior weights or numbers of trials).")
    y, w, trials = _response(lhs, df, family, w_arg)
    bad = np.flatnonzero(np.isinf(y))
    if bad.size:
        raise ValueError(
            f"response '{lhs}' has {bad.size} infinite value(s) (rows {bad[:5].tolist()}); "
            "glmer needs finite data: fix them, or set them to NaN and pass na_action='omit'."
        )
    off = np.zeros(len(df)) if o_arg is None else o_arg
    for expr in offset_exprs:
        off = off + _evaluate(expr, df, "offset")
    keep = _complete_rows(df, rhs_vars + lhs_vars, {"y": y, "w": w, "o": off}, na_action)
    _check_integers(y[keep], w[keep], family, lhs, trials)
    if not keep.any() or np.ptp(y[keep]) == 0.0:
        raise ValueError(
            f"response '{lhs}' is constant (every analysed value is "
            f"{y[keep][0] if keep.any() else 'missing'}); glmer needs a varying response."
        )
    sub = df.loc[keep, rhs_vars].reset_index(drop=True)
    sub[_RESPONSE] = y[keep]
    if several:
        lmer_design: LmerDesign | MultiDesign = build_multi_design(
            f"{_RESPONSE} ~ {rhs}", sub, "fail", check_nobs=False
        )
    else:
        lmer_design = build_design(f"{_RESPONSE} ~ {rhs}", sub, "fail")
    rows = np.flatnonzero(keep)
    lmer_design = _with_rows(lmer_design, rows, formula)
    return GlmerDesign(
        lmer=lmer_design,
        formula=formula,
        response=lhs,
        y=np.ascontiguousarray(y[keep]),
        weights=np.ascontiguousarray(w[keep]),
        offset=np.ascontiguousarray(off[keep]),
        family=family,
        trials=trials,
    )


def _with_rows(design: Any, rows: np.ndarray, formula: str) -> Any:
    from dataclasses import replace

    return replace(design, rows=rows[design.rows])
