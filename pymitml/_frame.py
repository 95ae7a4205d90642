"""The frame boundary: the only module that knows about pandas and polars.

In: a pandas or polars DataFrame -> validated float64/int arrays plus a :class:`Codebook`.
Out: replacement values for the missing cells -> DataFrames in the user's library, with the
original row order, index, column order, dtypes and categories.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

__all__ = ["Codebook", "ColumnCodec", "as_pandas", "check_columns", "library_of"]


def library_of(data: Any) -> str:
    """``"pandas"`` or ``"polars"``; anything else is a TypeError naming the fix."""
    if isinstance(data, pd.DataFrame):
        return "pandas"
    mod = type(data).__module__
    if mod.startswith("polars") and type(data).__name__ == "DataFrame":
        return "polars"
    if mod.startswith("polars") and type(data).__name__ == "LazyFrame":
        raise TypeError("`data` is a polars LazyFrame; call .collect() first.")
    raise TypeError(
        f"`data` must be a pandas or polars DataFrame; got {type(data).__name__}. "
        "Convert it with pandas.DataFrame(...) first."
    )


def as_pandas(data: Any) -> pd.DataFrame:
    """A pandas view of ``data`` (polars is converted; pandas is returned as is)."""
    if library_of(data) == "polars":
        return data.to_pandas(use_pyarrow_extension_array=False)
    return data


def check_columns(df: pd.DataFrame, names: Sequence[str], what: str) -> None:
    """Raise a ValueError naming every column of ``names`` not in ``df``."""
    missing = [n for n in names if n not in df.columns]
    if missing:
        cols = list(df.columns)
        shown = cols if len(cols) <= 30 else cols[:30] + ["..."]
        raise ValueError(f"{what} {missing} not found in the data; available columns: {shown}.")
    dup = [c for c in set(df.columns) if list(df.columns).count(c) > 1]
    if dup:
        raise ValueError(
            f"the data have duplicated column names {sorted(map(str, dup))}; rename them first."
        )


def replace_missing_code(
    df: pd.DataFrame, code: float | Sequence[float] | None, columns: Sequence[str]
) -> pd.DataFrame:
    """Copy of ``df`` where ``code`` (e.g. -99, as in Blimp/HLM files) in ``columns`` is NaN."""
    if code is None:
        return df
    codes = [code] if np.isscalar(code) else list(cast(Sequence[float], code))
    out = df.copy()
    for c in columns:
        s = out[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            mask = s.isin(codes)
            if mask.any():
                if pd.api.types.is_integer_dtype(s) and not isinstance(
                    s.dtype, pd.api.extensions.ExtensionDtype
                ):
                    s = s.astype(np.float64)
                out[c] = s.mask(mask)
    return out


def numeric_values(df: pd.DataFrame, col: str, role: str) -> np.ndarray:
    """float64 copy of a numeric column (missing -> NaN); non-numeric is an error naming ``role``."""
    s = df[col]
    if (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_object_dtype(s)
        or pd.api.types.is_string_dtype(s)
        or pd.api.types.is_bool_dtype(s)
    ):
        raise ValueError(
            f"{role} '{col}' is not numeric (dtype {s.dtype}); pan_impute imputes continuous "
            "variables only: convert it with astype(float), or use jomo_impute for categorical targets."
        )
    if not pd.api.types.is_numeric_dtype(s):
        raise ValueError(f"{role} '{col}' has non-numeric dtype {s.dtype}; convert it to float.")
    return s.to_numpy(dtype=np.float64, na_value=np.nan).copy()


def encode_clusters(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    """Integer codes 0..J-1 (order of first appearance) and the cluster labels, for any id type."""
    s = df[col]
    if s.isna().any():
        rows = np.flatnonzero(s.isna().to_numpy())[:5].tolist()
        raise ValueError(
            f"cluster id '{col}' is missing in {int(s.isna().sum())} row(s) (positions {rows}...); "
            "every row needs a cluster: drop or fill those rows first."
        )
    codes, labels = pd.factorize(s, sort=False)
    return codes.astype(np.int64), np.asarray(labels)


@dataclass
class ColumnCodec:
    """How the numbers a sampler draws for one target column become that column again.

    ``kind`` is ``"continuous"`` (values are written as they are) or ``"categorical"`` (values
    are integer codes 0..K-1 into ``categories``).
    """

    name: str
    kind: str = "continuous"
    categories: list | None = None
    ordered: bool = False

    def decode(self, values: np.ndarray) -> np.ndarray:
        if self.kind == "continuous":
            return values
        cats = np.asarray(self.categories, dtype=object)
        return cats[values.astype(np.int64)]


@dataclass
class Codebook:
    """Everything needed to rebuild completed data sets in the user's own library.

    Attributes
    ----------
    library : ``"pandas"`` or ``"polars"``.
    incomplete : the data as given, with ``missing_code`` cells turned into missing values
        (pandas or polars, like the input).
    targets : ColumnCodec per imputed column.
    """

    library: str
    incomplete: Any
    targets: list[ColumnCodec] = field(default_factory=list)

    @classmethod
    def from_data(
        cls, data: Any, missing_code=None, columns: Sequence[str] | None = None
    ) -> tuple[Codebook, pd.DataFrame]:
        """Codebook and pandas working copy (missing codes replaced) of ``data``."""
        lib = library_of(data)
        pdf = as_pandas(data)
        cols = list(pdf.columns) if columns is None else list(columns)
        pdf = replace_missing_code(pdf, missing_code, cols)
        if lib == "polars" and missing_code is not None:
            import polars as pl

            codes = [missing_code] if np.isscalar(missing_code) else list(missing_code)
            exprs = [
                pl.when(pl.col(c).is_in(codes)).then(None).otherwise(pl.col(c)).alias(c)
                for c in cols
                if data.schema[c].is_numeric()
            ]
            native = data.with_columns(exprs) if exprs else data
        else:
            native = pdf if lib == "pandas" else data
        return cls(library=lib, incomplete=native), pdf

    def complete(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> Any:
        """One completed data set: ``values[k]`` goes to row position ``rows[k]`` of target ``cols[k]``.

        Observed cells are never touched; every other column is passed through unchanged.
        """
        if self.library == "polars":
            return self._complete_polars(rows, cols, values)
        out = self.incomplete.copy()
        for codec, r, v in self._cells(rows, cols, values):
            s = out[codec.name]
            if codec.kind == "continuous":
                dt = s.dtype
                arr = s.to_numpy(dtype=np.float64, na_value=np.nan).copy()
                arr[r] = v
                if isinstance(dt, pd.api.extensions.ExtensionDtype):
                    newdt = dt if pd.api.types.is_float_dtype(dt) else pd.Float64Dtype()
                    out[codec.name] = pd.array(arr, dtype=newdt)
                elif pd.api.types.is_float_dtype(dt):
                    out[codec.name] = arr.astype(dt, copy=False)
                else:
                    out[codec.name] = arr
            else:
                arr = s.to_numpy(dtype=object, copy=True)
                arr[r] = v
                if isinstance(s.dtype, pd.CategoricalDtype):
                    out[codec.name] = pd.Categorical(arr, dtype=s.dtype)
                else:
                    out[codec.name] = pd.Series(arr, index=out.index).astype(s.dtype)
        return out

    def _cells(self, rows, cols, values):
        """(codec, row positions, decoded values) for every target with imputed cells."""
        for j, codec in enumerate(self.targets):
            sel = cols == j
            if sel.any():
                yield codec, rows[sel], codec.decode(values[sel])

    def _complete_polars(self, rows, cols, values):
        import polars as pl

        df = self.incomplete
        new = []
        for codec, r, v in self._cells(rows, cols, values):
            s = df[codec.name]
            if codec.kind == "continuous":
                arr = s.cast(pl.Float64).to_numpy().astype(np.float64, copy=True)
                arr[r] = v
                dt = s.dtype if s.dtype in (pl.Float32, pl.Float64) else pl.Float64
                new.append(pl.Series(codec.name, arr, dtype=pl.Float64).cast(dt))
            else:
                arr = np.asarray(s.to_list(), dtype=object)
                arr[r] = v
                new.append(pl.Series(codec.name, arr.tolist(), dtype=s.dtype))
        return df.with_columns(new) if new else df.clone()
