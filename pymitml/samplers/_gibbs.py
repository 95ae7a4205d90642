"""Gibbs steps shared by the samplers (pan, jomo and the families built on them), over plain arrays.

Notation of REFERENCE.md section 3: cluster j, targets Y_j = X_j beta + Z_j b_j + E_j with
vec(b_j) ~ N(0, Psi) (order d = q r, target-major) and rows of E_j ~ N(0, Sigma). Cluster-level
arrays are laid out (..., J) and incomplete rows are stored transposed, grouped by missingness
pattern, so that the innermost loops run over clusters or rows and vectorise. Each step writes into
buffers its caller allocates.
"""

from __future__ import annotations

import numpy as np

from .._numba import njit
from ._linalg import chol_inplace, draw_inv_wishart, solve_lower, solve_lower_t


@njit(nrt=False)
def _dot(x, y):
    """sum x*y with four accumulators (deterministic; not latency bound)."""
    n = x.shape[0]
    s0 = s1 = s2 = s3 = 0.0
    n4 = n - n % 4
    for i in range(0, n4, 4):
        s0 += x[i] * y[i]
        s1 += x[i + 1] * y[i + 1]
        s2 += x[i + 2] * y[i + 2]
        s3 += x[i + 3] * y[i + 3]
    for i in range(n4, n):
        s0 += x[i] * y[i]
    return (s0 + s1) + (s2 + s3)


@njit
def cluster_crossproducts(X, Z, clus, J):
    """Fixed per-cluster cross-products Z_j'Z_j (q, q, J) and Z_j'X_j (q, p, J)."""
    N, p = X.shape
    q = Z.shape[1]
    ZtZ = np.zeros((q, q, J))
    ZtX = np.zeros((q, p, J))
    for i in range(N):
        j = clus[i]
        for a in range(q):
            za = Z[i, a]
            for b in range(q):
                ZtZ[a, b, j] += za * Z[i, b]
            for k in range(p):
                ZtX[a, k, j] += za * X[i, k]
    return ZtZ, ZtX


@njit(nrt=False)
def rows_crossproducts(Xt, Zt, Yt, C, seg, XtY, ZtY, YtY):
    """X'Y (p, r), Z_j'Y_j (q, r, J), Y'Y (r, r) of rows stored transposed (Xt: p x n, ...).

    ``seg`` holds the starts of the runs of equal cluster codes in ``C`` (and n at the end, see
    :func:`cluster_runs`): when runs are long enough (4 rows on average) each is summed in
    registers and added to its cluster once, instead of one read-modify-write of ZtY per row.
    """
    p = Xt.shape[0]
    q = Zt.shape[0]
    r = Yt.shape[0]
    for t in range(r):
        for k in range(p):
            XtY[k, t] = _dot(Xt[k], Yt[t])
        for u in range(t + 1):
            v = _dot(Yt[t], Yt[u])
            YtY[t, u] = v
            YtY[u, t] = v
    ZtY[:, :, :] = 0.0
    n_seg = seg.shape[0] - 1
    n = Yt.shape[1]
    if n < 4 * n_seg:  # short runs: a read-modify-write per row is cheaper than a loop per run
        for a in range(q):
            za = Zt[a]
            for t in range(r):
                yt = Yt[t]
                acc = ZtY[a, t]
                for i in range(n):
                    acc[C[i]] += za[i] * yt[i]
        return
    for a in range(q):
        za = Zt[a]
        for t in range(r):
            yt = Yt[t]
            acc = ZtY[a, t]
            for s in range(n_seg):
                i = seg[s]
                s1 = seg[s + 1]
                v0 = 0.0
                v1 = 0.0
                while i + 1 < s1:
                    v0 += za[i] * yt[i]
                    v1 += za[i + 1] * yt[i + 1]
                    i += 2
                if i < s1:
                    v0 += za[i] * yt[i]
                acc[C[seg[s]]] += v0 + v1


