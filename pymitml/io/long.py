"""The long format: all data sets stacked, with an imputation column (0 = original) and a row id,
as CSV (with a schema sidecar) or parquet (schema inside the file); and back.

Parquet keeps every dtype (Arrow types; each data set's exact dtypes, which stacking may widen,
e.g. int64 next to an original with missing values, are stored in the file's metadata and
restored). CSV holds text: categories are written as their labels and restored, with dtypes,
from ``<file>.schema.json``; without it pandas' type inference applies. In CSV an empty text
value and a missing one look the same and both read back as missing.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from itertools import chain
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._frame import library_of
from .._validation import check_library
from ..exceptions import FileFormatError
from ..mitml_list import MitmlList
from ._files import Staged, as_path, check_new, check_source, digest, reading, sidecar_path
from ._names import LONG, file_names
from ._read import assemble, infer_schema
from ._registry import register_reader, register_writer
from ._schema import (
    _pandas_codec,
    _pandas_dtype,
    build_schema,
    check_digests,
    encode_block,
    read_sidecar,
    split_sorted,
    to_library,
)
from ._stack import check_mlist
from ._text import integral_columns

__all__ = ["read_long", "write_long"]

_META = b"pymitml_long"


def _format_of(path: Path, fmt: str | None) -> str:
    if fmt is None:
        name = path.name.lower()
        if name.endswith((".parquet", ".pq")):
            return "parquet"
        if name.endswith((".csv", ".csv.gz", ".txt")):
            return "csv"
        raise ValueError(
            f"cannot tell the format of '{path.name}' from its extension; name it .csv, .csv.gz "
            "or .parquet, or pass format='csv' / 'parquet'."
        )
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"`format` must be 'csv' or 'parquet'; got {fmt!r}.")
    return fmt


@register_writer("long")
def write_long(
    mlist,
    path,
    *,
    imputation: str = ".imp",
    id: str = ".id",
    include_original: bool = True,
    format: str | None = None,
    rename: Mapping[str, str] | None = None,
    schema: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write all data sets stacked in one CSV or parquet file (mice's and mitml's long format).

    Parameters
    ----------
    mlist : MitmlList (or an ImputationResult, completed first).
    path : ``.csv`` / ``.csv.gz`` or ``.parquet`` file.
    imputation, id : names of the imputation-number column (1..M; 0 = original) and of the row
        id column (1..N), first in the file.
    include_original : write the original data as imputation 0 when it is known (default).
    format : ``"csv"`` or ``"parquet"``; default: from the extension.
    rename : ``{column: name in the file}``.
    schema : CSV only: also write ``<path>.schema.json`` (dtypes, categories) for :func:`read_long`.
    overwrite : replace existing files; by default an existing file is an error and nothing is written.

    Returns
    -------
    list of Path : the files written.

    Examples
    --------
    >>> implist.to_file("imputed.parquet")  # doctest: +SKIP
    >>> pm.read_long("imputed.parquet", library="polars")  # doctest: +SKIP
    """
    mlist = check_mlist(mlist, "write_long")
    path = as_path(path)
    fmt = _format_of(path, format)
    if imputation == id:
        raise ValueError(f"`imputation` and `id` must differ; both are {id!r}.")
    fnames = file_names(mlist.columns, LONG, "error", rename, system=(imputation, id))
    with_orig = bool(include_original) and mlist.original is not None
    paths = [path] + ([sidecar_path(path)] if fmt == "csv" and schema else [])
    check_new(paths, overwrite)
    if fmt == "parquet":
        with Staged(paths) as st:
            _write_parquet(mlist, st[path], fnames, imputation, id, with_orig)
        return paths
    sch = build_schema(mlist, "long-csv", fnames, coding="labels", original=with_orig)
    sch.extra.update(imputation=imputation, id=id)
    with Staged(paths) as st:
        if path.name.lower().endswith(".gz"):
            import gzip

            with gzip.open(st[path], "wb") as fh:
                _write_csv_blocks(fh, mlist, sch, with_orig)
        else:
            with open(st[path], "wb") as fh:
                _write_csv_blocks(fh, mlist, sch, with_orig)
        if schema:
            sch.extra["sha256"] = {path.name: digest(st[path])}
            sch.write(st[sidecar_path(path)])
    return paths


