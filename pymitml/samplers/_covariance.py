"""Covariance-matrix steps with fixed blocks: jomo's element-wise Metropolis-Hastings, the exact
inverse-Wishart draw given one fixed principal block, and small helpers (log-determinants, Schur
complements, the multivariate gamma function).

The target of both updates is the flat-prior conditional of a covariance matrix ``M`` (n x n)
given residual cross-products ``S`` from ``N`` observations,

    p(M | S) ∝ |M|^(-N/2) exp(-tr(M^-1 S) / 2),   i.e. IW(N - n - 1, S),

restricted to the elements that are not fixed (latent blocks of categorical targets: 1 on the
diagonal, 0.5 off it).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._numba import njit
from ._kernel_options import compose, step
from ._linalg import chol_inplace, draw_inv_wishart_pair, solve_lower, solve_lower_t, spd_inverse


class FixedBlock(NamedTuple):
    """A fixed principal block of an n x n covariance matrix (see :func:`fixed_block`)."""

    idx1: np.ndarray  # (n - k,) rows/columns outside the block
    idx2: np.ndarray  # (k,) rows/columns of the block
    Cb: np.ndarray  # (k, k) the block
    Cbi: np.ndarray  # (k, k) its inverse
    ld: float  # its log-determinant


class CovWork(NamedTuple):
    """Work arrays of :func:`restricted_update` (``w1``, ``w2``: (m, m), ``iw``: (20, m, m), m >= n)."""

    iw: np.ndarray
    w1: np.ndarray
    w2: np.ndarray


@step
def lmgamma(x, p):
    """log of the multivariate gamma function Gamma_p(x)."""
    s = 0.25 * p * (p - 1) * math.log(math.pi)
    for i in range(p):
        s += math.lgamma(x - 0.5 * i)
    return s


@step
def logdet_chol(a, w, n):
    """log|a| through a Cholesky factor in w (-inf if a is not positive definite)."""
    for i in range(n):
        for j in range(n):
            w[i, j] = a[i, j]
    if not chol_inplace(w, n):
        return -math.inf
    s = 0.0
    for i in range(n):
        s += 2.0 * math.log(w[i, i])
    return s


@step
def schur_update(A, Bm, Cm, n, k):
    """A[:n, :n] <- A - Bm[:n, :k] Cm[:k, :n], then made exactly symmetric (a Schur complement)."""
    for x in range(n):
        for y in range(n):
            acc = A[x, y]
            for t in range(k):
                acc -= Bm[x, t] * Cm[t, y]
            A[x, y] = acc
    for x in range(n):
        for y in range(x):
            a = 0.5 * (A[x, y] + A[y, x])
            A[x, y] = a
            A[y, x] = a


@step
def log_target(Sigma, S, N, w1, w2, r):
    """-tr(Sigma^-1 S)/2 - N log|Sigma|/2, or -inf if Sigma is not positive definite."""
    for i in range(r):
        for j in range(r):
            w1[i, j] = Sigma[i, j]
    if not chol_inplace(w1, r):
        return -math.inf
    logdet = 0.0
    for i in range(r):
        logdet += 2.0 * math.log(w1[i, i])
    tr = 0.0
    for c in range(r):  # tr(Sigma^-1 S) = sum_c (Sigma^-1 s_c)_c
        for i in range(r):
            w2[i, 0] = S[i, c]
        for i in range(r):  # w2[:, 0] <- L^-1 s_c
            s = w2[i, 0]
            for k in range(i):
                s -= w1[i, k] * w2[k, 0]
            w2[i, 0] = s / w1[i, i]
        solve_lower_t(w1, w2[:, 0], r)
        tr += w2[c, 0]
    return -0.5 * tr - 0.5 * N * logdet


@step
def mh_covariance(Sigma, S, N, free, nrm, unif, w1, w2, r, n_prop):
    """jomo's element-wise random-walk Metropolis-Hastings over the free elements of Sigma with log
    target -tr(Sigma^-1 S)/2 - N log|Sigma|/2 (:func:`log_target`); the proposal SD of a variance
    is its value times sqrt(11.6 / n_prop), of a covariance 0.1 sqrt(s_jj s_kk). Proposals that are not
    positive definite are rejected. Returns the number of accepted moves."""
    cur = log_target(Sigma, S, N, w1, w2, r)
    acc = 0
    c = 0
    for j in range(r):
        for k in range(j, r):
            if not free[j, k]:
                continue
            old = Sigma[j, k]
            if j == k:
                sd = old * math.sqrt(11.6 / n_prop)
            else:
                sd = 0.1 * math.sqrt(Sigma[j, j] * Sigma[k, k])
            new = old + sd * nrm[c]
            Sigma[j, k] = new
            Sigma[k, j] = new
            val = log_target(Sigma, S, N, w1, w2, r)
            if val > -math.inf and math.log(unif[c]) < val - cur:
                cur = val
                acc += 1
            else:
                Sigma[j, k] = old
                Sigma[k, j] = old
            c += 1
    return acc


@njit
def fixed_block_parts(Mat, start, k, n):
    """Index sets of the principal block Mat[start:start+k, start:start+k] of an n x n matrix and
    of the others, the block, its inverse and its log-determinant (the fields of :class:`FixedBlock`)."""
    idx2 = np.arange(start, start + k)
    idx1 = np.empty(n - k, np.int64)
    c = 0
    for x in range(n):
        if x < start or x >= start + k:
            idx1[c] = x
            c += 1
    Cb = np.empty((k, k))
    for x in range(k):
        for y in range(k):
            Cb[x, y] = Mat[start + x, start + y]
    w = np.empty((max(k, 1), max(k, 1)))
    Cbi = np.empty((k, k))
    spd_inverse(Cb, Cbi, w, k)
    return idx1, idx2, Cb, Cbi, logdet_chol(Cb, w, k)


def fixed_block(Mat, start, k) -> FixedBlock:
    """The :class:`FixedBlock` of ``Mat`` (computed by the kernel, so bit for bit as in the sampler)."""
    return FixedBlock(
        *fixed_block_parts(np.ascontiguousarray(Mat), int(start), int(k), Mat.shape[0])
    )


@compose
def _matrix_normal_given_block(rng, K, L22, S11, Sr, Bm, Ch, v2, p1, k):
    """B = K + L22^-T Z Sr' (k x p1) with Z standard normal (row-major draws), Sr = chol(S11)."""
    for i in range(p1):
        for j in range(p1):
            Sr[i, j] = S11[i, j]
    if not chol_inplace(Sr, p1):
        return False
    for j in range(k):
        for i in range(p1):
            Bm[j, i] = rng.standard_normal()
    for i in range(p1):  # (Z Sr')[j, i] = sum_m Z[j, m] Sr[i, m]
        for j in range(k):
            acc = 0.0
            for m in range(i + 1):
                acc += Bm[j, m] * Sr[i, m]
            Ch[j, i] = acc  # Z stays intact in Bm until every column is done
    for i in range(p1):
        for j in range(k):
            v2[j] = Ch[j, i]
        solve_lower_t(L22, v2, k)
        for j in range(k):
            Bm[j, i] = K[j, i] + v2[j]
    return True


