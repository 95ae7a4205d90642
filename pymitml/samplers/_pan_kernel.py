"""Gibbs sampler of pan's two-level multivariate linear mixed model, over plain arrays.

Model (Schafer & Yucel 2002), cluster j with n_j rows and r targets:

    Y_j = X_j beta + Z_j b_j + E_j,   vec(b_j) ~ N(0, Psi) (order q r, target-major),
    rows of E_j ~ N(0, Sigma),        flat prior on beta,
    Sigma ~ IW(a, Binv),  Psi ~ IW(c, Dinv).

One iteration, with the missing cells of Y filled by their current draws:

1. b_j | beta, Sigma, Psi, Y: precision P_j = Psi^-1 + Sigma^-1 (x) Z_j'Z_j,
   mean P_j^-1 vec(Z_j'(Y_j - X_j beta) Sigma^-1).
2. Psi | b ~ IW(c + J, Dinv + sum_j vec(b_j) vec(b_j)').
3. (Sigma, beta) | b, Y jointly: with W = Y - Z b and beta_hat = (X'X)^-1 X'W,
   Sigma ~ IW(a + N - p, Binv + (W - X beta_hat)'(W - X beta_hat)),
   beta | Sigma ~ MatrixNormal(beta_hat, (X'X)^-1, Sigma).
4. Missing cells of each incomplete row from the normal of the missing given the observed part
   of that row, mean x_i beta + z_i b_j, covariance Sigma.

Steps 1-3 use only sufficient statistics (X'Y, Z_j'Y_j, Y'Y with the fixed X'X, Z_j'Z_j,
Z_j'X_j), which step 4 updates row by row as it redraws a cell; they are recomputed from the rows
every ``REFRESH`` iterations (on the global iteration count, so results do not depend on how a
run is cut into segments). An iteration therefore costs O(J (qr)^3 + cells drawn), not O(N).
"""
from __future__ import annotations

import numpy as np

from .._numba import njit
from ._linalg import chol_inplace, draw_inv_wishart, solve_lower, solve_lower_t, spd_inverse

REFRESH = 256


@njit
def pan_stats(X, Z, Y, clus, XtY, ZtY, YtY):
    """Recompute X'Y (p x r), Z_j'Y_j (J x q x r) and Y'Y (r x r) from the rows."""
    N, p = X.shape
    q = Z.shape[1]
    r = Y.shape[1]
    XtY[:, :] = 0.0
    ZtY[:, :, :] = 0.0
    YtY[:, :] = 0.0
    for i in range(N):
        j = clus[i]
        for t in range(r):
            y = Y[i, t]
            for k in range(p):
                XtY[k, t] += X[i, k] * y
            for a in range(q):
                ZtY[j, a, t] += Z[i, a] * y
            for s in range(t + 1):
                YtY[t, s] += y * Y[i, s]
    for t in range(r):
        for s in range(t):
            YtY[s, t] = YtY[t, s]


@njit
def cluster_crossproducts(X, Z, clus, J):
    """Fixed per-cluster cross-products Z_j'Z_j (J x q x q) and Z_j'X_j (J x q x p)."""
    N, p = X.shape
    q = Z.shape[1]
    ZtZ = np.zeros((J, q, q))
    ZtX = np.zeros((J, q, p))
    for i in range(N):
        j = clus[i]
        for a in range(q):
            za = Z[i, a]
            for b in range(q):
                ZtZ[j, a, b] += za * Z[i, b]
            for k in range(p):
                ZtX[j, a, k] += za * X[i, k]
    return ZtZ, ZtX


@njit
def pattern_factors(Sigma, pat_obs, pat_nobs, pat_mis, pat_nmis, K, C, w1, w2):
    """Per missingness pattern: K = Sigma_MO Sigma_OO^-1 and C = chol(Sigma_MM - K Sigma_OM)."""
    n_pat = pat_nobs.shape[0]
    for g in range(n_pat):
        no = pat_nobs[g]
        nm = pat_nmis[g]
        for u in range(no):
            for v in range(no):
                w1[u, v] = Sigma[pat_obs[g, u], pat_obs[g, v]]
        chol_inplace(w1, no)
        # K' (no x nm) = Sigma_OO^-1 Sigma_OM
        for v in range(nm):
            for u in range(no):
                w2[u, 0] = Sigma[pat_obs[g, u], pat_mis[g, v]]
            solve_lower(w1, w2[:, 0], no)
            solve_lower_t(w1, w2[:, 0], no)
            for u in range(no):
                K[g, v, u] = w2[u, 0]
        for v in range(nm):
            for w in range(nm):
                s = Sigma[pat_mis[g, v], pat_mis[g, w]]
                for u in range(no):
                    s -= K[g, v, u] * Sigma[pat_obs[g, u], pat_mis[g, w]]
                C[g, v, w] = s
        for v in range(nm):
            for w in range(v):
                s = 0.5 * (C[g, v, w] + C[g, w, v])
                C[g, v, w] = s
                C[g, w, v] = s
        chol_inplace(C[g], nm)


