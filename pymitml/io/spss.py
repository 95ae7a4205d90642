"""SPSS: one .sav stacked by ``Imputation_`` (0 = original data, 1..M) plus a .sps, and back.

SPSS pools an analysis over imputations when the data are sorted by ``Imputation_`` and split
with ``SPLIT FILE LAYERED BY Imputation_`` (REFERENCE.md section 5). The split state is not
stored in a .sav, so a .sps with those lines is written beside it. Unlike mitml's
``write.mitmlSAV``, which numbers the first imputation 0, imputations are 1..M here and 0 is
the original (incomplete) data. Categories become numeric codes with value labels and
measurement level nominal (ordinal when ordered); numbers are scale.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from itertools import chain
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._validation import check_library
from ..exceptions import FileFormatError
from ._files import Staged, as_path, check_new, check_source, digest, reading, sidecar_path
from ._names import SPSS, file_names
from ._read import assemble, infer_schema, numeric_objects
from ._registry import register_reader, register_writer
from ._schema import build_schema, check_digests, encode_block, kind_of, read_sidecar
from ._stack import check_mlist

__all__ = ["read_spss", "write_spss"]

IMP = "Imputation_"


@register_writer("spss")
def write_spss(
    mlist,
    path,
    *,
    variable_labels: Mapping[str, str] | None = None,
    include_original: bool = True,
    label: str | None = None,
    names: str = "error",
    rename: Mapping[str, str] | None = None,
    syntax: bool = True,
    schema: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write the imputed data sets as one SPSS .sav stacked by ``Imputation_``.

    Parameters
    ----------
    mlist : MitmlList (or an ImputationResult, completed first).
    path : the .sav file.
    variable_labels : ``{column: label}`` (at most 256 bytes each).
    include_original : write the original data as ``Imputation_`` = 0 when it is known (default).
    label : the file label (at most 64 bytes).
    names : ``"error"`` (default): a column name SPSS cannot hold (more than 64 bytes, a first
        character other than a letter or @, characters other than letters, digits and
        ``. _ @ # $``, reserved words, names equal up to case) is a ValueError; ``"map"``: legal
        names are made up and the mapping is printed.
    rename : ``{column: name in the file}`` applied first.
    syntax : also write ``<stem>.sps`` with ``SORT CASES BY Imputation_.`` and
        ``SPLIT FILE LAYERED BY Imputation_.``
    schema : also write ``<path>.schema.json`` so that :func:`read_spss` gives back identical data.
    overwrite : replace existing files; by default an existing file is an error and nothing is written.

    Returns
    -------
    list of Path : the files written.

    Notes
    -----
    A missing value in a text column is written as "" (SPSS has no missing text by default) and
    read back as "". The DataFrame index is not written; readers return a RangeIndex.

    Examples
    --------
    >>> implist.to_spss("imputed.sav")  # doctest: +SKIP
    """
    import pyreadstat

    mlist = check_mlist(mlist, "write_spss")
    path = as_path(path)
    fnames = file_names(mlist.columns, SPSS, names, rename, system=(IMP,))
    with_orig = bool(include_original) and mlist.original is not None
    sch = build_schema(mlist, "spss", fnames, original=with_orig)
    labels = _check_labels(variable_labels, mlist.columns)
    sps = path.with_suffix(".sps")
    paths = [path] + ([sps] if syntax else []) + ([sidecar_path(path)] if schema else [])
    check_new(paths, overwrite)

    first = 0 if with_orig else 1
    m, n = len(mlist), sch.n
    data, extremes = _stacked_columns(mlist, sch, with_orig)
    data = {IMP: np.repeat(np.arange(first, m + 1, dtype=np.float64), n), **data}
    vlabels: dict[str, dict[Any, str]] = {}
    measure, fmt = {IMP: "nominal"}, {IMP: f"F{len(str(m))}.0"}
    if with_orig:
        vlabels[IMP] = {0: "Original data"}
    for spec in sch.columns:
        kinds = {spec.kind, *([] if spec.orig_dtype is None else [_kind(spec.orig_dtype)])}
        if "string" in kinds:
            measure[spec.file] = "nominal"
            continue
        if spec.categories is not None:
            vlabels[spec.file] = {
                c: str(k) for c, k in zip(cast(list, spec.codes), spec.categories)
            }
            measure[spec.file] = "ordinal" if spec.ordered else "nominal"
        elif kinds == {"bool"}:
            measure[spec.file] = "nominal"
        else:
            measure[spec.file] = "scale"
        if kinds <= {"int", "bool", "category"}:
            lo, hi = extremes[spec.file]
            width = max(len(str(int(lo))), len(str(int(hi))), 1) if lo <= hi else 1
            fmt[spec.file] = f"F{width}.0"
    if label is None:
        label = f"{m} imputations of {n} cases, pymitml"
    if len(label.encode("utf-8")) > 64:
        raise ValueError(f"`label` is longer than SPSS's 64 bytes: '{label}'.")
    frame = pd.DataFrame(data, copy=False)  # the columns as they are (no consolidated copy)
    del data
    with Staged(paths) as st:
        pyreadstat.write_sav(
            frame,
            str(st[path]),
            file_label=label,
            column_labels={fnames[c]: t for c, t in labels.items()},
            variable_value_labels=vlabels,
            variable_measure=measure,
            variable_format=fmt,
        )
        if syntax:
            st[sps].write_text(_sps_text(path, m, n, with_orig), encoding="utf-8")
        if schema:
            sch.extra["sha256"] = {path.name: digest(st[path])}
            sch.write(st[sidecar_path(path)])
    return paths


