"""Compile options of internal kernel steps.

A sampler is a composition of small named steps. Every function decorated with
:func:`pymitml._numba.njit` is compiled for its jitted callers only as code to be linked into them
(no machine code, no whole-module optimisation and no wrappers of its own; see
:mod:`pymitml._numba`), so a step that is a function of its own costs its typing and lowering
once. The private steps of one sampler's composition are in addition inlined into the sampler's
kernel at numba's IR level (``inline="always"``): optional bundles passed as None then prune
their branches inside the steps, and the kernel reads as the short list of its steps.
"""

from __future__ import annotations

from .._numba import njit

#: decorator of internal steps shared by several kernels (no CPython wrapper also under
#: ``PYMITML_PLAIN_NJIT``, where every function is an ordinary numba function); steps work in
#: their caller's buffers, so they are compiled without numba's reference counting
step = njit(no_cpython_wrapper=True, no_cfunc_wrapper=True, nrt=False)

#: a step that allocates work space of its own (numba's runtime on)
step_alloc = njit(no_cpython_wrapper=True, no_cfunc_wrapper=True)

#: decorator of the private steps of one sampler's composition: inlined into the sampler's
#: kernel at numba's IR level (one level only: numba's inliner is slow on nested inlining)
compose = njit(inline="always")
