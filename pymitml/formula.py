"""Formulas in mitml's and lme4's grammar.

``y1 + y2 ~ 1 + x + I(x^2) + x:z + g + (1 + x | clus)``

* left of ``~``: the targets (imputation) or the response (lmer), raw column names;
* right of ``~``: fixed effects in Wilkinson notation (interactions ``:``/``*``, ``I()``,
  categorical columns with R's treatment contrasts, ``0``/``-1`` drops the intercept), plus at
  most one random-effects term ``(expr | cluster)``; a random slope is *not* added to the fixed
  part automatically (mitml's rule).

The fixed and random parts are turned into design matrices by :mod:`formulaic` (a maintained
Wilkinson-formula library); this module only splits the mitml/lme4 syntax, translates R's
``^`` inside ``I()`` to Python's ``**`` and names the columns the way R does (``(Intercept)``,
``sexmale``, ``I(x^2)``, ``x:z``), so tables line up with mitml's and lme4's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["ModelFormula", "design_matrix", "parse_formula", "term_variables"]

_BAR = re.compile(r"\(([^()|]*(?:\([^()]*\)[^()|]*)*)\|\|?([^()|]+)\)")


@dataclass(frozen=True)
class ModelFormula:
    """A parsed mitml/lme4 formula.

    Attributes
    ----------
    text : the formula as given.
    targets : names on the left of ``~`` (targets, or the response).
    fixed : right-hand side of the fixed part, as a formulaic formula string.
    random : right-hand side of the random part (``"1 + x"``), or None.
    cluster : the grouping column of the random part, or None.
    """

    text: str
    targets: tuple[str, ...]
    fixed: str
    random: str | None
    cluster: str | None

    @property
    def variables(self) -> list[str]:
        """Every data column the formula reads (targets, predictors, cluster), in order."""
        out: list[str] = list(self.targets)
        for part in (self.fixed, self.random):
            if part:
                out += term_variables(part)
        if self.cluster:
            out.append(self.cluster)
        return list(dict.fromkeys(out))  # unique, first occurrence kept


def _r_to_python(expr: str) -> str:
    """R's ``^`` inside ``I(...)`` becomes Python's ``**``; bare ``^`` (crossing) is kept."""

    def fix(m: re.Match) -> str:
        return "I(" + m.group(1).replace("^", "**") + ")"

    return re.sub(r"I\(((?:[^()]|\([^()]*\))*)\)", fix, expr)


def parse_formula(text: str, *, allow_no_lhs: bool = False) -> ModelFormula:
    """Split a mitml/lme4 formula into targets, fixed part, random part and cluster.

    Parameters
    ----------
    text : formula string, e.g. ``"ReadDis + SES ~ 1 + CognAbility + (1|ID)"``.
    allow_no_lhs : accept a one-sided formula ``~ x``.

    Examples
    --------
    >>> f = parse_formula("y1 + y2 ~ 1 + x + (1 + x | g)")
    >>> f.targets, f.fixed, f.random, f.cluster
    (('y1', 'y2'), '1 + x', '1 + x', 'g')
    """
    if not isinstance(text, str):
        raise TypeError(
            f"`formula` must be a string such as 'y ~ 1 + x + (1|g)'; got {type(text).__name__}."
        )
    if text.count("~") != 1:
        raise ValueError(f"`formula` must contain exactly one '~'; got {text!r}.")
    lhs, rhs = (s.strip() for s in text.split("~"))
    if not lhs and not allow_no_lhs:
        raise ValueError(f"`formula` {text!r} names no target on the left of '~'.")
    targets = tuple(t.strip() for t in lhs.split("+")) if lhs else ()
    for t in targets:
        if not re.fullmatch(r"[A-Za-z_.][\w.]*|`[^`]+`", t):
            raise ValueError(
                f"left-hand side of `formula` must list raw column names joined by '+'; got {t!r} in {text!r}."
            )
    targets = tuple(t.strip("`") for t in targets)
    bars = list(_BAR.finditer(rhs))
    if len(bars) > 1:
        raise ValueError(
            f"`formula` {text!r} has {len(bars)} random-effects terms; pymitml supports one "
            "'(expr | cluster)' term for one grouping factor (two-level models)."
        )
    random = cluster = None
    if bars:
        m = bars[0]
        random = m.group(1).strip() or "1"
        cluster = m.group(2).strip().strip("`")
        if not re.fullmatch(r"[A-Za-z_.][\w.]*", cluster):
            raise ValueError(
                f"cluster in '({m.group(1)}|{m.group(2)})' must be one column name; got {cluster!r}."
            )
        if "||" in m.group(0):
            raise ValueError("uncorrelated random effects '||' are not supported; use '|'.")
        rhs = (rhs[: m.start()] + rhs[m.end() :]).strip()
        rhs = re.sub(r"^\s*\+|\+\s*$", "", re.sub(r"\+\s*\+", "+", rhs)).strip()
    if not rhs:
        rhs = "1"
    if "|" in rhs:
        raise ValueError(
            f"could not read the random-effects term in {text!r}; write it as '(1 + x | cluster)'."
        )
    return ModelFormula(
        text=text,
        targets=targets,
        fixed=_r_to_python(rhs),
        random=None if random is None else _r_to_python(random),
        cluster=cluster,
    )


_NAME = re.compile(r"[A-Za-z_.][\w.]*")
_FUNCS = {"I", "C", "np", "log", "exp", "sqrt", "abs", "center", "scale", "poly", "bs", "Q"}


def term_variables(rhs: str) -> list[str]:
    """Column names an rhs expression reads (best effort over identifiers that are not functions)."""
    out = []
    for m in _NAME.finditer(rhs):
        name = m.group(0)
        after = rhs[m.end() :].lstrip()
        if after.startswith("(") or name in _FUNCS or re.fullmatch(r"\d.*", name):
            continue
        if name.startswith("np.") or name in ("T",):
            continue
        out.append(name)
    return list(dict.fromkeys(out))  # unique, first occurrence kept


def _r_name(name: str) -> str:
    """formulaic column name -> R's model.matrix name."""
    if name == "Intercept":
        return "(Intercept)"
    parts = []
    for p in name.split(":"):
        p = re.sub(r"^C\(([^,()]+)[^)]*\)", r"\1", p)
        p = re.sub(r"\[T\.(.*)\]$", r"\1", p)
        p = re.sub(r"\[(.*)\]$", r"\1", p)
        if p.startswith("I("):
            p = "I(" + p[2:-1].replace(" ** ", "^").replace("**", "^").replace(" ", "") + ")"
        parts.append(p)
    return ":".join(parts)


