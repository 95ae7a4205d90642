"""Latent normals of categorical targets (probit models), over arrays.

A nominal target with K observed levels has K - 1 latent normals: level k < K <=> latent k is the
largest and > 0; level K <=> all latents < 0. An ordinal target has one latent normal cut at
thresholds gam_1 = 0 < gam_2 < ... < gam_{K-1}. Given the current means ``mu`` and the precision
Q = Sigma^-1 of the working rows, every latent component of an observed category is drawn from the
normal of that component given the rest of its row, truncated to the region of the observed level
(exact truncated-normal Gibbs). The thresholds are updated by random-walk Metropolis-Hastings with
the latents integrated out (Cowles 1996).

Working arrays are stored transposed: ``Y`` (columns x rows), ``mu`` the same shape.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ._kernel_options import step
from ._truncnorm import norm_cdf, truncnorm_batch


class CatSpec(NamedTuple):
    """The categorical targets of one level (ncat of them) and the covariance they constrain."""

    start: np.ndarray  # (ncat,) first latent column of each target
    k1: np.ndarray  # (ncat,) latent columns (observed levels - 1; 1 for ordinal targets)
    obs: np.ndarray  # (ncat, n) local level observed in each row (or cluster), -1 missing
    K: np.ndarray  # (ncat,) observed levels
    ordinal: np.ndarray  # (ncat,) 1 for ordinal targets
    obs_rows: (
        np.ndarray
    )  # (ncat, max(n, 1)) rows where target v is observed: obs_rows[v, :n_obs[v]]
    n_obs: np.ndarray  # (ncat,)
    free: np.ndarray  # (m, m) bool: the free elements of the level's covariance matrix
    exact: bool  # one fixed principal block: exact draws of the free elements
    block: object  # its FixedBlock (see :mod:`._covariance`), None without exact draws
    lo: float  # box bounds of every latent (-inf, inf for the exact probit model)
    hi: float
    thr: object  # Thresholds of the ordinal targets (rows in target order)


class Thresholds(NamedTuple):
    """Thresholds of the ordinal targets of one level (row v: target v; columns 0..K with
    gam[v, 0] = -inf, gam[v, 1] = 0 and gam[v, K] = inf), proposal SDs and accepted moves."""

    gam: np.ndarray
    sd: np.ndarray
    acc: np.ndarray


class LatentWork(NamedTuple):
    """Work arrays of the latent draws: conditional means and SDs (n), the batched draws' (7, n)
    and (1, n) integer buffers."""

    cm: np.ndarray
    csd: np.ndarray
    lw: np.ndarray
    li: np.ndarray


def latent_work(n: int) -> LatentWork:
    n = max(n, 1)
    return LatentWork(np.empty(n), np.empty(n), np.empty((7, n)), np.empty((1, n), np.int64))


def observed_rows(cat_obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rows, counts): rows[v, :counts[v]] are the rows where categorical target v is observed."""
    ncat, n = cat_obs.shape
    rows = np.zeros((ncat, max(n, 1)), np.int64)
    cnt = np.zeros(ncat, np.int64)
    for v in range(ncat):
        idx = np.flatnonzero(cat_obs[v] >= 0)
        rows[v, : len(idx)] = idx
        cnt[v] = len(idx)
    return rows, cnt


@step
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


@step
def log_interval_prob(lo, hi, m, sd):
    """log P(lo < X <= hi) for X ~ N(m, sd^2), computed on the tail that keeps precision."""
    a = (lo - m) / sd
    b = (hi - m) / sd
    if a > 0.0:
        pr = norm_cdf(-a) - norm_cdf(-b)
    else:
        pr = norm_cdf(b) - norm_cdf(a)
    return math.log(pr) if pr > 1e-300 else -690.8


@step
def latent_moments(Yi, mu, Q, Ci, col, cm, csd):
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


@step
def _threshold_loglik_change(obs, gam, v, j, old, new, cm, csd):
    """Change of the log-likelihood (latents integrated out) when threshold j moves old -> new."""
    dl = 0.0
    for i in range(obs.shape[0]):
        lev = obs[i]
        if lev == j - 1:
            dl += log_interval_prob(gam[v, j - 1], new, cm[i], csd[i]) - log_interval_prob(
                gam[v, j - 1], old, cm[i], csd[i]
            )
        elif lev == j:
            dl += log_interval_prob(new, gam[v, j + 1], cm[i], csd[i]) - log_interval_prob(
                old, gam[v, j + 1], cm[i], csd[i]
            )
    return dl


