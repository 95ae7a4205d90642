"""Shared steps for one variable's two-level regression (chained equations, 2l.* methods).

Model of one target y given a fixed-effects design X (n x p) and a random-effects design Z
(n x q) over rows sorted by cluster (cluster j is rows ``start[j]:start[j+1]``):

    y_ij = x_ij' beta + z_ij' b_j + e_ij,   b_j ~ N(0, Psi),   e_ij ~ N(0, s2_j)

with a flat prior on beta and Psi ~ IW(psi_df0, psi_scale0 I) (posterior df psi_df0 + J).
The residual variance has one of three forms (``mode``):

* 0 homoscedastic: s2_j = s2 for all j, s2 ~ IW(sig_df0, sig_scale0) (pan's prior);
* 1 heteroscedastic (van Buuren 2011; Kasim & Raudenbush 1998): 1 / s2_j ~ Gamma with mean
  1 / sigma2_0 and shape 1 / (2 theta), hyperparameters sigma2_0 and theta drawn too;
* 2 fixed at 1 (the latent normal of a probit model).

One sweep (:func:`rc_sweep`) draws (beta, b) as one block (beta with the random effects
integrated out, then every b_j given beta), then the residual variance(s), then Psi. Every
step has a NumPy reference test in tests/test_fcs_steps.py.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._numba import njit
from ._linalg import chol_inplace, draw_inv_wishart, solve_lower, solve_lower_t, spd_inverse
from ._truncnorm import truncnorm_rng

__all__ = [
    "RcData",
    "RcParams",
    "RcWork",
    "group_means",
    "linear_predictor",
    "pmm_match",
    "probit_latents",
    "rc_params",
    "rc_sweep",
    "rc_work",
]

#: ridge added to the diagonal of beta's posterior precision (relative), as mice's symridge
RIDGE = 1e-5


class RcData(NamedTuple):
    """The observed rows of one target for one sweep (cluster-sorted, contiguous)."""

    X: np.ndarray  # (n, p) fixed-effects design
    Z: np.ndarray  # (n, q) random-effects design
    y: np.ndarray  # (n,) target (or latent normal)
    start: np.ndarray  # (J + 1,) int64 cluster segment starts
    prior: np.ndarray  # (4,) psi_df0, psi_scale0, sig_df0, sig_scale0
    mode: int  # 0 homoscedastic, 1 heteroscedastic, 2 residual variance fixed at 1


class RcParams(NamedTuple):
    """The current draws of one target's model (kept between visits)."""

    beta: np.ndarray  # (p,)
    b: np.ndarray  # (J, q)
    psi: np.ndarray  # (q, q)
    psi_inv: np.ndarray  # (q, q)
    s2: np.ndarray  # (J,) residual variance per cluster (all equal unless heteroscedastic)
    hyper: np.ndarray  # (2,) sigma2_0 and theta (heteroscedastic mode)


class RcWork(NamedTuple):
    """Buffers of one target's sweeps, allocated once per chain."""

    ZtZ: np.ndarray  # (J, q, q)
    ZtX: np.ndarray  # (J, q, p)
    Zty: np.ndarray  # (J, q)
    A: np.ndarray  # (p, p)
    c: np.ndarray  # (p,)
    zp: np.ndarray  # (p,)
    L: np.ndarray  # (q, q)
    S: np.ndarray  # (q, q)
    w1: np.ndarray  # (q, q)
    w2: np.ndarray  # (q, q)
    vq: np.ndarray  # (q,)
    ss: np.ndarray  # (J,) residual sums of squares


def rc_params(p: int, q: int, J: int, s2: float) -> RcParams:
    """Start values: beta = 0, b = 0, Psi = s2 I, residual variance s2."""
    return RcParams(
        np.zeros(p),
        np.zeros((J, q)),
        s2 * np.eye(q),
        np.eye(q) / s2,
        np.full(J, s2),
        np.array([s2, 1.0]),
    )


def rc_work(p: int, q: int, J: int) -> RcWork:
    """Buffers for :func:`rc_sweep` of a model with p fixed and q random effects, J clusters."""
    return RcWork(
        np.zeros((J, q, q)),
        np.zeros((J, q, p)),
        np.zeros((J, q)),
        np.zeros((p, p)),
        np.zeros(p),
        np.zeros(p),
        np.zeros((q, q)),
        np.zeros((q, q)),
        np.zeros((q, q)),
        np.zeros((q, q)),
        np.zeros(q),
        np.zeros(J),
    )