def _write_csv_blocks(fh, mlist, sch, with_orig: bool) -> None:
    """The long CSV, one data set at a time (the header with the first): a lazy MitmlList
    builds, encodes and writes each data set and drops it before the next."""
    ints = list(integral_columns(sch))
    blocks = ((0, mlist.original, True),) if with_orig else ()
    for k, (i, frame, is_orig) in enumerate(
        chain(blocks, ((j, f, False) for j, f in enumerate(mlist, start=1)))
    ):
        block = encode_block(frame, sch, is_original=is_orig)
        _csv_block(block, sch, ints, i).write_csv(
            cast(Any, fh), include_header=k == 0, line_terminator="\n"
        )


def _csv_block(block: dict, sch, ints: list, i: int):
    """One encoded data set as the polars frame written to the CSV (imputation number i)."""
    import polars as pl

    cols = [
        pl.Series(sch.extra["imputation"], np.full(sch.n, i, dtype=np.int64)),
        pl.Series(sch.extra["id"], np.arange(1, sch.n + 1, dtype=np.int64)),
    ]
    for spec, isint in zip(sch.columns, ints):
        v = block[spec.file]
        if v.dtype == object:
            # a list: polars cannot build a String Series from an object array that starts
            # with None
            cols.append(pl.Series(spec.file, v.tolist(), dtype=pl.String))
        else:
            s = pl.Series(spec.file, v, nan_to_null=True)
            cols.append(s.cast(pl.Int64) if isint else s)
    return pl.DataFrame(cols)


def _template(frame) -> dict:
    """The exact dtypes of ``frame``: an empty frame of the same schema as base64 Arrow IPC
    (Arrow keeps no categories of an empty table, so pandas categories are kept as codecs)."""
    if library_of(frame) == "polars":
        return {"ipc": base64.b64encode(frame.clear().write_ipc(None).getvalue()).decode()}
    import pyarrow as pa

    arrow = (
        pa.Table.from_pandas(frame.iloc[:0], preserve_index=False).schema.serialize().to_pybytes()
    )
    cats = {
        c: _pandas_codec(frame[c].dtype)
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
    }
    return {"arrow": base64.b64encode(arrow).decode(), "categories": cats}


def _restore(block, template: dict, library: str):
    if library == "polars":
        import polars as pl

        return block.cast(dict(pl.read_ipc(io.BytesIO(base64.b64decode(template["ipc"]))).schema))
    import pyarrow as pa

    empty = (
        pa.ipc.read_schema(pa.py_buffer(base64.b64decode(template["arrow"])))
        .empty_table()
        .to_pandas()
    )
    want = {c: empty[c].dtype for c in empty.columns}
    want.update({c: _pandas_dtype(codec) for c, codec in template["categories"].items()})
    return block.astype({c: d for c, d in want.items() if block[c].dtype != d})


def _stack(frames: list, first: int, imputation: str, id: str):
    """Frames stacked with the imputation number and row id first; dtypes may widen (int next to
    float with missing values); each block's own dtypes are restored on reading."""
    if library_of(frames[0]) == "polars":
        import polars as pl

        return pl.concat(
            [
                f.select(
                    pl.lit(first + k, dtype=pl.Int64).alias(imputation),
                    pl.int_range(1, f.height + 1, dtype=pl.Int64).alias(id),
                    pl.all(),
                )
                for k, f in enumerate(frames)
            ],
            how="vertical_relaxed",
        )
    parts = []
    for k, f in enumerate(frames):
        p = f.reset_index(drop=True)
        p.insert(0, id, np.arange(1, len(f) + 1, dtype=np.int64))
        p.insert(0, imputation, np.int64(first + k))
        parts.append(p)
    return pd.concat(parts, ignore_index=True)


def _blocks(mlist, with_orig: bool):
    """(imputation number, data set) of every block of the file, built one at a time."""
    if with_orig:
        yield 0, mlist.original
    yield from enumerate(mlist, start=1)


def _witness(frame):
    """A one-row frame holding, per column, its first observed value (missing when it has
    none): witnesses stacked get the dtypes the data sets stacked would get (stacking widens by
    dtype, and pandas also looks at whether a column is all missing)."""
    if library_of(frame) == "polars":
        return frame.head(1)
    cols = {}
    for c in frame.columns:
        s = frame[c]
        cols[c] = s.iloc[[int(np.argmax(s.notna().to_numpy()))]].reset_index(drop=True)
    out = pd.DataFrame(cols)
    out.attrs = frame.attrs  # stacking keeps attrs all blocks share (pyarrow stores them)
    return out


