"""Gibbs sampler of pan's two-level multivariate linear mixed model, over plain arrays.

Model (Schafer & Yucel 2002), cluster j with n_j rows and r targets:

    Y_j = X_j beta + Z_j b_j + E_j,   vec(b_j) ~ N(0, Psi) (order d = q r, target-major),
    rows of E_j ~ N(0, Sigma),        flat prior on beta,
    Sigma ~ IW(a, Binv),  Psi ~ IW(c, Dinv).

One iteration, with the missing cells of Y filled by their current draws:

1. (beta, b) | Sigma, Psi, Y as one block: first beta with the random effects integrated out
   (generalised least squares; V_j^-1 by Woodbury through the per-cluster precisions
   P_j = Psi^-1 + Sigma^-1 (x) Z_j'Z_j), then b_j | beta: mean P_j^-1 vec(Z_j'(Y_j - X_j beta)
   Sigma^-1), covariance P_j^-1.
2. Psi | b ~ IW(c + J, Dinv + sum_j vec(b_j) vec(b_j)').
3. Sigma | beta, b, Y ~ IW(a + N, Binv + E'E) with E = Y - X beta - Z b.
4. Missing cells of each incomplete row from the normal of the missing given the observed part
   of that row, mean x_i beta + z_i b_j, covariance Sigma.

pan alternates beta | b and b | beta instead; both samplers have the same posterior, but the
block draw mixes far better when fixed and random effects are confounded (a random slope on an
uncentred predictor).

Steps 1-3 need only sufficient statistics: X'Y, Z_j'Y_j and Y'Y, split into the constant part of
the complete rows and the part of the incomplete rows, recomputed after step 4. Cluster-level
arrays are laid out (..., J) and incomplete rows are stored transposed, grouped by missingness
pattern, so that the innermost loops run over clusters or rows and vectorise.
"""
from __future__ import annotations

import numpy as np

from .._numba import njit
from ._gibbs import (
    _dot,
    _draw_beta_collapsed,
    _draw_given_cholesky,
    _precision_cholesky,
    draw_missing_cells,
    pattern_factors,
    record_covariances,
    residual_crossproducts,
    row_means,
    rows_crossproducts,
)
from ._linalg import draw_inv_wishart, spd_inverse


def pan_draw_counts(J, p, q, r, n_cells):
    """Standard normals one iteration consumes: beta, clusters, Psi, Sigma, missing cells."""
    d = q * r
    return J * d + d * (d - 1) // 2 + r * (r - 1) // 2 + p * r + n_cells


