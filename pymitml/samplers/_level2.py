"""The level-2 step of jomo's two-level model with level-2 targets (jomo2com / jomo2hr), over arrays.

Per cluster j: Y2_j = X2_j beta2 + u2_j, and (u_j, u2_j) ~ N(0, Psi) jointly with the level-1
random effects u_j (vec(u_j) target-major, d = q r elements). Categorical level-2 targets have
latent normals in Y2_j whose block of Psi is fixed like Sigma's. One level-2 step:

1. thresholds of ordinal level-2 targets (latents integrated out) and the latents of observed
   level-2 categories, component by component from the normal of the component given the rest
   of the cluster's vector (u_j, u2_j) (precision Psi^-1), truncated to the observed level;
2. beta2 ~ MatrixNormal(OLS of Y2 on X2, (X2'X2)^-1, Psi_22) and the residuals u2 = Y2 - X2 beta2;
3. the conditional prior u_j | u2_j ~ N(M_j, V), M_j = Psi_12 Psi_22^-1 u2_j,
   V = Psi_11 - Psi_12 Psi_22^-1 Psi_21 (used by the level-1 random-effects draw);

and, after Psi's draw, the missing level-2 values of each cluster from their conditional normal
given u_j and the observed level-2 values (:func:`draw_missing_level2`).
Arrays are stored transposed: X2 (p2, J), Y2 and U2 (r2, J), M (d, J).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..exceptions import Status
from ._covariance import schur_update
from ._gibbs import _dot, pattern_factors
from ._kernel_options import step
from ._latent import latent_bounds, update_thresholds
from ._linalg import chol_inplace, solve_lower, solve_lower_t, spd_inverse
from ._truncnorm import truncnorm_draw

_LATENT = int(Status.LATENT)
_BETA2 = int(Status.BETA2)
_LEVEL2 = int(Status.LEVEL2)


class Level2Work(NamedTuple):
    """Work arrays of the level-2 step (du = d + r2)."""

    Q: np.ndarray  # (1, du, du) Psi^-1
    Ybig: np.ndarray  # (du, J) (u_j, Y2_j) stacked
    mubig: np.ndarray  # (du, J) their means (0, X2 beta2)
    C0: np.ndarray  # (max(J, 1),) zeros: one precision for every cluster
    wu: np.ndarray  # (max(du, 1),) one cluster's (u_j, u2_j)
    bh2: np.ndarray  # (max(p2, 1), max(r2, 1)) OLS estimate of beta2
    nz: np.ndarray  # (max(p2, 1),) normals of beta2's draw
    Kp: np.ndarray  # (max(n_pat2, 1), du, du) pattern factors of the missing level-2 values
    Cp: np.ndarray
    V: np.ndarray  # (max(d, 1), max(d, 1)) the conditional prior's covariance


class Level2(NamedTuple):
    """Level-2 data and state of one chain (``cat``: the categorical level-2 targets, a
    :class:`CatSpec` with zero targets when there are none; ``thr``: their thresholds)."""

    X2: np.ndarray  # (p2, J)
    Lx2: np.ndarray  # (p2, p2) chol(X2'X2)
    Y2: np.ndarray  # (r2, J) targets (continuous, then latents), centred with an intercept
    beta2: np.ndarray  # (p2, r2)
    U2: np.ndarray  # (r2, J) residuals Y2 - X2 beta2
    M: np.ndarray  # (d, J) conditional prior means of u_j
    perm2: np.ndarray  # clusters arranged by missingness pattern of (u_j, Y2_j)
    pat_start: np.ndarray
    pat_obs: np.ndarray
    pat_nobs: np.ndarray
    pat_mis: np.ndarray
    pat_nmis: np.ndarray
    cat: object  # CatSpec of the level-2 categorical targets (with their thresholds)
    work: Level2Work


def level2_work(d: int, J: int, p2: int, r2: int, n_pat2: int) -> Level2Work:
    du = d + r2
    return Level2Work(
        np.empty((1, du, du)),
        np.empty((du, J)),
        np.empty((du, J)),
        np.zeros(max(J, 1), np.int64),
        np.empty(max(du, 1)),
        np.empty((max(p2, 1), max(r2, 1))),
        np.empty(max(p2, 1)),
        np.zeros((max(n_pat2, 1), du, du)),
        np.zeros((max(n_pat2, 1), du, du)),
        np.empty((max(d, 1), max(d, 1))),
    )


@step
def _cluster_vector(Y2, X2, beta2, B, d, j, w):
    """w <- (u_j, Y2_j - X2_j beta2) of cluster j (vec(u_j) target-major)."""
    q, r, J = B.shape
    for t in range(r):
        for a in range(q):
            w[t * q + a] = B[a, t, j]
    for t in range(Y2.shape[0]):
        m = 0.0
        for k in range(X2.shape[0]):
            m += X2[k, j] * beta2[k, t]
        w[d + t] = Y2[t, j] - m


@step
def draw_latents_level2(l2, B, Q, d, unif):
    """Latent normals of observed level-2 categories, cluster by cluster: each component from the
    normal of its level-2 residual given the rest of the cluster's vector (u_j, u2_j) (precision
    ``Q`` = Psi^-1), truncated to the region of the cluster's level; ``unif``: n_lat2 J uniforms."""
    Y2, X2, beta2, cat, gam2, w = l2.Y2, l2.X2, l2.beta2, l2.cat, l2.cat.thr.gam, l2.work.wu
    start, k1s, obs, ordinal, box_lo, box_hi = (
        cat.start,
        cat.k1,
        cat.obs,
        cat.ordinal,
        cat.lo,
        cat.hi,
    )
    J = B.shape[2]
    du = Q.shape[0]
    for j in range(J):
        _cluster_vector(Y2, X2, beta2, B, d, j, w)
        cu = 0
        for v in range(start.shape[0]):
            c0 = start[v]
            k1 = k1s[v]
            lev = obs[v, j]
            for k in range(k1):
                if lev >= 0:
                    x = d + c0 + k
                    acc = 0.0
                    for ll in range(du):
                        if ll != x:
                            acc += Q[x, ll] * w[ll]
                    xb = Y2[c0 + k, j] - w[x]
                    if ordinal[v]:  # ordinal: between the thresholds of the cluster's level
                        lo = gam2[v, lev]
                        hi = gam2[v, lev + 1]
                    else:
                        lo, hi = latent_bounds(Y2, j, c0, k1, k, lev, box_lo, box_hi)
                    y = truncnorm_draw(
                        xb - acc / Q[x, x], 1.0 / math.sqrt(Q[x, x]), lo, hi, unif[cu * J + j]
                    )
                    Y2[c0 + k, j] = y
                    w[x] = y - xb
                cu += 1