def cluster_runs(C) -> np.ndarray:
    """Starts of the runs of equal values in ``C``, then len(C) (the ``seg`` of rows_crossproducts)."""
    C = np.asarray(C)
    if len(C) == 0:
        return np.zeros(1, np.int64)
    return np.concatenate([[0], np.flatnonzero(C[1:] != C[:-1]) + 1, [len(C)]]).astype(np.int64)


@njit(nrt=False)
def pattern_factors(Sigma, pat_obs, pat_nobs, pat_mis, pat_nmis, K, Cf, w1, w2):
    """Per missingness pattern: K = Sigma_MO Sigma_OO^-1 and Cf = chol(Sigma_MM - K Sigma_OM)."""
    n_pat = pat_nobs.shape[0]
    for g in range(n_pat):
        no = pat_nobs[g]
        nm = pat_nmis[g]
        for u in range(no):
            for v in range(no):
                w1[u, v] = Sigma[pat_obs[g, u], pat_obs[g, v]]
        chol_inplace(w1, no)
        for v in range(nm):
            col = w2[0]  # a contiguous row of the work space: one compiled layout of the solves
            for u in range(no):
                col[u] = Sigma[pat_obs[g, u], pat_mis[g, v]]
            solve_lower(w1, col, no)
            solve_lower_t(w1, col, no)
            for u in range(no):
                K[g, v, u] = col[u]
        for v in range(nm):
            for w in range(nm):
                s = Sigma[pat_mis[g, v], pat_mis[g, w]]
                for u in range(no):
                    s -= K[g, v, u] * Sigma[pat_obs[g, u], pat_mis[g, w]]
                Cf[g, v, w] = s
        for v in range(nm):
            for w in range(v):
                s = 0.5 * (Cf[g, v, w] + Cf[g, w, v])
                Cf[g, v, w] = s
                Cf[g, w, v] = s
        chol_inplace(Cf[g], nm)


@njit(nrt=False)
def _precision_cholesky(ZtZ, Sinv, Pinv, P):
    """P[:, :, j] <- lower Cholesky factor of Psi^-1 + Sigma^-1 (x) Z_j'Z_j for all clusters
    (batched, innermost loops over clusters); False if one is not positive definite."""
    q, _, J = ZtZ.shape
    r = Sinv.shape[0]
    for t in range(r):
        for a in range(q):
            x = t * q + a
            for u in range(r):
                for b in range(q):
                    y = u * q + b
                    if y > x:
                        continue
                    s = Sinv[t, u]
                    pxy = Pinv[x, y]
                    Pxy = P[x, y]
                    Zab = ZtZ[a, b]
                    for j in range(J):
                        Pxy[j] = pxy + s * Zab[j]
    return batched_cholesky(P)


@njit(nrt=False)
def _batched_forward(P, v):
    """v[:, j] <- L_j^-1 v[:, j] for the batched lower factors P (d, d, J)."""
    d = v.shape[0]
    J = v.shape[1]
    for x in range(d):
        vx = v[x]
        for k in range(x):
            Pxk = P[x, k]
            vk = v[k]
            for j in range(J):
                vx[j] -= Pxk[j] * vk[j]
        Pxx = P[x, x]
        for j in range(J):
            vx[j] /= Pxx[j]


@njit(nrt=False)
def _batched_backward(P, v):
    """v[:, j] <- L_j^-T v[:, j] for the batched lower factors P (d, d, J)."""
    d = v.shape[0]
    J = v.shape[1]
    for x in range(d - 1, -1, -1):
        vx = v[x]
        for k in range(x + 1, d):
            Pkx = P[k, x]
            vk = v[k]
            for j in range(J):
                vx[j] -= Pkx[j] * vk[j]
        Pxx = P[x, x]
        for j in range(J):
            vx[j] /= Pxx[j]


