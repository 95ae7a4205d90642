"""Column schema: what each column of a MitmlList is, how it is written, and how it comes back.

A writer turns every column into plain values a format can hold (numbers with NaN for missing,
or text): categories become the numbers (or labels) of a code table, booleans 0/1. The
:class:`Schema` records the source dtypes (pandas or polars), categories (with unused levels and
their order), the code table and the names in the file; it is stored beside the file as JSON
(``<file>.schema.json``) or inside it (parquet). A reader decodes the plain values back through
it, so a round trip gives identical data, dtypes and categories.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pandas as pd

from .._frame import as_pandas, library_of
from ..exceptions import FileFormatError
from ._files import digest, sidecar_path

__all__ = [
    "ColumnSpec",
    "Schema",
    "build_schema",
    "decode_block",
    "encode_block",
    "read_sidecar",
    "check_digests",
    "split_sorted",
    "to_library",
]

_MAX_EXACT = 2.0**53


# --- dtype codecs (JSON-able descriptions of a pandas or polars dtype) -----------------------
def _py(v: Any) -> Any:
    """A JSON-able Python scalar for a category value."""
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, (bool, int, float, str)):
        return v
    raise TypeError(
        f"category value {v!r} of type {type(v).__name__} cannot be written; "
        "use categories that are text or numbers."
    )


def _pandas_codec(dtype, values: pd.Series | None = None, name: str = "") -> dict:
    if isinstance(dtype, pd.CategoricalDtype):
        cats = dtype.categories
        return {
            "lib": "pandas",
            "name": "category",
            "ordered": bool(dtype.ordered),
            "categories": [_py(c) for c in cats],
            "categories_dtype": _pandas_codec(cats.dtype),
        }
    if isinstance(dtype, pd.StringDtype):
        return {
            "lib": "pandas",
            "name": "string",
            "storage": dtype.storage,
            "na": "nan" if dtype.na_value is not pd.NA else "NA",
        }
    if dtype == np.dtype(object):
        if values is None:
            return {"lib": "pandas", "name": "object", "of": "string"}
        nn = values.dropna()
        if all(isinstance(v, str) for v in nn):
            return {"lib": "pandas", "name": "object", "of": "string"}
        if all(isinstance(v, (bool, np.bool_)) for v in nn):
            return {"lib": "pandas", "name": "object", "of": "bool"}
        raise TypeError(
            f"column '{name}' has object dtype with values that are neither all text nor all "
            "True/False; convert it (astype(float), astype('category') or astype(str)) first."
        )
    if (
        pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)
    ) and not pd.api.types.is_complex_dtype(dtype):
        return {"lib": "pandas", "name": str(dtype)}
    raise TypeError(
        f"column '{name}' has dtype {dtype}, which this format cannot carry; convert it to "
        "numbers, text or categories first (or write the long format to parquet, which keeps any dtype)."
    )


def _polars_codec(dtype, name: str = "") -> dict:
    import polars as pl

    if isinstance(dtype, pl.Enum):
        return {
            "lib": "polars",
            "name": "Enum",
            "categories": [str(c) for c in dtype.categories.to_list()],
        }
    if dtype == pl.Categorical:
        return {"lib": "polars", "name": "Categorical"}
    if dtype == pl.String or dtype == pl.Boolean or dtype.is_integer() or dtype.is_float():
        return {"lib": "polars", "name": str(dtype)}
    raise TypeError(
        f"column '{name}' has polars dtype {dtype}, which this format cannot carry; convert it to "
        "numbers, text or categories first (or write the long format to parquet, which keeps any dtype)."
    )


def kind_of(codec: dict) -> str:
    """``"float"``, ``"int"``, ``"bool"``, ``"string"`` or ``"category"``."""
    n = codec["name"]
    if n in ("category", "Enum", "Categorical"):
        return "category"
    if n in ("string", "String") or (n == "object" and codec.get("of") == "string"):
        return "string"
    if n in ("bool", "boolean", "Boolean") or n == "object":
        return "bool"
    if codec["lib"] == "polars":
        return "float" if n.startswith("Float") else "int"
    dt = pd.api.types.pandas_dtype(n)
    return "float" if pd.api.types.is_float_dtype(dt) else "int"


def _pandas_dtype(codec: dict):
    n = codec["name"]
    if n == "category":
        cats = pd.Index(codec["categories"], dtype=_pandas_dtype(codec["categories_dtype"]))
        return pd.CategoricalDtype(cats, ordered=codec["ordered"])
    if n == "string":
        return pd.StringDtype(codec["storage"], na_value=np.nan if codec["na"] == "nan" else pd.NA)
    return pd.api.types.pandas_dtype(n)


def _polars_dtype(codec: dict):
    import polars as pl

    n = codec["name"]
    if n == "Enum":
        return pl.Enum(codec["categories"])
    return getattr(pl, n)() if n == "Categorical" else getattr(pl, n)


# --- the schema -----------------------------------------------------------------------------
@dataclass
class ColumnSpec:
    """One column: its name in the data and in the file, dtypes, and the code table of categories.

    ``codes[k]`` is what the file holds for ``categories[k]`` (a number, or a label in text formats).
    """

    name: str
    file: str
    dtype: dict
    orig_dtype: dict | None = None
    categories: list | None = None
    ordered: bool = False
    codes: list | None = None

    @property
    def kind(self) -> str:
        return kind_of(self.dtype)


def _checksum(d: dict) -> str:
    """SHA-256 of the sidecar's contents in a canonical JSON form (keys sorted)."""
    import hashlib

    body = json.dumps(d, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(body.encode("utf-8")).hexdigest()


@dataclass
class Schema:
    """Everything a reader needs to rebuild the MitmlList from a format's plain values."""

    format: str
    library: str
    m: int
    n: int
    original: bool
    columns: list[ColumnSpec]
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        d = {"pymitml_schema": 1, **asdict(self)}
        d["checksum"] = _checksum(d)
        return json.dumps(d, indent=1, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Schema:
        d = json.loads(text)
        if not isinstance(d, dict) or d.get("pymitml_schema") != 1:
            raise FileFormatError("not a pymitml schema (version 1).")
        stored = d.pop("checksum", None)
        if stored is not None and stored != _checksum(d):
            raise FileFormatError(
                "its checksum does not match its contents, so it is corrupted or was edited"
            )
        d.pop("pymitml_schema")
        d["columns"] = [ColumnSpec(**c) for c in d["columns"]]
        return cls(**d)

    @property
    def file_columns(self) -> list[str]:
        return [c.file for c in self.columns]

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")


def read_sidecar(
    path: Path, schema: Any, file_columns: Sequence[str] | None = None, fmt: str | None = None
) -> Schema | None:
    """The schema for ``path``: ``schema=None`` uses ``<path>.schema.json`` when it is there,
    ``False`` ignores it, a path names another sidecar. A sidecar that does not match the file's
    columns is ignored with a warning (the file was changed after pymitml wrote it)."""
    if schema is False:
        return None
    side = sidecar_path(path) if schema is None or schema is True else Path(schema)
    if not side.exists():
        if schema not in (None, True):
            raise FileNotFoundError(f"`schema` file '{side}' does not exist.")
        return None
    try:
        s = Schema.from_json(side.read_text(encoding="utf-8"))
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        detail = str(exc) if isinstance(exc, FileFormatError) else f"{type(exc).__name__}: {exc}"
        raise FileFormatError(
            f"cannot use the schema sidecar '{side}': {detail}. Delete it, or read with "
            "schema=False."
        ) from exc
    if file_columns is not None and list(file_columns) != s.file_columns:
        warnings.warn(
            f"the schema sidecar '{side}' lists columns {s.file_columns}, but the file has "
            f"{list(file_columns)}; ignoring the sidecar (dtypes and categories come from the file).",
            UserWarning,
            stacklevel=3,
        )
        return None
    if fmt is not None and s.format != fmt:
        warnings.warn(
            f"the schema sidecar '{side}' was written for format {s.format!r}, not {fmt!r}; ignoring it.",
            UserWarning,
            stacklevel=3,
        )
        return None
    return s


def check_digests(base: Path, schema: Any, files: Sequence[Path], fmt: str) -> None:
    """The data files must be the ones the sidecar of ``base`` was written with (their SHA-256
    is stored in it): a file changed since (truncated, corrupted, edited) is a FileFormatError,
    never data decoded through a code table that may no longer fit. ``schema`` is the reader's
    argument (``False``: no check). A sidecar without checksums (older pymitml) is not checked."""
    if schema is False:
        return
    side = sidecar_path(base) if schema is None or schema is True else Path(schema)
    try:
        stored = json.loads(side.read_text(encoding="utf-8")).get("extra", {}).get("sha256")
    except (OSError, ValueError, AttributeError):
        return  # no sidecar (or not one of ours): read_sidecar reports it where it matters
    if not isinstance(stored, dict):
        return
    for f in files:
        want = stored.get(f.name)
        if want is not None and f.is_file() and digest(f) != want:
            raise FileFormatError(
                f"cannot read '{f}' as {fmt}: the file has changed since pymitml wrote it (its "
                "SHA-256 does not match the one in the schema sidecar), so it is truncated, "
                "corrupted or was edited. If it was edited on purpose, read it with schema=False."
            )


def _codes_for(cats: list, coding: str, int_range: tuple[float, float]) -> list:
    """What the file holds for each category: the integers themselves when every category is an
    integer in ``int_range`` (``coding="numeric"``), else 1..K; labels for ``coding="labels"``."""
    if coding == "labels":
        labels = [str(c) for c in cats]
        if len(set(labels)) != len(labels):
            raise ValueError(
                f"categories {cats} give duplicated text labels; make them distinct as text."
            )
        return labels
    ints = all(
        isinstance(c, (int, float))
        and not isinstance(c, bool)
        and float(c).is_integer()
        and int_range[0] <= c <= int_range[1]
        for c in cats
    )
    return [int(c) for c in cats] if ints and cats else list(range(1, len(cats) + 1))


class _Categories:
    """Categories (in order, unused included) and ordered flag of one categorical column,
    gathered one data set at a time; a data set with other categories is an error."""

    def __init__(self, first: Any, col: str, lib: str):
        self.col, self.lib = col, lib
        self.dtype = first[col].dtype
        self.codec = (
            _pandas_codec(self.dtype, name=col)
            if lib == "pandas"
            else _polars_codec(self.dtype, name=col)
        )
        self.values: Any = None
        if lib == "polars" and self.codec["name"] != "Enum":
            self.values = self._unique(first)

    def _unique(self, f: Any) -> Any:
        import polars as pl

        return f[self.col].cast(pl.String).drop_nulls().unique()

    def add(self, f: Any) -> None:
        col = self.col
        if self.lib == "pandas":
            if (
                not isinstance(f[col].dtype, pd.CategoricalDtype)
                or [_py(c) for c in f[col].cat.categories] != self.codec["categories"]
            ):
                raise ValueError(
                    f"column '{col}' has different categories in different data sets; give every "
                    "data set (and the original) the same categories with .cat.set_categories(...)."
                )
        elif self.codec["name"] == "Enum":
            if f[col].dtype != self.dtype:
                raise ValueError(
                    f"column '{col}' has different Enum categories in different data sets; "
                    "cast every data set (and the original) to one pl.Enum."
                )
        else:
            import polars as pl

            self.values = pl.concat([self.values, self._unique(f)]).unique()

    def result(self) -> tuple[list, bool]:
        if self.lib == "pandas":
            return self.codec["categories"], self.codec["ordered"]
        if self.codec["name"] == "Enum":
            return self.codec["categories"], True
        return self.values.sort().to_list(), False


def build_schema(
    mlist,
    fmt: str,
    names: dict[str, str],
    coding: str = "numeric",
    int_range: tuple[float, float] = (-_MAX_EXACT, _MAX_EXACT),
    original: bool = True,
) -> Schema:
    """The schema of ``mlist`` for format ``fmt`` (``names``: column -> name in the file).

    One pass over the data sets, one at a time (a lazy MitmlList builds each once and drops it).
    """
    lib = mlist.library
    orig = mlist.original if original else None
    columns = list(mlist.columns)

    def codec_of(f: Any, col: str) -> dict:
        s = f[col]
        return _pandas_codec(s.dtype, s, col) if lib == "pandas" else _polars_codec(s.dtype, col)

    sets = iter(mlist)
    first = next(sets)
    codecs = {col: codec_of(first, col) for col in columns}
    cats = {
        col: _Categories(first, col, lib) for col in columns if kind_of(codecs[col]) == "category"
    }
    n_sets = 1
    for f in sets:
        n_sets += 1
        for col in columns:
            c2, codec = codec_of(f, col), codecs[col]
            if kind_of(c2) != kind_of(codec) or (kind_of(c2) != "category" and c2 != codec):
                raise ValueError(
                    f"column '{col}' has dtype {f[col].dtype} in one data set but "
                    f"{first[col].dtype} in the first; give all data sets the same dtypes."
                )
        for acc in cats.values():
            acc.add(f)
        del f
    cols = []
    for col in columns:
        codec = codecs[col]
        ocodec = codec_of(orig, col) if orig is not None else None
        spec = ColumnSpec(col, names[col], codec, ocodec if ocodec != codec else None)
        if spec.kind == "category" or (ocodec is not None and kind_of(ocodec) == "category"):
            if ocodec is not None and kind_of(ocodec) != kind_of(codec):
                raise ValueError(
                    f"column '{col}' is categorical in the imputed data sets or in the original but "
                    "not in both; give the original the same dtype."
                )
            if orig is not None:
                cats[col].add(orig)
            spec.categories, spec.ordered = cats[col].result()
            spec.codes = _codes_for(spec.categories, coding, int_range)
        elif (
            ocodec is not None
            and {kind_of(ocodec), spec.kind} - {"float", "int", "bool"}
            and kind_of(ocodec) != spec.kind
        ):
            raise ValueError(
                f"column '{col}' is {spec.kind} in the imputed data sets but {kind_of(ocodec)} in "
                "the original; give the original the same dtype."
            )
        cols.append(spec)
    n = first.shape[0]
    return Schema(fmt, lib, n_sets, n, orig is not None, cols)


# --- encode: a data set -> plain values ----------------------------------------------------
def encode_block(frame: Any, schema: Schema, is_original: bool = False) -> dict[str, np.ndarray]:
    """Plain values of one data set, by name in the file: float64 (NaN missing) for numbers,
    booleans and numeric category codes; object arrays (None missing) for text and text labels."""
    pdf = as_pandas(frame)
    out: dict[str, np.ndarray] = {}
    for spec in schema.columns:
        s = pdf[spec.name]
        codec = (spec.orig_dtype or spec.dtype) if is_original else spec.dtype
        kind = kind_of(codec)
        if kind == "category":
            if (
                isinstance(s.dtype, pd.CategoricalDtype)
                and [_py(c) for c in s.cat.categories] == spec.categories
            ):
                idx = s.cat.codes.to_numpy()
            else:
                idx = pd.Categorical(s.astype(object), categories=spec.categories).codes
            codes = cast(list, spec.codes)  # set for every categorical column
            if codes and isinstance(codes[0], str):
                table = np.asarray(codes + [None], dtype=object)
            else:
                table = np.asarray(codes + [np.nan], dtype=np.float64)
            out[spec.file] = table[idx]
        elif kind == "string":
            v = s.to_numpy(dtype=object)
            out[spec.file] = _none_where(pd.isna(v), v)
        elif kind == "bool":
            out[spec.file] = pd.array(s.to_numpy(dtype=object), dtype="boolean").to_numpy(
                dtype=np.float64, na_value=np.nan
            )
        else:
            v = s.to_numpy(dtype=np.float64, na_value=np.nan)
            if kind == "int" and np.nanmax(np.abs(v), initial=0) > _MAX_EXACT:
                raise ValueError(
                    f"column '{spec.name}' holds integers beyond 2**53, which "
                    f"{schema.format} cannot store exactly; convert it to text or float first."
                )
            if not np.isfinite(v[~np.isnan(v)]).all():
                raise ValueError(
                    f"column '{spec.name}' holds infinite values, which {schema.format} cannot "
                    "store; replace them (e.g. with NaN) first."
                )
            out[spec.file] = v
    return out


# --- decode: plain values -> a data set ------------------------------------------------------
def _category_index(raw: np.ndarray, spec: ColumnSpec) -> np.ndarray:
    codes = cast(list, spec.codes)  # set for every categorical column
    if codes and isinstance(codes[0], str):
        obj = pd.Series(raw, dtype=object)
        missing = obj.isna().to_numpy()
        idx = pd.Index(codes, dtype=object).get_indexer(
            obj.where(~missing, None).astype(str).to_numpy(dtype=object)
        )
        idx[missing] = -1
    else:
        rawf = pd.to_numeric(pd.Series(raw), errors="coerce").to_numpy(dtype=np.float64)
        idx = pd.Index(np.asarray(codes, dtype=np.float64)).get_indexer(rawf)
        missing = np.isnan(rawf)
    bad = (idx < 0) & ~missing
    if bad.any():
        vals = pd.unique(np.asarray(raw, dtype=object)[bad])[:5].tolist()
        raise FileFormatError(
            f"column '{spec.file}' holds values {vals} that are not in its code table "
            f"{dict(zip(codes, cast(list, spec.categories)))}; the file was changed after it was written. "
            "Read it with schema=False to take the categories from the file itself."
        )
    return idx


def _text(raw: np.ndarray) -> np.ndarray:
    """Object array of text with None for missing."""
    raw = np.asarray(raw, dtype=object)
    return _none_where(pd.isna(raw), raw)


def _none_where(mask: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A copy of the object array ``values`` with None where ``mask``."""
    out = np.array(values, dtype=object)
    out[mask] = None
    return out


def _decode_pandas(raw: np.ndarray, spec: ColumnSpec, codec: dict) -> Any:
    kind = kind_of(codec)
    if kind == "category":
        return pd.Categorical.from_codes(_category_index(raw, spec), dtype=_pandas_dtype(codec))
    if kind == "string":
        v = _text(raw)
        if codec["name"] == "object":  # kept object (pandas >= 3 would infer its str dtype)
            return pd.Series(np.asarray(v, dtype=object), dtype=object)
        return pd.array(v, dtype=_pandas_dtype(codec))
    f = pd.to_numeric(pd.Series(raw), errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    if kind == "bool":
        b = pd.array(np.where(np.isnan(f), np.nan, f != 0), dtype="boolean")
        if codec["name"] == "object":
            return np.asarray(b.to_numpy(dtype=object, na_value=None), dtype=object)
        return b.to_numpy(dtype=bool) if codec["name"] == "bool" else b
    dt = _pandas_dtype(codec)
    if isinstance(dt, np.dtype) and dt.kind in "iub" and np.isnan(f).any():
        raise FileFormatError(
            f"column '{spec.file}' has missing values but dtype {dt}; the file does not match its schema."
        )
    return pd.Series(f).astype(dt).array


def _decode_polars(raw: np.ndarray, spec: ColumnSpec, codec: dict):
    import polars as pl

    kind = kind_of(codec)
    if kind == "category":
        idx = _category_index(raw, spec)
        labels = np.array([str(c) for c in cast(list, spec.categories)] + [None], dtype=object)[idx]
        # a list, not an object array: polars cannot build a String Series from an object array
        # whose first values are None ("cannot cast 'Object' type")
        return pl.Series(spec.name, labels.tolist(), dtype=pl.String).cast(_polars_dtype(codec))
    if kind == "string":
        return pl.Series(spec.name, list(_text(raw)), dtype=pl.String)
    f = pd.to_numeric(pd.Series(raw), errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
    return pl.Series(spec.name, f, nan_to_null=True).cast(_polars_dtype(codec))


def decode_block(raw: pd.DataFrame, schema: Schema, is_original: bool = False) -> Any:
    """One data set in the schema's library from plain values (columns named as in the file)."""
    lib = schema.library
    if lib == "pandas":
        data = {}
        for spec in schema.columns:
            codec = (spec.orig_dtype or spec.dtype) if is_original else spec.dtype
            data[spec.name] = _decode_pandas(raw[spec.file].to_numpy(), spec, codec)
        return pd.DataFrame(data, index=pd.RangeIndex(len(raw)))
    import polars as pl

    cols = []
    for spec in schema.columns:
        codec = (spec.orig_dtype or spec.dtype) if is_original else spec.dtype
        cols.append(_decode_polars(raw[spec.file].to_numpy(), spec, codec))
    return pl.DataFrame(cols)


def to_library(frame: Any, library: str) -> Any:
    """``frame`` converted to ``library`` (no copy when it is already there)."""
    if library_of(frame) == library:
        return frame
    if library == "pandas":
        return as_pandas(frame)
    import polars as pl

    out = pl.from_pandas(frame)
    enums = {
        c: pl.Enum([str(x) for x in frame[c].cat.categories])
        for c in frame.columns
        if isinstance(frame[c].dtype, pd.CategoricalDtype)
        and all(isinstance(x, str) for x in frame[c].cat.categories)
    }
    return out.cast(enums) if enums else out


def split_sorted(keys: np.ndarray) -> list[tuple[Any, int, int]]:
    """(key, start, stop) of each run of equal keys in ``keys`` (sorted or at least grouped)."""
    keys = np.asarray(keys)
    if keys.size == 0:
        return []
    cut = np.flatnonzero(keys[1:] != keys[:-1]) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [keys.size]])
    return [
        (keys[a].item() if hasattr(keys[a], "item") else keys[a], int(a), int(b))
        for a, b in zip(starts, stops)
    ]