@compose
def _assemble_given_block(blk, S11, S11i, Bm, Sig, Sinv, p1, k):
    """Sigma and Sigma^-1 from Sigma_11.2 = S11 (inverse S11i), B = Bm and the fixed block:
    Sigma_21 = Cb B, Sigma_11 = S11 + B' Cb B; Sigma^-1 = [S11^-1, -S11^-1 B'; ., Cb^-1 + B S11^-1 B']."""
    idx1, idx2, Cb, Cbi = blk.idx1, blk.idx2, blk.Cb, blk.Cbi
    for i in range(p1):
        for j in range(k):  # Sigma_12 = B' Cb
            acc = 0.0
            for m in range(k):
                acc += Bm[m, i] * Cb[m, j]
            Sig[idx1[i], idx2[j]] = acc
            Sig[idx2[j], idx1[i]] = acc
    for i in range(p1):
        for j in range(p1):  # Sigma_11 = S11 + B' Cb B
            acc = S11[i, j]
            for m in range(k):
                acc += Sig[idx1[i], idx2[m]] * Bm[m, j]
            Sig[idx1[i], idx1[j]] = acc
    for i in range(k):
        for j in range(k):
            Sig[idx2[i], idx2[j]] = Cb[i, j]
    for i in range(p1):
        for j in range(i):
            a = 0.5 * (Sig[idx1[i], idx1[j]] + Sig[idx1[j], idx1[i]])
            Sig[idx1[i], idx1[j]] = a
            Sig[idx1[j], idx1[i]] = a
    for i in range(p1):
        for j in range(p1):
            Sinv[idx1[i], idx1[j]] = S11i[i, j]
        for j in range(k):
            acc = 0.0
            for m in range(p1):
                acc -= S11i[i, m] * Bm[j, m]
            Sinv[idx1[i], idx2[j]] = acc
            Sinv[idx2[j], idx1[i]] = acc
    for i in range(k):
        for j in range(i + 1):
            acc = Cbi[i, j]
            for m in range(p1):
                acc -= Bm[i, m] * Sinv[idx1[m], idx2[j]]
            Sinv[idx2[i], idx2[j]] = acc
            Sinv[idx2[j], idx2[i]] = acc