def _block_table(frame, k: int, imputation: str, id: str, dtypes: Any, ren: dict, schema: Any):
    """Data set ``frame`` as imputation ``k`` of the stacked file: an Arrow table of the file's
    schema (its columns cast to the stacked dtypes first, as stacking would)."""
    import pyarrow as pa

    long = _stack([frame], k, imputation, id)
    if library_of(long) == "polars":
        long = long.cast(dtypes)
        if ren:
            long = long.rename(ren)
        return long.to_arrow().cast(schema)
    change = {c: d for c, d in dtypes.items() if long[c].dtype != d}
    if change:
        long = long.astype(change)
    if ren:
        long = long.rename(columns=ren)
    return pa.Table.from_pandas(long, schema=schema, preserve_index=False)


def _write_parquet(mlist, path: Path, fnames, imputation: str, id: str, with_orig: bool) -> None:
    """The long parquet, one data set at a time (memory: one data set and one row group).

    A first pass finds the stacked dtypes and the Arrow schema (from one-row witnesses of the
    data sets); the second builds each data set again, converts it and writes full row groups
    of pyarrow's default size as they fill, so the file is the one ``pq.write_table`` writes
    for the whole stacked table."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq
    from pyarrow._parquet import _DEFAULT_ROW_GROUP_SIZE as group

    ren = {c: n for c, n in fnames.items() if c != n}
    witnesses, template = [], None
    for k, frame in _blocks(mlist, with_orig):
        witnesses.append(_witness(frame))
        if k == 1:
            template = _template(frame)
        del frame
    first = 0 if with_orig else 1
    wit = _stack(witnesses, first, imputation, id)
    pandas = mlist.library == "pandas"
    dtypes = dict(wit.dtypes) if pandas else dict(wit.schema)
    if ren:
        wit = wit.rename(columns=ren) if pandas else wit.rename(ren)
    arrow = pa.Table.from_pandas(wit, preserve_index=False) if pandas else wit.to_arrow()
    schema = arrow.schema.remove_metadata()
    meta = {
        "library": mlist.library,
        "imputation": imputation,
        "id": id,
        "original": with_orig,
        "names": {n: c for c, n in fnames.items()},
        "imputed": template,
        "orig": _template(mlist.original) if with_orig else None,
    }
    md = dict(arrow.schema.metadata or {})
    md[_META] = json.dumps(meta).encode()
    pending: list[Any] = []
    rows = 0
    # page checksums let the reader tell a corrupted file from a good one
    with pq.ParquetWriter(path, schema.with_metadata(md), write_page_checksum=True) as out:
        for k, frame in _blocks(mlist, with_orig):
            table = _block_table(frame, k, imputation, id, dtypes, ren, schema)
            del frame
            pending.append(table)
            rows += table.num_rows
            while rows >= group:
                buf = pa.concat_tables(pending)
                out.write_table(buf.slice(0, group), row_group_size=group)
                rest = buf.slice(group)
                pending, rows = ([rest] if rest.num_rows else []), rows - group
        if rows:
            out.write_table(pa.concat_tables(pending), row_group_size=group)


@register_reader("long")
def read_long(
    path,
    *,
    imputation: str | None = None,
    id: str | None = None,
    library: str = "pandas",
    schema: Any = None,
) -> Any:
    """Read the long format (CSV or parquet) into a MitmlList.

    Parameters
    ----------
    path : ``.csv`` / ``.csv.gz`` or ``.parquet`` file with an imputation-number column.
    imputation, id : column names; default: those stored by :func:`write_long`, else
        ``".imp"`` and ``".id"``. Imputation 0 is the original data; rows are put in order of
        imputation and id.
    library : ``"pandas"`` (default) or ``"polars"``.
    schema : CSV only: ``None`` uses ``<path>.schema.json`` when present; ``False`` ignores it.

    Returns
    -------
    MitmlList
    """
    path = as_path(path)
    check_library(library)
    if _format_of(path, None) == "parquet":
        check_source(path, "parquet")
        with reading(path, "parquet"):
            return _read_parquet(path, imputation, id, library)
    fmt = "gzip-compressed CSV" if path.name.lower().endswith(".gz") else "CSV"
    check_source(path, fmt)
    with reading(path, fmt):
        return _read_csv(path, imputation, id, library, schema, fmt)


def _read_csv(path: Path, imputation, id, library: str, schema: Any, fmt: str):
    check_digests(path, schema, [path], fmt)
    sch = read_sidecar(path, schema, None, "long-csv")
    imp = imputation or (sch.extra["imputation"] if sch else ".imp")
    rid = id or (sch.extra["id"] if sch else ".id")
    if sch is not None:
        text = [c.file for c in sch.columns if c.kind in ("string", "category")]
        df = pd.read_csv(
            path,
            dtype={c: object for c in text},
            keep_default_na=False,
            na_values={c: [""] for c in sch.file_columns},
        )
    else:
        df = pd.read_csv(path)
    if df.shape[0] == 0:
        raise FileFormatError(f"cannot read '{path}' as {fmt}: it has a header but no rows.")
    if imp not in df.columns:
        raise FileFormatError(
            f"'{path}' has no imputation column '{imp}'; its columns are {list(df.columns)[:10]}. "
            "Pass `imputation=`."
        )
    sort = (df[rid].to_numpy(), df[imp].to_numpy()) if rid in df.columns else (df[imp].to_numpy(),)
    df = df.iloc[np.lexsort(sort)].reset_index(drop=True)
    users = [c for c in df.columns if c not in (imp, rid)]
    if sch is not None and users != sch.file_columns:
        raise FileFormatError(
            f"the columns of '{path}' {users} do not match its schema's {sch.file_columns}; "
            "pass schema=False."
        )
    if sch is None:
        sch = infer_schema(df, users, {}, ordered=(), library=library, fmt="long-csv")
    return assemble(df, imp, sch, library, original_key=0, source=(path, fmt))


def _read_parquet(path: Path, imputation, id, library: str):
    import json

    import pyarrow.parquet as pq

    table = pq.read_table(path, page_checksum_verification=True)
    raw = (table.schema.metadata or {}).get(_META)
    meta: dict[str, Any] = (
        json.loads(raw)
        if raw
        else {
            "library": library,
            "imputation": ".imp",
            "id": ".id",
            "original": True,
            "names": {},
            "imputed": None,
            "orig": None,
        }
    )
    imp = imputation or meta["imputation"]
    rid = id or meta["id"]
    src = meta["library"]
    if src == "polars":
        import polars as pl

        df = pl.from_arrow(table)
    else:
        df = table.to_pandas()
    df = cast(Any, df)  # a pandas or polars DataFrame, used through their common methods
    cols = list(df.columns)
    if imp not in cols:
        raise FileFormatError(
            f"'{path}' has no imputation column '{imp}'; its columns are {cols[:10]}. Pass `imputation=`."
        )
    keys = np.asarray(df[imp].to_numpy())
    if pd.isna(keys).any():
        raise FileFormatError(
            f"cannot read '{path}' as parquet: the imputation column '{imp}' has missing values."
        )
    ids = np.asarray(df[rid].to_numpy()) if rid in cols else np.zeros(len(keys))
    order = np.lexsort((ids, keys))
    keys = keys[order]
    users = [c for c in cols if c not in (imp, rid)]
    back = {n: c for n, c in meta["names"].items() if n != c}
    imps, original = [], None
    for k, a, b in split_sorted(keys):
        rows = order[a:b]
        if src == "polars":
            block = df[rows].select(users)
            block = block.rename(back) if back else block
        else:
            block = df.iloc[rows][users].reset_index(drop=True)
            block = block.rename(columns=back) if back else block
        is_orig = k == 0 and meta["original"] is not False
        tmpl = meta["orig"] if is_orig else meta["imputed"]
        if tmpl:
            block = _restore(block, tmpl, src)
        if is_orig:
            original = block
        else:
            imps.append(block)
    sizes = {len(f) for f in imps + ([] if original is None else [original])}
    if len(sizes) > 1:
        raise FileFormatError(
            f"cannot read '{path}' as parquet: the data sets have different numbers of rows "
            f"{sorted(sizes)}; the file is inconsistent."
        )
    if not imps:
        raise FileFormatError(f"'{path}' holds no imputed data sets (no '{imp}' other than 0).")
    return MitmlList(
        [to_library(f, library) for f in imps],
        None if original is None else to_library(original, library),
    )
