"""File handling shared by the writers and readers.

Writers: never overwrite unasked, refuse a folder or a missing folder as the target, and write
every file to a temporary name in the target folder first (:class:`Staged`), renamed into place
(``os.replace``) only when everything was written, so a failure (an error, Ctrl-C, a full disk)
never leaves a half-written file behind. Readers: :func:`check_source` before a file is opened,
and :func:`reading` around the library call, so every problem with the file itself is one
:class:`~pymitml.FileFormatError` that names the file, the format and what is wrong.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..exceptions import FileFormatError

__all__ = [
    "MissingFileError",
    "Staged",
    "as_path",
    "check_new",
    "check_source",
    "digest",
    "reading",
    "sidecar_path",
]


class MissingFileError(FileFormatError, FileNotFoundError):
    """A file (or the folder of a file to write) does not exist: both a FileFormatError and,
    so that ``except FileNotFoundError`` keeps working, a FileNotFoundError."""


def as_path(path, what: str = "path") -> Path:
    """``path`` (str or os.PathLike) as a Path; anything else is a TypeError naming ``what``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"`{what}` must be a file path (str or pathlib.Path); got {type(path).__name__}."
        )
    return Path(path)


def check_new(paths: Iterable[Path], overwrite: bool) -> None:
    """Raise before anything is written if a target is a folder, its folder is missing, or it
    exists (unless ``overwrite``)."""
    if not isinstance(overwrite, bool):
        raise TypeError(f"`overwrite` must be True or False; got {overwrite!r}.")
    for p in paths:
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise MissingFileError(
                f"cannot write '{p}': the folder '{folder}' does not exist; create it first."
            )
        if p.is_dir():
            raise FileFormatError(
                f"cannot write '{p}': it is a folder; give a file name inside it, e.g. "
                f"'{p / 'imputed'}' with the format's extension."
            )
        if p.exists() and not overwrite:
            raise FileExistsError(
                f"'{p}' already exists; nothing was written. Pass overwrite=True to replace it, or choose another name."
            )


class Staged:
    """Temporary files beside the targets, renamed onto them when the ``with`` block succeeds.

    ``staged[target]`` is where to write ``target``; on an error (or KeyboardInterrupt) inside
    the block every temporary file is removed and no target is touched.
    """

    def __init__(self, targets: Iterable[Path]) -> None:
        tag = uuid.uuid4().hex[:12]
        self._tmp = {Path(p): Path(p).with_name(f".{Path(p).name}.{tag}.part") for p in targets}

    def __getitem__(self, target: Path) -> Path:
        return self._tmp[Path(target)]

    def __enter__(self) -> Staged:
        return self

    def _clean(self) -> None:
        for t in self._tmp.values():
            try:
                t.unlink()
            except OSError:
                pass

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self._clean()
            if isinstance(exc, OSError) and not isinstance(exc, FileFormatError):
                name = exc.filename or "the target folder"
                raise FileFormatError(
                    f"cannot write {name!s}: {exc.strerror or exc}; nothing was written."
                ) from exc
            return
        for target, tmp in self._tmp.items():
            if not tmp.exists():  # a file the writer chose not to write
                continue
            try:
                os.replace(tmp, target)
            except OSError as err:
                self._clean()
                raise FileFormatError(f"cannot write '{target}': {err.strerror or err}.") from err


def digest(path: Path) -> str:
    """SHA-256 of a file's bytes (stored in the schema sidecar, checked by the readers)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sidecar_path(path: Path) -> Path:
    """Where the schema sidecar of the file a reader opens lives: ``<file>.schema.json``."""
    return path.with_name(path.name + ".schema.json")


# --- reading ------------------------------------------------------------------------------------
#: leading bytes of each binary format (any one of them)
_MAGIC: dict[str, tuple[bytes, ...]] = {
    "SPSS .sav": (b"$FL2", b"$FL3"),
    "parquet": (b"PAR1",),
    "R .rds": (b"\x1f\x8b", b"BZh", b"\xfd7zXZ", b"X\n", b"A\n", b"B\n"),
    "gzip-compressed CSV": (b"\x1f\x8b",),
}


def _looks_like(head: bytes, fmt: str) -> bool:
    if fmt == "Stata .dta":
        # formats 117-119 are XML-like; 102-115 start with the version byte and the byte order
        return head.startswith(b"<stata_dta>") or (
            len(head) >= 2 and 102 <= head[0] <= 115 and head[1] in (1, 2)
        )
    magic = _MAGIC.get(fmt)
    if magic is not None:
        return head.startswith(magic)
    return b"\x00" not in head  # text formats: no NUL bytes


def check_source(path: Path, fmt: str, what: str = "file") -> None:
    """Before opening ``path`` as ``fmt``: it exists, is a file, is not empty and starts like one."""
    if not path.exists():
        raise MissingFileError(
            f"cannot read '{path}' as {fmt}: there is no file of that name (the {what} does "
            "not exist)."
        )
    if path.is_dir():
        raise FileFormatError(
            f"cannot read '{path}' as {fmt}: it is a folder, not a file; name the file itself."
        )
    try:
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(4096)
    except OSError as exc:
        raise FileFormatError(f"cannot read '{path}' as {fmt}: {exc.strerror or exc}.") from exc
    if size == 0:
        raise FileFormatError(f"cannot read '{path}' as {fmt}: the {what} is empty (0 bytes).")
    if not _looks_like(head, fmt):
        kind = "binary data, not text" if fmt in _TEXT else f"not a {fmt} file"
        raise FileFormatError(
            f"cannot read '{path}' as {fmt}: it is {kind} (it begins {head[:8]!r}); check the "
            "file name and the reader used."
        )
    if fmt == "parquet":
        with open(path, "rb") as fh:
            fh.seek(max(size - 4, 0))
            tail = fh.read(4)
        if size < 12 or tail != b"PAR1":
            raise FileFormatError(
                f"cannot read '{path}' as {fmt}: the file is truncated (it does not end with "
                "parquet's footer); write it again."
            )


_TEXT = ("CSV", "Mplus data", "Blimp data", "Mplus list", "Blimp list")


_PACKAGE = str(Path(__file__).resolve().parent.parent)


def _own_argument_error(exc: BaseException) -> bool:
    """A pymitml error about an argument (raised in pymitml's code, naming the `argument`): it
    says what to change already and passes through unchanged."""
    tb = exc.__traceback__
    if tb is None or not isinstance(exc, (ValueError, TypeError, FileNotFoundError)):
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    return tb.tb_frame.f_code.co_filename.startswith(_PACKAGE) and "`" in str(exc)


@contextmanager
def reading(path: Path, fmt: str) -> Iterator[None]:
    """Turn any error of the library that parses ``path`` into a FileFormatError naming the file
    and the format, chained to the original (``raise ... from``)."""
    try:
        yield
    except FileFormatError:
        raise
    except MemoryError as exc:
        raise FileFormatError(
            f"cannot read '{path}' as {fmt}: the file claims sizes that do not fit in memory, "
            "so it is corrupted (or not this format)."
        ) from exc
    except UnicodeDecodeError as exc:
        raise FileFormatError(
            f"cannot read '{path}' as {fmt}: it is not valid UTF-8 text at byte {exc.start}; "
            "the file is corrupted or not this format."
        ) from exc
    except Exception as exc:
        if _own_argument_error(exc):
            raise
        detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else ""
        raise FileFormatError(
            f"cannot read '{path}' as {fmt}: the file is truncated or corrupted "
            f"({type(exc).__name__}{': ' + detail if detail else ''})."
        ) from exc
