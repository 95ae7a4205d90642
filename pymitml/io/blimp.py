"""Blimp-style imputation files: ``stacked`` (one file, imputation number first) or ``separate``
(``stem1.csv .. stemM.csv`` plus ``stemlist.csv``); headerless and numeric, with a names file.

As in Blimp's own output (REFERENCE.md section 5) the stacked file has no header and its first
column is the imputation number (0 = the original data with the missing code, when asked). The
column names go to ``<stem>_names.txt`` beside it, one per line, in file order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._validation import check_library
from ..exceptions import FileFormatError
from ._files import Staged, as_path, check_new, check_source, digest, reading, sidecar_path
from ._names import BLIMP, file_names
from ._read import assemble, infer_schema
from ._registry import register_reader, register_writer
from ._schema import build_schema, check_digests, encode_block, read_sidecar
from ._stack import check_mlist
from ._text import check_numeric, flag_text, integral_columns, read_table, write_table

__all__ = ["read_blimp", "write_blimp"]

_IMP = "imputation"


def _separate_paths(path: Path, m: int, with_orig: bool) -> tuple[list[Path], Path, Path]:
    """``imp.csv`` or ``imp*.csv`` -> ``imp0/1..M.csv``, ``implist.csv``, ``imp_names.txt``."""
    name = path.name
    if "*" in name:
        pre, post = name.split("*", 1)
    else:
        pre, post = path.stem, path.suffix
    first = 0 if with_orig else 1
    data = [path.with_name(f"{pre}{i}{post}") for i in range(first, m + 1)]
    return data, path.with_name(f"{pre}list{post}"), path.with_name(f"{pre.rstrip('_')}_names.txt")


def _names_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}_names.txt")


@register_writer("blimp")
def write_blimp(
    mlist,
    path,
    *,
    layout: str = "stacked",
    include_original: bool = False,
    missing: float = -999,
    sep: str = ",",
    names: str = "error",
    rename: Mapping[str, str] | None = None,
    schema: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write the imputed data sets in Blimp's ``stacked`` or ``separate`` layout.

    Parameters
    ----------
    mlist : MitmlList (or an ImputationResult, completed first).
    path : ``stacked``: the file (e.g. ``"imps.csv"``); ``separate``: the pattern, ``"imp.csv"``
        or ``"imp*.csv"``, giving ``imp1.csv .. impM.csv`` and the list file ``implist.csv``.
    layout : ``"stacked"`` (default) or ``"separate"``.
    include_original : also write the original data (imputation 0; ``separate``: ``imp0.csv``,
        not in the list file). Needs ``mlist.original``.
    missing : the missing code (default -999); no observed value may equal it.
    sep : field separator, comma (default), tab or space.
    names : ``"error"`` (default) or ``"map"`` (legal names made up, mapping printed), for names
        other than a letter followed by letters, digits and ``_``, or equal up to case.
    rename : ``{column: name in the file}`` applied first.
    schema : also write ``<file>.schema.json`` (beside the stacked file or the list file) so that
        :func:`read_blimp` gives back identical data.
    overwrite : replace existing files; by default an existing file is an error and nothing is written.

    Returns
    -------
    list of Path : the files written.

    Examples
    --------
    >>> implist.to_blimp("imps.csv", include_original=True)  # doctest: +SKIP
    >>> implist.to_blimp("imp*.csv", layout="separate")  # doctest: +SKIP
    """
    mlist = check_mlist(mlist, "write_blimp")
    path = as_path(path)
    flag_text(missing)
    if layout not in ("stacked", "separate"):
        raise ValueError(f"`layout` must be 'stacked' or 'separate'; got {layout!r}.")
    if sep not in (",", "\t", " "):
        raise ValueError(f"`sep` must be a comma, a tab or a space; got {sep!r}.")
    if include_original and mlist.original is None:
        raise ValueError(
            "`include_original=True` but the MitmlList has no original data; build it with "
            "MitmlList(frames, original=incomplete_data)."
        )
    system = (_IMP,) if layout == "stacked" else ()
    fnames = file_names(mlist.columns, BLIMP, names, rename, system=system)
    with_orig = bool(include_original)
    sch = build_schema(mlist, "blimp", fnames, original=with_orig)
    check_numeric(sch, "Blimp")
    sch.extra.update(missing=float(missing), layout=layout, sep=sep)
    if layout == "stacked":
        namefile, side = _names_path(path), sidecar_path(path)
        targets = [path, namefile]
    else:
        data, lst, namefile = _separate_paths(path, len(mlist), with_orig)
        side = sidecar_path(lst)
        targets = data + [lst, namefile]
        sch.extra["files"] = [p.name for p in data]
    paths = targets + ([side] if schema else [])
    check_new(paths, overwrite)

    integral = integral_columns(sch)
    first = 0 if with_orig else 1
    cols = [c.file for c in sch.columns]
    # one data set at a time: a lazy MitmlList builds, encodes and writes each, then drops it
    with Staged(paths) as st:
        if layout == "stacked":
            with open(st[path], "wb") as fh:
                for k, (f, is_orig) in enumerate(_sets(mlist, with_orig)):
                    b = encode_block(f, sch, is_original=is_orig)
                    lead = np.full(sch.n, first + k, dtype=np.int64)
                    write_table(
                        fh, [b[c] for c in cols], integral, missing, sep, lead=lead, shown=path.name
                    )
            st[namefile].write_text("\n".join([_IMP, *cols]) + "\n", encoding="utf-8")
            written = [path]
        else:
            for (f, is_orig), p in zip(_sets(mlist, with_orig), data):
                b = encode_block(f, sch, is_original=is_orig)
                write_table(st[p], [b[c] for c in cols], integral, missing, sep, shown=p.name)
            st[lst].write_text(
                "".join(p.name + "\n" for p in data[1 if with_orig else 0 :]), encoding="utf-8"
            )
            st[namefile].write_text("\n".join(cols) + "\n", encoding="utf-8")
            written = data
        if schema:
            sch.extra["sha256"] = {p.name: digest(st[p]) for p in written}
            sch.write(st[side])
    return paths