@njit(nrt=False)
def _draw_given_cholesky(z0, ZtX, ZtY, beta, Sinv, B, R, P, v):
    """b_j | beta, Sigma, Psi, Y for all clusters, given the factors P of their precisions."""
    cluster_residual_crossproducts(ZtY, ZtX, beta, R)  # R = Z'Y - Z'X beta
    vec_times_sinv(R, Sinv, v)
    draw_given_factors(z0, P, v, B)


@njit(nrt=False)
def vec_times_sinv(ZtR, Sinv, v):
    """v = vec(Z_j'R_j Sigma^-1) per cluster (ZtR: q x r x J; v: q r x J, row t q + a)."""
    q, r, J = ZtR.shape
    for t in range(r):
        for a in range(q):
            vx = v[t * q + a]
            vx[:] = 0.0
            for u in range(r):
                s = Sinv[u, t]
                Rau = ZtR[a, u]
                for j in range(J):
                    vx[j] += Rau[j] * s


@njit(nrt=False)
def woodbury_factors(ZtR, ZtW, Sinv, P, F, f):
    """F = L_j^-1 G_j and f = L_j^-1 h_j for every cluster j (batched over the last axis), with
    G_j = Sigma^-1 (x) Z_j'W_j (ZtW: q x k x J; F: d x k r x J, column u k + b) and
    h_j = vec(Z_j'R_j Sigma^-1) (ZtR: q x r x J; f: d x J); P holds the lower factors L_j of
    the clusters' precisions. The terms of integrating the cluster effects out (Woodbury)."""
    q, r, J = ZtR.shape
    k = ZtW.shape[1]
    vec_times_sinv(ZtR, Sinv, f)
    for t in range(r):
        for a in range(q):
            x = t * q + a
            for u in range(r):
                s = Sinv[t, u]
                for b in range(k):
                    Fxy = F[x, u * k + b]
                    Wab = ZtW[a, b]
                    for j in range(J):
                        Fxy[j] = s * Wab[j]
    _batched_forward(P, f)
    for y in range(k * r):  # column y of every G_j
        _batched_forward(P, F[:, y])


@njit(nrt=False)
def _draw_beta_collapsed(zb, XtX, XtY, ZtX, ZtY, Sinv, P, F, f, A, c, beta):
    """beta | Sigma, Psi, Y with the random effects integrated out (generalised least squares).

    With V_j^-1 by Woodbury and G_j = Sigma^-1 (x) Z_j'X_j, h_j = vec(Z_j'Y_j Sigma^-1):
    A = Sigma^-1 (x) X'X - sum_j G_j' P_j^-1 G_j,  c = vec(X'Y Sigma^-1) - sum_j G_j' P_j^-1 h_j,
    vec(beta) ~ N(A^-1 c, A^-1) (vec column-major: beta[k, u] at u p + k). ``P`` holds the
    Cholesky factors of the P_j; F (d, p r, J) and f (d, J) are work space. ``zb`` are p r
    standard normals. Returns False if A is not positive definite.
    """
    q, r, J = ZtY.shape
    p = XtX.shape[0]
    d = q * r
    pr = p * r
    woodbury_factors(ZtY, ZtX, Sinv, P, F, f)
    for u in range(r):
        for k in range(p):
            y = u * p + k
            acc = 0.0
            for v in range(r):
                acc += XtY[k, v] * Sinv[v, u]
            for x in range(d):
                acc -= _dot(F[x, y], f[x])
            c[y] = acc
            for w in range(u + 1):
                for kk in range(p):
                    y2 = w * p + kk
                    if y2 > y:
                        continue
                    acc = Sinv[u, w] * XtX[k, kk]
                    for x in range(d):
                        acc -= _dot(F[x, y], F[x, y2])
                    A[y, y2] = acc
                    A[y2, y] = acc
    if not chol_inplace(A, pr):
        return False
    solve_lower(A, c, pr)
    for y in range(pr):
        c[y] += zb[y]
    solve_lower_t(A, c, pr)
    for u in range(r):
        for k in range(p):
            beta[k, u] = c[u * p + k]
    return True


