"""Stata: one .dta in ``mi flong`` style that Stata already treats as ``mi set``, and back.

Layout (REFERENCE.md section 5): the original data (``_mi_m`` = 0) followed by imputations
1..M, rows sorted by ``_mi_m`` and ``_mi_id`` (1..N, the same case in every block), ``_mi_miss``
(byte: in m = 0, 1 when any imputed variable is missing; ``.`` in m > 0) and the dataset
characteristics ``_dta[_mi_marker]`` = ``_mi_ds_1``, ``_mi_style`` = ``flong``, ``_mi_M``,
``_mi_N``, ``_mi_ivars``, ``_mi_rvars``, ``_mi_pvars`` (when any) and ``_mi_update`` (seconds
since 01jan1960). Categorical columns carry value labels; a .do file beside the data registers
it with ``mi import flong`` for a Stata that does not read the characteristics.
"""

from __future__ import annotations

import datetime as _dt
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._validation import check_library
from ..exceptions import FileFormatError
from ._dta import (
    INT_RANGE,
    STR_MAX,
    DtaVariable,
    OldDtaFormat,
    read_characteristics,
    read_value_label_names,
    write_dta,
)
from ._files import Staged, as_path, check_new, check_source, digest, reading, sidecar_path
from ._names import STATA, STATA117, file_names
from ._read import assemble, infer_schema, numeric_objects
from ._registry import register_reader, register_writer
from ._schema import Schema, build_schema, check_digests, encode_block, kind_of, read_sidecar
from ._stack import check_mlist, imputed_columns, varying_cells

__all__ = ["read_stata", "read_stata_characteristics", "write_stata"]

_SYSTEM = ("_mi_miss", "_mi_m", "_mi_id")
_EPOCH = _dt.datetime(1960, 1, 1)