def _sets(mlist, with_orig: bool):
    """(data set, is the original) in file order, each built when it is reached."""
    if with_orig:
        yield mlist.original, True
    for f in mlist:
        yield f, False


def _first_token(path: Path) -> str:
    with open(path, encoding="utf-8") as fh:
        line = fh.readline()
    return line.replace(",", " ").split()[0] if line.split() else ""


@register_reader("blimp")
def read_blimp(
    path,
    *,
    names: Sequence[str] | None = None,
    missing: float | Sequence[float] | None = -999,
    layout: str | None = None,
    library: str = "pandas",
    schema: Any = None,
) -> Any:
    """Read Blimp imputations, stacked or separate, into a MitmlList.

    Parameters
    ----------
    path : the stacked file, or the list file of the separate layout (one data-file name per line).
    names : column names of the data (not counting the imputation column); default: from the
        schema sidecar, else ``<stem>_names.txt``, else ``V1, V2, ...``.
    missing : missing code(s) (default -999; the sidecar's code when there is one); ``None``: none.
    layout : ``"stacked"`` or ``"separate"``; default: told from the file (a list file holds names).
    library : ``"pandas"`` (default) or ``"polars"``.
    schema : ``None`` uses the ``.schema.json`` sidecar when present; ``False`` ignores it.

    Returns
    -------
    MitmlList : imputations 1..M; ``original`` is imputation 0 when the file holds it.
    """
    path = as_path(path)
    check_library(library)
    check_source(path, _DATA)
    if layout is None:
        with reading(path, _DATA):
            layout = "stacked" if _is_number(_first_token(path)) else "separate"
    if layout not in ("stacked", "separate"):
        raise ValueError(f"`layout` must be 'stacked' or 'separate'; got {layout!r}.")
    sch = read_sidecar(path, schema, None, "blimp")
    if sch is not None:
        flags = [sch.extra["missing"]]
        cols = sch.file_columns
    else:
        flags = (
            []
            if missing is None
            else ([missing] if np.isscalar(missing) else list(cast(Sequence[float], missing)))
        )
        cols = None
    if names is not None:
        cols = list(names)
    key = "\x00imputation"
    if layout == "stacked":
        if cols is None:
            nf = _names_path(path)
            if nf.exists():
                listed = [
                    ln.strip() for ln in nf.read_text(encoding="utf-8").splitlines() if ln.strip()
                ]
                cols = listed[1:] if listed and listed[0] == _IMP else listed
        check_digests(path, schema, [path], _DATA)
        df = read_table(path, None if cols is None else [key, *cols], flags, _DATA)
        if cols is None:
            df.columns = [key] + [f"V{j}" for j in range(1, df.shape[1])]
        order = np.argsort(df[key].to_numpy(), kind="stable")
        df = df.iloc[order].reset_index(drop=True)
    else:
        with reading(path, _LIST):
            files = [
                ln.strip() for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()
            ]
        if not files:
            raise FileFormatError(f"list file '{path}' names no data files.")
        paths = [Path(f) if Path(f).is_absolute() else path.parent / f for f in files]
        if cols is None:
            stem = (
                path.name[: -len("list" + path.suffix)] if path.stem.endswith("list") else path.stem
            )
            nf = path.with_name(f"{stem.rstrip('_')}_names.txt")
            if nf.exists():
                cols = [
                    ln.strip() for ln in nf.read_text(encoding="utf-8").splitlines() if ln.strip()
                ]
        keys = list(range(1, len(paths) + 1))
        if sch is not None and sch.original:
            paths = [path.parent / sch.extra["files"][0], *paths]
            keys = [0, *keys]
        check_digests(path, schema, paths, _DATA)
        blocks = [read_table(p, cols, flags, _DATA) for p in paths]
        if len({b.shape[1] for b in blocks}) > 1:
            raise FileFormatError(
                f"the data files named in '{path}' have different numbers of columns "
                f"{sorted({b.shape[1] for b in blocks})}; every imputation must hold the same "
                "variables."
            )
        df = pd.concat(blocks, ignore_index=True)
        df[key] = np.repeat(keys, [len(b) for b in blocks])
    users = [c for c in df.columns if c != key]
    if sch is not None and users != sch.file_columns:
        raise ValueError(
            f"`names` {users} do not match the schema's {sch.file_columns}; pass schema=False."
        )
    if sch is None:
        sch = infer_schema(df, users, {}, ordered=(), library=library, fmt="blimp")
    return assemble(df, key, sch, library, original_key=0, source=(path, _DATA))


_DATA = "Blimp data"
_LIST = "Blimp list"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True
