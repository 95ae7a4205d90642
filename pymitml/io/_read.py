"""Shared steps of the readers: a schema from a file's own metadata, and stacked rows -> MitmlList."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import FileFormatError
from ..mitml_list import MitmlList
from ._schema import (
    ColumnSpec,
    Schema,
    _pandas_codec,
    _polars_codec,
    _py,
    decode_block,
    split_sorted,
    to_library,
)

__all__ = ["assemble", "infer_schema", "numeric_objects"]


def numeric_objects(df: pd.DataFrame, types: Mapping[str, str]) -> pd.DataFrame:
    """pyreadstat gives object columns for small integer types with missing values; make them float."""
    fix = {
        c: pd.to_numeric(df[c]).astype(np.float64)
        for c in df.columns
        if df[c].dtype == object and types.get(c, "string") != "string"
    }
    return df.assign(**fix) if fix else df


def infer_schema(
    df: pd.DataFrame,
    columns: Sequence[str],
    value_labels: Mapping[str, Mapping],
    ordered: Sequence[str],
    library: str,
    fmt: str,
) -> Schema:
    """A schema from what the file itself says: a column whose every value has a value label
    becomes categorical (categories = the labels in the order of their values; ``ordered`` lists
    ordinal columns); the others keep the dtype they were read with."""
    specs = []
    for c in columns:
        s = df[c]
        labs = value_labels.get(c)
        cat = None
        if labs:
            keys = sorted(labs)
            texts = [str(labs[k]) for k in keys]
            vals = s.dropna()
            if (
                len(set(texts)) == len(texts)
                and pd.api.types.is_numeric_dtype(vals)
                and bool(
                    np.isin(
                        vals.to_numpy(dtype=np.float64), np.asarray(keys, dtype=np.float64)
                    ).all()
                )
            ):
                cat = (keys, texts)
        if cat is not None:
            keys, texts = cat
            if library == "pandas":
                codec = {
                    "lib": "pandas",
                    "name": "category",
                    "ordered": c in ordered,
                    "categories": texts,
                    "categories_dtype": _pandas_codec(pd.Index(texts).dtype),
                }
            else:
                codec = {"lib": "polars", "name": "Enum", "categories": texts}
            specs.append(ColumnSpec(c, c, codec, None, texts, c in ordered, [_py(k) for k in keys]))
            continue
        if library == "pandas":
            codec = _pandas_codec(s.dtype, s, c)
        else:
            import polars as pl

            codec = _polars_codec(pl.from_pandas(df[[c]]).schema[c], c)
        specs.append(ColumnSpec(c, c, codec))
    return Schema(fmt, library, 0, 0, True, specs)


def assemble(
    df: pd.DataFrame,
    key: str,
    schema: Schema,
    library: str,
    original_key: Any = 0,
    source: tuple[Any, str] | None = None,
) -> Any:
    """MitmlList from stacked plain rows grouped by ``key``; the ``original_key`` block (when the
    schema says the file holds the original data) becomes ``original``. ``source`` = (path,
    format) names the file in errors. Every block must have the same number of rows (and the
    schema's, when it has one): a short block means a truncated or inconsistent file."""
    where = f"cannot read '{source[0]}' as {source[1]}: " if source is not None else ""
    shown = "the imputation number" if key.startswith("\x00") else f"'{key}'"
    keys = df[key].to_numpy()
    if pd.isna(keys).any():
        raise FileFormatError(
            f"{where}the imputation column {shown} has missing values; every row needs an "
            "imputation number."
        )
    blocks = split_sorted(keys)
    sizes = {k: b - a for k, a, b in blocks}
    want = schema.n if schema.n else max(sizes.values(), default=0)
    odd = {k: r for k, r in sizes.items() if r != want}
    if odd:
        k, r = next(iter(odd.items()))
        raise FileFormatError(
            f"{where}the data sets have different numbers of rows ({shown} = {k} has {r}, "
            f"expected {want}); the file is truncated or its blocks are inconsistent."
        )
    n_imp = sum(1 for k in sizes if original_key is None or k != original_key)
    if schema.m and n_imp != schema.m:
        raise FileFormatError(
            f"{where}the file holds {n_imp} imputed data sets but its schema sidecar says "
            f"{schema.m}; the file is truncated or was changed after it was written."
        )
    imps, original = [], None
    for k, a, b in blocks:
        raw = df.iloc[a:b].reset_index(drop=True)
        if original_key is not None and k == original_key:
            if schema.original:
                original = decode_block(raw, schema, is_original=True)
            continue
        imps.append(decode_block(raw, schema))
    if not imps:
        raise FileFormatError(
            f"{where}the file holds no imputed data sets (no {shown} other than {original_key})."
        )
    imps = [to_library(f, library) for f in imps]
    if original is not None:
        original = to_library(original, library)
    return MitmlList(imps, original)
