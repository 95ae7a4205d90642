"""Levels of a data set with several cluster variables: which grouping factor each variable
belongs to.

A grouping factor is a cluster column (``"school"``) or an interaction of cluster columns
(``"school:class"``: one group per distinct pair). With nested factors (listed outermost
first, e.g. ``["school", "class"]``) the rows are level 1, the innermost factor level 2 and
each factor further out one level higher; every group of an inner factor must lie inside one
group of the factor before it. With crossed factors (pupils in schools and in neighbourhoods)
no nesting is required and a variable's level is the factor within which it is constant.

A variable *belongs* to the highest level within whose groups its observed values are
constant (and at least one group has two observed rows); otherwise it is a level-1 variable.
:func:`detect_levels` finds this for every column and checks levels the user declares.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._frame import as_pandas, check_columns

__all__ = ["Factor", "Levels", "detect_levels", "factor_codes", "is_constant_within"]


@dataclass(frozen=True)
class Factor:
    """One grouping factor: its name as written, its columns and the group of every row."""

    name: str
    columns: tuple[str, ...]
    codes: np.ndarray = field(repr=False)  # (N,) int64 group codes 0..J-1, data row order
    labels: list = field(repr=False)  # label of each group (tuple for interactions)

    @property
    def n_groups(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Levels:
    """The grouping factors and the level of every other column.

    Attributes
    ----------
    factors : outermost first when nested.
    nested : True for nested factors, False for crossed.
    level_of : column -> name of the factor it belongs to, or None for a level-1 column.
    declared : the columns whose level the user declared (``levels=``).
    """

    factors: tuple[Factor, ...]
    nested: bool
    level_of: dict[str, str | None]
    declared: tuple[str, ...] = ()

    def factor(self, name: str) -> Factor:
        for f in self.factors:
            if f.name == name:
                return f
        raise KeyError(name)

    def number(self, factor: str | None) -> int:
        """The level number of a factor (None: rows = level 1). Nested: innermost = 2, each
        factor further out one more; crossed: every factor is level 2."""
        if factor is None:
            return 1
        if not self.nested:
            return 2
        names = [f.name for f in self.factors]
        return len(names) - names.index(factor) + 1

    def lines(self) -> list[str]:
        """The printed report: the factors and the columns at each level."""
        kind = "nested" if self.nested else "crossed"
        facs = ", ".join(
            f"{f.name} (level {self.number(f.name)}, {f.n_groups} groups)" for f in self.factors
        )
        out = [f"Cluster variables ({kind}): {facs}"]
        order = reversed(self.factors) if self.nested else iter(self.factors)
        for lev in [None] + [f.name for f in order]:
            cols = [c for c, v in self.level_of.items() if v == lev]
            if not cols:
                continue
            where = "level 1" if lev is None else f"level {self.number(lev)} ({lev})"
            star = [f"{c}*" if c in self.declared else c for c in cols]
            out.append(f"  {where}: {' '.join(star)}")
        if self.declared:
            out.append("  (* declared with levels=; the others detected)")
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def _column_values(s: pd.Series) -> np.ndarray:
    """float64 values of a column (NaN missing; categories and strings as codes)."""
    if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
        return s.to_numpy(dtype=np.float64, na_value=np.nan)
    codes, _ = pd.factorize(s, sort=True)
    v = codes.astype(np.float64)
    v[codes < 0] = np.nan
    return v


def factor_codes(data: Any, name: str) -> Factor:
    """The :class:`Factor` of ``name`` (a column, or columns joined by ``":"``)."""
    pdf = as_pandas(data)
    cols = tuple(c.strip() for c in str(name).split(":"))
    if any(not c for c in cols):
        raise ValueError(
            f"cluster variable {name!r} is not a column name or an interaction 'a:b' of columns."
        )
    check_columns(pdf, list(cols), "cluster variable(s)")
    for c in cols:
        s = pdf[c]
        if s.isna().any():
            rows = np.flatnonzero(s.isna().to_numpy())[:5].tolist()
            raise ValueError(
                f"cluster variable '{c}' is missing in {int(s.isna().sum())} row(s) (positions "
                f"{rows}...); every row needs a group: drop or fill those rows first."
            )
    if len(cols) == 1:
        codes, labels = pd.factorize(pdf[cols[0]], sort=True)
        return Factor(":".join(cols), cols, codes.astype(np.int64), list(labels))
    g = pdf.groupby(list(cols), sort=True, observed=True)
    codes = g.ngroup().to_numpy().astype(np.int64)
    return Factor(":".join(cols), cols, codes, list(g.groups.keys()))


def is_constant_within(values: np.ndarray, codes: np.ndarray, n_groups: int) -> np.ndarray:
    """Per group: True when the observed (non-NaN) values of the group are all equal."""
    obs = ~np.isnan(values)
    c, v = codes[obs], values[obs]
    hi = np.full(n_groups, -np.inf)
    lo = np.full(n_groups, np.inf)
    np.maximum.at(hi, c, v)
    np.minimum.at(lo, c, v)
    return ~(np.bincount(c, minlength=n_groups) > 0) | (hi == lo)


def _belongs(values: np.ndarray, f: Factor) -> bool:
    """Constant within every group of f, and some group has two observed rows."""
    obs = ~np.isnan(values)
    if not obs.any() or np.bincount(f.codes[obs], minlength=f.n_groups).max() < 2:
        return False
    return bool(is_constant_within(values, f.codes, f.n_groups).all())


def _check_nested(outer: Factor, inner: Factor) -> None:
    """Every group of ``inner`` inside one group of ``outer``; else a ValueError with the fix."""
    pairs = np.unique(np.column_stack([inner.codes, outer.codes]), axis=0)
    per = np.bincount(pairs[:, 0], minlength=inner.n_groups)
    bad = np.flatnonzero(per > 1)
    if not len(bad):
        return
    j = int(bad[0])
    outs = pairs[pairs[:, 0] == j, 1][:3]
    shown = ", ".join(repr(outer.labels[int(k)]) for k in outs)
    back = np.unique(np.column_stack([outer.codes, inner.codes]), axis=0)
    reverse = bool(np.all(np.bincount(back[:, 0], minlength=outer.n_groups) <= 1))
    hint = (
        f" '{outer.name}' is nested in '{inner.name}', not the other way round: list the "
        f"outermost variable first, cluster=['{inner.name}', '{outer.name}']."
        if reverse
        else ""
    )
    raise ValueError(
        f"cluster variable '{inner.name}' is not nested in '{outer.name}': {inner.name} "
        f"{inner.labels[j]!r} occurs in {int(per[j])} {outer.name} groups ({shown}), and "
        f"{len(bad)} of the {inner.n_groups} {inner.name} ids are shared across "
        f"{outer.name} groups.{hint} If each {outer.name} numbers its {inner.name} groups "
        f"from 1, write the inner factor as '{outer.name}:{inner.name}' (cluster=[..., "
        f"'{outer.name}:{inner.name}'] and '(1|{outer.name}:{inner.name})' in random terms) "
        f"or give the groups unique ids; if the factors are crossed, pass crossed=True."
    )


def _declared_factor(name: str, lev: Any, factors: Sequence[Factor], nested: bool) -> str | None:
    """The factor a ``levels=`` entry names (a factor name or, nested, a level number)."""
    names = [f.name for f in factors]
    if isinstance(lev, (int, np.integer)) and not isinstance(lev, bool):
        n = int(lev)
        if n == 1:
            return None
        if nested and 2 <= n <= len(names) + 1:
            return names[len(names) + 1 - n]
        top = len(names) + 1 if nested else 2
        raise ValueError(
            f"`levels['{name}']` = {n} is not a level of these data (1 .. {top}); give the "
            f"level number or one of the factor names {names}."
        )
    if lev is None or lev in (1, "1"):
        return None
    if isinstance(lev, str) and lev in names:
        return lev
    raise ValueError(
        f"`levels['{name}']` = {lev!r} is not one of the cluster variables {names} (or a "
        "level number, 1 = the rows)."
    )


def _check_declared(name: str, values: np.ndarray, f: Factor, nested: bool, number: int) -> None:
    ok = is_constant_within(values, f.codes, f.n_groups)
    if ok.all():
        return
    j = int(np.flatnonzero(~ok)[0])
    seen = np.unique(values[(f.codes == j) & ~np.isnan(values)])[:2]
    lvl = f"level {number}, " if nested else ""
    raise ValueError(
        f"'{name}' is declared a '{f.name}'-level variable ({lvl}one value per {f.name}) but "
        f"varies within {int((~ok).sum())} of the {f.n_groups} {f.name} groups ({f.name} "
        f"{f.labels[j]!r} has {seen[0]:g} and {seen[1]:g}); declare a lower level for it (or "
        "drop it from `levels` to have it detected), or correct the data."
    )


def detect_levels(
    data: Any,
    cluster: str | Sequence[str],
    *,
    crossed: bool = False,
    levels: Mapping[str, Any] | None = None,
) -> Levels:
    """The grouping factors of ``cluster`` and the level every other column belongs to.

    Parameters
    ----------
    data : pandas or polars DataFrame.
    cluster : cluster variables, outermost first when nested (``["school", "class"]``); an
        entry may be an interaction ``"school:class"`` (one group per pair; use it when every
        school numbers its classes from 1).
    crossed : the factors are crossed (no nesting required); default nested.
    levels : ``{column: factor name or level number}`` to declare a level instead of detecting
        it (1 = the rows). A declared level is checked: the column must be constant within
        that factor's groups. A declaration may place a column lower than detected.

    Returns
    -------
    Levels; ``print`` it for the report.

    Raises
    ------
    ValueError
        nested factors that are not nested (naming the factor and the fix), a declared level
        that the data contradict, unknown columns.

    Examples
    --------
    >>> import pandas as pd, pymitml as pm
    >>> df = pd.DataFrame(
    ...     {
    ...         "school": [1, 1, 1, 1, 2, 2, 2, 2],
    ...         "class": [1, 1, 2, 2, 3, 3, 4, 4],
    ...         "y": [1.0, 2, 3, 4, 5, 6, 7, 8],
    ...         "w": [1.0, 1, 2, 2, 3, 3, 4, 4],
    ...         "z": [0.5, 0.5, 0.5, 0.5, 1, 1, 1, 1],
    ...     }
    ... )
    >>> lv = pm.detect_levels(df, ["school", "class"])
    >>> lv.level_of
    {'y': None, 'w': 'class', 'z': 'school'}
    """
    pdf = as_pandas(data)
    names = [cluster] if isinstance(cluster, str) else list(cluster)
    if not names or not all(isinstance(n, str) for n in names):
        raise TypeError(
            f"`cluster` must be a column name or a list of them (outermost first); got {cluster!r}."
        )
    if len(set(names)) != len(names):
        raise ValueError(f"`cluster` lists a variable twice: {names}.")
    factors = tuple(factor_codes(pdf, n) for n in names)
    nested = not crossed
    if nested:
        for a, b in zip(factors[:-1], factors[1:]):
            _check_nested(a, b)
    cluster_cols = {c for f in factors for c in f.columns}
    others = [str(c) for c in pdf.columns if str(c) not in cluster_cols]
    declared = dict(levels or {})
    unknown = sorted(set(map(str, declared)) - set(others))
    if unknown:
        raise ValueError(
            f"`levels` names {unknown}, which are not columns of the data (or are cluster "
            "variables)."
        )
    lv = Levels(factors, nested, {}, tuple(str(k) for k in declared))
    level_of: dict[str, str | None] = {}
    for c in others:
        v = _column_values(pdf[c])
        if c in declared:
            f_name = _declared_factor(c, declared[c], factors, nested)
            if f_name is not None:
                _check_declared(c, v, lv.factor(f_name), nested, lv.number(f_name))
            level_of[c] = f_name
            continue
        hits = [f for f in factors if _belongs(v, f)]
        if not hits:
            level_of[c] = None
        elif nested:
            level_of[c] = hits[0].name  # outermost first
        else:
            level_of[c] = min(hits, key=lambda f: f.n_groups).name
    return Levels(factors, nested, level_of, lv.declared)
