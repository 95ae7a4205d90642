"""The columns of a chained-equations run: numeric codes, kinds, levels and default methods.

Every column of the data except the cluster id becomes a :class:`Column`: a float64 array (NaN
where missing; categories as codes 0..K-1) over the rows sorted by cluster, its kind
(``"numeric"`` or ``"categorical"``), whether it is constant within clusters (level 2), and
what mice-style method it gets by default.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Column", "default_method", "encode_column", "is_level2"]


@dataclass
class Column:
    """One column of the data as the chained equations see it.

    Attributes
    ----------
    name : column name. position : its position in the data.
    kind : ``"numeric"`` or ``"categorical"``.
    values : (N,) float64 over cluster-sorted rows; NaN missing; categories as codes 0..K-1.
    categories : the categories in code order (categorical only). ordered : ordered factor.
    level : 1, or 2 when the observed values are constant within every cluster.
    """

    name: str
    position: int
    kind: str
    values: np.ndarray = field(repr=False)
    categories: list | None = None
    ordered: bool = False
    level: int = 1

    @property
    def n_categories(self) -> int:
        return len(self.categories) if self.categories is not None else 0

    @property
    def binary(self) -> bool:
        """A two-category variable, or a numeric one whose observed values are all 0 or 1."""
        if self.kind == "categorical":
            return self.n_categories == 2
        obs = self.values[~np.isnan(self.values)]
        return bool(len(obs)) and bool(np.all((obs == 0.0) | (obs == 1.0)))

    @property
    def n_missing(self) -> int:
        return int(np.isnan(self.values).sum())


def encode_column(s: pd.Series, name: str, position: int, order: np.ndarray) -> Column:
    """A :class:`Column` from a pandas column; ``order`` sorts the rows by cluster."""
    if isinstance(s.dtype, pd.CategoricalDtype):
        codes = s.cat.codes.to_numpy().astype(np.float64)
        codes[codes < 0] = np.nan
        return Column(
            name,
            position,
            "categorical",
            codes[order],
            list(s.cat.categories),
            bool(s.cat.ordered),
        )
    if (
        pd.api.types.is_bool_dtype(s)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
    ):
        codes_i, cats = pd.factorize(s, sort=True)
        codes = codes_i.astype(np.float64)
        codes[codes_i < 0] = np.nan
        return Column(name, position, "categorical", codes[order], list(cats), False)
    if not pd.api.types.is_numeric_dtype(s):
        raise ValueError(
            f"column '{name}' has dtype {s.dtype}, which fcs_impute cannot model; convert it to "
            "a number or a category, or drop it."
        )
    vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
    return Column(name, position, "numeric", vals[order].copy())


def is_level2(values: np.ndarray, start: np.ndarray) -> bool:
    """True when the observed values are constant within every cluster and at least one cluster
    has two or more observed rows (rows sorted by cluster, cluster j = ``start[j]:start[j+1]``)."""
    obs = ~np.isnan(values)
    if obs.sum() == 0:
        return False
    clus = np.repeat(np.arange(len(start) - 1), np.diff(start))
    c, v = clus[obs], values[obs]
    J = len(start) - 1
    n = np.bincount(c, minlength=J)
    if n.max() < 2:
        return False
    hi = np.full(J, -np.inf)
    lo = np.full(J, np.inf)
    np.maximum.at(hi, c, v)
    np.minimum.at(lo, c, v)
    has = n > 0
    return bool(np.all(hi[has] == lo[has]))


def default_method(col: Column, clustered: bool) -> str:
    """mice's default method for a column (two-level variants when there is a cluster id).

    numeric level 1: ``2l.pan`` (``pmm`` without a cluster id); binary: ``2l.bin``
    (``logreg``); ordered / unordered categories: ``2l.polr`` / ``2l.polyreg`` (``polr`` /
    ``polyreg``); level 2: ``2lonly.norm`` for numbers, ``2lonly.pmm`` for categories and
    binary numbers; complete columns: ``""``.
    """
    if col.n_missing == 0:
        return ""
    if clustered and col.level == 2:
        return "2lonly.norm" if col.kind == "numeric" and not col.binary else "2lonly.pmm"
    prefix = "2l." if clustered else ""
    if col.binary:
        return "2l.bin" if clustered else "logreg"
    if col.kind == "categorical":
        return prefix + ("polr" if col.ordered else "polyreg")
    return "2l.pan" if clustered else "pmm"
