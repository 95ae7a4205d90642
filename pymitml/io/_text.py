"""Numeric text tables without a header (Mplus, Blimp): write with a missing flag, read back."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

import numpy as np
import pandas as pd

from ..exceptions import FileFormatError
from ._files import check_source, reading
from ._schema import Schema, kind_of

__all__ = ["check_numeric", "flag_text", "integral_columns", "read_table", "write_table"]


def flag_text(missing: float) -> str:
    """The missing flag as it is written (``-999``, not ``-999.0``)."""
    if (
        isinstance(missing, bool)
        or not isinstance(missing, (int, float, np.integer, np.floating))
        or not np.isfinite(missing)
    ):
        raise TypeError(f"`missing` must be a finite number such as -999; got {missing!r}.")
    f = float(missing)
    return str(int(f)) if f.is_integer() else repr(f)


def check_numeric(schema: Schema, fmt: str) -> None:
    """Text columns cannot go into a numeric-only format: a TypeError naming them and the fix."""
    text = [
        c.name
        for c in schema.columns
        if "string" in {c.kind, *([] if c.orig_dtype is None else [kind_of(c.orig_dtype)])}
    ]
    if text:
        raise TypeError(
            f"columns {text} hold text, but {fmt} data are numeric only. Make them categorical "
            "(df[col].astype('category'); they are then written as integer codes with a code "
            "table) or drop them."
        )


def integral_columns(schema: Schema) -> list[bool]:
    """Columns whose every value is an integer (written without decimals)."""
    out = []
    for c in schema.columns:
        kinds = {c.kind, *([] if c.orig_dtype is None else [kind_of(c.orig_dtype)])}
        out.append(kinds <= {"int", "bool", "category"})
    return out


def write_table(
    path: Path | IO[bytes],
    columns: Sequence[np.ndarray],
    integral: Sequence[bool],
    missing: float,
    sep: str,
    lead: np.ndarray | None = None,
    shown: str | None = None,
) -> None:
    """Write float64 columns (NaN = missing) as text, no header; ``lead`` is an integer first
    column; ``shown`` is the file name used in errors (``path`` may be a temporary file, or an
    open binary file that several calls append to)."""
    import polars as pl

    flag = float(missing)
    cols = []
    if lead is not None:
        cols.append(pl.Series("lead", np.asarray(lead, dtype=np.int64)))
    for j, (v, isint) in enumerate(zip(columns, integral)):
        if np.any(v == flag):
            raise ValueError(
                f"a value in column {j + 1} of '{shown or getattr(path, 'name', path)}' equals the missing flag "
                f"{flag_text(missing)}; choose another `missing` value."
            )
        s = pl.Series(f"c{j}", v, nan_to_null=True)
        cols.append(s.cast(pl.Int64) if isint else s)
    # polars prints floats in their shortest round-trip form, so the text reads back exactly
    pl.DataFrame(cols).write_csv(
        path,
        include_header=False,
        separator=sep,
        null_value=flag_text(missing),
        line_terminator="\n",
    )


def _sep_of(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        line = fh.readline()
    if "," in line:
        return ","
    if "\t" in line:
        return "\t"
    return r"\s+"


def read_table(
    path: Path,
    names: Sequence[str] | None,
    missing: Sequence[float] | None,
    fmt: str = "Mplus/Blimp data",
) -> pd.DataFrame:
    """A headerless comma-, tab- or space-separated numeric table; ``missing`` values become NaN.
    Every problem with the file is a FileFormatError naming it and ``fmt``."""
    check_source(path, fmt, "data file")
    with reading(path, fmt):
        sep = _sep_of(path)
        df = pd.read_csv(
            path,
            sep=sep,
            header=None,
            na_values=[".", "*"],
            keep_default_na=False,
            skipinitialspace=True,
        )
    if names is not None:
        if len(names) != df.shape[1]:
            raise FileFormatError(
                f"cannot read '{path}' as {fmt}: it has {df.shape[1]} columns but "
                f"{len(names)} names were given: {list(names)}."
            )
        df.columns = list(names)
    else:
        df.columns = [f"V{j + 1}" for j in range(df.shape[1])]
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise FileFormatError(
            f"cannot read '{path}' as {fmt}: it has non-numeric values in columns {bad}; "
            "Mplus/Blimp data are numeric."
        )
    if missing:
        flags = np.asarray(list(missing), dtype=np.float64)
        fix = {}
        for c in df.columns:
            v = df[c].to_numpy(dtype=np.float64)
            hit = np.isin(v, flags)
            if hit.any():
                v = v.copy()
                v[hit] = np.nan
                fix[c] = v
        if fix:
            df = df.assign(**fix)
    return df