@step
def update_thresholds(Yi, mu, Q, Ci, cat, off, z, uu, work):
    """Thresholds of ordinal targets: random-walk Metropolis-Hastings, one threshold at a time,
    with the latent normals integrated out; the first threshold is fixed at 0. Target v's latent
    is column ``off + cat.start[v]`` of ``Yi``; ``Q``: precision (1, r, r) or per cluster (J, r, r)
    (see :func:`latent_moments`); proposals ``z`` (normals) and ``uu`` (uniforms), one per
    threshold that moves."""
    thr = cat.thr
    gam = thr.gam
    c = 0
    for v in range(cat.start.shape[0]):
        if not cat.ordinal[v]:
            continue
        K = cat.K[v]
        latent_moments(Yi, mu, Q, Ci, off + cat.start[v], work.cm, work.csd)
        for j in range(2, K):
            old = gam[v, j]
            new = old + thr.sd[v, j] * z[c]
            if new > gam[v, j - 1] and new < gam[v, j + 1]:
                dl = _threshold_loglik_change(cat.obs[v], gam, v, j, old, new, work.cm, work.csd)
                if math.log(uu[c]) < dl:
                    gam[v, j] = new
                    thr.acc[v, j] += 1
            c += 1


@step
def latent_bounds(Yc, i, c0, k1, k, lev, box_lo, box_hi):
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


@step
def _latent_regions(Yi, cat, gam, v, k, work):
    """Means, SDs and truncation regions of latent k of target v in the rows where v is observed
    (into rows 0..3 of ``work.lw``)."""
    bm, bs, blo, bhi = work.lw[0], work.lw[1], work.lw[2], work.lw[3]
    cm, csd = work.cm, work.csd
    c0 = cat.start[v]
    k1 = cat.k1[v]
    obs = cat.obs[v]
    rows = cat.obs_rows[v]
    box_lo, box_hi = cat.lo, cat.hi
    lo_pos = max(box_lo, 0.0)
    hi_neg = min(box_hi, 0.0)
    ordinal = cat.ordinal[v] != 0
    binary = k1 == 1 and not ordinal
    for c in range(cat.n_obs[v]):
        i = rows[c]
        lev = obs[i]
        if binary:  # level 0 <=> latent > 0 (without a data-dependent branch)
            pos = lev == 0
            lo = lo_pos if pos else box_lo
            hi = box_hi if pos else hi_neg
        elif ordinal:  # the thresholds are updated with the latents integrated out
            lo = gam[v, lev]
            hi = gam[v, lev + 1]
        else:
            lo, hi = latent_bounds(Yi, i, c0, k1, k, lev, box_lo, box_hi)
        bm[c] = cm[i]
        bs[c] = csd[i]
        blo[c] = lo
        bhi[c] = hi


@step
def draw_latents(rng, Yi, mu, Q, Ci, cat, gam, work):
    """Truncated-normal Gibbs over every latent component of every observed category (ordinal
    targets: one latent between the thresholds of the observed level). One component at a time,
    the draws of all rows are made together (:func:`truncnorm_batch`); ``Q`` is the precision
    (1, r, r) or per cluster (J, r, r)."""
    lw = work.lw
    for v in range(cat.start.shape[0]):
        rows = cat.obs_rows[v]
        nv = cat.n_obs[v]
        for k in range(cat.k1[v]):
            col = cat.start[v] + k
            latent_moments(Yi, mu, Q, Ci, col, work.cm, work.csd)
            _latent_regions(Yi, cat, gam, v, k, work)
            truncnorm_batch(rng, lw[0], lw[1], lw[2], lw[3], lw[4], nv, work.li[0], lw[5], lw[6])
            yc = Yi[col]
            bout = lw[4]
            for c in range(nv):
                yc[rows[c]] = bout[c]


@step
def latent_step(rng, Yi, mu, Q, Ci, cat, z_thr, u_thr, work):
    """Step "latents" of a level: the thresholds of its ordinal targets (proposals ``z_thr``,
    ``u_thr``; none when it has no ordinal target with more than two levels), then the latents
    of its observed categories (:func:`draw_latents`), given means ``mu`` and precision ``Q``."""
    if z_thr.shape[0] > 0:
        update_thresholds(Yi, mu, Q, Ci, cat, 0, z_thr, u_thr, work)
    draw_latents(rng, Yi, mu, Q, Ci, cat, cat.thr.gam, work)
