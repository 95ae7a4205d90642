"""Named bundles of the state of a jomo chain (numba accepts these NamedTuples of arrays as
kernel arguments; fields are read by attribute; scalars that change live in 1-element arrays).

Shared by both samplers: :class:`Rows` (the stored rows), :class:`Offsets` (the layout of one
iteration's pre-drawn noise), plus :class:`~._latent.CatSpec` / :class:`~._latent.Thresholds`
(categorical targets) and :class:`~._level2.Level2` (level-2 targets). ``jomo_iterate``:
:class:`Moments`, :class:`Params`, :class:`Prior`, :class:`Store`, :class:`Work`;
``jomo_hr_iterate`` (random_L1): :class:`ClusterMoments`, :class:`ParamsHR`, :class:`PriorHR`,
:class:`StoreHR`, :class:`WorkHR`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Rows(NamedTuple):
    """Rows with missing cells or latents, stored transposed and grouped by missingness pattern
    (and by cluster within a pattern); the other rows enter through constant cross-products."""

    Xi: np.ndarray  # (p, n)
    Zi: np.ndarray  # (q, n)
    Ci: np.ndarray  # (n,) cluster codes
    Seg: np.ndarray  # starts of the runs of equal cluster codes, then n
    Yi: np.ndarray  # (r, n) working values (continuous targets, then latents)
    pat_start: np.ndarray  # (n_pat + 1,)
    pat_obs: np.ndarray  # (n_pat, r) observed columns of each pattern
    pat_nobs: np.ndarray
    pat_mis: np.ndarray  # (n_pat, r) missing columns
    pat_nmis: np.ndarray


class Offsets(NamedTuple):
    """Where each step's noise sits in one iteration's buffers ``nrm`` (normals) and ``unif``
    (uniforms), and how much it takes."""

    u: int  # random effects, d J
    psi: int  # Psi: Bartlett normals or one proposal per free element
    sigma: int  # Sigma: likewise
    beta: int  # p r
    cells: int  # missing level-1 cells, by pattern
    beta2: int  # p2 r2
    cells2: int  # missing level-2 cells
    thr2: int  # level-2 threshold proposals (n_thr2)
    thr1: int  # level-1 threshold proposals (n_thr1)
    n_thr1: int
    n_thr2: int
    lat1: int  # uniforms: level-1 latents (drawn from the generator, not stored)
    free1: int  # uniforms of Sigma's Metropolis-Hastings steps (n_free1)
    free2: int  # of Psi's (n_free2)
    lat2: int  # of the level-2 latents (n_lat2 J)
    uthr2: int
    uthr1: int
    n_free2: int
    n_lat2: int  # n_lat2 J


def noise_offsets(dims, level1, level2) -> Offsets:
    """:class:`Offsets` of the layout (see :func:`~._jomo_kernel.jomo_draw_counts`):
    ``dims`` = (J, d, p, r, du); ``level1`` = (missing cells, latent columns x stored rows, free
    elements of Sigma, thresholds); ``level2`` = (p2 r2, missing cells, thresholds, free
    elements of Psi, latent columns x J)."""
    J, d, p, r, du = dims
    n_cells, n_lat_rows, n_free, n_thr1 = level1
    p2r2, n_cells2, n_thr2, n_free2, n_lat2J = level2
    npsi = max(du * (du - 1) // 2, n_free2)
    nsig = max(r * (r - 1) // 2, n_free)
    u = 0
    psi = u + J * d
    sigma = psi + npsi
    beta = sigma + nsig
    cells = beta + p * r
    beta2 = cells + n_cells
    cells2 = beta2 + p2r2
    thr2 = cells2 + n_cells2
    thr1 = thr2 + n_thr2
    free1 = n_lat_rows
    free2 = free1 + n_free
    lat2 = free2 + n_free2
    uthr2 = lat2 + n_lat2J
    uthr1 = uthr2 + n_thr2
    return Offsets(
        u,
        psi,
        sigma,
        beta,
        cells,
        beta2,
        cells2,
        thr2,
        thr1,
        n_thr1,
        n_thr2,
        n_lat_rows,
        free1,
        free2,
        lat2,
        uthr2,
        uthr1,
        n_free2,
        n_lat2J,
    )


# ----------------------------------------------------------------------------- jomo_iterate
class Moments(NamedTuple):
    """Sufficient statistics of the level-1 model (per-cluster arrays have J last)."""

    XtX: np.ndarray  # (p, p)
    ZtZ: np.ndarray  # (q, q, J)
    ZtX: np.ndarray  # (q, p, J)
    XtYc: np.ndarray  # (p, r) of the constant rows
    ZtYc: np.ndarray  # (q, r, J)
    YtYc: np.ndarray  # (r, r)
    XtYi: np.ndarray  # the same of the stored rows (updated every iteration)
    ZtYi: np.ndarray
    YtYi: np.ndarray
    N: float  # rows


class SingleLevel(NamedTuple):
    """Models without clusters: beta is drawn from its own conditional (chol(X'X), work)."""

    Lx: np.ndarray  # (p, p)
    bh: np.ndarray  # (p, r)
    nz: np.ndarray  # (p,)


class Params(NamedTuple):
    beta: np.ndarray  # (p, r)
    Sigma: np.ndarray  # (r, r)
    Psi: np.ndarray  # (du, du) of (u_j, u2_j)
    B: np.ndarray  # (q, r, J) random effects


class Prior(NamedTuple):
    Binv: np.ndarray
    Dinv: np.ndarray


class Store(NamedTuple):
    """Chains (parameters x iterations) written by the record step."""

    beta: np.ndarray
    psi: np.ndarray
    sigma: np.ndarray
    beta2: np.ndarray
    gam: np.ndarray  # thresholds: level-1 rows, then level-2 rows
    accepted: np.ndarray  # (1,) accepted Metropolis-Hastings moves
    diag_only: bool


class Work(NamedTuple):
    """Noise buffers and work arrays of :func:`~._jomo_kernel.jomo_iterate`, allocated once per chain."""

    dfs: np.ndarray  # chi-square degrees of freedom (Psi, then Sigma)
    nrm: np.ndarray  # (1, normals of an iteration)
    unif: np.ndarray  # (1, uniforms)
    chi: np.ndarray  # (1, du + r)
    off: Offsets
    w1: np.ndarray  # (mx, mx) general work
    w2: np.ndarray
    w3: np.ndarray
    Sinv: np.ndarray  # (1, r, r)
    Pinv: np.ndarray  # (max(d, 1), max(d, 1))
    XtYm: np.ndarray  # (p, r) X'(Y - Z M)
    F: np.ndarray  # (d, p r, J)  work of the collapsed beta draw
    fv: np.ndarray  # (d, J)
    Ac: np.ndarray  # (p r, p r)
    cvec: np.ndarray  # (p r,)
    ZtY: np.ndarray  # (q, r, J)
    ZtYm: np.ndarray  # (q, r, J) Z'(Y - Z M)
    R: np.ndarray  # (q, r, J)
    P: np.ndarray  # (d, d, J) Cholesky factors of the random effects' precisions
    v: np.ndarray  # (d, J) random effects target-major
    lat: object  # LatentWork (its cm doubles as the J-vector of the residual cross-products)
    mu: np.ndarray  # (r, n) means of the stored rows
    Kp: np.ndarray  # (n_pat, r, r) pattern factors
    Cp: np.ndarray
    SB: np.ndarray  # (du, du) sum of (u_j, u2_j)(u_j, u2_j)'
    scale_p: np.ndarray
    XtW: np.ndarray  # (p, r) X'W, W = Y - Z u
    XtYs: np.ndarray
    YtYs: np.ndarray  # (r, r)
    WtW: np.ndarray
    S: np.ndarray  # (r, r) residual cross-products
    scale_s: np.ndarray
    cov: object  # CovWork of the restricted updates
    ws: np.ndarray  # (mx, mx) inverse from the exact restricted draw (unused)
    fail_at: np.ndarray  # (1,) the iteration of the segment whose step failed


# ----------------------------------------------------------------------------- jomo_hr_iterate
class ClusterMoments(NamedTuple):
    """Per-cluster sufficient statistics (cluster-major, (J, ., .))."""

    nj: np.ndarray  # (J,) rows per cluster
    XtXj: np.ndarray  # (J, p, p)
    ZtZ: np.ndarray  # (J, q, q)
    ZtX: np.ndarray  # (J, q, p)
    XtYc: np.ndarray  # (J, p, r) of the constant rows
    ZtYc: np.ndarray
    YtYc: np.ndarray


class ParamsHR(NamedTuple):
    beta: np.ndarray  # (p, r)
    SigJ: np.ndarray  # (J, r, r) cluster-specific Sigma_j
    Psi: np.ndarray  # (du, du)
    Lam: np.ndarray  # (r, r) scale matrix of the Sigma_j
    B: np.ndarray  # (q, r, J)
    a: np.ndarray  # (1,) degrees of freedom of the Sigma_j
    a_sd: np.ndarray  # (1,) its proposal SD
    a_acc: np.ndarray  # (1,) its accepted moves


class PriorHR(NamedTuple):
    Ginv: np.ndarray  # Binv^-1
    Dinv: np.ndarray
    eta: float  # prior degrees of freedom of a


class StoreHR(NamedTuple):
    beta: np.ndarray
    psi: np.ndarray
    sigma: np.ndarray
    beta2: np.ndarray
    gam: np.ndarray
    a: np.ndarray
    accepted: np.ndarray  # (1,) accepted Metropolis-Hastings moves (Sigma_j, Psi)
    mode: int  # 0: the mean of the Sigma_j, 1: every Sigma_j


class WorkHR(NamedTuple):
    """Work arrays of :func:`~._jomo_hr_kernel.jomo_hr_iterate`, allocated once per chain."""

    w1: np.ndarray
    w2: np.ndarray
    w3: np.ndarray
    SinvJ: np.ndarray  # (J, r, r)
    Pinv: np.ndarray
    mu: np.ndarray  # (r, n)
    XtY: np.ndarray  # (J, p, r) per-cluster cross-products of all rows
    ZtY: np.ndarray
    YtY: np.ndarray
    G: np.ndarray  # (J, p, r) X_j'W_j
    WtW: np.ndarray  # (J, r, r)
    V: np.ndarray  # (d, J)
    H: np.ndarray  # (p r, p r) precision of beta
    rhs: np.ndarray
    SumInv: np.ndarray  # (r, r) sum of the Sigma_j^-1
    logdet: np.ndarray  # (1,) sum of log|Sigma_j|
    scale: np.ndarray
    e: np.ndarray  # (r,)
    chi: np.ndarray
    nb: np.ndarray
    Pj: np.ndarray  # (d, d)
    vj: np.ndarray  # (d,)
    lat: object  # LatentWork
    zt: np.ndarray  # threshold proposals
    ut: np.ndarray
    z_mh: np.ndarray  # Metropolis-Hastings noise of one Sigma_j
    u_mh: np.ndarray
    Q2: np.ndarray  # (du, du)
    z2: np.ndarray  # level-2 noise of one iteration
    u2: np.ndarray
    iw: np.ndarray  # (20, r, r)
    z: np.ndarray  # the other normals of one iteration
    SB: np.ndarray  # (du, du)
    M: np.ndarray  # (d, J) zeros: the conditional prior mean without level-2 targets
    off: object  # OffsetsHR
    fail_at: np.ndarray  # (1,) the iteration of the segment whose step failed


class OffsetsHR(NamedTuple):
    """Layout of the random_L1 sampler's noise: ``z`` (one iteration's normals: u d J, Psi,
    Lambda, beta p r, missing cells, the proposal of a) and the level-2 buffers ``z2`` (beta2,
    missing cells, thresholds, free elements of Psi) and ``u2`` (latents, thresholds, free)."""

    u: int
    psi: int
    lam: int
    beta: int
    cells: int
    a: int
    n_thr1: int
    n_free1: int  # free elements of a Sigma_j (categorical targets)
    p2r2: int
    n_cells2: int
    n_thr2: int
    n_free2: int
    n_lat2: int  # n_lat2 J