@njit(nrt=False)
def draw_iw_given_block(rng, M, nu, blk, Sig, Sinv, w, r):
    """Sigma ~ IW(nu, M) given its fixed principal block Sigma_22 = blk.Cb (rows/columns blk.idx2),
    drawn exactly: (Sigma_11.2, B = Sigma_22^-1 Sigma_21) is independent of Sigma_22, with
    Sigma_11.2 ~ IW(nu, M_11.2) and B | Sigma_11.2 ~ MatrixNormal(M_22^-1 M_21, M_22^-1, Sigma_11.2).
    Writes ``Sig`` and ``Sinv`` (the inverse by blocks) and returns log|Sigma| (NaN if a factor
    fails). ``w``: (20, r, r) work."""
    idx1, idx2 = blk.idx1, blk.idx2
    p1 = idx1.shape[0]
    k = idx2.shape[0]
    M11, M12, L22, K, S11, Sr, Bm, S11i, Ch = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[10]
    chi = w[16, 0]  # vectors of length r (w[11:16] is draw_inv_wishart_pair's work)
    nb = w[17].reshape(w.shape[1] * w.shape[2])
    v1 = w[18, 0]
    v2 = w[19, 0]
    for i in range(p1):
        for j in range(p1):
            M11[i, j] = M[idx1[i], idx1[j]]
        for j in range(k):
            M12[i, j] = M[idx1[i], idx2[j]]
    for i in range(k):
        for j in range(k):
            L22[i, j] = M[idx2[i], idx2[j]]
    if not chol_inplace(L22, k):
        return math.nan
    for i in range(p1):  # K[:, i] = M_22^-1 M_21[:, i]
        for j in range(k):
            v1[j] = M12[i, j]
        solve_lower(L22, v1, k)
        solve_lower_t(L22, v1, k)
        for j in range(k):
            K[j, i] = v1[j]
    schur_update(M11, M12, K, p1, k)  # M_11.2 = M_11 - M_12 K
    for i in range(p1):
        chi[i] = rng.chisquare(nu - i)
    nn = p1 * (p1 - 1) // 2
    for i in range(nn):
        nb[i] = rng.standard_normal()
    ld1 = draw_inv_wishart_pair(M11, chi, nb, S11, S11i, w[11:16], p1)
    if ld1 != ld1:
        return math.nan
    if not _matrix_normal_given_block(rng, K, L22, S11, Sr, Bm, Ch, v2, p1, k):
        return math.nan
    _assemble_given_block(blk, S11, S11i, Bm, Sig, Sinv, p1, k)
    return ld1 + blk.ld


@step
def restricted_update(rng, Mat, S, N, blk, free, nrm, unif, Minv, work):
    """The free elements of a covariance matrix ``Mat`` (n x n) with fixed latent block(s) under
    the target |Mat|^(-N/2) exp(-tr(Mat^-1 S)/2), i.e. IW(N - n - 1, S) restricted to the fixed
    blocks: drawn exactly when they form one principal block (its FixedBlock ``blk``; ``Minv``
    receives Mat^-1), else (``blk`` None, so that only one of the two is compiled) by jomo's
    element-wise Metropolis-Hastings steps
    (:func:`mh_covariance` with proposal scale N; noise ``nrm``, ``unif``). Returns (accepted moves, log|Mat|): the
    log-determinant only from the exact draw (NaN there if a factor failed), NaN after MH steps."""
    n = Mat.shape[0]
    if blk is None:
        return mh_covariance(Mat, S, N, free, nrm, unif, work.w1, work.w2, n, N), math.nan
    return 0, draw_iw_given_block(rng, S, N - n - 1.0, blk, Mat, Minv, work.iw, n)
