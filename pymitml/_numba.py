"""One place that sets the numba options for every kernel in pymitml.

Kernels are compiled with ``cache=True`` (compiled code is reused across processes) and
``fastmath=False`` (results must not depend on reassociation; identical seeds must give
identical draws on every machine).
"""
from __future__ import annotations

import numba

#: keyword arguments for :func:`numba.njit` used by every pymitml kernel
NJIT_OPTIONS = dict(cache=True, nogil=True, fastmath=False, error_model="numpy")


def njit(*args, **kwargs):
    """``numba.njit`` with pymitml's options (extra keyword arguments override them)."""
    opts = dict(NJIT_OPTIONS)
    opts.update(kwargs)
    if args and callable(args[0]) and len(args) == 1:
        return numba.njit(**opts)(args[0])
    return numba.njit(*args, **opts)
