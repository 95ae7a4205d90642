"""The Stata .dta container, formats 117 (Stata 13) and 118 (Stata 14-18), written byte by byte.

pandas' and pyreadstat's writers leave out characteristics, which ``mi`` needs, so the file is
assembled here: header, map of section offsets, variable types, names, sort list, display
formats, value-label names, variable labels, characteristics, the rows (one fixed-width record
each), an empty strL section and the value-label tables. Numbers are little-endian ("LSF").

Characteristic record (``<ch>``): uint32 length, variable name and characteristic name (33 bytes
each in 117, 129 in 118, NUL padded), the contents NUL terminated.
"""

from __future__ import annotations

import datetime as _dt
import struct
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import cast

import numpy as np
from pandas import isna as pd_isna

from ..exceptions import FileFormatError

__all__ = [
    "MISSING",
    "OldDtaFormat",
    "STATA_TYPES",
    "DtaVariable",
    "read_characteristics",
    "read_value_label_names",
    "write_dta",
]

# type codes of formats 117/118 (str# is the width itself, 1..2045)
STATA_TYPES = {"byte": 65530, "int": 65529, "long": 65528, "float": 65527, "double": 65526}
_NUMPY = {"byte": "<i1", "int": "<i2", "long": "<i4", "float": "<f4", "double": "<f8"}
# the system missing value "." of each numeric type, and the largest non-missing value
MISSING = {
    "byte": 101,
    "int": 32741,
    "long": 2147483621,
    "float": np.frombuffer(b"\x00\x00\x00\x7f", "<f4")[0],
    "double": np.frombuffer(b"\x00\x00\x00\x00\x00\x00\xe0\x7f", "<f8")[0],
}
INT_RANGE = {"byte": (-127, 100), "int": (-32767, 32740), "long": (-2147483647, 2147483620)}
_FORMATS = {"byte": "%8.0g", "int": "%8.0g", "long": "%12.0g", "float": "%9.0g", "double": "%10.0g"}
STR_MAX = 2045


@dataclass
class DtaVariable:
    """One variable: name, storage type (``byte`` ... ``double`` or ``str``), values, labels.

    ``values`` is float64 with NaN for missing (numeric types) or an object array of text.
    """

    name: str
    type: str
    values: np.ndarray
    label: str = ""
    value_label: str = ""
    width: int = 0  # bytes of a str# variable
    format: str = field(default="")


def _sizes(version: int) -> dict:
    if version == 117:
        return {
            "name": 33,
            "fmt": 49,
            "vlab": 81,
            "K": "<H",
            "N": "<I",
            "lab": "<B",
            "enc": "latin-1",
        }
    return {"name": 129, "fmt": 57, "vlab": 321, "K": "<H", "N": "<Q", "lab": "<H", "enc": "utf-8"}


def _fixed(text: str, size: int, enc: str, what: str) -> bytes:
    b = text.encode(enc)
    if len(b) >= size:
        raise ValueError(
            f"{what} '{text}' is too long for this Stata format ({len(b)} bytes; at most {size - 1})."
        )
    return b + b"\x00" * (size - len(b))


def _tag(name: str, body: bytes) -> bytes:
    return b"<" + name.encode() + b">" + body + b"</" + name.encode() + b">"


def _record_dtype(variables: list[DtaVariable]) -> np.dtype:
    """One row's fixed-width record (packed, little-endian)."""
    return np.dtype(
        [
            (f"f{i}", f"S{v.width}" if v.type == "str" else _NUMPY[v.type])
            for i, v in enumerate(variables)
        ]
    )


def _records(variables: list[DtaVariable], nobs: int, enc: str) -> bytes:
    """All rows as fixed-width little-endian records (one numpy structured array)."""
    rec = np.zeros(nobs, dtype=_record_dtype(variables))
    for i, v in enumerate(variables):
        if v.type == "str":
            vals = np.asarray(v.values, dtype=object)
            enc_vals = np.char.encode(np.where(pd_isna(vals), "", vals).astype(str), enc)
            rec[f"f{i}"] = enc_vals
        else:
            x = np.asarray(v.values, dtype=np.float64)
            miss = np.isnan(x)
            col = np.where(miss, MISSING[v.type], x)
            rec[f"f{i}"] = col.astype(_NUMPY[v.type])
            if v.type == "double":  # make sure "." is exactly Stata's bit pattern
                rec[f"f{i}"][miss] = MISSING["double"]
    return rec.tobytes()