def _kind(codec):
    return kind_of(codec)


def _stacked_columns(mlist, sch, with_orig: bool) -> tuple[dict, dict]:
    """Every column of the stacked file (original first when ``with_orig``, then imputations
    1..M) in one array allocated once and filled one data set at a time: a lazy MitmlList
    builds, encodes and copies each data set in and drops it before the next, so the stacked
    columns (which pyreadstat needs whole: it cannot append) plus one data set are in memory.

    Returns the columns by name in the file (text: object arrays with "" for missing; others
    float64 with NaN) and the (smallest, largest) observed number of each numeric column
    (``(inf, -inf)`` when none is observed)."""
    n = sch.n
    total = (len(mlist) + (1 if with_orig else 0)) * n
    text = {
        spec.file
        for spec in sch.columns
        if "string" in {spec.kind, *([] if spec.orig_dtype is None else [_kind(spec.orig_dtype)])}
    }
    out = {
        spec.file: np.empty(total, dtype=object if spec.file in text else np.float64)
        for spec in sch.columns
    }
    extremes = {spec.file: (np.inf, -np.inf) for spec in sch.columns if spec.file not in text}
    sets = ((mlist.original, True),) if with_orig else ()
    for k, (frame, is_orig) in enumerate(chain(sets, ((f, False) for f in mlist))):
        block = encode_block(frame, sch, is_original=is_orig)
        del frame
        part = slice(k * n, (k + 1) * n)
        for name, vals in block.items():
            if name in text:
                v = vals.astype(object)
                out[name][part] = np.where(pd.isna(v), "", v)
                continue
            v = vals.astype(np.float64)
            out[name][part] = v
            ok = v[~np.isnan(v)]
            if ok.size:
                lo, hi = extremes[name]
                extremes[name] = (min(lo, float(ok.min())), max(hi, float(ok.max())))
        del block
    return out, extremes


def _check_labels(labels, columns) -> dict[str, str]:
    labels = dict(labels or {})
    bad = [k for k in labels if k not in columns]
    if bad:
        raise ValueError(
            f"`variable_labels` names {bad}, which are not columns of the data; columns are {columns}."
        )
    long_ = [k for k, v in labels.items() if len(str(v).encode("utf-8")) > 256]
    if long_:
        raise ValueError(
            f"`variable_labels` for {long_} are longer than SPSS's 256 bytes; shorten them."
        )
    return {k: str(v) for k, v in labels.items()}


def _sps_text(path: Path, m: int, n: int, with_orig: bool) -> str:
    name = path.name.replace("'", "''")
    orig = "Imputation_ = 0 is the original (incomplete) data; " if with_orig else ""
    return "\n".join(
        [
            f"* Written by pymitml: {m} imputations of {n} cases in {path.name}.",
            f"* {orig}Imputation_ = 1..{m} are the imputed data sets.",
            "* With the file sorted and split by Imputation_, SPSS pools the results of",
            "* analyses that support multiple imputation. Change the path if the .sav moved.",
            f"GET FILE='{name}'.",
            "DATASET NAME imputed WINDOW=FRONT.",
            "SORT CASES BY Imputation_.",
            "SPLIT FILE LAYERED BY Imputation_.",
            "",
        ]
    )


@register_reader("spss")
def read_spss(
    path, *, library: str = "pandas", schema: Any = None, original_code: int | None = 0
) -> Any:
    """Read an SPSS .sav stacked by ``Imputation_`` into a MitmlList.

    Parameters
    ----------
    path : the .sav (or .zsav) file.
    library : ``"pandas"`` (default) or ``"polars"``.
    schema : ``None`` uses ``<path>.schema.json`` when present; ``False`` ignores it; a path names it.
        Without one, value-labelled columns become categoricals (ordered when their measurement
        level is ordinal) and numbers are float64.
    original_code : the ``Imputation_`` value of the original data (default 0); ``None`` when
        every block is an imputation, e.g. for files from mitml's ``write.mitmlSAV``, which
        numbers the first imputation 0.

    Returns
    -------
    MitmlList : the imputations in order of ``Imputation_``, with ``original`` when present.
    """
    path = as_path(path)
    check_library(library)
    check_source(path, _FMT)
    with reading(path, _FMT):
        return _read_spss(path, library, schema, original_code)