@njit
def cluster_moments(d, par, w):
    """Per-cluster Z_j'Z_j, Z_j'X_j, Z_j'y_j into ``w``; ``w.A``, ``w.c`` <- sum_j X_j'X_j / s2_j,
    sum_j X_j'y_j / s2_j (the weighted totals of the collapsed beta step)."""
    X, Z, y = d.X, d.Z, d.y
    p, q = X.shape[1], Z.shape[1]
    J = len(d.start) - 1
    w.A[:, :] = 0.0
    w.c[:] = 0.0
    for j in range(J):
        wj = 1.0 / par.s2[j]
        for a in range(q):
            w.Zty[j, a] = 0.0
            for k in range(q):
                w.ZtZ[j, a, k] = 0.0
            for k in range(p):
                w.ZtX[j, a, k] = 0.0
        for i in range(d.start[j], d.start[j + 1]):
            yi = y[i]
            for a in range(q):
                za = Z[i, a]
                w.Zty[j, a] += za * yi
                for k in range(q):
                    w.ZtZ[j, a, k] += za * Z[i, k]
                for k in range(p):
                    w.ZtX[j, a, k] += za * X[i, k]
            for a in range(p):
                xa = X[i, a] * wj
                w.c[a] += xa * yi
                for k in range(a + 1):
                    w.A[a, k] += xa * X[i, k]
    for a in range(p):
        for k in range(a):
            w.A[k, a] = w.A[a, k]


@njit
def _cluster_factor(par, w, j, wj, q):
    """w.L <- Cholesky factor of P_j = Psi^-1 + Z_j'Z_j / s2_j; False if not PD."""
    for a in range(q):
        for k in range(q):
            w.L[a, k] = par.psi_inv[a, k] + wj * w.ZtZ[j, a, k]
    return chol_inplace(w.L, q)


@njit
def draw_beta_b(rng, d, par, w):
    """(beta, b) as one block: beta | y with b integrated out (flat prior), then b_j | beta, y.

    With P_j = Psi^-1 + Z_j'Z_j / s2_j = L_j L_j', beta's posterior precision is
    A = sum_j [X_j'X_j / s2_j - (Z_j'X_j)' P_j^-1 (Z_j'X_j) / s2_j^2], its mean A^-1 c (c alike
    with y_j); b_j | beta ~ N(P_j^-1 Z_j'(y_j - X_j beta) / s2_j, P_j^-1). Returns a Status code.
    """
    p, q = d.X.shape[1], d.Z.shape[1]
    J = len(d.start) - 1
    cluster_moments(d, par, w)
    G = np.empty((q, p))
    for j in range(J):
        wj = 1.0 / par.s2[j]
        if not _cluster_factor(par, w, j, wj, q):
            return 4
        for k in range(p):  # G = L^-1 Z'X (column by column)
            for a in range(q):
                w.vq[a] = w.ZtX[j, a, k]
            solve_lower(w.L, w.vq, q)
            for a in range(q):
                G[a, k] = w.vq[a]
        for a in range(q):
            w.vq[a] = w.Zty[j, a]
        solve_lower(w.L, w.vq, q)
        w2 = wj * wj
        for a in range(p):
            s = 0.0
            for t in range(q):
                s += G[t, a] * w.vq[t]
            w.c[a] -= w2 * s
            for k in range(a + 1):
                s = 0.0
                for t in range(q):
                    s += G[t, a] * G[t, k]
                w.A[a, k] -= w2 * s
                if k != a:
                    w.A[k, a] = w.A[a, k]
    for a in range(p):
        w.A[a, a] *= 1.0 + RIDGE
    if not chol_inplace(w.A, p):
        return 3
    # beta = A^-1 c + L_A^-T z
    solve_lower(w.A, w.c, p)
    for a in range(p):
        w.zp[a] = w.c[a] + rng.standard_normal()
    solve_lower_t(w.A, w.zp, p)
    for a in range(p):
        par.beta[a] = w.zp[a]
    for j in range(J):
        wj = 1.0 / par.s2[j]
        _cluster_factor(par, w, j, wj, q)
        for a in range(q):
            s = w.Zty[j, a]
            for k in range(p):
                s -= w.ZtX[j, a, k] * par.beta[k]
            w.vq[a] = wj * s
        solve_lower(w.L, w.vq, q)
        for a in range(q):
            w.vq[a] += rng.standard_normal()
        solve_lower_t(w.L, w.vq, q)
        for a in range(q):
            par.b[j, a] = w.vq[a]
    return 0


@njit
def residual_ss(d, par, ss):
    """ss[j] <- sum over cluster j's rows of (y - x'beta - z'b_j)^2."""
    X, Z, y = d.X, d.Z, d.y
    p, q = X.shape[1], Z.shape[1]
    for j in range(len(d.start) - 1):
        s = 0.0
        for i in range(d.start[j], d.start[j + 1]):
            e = y[i]
            for k in range(p):
                e -= X[i, k] * par.beta[k]
            for k in range(q):
                e -= Z[i, k] * par.b[j, k]
            s += e * e
        ss[j] = s