def _value_label_table(name: str, entries: list[tuple[int, str]], sz: dict) -> bytes:
    entries = sorted(entries)
    txt = b""
    offs, vals = [], []
    for val, lab in entries:
        offs.append(len(txt))
        vals.append(val)
        b = lab.encode(sz["enc"])
        if len(b) > 32000:
            raise ValueError(
                f"value label '{lab[:40]}...' of '{name}' is longer than Stata's 32,000 bytes."
            )
        txt += b + b"\x00"
    n = len(entries)
    table = (
        struct.pack("<ii", n, len(txt))
        + struct.pack(f"<{n}i", *offs)
        + struct.pack(f"<{n}i", *vals)
        + txt
    )
    body = (
        struct.pack("<i", len(table))
        + _fixed(name, sz["name"], sz["enc"], "value label name")
        + b"\x00\x00\x00"
        + table
    )
    return _tag("lbl", body)


def write_dta(
    path: Path,
    variables: list[DtaVariable],
    nobs: int,
    *,
    version: int = 118,
    data_label: str = "",
    characteristics: Sequence[tuple[str, str, str]] = (),
    value_labels: dict[str, list[tuple[int, str]]] | None = None,
    sort_by: Sequence[str] = (),
    timestamp: _dt.datetime | None = None,
    chunks: Callable[[], Iterable[list[np.ndarray]]] | None = None,
) -> None:
    """Write a .dta file (format 117 or 118) with the given variables and characteristics.

    ``chunks``: the data in runs of rows, for files too large to hold at once: a function
    returning an iterable of lists of value arrays (one per variable, in order, as
    ``DtaVariable.values``) that together make the ``nobs`` rows; the variables' own ``values``
    are then not read (their types and widths must fit every chunk)."""
    sz = _sizes(version)
    enc = sz["enc"]
    K = len(variables)
    ts = (timestamp or _dt.datetime.now()).strftime("%d %b %Y %H:%M").encode("ascii")
    lab = data_label.encode(enc)
    if len(data_label) > 80:
        raise ValueError(f"the data label '{data_label}' is longer than Stata's 80 characters.")
    header = _tag(
        "header",
        _tag("release", str(version).encode())
        + _tag("byteorder", b"LSF")
        + _tag("K", struct.pack(sz["K"], K))
        + _tag("N", struct.pack(sz["N"], nobs))
        + _tag("label", struct.pack(sz["lab"], len(lab)) + lab)
        + _tag("timestamp", struct.pack("<B", len(ts)) + ts),
    )
    types = b"".join(
        struct.pack("<H", v.width if v.type == "str" else STATA_TYPES[v.type]) for v in variables
    )
    names = b"".join(_fixed(v.name, sz["name"], enc, "variable name") for v in variables)
    index = {v.name: i + 1 for i, v in enumerate(variables)}
    sort = [index[s] for s in sort_by] + [0] * (K + 1 - len(sort_by))
    sortlist = struct.pack(f"<{K + 1}H", *sort)
    fmts = b"".join(
        _fixed(
            v.format or (f"%{v.width}s" if v.type == "str" else _FORMATS[v.type]),
            sz["fmt"],
            enc,
            "format",
        )
        for v in variables
    )
    vlnames = b"".join(
        _fixed(v.value_label, sz["name"], enc, "value label name") for v in variables
    )
    for v in variables:
        if len(v.label) > 80:
            raise ValueError(
                f"the variable label of '{v.name}' is longer than Stata's 80 characters: '{v.label}'."
            )
    vlabels = b"".join(_fixed(v.label, sz["vlab"], enc, "variable label") for v in variables)
    chars = b""
    for var, name, contents in characteristics:
        body = (
            _fixed(var, sz["name"], enc, "characteristic owner")
            + _fixed(name, sz["name"], enc, "characteristic")
            + contents.encode(enc)
            + b"\x00"
        )
        chars += _tag("ch", struct.pack("<I", len(body)) + body)
    data: bytes | None = None if chunks is not None else _records(variables, nobs, enc)
    data_len = nobs * _record_dtype(variables).itemsize if data is None else len(data)
    vls = b"".join(_value_label_table(n, e, sz) for n, e in (value_labels or {}).items())

    sections = [
        ("variable_types", types),
        ("varnames", names),
        ("sortlist", sortlist),
        ("formats", fmts),
        ("value_label_names", vlnames),
        ("variable_labels", vlabels),
        ("characteristics", chars),
        ("data", data),
        ("strls", b""),
        ("value_labels", vls),
    ]
    start = b"<stata_dta>" + header
    map_len = len(b"<map>") + 14 * 8 + len(b"</map>")
    offsets = [0, len(start)]
    pos = len(start) + map_len
    for name, content in sections:
        offsets.append(pos)
        size = data_len if name == "data" else len(cast(bytes, content))
        pos += len(name) * 2 + 5 + size  # <name>content</name>
    end = b"</stata_dta>"
    offsets += [pos, pos + len(end)]  # </stata_dta>, end of file
    with open(path, "wb") as fh:
        fh.write(start + _tag("map", struct.pack("<14Q", *offsets)))
        for name, content in sections:
            fh.write(b"<" + name.encode() + b">")
            if content is not None:
                fh.write(content)
            else:  # the data, one chunk of rows at a time
                written = 0
                for values in cast(Callable, chunks)():
                    part = [replace(v, values=x) for v, x in zip(variables, values)]
                    rec = _records(part, len(values[0]), enc)
                    written += len(rec)
                    fh.write(rec)
                if written != data_len:
                    raise ValueError(
                        f"the data chunks hold {written} bytes of records, not the {data_len} "
                        f"of {nobs} rows."
                    )
            fh.write(b"</" + name.encode() + b">")
        fh.write(end)


