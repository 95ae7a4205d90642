"""Which function writes and which reads each format: the formats register themselves.

Writers are entered into :mod:`pymitml.mitml_list`'s registry (so ``MitmlList.to_stata(...)``
finds them without that module importing this package: the imports point one way, io ->
mitml_list); readers into ``_READERS`` here. ``formats()`` lists both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ..mitml_list import _WRITERS, register_writer

__all__ = ["formats", "reader", "register_reader", "register_writer", "writer"]

#: format name -> ``reader(source, **kwargs) -> MitmlList``
_READERS: dict[str, Callable[..., Any]] = {}

_R = TypeVar("_R", bound=Callable[..., Any])


def register_reader(fmt: str) -> Callable[[_R], _R]:
    """Decorator entering ``reader(source, **kwargs)`` as the reader of ``fmt``."""

    def decorator(func: _R) -> _R:
        _READERS[fmt] = func
        return func

    return decorator


def _get(table: dict[str, Callable[..., Any]], fmt: str, what: str) -> Callable[..., Any]:
    try:
        return table[fmt]
    except KeyError:
        raise ValueError(
            f"no {what} for the format {fmt!r}; known formats: {sorted(table)}."
        ) from None


def writer(fmt: str) -> Callable[..., Any]:
    """The registered writer of ``fmt`` (``"stata"``, ``"spss"``, ``"mplus"``, ...)."""
    return _get(_WRITERS, fmt, "writer")


def reader(fmt: str) -> Callable[..., Any]:
    """The registered reader of ``fmt``."""
    return _get(_READERS, fmt, "reader")


def formats() -> dict[str, tuple[bool, bool]]:
    """Every registered format -> (has a writer, has a reader)."""
    names = sorted(set(_WRITERS) | set(_READERS))
    return {n: (n in _WRITERS, n in _READERS) for n in names}