def _logicals_as_factors(rhs: str, data: pd.DataFrame) -> pd.DataFrame:
    """R treats logicals as factors with levels FALSE, TRUE (column name "bTRUE")."""
    used = [v for v in term_variables(rhs) if v in data.columns]
    bools = [v for v in used if pd.api.types.is_bool_dtype(data[v])]
    if bools:
        data = data.copy()
        for v in bools:
            data[v] = pd.Categorical(
                np.where(data[v].to_numpy(dtype=bool), "TRUE", "FALSE"),
                categories=["FALSE", "TRUE"],
            )
    return data


def _as_array(mm: Any, rhs: str, n: int) -> tuple[np.ndarray, list[str]]:
    names = [_r_name(c) for c in mm.columns]
    x = np.ascontiguousarray(mm.to_numpy(dtype=np.float64))
    if x.shape[0] != n:
        raise ValueError(f"design matrix for '{rhs}' has {x.shape[0]} rows but the data have {n}.")
    return x, names


def design_matrix_spec(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str], Any]:
    """:func:`design_matrix` plus formulaic's model spec, to build the same columns on new data."""
    import formulaic

    data = _logicals_as_factors(rhs, data)
    try:
        mm = formulaic.model_matrix(rhs, data, na_action="ignore", output="pandas")
    except Exception as exc:  # formulaic's messages are long; keep the essence
        missing = [v for v in term_variables(rhs) if v not in data.columns]
        if missing:
            raise ValueError(
                f"formula term(s) {missing} not found in the data; columns are {list(data.columns)}."
            ) from None
        raise ValueError(f"could not build the design matrix for '{rhs}': {exc}") from None
    x, names = _as_array(mm, rhs, len(data))
    return x, names, mm.model_spec


def design_matrix_from_spec(
    spec: Any, rhs: str, data: pd.DataFrame
) -> tuple[np.ndarray, list[str]]:
    """The columns of a model spec (from :func:`design_matrix_spec`) evaluated on ``data``."""
    data = _logicals_as_factors(rhs, data)
    try:
        mm = spec.get_model_matrix(data, na_action="ignore", output="pandas")
    except Exception as exc:
        missing = [v for v in term_variables(rhs) if v not in data.columns]
        if missing:
            raise ValueError(
                f"`newdata` lacks the column(s) {missing} that '{rhs}' needs."
            ) from None
        raise ValueError(
            f"could not build the design matrix of '{rhs}' on `newdata`: {exc}"
        ) from None
    return _as_array(mm, rhs, len(data))


def design_matrix(rhs: str, data: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Dense float64 design matrix (C-contiguous) of ``rhs`` on ``data`` with R's column names.

    Categorical (pandas Categorical, object, bool) columns get R's treatment contrasts with the
    first level as reference. Rows are not dropped: missing predictor values are an error here,
    reported by the caller that knows which argument they came from.
    """
    x, names, _ = design_matrix_spec(rhs, data)
    return x, names
