"""Shared steps of the stacked writers: check the input, find the imputed variables, rebuild m = 0."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from .._frame import as_pandas
from ..mitml_list import MitmlList

__all__ = ["check_mlist", "imputed_columns", "varying_cells"]


def check_mlist(mlist: Any, fn: str):
    """``mlist`` must be a MitmlList (an ImputationResult is completed first)."""
    if not isinstance(mlist, MitmlList) and hasattr(mlist, "complete"):
        mlist = mlist.complete()
    if not isinstance(mlist, MitmlList):
        raise TypeError(
            f"{fn} needs a MitmlList (e.g. imp.complete()); got {type(mlist).__name__}. "
            "Wrap a list of DataFrames with pymitml.MitmlList(frames, original=...)."
        )
    orig = mlist.original
    if orig is not None and list(orig.columns) != mlist.columns:
        raise ValueError(
            f"{fn}: `original` has columns {list(orig.columns)} but the data sets have "
            f"{mlist.columns}; give the original the data sets' columns (in their order), or "
            "pass MitmlList(frames, original=None)."
        )
    return mlist


def _missing(df) -> np.ndarray:
    return as_pandas(df).isna().to_numpy()


def _comparable(s) -> np.ndarray:
    """Values of a column as an array where equal cells compare equal (missing: NaN or -1)."""
    import pandas as pd

    if isinstance(s.dtype, pd.CategoricalDtype):
        return s.cat.codes.to_numpy()
    if pd.api.types.is_numeric_dtype(s.dtype) or pd.api.types.is_bool_dtype(s.dtype):
        try:
            return s.to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError):
            pass
    return s.astype(object).to_numpy()


def varying_cells(mlist) -> np.ndarray:
    """Boolean (rows, columns): the cell differs between at least two imputed data sets.

    Every data set is compared with the first, one at a time (a lazy MitmlList never holds
    more than two)."""
    sets = iter(mlist)
    first = as_pandas(next(sets))
    columns = list(first.columns)
    ref = [(_comparable(first[c]), first[c].isna().to_numpy()) for c in columns]
    out = np.zeros(first.shape, dtype=bool)
    del first
    for f in sets:
        f = as_pandas(f)
        for j, c in enumerate(columns):
            a, na = ref[j]
            b = _comparable(f[c])
            nb = f[c].isna().to_numpy()
            with np.errstate(invalid="ignore"):
                out[:, j] |= ~((a == b) | (na & nb))
        del f
    return out


def imputed_columns(mlist, imputed: Sequence[str] | None) -> list[str]:
    """The imputed variables: ``imputed`` when given, else the columns whose missing cells in the
    original are filled in some imputation (or, without the original, whose values differ
    between imputations)."""
    cols = mlist.columns
    if imputed is not None:
        imputed = [imputed] if isinstance(imputed, str) else list(imputed)
        bad = [c for c in imputed if c not in cols]
        if bad:
            raise ValueError(
                f"`imputed` names {bad}, which are not columns of the data; columns are {cols}."
            )
        return [c for c in cols if c in imputed]
    if mlist.original is not None:
        miss0 = _missing(mlist.original)
        filled = np.zeros(len(cols), dtype=bool)
        for f in mlist:
            filled |= (miss0 & ~_missing(f)).any(axis=0)
        return [c for c, k in zip(cols, filled) if k]
    if len(mlist) < 2:
        warnings.warn(
            "with one imputation and no original data the imputed variables cannot be told; "
            "pass `imputed=[...]`.",
            UserWarning,
            stacklevel=3,
        )
        return []
    vary = np.asarray(varying_cells(mlist).any(axis=0))
    return [c for c, k in zip(cols, vary) if k]
