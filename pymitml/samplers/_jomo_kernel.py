"""Gibbs sampler of jomo's joint model (level-1 targets, continuous and categorical), over arrays.

Model (Carpenter & Kenward 2013; jomo's ``jomo1ran``/``jomo1``), cluster j, r columns (continuous
targets, then K-1 latent normals per categorical target):

    Y_j = X_j beta + Z_j u_j + E_j,   vec(u_j) ~ N(0, Psi) (target-major),
    rows of E_j ~ N(0, Sigma),        flat prior on beta,   Psi ~ IW(d, Dinv).

Latent normals of a categorical target with K observed levels: level k < K <=> latent k is the
largest and > 0; level K <=> all latents < 0; their block of Sigma is fixed to 1 on the diagonal
and 0.5 off it. Single-level models have no Z (q = 0) and one cluster.

One iteration (jomo's steps; the order differs but not the stationary distribution):

1. latents of observed categories, one component at a time from the normal of that component
   given the rest of its row (precision Q = Sigma^-1), truncated to the region of the observed level;
2. missing cells of each row given the observed part of the row (latents of a missing category
   are drawn unconstrained);
3. u_j | beta, Sigma, Psi (as in pan); Psi ~ IW(J + d, Dinv + sum u u');
4. beta | u, Sigma ~ MatrixNormal((X'X)^-1 X'(Y - Z u), (X'X)^-1, Sigma);
5. Sigma | beta, u with residual cross-products S: without categorical targets
   Sigma ~ IW(N - 1, Binv + S) (jomo's degrees of freedom); with them, jomo's random-walk
   Metropolis-Hastings over the free elements with the likelihood alone as target
   (log target -tr(Sigma^-1 S)/2 - N log|Sigma|/2, proposals that are not positive definite are
   rejected).

Level-2 targets (jomo2com): Y2_j = X2_j beta2 + u2_j with (u_j, u2_j) ~ N(0, Psi); a nominal
level-2 target has K - 1 latent normals per cluster whose block of Psi is fixed like Sigma's (an
ordinal one: one latent of variance 1 cut at thresholds, rows ncat.. of ``gam``, updated like the
level-1 ones with the cluster's conditional normal).
Their latents (observed categories) are drawn component-wise from the conditional of u2_j given
the rest of the cluster's vector, truncated to the observed level's region; Psi then gets the
same element-wise Metropolis-Hastings as Sigma (flat prior) instead of its inverse-Wishart draw.

Steps 3-5 need only the sufficient statistics X'Y, Z_j'Y_j, Y'Y (rows that never change enter
through constant cross-products; the others are stored transposed, grouped by missingness pattern).
"""
from __future__ import annotations

import math

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
from ._linalg import (
    chol_inplace,
    draw_inv_wishart,
    draw_inv_wishart_pair,
    solve_lower,
    solve_lower_t,
    spd_inverse,
)
from ._truncnorm import norm_cdf, truncnorm_batch, truncnorm_draw