@njit
def draw_residual_variance(rng, d, par, ss):
    """The residual variance(s) given (beta, b): see the module docstring for the three modes."""
    J = len(d.start) - 1
    if d.mode == 2:
        return
    if d.mode == 0:
        tot = d.prior[3]
        n = d.start[J] - d.start[0]
        for j in range(J):
            tot += ss[j]
        s2 = tot / rng.chisquare(d.prior[2] + n)
        for j in range(J):
            par.s2[j] = s2
        return
    sigma0, theta = par.hyper[0], par.hyper[1]
    inv_mean, log_mean = 0.0, 0.0
    for j in range(J):
        n_j = d.start[j + 1] - d.start[j]
        shape = 0.5 * n_j + 0.5 / theta
        scale = 2.0 * theta / (ss[j] * theta + sigma0)
        prec = rng.gamma(shape, scale)
        par.s2[j] = 1.0 / prec
        inv_mean += prec / J
        log_mean += math.log(par.s2[j]) / J
    H = 1.0 / inv_mean
    sigma0 = rng.gamma(0.5 * J / theta + 1.0, 2.0 * theta * H / J)
    G = math.exp(log_mean)
    rate = 0.5 * J * (sigma0 / H - math.log(sigma0) + math.log(G) - 1.0)
    if rate > 0.0 and J > 2:
        theta = 1.0 / rng.gamma(0.5 * J - 1.0, 1.0 / rate)
    par.hyper[0] = sigma0
    par.hyper[1] = theta


@njit
def draw_psi(rng, d, par, w):
    """Psi | b ~ IW(psi_df0 + J, psi_scale0 I + sum_j b_j b_j'); Psi^-1 updated. Status code."""
    q = par.b.shape[1]
    J = par.b.shape[0]
    for a in range(q):
        for k in range(q):
            s = d.prior[1] if a == k else 0.0
            for j in range(J):
                s += par.b[j, a] * par.b[j, k]
            w.S[a, k] = s
    nu = d.prior[0] + J
    chi = np.empty(q)
    for a in range(q):
        chi[a] = rng.chisquare(nu - a)
    nrm = np.empty(q * (q - 1) // 2)
    for a in range(len(nrm)):
        nrm[a] = rng.standard_normal()
    if not draw_inv_wishart(chi, nrm, w.S, par.psi, w.w1, w.w2, q):
        return 2
    if not spd_inverse(par.psi, par.psi_inv, w.w1, q):
        return 2
    return 0


@njit
def rc_sweep(rng, d, par, w, n):
    """``n`` Gibbs sweeps of one target's model: (beta, b), residual variance(s), Psi.

    Returns a Status code (0 on success)."""
    for _ in range(n):
        code = draw_beta_b(rng, d, par, w)
        if code != 0:
            return code
        residual_ss(d, par, w.ss)
        draw_residual_variance(rng, d, par, w.ss)
        code = draw_psi(rng, d, par, w)
        if code != 0:
            return code
    return 0


@njit
def group_means(v, codes, out):
    """out[j, a] <- mean of v[i, a] over the rows i with codes[i] == j (rows in any order;
    0 for a group without rows): cluster means of several columns in one pass."""
    J, k = out.shape
    count = np.zeros(J)
    out[:, :] = 0.0
    for i in range(v.shape[0]):
        j = codes[i]
        count[j] += 1.0
        for a in range(k):
            out[j, a] += v[i, a]
    for j in range(J):
        if count[j] > 0.0:
            for a in range(k):
                out[j, a] /= count[j]


@njit
def linear_predictor(X, Z, clus, beta, b, out):
    """out[i] <- x_i'beta + z_i'b_{clus[i]} for every row (any order)."""
    p, q = X.shape[1], Z.shape[1]
    for i in range(X.shape[0]):
        s = 0.0
        for k in range(p):
            s += X[i, k] * beta[k]
        j = clus[i]
        for k in range(q):
            s += Z[i, k] * b[j, k]
        out[i] = s


@njit
def probit_latents(rng, eta, yobs, lo_of, hi_of, out):
    """out[i] ~ N(eta[i], 1) truncated to (lo_of[yobs[i]], hi_of[yobs[i]]) (category codes)."""
    for i in range(len(eta)):
        k = yobs[i]
        out[i] = truncnorm_rng(rng, eta[i], 1.0, lo_of[k], hi_of[k])


@njit
def pmm_match(rng, yhat_obs, y_obs, yhat_mis, donors, out):
    """Predictive mean matching: out[i] <- y_obs of one of the ``donors`` observed rows whose
    predicted value is nearest to yhat_mis[i], chosen at random with equal probability.

    ``yhat_obs`` must be sorted ascending (``y_obs`` in the same order)."""
    n = len(yhat_obs)
    d = min(donors, n)
    for i in range(len(yhat_mis)):
        t = yhat_mis[i]
        hi = np.searchsorted(yhat_obs, t)
        lo = hi - 1
        pick = int(rng.random() * d)
        chosen = 0
        for s in range(pick + 1):  # walk outwards to the (pick+1)-th nearest
            if lo < 0:
                chosen = hi
                hi += 1
            elif hi >= n:
                chosen = lo
                lo -= 1
            elif t - yhat_obs[lo] <= yhat_obs[hi] - t:
                chosen = lo
                lo -= 1
            else:
                chosen = hi
                hi += 1
            if s == pick:
                break
        out[i] = y_obs[chosen]