@njit(nrt=False)
def record_covariances(Psi, Sigma, ch_psi, ch_sigma, o, diag_only):
    """Store Psi and Sigma as iteration ``o`` of their chains (only the variances, in column 0,
    when ``diag_only``: mitml's keep.chains = "diagonal")."""
    for x in range(Psi.shape[0]):
        if diag_only:
            ch_psi[x, 0, o] = Psi[x, x]
        else:
            for y in range(Psi.shape[1]):
                ch_psi[x, y, o] = Psi[x, y]
    for t in range(Sigma.shape[0]):
        if diag_only:
            ch_sigma[t, 0, o] = Sigma[t, t]
        else:
            for u in range(Sigma.shape[1]):
                ch_sigma[t, u, o] = Sigma[t, u]


@njit(nrt=False)
def row_means(Xi, Zi, Ci, beta, B, mu):
    """mu[t, i] = x_i beta_t + z_i b_{c(i), t} for rows stored transposed (Xi: p x n, Zi: q x n)."""
    p, n = Xi.shape
    r = mu.shape[0]
    for t in range(r):
        mt = mu[t]
        for i in range(n):
            mt[i] = 0.0
        for k in range(p):
            bk = beta[k, t]
            xk = Xi[k]
            for i in range(n):
                mt[i] += xk[i] * bk
    add_row_effects(Zi, Ci, B, mu)


@njit(nrt=False)
def residual_crossproducts(XtY, YtY, ZtX, ZtY, ZtZ, B, tmp, XtW, WtW):
    """X'W and W'W of W = Y - Z b from the sufficient statistics (arrays (..., J) per cluster):
    X'W = X'Y - sum_j Z_j'X_j' b_j,  W'W = Y'Y - b'Z'Y - Y'Z b + b'Z'Z b. ``tmp``: J work values."""
    q, r, J = ZtY.shape
    p = XtY.shape[0]
    for k in range(p):
        for t in range(r):
            acc = XtY[k, t]
            for a in range(q):
                acc -= _dot(ZtX[a, k], B[a, t])
            XtW[k, t] = acc
    for t in range(r):
        for u in range(t + 1):
            acc = YtY[t, u]
            for a in range(q):
                acc -= _dot(B[a, t], ZtY[a, u]) + _dot(ZtY[a, t], B[a, u])
                for j in range(J):
                    tmp[j] = 0.0
                for b in range(q):
                    Zab = ZtZ[a, b]
                    Bbu = B[b, u]
                    for j in range(J):
                        tmp[j] += Zab[j] * Bbu[j]
                acc += _dot(B[a, t], tmp[:J])
            WtW[t, u] = acc
            WtW[u, t] = acc


@njit(nrt=False)
def draw_missing_cells(Yi, mu, z, cur, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis, Kp, Cp):
    """Missing cells of the rows in Yi (targets x rows, grouped by pattern), pattern by pattern:
    y_M = mu_M + K (y_O - mu_O) + C z with the factors of :func:`pattern_factors`. ``mu`` holds
    the means and is overwritten by the observed residuals; normals are read from z[cur:].
    Returns the new position in z."""
    n_pat = pat_nobs.shape[0]
    for g in range(n_pat):
        s0 = pat_start[g]
        s1 = pat_start[g + 1]
        n = s1 - s0
        no = pat_nobs[g]
        nm = pat_nmis[g]
        for u in range(no):
            o = pat_obs[g, u]
            for i in range(s0, s1):
                mu[o, i] = Yi[o, i] - mu[o, i]
        for w in range(nm):
            mw = pat_mis[g, w]
            yw = Yi[mw]
            mwv = mu[mw]
            for i in range(s0, s1):
                yw[i] = mwv[i]
            for u in range(no):
                kwu = Kp[g, w, u]
                eo = mu[pat_obs[g, u]]
                for i in range(s0, s1):
                    yw[i] += kwu * eo[i]
            for u in range(w + 1):
                cwu = Cp[g, w, u]
                zz = z[cur + u * n : cur + (u + 1) * n]
                for i in range(n):
                    yw[s0 + i] += cwu * zz[i]
        cur += nm * n
    return cur