def jomo_draw_counts(J, p, q, r, n_cells, n_inc, n_lat, n_free, p2=0, r2=0, n_cells2=0, n_thr=0,
                     n_lat2=0, n_free2=0):
    """(normals, uniforms) one iteration consumes (threshold proposals come last in both)."""
    d = q * r
    du = d + r2
    nsig = max(r * (r - 1) // 2, n_free)
    npsi = max(du * (du - 1) // 2, n_free2)
    return (J * d + npsi + nsig + p * r + n_cells + p2 * r2 + n_cells2 + n_thr,
            n_lat * n_inc + n_free + n_free2 + n_lat2 * J + n_thr)


@njit
def _log_target(Sigma, S, N, w1, w2, r):
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
    for c in range(r):  # tr(Sigma^-1 S) = sum_c ||L^-1 s_c||^2 ... via L^-1 S L^-T diagonal
        for i in range(r):
            w2[i, 0] = S[i, c]
        # w2[:, 0] <- L^-1 s_c
        for i in range(r):
            s = w2[i, 0]
            for k in range(i):
                s -= w1[i, k] * w2[k, 0]
            w2[i, 0] = s / w1[i, i]
        solve_lower_t(w1, w2[:, 0], r)
        tr += w2[c, 0]
    return -0.5 * tr - 0.5 * N * logdet


@njit
def _mh_sigma(Sigma, S, N, free, nrm, unif, w1, w2, r, n_prop):
    """jomo's element-wise random-walk Metropolis-Hastings for Sigma with log target
    -tr(Sigma^-1 S)/2 - N log|Sigma|/2 (see :func:`_log_target`); the proposal SD of a variance is
    its value times sqrt(11.6 / n_prop), of a covariance 0.1 sqrt(s_jj s_kk). Returns accepted moves."""
    cur = _log_target(Sigma, S, N, w1, w2, r)
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
            val = _log_target(Sigma, S, N, w1, w2, r)
            if val > -math.inf and math.log(unif[c]) < val - cur:
                cur = val
                acc += 1
            else:
                Sigma[j, k] = old
                Sigma[k, j] = old
            c += 1
    return acc


@njit
def _conditional_offsets(Yi, mu, Q, col, tmp):
    """tmp[i] = sum_{l != col} Q[col, l] (y_il - mu_il) / Q[col, col]: the normal of latent ``col``
    given the rest of row i has mean mu_i,col - tmp[i] and variance 1 / Q[col, col]."""
    r, n = Yi.shape
    qkk = Q[col, col]
    for i in range(n):
        tmp[i] = 0.0
    for ll in range(r):
        if ll == col:
            continue
        qkl = Q[col, ll] / qkk
        yl = Yi[ll]
        ml = mu[ll]
        for i in range(n):
            tmp[i] += qkl * (yl[i] - ml[i])


@njit
def _log_interval_prob(lo, hi, m, sd):
    """log P(lo < X <= hi) for X ~ N(m, sd^2), computed on the tail that keeps precision."""
    a = (lo - m) / sd
    b = (hi - m) / sd
    if a > 0.0:
        pr = norm_cdf(-a) - norm_cdf(-b)
    else:
        pr = norm_cdf(b) - norm_cdf(a)
    return math.log(pr) if pr > 1e-300 else -690.8


@njit
def _latent_moments(Yi, mu, Q, Ci, col, cm, csd):
    """Mean ``cm[i]`` and SD ``csd[i]`` of latent ``col`` of row i given the rest of the row, with
    precision Q[0] for every row (Q of shape (1, r, r)) or Q[Ci[i]] (cluster-specific level-1
    covariance matrices, Q of shape (J, r, r))."""
    r, n = Yi.shape
    if Q.shape[0] == 1:
        Q0 = Q[0]
        _conditional_offsets(Yi, mu, Q0, col, cm)
        sd = 1.0 / math.sqrt(Q0[col, col])
        mc = mu[col]
        for i in range(n):
            cm[i] = mc[i] - cm[i]
            csd[i] = sd
        return
    for i in range(n):
        c = Ci[i]
        qkk = Q[c, col, col]
        acc = 0.0
        for ll in range(r):
            if ll != col:
                acc += Q[c, col, ll] * (Yi[ll, i] - mu[ll, i])
        cm[i] = mu[col, i] - acc / qkk
        csd[i] = 1.0 / math.sqrt(qkk)


@njit
def _update_thresholds(Yi, mu, Q, Ci, cat_start, cat_obs, cat_K, cat_ord, gam, thr_sd, thr_acc, z, uu, cm, csd):
    """Thresholds of ordinal targets: random-walk Metropolis-Hastings, one threshold at a time,
    with the latent normals integrated out (Cowles 1996); the first threshold is fixed at 0.
    ``Q``: precision (1, r, r) or per cluster (J, r, r), see :func:`_latent_moments`."""
    n = Yi.shape[1]
    c = 0
    for v in range(cat_start.shape[0]):
        if not cat_ord[v]:
            continue
        K = cat_K[v]
        _latent_moments(Yi, mu, Q, Ci, cat_start[v], cm, csd)
        obs = cat_obs[v]
        for j in range(2, K):
            old = gam[v, j]
            new = old + thr_sd[v, j] * z[c]
            if new > gam[v, j - 1] and new < gam[v, j + 1]:
                dl = 0.0
                for i in range(n):
                    lev = obs[i]
                    if lev == j - 1:
                        dl += _log_interval_prob(gam[v, j - 1], new, cm[i], csd[i]) - \
                            _log_interval_prob(gam[v, j - 1], old, cm[i], csd[i])
                    elif lev == j:
                        dl += _log_interval_prob(new, gam[v, j + 1], cm[i], csd[i]) - \
                            _log_interval_prob(old, gam[v, j + 1], cm[i], csd[i])
                if math.log(uu[c]) < dl:
                    gam[v, j] = new
                    thr_acc[v, j] += 1
            c += 1


@njit
def _draw_latents(rng, Yi, mu, Q, Ci, cat_start, cat_k1, cat_obs, cat_ord, gam, box_lo, box_hi, cm, csd, lw, li,
                  obs_rows, n_obs):
    """Step 1: truncated-normal Gibbs over every latent component of every observed category
    (ordinal targets: one latent between the thresholds of the observed level). One component at
    a time, the draws of all rows are made together (:func:`truncnorm_batch`); ``obs_rows[v, :n_obs[v]]``
    are the rows where target v is observed; ``Q`` is the precision (1, r, r) or per cluster
    (J, r, r); ``cm``, ``csd`` (n), ``lw`` (7, n) and ``li`` (1, n) are work arrays."""
    ncat = cat_start.shape[0]
    bm, bs, blo, bhi, bout, wt, ws = lw[0], lw[1], lw[2], lw[3], lw[4], lw[5], lw[6]
    wi = li[0]
    lo_pos = max(box_lo, 0.0)
    hi_neg = min(box_hi, 0.0)
    for v in range(ncat):
        c0 = cat_start[v]
        k1 = cat_k1[v]
        obs = cat_obs[v]
        rows = obs_rows[v]
        nv = n_obs[v]
        binary = k1 == 1 and not cat_ord[v]
        for k in range(k1):
            col = c0 + k
            _latent_moments(Yi, mu, Q, Ci, col, cm, csd)
            yc = Yi[col]
            for c in range(nv):
                i = rows[c]
                lev = obs[i]
                if binary:  # level 0 <=> latent > 0 (without a data-dependent branch)
                    pos = lev == 0
                    lo = lo_pos if pos else box_lo
                    hi = box_hi if pos else hi_neg
                elif cat_ord[v]:  # no bounds: the thresholds are updated with the latents integrated out
                    lo = gam[v, lev]
                    hi = gam[v, lev + 1]
                else:
                    lo, hi = _latent_bounds(Yi, i, c0, k1, k, lev, box_lo, box_hi)
                bm[c] = cm[i]
                bs[c] = csd[i]
                blo[c] = lo
                bhi[c] = hi
            truncnorm_batch(rng, bm, bs, blo, bhi, bout, nv, wi, wt, ws)
            for c in range(nv):
                yc[rows[c]] = bout[c]


@njit
def _observed_rows(cat_obs):
    """(rows, counts): rows[v, :counts[v]] are the rows where categorical target v is observed."""
    ncat, n = cat_obs.shape
    rows = np.empty((ncat, max(n, 1)), np.int64)
    cnt = np.zeros(ncat, np.int64)
    for v in range(ncat):
        for i in range(n):
            if cat_obs[v, i] >= 0:
                rows[v, cnt[v]] = i
                cnt[v] += 1
    return rows, cnt


@njit
def _latent_bounds(Yc, i, c0, k1, k, lev, box_lo, box_hi):
    """Truncation region of latent k (of k1) of a nominal target observed at local level ``lev``;
    ``Yc[c0 + l, i]`` are the current latents of that row or cluster."""
    lo = box_lo
    hi = box_hi
    if lev == k1:  # reference level: every latent below 0
        hi = min(hi, 0.0)
    elif lev == k:  # the observed level's latent is the largest and above 0
        m = 0.0
        for ll in range(k1):
            if ll != k and Yc[c0 + ll, i] > m:
                m = Yc[c0 + ll, i]
        lo = max(lo, m)
    else:  # below the observed level's latent
        hi = min(hi, Yc[c0 + lev, i])
    return lo, hi


@njit
def _draw_latents_l2(Y2, X2, beta2, B, Q, d, cat2_start, cat2_k1, cat2_obs, cat2_ord, gam2, box_lo, box_hi,
                     unif, w):
    """Latent normals of observed level-2 categories, cluster by cluster: each component from the
    normal of its level-2 residual given the rest of the cluster's vector (u_j, u2_j) (precision
    ``Q`` = Psi^-1), truncated to the region of the cluster's level (jomo2com's level-2 step)."""
    q, r, J = B.shape
    du = Q.shape[0]
    p2 = X2.shape[0]
    r2 = Y2.shape[0]
    ncat2 = cat2_start.shape[0]
    for j in range(J):
        for t in range(r):
            for a in range(q):
                w[t * q + a] = B[a, t, j]
        for t in range(r2):
            m = 0.0
            for k in range(p2):
                m += X2[k, j] * beta2[k, t]
            w[d + t] = Y2[t, j] - m
        cu = 0
        for v in range(ncat2):
            c0 = cat2_start[v]
            k1 = cat2_k1[v]
            lev = cat2_obs[v, j]
            for k in range(k1):
                if lev >= 0:
                    x = d + c0 + k
                    acc = 0.0
                    for ll in range(du):
                        if ll != x:
                            acc += Q[x, ll] * w[ll]
                    xb = Y2[c0 + k, j] - w[x]
                    if cat2_ord[v]:  # ordinal: between the thresholds of the cluster's level
                        lo = gam2[v, lev]
                        hi = gam2[v, lev + 1]
                    else:
                        lo, hi = _latent_bounds(Y2, j, c0, k1, k, lev, box_lo, box_hi)
                    y = truncnorm_draw(xb - acc / Q[x, x], 1.0 / math.sqrt(Q[x, x]), lo, hi,
                                       unif[cu * J + j])
                    Y2[c0 + k, j] = y
                    w[x] = y - xb
                cu += 1


@njit
def _draw_beta2(X2, Lx2, Y2, Psi, d, z, beta2, U2, w1, bh2):
    """jomo2com's level-2 step: beta2 ~ MatrixNormal(OLS of Y2 on X2, (X2'X2)^-1, Psi_22);
    then the level-2 residuals U2 = Y2 - X2 beta2."""
    p2, J = X2.shape
    r2 = Y2.shape[0]
    for t in range(r2):
        for k in range(p2):
            bh2[k, t] = _dot(X2[k], Y2[t])
        for i in range(p2):
            acc = bh2[i, t]
            for k in range(i):
                acc -= Lx2[i, k] * bh2[k, t]
            bh2[i, t] = acc / Lx2[i, i]
        solve_lower_t(Lx2, bh2[:, t], p2)
    for t in range(r2):
        for u in range(r2):
            w1[t, u] = Psi[d + t, d + u]
    if not chol_inplace(w1, r2):
        return False
    nz = np.empty(p2)
    for t in range(r2):
        for k in range(p2):
            beta2[k, t] = bh2[k, t]
    for u in range(r2):
        for k in range(p2):
            nz[k] = z[u * p2 + k]
        solve_lower_t(Lx2, nz, p2)
        for t in range(u, r2):
            c = w1[t, u]
            for k in range(p2):
                beta2[k, t] += nz[k] * c
    for t in range(r2):
        ut = U2[t]
        yt = Y2[t]
        for j in range(J):
            ut[j] = yt[j]
        for k in range(p2):
            bk = beta2[k, t]
            xk = X2[k]
            for j in range(J):
                ut[j] -= xk[j] * bk
    return True


@njit
def _conditional_prior(Psi, d, U2, Pinv, M, w1, w2):
    """u1 | u2 ~ N(M, V): M = Psi_12 Psi_22^-1 u2, Pinv <- V^-1 with V = Psi_11 - Psi_12 Psi_22^-1 Psi_21."""
    du = Psi.shape[0]
    r2 = du - d
    J = U2.shape[1]
    for t in range(r2):
        for u in range(r2):
            w1[t, u] = Psi[d + t, d + u]
    if not chol_inplace(w1, r2):
        return False
    # K = Psi_12 Psi_22^-1 row by row -> w2[x, :r2]
    for x in range(d):
        for t in range(r2):
            w2[x, t] = Psi[x, d + t]
        # solve Psi_22 k = psi_x21 (symmetric; w1 holds the Cholesky factor of Psi_22)
        solve_lower(w1, w2[x], r2)
        solve_lower_t(w1, w2[x], r2)
    for x in range(d):
        mx = M[x]
        for j in range(J):
            mx[j] = 0.0
        for t in range(r2):
            kxt = w2[x, t]
            ut = U2[t]
            for j in range(J):
                mx[j] += kxt * ut[j]
    V = np.empty((d, d))
    for x in range(d):
        for y in range(d):
            V[x, y] = Psi[x, y]
    _schur_update(V, w2, Psi[d:, :d], d, r2)
    return spd_inverse(V, Pinv, w1, d)


@njit
def _schur_update(A, Bm, Cm, n, k):
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


@njit
def _draw_missing_l2(Y2, U2, v, X2, beta2, Psi, perm2, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis,
                     Kp, Cp, w1, w2, z):
    """Missing level-2 values of each cluster given its random effects and observed level-2 values
    (pattern by pattern over the clusters ``perm2``)."""
    n_pat = pat_nobs.shape[0]
    d = v.shape[0]
    p2 = X2.shape[0]
    pattern_factors(Psi, pat_obs, pat_nobs, pat_mis, pat_nmis, Kp, Cp, w1, w2)
    cur = 0
    for g in range(n_pat):
        s0 = pat_start[g]
        s1 = pat_start[g + 1]
        n = s1 - s0
        no = pat_nobs[g]
        nm = pat_nmis[g]
        if nm == 0:
            continue
        for i in range(n):
            j = perm2[s0 + i]
            for w in range(nm):
                t = pat_mis[g, w] - d
                acc = 0.0
                for u in range(no):
                    o = pat_obs[g, u]
                    val = v[o, j] if o < d else U2[o - d, j]
                    acc += Kp[g, w, u] * val
                for u in range(w + 1):
                    acc += Cp[g, w, u] * z[cur + u * n + i]
                U2[t, j] = acc
            for w in range(nm):
                t = pat_mis[g, w] - d
                m = 0.0
                for k in range(p2):
                    m += X2[k, j] * beta2[k, t]
                Y2[t, j] = m + U2[t, j]
        cur += nm * n
    return cur


@njit
def _level_counts(pat_start, pat_nmis, cat_k1, cat_K, cat_ord, free):
    """(missing cells, latent columns, free thresholds, free elements of the covariance matrix
    (upper triangle; only with categorical targets)) of one level, for the noise layout."""
    n_cells = 0
    for g in range(pat_nmis.shape[0]):
        n_cells += pat_nmis[g] * (pat_start[g + 1] - pat_start[g])
    ncat = cat_k1.shape[0]
    n_lat = 0
    n_thr = 0
    for v in range(ncat):
        n_lat += cat_k1[v]
        if cat_ord[v] and cat_K[v] > 2:
            n_thr += cat_K[v] - 2
    n_free = 0
    if ncat > 0:
        for j in range(free.shape[0]):
            for k in range(j, free.shape[0]):
                if free[j, k]:
                    n_free += 1
    return n_cells, n_lat, n_thr, n_free


@njit
def _level2_work(du, J, p2, r2):
    """Work arrays of :func:`_level2_step`."""
    return (np.empty((du, du)), np.empty((du, J)), np.empty((du, J)), np.zeros(max(J, 1), np.int64),
            np.empty(max(du, 1)), np.empty((max(p2, 1), max(r2, 1))))


@njit
def _level2_step(Psi, d, B, X2, Lx2, Y2, beta2, U2, Pinv, M, cat2_start, cat2_k1, cat2_obs, cat_K2, cat_ord2,
                 gam2, thr_sd2, thr_acc2, box_lo, box_hi, z_beta2, z_thr, u_thr, u_lat, cm, csd, work, w1, w2):
    """The level-2 part of an iteration (jomo2com / jomo2hr), shared by both samplers: thresholds
    of ordinal level-2 targets (latents integrated out) and the latents of observed level-2
    categories, both given the cluster's vector (u_j, u2_j) (precision Psi^-1); then beta2 and the
    residuals U2 (:func:`_draw_beta2`) and the conditional prior u_j | u2_j ~ N(M_j, Pinv^-1).
    Noise: ``z_beta2`` (p2 r2 normals), ``z_thr`` / ``u_thr`` (threshold proposals), ``u_lat``
    (uniforms of the latents, n_lat2 J). ``work`` from :func:`_level2_work`. Returns 0, or 9 (Psi
    not positive definite), 7 (beta2) or 8 (conditional prior)."""
    Q2, Ybig, mubig, C0, wu, bh2 = work
    du = Psi.shape[0]
    q, r, J = B.shape
    r2, p2 = Y2.shape[0], X2.shape[0]
    ncat2 = cat2_start.shape[0]
    n_thr2 = z_thr.shape[0]
    if ncat2 > 0:
        if not spd_inverse(Psi, Q2, w1, du):
            return 9
        if n_thr2 > 0:
            for t in range(r):
                for a in range(q):
                    Ybig[t * q + a] = B[a, t]
                    mubig[t * q + a] = 0.0
            for t in range(r2):
                for j in range(J):
                    acc = 0.0
                    for k in range(p2):
                        acc += X2[k, j] * beta2[k, t]
                    mubig[d + t, j] = acc
                    Ybig[d + t, j] = Y2[t, j]
            _update_thresholds(Ybig, mubig, Q2.reshape((1, du, du)), C0, cat2_start + d, cat2_obs, cat_K2, cat_ord2,
                               gam2, thr_sd2, thr_acc2, z_thr, u_thr, cm, csd)
        _draw_latents_l2(Y2, X2, beta2, B, Q2, d, cat2_start, cat2_k1, cat2_obs, cat_ord2, gam2, box_lo, box_hi,
                         u_lat, wu)
    if not _draw_beta2(X2, Lx2, Y2, Psi, d, z_beta2, beta2, U2, w1, bh2):
        return 7
    if d > 0 and not _conditional_prior(Psi, d, U2, Pinv, M, w1, w2):
        return 8
    return 0


@njit
def jomo_iterate(n_steps, rec0, diag_only, rng, dfs, nrm, unif, chi,
                 Lx, XtX, ZtZ, ZtX, XtYc, ZtYc, YtYc,
                 Xi, Zi, Ci, Seg, Yi, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis, N,
                 cat_start, cat_k1, cat_obs, free, box_lo, box_hi,
                 Binv, Dinv, beta, Sigma, Psi, B, XtYi, ZtYi, YtYi,
                 ch_beta, ch_psi, ch_sigma, accepted,
                 X2, Lx2, Y2, perm2, pat2_start, pat2_obs, pat2_nobs, pat2_mis, pat2_nmis, beta2, ch_beta2,
                 cat_K, cat_ord, gam, thr_sd, thr_acc, ch_gam, cat2_start, cat2_k1, cat2_obs, free2):
    """Run ``n_steps`` iterations in place; iteration s is stored at index rec0 + s of the chains.

    Randomness: ``rng`` is the chain's numpy Generator; each iteration draws into row 0 of the
    buffers ``nrm``, ``unif`` and ``chi`` (chi-square on ``dfs``), laid out as: ``nrm`` (random effects (d, J), Psi,
    Sigma (Bartlett normals, or one proposal per free element), beta (r, p), missing cells by
    pattern), ``unif[s]`` (latent components (n_latent, rows), then Metropolis-Hastings
    acceptances) and ``chi[s]`` (d for Psi, r for Sigma). ``accepted[0]`` counts accepted
    Metropolis-Hastings moves. Returns 0, or 1 if a covariance matrix lost positive definiteness.
    """
    p = Lx.shape[0]
    q, r, J = ZtYc.shape
    d = q * r
    r2 = Y2.shape[0]
    p2 = X2.shape[0]
    du = d + r2
    n_pat = pat_nobs.shape[0]
    n_inc = Yi.shape[1]
    ncat = cat_start.shape[0]
    mh = ncat > 0
    ncat2 = cat2_start.shape[0]
    # level 2: rows ncat.. of gam, cat_K and cat_ord
    n_cells, n_lat, n_thr, n_free = _level_counts(pat_start, pat_nmis, cat_k1, cat_K[:ncat], cat_ord[:ncat], free)
    n_cells2, n_lat2, n_thr2, n_free2 = _level_counts(pat2_start, pat2_nmis, cat2_k1, cat_K[ncat:], cat_ord[ncat:],
                                                      free2)
    mx = max(du, r, p, p2, 1)
    w1 = np.empty((mx, mx))
    w2 = np.empty((mx, mx))
    w3 = np.empty((mx, mx))
    Sinv = np.empty((r, r))
    Sinv3 = Sinv.reshape((1, r, r))  # the same memory, as the latent helpers take it
    Pinv = np.empty((max(d, 1), max(d, 1)))
    U2 = np.empty((r2, J))
    M = np.zeros((d, J))
    XtYm = np.empty((p, r))  # X'(Y - Z M) and work of the collapsed beta draw
    F = np.empty((d, p * r, J))
    fv = np.empty((d, J))
    Ac = np.empty((p * r, p * r))
    cvec = np.empty(p * r)
    off_beta = J * d + max(du * (du - 1) // 2, n_free2) + max(r * (r - 1) // 2, n_free)
    ZtYm = np.empty((q, r, J))
    n_pat2 = pat2_nobs.shape[0]
    Kp2 = np.zeros((max(n_pat2, 1), du, du))
    Cp2 = np.zeros((max(n_pat2, 1), du, du))
    ZtY = np.empty((q, r, J))
    R = np.empty((q, r, J))
    P = np.empty((d, d, J))
    v = np.empty((d, J))
    tmp = np.empty(max(J, n_inc, 1))
    csd = np.empty(max(J, n_inc, 1))
    lw = np.empty((7, max(n_inc, 1)))  # work arrays of the batched latent draws
    li = np.empty((1, max(n_inc, 1)), np.int64)
    obs_rows, n_obs = _observed_rows(cat_obs)
    SB = np.empty((du, du))
    XtW = np.empty((p, r))
    XtYs = np.empty((p, r))
    YtYs = np.empty((r, r))
    WtW = np.empty((r, r))
    S = np.empty((r, r))
    scale_s = np.empty((r, r))
    scale_p = np.empty((du, du))
    bh = np.empty((p, r))
    nz = np.empty(p)
    Kp = np.zeros((max(n_pat, 1), r, r))
    Cp = np.zeros((max(n_pat, 1), r, r))
    mu = np.empty((r, max(n_inc, 1)))
    npsi = max(du * (du - 1) // 2, n_free2)
    nsig = max(r * (r - 1) // 2, n_free)
    if (nrm.shape[1] != J * d + npsi + nsig + p * r + n_cells + p2 * r2 + n_cells2 + n_thr + n_thr2
            or unif.shape[1] < n_lat * n_inc + n_free + n_free2 + n_lat2 * J + n_thr + n_thr2):
        return 10  # the pre-drawn noise does not match the layout of jomo_draw_counts
    l2w = _level2_work(du, J, p2, r2)
    # one categorical target (one fixed principal block) and a proper conditional: exact draws of
    # the free elements instead of Metropolis-Hastings (the same flat-prior target)
    iw = np.empty((20, mx, mx))
    ws = np.empty((mx, mx))
    exact1 = ncat == 1 and N - r - 1 > r - 1
    exact2 = ncat2 == 1 and J - du - 1 > du - 1
    i1a, i1b, Cb1, Cbi1, ld1 = _fixed_block(Sigma, cat_start[0] if exact1 else 0, cat_k1[0] if exact1 else 0, r)
    i2a, i2b, Cb2, Cbi2, ld2 = _fixed_block(Psi, d + cat2_start[0] if exact2 else 0, cat2_k1[0] if exact2 else 0, du)
    off_free2 = n_lat * n_inc + n_free
    off_lat2 = off_free2 + n_free2
    for s in range(n_steps):
        # this iteration's random numbers, drawn from the chain's generator into row 0
        z = nrm[0]
        uu = unif[0]
        for i_ in range(z.shape[0]):
            z[i_] = rng.standard_normal()
        for i_ in range(n_lat * n_inc, uu.shape[0]):  # level-1 latents draw from rng directly
            uu[i_] = max(rng.random(), 1e-300)  # open interval (0, 1)
        for i_ in range(chi.shape[1]):
            chi[0, i_] = rng.chisquare(dfs[i_])
        if not spd_inverse(Sigma, Sinv, w1, r):
            return 1
        # 1-2. latents and missing cells of the stored rows
        if n_inc > 0:
            row_means(Xi, Zi, Ci, beta, B, mu)
            if ncat > 0:
                if n_thr > 0:
                    _update_thresholds(Yi, mu, Sinv3, Ci, cat_start, cat_obs, cat_K, cat_ord, gam, thr_sd,
                                       thr_acc, z[z.shape[0] - n_thr:], uu[uu.shape[0] - n_thr:], tmp, csd)
                _draw_latents(rng, Yi, mu, Sinv3, Ci, cat_start, cat_k1, cat_obs, cat_ord, gam, box_lo, box_hi,
                              tmp, csd, lw, li, obs_rows, n_obs)
            cur_m = J * d + npsi + nsig + p * r
            pattern_factors(Sigma, pat_obs, pat_nobs, pat_mis, pat_nmis, Kp, Cp, w1, w2)
            draw_missing_cells(Yi, mu, z, cur_m, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis,
                               Kp, Cp)
            rows_crossproducts(Xi, Zi, Yi, Ci, Seg, XtYi, ZtYi, YtYi)
        cur = 0
        for a in range(q):
            for t in range(r):
                for j in range(J):
                    ZtY[a, t, j] = ZtYc[a, t, j] + ZtYi[a, t, j]
        # 3. (level 2: beta2, residuals u2, conditional prior of u1) random effects and Psi
        cur_l2 = J * d + npsi + nsig + p * r + n_cells
        if r2 > 0:
            zt = z.shape[0] - n_thr - n_thr2
            ut = uu.shape[0] - n_thr - n_thr2
            code = _level2_step(Psi, d, B, X2, Lx2, Y2, beta2, U2, Pinv, M, cat2_start, cat2_k1, cat2_obs,
                                cat_K[ncat:], cat_ord[ncat:], gam[ncat:], thr_sd[ncat:], thr_acc[ncat:], box_lo,
                                box_hi, z[cur_l2:cur_l2 + p2 * r2], z[zt:zt + n_thr2], uu[ut:ut + n_thr2],
                                uu[off_lat2:off_lat2 + n_lat2 * J], tmp, csd, l2w, w1, w2)
            if code:
                return code
            for a in range(q):
                for t in range(r):
                    for j in range(J):
                        acc = ZtY[a, t, j]
                        for b in range(q):
                            acc -= ZtZ[a, b, j] * M[t * q + b, j]
                        ZtYm[a, t, j] = acc
        elif d > 0 and not spd_inverse(Psi, Pinv, w1, d):
            return 2
        if d > 0:  # (beta, u) as one block: beta with u integrated out (GLS), then u | beta
            for t in range(r):
                for k in range(p):
                    acc = XtYc[k, t] + XtYi[k, t]
                    if r2 > 0:  # Y - Z M: the conditional prior mean of u moved to the data
                        for a in range(q):
                            Ma = M[t * q + a]
                            Xa = ZtX[a, k]
                            for j in range(J):
                                acc -= Xa[j] * Ma[j]
                    XtYm[k, t] = acc
            if not _precision_cholesky(ZtZ, Sinv, Pinv, P):
                return 3
            if not _draw_beta_collapsed(z[off_beta:off_beta + p * r], XtX, XtYm, ZtX, ZtYm if r2 > 0 else ZtY,
                                        Sinv, P, F, fv, Ac, cvec, beta):
                return 5
            _draw_given_cholesky(z[cur:cur + d * J], ZtX, ZtYm if r2 > 0 else ZtY, beta, Sinv, B, R, P, v)
            if r2 > 0:
                for t in range(r):
                    for a in range(q):
                        x = t * q + a
                        for j in range(J):
                            v[x, j] += M[x, j]
                            B[a, t, j] = v[x, j]
        cur += d * J
        if du > 0:
            for x in range(du):
                for y in range(x + 1):
                    if x < d:
                        val = _dot(v[x], v[y])
                    elif y < d:
                        val = _dot(U2[x - d], v[y])
                    else:
                        val = _dot(U2[x - d], U2[y - d])
                    SB[x, y] = val
                    SB[y, x] = val
            if ncat2 > 0:  # jomo2com: flat prior, latent block fixed
                acc_mh, ld = _restricted_update(rng, Psi, SB, float(J), float(J), exact2, i2a, i2b, Cb2, Cbi2, ld2, free2,
                                                z[cur:cur + npsi], uu[off_free2:off_free2 + n_free2], ws, iw,
                                                w1, w2, du)
                if exact2 and ld != ld:
                    return 4
                accepted[0] += acc_mh
            else:
                for x in range(du):
                    for y in range(du):
                        scale_p[x, y] = Dinv[x, y] + SB[x, y]
                if not draw_inv_wishart(chi[0, :du], z[cur:cur + npsi], scale_p, Psi, w1, w2, du):
                    return 4
        cur += npsi
        # W = Y - Z u: X'W and W'W
        for t in range(r):
            for u in range(r):
                YtYs[t, u] = YtYc[t, u] + YtYi[t, u]
            for k in range(p):
                XtYs[k, t] = XtYc[k, t] + XtYi[k, t]
        residual_crossproducts(XtYs, YtYs, ZtX, ZtY, ZtZ, B, tmp, XtW, WtW)
        cur_sig = cur
        cur += nsig
        # 4. beta | u, Sigma (single-level models; with clusters beta was drawn with u above)
        for t in range(r if d == 0 else 0):
            for k in range(p):
                bh[k, t] = XtW[k, t]
            for i in range(p):  # L^-1
                sacc = bh[i, t]
                for k in range(i):
                    sacc -= Lx[i, k] * bh[k, t]
                bh[i, t] = sacc / Lx[i, i]
            solve_lower_t(Lx, bh[:, t], p)
        for t in range(r):
            for u in range(r):
                w3[t, u] = Sigma[t, u]
        if not chol_inplace(w3, r):
            return 5
        for u in range(r):
            for k in range(p):
                nz[k] = z[cur + k]
            cur += p
            solve_lower_t(Lx, nz, p)
            for k in range(p):
                w2[k, u] = nz[k]
        for k in range(p if d == 0 else 0):
            for t in range(r):
                acc = bh[k, t]
                for u in range(t + 1):
                    acc += w2[k, u] * w3[t, u]
                beta[k, t] = acc
        # 5. Sigma | beta, u: S = W'W - b'X'W - W'X b + b'X'X b
        for t in range(r):
            for u in range(t + 1):
                acc = WtW[t, u]
                for k in range(p):
                    acc -= beta[k, t] * XtW[k, u] + beta[k, u] * XtW[k, t]
                    sk = 0.0
                    for ll in range(p):
                        sk += XtX[k, ll] * beta[ll, u]
                    acc += beta[k, t] * sk
                S[t, u] = acc
                S[u, t] = acc
        if mh:  # jomo1ran with categorical targets: flat prior, latent blocks fixed
            acc_mh, ld = _restricted_update(rng, Sigma, S, float(N), float(N), exact1, i1a, i1b, Cb1, Cbi1, ld1, free,
                                            z[cur_sig:cur_sig + nsig], uu[n_lat * n_inc:], ws, iw, w1, w2, r)
            if exact1 and ld != ld:
                return 6
            accepted[0] += acc_mh
        else:
            for t in range(r):
                for u in range(r):
                    scale_s[t, u] = Binv[t, u] + S[t, u]
            if not draw_inv_wishart(chi[0, du:du + r], z[cur_sig:cur_sig + nsig], scale_s, Sigma,
                                    w1, w2, r):
                return 6
        # 6. missing level-2 values
        if r2 > 0:
            _draw_missing_l2(Y2, U2, v, X2, beta2, Psi, perm2, pat2_start, pat2_obs, pat2_nobs, pat2_mis,
                             pat2_nmis, Kp2, Cp2, w1, w2, z[cur_l2 + p2 * r2:])
        # record
        if rec0 >= 0:
            o = rec0 + s
            for k in range(p):
                for t in range(r):
                    ch_beta[k, t, o] = beta[k, t]
            for k in range(p2):
                for t in range(r2):
                    ch_beta2[k, t, o] = beta2[k, t]
            for vv in range(gam.shape[0]):  # level-1 then level-2 ordinal targets
                for j in range(gam.shape[1]):
                    ch_gam[vv, j, o] = gam[vv, j]
            record_covariances(Psi, Sigma, ch_psi, ch_sigma, o, diag_only)
    return 0


# ----------------------------------------------------------------------------- random_L1
@njit
def _lmgamma(x, p):
    """log of the multivariate gamma function Gamma_p(x)."""
    s = 0.25 * p * (p - 1) * math.log(math.pi)
    for i in range(p):
        s += math.lgamma(x - 0.5 * i)
    return s


@njit
def _logdet_chol(a, w, n):
    """log|a| through a Cholesky factor in w (False-like -inf if not PD)."""
    for i in range(n):
        for j in range(n):
            w[i, j] = a[i, j]
    if not chol_inplace(w, n):
        return -math.inf
    s = 0.0
    for i in range(n):
        s += 2.0 * math.log(w[i, i])
    return s


@njit
def _log_post_df(a, eta, J, r, sum_logdet, Ginv, SumInv, w):
    """log p(a | Sigma_1..J) with the scale matrix integrated out (jomo2hr's model):
    Sigma_j ~ IW(a, Lambda), Lambda ~ W(r + 1, Binv), a ~ chi2(eta) (density at a)."""
    g = r + 1.0
    M = np.empty((r, r))
    for i in range(r):
        for j in range(r):
            M[i, j] = Ginv[i, j] + SumInv[i, j]
    ld = _logdet_chol(M, w, r)
    return ((0.5 * eta - 1.0) * math.log(a) - 0.5 * a - J * _lmgamma(0.5 * a, r)
            - 0.5 * (a + r + 1.0) * sum_logdet + _lmgamma(0.5 * (J * a + g), r)
            - 0.5 * (J * a + g) * ld)


@njit
def _draw_iw_given_block(rng, M, nu, idx1, idx2, Cb, Cbi, ld_cb, Sig, Sinv, w, r):
    """Sigma ~ IW(nu, M) given its principal block Sigma_22 = Cb (rows/columns ``idx2``; the others
    ``idx1``), drawn exactly: (Sigma_11.2, B = Sigma_22^-1 Sigma_21) is independent of Sigma_22, with
    Sigma_11.2 ~ IW(nu, M_11.2) and B | Sigma_11.2 ~ MatrixNormal(M_22^-1 M_21, M_22^-1, Sigma_11.2);
    then Sigma_21 = Cb B and Sigma_11 = Sigma_11.2 + B' Cb B. ``Cbi`` = Cb^-1 and ``ld_cb`` = log|Cb|
    are given. Writes ``Sig`` and ``Sinv`` (block inverse) and returns log|Sigma| (NaN if a factor
    fails). ``w``: (20, r, r) work."""
    p1 = idx1.shape[0]
    k = idx2.shape[0]
    M11, M12, L22, K, S11, Sr, Bm, S11i, Ch = w[0], w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[10]
    chi = w[16, 0]  # vectors of length r (w[11:16] is _draw_iw_pair's work)
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
    _schur_update(M11, M12, K, p1, k)  # M_11.2 = M_11 - M_12 K
    for i in range(p1):
        chi[i] = rng.chisquare(nu - i)
    nn = p1 * (p1 - 1) // 2
    for i in range(nn):
        nb[i] = rng.standard_normal()
    ld1 = draw_inv_wishart_pair(M11, chi, nb, S11, S11i, w[11:16], p1)
    if ld1 != ld1:
        return math.nan
    for i in range(p1):
        for j in range(p1):
            Sr[i, j] = S11[i, j]
    if not chol_inplace(Sr, p1):
        return math.nan
    # B = K + L22^-T Z Sr' (k x p1)
    for j in range(k):
        for i in range(p1):
            Bm[j, i] = rng.standard_normal()
    for i in range(p1):  # rows of Z Sr': (Z Sr')[j, i] = sum_m Z[j, m] Sr[i, m]
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
    # Sigma blocks
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
    # Sigma^-1 blocks: S11^-1, -S11^-1 B', Cb^-1 + B S11^-1 B'
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
    return ld1 + ld_cb


@njit
def _fixed_block(Mat, start, k, n):
    """Index sets of a fixed principal block Mat[start:start+k, start:start+k] of an n x n matrix and
    the others, the block, its inverse and its log-determinant (for :func:`_draw_iw_given_block`)."""
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
    return idx1, idx2, Cb, Cbi, _logdet_chol(Cb, w, k)


@njit
def _restricted_update(rng, Mat, S, N, n_prop, exact, idx1, idx2, Cb, Cbi, ld_cb, free, nrm, unif, Minv, iw, w1, w2,
                       n):
    """The free elements of a covariance matrix ``Mat`` (n x n) with fixed latent block(s), under
    the target |Mat|^(-N/2) exp(-tr(Mat^-1 S)/2), i.e. IW(N - n - 1, S) restricted to the fixed
    blocks: drawn exactly when they form one principal block (``exact``; ``idx1`` ... ``ld_cb`` from
    :func:`_fixed_block`; ``Minv`` receives Mat^-1), else by jomo's element-wise
    Metropolis-Hastings steps (:func:`_mh_sigma`, proposal scale ``n_prop``; noise ``nrm``,
    ``unif``). Returns (accepted moves, log|Mat|): the log-determinant only from the exact draw
    (NaN there if a factor failed), NaN after the MH steps."""
    if exact:
        return 0, _draw_iw_given_block(rng, S, N - n - 1.0, idx1, idx2, Cb, Cbi, ld_cb, Mat, Minv, iw, n)
    return _mh_sigma(Mat, S, N, free, nrm, unif, w1, w2, n, n_prop), math.nan


@njit
def cluster_rows_crossproducts(Xt, Zt, Yt, C, XtY, ZtY, YtY):
    """Per-cluster X_j'Y_j (J, p, r), Z_j'Y_j (J, q, r) and the lower triangle of Y_j'Y_j (J, r, r)
    of rows stored transposed (cluster codes ``C``); rows grouped by cluster keep the updates
    within a few cache lines."""
    p = Xt.shape[0]
    q = Zt.shape[0]
    r = Yt.shape[0]
    n = Yt.shape[1]
    XtY[:, :, :] = 0.0
    ZtY[:, :, :] = 0.0
    YtY[:, :, :] = 0.0
    for i in range(n):
        c = C[i]
        for t in range(r):
            y = Yt[t, i]
            for k in range(p):
                XtY[c, k, t] += Xt[k, i] * y
            for a in range(q):
                ZtY[c, a, t] += Zt[a, i] * y
            for u in range(t + 1):
                YtY[c, t, u] += Yt[u, i] * y


@njit
def jomo_hr_iterate(n_steps, rec0, mode,
                    Xi, Zi, Ci, Yi, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis, nj,
                    XtXj, ZtZ, ZtX, XtYc, ZtYc, YtYc, Ginv, Dinv, eta,
                    beta, SigJ, Psi, Lam, a_state, a_sd, a_acc, B,
                    ch_beta, ch_psi, ch_sigma, ch_a,
                    rng, cat_start, cat_k1, cat_obs, cat_K, cat_ord, gam, thr_sd, thr_acc, box_lo, box_hi,
                    free, mh_acc, ch_gam,
                    X2, Lx2, Y2, perm2, pat2_start, pat2_obs, pat2_nobs, pat2_mis, pat2_nmis, beta2, ch_beta2,
                    cat2_start, cat2_k1, cat2_obs, free2):
    """``random_L1``: cluster-specific level-1 covariance matrices (jomo's ``jomo1ranconhr``).

    Sigma_j | . ~ IW(n_j + a, Lambda + S_j) (S_j: the cluster's residual cross-products),
    Lambda | . ~ W(J a + r + 1, (Binv^-1 + sum_j Sigma_j^-1)^-1), and the degrees of freedom a
    by random-walk Metropolis-Hastings on log(a - r) with Lambda integrated out (prior: the
    chi-square density with ``eta`` degrees of freedom; a > r as in jomo). beta is drawn from its
    GLS conditional, u_j with the cluster's own Sigma_j, missing cells from the conditional
    normal of their row under the cluster's Sigma_j. Rows that never change enter through their
    per-cluster cross-products (XtYc, ZtYc, YtYc: (J, p|q|r, r)); the others are stored transposed
    (Xi, Zi, Yi, cluster codes Ci), grouped by missingness pattern and cluster, and
    every step after the latents and missing cells works on per-cluster sufficient statistics.

    Categorical targets (jomo's ``jomo1rancathr``): the latent blocks of every Sigma_j are fixed
    like Sigma's in :func:`jomo_iterate`; latents are drawn as there with the cluster's precision.
    The free elements of each Sigma_j follow the full conditional IW(n_j + a, Lambda + S_j)
    restricted to the fixed blocks: with one categorical target (one fixed principal block) they
    are drawn exactly (:func:`_draw_iw_given_block`), with several by jomo's element-wise
    Metropolis-Hastings steps (accepted moves counted in ``mh_acc``).

    Level-2 targets (jomo's ``jomo2hr``): beta2, the level-2 latents, the conditional prior of u_j
    given u2_j, Psi of (u_j, u2_j) and the missing level-2 values as in :func:`jomo_iterate`
    (their noise from ``rng``).

    ``mode`` 0 records the mean of the Sigma_j ("mean"), 1 every Sigma_j stacked cluster-major
    ("full"). Per-cluster arrays (SigJ, XtXj, ZtZ, ZtX, the cross-products) are cluster-major,
    (J, ., .). Chi-square draws (their degrees of freedom change with a), the Bartlett normals of
    the J Wishart draws and all level-2, latent and Metropolis-Hastings noise come from the chain's
    Generator ``rng``; each iteration first draws its other normals into one buffer laid out as
    (u: d J, Psi, Lambda, beta: r p, missing cells, a proposal).
    Returns 0, or a step code if a matrix lost positive definiteness.
    """
    p, n = Xi.shape
    q = Zi.shape[0]
    r = Yi.shape[0]
    J = nj.shape[0]
    d = q * r
    pr = p * r
    n_pat = pat_nobs.shape[0]
    r2 = Y2.shape[0]
    p2 = X2.shape[0]
    du = d + r2
    mx = max(du, r, p, pr, p2, 1)
    w1 = np.empty((mx, mx))
    w2 = np.empty((mx, mx))
    w3 = np.empty((mx, mx))
    SinvJ = np.empty((J, r, r))
    Pinv = np.empty((max(d, 1), max(d, 1)))
    mu = np.empty((r, max(n, 1)))
    ZtY = np.zeros((J, q, r))  # per-cluster arrays are cluster-major here
    XtY = np.zeros((J, p, r))
    YtY = np.zeros((J, r, r))
    G = np.zeros((J, p, r))  # X_j'W_j with W_j = Y_j - Z_j u_j
    WtW = np.zeros((J, r, r))
    V = np.empty((d, J))
    H = np.empty((pr, pr))
    rhs = np.empty(pr)
    SumInv = np.empty((r, r))
    scale = np.empty((r, r))
    e = np.empty(r)
    chi = np.empty(max(du, r, 1))
    nb = np.empty(max(r * (r - 1) // 2, 1))
    Pj = np.empty((d, d))
    vj = np.empty(d)
    nps = du * (du - 1) // 2
    nls = r * (r - 1) // 2
    ncat = cat_start.shape[0]
    ncat2 = cat2_start.shape[0]
    n_cells, n_lat, n_thr, n_free = _level_counts(pat_start, pat_nmis, cat_k1, cat_K[:ncat], cat_ord[:ncat], free)
    n_cells2, n_lat2, n_thr2, n_free2 = _level_counts(pat2_start, pat2_nmis, cat2_k1, cat_K[ncat:], cat_ord[ncat:],
                                                      free2)
    lcm = np.empty(max(n, J, 1))  # conditional moments of the latents
    lcsd = np.empty(max(n, J, 1))
    lw = np.empty((7, max(n, 1)))
    li = np.empty((1, max(n, 1)), np.int64)
    obs_rows, n_obs = _observed_rows(cat_obs)
    zt = np.empty(max(n_thr, 1))
    ut = np.empty(max(n_thr, 1))
    z_mh = np.empty(max(n_free, 1))
    u_mh = np.empty(max(n_free, 1))
    # level 2
    U2 = np.empty((r2, J))
    M = np.zeros((d, J))
    l2w = _level2_work(du, J, p2, r2)
    Q2 = np.empty((du, du))
    n_pat2 = pat2_nobs.shape[0]
    Kp2 = np.zeros((max(n_pat2, 1), du, du))
    Cp2 = np.zeros((max(n_pat2, 1), du, du))
    z2 = np.empty(max(p2 * r2 + n_cells2 + n_thr2 + n_free2, 1))  # level-2 noise of one iteration
    u2 = np.empty(max(n_lat2 * J + n_thr2 + n_free2, 1))
    for j in range(J):
        for t in range(r):
            for u in range(r):
                w2[t, u] = SigJ[j, t, u]
        if not spd_inverse(w2, w1, scale, r):
            return 1
        for t in range(r):
            for u in range(r):
                SinvJ[j, t, u] = w1[t, u]
    sum_logdet = 0.0  # log|Sigma_j| and Sigma_j^-1 summed over the clusters (kept up to date)
    for t in range(r):
        for u in range(r):
            SumInv[t, u] = 0.0
    for j in range(J):
        sum_logdet += _logdet_chol(SigJ[j], w1, r)
        for t in range(r):
            for u in range(r):
                SumInv[t, u] += SinvJ[j, t, u]
    iw = np.empty((20, r, r))
    # one fixed principal block (one categorical target at the level): exact conditional draws
    exact = ncat == 1
    i1a, i1b, Cb1, Cbi1, ld1 = _fixed_block(SigJ[0], cat_start[0] if exact else 0, cat_k1[0] if exact else 0, r)
    z = np.empty(J * d + nps + nls + pr + n_cells + 1)
    for s in range(n_steps):
        for x in range(z.shape[0]):
            z[x] = rng.standard_normal()
        cur = 0
        # 1. latents of observed categories (thresholds first), then missing cells, row by row
        # under the cluster's Sigma_j
        row_means(Xi, Zi, Ci, beta, B, mu)
        if ncat > 0:
            if n_thr > 0:
                for x in range(n_thr):
                    zt[x] = rng.standard_normal()
                    ut[x] = max(rng.random(), 1e-300)
                _update_thresholds(Yi, mu, SinvJ, Ci, cat_start, cat_obs, cat_K, cat_ord, gam, thr_sd, thr_acc,
                                   zt, ut, lcm, lcsd)
            _draw_latents(rng, Yi, mu, SinvJ, Ci, cat_start, cat_k1, cat_obs, cat_ord, gam, box_lo, box_hi,
                          lcm, lcsd, lw, li, obs_rows, n_obs)
        cm = J * d + nps + nls + pr
        for g in range(n_pat):
            no = pat_nobs[g]
            nm = pat_nmis[g]
            if nm == 0:
                continue
            c_prev = -1
            for i in range(pat_start[g], pat_start[g + 1]):
                c = Ci[i]
                if c != c_prev:  # rows are grouped by cluster within a pattern: one factor per run
                    c_prev = c
                    for x in range(no + nm):
                        ix = pat_obs[g, x] if x < no else pat_mis[g, x - no]
                        for y in range(no + nm):
                            iy = pat_obs[g, y] if y < no else pat_mis[g, y - no]
                            w1[x, y] = SigJ[c, ix, iy]
                    if not chol_inplace(w1, r):
                        return 2
                for x in range(no):  # xi_o = L_oo^-1 (y_o - mu_o)
                    o = pat_obs[g, x]
                    acc = Yi[o, i] - mu[o, i]
                    for k in range(x):
                        acc -= w1[x, k] * e[k]
                    e[x] = acc / w1[x, x]
                for x in range(nm):
                    e[no + x] = z[cm + x]
                cm += nm
                for x in range(nm):
                    acc = mu[pat_mis[g, x], i]
                    for k in range(no + x + 1):
                        acc += w1[no + x, k] * e[k]
                    Yi[pat_mis[g, x], i] = acc
        # 2. random effects u_j | beta, Sigma_j, Psi (cluster by cluster), from the per-cluster
        # cross-products (constant rows + stored rows)
        cluster_rows_crossproducts(Xi, Zi, Yi, Ci, XtY, ZtY, YtY)
        if r2 > 0:  # level 2: latents, beta2, residuals u2 and the conditional prior u_j | u2_j
            for x in range(z2.shape[0]):
                z2[x] = rng.standard_normal()
            for x in range(u2.shape[0]):
                u2[x] = max(rng.random(), 1e-300)
            o2 = p2 * r2 + n_cells2
            code = _level2_step(Psi, d, B, X2, Lx2, Y2, beta2, U2, Pinv, M, cat2_start, cat2_k1, cat2_obs,
                                cat_K[ncat:], cat_ord[ncat:], gam[ncat:], thr_sd[ncat:], thr_acc[ncat:], box_lo,
                                box_hi, z2[:p2 * r2], z2[o2:o2 + n_thr2], u2[n_lat2 * J:n_lat2 * J + n_thr2],
                                u2[:n_lat2 * J], lcm, lcsd, l2w, w1, w2)
            if code:
                return code
        elif d > 0 and not spd_inverse(Psi, Pinv, w1, d):
            return 3
        # one pass over the clusters: totals, u_j, then X_j'W_j and W_j'W_j (W_j = Y_j - Z_j u_j) and
        # their share of beta's precision sum_j Sinv_j (x) X_j'X_j and right side sum_j vec(X_j'W_j Sinv_j)
        for x in range(pr):
            rhs[x] = 0.0
            for y in range(pr):
                H[x, y] = 0.0
        if d > 0:
            for j in range(J):
                for t in range(r):
                    for k in range(p):
                        XtY[j, k, t] += XtYc[j, k, t]
                    for a_ in range(q):
                        ZtY[j, a_, t] += ZtYc[j, a_, t]
                    for u in range(r):
                        YtY[j, u, t] += YtYc[j, u, t]
                for a_ in range(q):  # R = Z'Y - Z'X beta (- Z'Z M_j) -> v = vec(R Sinv_j)
                    for t in range(r):
                        acc = ZtY[j, a_, t]
                        for k in range(p):
                            acc -= ZtX[j, a_, k] * beta[k, t]
                        for b in range(q):
                            acc -= ZtZ[j, a_, b] * M[t * q + b, j]
                        w2[a_, t] = acc
                for t in range(r):
                    for a_ in range(q):
                        acc = 0.0
                        for u in range(r):
                            acc += w2[a_, u] * SinvJ[j, u, t]
                        vj[t * q + a_] = acc
                for t in range(r):
                    for a_ in range(q):
                        for u in range(r):
                            for b in range(q):
                                Pj[t * q + a_, u * q + b] = Pinv[t * q + a_, u * q + b] + SinvJ[j, t, u] * ZtZ[j, a_, b]
                if not chol_inplace(Pj, d):
                    return 4
                solve_lower(Pj, vj, d)
                for x in range(d):
                    vj[x] += z[cur + x * J + j]
                solve_lower_t(Pj, vj, d)
                for t in range(r):
                    for a_ in range(q):
                        x = t * q + a_
                        B[a_, t, j] = vj[x] + M[x, j]
                        V[x, j] = vj[x] + M[x, j]
                for t in range(r):
                    for k in range(p):
                        acc = XtY[j, k, t]
                        for a_ in range(q):
                            acc -= ZtX[j, a_, k] * B[a_, t, j]
                        G[j, k, t] = acc
                    for u in range(t + 1):
                        acc = YtY[j, t, u]
                        for a_ in range(q):
                            acc -= B[a_, t, j] * ZtY[j, a_, u] + B[a_, u, j] * ZtY[j, a_, t]
                            for b in range(q):
                                acc += B[a_, t, j] * ZtZ[j, a_, b] * B[b, u, j]
                        WtW[j, t, u] = acc
                for t in range(r):
                    for k in range(p):
                        acc = 0.0
                        for u in range(r):
                            acc += G[j, k, u] * SinvJ[j, u, t]
                        rhs[t * p + k] += acc
                        for u in range(r):
                            st = SinvJ[j, t, u]
                            for ll in range(p):
                                H[t * p + k, u * p + ll] += st * XtXj[j, k, ll]
        cur += d * J
        # 3. Psi of (u_j, u2_j): inverse Wishart, or Metropolis-Hastings with categorical level-2 targets
        if du > 0:
            for x in range(du):
                for y in range(x + 1):
                    if x < d:
                        val = _dot(V[x], V[y])
                    elif y < d:
                        val = _dot(U2[x - d], V[y])
                    else:
                        val = _dot(U2[x - d], U2[y - d])
                    w2[x, y] = Dinv[x, y] + val
                    w2[y, x] = Dinv[y, x] + val
            if ncat2 > 0:  # flat prior as in jomo2com: the cross-products alone
                for x in range(du):
                    for y in range(du):
                        Q2[x, y] = w2[x, y] - Dinv[x, y]
                o2 = p2 * r2 + n_cells2 + n_thr2
                o3 = n_lat2 * J + n_thr2
                mh_acc[0] += _mh_sigma(Psi, Q2, float(J), free2, z2[o2:o2 + n_free2], u2[o3:o3 + n_free2],
                                       w1, w3, du, float(J))
            else:
                for x in range(du):
                    chi[x] = rng.chisquare(J + du - x)
                if not draw_inv_wishart(chi, z[cur:cur + nps], w2, Psi, w1, w3, du):
                    return 5
        cur += nps
        lam_off = cur
        cur += nls
        # 4. beta | u, Sigma_j (precision and right side from the pass above)
        if not chol_inplace(H, pr):
            return 6
        solve_lower(H, rhs, pr)
        for x in range(pr):
            rhs[x] += z[cur + x]
        cur += pr
        solve_lower_t(H, rhs, pr)
        for t in range(r):
            for k in range(p):
                beta[k, t] = rhs[t * p + k]
        # 5-6. degrees of freedom a (Lambda integrated out; SumInv and sum_logdet belong to the
        # current Sigma_j), then Lambda, then per cluster the residual cross-products
        # S_j = W'W - b'X'W - W'X b + b'X'X b and Sigma_j
        a = a_state[0]
        phi = math.log(a - r)
        phi_new = phi + a_sd[0] * z[cm]  # the normal after the missing cells
        a_new = r + math.exp(phi_new)
        lp_old = _log_post_df(a, eta, J, r, sum_logdet, Ginv, SumInv, w1) + phi
        lp_new = _log_post_df(a_new, eta, J, r, sum_logdet, Ginv, SumInv, w1) + phi_new
        if math.log(max(rng.random(), 1e-300)) < lp_new - lp_old:
            a = a_new
            a_state[0] = a
            a_acc[0] += 1
        for t in range(r):
            for u in range(r):
                w2[t, u] = Ginv[t, u] + SumInv[t, u]
        for x in range(r):
            chi[x] = rng.chisquare(J * a + r + 1.0 - x)
        if not draw_inv_wishart(chi, z[lam_off:lam_off + nls], w2, scale, w1, w3, r):
            return 12
        if not spd_inverse(scale, Lam, w1, r):  # Lambda ~ W(J a + r + 1, (Ginv + sum Sinv)^-1)
            return 12
        sum_logdet = 0.0
        for t in range(r):
            for u in range(r):
                SumInv[t, u] = 0.0
        for j in range(J):
            for t in range(r):
                for u in range(t + 1):
                    acc = WtW[j, t, u]
                    for k in range(p):
                        acc -= beta[k, t] * G[j, k, u] + beta[k, u] * G[j, k, t]
                        sk = 0.0
                        for ll in range(p):
                            sk += XtXj[j, k, ll] * beta[ll, u]
                        acc += beta[k, t] * sk
                    w2[t, u] = Lam[t, u] + acc
                    w2[u, t] = w2[t, u]
            if ncat > 0:  # the IW(n_j + a, Lambda + S_j) density restricted to the latent blocks
                for x in range(n_free if not exact else 0):
                    z_mh[x] = rng.standard_normal()
                    u_mh[x] = max(rng.random(), 1e-300)
                # (the exact draw is called directly in this per-cluster loop: going through
                # _restricted_update here costs about 15% of the iteration at 20,000 clusters)
                if exact:
                    ld = _draw_iw_given_block(rng, w2, nj[j] + a, i1a, i1b, Cb1, Cbi1, ld1, SigJ[j], SinvJ[j], iw, r)
                else:
                    mh_acc[0] += _restricted_update(rng, SigJ[j], w2, nj[j] + a + r + 1.0, nj[j], False, i1a, i1b,
                                                    Cb1, Cbi1, ld1, free, z_mh, u_mh, SinvJ[j], iw, w1, w3, r)[0]
                if not exact:  # the MH steps leave the inverse and log-determinant to compute
                    if not spd_inverse(SigJ[j], w1, w3, r):
                        return 13
                    for t in range(r):
                        for u in range(r):
                            SinvJ[j, t, u] = w1[t, u]
                    ld = _logdet_chol(SigJ[j], w1, r)
                if ld != ld:
                    return 13
            else:
                for x in range(r):
                    chi[x] = rng.chisquare(nj[j] + a - x)
                for x in range(nls):
                    nb[x] = rng.standard_normal()
                ld = draw_inv_wishart_pair(w2, chi, nb, SigJ[j], SinvJ[j], iw[:5], r)
                if ld != ld:
                    return 13
            sum_logdet += ld
            for t in range(r):
                for u in range(r):
                    SumInv[t, u] += SinvJ[j, t, u]
        # 7. missing level-2 values
        if r2 > 0:
            _draw_missing_l2(Y2, U2, V, X2, beta2, Psi, perm2, pat2_start, pat2_obs, pat2_nobs, pat2_mis,
                             pat2_nmis, Kp2, Cp2, w1, w2, z2[p2 * r2:p2 * r2 + n_cells2])
        # record
        if rec0 >= 0:
            o = rec0 + s
            ch_a[o] = a
            for k in range(p2):
                for t in range(r2):
                    ch_beta2[k, t, o] = beta2[k, t]
            for vv in range(gam.shape[0]):
                for x in range(gam.shape[1]):
                    ch_gam[vv, x, o] = gam[vv, x]
            for k in range(p):
                for t in range(r):
                    ch_beta[k, t, o] = beta[k, t]
            for x in range(ch_psi.shape[0]):
                for y in range(ch_psi.shape[1]):
                    ch_psi[x, y, o] = Psi[x, x] if ch_psi.shape[1] == 1 else Psi[x, y]
            if mode == 0:
                for t in range(r):
                    for u in range(r):
                        acc = 0.0
                        for j in range(J):
                            acc += SigJ[j, t, u]
                        if ch_sigma.shape[1] == 1:
                            if t == u:
                                ch_sigma[t, 0, o] = acc / J
                        else:
                            ch_sigma[t, u, o] = acc / J
            else:
                for j in range(J):
                    for t in range(r):
                        if ch_sigma.shape[1] == 1:
                            ch_sigma[j * r + t, 0, o] = SigJ[j, t, t]
                        else:
                            for u in range(r):
                                ch_sigma[j * r + t, u, o] = SigJ[j, t, u]
    return 0