@register_writer("stata")
def write_stata(
    mlist,
    path,
    *,
    imputed: Sequence[str] | None = None,
    passive: Sequence[str] | None = None,
    variable_labels: Mapping[str, str] | None = None,
    label: str | None = None,
    version: int = 118,
    names: str = "error",
    rename: Mapping[str, str] | None = None,
    do_file: bool = True,
    schema: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write the imputed data sets as one Stata .dta in ``mi flong`` style.

    Stata (11 or later) opens the file as ``mi set`` data: the ``_dta[_mi_*]`` characteristics
    are written into it. Categories become integer codes with value labels (integer categories
    keep their values, others are numbered 1..K).

    Parameters
    ----------
    mlist : MitmlList (or an ImputationResult, completed first). Its ``original`` becomes
        ``_mi_m`` = 0; without it, m = 0 is rebuilt from the first imputation with every cell
        that differs between imputations set to missing (with a warning).
    path : the .dta file.
    imputed : the imputed variables (``_mi_ivars``); default: the columns whose missing cells in
        the original are filled in (without the original: whose values differ between imputations).
    passive : passive variables (``_mi_pvars``); default: other columns that differ between
        imputations. All remaining columns are registered as regular (``_mi_rvars``).
    variable_labels : ``{column: label}``, at most 80 characters each.
    label : the dataset label (at most 80 characters).
    version : 118 (Stata 14 or later, UTF-8; default) or 117 (Stata 13, ASCII names).
    names : ``"error"`` (default): a column name Stata cannot hold (more than 32 characters,
        other characters than letters, digits and ``_``, reserved words, a ``_mi_`` prefix) is a
        ValueError; ``"map"``: legal names are made up and the mapping is printed.
    rename : ``{column: name in the file}`` applied first.
    do_file : also write ``<stem>.do``, which registers the data with ``mi import flong``.
    schema : also write ``<path>.schema.json`` (dtypes, categories, names), which
        :func:`read_stata` uses to give back identical data.
    overwrite : replace existing files; by default an existing file is an error and nothing is written.

    Returns
    -------
    list of Path : the files written.

    Notes
    -----
    Stata has no missing text: a missing value in a text column is written as "" and read back
    as "". The DataFrame index is not written; readers return a RangeIndex.

    Examples
    --------
    >>> implist.to_stata("imputed.dta")  # doctest: +SKIP
    >>> pm.read_stata("imputed.dta")  # doctest: +SKIP
    """
    mlist = check_mlist(mlist, "write_stata")
    path = as_path(path)
    if version not in (117, 118):
        raise ValueError(f"`version` must be 117 (Stata 13) or 118 (Stata 14+); got {version!r}.")
    rules = STATA if version == 118 else STATA117
    fnames = file_names(mlist.columns, rules, names, rename, system=_SYSTEM)
    sch = build_schema(mlist, "stata", fnames, int_range=INT_RANGE["long"])
    sch.extra["version"] = version
    labels = _check_labels(variable_labels, mlist.columns)
    paths = (
        [path]
        + ([path.with_suffix(".do")] if do_file else [])
        + ([sidecar_path(path)] if schema else [])
    )
    check_new(paths, overwrite)

    ivars = imputed_columns(mlist, imputed)
    pvars = _passive(mlist, ivars, passive)
    rvars = [c for c in mlist.columns if c not in ivars and c not in pvars]
    m, n = len(mlist), sch.n
    if mlist.original is not None:
        block0 = encode_block(mlist.original, sch, is_original=True)
    else:
        warnings.warn(
            "the MitmlList has no original data; Stata's m = 0 is rebuilt from imputation 1 with the "
            "cells that differ between imputations set to missing. Pass a MitmlList with "
            "`original=` to write the real incomplete data.",
            UserWarning,
            stacklevel=2,
        )
        block0 = _rebuild_original(mlist, sch, ivars)

    def blocks():
        """m = 0, then every imputation, encoded one at a time (a lazy MitmlList builds each
        data set when it is reached and drops it after)."""
        yield block0
        for f in mlist:
            yield encode_block(f, sch)

    # first pass: the storage type and width of every column from each block's extremes
    extremes: dict[str, list[np.ndarray]] = {spec.file: [] for spec in sch.columns}
    for b in blocks():
        for spec in sch.columns:
            extremes[spec.file].append(_extremes(b[spec.file]))
    variables = [
        _variable(spec, np.concatenate(extremes[spec.file]), labels.get(spec.name, ""))
        for spec in sch.columns
    ]
    miss0 = np.zeros(n, dtype=bool)
    for spec in sch.columns:
        if spec.name in ivars:
            miss0 |= pd.isna(block0[spec.file])
    variables += [
        DtaVariable("_mi_miss", "byte", miss0.astype(np.float64)),
        DtaVariable("_mi_m", _int_type(np.array([0.0, m])), np.zeros(0)),
        DtaVariable("_mi_id", _int_type(np.array([1.0, n])), np.zeros(0)),
    ]
    ids = np.arange(1, n + 1, dtype=np.float64)

    def chunks():
        """Second pass: the rows of m = 0, 1, ..., M, one block at a time."""
        for k, b in enumerate(blocks()):
            mi_miss = miss0.astype(np.float64) if k == 0 else np.full(n, np.nan)
            yield [b[spec.file] for spec in sch.columns] + [mi_miss, np.full(n, float(k)), ids]

    value_labels = {
        spec.file: [(int(c), str(k)) for c, k in zip(cast(list, spec.codes), spec.categories)]
        for spec in sch.columns
        if spec.categories is not None
    }

    fn = [fnames[c] for c in mlist.columns]
    secs = int((_dt.datetime.now() - _EPOCH).total_seconds())
    chars = [
        ("_dta", "_mi_marker", "_mi_ds_1"),
        ("_dta", "_mi_style", "flong"),
        ("_dta", "_mi_M", str(m)),
        ("_dta", "_mi_N", str(n)),
    ]
    for key, group in (("_mi_ivars", ivars), ("_mi_pvars", pvars), ("_mi_rvars", rvars)):
        if group:
            chars.append(("_dta", key, " ".join(fnames[c] for c in group)))
    chars.append(("_dta", "_mi_update", str(secs)))
    if label is None:
        label = f"{m} imputations of {n} cases (mi flong), pymitml"
    with Staged(paths) as st:
        write_dta(
            st[path],
            variables,
            (m + 1) * n,
            version=version,
            data_label=label,
            characteristics=chars,
            value_labels=value_labels,
            sort_by=["_mi_m", "_mi_id"],
            chunks=chunks,
        )
        if do_file:
            st[path.with_suffix(".do")].write_text(
                _do_text(
                    path,
                    m,
                    n,
                    [fnames[c] for c in ivars],
                    [fnames[c] for c in pvars],
                    [fnames[c] for c in rvars],
                    fn,
                ),
                encoding="utf-8",
            )
        if schema:
            sch.extra.update(imputed=ivars, passive=pvars, sha256={path.name: digest(st[path])})
            sch.write(st[sidecar_path(path)])
    return paths


def _check_labels(labels: Mapping[str, str] | None, columns: list[str]) -> dict[str, str]:
    labels = dict(labels or {})
    bad = [k for k in labels if k not in columns]
    if bad:
        raise ValueError(
            f"`variable_labels` names {bad}, which are not columns of the data; columns are {columns}."
        )
    long_ = {k: v for k, v in labels.items() if len(str(v)) > 80}
    if long_:
        raise ValueError(
            f"`variable_labels` for {list(long_)} are longer than Stata's 80 characters; shorten them."
        )
    return {k: str(v) for k, v in labels.items()}


def _passive(mlist, ivars: list[str], passive: Sequence[str] | None) -> list[str]:
    cols = mlist.columns
    if passive is not None:
        passive = [passive] if isinstance(passive, str) else list(passive)
        bad = [c for c in passive if c not in cols or c in ivars]
        if bad:
            raise ValueError(
                f"`passive` names {bad}, which are not columns of the data or are imputed."
            )
        return [c for c in cols if c in passive]
    if len(mlist) < 2:
        return []
    vary = np.asarray(varying_cells(mlist).any(axis=0))
    return [c for c, k in zip(cols, vary) if k and c not in ivars]


def _rebuild_original(mlist, sch: Schema, ivars: list[str]) -> dict[str, np.ndarray]:
    block = encode_block(mlist[0], sch)
    vary = varying_cells(mlist)
    for j, spec in enumerate(sch.columns):
        if spec.name in ivars:
            v = block[spec.file].copy()
            v[vary[:, j]] = None if v.dtype == object else np.nan
            block[spec.file] = v
    return block


def _extremes(vals: np.ndarray) -> np.ndarray:
    """The values of one block that decide a column's Stata type: the smallest and largest
    number (NaN when none), or the text that is longest in UTF-8."""
    if vals.dtype == object:
        text = np.where(pd.isna(vals), "", vals).astype(str)
        if not len(text):
            return vals[:0]
        size = np.char.str_len(np.char.encode(text, "utf-8"))
        return vals[[int(np.argmax(size))]]
    ok = vals[~np.isnan(vals)]
    return np.array([ok.min(), ok.max()]) if ok.size else np.array([np.nan])


def _int_type(vals: np.ndarray) -> str:
    ok = vals[~np.isnan(vals)]
    lo, hi = (ok.min(), ok.max()) if ok.size else (0, 0)
    for t in ("byte", "int", "long"):
        if INT_RANGE[t][0] <= lo and hi <= INT_RANGE[t][1]:
            return t
    return "double"


def _variable(spec, vals: np.ndarray, label: str) -> DtaVariable:
    kinds = {spec.kind} | ({kind_of(spec.orig_dtype)} if spec.orig_dtype else set())
    vlab = spec.file if spec.categories is not None else ""
    if "string" in kinds:
        text = np.where(pd.isna(vals), "", vals).astype(str)
        width = int(max(np.char.str_len(np.char.encode(text, "utf-8")).max(initial=0), 1))
        if width > STR_MAX:
            raise ValueError(
                f"column '{spec.name}' holds text of {width} bytes; Stata's str# holds at most "
                f"{STR_MAX} (strL is not written). Shorten it or make it categorical."
            )
        return DtaVariable(spec.file, "str", vals, label, "", width)
    if kinds <= {"int", "bool", "category"}:
        return DtaVariable(spec.file, _int_type(vals), vals, label, vlab)
    f32 = all(
        c is not None and c["name"] in ("float32", "Float32")
        for c in (spec.dtype, spec.orig_dtype or spec.dtype)
    )
    return DtaVariable(spec.file, "float" if f32 else "double", vals, label, vlab)


def _do_text(path: Path, m: int, n: int, ivars, pvars, rvars, columns) -> str:
    taken = set(columns)
    hm = next(f"pymitml_m{s}" for s in ("", *range(2, 99)) if f"pymitml_m{s}" not in taken)
    hid = next(f"pymitml_id{s}" for s in ("", *range(2, 99)) if f"pymitml_id{s}" not in taken)
    lines = [
        f"* Written by pymitml on {_dt.datetime.now():%d %b %Y %H:%M}: {m} imputations of {n} cases",
        f'* in "{path.name}", mi flong style (_mi_m = 0 is the original data).',
        "*",
        f'* Stata 11 or later opens "{path.name}" as mi set data as it is:',
        f'*     use "{path.name}", clear',
        "*     mi describe",
        "* This do-file takes the other route, for a Stata that does not see the mi settings:",
        "* it clears them and registers the same data again with mi import flong.",
        "",
        f'use "{path.name}", clear',
        "foreach c in _mi_marker _mi_style _mi_M _mi_N _mi_ivars _mi_pvars _mi_rvars _mi_update {",
        "    char _dta[`c']",
        "}",
        f"rename _mi_m {hm}",
        f"rename _mi_id {hid}",
        "drop _mi_miss",
        f"mi import flong, m({hm}) id({hid})"
        + (f" imputed({' '.join(ivars)})" if ivars else "")
        + " clear",
    ]
    if pvars:
        lines.append(f"mi register passive {' '.join(pvars)}")
    if rvars:
        lines.append(f"mi register regular {' '.join(rvars)}")
    lines += ["mi describe", ""]
    return "\n".join(lines)


def read_stata_characteristics(path) -> dict[str, dict[str, str]]:
    """The characteristics stored in a .dta file (formats 117-119): ``{owner: {name: contents}}``.

    ``result["_dta"]`` holds the dataset's, e.g. the ``_mi_*`` settings of ``mi set`` data.

    Examples
    --------
    >>> pm.io.read_stata_characteristics("imputed.dta")["_dta"]["_mi_style"]  # doctest: +SKIP
    'flong'
    """
    path = as_path(path)
    check_source(path, _FMT)
    with reading(path, _FMT):
        return read_characteristics(path)


@register_reader("stata")
def read_stata(path, *, library: str = "pandas", schema: Any = None) -> Any:
    """Read a Stata .dta in ``mi flong`` style (``_mi_m``, ``_mi_id``) into a MitmlList.

    Parameters
    ----------
    path : the .dta file (from :func:`write_stata`, from Stata after ``mi convert flong``, or any
        file with ``_mi_m`` = 0..M and ``_mi_id`` columns).
    library : ``"pandas"`` (default) or ``"polars"``.
    schema : ``None`` uses ``<path>.schema.json`` when present (identical dtypes, categories and
        names); ``False`` ignores it; a path names the sidecar. Without one, value-labelled
        columns become categoricals and the rest keep Stata's storage types.

    Returns
    -------
    MitmlList : imputations 1..M, with ``original`` the m = 0 block.
    """
    path = as_path(path)
    check_library(library)
    check_source(path, _FMT)
    with reading(path, _FMT):
        return _read_stata(path, library, schema)


_FMT = "Stata .dta"


def _read_stata(path: Path, library: str, schema: Any) -> Any:
    check_digests(path, schema, [path], _FMT)
    try:
        chars = read_characteristics(path).get("_dta", {})
    except OldDtaFormat:  # formats before 117 have no characteristics this reader can see
        chars = {}
    style = chars.get("_mi_style")
    if style is not None and style != "flong":
        raise FileFormatError(
            f"'{path}' is mi {style} data; in Stata run `mi convert flong` and save it again."
        )
    df, vlabels = _read_dta(path)
    missing = [c for c in ("_mi_m", "_mi_id") if c not in df.columns]
    if missing:
        raise FileFormatError(
            f"'{path}' has no {missing} column(s), so it is not mi flong data (no imputation "
            "indicator); in Stata run `mi convert flong` (or `mi import`) and save it again."
        )
    df = df.iloc[np.lexsort((df["_mi_id"].to_numpy(), df["_mi_m"].to_numpy()))].reset_index(
        drop=True
    )
    _check_mi_counts(path, df, chars)
    users = [c for c in df.columns if c not in _SYSTEM]
    sch = _schema_from_sidecar(path, schema, users)
    if sch is None:
        sch = infer_schema(df, users, vlabels, ordered=(), library=library, fmt="stata")
    return assemble(df, "_mi_m", sch, library, original_key=0, source=(path, _FMT))


def _check_mi_counts(path: Path, df: pd.DataFrame, chars: Mapping[str, str]) -> None:
    """``_mi_M`` / ``_mi_N`` (when the file has them) agree with the rows it holds."""
    m_found = int(pd.unique(df["_mi_m"].dropna()).size) - 1
    for key, found, what in (
        ("_mi_M", m_found, "imputations"),
        ("_mi_N", int((df["_mi_m"] == 0).sum()), "cases in m = 0"),
    ):
        text = chars.get(key)
        if text is not None and text.strip().isdigit() and int(text) != found:
            raise FileFormatError(
                f"cannot read '{path}' as {_FMT}: its settings say {key} = {text} but it holds "
                f"{found} {what}; the file is truncated or inconsistent."
            )


def _read_dta(path: Path) -> tuple[pd.DataFrame, dict[str, dict]]:
    """The data (missing values as NaN) and ``{variable: {value: label}}``.

    pandas' reader is fast for 117-119 (the value-label names come from the file's map); older
    formats go through pyreadstat."""
    try:
        label_names = read_value_label_names(path)
    except OldDtaFormat:
        import pyreadstat

        df, meta = pyreadstat.read_dta(str(path), apply_value_formats=False)
        df = numeric_objects(df, meta.readstat_variable_types)
        return df, {
            c: meta.value_labels[n]
            for c, n in meta.variable_to_label.items()
            if n in meta.value_labels
        }
    with pd.io.stata.StataReader(path) as rd:
        df = rd.read(convert_categoricals=False, convert_missing=False, preserve_dtypes=True)
        tables = rd.value_labels()
    return df, {c: tables[n] for c, n in label_names.items() if n in tables}


def _schema_from_sidecar(path: Path, schema, users):
    return read_sidecar(path, schema, users, "stata")
