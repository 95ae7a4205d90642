"""File handling shared by the writers: never overwrite unasked, and the schema sidecar's path."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["as_path", "check_new", "sidecar_path"]


def as_path(path, what: str = "path") -> Path:
    """``path`` (str or os.PathLike) as a Path; anything else is a TypeError naming ``what``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"`{what}` must be a file path (str or pathlib.Path); got {type(path).__name__}."
        )
    return Path(path)


def check_new(paths: Iterable[Path], overwrite: bool) -> None:
    """Raise before anything is written if a target exists (unless ``overwrite``) or its folder is missing."""
    if not isinstance(overwrite, bool):
        raise TypeError(f"`overwrite` must be True or False; got {overwrite!r}.")
    for p in paths:
        folder = p.parent if str(p.parent) else Path(".")
        if not folder.is_dir():
            raise FileNotFoundError(
                f"cannot write '{p}': the folder '{folder}' does not exist; create it first."
            )
        if p.exists() and not overwrite:
            raise FileExistsError(
                f"'{p}' already exists; nothing was written. Pass overwrite=True to replace it, or choose another name."
            )


def sidecar_path(path: Path) -> Path:
    """Where the schema sidecar of the file a reader opens lives: ``<file>.schema.json``."""
    return path.with_name(path.name + ".schema.json")