# --- steps composed by the samplers' iterations (issue 12): each reads like one line of the maths


@njit(nrt=False)
def fill_normals(rng, z, chi, dfs):
    """One iteration's randomness, drawn up front: z[k] ~ N(0, 1) for every k, then
    chi[k] ~ chi2(dfs[k]) (the Bartlett diagonals of the inverse-Wishart draws)."""
    for k in range(z.shape[0]):
        z[k] = rng.standard_normal()
    for k in range(chi.shape[0]):
        chi[k] = rng.chisquare(dfs[k])


@njit(nrt=False)
def total_crossproducts(XtYc, ZtYc, YtYc, XtYi, ZtYi, YtYi, XtY, ZtY, YtY):
    """X'Y, Z_j'Y_j, Y'Y of the completed data: the complete rows' constant part (``...c``) plus
    the incomplete rows' current part (``...i``); ZtY is laid out (q, r, J)."""
    q, r, J = ZtYc.shape
    p = XtYc.shape[0]
    for a in range(q):
        for t in range(r):
            for j in range(J):
                ZtY[a, t, j] = ZtYc[a, t, j] + ZtYi[a, t, j]
    for k in range(p):
        for t in range(r):
            XtY[k, t] = XtYc[k, t] + XtYi[k, t]
    for t in range(r):
        for u in range(r):
            YtY[t, u] = YtYc[t, u] + YtYi[t, u]


@njit(nrt=False)
def sum_outer(v, S):
    """S = sum_j v_j v_j' over the columns v_j of ``v`` (d, J) (e.g. sum_j vec(b_j) vec(b_j)')."""
    d = v.shape[0]
    for x in range(d):
        for y in range(x + 1):
            val = _dot(v[x], v[y])
            S[x, y] = val
            S[y, x] = val


@njit(nrt=False)
def fixed_residual_crossproducts(WtW, XtW, XtX, beta, E):
    """E = (W - X beta)'(W - X beta) = W'W - beta'X'W - W'X beta + beta'X'X beta from the
    cross-products (beta: p x r; E symmetric r x r)."""
    p, r = beta.shape
    for t in range(r):
        for u in range(t + 1):
            acc = WtW[t, u]
            for k in range(p):
                acc -= beta[k, t] * XtW[k, u] + XtW[k, t] * beta[k, u]
                bt = beta[k, t]
                for kk in range(p):
                    acc += bt * XtX[k, kk] * beta[kk, u]
            E[t, u] = acc
            E[u, t] = acc


@njit(nrt=False)
def draw_covariance_iw(chi, nrm, prior_scale, cross, scale, out, w1, w2):
    """Conjugate covariance step: out ~ IW(nu, prior_scale + cross), ``cross`` the sum of the
    residual (or random-effect) cross-products, nu fixed by the chi-square draws ``chi`` (see
    :func:`draw_inv_wishart`). ``scale`` receives prior_scale + cross. False if not positive
    definite."""
    n = out.shape[0]
    for x in range(n):
        for y in range(n):
            scale[x, y] = prior_scale[x, y] + cross[x, y]
    return draw_inv_wishart(chi, nrm, scale, out, w1, w2, n)


@njit(nrt=False)
def record_matrix(M, ch, o):
    """ch[:, :, o] = M (a parameter block's draw as iteration ``o`` of its chain)."""
    for x in range(M.shape[0]):
        for y in range(M.shape[1]):
            ch[x, y, o] = M[x, y]