@njit
def pan_iterate(n_steps, it0, rec0, diag_only,
                X, Z, Y, clus, Lx, ZtZ, ZtX,
                inc_rows, inc_pat, pat_obs, pat_nobs, pat_mis, pat_nmis,
                a_prior, Binv, c_prior, Dinv,
                beta, Sigma, Psi, B, XtY, ZtY, YtY,
                ch_beta, ch_psi, ch_sigma):
    """Run ``n_steps`` Gibbs iterations in place; iteration s is stored at index rec0 + s of the
    chain arrays (rec0 < 0: not stored). ``it0`` is the global number of the first iteration.
    Returns 0, or 1 if a covariance matrix lost positive definiteness (caller raises)."""
    N, p = X.shape
    q = Z.shape[1]
    r = Y.shape[1]
    J = ZtZ.shape[0]
    d = q * r
    n_pat = pat_nobs.shape[0]
    mx = max(d, r, p, 1)
    w1 = np.empty((mx, mx))
    w2 = np.empty((mx, mx))
    w3 = np.empty((mx, mx))
    Sinv = np.empty((r, r))
    Pinv = np.empty((d, d))
    P = np.empty((d, d))
    v = np.empty(d)
    Rj = np.empty((q, r))
    SB = np.empty((d, d))
    XtW = np.empty((p, r))
    WtW = np.empty((r, r))
    scale_s = np.empty((r, r))
    scale_p = np.empty((d, d))
    bh = np.empty((p, r))
    Kp = np.zeros((max(n_pat, 1), r, r))
    Cp = np.zeros((max(n_pat, 1), r, r))
    mu = np.empty(r)
    e = np.empty(r)
    ynew = np.empty(r)
    nz = np.empty(p)
    for s in range(n_steps):
        it = it0 + s
        if it % REFRESH == 0:
            pan_stats(X, Z, Y, clus, XtY, ZtY, YtY)
        if not spd_inverse(Sigma, Sinv, w1, r):
            return 1
        if not spd_inverse(Psi, Pinv, w1, d):
            return 1
        # 1. random effects, accumulating sum b b', X'W and W'W on the way
        SB[:, :] = 0.0
        for k in range(p):
            for t in range(r):
                XtW[k, t] = XtY[k, t]
        for t in range(r):
            for u in range(r):
                WtW[t, u] = YtY[t, u]
        for j in range(J):
            # R_j = Z_j'Y_j - Z_j'X_j beta  (q x r)
            for a in range(q):
                for t in range(r):
                    acc = ZtY[j, a, t]
                    for k in range(p):
                        acc -= ZtX[j, a, k] * beta[k, t]
                    Rj[a, t] = acc
            # rhs = vec(R_j Sinv), precision P = Pinv + Sinv (x) ZtZ_j
            for t in range(r):
                for a in range(q):
                    acc = 0.0
                    for u in range(r):
                        acc += Rj[a, u] * Sinv[u, t]
                    v[t * q + a] = acc
                    for u in range(r):
                        for b in range(q):
                            P[t * q + a, u * q + b] = Pinv[t * q + a, u * q + b] + Sinv[t, u] * ZtZ[j, a, b]
            if not chol_inplace(P, d):
                return 1
            solve_lower(P, v, d)
            for k in range(d):
                v[k] += np.random.standard_normal()
            solve_lower_t(P, v, d)
            for t in range(r):
                for a in range(q):
                    B[j, a, t] = v[t * q + a]
            for k in range(d):
                for l in range(d):
                    SB[k, l] += v[k] * v[l]
            # X'W -= Z_j'X_j' b_j ;  W'W += b'ZtZ b - b'ZtY - ZtY'b
            for k in range(p):
                for t in range(r):
                    acc = 0.0
                    for a in range(q):
                        acc += ZtX[j, a, k] * B[j, a, t]
                    XtW[k, t] -= acc
            for t in range(r):
                for u in range(r):
                    acc = 0.0
                    for a in range(q):
                        zb = 0.0
                        for b in range(q):
                            zb += ZtZ[j, a, b] * B[j, b, u]
                        acc += B[j, a, t] * zb - B[j, a, t] * ZtY[j, a, u] - ZtY[j, a, t] * B[j, a, u]
                    WtW[t, u] += acc
        # 2. Psi
        for k in range(d):
            for l in range(d):
                scale_p[k, l] = Dinv[k, l] + SB[k, l]
        if not draw_inv_wishart(c_prior + J, scale_p, Psi, w1, w2, d):
            return 1
        # 3. beta_hat = (X'X)^-1 X'W ; Sigma ~ IW ; beta | Sigma
        for t in range(r):
            for k in range(p):
                bh[k, t] = XtW[k, t]
            solve_lower(Lx, bh[:, t], p)
            solve_lower_t(Lx, bh[:, t], p)
        for t in range(r):
            for u in range(t + 1):
                acc = WtW[t, u]
                for k in range(p):
                    acc -= bh[k, t] * XtW[k, u]
                acc2 = WtW[u, t]
                for k in range(p):
                    acc2 -= bh[k, u] * XtW[k, t]
                val = 0.5 * (acc + acc2)
                scale_s[t, u] = Binv[t, u] + val
                scale_s[u, t] = Binv[u, t] + val
        if not draw_inv_wishart(a_prior + N - p, scale_s, Sigma, w1, w2, r):
            return 1
        for t in range(r):
            for u in range(r):
                w3[t, u] = Sigma[t, u]
        chol_inplace(w3, r)
        # beta = bh + Lx^-T Nz Ls'
        for u in range(r):
            for k in range(p):
                nz[k] = np.random.standard_normal()
            solve_lower_t(Lx, nz, p)
            for k in range(p):
                w2[k, u] = nz[k]
        for k in range(p):
            for t in range(r):
                acc = bh[k, t]
                for u in range(t + 1):
                    acc += w2[k, u] * w3[t, u]
                beta[k, t] = acc
        # 4. missing cells
        if inc_rows.shape[0] > 0:
            pattern_factors(Sigma, pat_obs, pat_nobs, pat_mis, pat_nmis, Kp, Cp, w1, w2)
        for ii in range(inc_rows.shape[0]):
            i = inc_rows[ii]
            g = inc_pat[ii]
            j = clus[i]
            for t in range(r):
                acc = 0.0
                for k in range(p):
                    acc += X[i, k] * beta[k, t]
                for a in range(q):
                    acc += Z[i, a] * B[j, a, t]
                mu[t] = acc
                ynew[t] = Y[i, t]
            no = pat_nobs[g]
            nm = pat_nmis[g]
            for u in range(no):
                o = pat_obs[g, u]
                e[u] = Y[i, o] - mu[o]
            for w in range(nm):
                v[w] = np.random.standard_normal()
            for w in range(nm):
                acc = mu[pat_mis[g, w]]
                for u in range(no):
                    acc += Kp[g, w, u] * e[u]
                for u in range(w + 1):
                    acc += Cp[g, w, u] * v[u]
                ynew[pat_mis[g, w]] = acc
            # incremental update of the sufficient statistics
            for t in range(r):
                dt = ynew[t] - Y[i, t]
                if dt != 0.0:
                    for k in range(p):
                        XtY[k, t] += X[i, k] * dt
                    for a in range(q):
                        ZtY[j, a, t] += Z[i, a] * dt
            for t in range(r):
                for u in range(r):
                    YtY[t, u] += ynew[t] * ynew[u] - Y[i, t] * Y[i, u]
            for t in range(r):
                Y[i, t] = ynew[t]
        # record
        if rec0 >= 0:
            o = rec0 + s
            for k in range(p):
                for t in range(r):
                    ch_beta[k, t, o] = beta[k, t]
            if diag_only:
                for k in range(d):
                    ch_psi[k, 0, o] = Psi[k, k]
                for t in range(r):
                    ch_sigma[t, 0, o] = Sigma[t, t]
            else:
                for k in range(d):
                    for l in range(d):
                        ch_psi[k, l, o] = Psi[k, l]
                for t in range(r):
                    for u in range(r):
                        ch_sigma[t, u, o] = Sigma[t, u]
    return 0