class OldDtaFormat(FileFormatError):
    """A .dta file of a format before 117 (no map or characteristics this module parses)."""


def _layout(raw: bytes, path: Path) -> tuple[int, str, int, str, tuple]:
    """Release, byte order, name width, encoding and section offsets of a 117-119 file."""
    if not raw.startswith(b"<stata_dta><header><release>"):
        raise OldDtaFormat(
            f"'{path}' is not a Stata 13+ .dta file (formats 117-119); older formats have "
            "no characteristics section this reader understands."
        )
    release = int(raw[28:31])
    if release not in (117, 118, 119):
        raise FileFormatError(
            f"cannot read '{path}' as Stata .dta: it has release {release}; this reader knows "
            "117, 118 and 119 (and, through pyreadstat, the formats before 117)."
        )
    at = raw.index(b"<byteorder>") + 11
    bo = "<" if raw[at : at + 3] == b"LSF" else ">"
    namelen = 33 if release == 117 else 129
    m = raw.index(b"<map>") + 5
    return (
        release,
        bo,
        namelen,
        "latin-1" if release == 117 else "utf-8",
        struct.unpack(f"{bo}14Q", raw[m : m + 112]),
    )


def read_value_label_names(path: Path) -> dict[str, str]:
    """``{variable: name of its value-label table}`` for the variables that have one."""
    raw = Path(path).read_bytes()
    release, bo, namelen, enc, offsets = _layout(raw, path)
    at = raw.index(b"<K>") + 3
    (k,) = struct.unpack(
        f"{bo}{'I' if release == 119 else 'H'}", raw[at : at + (4 if release == 119 else 2)]
    )

    def names(section: int, tag: bytes) -> list[str]:
        start = offsets[section] + len(tag)
        return [
            raw[start + i * namelen : start + (i + 1) * namelen].split(b"\x00", 1)[0].decode(enc)
            for i in range(k)
        ]

    var = names(3, b"<varnames>")
    lab = names(6, b"<value_label_names>")
    return {v: n for v, n in zip(var, lab) if n}


def read_characteristics(path: Path) -> dict[str, dict[str, str]]:
    """All characteristics of a .dta file (117, 118 or 119): ``{variable: {name: contents}}``.

    Dataset characteristics are under ``"_dta"``. Parsed from the file's bytes through its map
    of section offsets, independently of any other reader.
    """
    raw = Path(path).read_bytes()
    _, bo, namelen, enc, offsets = _layout(raw, path)
    pos = offsets[8]
    if raw[pos : pos + 17] != b"<characteristics>":
        raise FileFormatError(
            f"cannot read '{path}' as Stata .dta: the map does not point at <characteristics>, "
            "so the file is corrupted."
        )
    pos += 17
    out: dict[str, dict[str, str]] = {}
    while raw[pos : pos + 4] == b"<ch>":
        (length,) = struct.unpack(f"{bo}I", raw[pos + 4 : pos + 8])
        body = raw[pos + 8 : pos + 8 + length]
        var = body[:namelen].split(b"\x00", 1)[0].decode(enc)
        name = body[namelen : 2 * namelen].split(b"\x00", 1)[0].decode(enc)
        contents = body[2 * namelen :].split(b"\x00", 1)[0].decode(enc)
        out.setdefault(var, {})[name] = contents
        pos += 8 + length
        if raw[pos : pos + 5] != b"</ch>":
            raise FileFormatError(
                f"cannot read '{path}' as Stata .dta: a characteristic record is not closed by "
                "</ch>, so the file is corrupted."
            )
        pos += 5
    if raw[pos : pos + 18] != b"</characteristics>":
        raise FileFormatError(
            f"cannot read '{path}' as Stata .dta: the characteristics section is not closed, so "
            "the file is corrupted or truncated."
        )
    return out
