"""Allocation-free small-matrix kernels for the samplers.

Cluster-level updates work on matrices of order 1-20, where calling LAPACK (and allocating a
result) costs more than the arithmetic; these loops work in caller-provided buffers. Every
function has a NumPy reference test in tests/test_samplers_linalg.py.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import njit


@njit(nrt=False)
def chol_inplace(a, n):
    """Lower Cholesky factor of a[:n, :n] written over a (upper part zeroed); False if not PD."""
    for j in range(n):
        s = a[j, j]
        for k in range(j):
            s -= a[j, k] * a[j, k]
        if not s > 0.0:
            return False
        d = np.sqrt(s)
        a[j, j] = d
        for i in range(j + 1, n):
            s = a[i, j]
            for k in range(j):
                s -= a[i, k] * a[j, k]
            a[i, j] = s / d
    for i in range(n):
        for j in range(i + 1, n):
            a[i, j] = 0.0
    return True


@njit(nrt=False)
def solve_lower(L, b, n):
    """b <- L^{-1} b for lower-triangular L (n x n), in place."""
    for i in range(n):
        s = b[i]
        for k in range(i):
            s -= L[i, k] * b[k]
        b[i] = s / L[i, i]


@njit(nrt=False)
def solve_lower_t(L, b, n):
    """b <- L^{-T} b for lower-triangular L, in place."""
    for i in range(n - 1, -1, -1):
        s = b[i]
        for k in range(i + 1, n):
            s -= L[k, i] * b[k]
        b[i] = s / L[i, i]


@njit(nrt=False)
def inv_lower(L, out, n):
    """out[:n, :n] <- L^{-1} (lower triangular)."""
    for j in range(n):
        for i in range(n):
            out[i, j] = 0.0
        out[j, j] = 1.0 / L[j, j]
        for i in range(j + 1, n):
            s = 0.0
            for k in range(j, i):
                s -= L[i, k] * out[k, j]
            out[i, j] = s / L[i, i]


@njit(nrt=False)
def spd_inverse(a, out, work, n):
    """out <- a^{-1} for symmetric positive definite a (a is left intact); False if not PD."""
    for i in range(n):
        for j in range(n):
            work[i, j] = a[i, j]
    if not chol_inplace(work, n):
        return False
    # out = L^{-T} L^{-1}, solved for e_j into row j (its transpose; symmetrised below): a
    # contiguous row, so the solves compile for one array layout only (shared with other callers)
    for j in range(n):
        row = out[j]
        for i in range(n):
            row[i] = 1.0 if i == j else 0.0
        solve_lower(work, row, n)
        solve_lower_t(work, row, n)
    for i in range(n):
        for j in range(i + 1, n):
            v = 0.5 * (out[i, j] + out[j, i])
            out[i, j] = v
            out[j, i] = v
    return True


@njit(inline="always")
def _bartlett_root(chi, nrm, scale, C, A, Ai, T, n):
    """The factors of an inverse-Wishart draw IW(nu, scale) of order n: C = chol(scale), the
    Bartlett factor A (lower; A_ii = sqrt(chi[i]) with chi[i] ~ chi2(nu - i), ``nrm`` below the
    diagonal), Ai = A^-1 and T = C A^-T, so that T T' ~ IW(nu, scale) and
    (C^-T A)(C^-T A)' = (T T')^-1 ~ Wishart(nu, scale^-1). ``T`` may be the same buffer as ``A``
    (A is not read once Ai is known). Returns False if ``scale`` is not positive definite."""
    for i in range(n):
        for j in range(n):
            C[i, j] = scale[i, j]
    if not chol_inplace(C, n):
        return False
    c = 0
    for i in range(n):
        for j in range(n):
            A[i, j] = 0.0
        A[i, i] = np.sqrt(chi[i])
        for j in range(i):
            A[i, j] = nrm[c]
            c += 1
    inv_lower(A, Ai, n)
    # T[i, j] = sum_k C[i, k] Ai[j, k]  (k <= i and k <= j)
    for i in range(n):
        for j in range(n):
            s = 0.0
            for k in range(min(j, i) + 1):
                s += C[i, k] * Ai[j, k]
            T[i, j] = s
    return True


@njit(inline="always")
def _gram(T, out, n):
    """out <- T T' (symmetric; ``out`` must not be ``T``)."""
    for i in range(n):
        for j in range(i + 1):
            s = 0.0
            for k in range(n):
                s += T[i, k] * T[j, k]
            out[i, j] = s
            out[j, i] = s


@njit(nrt=False)
def draw_inv_wishart(chi, nrm, scale, out, w1, w2, n):
    """out <- a draw from the inverse Wishart IW(nu, scale) of order n (E = scale / (nu - n - 1)).

    The randomness comes in as arrays: ``chi[i] ~ chi2(nu - i)`` (i < n) and ``nrm`` holds
    n (n - 1) / 2 standard normals.

    Bartlett: with scale = C C' and A lower triangular (A_ii^2 ~ chi2(nu - i), A_ik ~ N(0, 1)),
    W = C^{-T} A A' C^{-1} ~ Wishart(nu, scale^{-1}), so out = W^{-1} = (C A^{-T})(C A^{-T})'.
    Buffers w1, w2 are n x n work space. Returns False if ``scale`` is not positive definite.
    """
    if not _bartlett_root(chi, nrm, scale, w1, out, w2, out, n):
        return False
    for i in range(n):
        for j in range(n):
            w2[i, j] = out[i, j]
    _gram(w2, out, n)
    return True


@njit(inline="always")
def draw_inv_wishart_pair(M, chi, nb, Sig, Sinv, w, r):
    """Sigma ~ IW(nu, M) and its inverse together from one set of factors (see
    :func:`_bartlett_root`): Sigma = T T' and Sigma^-1 = (C^-T A)(C^-T A)'. Writes ``Sig`` and
    ``Sinv``; returns log|Sigma| = 2 sum(log C_ii - log A_ii) (NaN if M is not positive definite).
    ``w``: (5, r, r) work."""
    C, A, Ci, Ai, T = w[0], w[1], w[2], w[3], w[4]
    if not _bartlett_root(chi, nb, M, C, A, Ai, T, r):
        return math.nan
    ld = 0.0
    for i in range(r):
        ld += 2.0 * (math.log(C[i, i]) - math.log(A[i, i]))
    _gram(T, Sig, r)
    inv_lower(C, Ci, r)
    for i in range(r):  # T = C^-T A (upper x lower)
        for k in range(r):
            acc = 0.0
            for m in range(max(i, k), r):
                acc += Ci[m, i] * A[m, k]
            T[i, k] = acc
    _gram(T, Sinv, r)
    return ld