_FMT = "SPSS .sav"


def _check_dictionary(path: Path) -> None:
    """Walk the dictionary of a .sav (the records before the data) and check every count and
    length in it against the file's size, so that a corrupted file is a FileFormatError here
    rather than a crash inside the C parser (readstat dies on some damaged variable records).
    Record layout: IBM SPSS Statistics' "System File Format" (types 2, 3, 4, 6, 7, 999)."""
    raw = path.read_bytes()
    size = len(raw)

    def bad(what: str, at: int) -> FileFormatError:
        return FileFormatError(
            f"cannot read '{path}' as {_FMT}: {what} at byte {at}, so the file is corrupted "
            "or truncated."
        )

    if size < 176:
        raise bad("the header is incomplete", size)
    layout = struct.unpack_from("<i", raw, 64)[0]
    bo = "<" if layout in (2, 3) else ">"

    def i32(at: int) -> int:
        if at + 4 > size:
            raise bad("a record runs past the end of the file", at)
        return struct.unpack_from(f"{bo}i", raw, at)[0]

    case_size, compression, n_cases = i32(68), i32(72), i32(80)
    pos, n_vars = 176, 0
    while True:
        rec = i32(pos)
        if rec == 2:  # variable: type, has label, number of missing values, formats, name
            n_vars += 1
            vtype, has_label, n_miss = i32(pos + 4), i32(pos + 8), i32(pos + 12)
            if not (-1 <= vtype <= 255) or has_label not in (0, 1) or n_miss not in range(-3, 4):
                raise bad("a variable record has impossible fields", pos)
            pos += 32
            if has_label:
                n = i32(pos)
                if not 0 <= n <= 65535:
                    raise bad("a variable label has an impossible length", pos)
                pos += 4 + (n + 3) // 4 * 4
            pos += 8 * abs(n_miss)
        elif rec == 3:  # value labels, followed by the variables they belong to (type 4)
            count = i32(pos + 4)
            if not 0 <= count <= size:
                raise bad("a value-label record has an impossible count", pos)
            pos += 8
            for _ in range(count):
                if pos + 9 > size:
                    raise bad("a value label runs past the end of the file", pos)
                pos += 8 + (raw[pos + 8] + 1 + 7) // 8 * 8
            if i32(pos) != 4:
                raise bad("value labels are not followed by their variables", pos)
            n = i32(pos + 4)
            if not 0 <= n <= size // 4:
                raise bad("a value-label variable list has an impossible count", pos)
            pos += 8 + 4 * n
        elif rec == 6:  # document: lines of 80 characters
            n = i32(pos + 4)
            if not 0 <= n <= size // 80:
                raise bad("the document record has an impossible line count", pos)
            pos += 8 + 80 * n
        elif rec == 7:  # extension: subtype, element size, count
            width, count = i32(pos + 8), i32(pos + 12)
            if not (0 <= width <= size and 0 <= count <= size) or width * count > size:
                raise bad("an extension record has an impossible size", pos)
            pos += 16 + width * count
        elif rec == 999:  # end of the dictionary
            break
        else:
            raise bad(f"an unknown record type {rec}", pos)
        if pos > size:
            raise bad("a record runs past the end of the file", pos)
    if case_size != -1 and case_size != n_vars:
        raise bad(f"the header says {case_size} values per case but there are {n_vars}", 68)
    # the number of cases the header claims must fit in the bytes left: 8 bytes a value
    # uncompressed, at least one command byte a value with bytecode compression, and zlib
    # (.zsav) inflates at most about 1032 to 1
    room = {0: (size - pos - 8) / 8, 1: size - pos - 8, 2: (size - pos - 8) * 1032}
    if n_cases > 0 and n_vars and n_cases * n_vars > room.get(compression, float("inf")):
        raise bad(f"the header claims {n_cases} cases, more than the file can hold", 80)


def _read_spss(path: Path, library: str, schema: Any, original_code: int | None) -> Any:
    import pyreadstat

    check_digests(path, schema, [path], _FMT)
    _check_dictionary(path)
    df, meta = pyreadstat.read_sav(str(path), apply_value_formats=False, user_missing=False)
    df = numeric_objects(df, meta.readstat_variable_types)
    if IMP not in df.columns:
        raise FileFormatError(
            f"'{path}' has no '{IMP}' column (no imputation indicator), so it is not SPSS's "
            f"stacked multiple-imputation layout; its columns are {list(df.columns)}."
        )
    order = np.argsort(df[IMP].to_numpy(), kind="stable")
    df = df.iloc[order].reset_index(drop=True)
    users = [c for c in df.columns if c != IMP]
    sch = read_sidecar(path, schema, users, "spss")
    if sch is None:
        ordered = [c for c in users if meta.variable_measure.get(c) == "ordinal"]
        sch = infer_schema(df, users, meta.variable_value_labels, ordered, library, "spss")
    return assemble(df, IMP, sch, library, original_key=original_code, source=(path, _FMT))