@njit(nrt=False)
def record_covariance(S, ch, o):
    """Store the covariance S as iteration ``o`` of its chain: the whole matrix, or only its
    variances (in column 0) when the chain has a single column and S more than one (mitml's
    keep.chains = "diagonal")."""
    n = S.shape[0]
    if ch.shape[1] == n:
        record_matrix(S, ch, o)
    else:
        for x in range(n):
            ch[x, 0, o] = S[x, x]


# --- steps for two nested levels of random effects (three-level pan, issue 19) ---------------
# Notation: inner groups c (classes) with effects b_c (q x r, vec order t q + a), outer groups s
# (schools) with effects u_s (qo x r); outer_of[c] is the outer group of inner group c.


@njit(nrt=False)
def subtract_outer_effects(ZtY, ZtZo, Bo, outer_of, out):
    """out = Z_c'(Y_c - Zo_c u_{s(c)}) per inner group: ZtY (q, r, C) minus Z_c'Zo_c (q, qo, C)
    times the outer group's effects Bo (qo, r, S)."""
    q, r, C = ZtY.shape
    qo = ZtZo.shape[1]
    for a in range(q):
        for t in range(r):
            o = out[a, t]
            y = ZtY[a, t]
            for c in range(C):
                o[c] = y[c]
            for b in range(qo):
                zz = ZtZo[a, b]
                bb = Bo[b, t]
                for c in range(C):
                    o[c] -= zz[c] * bb[outer_of[c]]


@njit(nrt=False)
def cluster_residual_crossproducts(ZtY, ZtX, beta, R):
    """R = Z_j'(Y_j - X_j beta) per cluster: ZtY (q, r, J) minus ZtX (q, p, J) times beta."""
    q, r, J = ZtY.shape
    p = ZtX.shape[1]
    for a in range(q):
        for t in range(r):
            Rat = R[a, t]
            Yat = ZtY[a, t]
            for j in range(J):
                Rat[j] = Yat[j]
            for k in range(p):
                bk = beta[k, t]
                Xak = ZtX[a, k]
                for j in range(J):
                    Rat[j] -= Xak[j] * bk


@njit(nrt=False)
def outer_collapsed_precision(ZotZo, ZtZo, Ro, Ri, outer_of, Sinv, Pinv_o, P, F, f, A, c):
    """Precision A_s and linear term c_s of the outer effects vec(u_s) | beta, Sigma, Psi's, Y
    with the inner effects integrated out.

    Given the residuals R = Y - X beta, with Ro = Zo_s'R_s (qo, r, S), Ri = Z_c'R_c (q, r, C),
    ZotZo = Zo_s'Zo_s (qo, qo, S), ZtZo = Z_c'Zo_c (q, qo, C), P the Cholesky factors L_c of the
    inner precisions Psi^-1 + Sigma^-1 (x) Z_c'Z_c (d, d, C), G_c = Sigma^-1 (x) Z_c'Zo_c and
    h_c = vec(Z_c'R_c Sigma^-1):

        A_s = Psi_o^-1 + Sigma^-1 (x) Zo_s'Zo_s - sum_{c in s} G_c' P_c^-1 G_c
        c_s = vec(Zo_s'R_s Sigma^-1) - sum_{c in s} G_c' P_c^-1 h_c

    (Woodbury over each inner group), so vec(u_s) ~ N(A_s^-1 c_s, A_s^-1). F (d, do, C) and
    f (d, C) are work space; A (do, do, S) and c (do, S) are written (A in full).
    """
    q, r, C = Ri.shape
    qo, _, S = Ro.shape
    d = q * r
    do = qo * r
    woodbury_factors(Ri, ZtZo, Sinv, P, F, f)
    # outer-group totals
    for t in range(r):
        for b in range(qo):
            y = t * qo + b
            cy = c[y]
            for s_ in range(S):
                acc = 0.0
                for u in range(r):
                    acc += Ro[b, u, s_] * Sinv[u, t]
                cy[s_] = acc
            for u in range(r):
                for b2 in range(qo):
                    y2 = u * qo + b2
                    Ay = A[y, y2]
                    s = Sinv[t, u]
                    pv = Pinv_o[y, y2]
                    Zbb = ZotZo[b, b2]
                    for s_ in range(S):
                        Ay[s_] = pv + s * Zbb[s_]
    for x in range(d):
        fx = f[x]
        for y in range(do):
            Fxy = F[x, y]
            cy = c[y]
            for j in range(C):
                cy[outer_of[j]] -= Fxy[j] * fx[j]
            for y2 in range(y + 1):
                Fxy2 = F[x, y2]
                Ay = A[y, y2]
                for j in range(C):
                    Ay[outer_of[j]] -= Fxy[j] * Fxy2[j]
    for y in range(do):
        for y2 in range(y):
            Ay = A[y, y2]
            At = A[y2, y]
            for s_ in range(S):
                At[s_] = Ay[s_]