@njit
def pan_iterate(n_steps, rec0, diag_only, rng, dfs, z, chi,
                XtX, ZtZ, ZtX, XtYc, ZtYc, YtYc,
                Xi, Zi, Ci, Seg, Yi, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis, N,
                Binv, Dinv, beta, Sigma, Psi, B, XtYi, ZtYi, YtYi,
                ch_beta, ch_psi, ch_sigma):
    """Run ``n_steps`` Gibbs iterations in place; iteration s is stored at index rec0 + s of the
    chain arrays (rec0 < 0: not stored).

    Data: complete rows enter through their constant cross-products (XtYc, ZtYc, YtYc);
    incomplete rows are stored transposed (Xi: p x n, Zi: q x n, Yi: r x n, Ci: cluster codes,
    Seg: starts of its runs of equal codes) and grouped by missingness pattern (rows
    pat_start[g]:pat_start[g+1]); their cross-products
    XtYi, ZtYi, YtYi must match Yi on entry and are kept up to date.
    Randomness: ``rng`` is the chain's numpy Generator. Each iteration first fills the buffer ``z``
    with its standard normals (beta as (r, p), clusters as (d, J), Psi, Sigma, then per pattern
    its missing cells as (n_mis, rows)) and ``chi`` with chi-square draws on ``dfs`` degrees of
    freedom (d for Psi, then r for Sigma). Returns 0, or 1 if a covariance matrix lost positive
    definiteness (the caller raises).

    Order within an iteration: beta | Sigma, Psi, Y (b integrated out), b | beta, ...; Psi | b;
    Sigma | beta, b, Y; missing cells. Drawing (beta, b) as one block keeps fixed effects that
    are confounded with random effects (a random slope on an uncentred predictor) mixing well.
    """
    p = XtX.shape[0]
    q, r, J = ZtYc.shape
    d = q * r
    n_pat = pat_nobs.shape[0]
    n_inc = Yi.shape[1]
    mx = max(d, r, p, 1)
    w1 = np.empty((mx, mx))
    w2 = np.empty((mx, mx))
    Sinv = np.empty((r, r))
    Pinv = np.empty((d, d))
    ZtY = np.empty((q, r, J))
    R = np.empty((q, r, J))
    P = np.empty((d, d, J))
    v = np.empty((d, J))
    tmp = np.empty(J)
    SB = np.empty((d, d))
    XtW = np.empty((p, r))
    WtW = np.empty((r, r))
    scale_s = np.empty((r, r))
    scale_p = np.empty((d, d))
    pr = p * r
    F = np.empty((d, pr, J))
    f = np.empty((d, J))
    A = np.empty((pr, pr))
    cvec = np.empty(pr)
    XtY = np.empty((p, r))
    YtY = np.empty((r, r))
    Kp = np.zeros((max(n_pat, 1), r, r))
    Cp = np.zeros((max(n_pat, 1), r, r))
    mu = np.empty((r, max(n_inc, 1)))
    npsi = d * (d - 1) // 2
    nsig = r * (r - 1) // 2
    n_norm = z.shape[0]
    for s in range(n_steps):
        for k in range(n_norm):
            z[k] = rng.standard_normal()
        for k in range(d + r):
            chi[k] = rng.chisquare(dfs[k])
        cur = 0
        if not spd_inverse(Sigma, Sinv, w1, r):
            return 1
        if not spd_inverse(Psi, Pinv, w1, d):
            return 1
        for a in range(q):
            for t in range(r):
                for j in range(J):
                    ZtY[a, t, j] = ZtYc[a, t, j] + ZtYi[a, t, j]
        for k in range(p):
            for t in range(r):
                XtY[k, t] = XtYc[k, t] + XtYi[k, t]
        # 1. (beta, b) | Sigma, Psi, Y: beta with b integrated out, then b | beta
        if not _precision_cholesky(ZtZ, Sinv, Pinv, P):
            return 1
        if not _draw_beta_collapsed(z[cur:cur + pr], XtX, XtY, ZtX, ZtY, Sinv, P, F, f, A, cvec, beta):
            return 1
        cur += pr
        _draw_given_cholesky(z[cur:cur + d * J], ZtX, ZtY, beta, Sinv, B, R, P, v)
        cur += d * J
        # sum b b', X'W = X'Y - sum Z_j'X_j' b_j, W'W = Y'Y - b'Z'Y - Y'Z b + b'Z'Z b
        for x in range(d):
            for y in range(x + 1):
                val = _dot(v[x], v[y])
                SB[x, y] = val
                SB[y, x] = val
        for t in range(r):
            for u in range(r):
                YtY[t, u] = YtYc[t, u] + YtYi[t, u]
        residual_crossproducts(XtY, YtY, ZtX, ZtY, ZtZ, B, tmp, XtW, WtW)
        # 2. Psi
        for x in range(d):
            for y in range(d):
                scale_p[x, y] = Dinv[x, y] + SB[x, y]
        if not draw_inv_wishart(chi[:d], z[cur:cur + npsi], scale_p, Psi, w1, w2, d):
            return 1
        cur += npsi
        # 3. Sigma | beta, b, Y: residual cross-products W'W - beta'X'W - W'X beta + beta'X'X beta
        for t in range(r):
            for u in range(t + 1):
                acc = WtW[t, u]
                for k in range(p):
                    acc -= beta[k, t] * XtW[k, u] + XtW[k, t] * beta[k, u]
                    bt = beta[k, t]
                    for kk in range(p):
                        acc += bt * XtX[k, kk] * beta[kk, u]
                scale_s[t, u] = Binv[t, u] + acc
                scale_s[u, t] = Binv[u, t] + acc
        if not draw_inv_wishart(chi[d:d + r], z[cur:cur + nsig], scale_s, Sigma, w1, w2, r):
            return 1
        cur += nsig
        # 4. missing cells, pattern by pattern
        if n_inc > 0:
            pattern_factors(Sigma, pat_obs, pat_nobs, pat_mis, pat_nmis, Kp, Cp, w1, w2)
            row_means(Xi, Zi, Ci, beta, B, mu)
            cur = draw_missing_cells(Yi, mu, z, cur, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis,
                                     Kp, Cp)
            rows_crossproducts(Xi, Zi, Yi, Ci, Seg, XtYi, ZtYi, YtYi)
        # record
        if rec0 >= 0:
            o = rec0 + s
            for k in range(p):
                for t in range(r):
                    ch_beta[k, t, o] = beta[k, t]
            record_covariances(Psi, Sigma, ch_psi, ch_sigma, o, diag_only)
    return 0
