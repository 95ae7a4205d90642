"""R's .rds files: write a MitmlList as a real ``mitml.list``; read mitml/mice objects back.

Thin: the translation is :func:`pymitml.bridge.to_r` / :func:`pymitml.bridge.from_r`; R's own
``saveRDS`` / ``readRDS`` write and read the file, so R opens it with ``readRDS(path)`` and pools it
with ``mitml::testEstimates(with(x, ...))``. Needs R and rpy2 (``pip install pymitml[r]``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..bridge import _robjects, from_r, to_r
from ..exceptions import FileFormatError
from ..mitml_list import MitmlList, long_to_mitml_list
from ._files import Staged, as_path, check_new, check_source, reading
from ._registry import register_reader, register_writer

__all__ = ["read_rds", "write_rds"]

_FMT = "R .rds"


@register_writer("rds")
def write_rds(
    mitml_list: Any, path: str | os.PathLike, overwrite: bool = False, compress: bool = True
) -> Path:
    """Save the imputed data sets as an R ``mitml.list`` in an .rds file.

    Parameters
    ----------
    mitml_list : :class:`~pymitml.MitmlList` or a list of pandas/polars DataFrames.
    path : file to write (conventionally ``*.rds``).
    overwrite : replace an existing file; without it an existing file is an error.
    compress : gzip the file (R's default).

    Returns
    -------
    The path written.

    Examples
    --------
    >>> write_rds(implist, "imputations.rds")  # doctest: +SKIP
    >>> # in R: x <- readRDS("imputations.rds"); testEstimates(with(x, lm(y ~ x)))
    """
    path = as_path(path)
    if path.is_file() and not overwrite:
        raise FileExistsError(f"'{path}' already exists; pass overwrite=True to replace it.")
    check_new([path], overwrite)
    if not isinstance(mitml_list, MitmlList):
        if not isinstance(mitml_list, (list, tuple)):
            raise TypeError(
                "`mitml_list` must be a MitmlList or a list of DataFrames; got "
                f"{type(mitml_list).__name__}."
            )
        mitml_list = MitmlList(mitml_list)
    ro = _robjects()
    obj = to_r(mitml_list)
    with Staged([path]) as st:
        ro.r["saveRDS"](obj, file=str(st[path]), compress=bool(compress))
    return path


def _check_compressed(path: Path) -> None:
    """Decompress a gzip/bzip2/xz .rds to its end, which checks the stream's own CRC and length:
    R's reader stops at the end of the serialised object without looking at the checksum, so
    a changed byte would otherwise give other data without an error."""
    with open(path, "rb") as fh:
        head = fh.read(6)
    if head.startswith(b"\x1f\x8b"):
        import gzip as opener
    elif head.startswith(b"BZh"):
        import bz2 as opener  # type: ignore[no-redef]
    elif head.startswith(b"\xfd7zXZ"):
        import lzma as opener  # type: ignore[no-redef]
    else:
        return  # uncompressed (compress=False): no checksum to check
    try:
        with opener.open(path, "rb") as fh:
            while fh.read(1 << 20):
                pass
    except EOFError as exc:
        raise FileFormatError(
            f"cannot read '{path}' as {_FMT}: the compressed stream ends early, so the file is "
            "truncated."
        ) from exc
    except (OSError, ValueError) as exc:
        raise FileFormatError(
            f"cannot read '{path}' as {_FMT}: the compressed stream is damaged ({exc}), so the "
            "file is corrupted."
        ) from exc


@register_reader("rds")
def read_rds(path: str | os.PathLike, library: str = "pandas") -> MitmlList:
    """Read imputed data sets from an R .rds file.

    Parameters
    ----------
    path : an .rds file holding a ``mitml.list`` (or any list of data frames), a mice ``mids``
        object, a mitml ``mitml`` imputation result, or one stacked data frame with an ``.imp``
        column (mice's ``complete(x, "long")``; ``.imp == 0`` is taken as the original data).
    library : ``"pandas"`` or ``"polars"`` for the data sets.

    Returns
    -------
    MitmlList (``.original`` set for mids, mitml and stacked files that include it).
    """
    path = as_path(path)
    check_source(path, _FMT)
    ro = _robjects()
    with reading(path, _FMT):
        _check_compressed(path)
        obj = ro.r["readRDS"](str(path))
        out = from_r(obj, library=library)
    if isinstance(out, MitmlList):
        return out
    cols = getattr(out, "columns", None)
    if cols is not None and ".imp" in list(cols):
        return long_to_mitml_list(out, split=".imp", exclude=[0])
    raise FileFormatError(
        f"cannot read '{path}' as {_FMT}: it holds an R object of class {list(obj.rclass)}, not imputed data sets; expected a "
        "mitml.list, a list of data frames, a mids or mitml object, or a stacked data frame with an "
        "'.imp' column. Read other objects with pymitml.bridge.from_r(rpy2.robjects.r.readRDS(path))."
    )
