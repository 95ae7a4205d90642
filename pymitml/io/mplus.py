"""Mplus ``TYPE = IMPUTATION``: one headerless numeric file per imputation, a list file, an input
template and a code table; and back.

Files for ``stem``: ``<stem>1.dat .. <stem>M.dat`` (free format, numeric only, ``missing`` as
the missing flag), ``<stem>list.dat`` (one data-file name per line), ``<stem>.inp`` (DATA and
VARIABLE sections: ``FILE``, ``TYPE = IMPUTATION``, ``NAMES``, ``MISSING``, ``CLUSTER``; the code
table of categorical variables as comments), ``<stem>.log`` (variables and code tables, in the
layout of mitml's ``write.mitmlMplus``) and, when any column is coded, ``<stem>_codes.csv``
(``variable,code,value``). Categories are written as their codes; text columns, which Mplus
cannot read, become integer codes as in mitml's ``write.mitmlMplus`` (the sorted distinct values
numbered 1..K; one table for all imputations, where mitml numbers each on its own), and the
sidecar turns them back into text on reading. Mplus variable names have at most 8 characters (Mplus
User's Guide: letters, digits and ``_``, beginning with a letter, not case sensitive).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._validation import check_library
from ..exceptions import FileFormatError
from ._files import (
    MissingFileError,
    Staged,
    as_path,
    check_new,
    check_source,
    digest,
    reading,
    sidecar_path,
)
from ._names import MPLUS, file_names
from ._read import assemble, infer_schema
from ._registry import register_reader, register_writer
from ._schema import build_schema, check_digests, encode_block, kind_of, read_sidecar
from ._stack import check_mlist
from ._text import flag_text, integral_columns, read_table, write_table

__all__ = ["read_mplus", "write_mplus"]

_WIDTH = 80  # Mplus reads input lines of up to 90 characters


def _stem_paths(stem: Path, m: int) -> tuple[list[Path], Path, Path, Path]:
    data = [stem.with_name(f"{stem.name}{i}.dat") for i in range(1, m + 1)]
    return (
        data,
        stem.with_name(f"{stem.name}list.dat"),
        stem.with_name(f"{stem.name}.inp"),
        stem.with_name(f"{stem.name}.log"),
    )


@register_writer("mplus")
def write_mplus(
    mlist,
    stem,
    *,
    missing: float = -999,
    cluster: str | None = None,
    sep: str = "\t",
    names: str = "error",
    rename: Mapping[str, str] | None = None,
    inp: bool = True,
    schema: bool = True,
    overwrite: bool = False,
) -> list[Path]:
    """Write the imputed data sets for Mplus ``TYPE = IMPUTATION``.

    Parameters
    ----------
    mlist : MitmlList (or an ImputationResult, completed first). The original data are not
        written (Mplus analyses the imputations only).
    stem : path prefix, e.g. ``"out/imp"`` gives ``out/imp1.dat``, ..., ``out/implist.dat``,
        ``out/imp.inp`` and ``out/imp.log``.
    missing : the missing flag for cells that are still missing (default -999); no observed
        value may equal it.
    cluster : column named in ``CLUSTER =`` of the input template.
    sep : field separator, tab (default), space or comma.
    names : ``"error"`` (default): a name Mplus cannot hold (more than 8 characters, characters
        other than letters, digits and ``_``, not beginning with a letter, equal up to case) is a
        ValueError; ``"map"``: legal names are made up and the mapping is printed.
    rename : ``{column: name in the file}`` applied first.
    inp : also write the ``.inp`` template and the ``.log`` code table.
        Text and categorical columns are written as integer codes; their code table goes to
        ``<stem>_codes.csv`` (always) and the ``.log`` (with ``inp``).
    schema : also write ``<stem>list.dat.schema.json`` so that :func:`read_mplus` gives back
        identical data.
    overwrite : replace existing files; by default an existing file is an error and nothing is
        written (mitml's ``write.mitmlMplus`` overwrites silently).

    Returns
    -------
    list of Path : the files written.

    Examples
    --------
    >>> implist.to_mplus("out/imp", cluster="school")  # doctest: +SKIP
    """
    mlist = check_mlist(mlist, "write_mplus")
    stem = as_path(stem, "stem")
    flag = flag_text(missing)
    if sep not in ("\t", " ", ","):
        raise ValueError(
            f"`sep` must be a tab, a space or a comma (Mplus free format); got {sep!r}."
        )
    if cluster is not None and cluster not in mlist.columns:
        raise ValueError(
            f"`cluster` '{cluster}' is not a column of the data; columns are {mlist.columns}."
        )
    fnames = file_names(mlist.columns, MPLUS, names, rename)
    sch = build_schema(mlist, "mplus", fnames, original=False)
    text = _code_text(sch, mlist)
    sch.extra.update(missing=float(missing), sep=sep)
    data, lst, inp_path, log_path = _stem_paths(stem, len(mlist))
    codes_path = stem.with_name(f"{stem.name}_codes.csv")
    coded = any(c.categories is not None for c in sch.columns)
    paths = (
        data
        + [lst]
        + ([inp_path, log_path] if inp else [])
        + ([codes_path] if coded else [])
        + ([sidecar_path(lst)] if schema else [])
    )
    check_new(paths, overwrite)

    integral = [i or c.file in text for i, c in zip(integral_columns(sch), sch.columns)]
    with Staged(paths) as st:
        for f, p in zip(mlist, data):  # one data set at a time
            block = _recode(sch, text, encode_block(f, sch))
            write_table(
                st[p], [block[c.file] for c in sch.columns], integral, missing, sep, shown=p.name
            )
            del block, f
        st[lst].write_text("".join(p.name + "\n" for p in data), encoding="utf-8")
        if inp:
            st[inp_path].write_text(
                _inp_text(
                    sch, lst.name, flag, fnames.get(cluster) if cluster is not None else None
                ),
                encoding="utf-8",
            )
            st[log_path].write_text(_log_text(sch), encoding="utf-8")
        if coded:
            st[codes_path].write_text(_codes_csv(sch), encoding="utf-8")
        if schema:
            sch.extra["sha256"] = {p.name: digest(st[p]) for p in data}
            sch.write(st[sidecar_path(lst)])
    return paths


def _is_text(spec) -> bool:
    return "string" in {spec.kind, *([] if spec.orig_dtype is None else [kind_of(spec.orig_dtype)])}


def _code_text(sch, mlist) -> set[str]:
    """Text columns become integer codes, as mitml's ``write.mitmlMplus`` does with every
    non-numeric column (``as.numeric(as.factor(x))``): the distinct values, sorted, are numbered
    1..K. Unlike mitml, which numbers each imputation on its own, one table serves all data
    sets, so a code means the same text in every file. The table is stored in the column's spec
    (``categories`` = texts, ``codes`` = 1..K); :func:`_recode` applies it to a data set. The
    distinct values are gathered in one pass over the data sets (none when no column is text)."""
    text = [spec for spec in sch.columns if _is_text(spec)]
    if not text:
        return set()
    seen: dict[str, set[str]] = {spec.file: set() for spec in text}
    for f in mlist:
        b = encode_block(f, sch)
        for spec in text:
            seen[spec.file].update(str(v) for v in b[spec.file] if v is not None and not pd.isna(v))
        del b, f
    for spec in text:
        values = sorted(seen[spec.file])
        spec.categories, spec.codes = values, list(range(1, len(values) + 1))
    return {spec.file for spec in text}


def _recode(sch, text: set[str], block: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``block`` with its text columns (``text``) replaced by their codes, in place."""
    for spec in sch.columns:
        if spec.file not in text:
            continue
        index = pd.Index(spec.categories, dtype=object)
        raw = np.asarray(block[spec.file], dtype=object)
        miss = pd.isna(raw)
        pos = index.get_indexer(np.where(miss, "", raw).astype(str).astype(object))
        codes = (pos + 1).astype(np.float64)
        codes[miss] = np.nan
        block[spec.file] = codes
    return block


def _codes_csv(sch) -> str:
    """The code table as CSV: ``variable,code,value``, one row per category or text value."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["variable", "code", "value"])
    for c in sch.columns:
        if c.categories is not None:
            for code, cat in zip(c.codes, c.categories):
                w.writerow([c.file, code, cat])
    return buf.getvalue()


def _wrap(head: str, words: Sequence[str], indent: str = "    ") -> list[str]:
    lines, cur = [], head
    for w in words:
        if len(cur) + 1 + len(w) > _WIDTH and cur.strip():
            lines.append(cur)
            cur = indent + w
        else:
            cur = f"{cur} {w}" if cur else w
    lines.append(cur + ";")
    return lines


def _code_lines(sch) -> list[str]:
    out = []
    for c in sch.columns:
        if c.categories is not None:
            pairs = [f"{code} = {cat}" for code, cat in zip(c.codes, c.categories)]
            out += _wrap(
                f"!   {c.file}:",
                [p + "," for p in pairs[:-1]] + [pairs[-1]] if pairs else [],
                indent="!       ",
            )
            out[-1] = out[-1][:-1]  # no ';' after a comment
    return out


def _inp_text(sch, listname: str, flag: str, cluster: str | None) -> str:
    cats = [c for c in sch.columns if c.categories is not None]
    lines = [
        "TITLE:",
        f"  Multiply imputed data: {sch.m} imputations of {sch.n} cases, written by pymitml.",
        "DATA:",
        f"  FILE = {listname};",
        "  TYPE = IMPUTATION;",
        "VARIABLE:",
        *_wrap("  NAMES =", [c.file for c in sch.columns]),
        f"  MISSING = ALL ({flag});",
    ]
    if cluster:
        lines.append(f"  CLUSTER = {cluster};")
    lines.append("  ! USEVARIABLES = ...;")
    if cats:
        ordered = [c.file for c in cats if c.ordered]
        nominal = [c.file for c in cats if not c.ordered]
        lines.append(
            "  ! categorical variables are integer codes (code table below); as outcomes declare"
        )
        if ordered:
            lines += ["  ! " + ln.strip() for ln in _wrap("CATEGORICAL =", ordered)]
        if nominal:
            lines += ["  ! " + ln.strip() for ln in _wrap("NOMINAL =", nominal)]
    lines += [
        "ANALYSIS:",
        f"  ! TYPE = {'TWOLEVEL' if cluster else 'GENERAL'};",
        "MODEL:",
        "  ! your model here",
    ]
    if cats:
        lines += ["", "! Code table of the categorical variables (value in the data = category):"]
        lines += _code_lines(sch)
    return "\n".join(lines) + "\n"


def _log_text(sch) -> str:
    """Variables and code tables in the layout of mitml's ``write.mitmlMplus`` log."""
    text = "The data set featured the following variables:\n\n" + " ".join(
        c.file for c in sch.columns
    )
    cats = [c for c in sch.columns if c.categories is not None]
    if cats:
        text += "\n\nFactors were converted to numeric values as follows:\n "
        for c in cats:
            text += f"\n{c.file}:\n" + "".join(
                f"{k} = {code}\n" for code, k in zip(c.codes, c.categories)
            )
    return text + "\n"


# --- reading -----------------------------------------------------------------------------------
def _expand(tokens: list[str]) -> list[str]:
    """Mplus name lists: ``y1-y3`` is ``y1 y2 y3``."""
    out = []
    for t in tokens:
        m = re.fullmatch(r"([A-Za-z_]\w*?)(\d+)-\1(\d+)", t)
        if m:
            a, b = int(m.group(2)), int(m.group(3))
            out += [f"{m.group(1)}{k}" for k in range(a, b + 1)]
        else:
            out.append(t)
    return out


def parse_inp(text: str) -> dict[str, Any]:
    """NAMES, MISSING flags and CLUSTER from an Mplus input file (comments dropped)."""
    body = "\n".join(line.split("!", 1)[0] for line in text.splitlines())
    out: dict[str, Any] = {}
    m = re.search(r"\bNAMES?\s*(?:=|\bARE\b|\bIS\b)\s*([^;]*);", body, re.IGNORECASE)
    if m:
        out["names"] = _expand(m.group(1).split())
    m = re.search(r"\bMISSING\s*(?:=|\bARE\b|\bIS\b)\s*([^;]*);", body, re.IGNORECASE)
    if m:
        spec = m.group(1)
        vals = re.findall(r"\(([^)]*)\)", spec)
        flags = [float(v) for grp in vals for v in grp.replace(",", " ").split() if _is_number(v)]
        out["missing"] = flags
    m = re.search(r"\bCLUSTER\s*(?:=|\bIS\b)\s*([^;]*);", body, re.IGNORECASE)
    if m:
        out["cluster"] = m.group(1).split()
    return out


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def parse_log(text: str) -> dict[str, dict[float, str]]:
    """Code tables ``{variable: {code: category}}`` from a mitml/pymitml Mplus ``.log``."""
    if "Factors were converted to numeric values as follows:" not in text:
        return {}
    tail = text.split("Factors were converted to numeric values as follows:", 1)[1]
    out: dict[str, dict[float, str]] = {}
    cur = None
    for line in tail.splitlines():
        s = line.rstrip("\n")
        if not s.strip():
            continue
        if s.endswith(":") and " = " not in s:
            cur = s[:-1].strip()
            out[cur] = {}
        elif cur is not None and " = " in s:
            label, code = s.rsplit(" = ", 1)
            out[cur][float(code)] = label
    return out


def _find_inp(listfile: Path) -> Path | None:
    name = listfile.name
    if name.lower().endswith("list.dat"):
        cand = listfile.with_name(name[: -len("list.dat")] + ".inp")
        if cand.exists():
            return cand
    for p in sorted(listfile.parent.glob("*.inp")):
        if re.search(
            r"\bFILE\s*(?:=|\bIS\b)\s*\"?" + re.escape(name),
            p.read_text(errors="replace"),
            re.IGNORECASE,
        ):
            return p
    return None


@register_reader("mplus")
def read_mplus(
    listfile,
    *,
    names: Sequence[str] | None = None,
    missing: float | Sequence[float] | None = None,
    library: str = "pandas",
    schema: Any = None,
    inp: Any = None,
) -> Any:
    """Read Mplus ``TYPE = IMPUTATION`` data (a list file naming one data file per line) into a MitmlList.

    Parameters
    ----------
    listfile : the list file (``<stem>list.dat``); data-file names in it are relative to its folder.
    names : column names; default: from the schema sidecar, else from ``NAMES`` in the input
        file, else ``V1, V2, ...``.
    missing : missing flag(s); default: from the schema sidecar, else from ``MISSING`` in the
        input file.
    library : ``"pandas"`` (default) or ``"polars"``.
    schema : ``None`` uses ``<listfile>.schema.json`` when present (identical names, dtypes and
        categories); ``False`` ignores it; a path names it.
    inp : the input file; default: ``<stem>.inp`` beside the list file, or an ``.inp`` there
        whose ``FILE =`` names the list file. The ``.log`` with the same stem (mitml's or
        pymitml's code table) turns coded columns back into categories when there is no sidecar.

    Returns
    -------
    MitmlList : one data set per data file (``original`` is None).
    """
    listfile = as_path(listfile, "listfile")
    check_library(library)
    if not listfile.exists():
        raise MissingFileError(
            f"cannot read '{listfile}' as {_LIST}: there is no file of that name (the list "
            "file does not exist)."
        )
    if listfile.is_file() and listfile.stat().st_size == 0:
        raise FileFormatError(f"list file '{listfile}' names no data files (it is empty).")
    check_source(listfile, _LIST, "list file")
    with reading(listfile, _LIST):
        files = [
            ln.strip().strip('"')
            for ln in listfile.read_text(encoding="utf-8").splitlines()
            if ln.strip()
        ]
        if not files:
            raise FileFormatError(f"list file '{listfile}' names no data files.")
    paths = [Path(f) if Path(f).is_absolute() else listfile.parent / f for f in files]
    return _read_mplus(listfile, paths, names, missing, library, schema, inp)


_LIST = "Mplus list"
_DATA = "Mplus data"


def _uncode_text(df: pd.DataFrame, sch) -> pd.DataFrame:
    """Text columns written as codes (see :func:`_code_text`) back to their text."""
    fix = {}
    for spec in sch.columns:
        if not (_is_text(spec) and spec.codes is not None):
            continue
        f = df[spec.file].to_numpy(dtype=np.float64)
        pos = pd.Index(np.asarray(spec.codes, dtype=np.float64)).get_indexer(f)
        bad = (pos < 0) & ~np.isnan(f)
        if bad.any():
            raise FileFormatError(
                f"column '{spec.file}' holds codes {pd.unique(f[bad])[:5].tolist()} that are not "
                "in its code table; the file was changed after it was written. Read it with "
                "schema=False."
            )
        table = np.asarray(list(spec.categories) + [None], dtype=object)
        fix[spec.file] = table[pos]
    return df.assign(**fix) if fix else df


def _read_mplus(listfile: Path, paths: list[Path], names, missing, library, schema, inp) -> Any:
    check_digests(listfile, schema, paths, _DATA)
    sch = read_sidecar(listfile, schema, None, "mplus")
    info: dict[str, Any] = {}
    codes: dict = {}
    if sch is None:
        inp_path = as_path(inp, "inp") if inp is not None else _find_inp(listfile)
        if inp_path is not None:
            info = parse_inp(inp_path.read_text(encoding="utf-8", errors="replace"))
            log = inp_path.with_suffix(".log")
            if log.exists():
                codes = parse_log(log.read_text(encoding="utf-8", errors="replace"))
    if names is not None:
        cols: list[str] | None = list(names)
    elif sch is not None:
        cols = sch.file_columns
    else:
        cols = info.get("names")
    flags: list[Any]
    if missing is not None:
        flags = [missing] if np.isscalar(missing) else list(cast(Sequence[float], missing))
    elif sch is not None:
        flags = [sch.extra["missing"]]
    else:
        flags = info.get("missing", [])
    blocks = [read_table(p, cols, flags, _DATA) for p in paths]
    widths = {b.shape[1] for b in blocks}
    if len(widths) > 1:
        raise FileFormatError(
            f"the data files named in '{listfile}' have different numbers of columns "
            f"{sorted(widths)}; every imputation must hold the same variables."
        )
    df = pd.concat(blocks, ignore_index=True)
    key = "\x00imputation"
    df[key] = np.repeat(np.arange(1, len(blocks) + 1), [len(b) for b in blocks])
    users = [c for c in df.columns if c != key]
    if sch is not None and users != sch.file_columns:
        raise ValueError(
            f"`names` {users} do not match the schema's {sch.file_columns}; pass schema=False."
        )
    if sch is None:
        sch = infer_schema(df, users, codes, ordered=(), library=library, fmt="mplus")
        sch.original = False
    else:
        df = _uncode_text(df, sch)
    return assemble(df, key, sch, library, original_key=None, source=(listfile, _DATA))
