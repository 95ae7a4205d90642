"""The frame boundary: the only module that knows about pandas and polars.

In: a pandas or polars DataFrame -> validated float64/int arrays plus a :class:`Codebook`.
Out: replacement values for the missing cells -> DataFrames in the user's library, with the
original row order, index, column order, dtypes and categories.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

__all__ = [
    "Codebook",
    "ColumnCodec",
    "as_pandas",
    "check_columns",
    "check_missing_code",
    "check_scale",
    "check_values",
    "codes_by_column",
    "library_of",
]


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


def codes_by_column(code: Any, columns: Sequence[str]) -> dict[str, list]:
    """``missing_code`` as {column: [codes]}: a number or list applies to ``columns`` (the
    model's), a dict names its own columns (any column of the data)."""
    if code is None:
        return {}
    if isinstance(code, Mapping):
        return {k: ([v] if np.isscalar(v) else list(v)) for k, v in code.items()}
    codes = [code] if np.isscalar(code) else list(cast(Sequence[float], code))
    return {c: codes for c in columns}


def check_missing_code(code: Any, df: pd.DataFrame) -> None:
    """``missing_code``: None, a number, a list of numbers, or {column: number or list}."""
    if code is None:
        return
    if isinstance(code, Mapping):
        check_columns(df, [str(k) for k in code], "`missing_code` column(s)")
        values = [v for x in code.values() for v in ([x] if np.isscalar(x) else list(x))]
    elif isinstance(code, str) or not (np.isscalar(code) or isinstance(code, (list, tuple))):
        values = [code]
    else:
        values = [code] if np.isscalar(code) else list(cast(Sequence[Any], code))
    bad = [
        v
        for v in values
        if isinstance(v, (bool, np.bool_, str))
        or not isinstance(v, (int, float, np.number))
        or not np.isfinite(v)
    ]
    if bad or not values:
        raise ValueError(
            f"`missing_code` must be a finite number (e.g. -99), a list of numbers, or a dict "
            f"{{column: number or list}}; got {code!r}."
        )


def replace_missing_code(
    df: pd.DataFrame, code: Any, columns: Sequence[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Copy of ``df`` where ``code`` (e.g. -99, as in Blimp/HLM files) in ``columns`` is NaN,
    and the converted cells as {column: boolean row mask} (only columns with a converted cell).

    ``code`` is a number or a list (applied to ``columns``) or a dict {column: number or list}
    (applied to the columns it names). Only numeric, non-boolean columns hold codes.
    """
    per_col = codes_by_column(code, columns)
    if not per_col:
        return df, {}
    out = df.copy()
    masks: dict[str, np.ndarray] = {}
    for c, codes in per_col.items():
        s = out[c]
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            mask = s.isin(codes).to_numpy(dtype=bool, na_value=False)
            if mask.any():
                masks[c] = mask
                if pd.api.types.is_integer_dtype(s) and not isinstance(
                    s.dtype, pd.api.extensions.ExtensionDtype
                ):
                    s = s.astype(np.float64)
                out[c] = s.mask(mask)
    return out, masks


def _missing_code_warning(code: Any, masks: dict[str, np.ndarray]) -> None:
    if not masks:
        return
    from .exceptions import MissingCodeWarning

    counts = ", ".join(f"'{c}' {int(m.sum())}" for c, m in masks.items())
    total = sum(int(m.sum()) for m in masks.values())
    warnings.warn(
        f"`missing_code` {code!r}: {total} cell(s) set to missing ({counts}); the counts are in "
        "`.codebook.missing_code_cells`. If some of them are real values, use a code no "
        "observed value takes.",
        MissingCodeWarning,
        stacklevel=5,
    )


def _rows_text(bad: np.ndarray, index: pd.Index) -> str:
    """'row positions [3, 8]' (and the index labels when they differ), at most five shown."""
    more = "..." if bad.size > 5 else ""
    text = f"row positions {bad[:5].tolist()}{more}"
    labels = index[bad[:5]].tolist()
    if labels != bad[:5].tolist():
        text += f", index labels {labels}{more}"
    return text


def check_values(df: pd.DataFrame, columns: Sequence[str]) -> None:
    """Values a sampler cannot model, as errors naming the column, the rows or values and the fix:

    - infinite numbers (inf, -inf): they are not missing values and no model can hold them;
    - object columns mixing text and numbers (e.g. 'a', 1, 2.5), usually a data-entry problem
      (a TypeError).
    """
    for c in dict.fromkeys(columns):
        if c not in df.columns:
            continue
        s = df[c]
        if isinstance(s.dtype, pd.CategoricalDtype):
            continue
        if pd.api.types.is_object_dtype(s):
            kind = pd.api.types.infer_dtype(s, skipna=True)
            if kind in ("mixed", "mixed-integer"):
                vals = s.dropna()
                is_num = vals.map(
                    lambda v: (
                        isinstance(v, (int, float, np.number))
                        and not isinstance(v, (bool, np.bool_))
                    )
                ).to_numpy(dtype=bool)
                is_txt = vals.map(lambda v: isinstance(v, str)).to_numpy(dtype=bool)
                if is_num.any() and is_txt.any():
                    txt = list(dict.fromkeys(vals[is_txt].tolist()))[:3]
                    num = [float(f"{v:.6g}") for v in dict.fromkeys(vals[is_num].tolist())][:3]
                    raise TypeError(
                        f"column '{c}' mixes text and numbers ({int(is_txt.sum())} text value(s) "
                        f"such as {txt}, {int(is_num.sum())} number(s) such as {num}); give it one "
                        f"type: pd.to_numeric(df['{c}'], errors='coerce') keeps the numbers (text "
                        f"becomes missing), df['{c}'].astype(str) makes every value a category."
                    )
            continue
        if pd.api.types.is_numeric_dtype(s) and not pd.api.types.is_bool_dtype(s):
            vals = s.to_numpy(dtype=np.float64, na_value=np.nan)
            bad = np.flatnonzero(np.isinf(vals))
            if bad.size:
                raise ValueError(
                    f"column '{c}' has {bad.size} infinite value(s) (inf/-inf) at "
                    f"{_rows_text(bad, df.index)}; infinite is not missing (only NaN/null is): "
                    "correct them, or set them to missing (NaN/null) if they stand for unknown "
                    "values."
                )


#: observed standard deviations outside [SCALE_LOW, SCALE_HIGH] get a :class:`ScaleWarning`
SCALE_LOW, SCALE_HIGH = 1e-6, 1e6


def check_scale(
    df: pd.DataFrame, columns: Sequence[str], method: str | None = None, stacklevel: int = 5
) -> None:
    """A ScaleWarning for each numeric column whose observed SD is below 1e-6 or above 1e6.

    The samplers' default priors (identity scale matrices, as in pan, jomo and mice) and their
    start values assume variables on a scale near 1: on a tiny scale the prior dominates the
    imputed spread, on a huge one the cross-products lose precision.
    """
    from .exceptions import ScaleWarning

    for c in dict.fromkeys(columns):
        s = df[c]
        if not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s):
            continue
        v = s.to_numpy(dtype=np.float64, na_value=np.nan)
        obs = v[np.isfinite(v)]
        if obs.size < 2:
            continue
        sd = float(np.std(obs, ddof=1))
        if SCALE_LOW <= sd <= SCALE_HIGH:
            continue
        who = f"{method}: " if method else ""
        if sd == 0.0:
            what = "is constant where observed (SD 0): its imputed values come from the prior alone"
        elif sd < SCALE_LOW:
            what = (
                f"has a tiny standard deviation ({sd:.3g}); the default prior assumes a scale near "
                "1, so it would dominate the imputed spread"
            )
        else:
            what = (
                f"has a huge standard deviation ({sd:.3g}); the default prior and start values "
                "assume a scale near 1 and the cross-products lose precision"
            )
        fix = " or give an explicit `prior` on its scale" if method in PRIOR_METHODS else ""
        warnings.warn(
            f"{who}target '{c}' {what}. Standardise it (subtract the mean, divide by the SD, "
            f"transform the imputations back){fix}.",
            ScaleWarning,
            stacklevel=stacklevel,
        )


#: the samplers whose prior the user can set (``prior=``)
PRIOR_METHODS = ("pan_impute", "jomo_impute")


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


#: pandas >= 3 always copies on write: a shallow copy of a frame can never change the original
_COPY_ON_WRITE = int(pd.__version__.split(".")[0]) >= 3


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
    #: cells ``missing_code`` turned into missing values, per column (only columns with any)
    missing_code_cells: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_data(
        cls,
        data: Any,
        missing_code=None,
        columns: Sequence[str] | None = None,
        *,
        targets: Sequence[str] | None = None,
        method: str | None = None,
        check: bool = True,
        checked: Sequence[str] | None = None,
    ) -> tuple[Codebook, pd.DataFrame]:
        """Codebook and pandas working copy (missing codes replaced) of ``data``, checked.

        ``columns`` are the model's columns (default: all): ``missing_code`` (a number or list)
        applies to them only, unless it is a dict naming its columns. With ``check``, they are
        checked for infinite values and text mixed with numbers (:func:`check_values`; only the
        ``checked`` ones when given, e.g. not the cluster id), and the continuous ``targets``
        (default: the numeric ``columns`` with missing cells) for their scale
        (:func:`check_scale`).
        """
        lib = library_of(data)
        pdf = as_pandas(data)
        if columns is None:
            cols = list(pdf.columns)
        else:
            cols = [c for c in dict.fromkeys(columns) if c in pdf.columns]
        check_missing_code(missing_code, pdf)
        pdf, masks = replace_missing_code(pdf, missing_code, cols)
        if check:
            check_values(pdf, cols if checked is None else checked)
            if targets is None:
                scaled = [c for c in cols if pdf[c].isna().any()]
            else:
                scaled = [c for c in dict.fromkeys(targets) if c in pdf.columns]
            check_scale(pdf, scaled, method)
        _missing_code_warning(missing_code, masks)
        if lib == "polars" and masks:
            import polars as pl

            native = data.with_columns(
                [
                    pl.when(pl.Series(mask)).then(None).otherwise(pl.col(c)).alias(c)
                    for c, mask in masks.items()
                ]
            )
        else:
            native = pdf if lib == "pandas" else data
        book = cls(
            library=lib,
            incomplete=native,
            missing_code_cells={c: int(m.sum()) for c, m in masks.items()},
        )
        return book, pdf

    def complete(self, rows: np.ndarray, cols: np.ndarray, values: np.ndarray) -> Any:
        """One completed data set: ``values[k]`` goes to row position ``rows[k]`` of target ``cols[k]``.

        Observed cells are never touched; every other column is passed through unchanged. With
        pandas' copy-on-write (always on from pandas 3) the columns that are not imputed are
        shared with ``incomplete`` (a write to them copies first), so a data set costs only
        its imputed columns.
        """
        if self.library == "polars":
            return self._complete_polars(rows, cols, values)
        out = self.incomplete.copy(deep=not _COPY_ON_WRITE)
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
