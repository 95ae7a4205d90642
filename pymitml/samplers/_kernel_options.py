"""Compile options of internal kernel steps.

A sampler is a composition of small named steps. Compiled one by one, every step would be a
library of its own that numba links into its caller and optimises again there, with all its own
callees (LLVM's work grows with the depth of the call tree), and each would get a CPython
wrapper that unpacks its bundles (NamedTuples of dozens of arrays). Internal steps are therefore
inlined into their caller at numba's IR level (``inline="always"``): a sampler compiles as one
function over the shared primitives of ``_gibbs`` / ``_linalg`` / ``_truncnorm``, as before the
steps were named, and optional bundles passed as None prune their branches inside the steps.
"""
from __future__ import annotations

from .._numba import njit

#: decorator of internal steps: :func:`pymitml._numba.njit`, inlined into the calling kernel
step = njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: decorator of the private steps of one sampler's composition: inlined into the sampler's
#: kernel at numba's IR level (one level only: numba's inliner is slow on nested inlining)
compose = njit(inline="always")