@njit(nrt=False)
def batched_cholesky(P):
    """P[:, :, j] <- its lower Cholesky factor for every j (batched over the last axis; only the
    lower triangle is read); False if one is not positive definite."""
    d = P.shape[0]
    J = P.shape[2]
    for c in range(d):
        Pcc = P[c, c]
        for k in range(c):
            Pck = P[c, k]
            for j in range(J):
                Pcc[j] -= Pck[j] * Pck[j]
        for j in range(J):
            if not Pcc[j] > 0.0:
                return False
            Pcc[j] = np.sqrt(Pcc[j])
        for i in range(c + 1, d):
            Pic = P[i, c]
            for k in range(c):
                Pik = P[i, k]
                Pck = P[c, k]
                for j in range(J):
                    Pic[j] -= Pik[j] * Pck[j]
            for j in range(J):
                Pic[j] /= Pcc[j]
    return True


@njit(nrt=False)
def draw_from_precisions(z0, A, c, B):
    """vec(b_j) ~ N(A_j^-1 c_j, A_j^-1) for all j: A (d, d, J) is overwritten by its Cholesky
    factors and c (d, J) by the draws, which are also written to B (q, r, J) (vec order
    t q + a). ``z0`` holds d J standard normals (group-major within each element: z0[x J + j]).
    Returns False if an A_j is not positive definite."""
    if not batched_cholesky(A):
        return False
    draw_given_factors(z0, A, c, B)
    return True


@njit(nrt=False)
def draw_given_factors(z0, P, v, B):
    """v[:, j] <- L_j^-T (L_j^-1 v[:, j] + z_j), copied to B (q, r, J) in vec order t q + a:
    a draw from N(A_j^-1 v_j, A_j^-1) given the lower factors P (d, d, J) of the A_j. ``z0``
    holds d J standard normals (z0[x J + j])."""
    q, r, J = B.shape
    d = q * r
    _batched_forward(P, v)
    for x in range(d):
        vx = v[x]
        zx = z0[x * J : (x + 1) * J]
        for j in range(J):
            vx[j] += zx[j]
    _batched_backward(P, v)
    for t in range(r):
        for a in range(q):
            vx = v[t * q + a]
            Bat = B[a, t]
            for j in range(J):
                Bat[j] = vx[j]


@njit(nrt=False)
def add_row_effects(Zi, Ci, B, mu):
    """mu[t, i] += z_i' b_{Ci[i], t} for rows stored transposed (Zi: q x n; B: q x r x J)."""
    q = Zi.shape[0]
    r = mu.shape[0]
    n = Zi.shape[1]
    for t in range(r):
        mt = mu[t]
        for a in range(q):
            Bat = B[a, t]
            za = Zi[a]
            for i in range(n):
                mt[i] += za[i] * Bat[Ci[i]]
