"""numba steps of the profiled deviance for any number of random-effect terms.

The penalised system Lambda'Z'Z Lambda + I is ordered as [leading term | rest | X | y], where
the leading term is the one with the most random effects (its own block of Z'Z is block
diagonal, one q1 x q1 block per level) and "rest" holds the other terms' random effects. The
blocked Cholesky factor (Bates et al. 2015; MixedModels.jl's BlockedSparse layout) is

* per level j of the leading term: M_j = T1' A_j T1 + I = L_j L_j';
* the off-diagonal block W_j = L_j^{-1} T1' B_j Lambda_r, stored by the columns of
  [rest | X | y] that level j touches (``ptr``/``cols``: one sorted column list per level, each
  random-effect block of the rest complete), B_j = Z_1j'[Z_r X y];
* the Schur complement S = Lambda_r' C Lambda_r + diag(I, 0) - sum_j W_j'W_j (C = [Z_r X y]'
  [Z_r X y], dense), factored densely (LAPACK) by the caller: the y row of its factor gives r^2,
  the X rows log|L_X|^2 and the conditional means of beta and of the rest's random effects.

``colinfo[c] = (offset within its block, index into Tall, block size)`` for each column c of
[rest | X | y]; ``Tall[t]`` is the relative covariance factor of term t (identity for X and y).
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import njit
from ..samplers._linalg import chol_inplace


@njit
def lead_crossproducts(codes1, Z1, rcodes, Zr, tinfo, XY, ptr, cols, Bv, A1):
    """Fill zeroed Bv (nnz, q1) = Z_1j'[Z_r X y] on the pattern and A1 (J1, q1, q1) = Z_1j'Z_1j.

    rcodes (n, K-1): level of each row in each rest term; Zr (n, sum q_t): the rest terms'
    columns side by side; tinfo (K-1, 3): (q_t, first column in Zr, first column in [rest]).
    """
    n, q1 = Z1.shape
    k_rest = rcodes.shape[1]
    pxy = XY.shape[1]
    for i in range(n):
        j = codes1[i]
        lo = ptr[j]
        hi = ptr[j + 1]
        for a in range(q1):
            za = Z1[i, a]
            for b in range(q1):
                A1[j, a, b] += za * Z1[i, b]
        for t in range(k_rest):
            qt = tinfo[t, 0]
            zc = tinfo[t, 1]
            start = tinfo[t, 2] + rcodes[i, t] * qt
            e = _find(cols, lo, hi, start)
            for o in range(qt):
                zo = Zr[i, zc + o]
                for a in range(q1):
                    Bv[e + o, a] += Z1[i, a] * zo
        e = hi - pxy
        for c in range(pxy):
            xc = XY[i, c]
            for a in range(q1):
                Bv[e + c, a] += Z1[i, a] * xc


@njit
def rest_crossproducts(rcodes, Zr, tinfo, XY, C):
    """Add [Z_r X y]'[Z_r X y] (both triangles) into the zeroed dense C, row by row."""
    n, pxy = XY.shape
    k_rest = rcodes.shape[1]
    n_re = C.shape[0] - pxy
    width = Zr.shape[1] + pxy
    idx = np.empty(width, dtype=np.int64)
    val = np.empty(width)
    for i in range(n):
        cnt = 0
        for t in range(k_rest):
            qt = tinfo[t, 0]
            zc = tinfo[t, 1]
            base = tinfo[t, 2] + rcodes[i, t] * qt
            for o in range(qt):
                idx[cnt] = base + o
                val[cnt] = Zr[i, zc + o]
                cnt += 1
        for c in range(pxy):
            idx[cnt] = n_re + c
            val[cnt] = XY[i, c]
            cnt += 1
        for a in range(cnt):
            va = val[a]
            if va == 0.0:
                continue
            row = C[idx[a]]
            for b in range(cnt):
                row[idx[b]] += va * val[b]


@njit
def _find(cols, lo, hi, c):
    """Position of column c in the sorted cols[lo:hi] (it is there by construction)."""
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if cols[mid] <= c:
            lo = mid
        else:
            hi = mid
    return lo