@step
def draw_beta2(l2, Psi, d, z, w1):
    """beta2 ~ MatrixNormal(OLS of Y2 on X2, (X2'X2)^-1, Psi_22); then the residuals
    U2 = Y2 - X2 beta2. Returns False if Psi_22 is not positive definite."""
    X2, Lx2, Y2, beta2, U2, bh2, nz = l2.X2, l2.Lx2, l2.Y2, l2.beta2, l2.U2, l2.work.bh2, l2.work.nz
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


@step
def conditional_prior(Psi, d, l2, Pinv, w1, w2):
    """u1 | u2 ~ N(M, V): M = Psi_12 Psi_22^-1 u2 (into l2.M), Pinv <- V^-1 with
    V = Psi_11 - Psi_12 Psi_22^-1 Psi_21. Returns False if a factor fails."""
    U2, M, V = l2.U2, l2.M, l2.work.V
    r2 = Psi.shape[0] - d
    J = U2.shape[1]
    for t in range(r2):
        for u in range(r2):
            w1[t, u] = Psi[d + t, d + u]
    if not chol_inplace(w1, r2):
        return False
    for x in range(d):  # K = Psi_12 Psi_22^-1 row by row -> w2[x, :r2]
        for t in range(r2):
            w2[x, t] = Psi[x, d + t]
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
    for x in range(d):
        for y in range(d):
            V[x, y] = Psi[x, y]
    schur_update(V, w2, Psi[d:, :d], d, r2)
    return spd_inverse(V, Pinv, w1, d)


@step
def _prepare_thresholds(l2, B, d):
    """(u_j, Y2_j) stacked with their means (0, X2_j beta2), for the level-2 threshold update."""
    Ybig, mubig, X2, Y2, beta2 = l2.work.Ybig, l2.work.mubig, l2.X2, l2.Y2, l2.beta2
    q, r, J = B.shape
    p2 = X2.shape[0]
    for t in range(r):
        for a in range(q):
            x = t * q + a
            for j in range(J):  # element loops: a row-to-row copy may allocate (no runtime here)
                Ybig[x, j] = B[a, t, j]
            mubig[x] = 0.0
    for t in range(Y2.shape[0]):
        for j in range(J):
            acc = 0.0
            for k in range(p2):
                acc += X2[k, j] * beta2[k, t]
            mubig[d + t, j] = acc
            Ybig[d + t, j] = Y2[t, j]


@step
def level2_step(Psi, d, B, l2, Pinv, z_beta2, z_thr, u_thr, u_lat, lat_work, w1, w2):
    """Steps 1-3 of the module docstring. Noise: ``z_beta2`` (p2 r2 normals), ``z_thr`` /
    ``u_thr`` (threshold proposals), ``u_lat`` (uniforms of the latents, n_lat2 J);
    ``lat_work``: a LatentWork with at least J elements. Returns 0 or a Status code."""
    du = Psi.shape[0]
    Q3 = l2.work.Q
    if l2.cat.start.shape[0] > 0:
        if not spd_inverse(Psi, Q3[0], w1, du):
            return _LATENT
        if z_thr.shape[0] > 0:
            _prepare_thresholds(l2, B, d)
            update_thresholds(
                l2.work.Ybig, l2.work.mubig, Q3, l2.work.C0, l2.cat, d, z_thr, u_thr, lat_work
            )
        draw_latents_level2(l2, B, Q3[0], d, u_lat)
    if not draw_beta2(l2, Psi, d, z_beta2, w1):
        return _BETA2
    if d > 0 and not conditional_prior(Psi, d, l2, Pinv, w1, w2):
        return _LEVEL2
    return 0


@step
def draw_missing_level2(l2, v, Psi, w1, w2, z):
    """Missing level-2 values of each cluster given its random effects ``v`` (d, J) and observed
    level-2 values, pattern by pattern over the clusters ``l2.perm2``. Returns the normals used."""
    Y2, U2, X2, beta2, perm2 = l2.Y2, l2.U2, l2.X2, l2.beta2, l2.perm2
    pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis = (
        l2.pat_start,
        l2.pat_obs,
        l2.pat_nobs,
        l2.pat_mis,
        l2.pat_nmis,
    )
    Kp, Cp = l2.work.Kp, l2.work.Cp
    d = v.shape[0]
    p2 = X2.shape[0]
    pattern_factors(Psi, pat_obs, pat_nobs, pat_mis, pat_nmis, Kp, Cp, w1, w2)
    cur = 0
    for g in range(pat_nobs.shape[0]):
        s0 = pat_start[g]
        n = pat_start[g + 1] - s0
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