@njit
def rest_scaled(C, colinfo, Tall, n_re, S):
    """Lower triangle of S = Lambda_r' C Lambda_r + diag(1 for the first n_re columns, 0 after)."""
    m = C.shape[0]
    if np.max(colinfo[:, 2]) == 1:  # scalar terms only: Lambda_r is diagonal
        d = np.empty(m)
        for a in range(m):
            d[a] = Tall[colinfo[a, 1], 0, 0]
        for a in range(m):
            row = S[a]
            ca = C[a]
            da = d[a]
            for b in range(a + 1):
                row[b] = da * ca[b] * d[b]
            if a < n_re:
                row[a] += 1.0
        return
    for a in range(m):
        oa, ta, sa = colinfo[a, 0], colinfo[a, 1], colinfo[a, 2]
        ba = a - oa
        for b in range(a + 1):
            ob, tb, sb = colinfo[b, 0], colinfo[b, 1], colinfo[b, 2]
            bb = b - ob
            s = 0.0
            for x in range(sa):
                tx = Tall[ta, x, oa]
                if tx == 0.0:
                    continue
                for y in range(sb):
                    s += tx * C[ba + x, bb + y] * Tall[tb, y, ob]
            S[a, b] = s
        if a < n_re:
            S[a, a] += 1.0


@njit
def _level_factor(A, T, M):
    """M <- lower Cholesky factor of T'A T + I; False if it is not positive definite."""
    q = T.shape[0]
    for a in range(q):
        for b in range(a + 1):
            s = 0.0
            for k in range(q):
                tka = T[k, a]
                if tka == 0.0:
                    continue
                for h in range(q):
                    s += tka * A[k, h] * T[h, b]
            M[a, b] = s
            M[b, a] = s
        M[a, a] += 1.0
    return chol_inplace(M, q)


@njit
def lead_sweep(A1, T1, ptr, cols, Bv, colinfo, Tall, S, W, L1):
    """Factor the leading term's blocks (L1), form W and subtract sum_j W_j'W_j from S.

    Returns log|L_1|^2, or -inf when a block is not positive definite.
    """
    J1, q1 = A1.shape[0], A1.shape[1]
    v = np.empty(q1)
    logdet = 0.0
    for j in range(J1):
        L = L1[j]
        if not _level_factor(A1[j], T1, L):
            return -np.inf
        for a in range(q1):
            logdet += 2.0 * math.log(L[a, a])
        lo = ptr[j]
        hi = ptr[j + 1]
        for e in range(lo, hi):
            o, t, bs = colinfo[cols[e], 0], colinfo[cols[e], 1], colinfo[cols[e], 2]
            base = e - o
            # v = T1' (B Lambda_r)[:, e]
            for a in range(q1):
                s = 0.0
                for o2 in range(bs):
                    s += Bv[base + o2, a] * Tall[t, o2, o]
                v[a] = s
            for a in range(q1):
                s = 0.0
                for k in range(q1):
                    s += T1[k, a] * v[k]
                # forward substitution with L
                for k in range(a):
                    s -= L[a, k] * W[e, k]
                W[e, a] = s / L[a, a]
        _subtract_gram(S, cols, W, lo, hi)
    return logdet


@njit
def _subtract_gram(S, cols, W, lo, hi):
    """S[c_e, c_f] -= W_e . W_f for the pattern entries lo <= f <= e < hi of one level."""
    q1 = W.shape[1]
    if q1 == 1:
        for e in range(lo, hi):
            row = S[cols[e]]
            we = W[e, 0]
            for f in range(lo, e + 1):
                row[cols[f]] -= we * W[f, 0]
        return
    for e in range(lo, hi):
        row = S[cols[e]]
        for f in range(lo, e + 1):
            s = 0.0
            for a in range(q1):
                s += W[e, a] * W[f, a]
            row[cols[f]] -= s


@njit
def lead_modes(L1, T1, ptr, cols, W, x, U1, B1):
    """Spherical modes u_j = L_j^{-T}(-sum_e W_e x_{c_e}) of the leading term (into U1) and
    b_j = T1 u_j (into B1); x holds the solution for [rest | X] and -1 for the y column.
    """
    J1, q1 = B1.shape
    for j in range(J1):
        u = U1[j]
        L = L1[j]
        for a in range(q1):
            s = 0.0
            for e in range(ptr[j], ptr[j + 1]):
                s -= W[e, a] * x[cols[e]]
            u[a] = s
        for a in range(q1 - 1, -1, -1):
            s = u[a]
            for k in range(a + 1, q1):
                s -= L[k, a] * u[k]
            u[a] = s / L[a, a]
        for a in range(q1):
            s = 0.0
            for k in range(q1):
                s += T1[a, k] * u[k]
            B1[j, a] = s
