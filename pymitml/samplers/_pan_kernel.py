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

Sampler state lives in four bundles (NamedTuples of arrays, passed to numba as one argument
each): :class:`PanData` (constant for a chain), :class:`PanParams` (the current draws),
:class:`PanWork` (buffers, allocated once per chain) and :class:`ChainStore` (the stored chains).
:func:`pan_iterate` is the composition of the steps 1-4 above, one function each.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._numba import njit
from ..exceptions import Status
from ._gibbs import (
    _draw_beta_collapsed,
    _draw_given_cholesky,
    _precision_cholesky,
    draw_covariance_iw,
    draw_missing_cells,
    fill_normals,
    fixed_residual_crossproducts,
    pattern_factors,
    record_covariance,
    record_matrix,
    residual_crossproducts,
    row_means,
    rows_crossproducts,
    sum_outer,
    total_crossproducts,
)
from ._linalg import spd_inverse

__all__ = [
    "ChainStore",
    "PanData",
    "PanParams",
    "PanWork",
    "pan_draw_counts",
    "pan_iterate",
    "pan_work",
]

# status codes as plain ints (numba freezes module globals as constants)
_OK = int(Status.OK)
_SIGMA = int(Status.SIGMA)
_PSI = int(Status.PSI)
_BETA = int(Status.BETA)
_RANDOM_EFFECTS = int(Status.RANDOM_EFFECTS)


class PanData(NamedTuple):
    """What stays fixed during a chain.

    XtX (p, p), ZtZ (q, q, J), ZtX (q, p, J): the design's cross-products; XtYc (p, r),
    ZtYc (q, r, J), YtYc (r, r): those of the complete rows. Incomplete rows, stored transposed and
    grouped by missingness pattern (rows pat_start[g]:pat_start[g+1]): Xi (p, n), Zi (q, n),
    Ci (n,) cluster codes, Seg the starts of the runs of equal codes; pattern g observes targets
    pat_obs[g, :pat_nobs[g]] and misses pat_mis[g, :pat_nmis[g]]. Prior: Binv (r, r), Dinv (d, d);
    dfs (d + r,): the chi-square degrees of freedom of the Bartlett draws (Psi's, then Sigma's).
    """

    XtX: np.ndarray
    ZtZ: np.ndarray
    ZtX: np.ndarray
    XtYc: np.ndarray
    ZtYc: np.ndarray
    YtYc: np.ndarray
    Xi: np.ndarray
    Zi: np.ndarray
    Ci: np.ndarray
    Seg: np.ndarray
    pat_start: np.ndarray
    pat_obs: np.ndarray
    pat_nobs: np.ndarray
    pat_mis: np.ndarray
    pat_nmis: np.ndarray
    Binv: np.ndarray
    Dinv: np.ndarray
    dfs: np.ndarray


class PanParams(NamedTuple):
    """The chain's current state, updated in place: beta (p, r), Sigma (r, r), Psi (d, d), the
    random effects B (q, r, J), the incomplete rows' current values Yi (r, n) and their
    cross-products XtYi (p, r), ZtYi (q, r, J), YtYi (r, r) (kept equal to those of Yi)."""

    beta: np.ndarray
    Sigma: np.ndarray
    Psi: np.ndarray
    B: np.ndarray
    Yi: np.ndarray
    XtYi: np.ndarray
    ZtYi: np.ndarray
    YtYi: np.ndarray


class PanWork(NamedTuple):
    """Buffers, allocated once per chain by :func:`pan_work`; nothing in them survives an iteration
    except ``failed_at`` (the iteration, within the last call, whose step failed)."""

    z: np.ndarray
    chi: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    Sinv: np.ndarray
    Pinv: np.ndarray
    XtY: np.ndarray
    ZtY: np.ndarray
    YtY: np.ndarray
    R: np.ndarray
    P: np.ndarray
    v: np.ndarray
    F: np.ndarray
    f: np.ndarray
    A: np.ndarray
    cvec: np.ndarray
    tmp: np.ndarray
    SB: np.ndarray
    XtW: np.ndarray
    WtW: np.ndarray
    E: np.ndarray
    scale: np.ndarray
    Kp: np.ndarray
    Cp: np.ndarray
    mu: np.ndarray
    failed_at: np.ndarray


class ChainStore(NamedTuple):
    """Stored draws, iteration on the last axis: beta (p, r, n), psi (d, d or 1, n),
    sigma (r, r or 1, n); one column: only the variances (keep_chains = "diagonal")."""

    beta: np.ndarray
    psi: np.ndarray
    sigma: np.ndarray


def pan_draw_counts(J, p, q, r, n_cells):
    """Standard normals one iteration consumes: beta, clusters, Psi, Sigma, missing cells."""
    d = q * r
    return J * d + d * (d - 1) // 2 + r * (r - 1) // 2 + p * r + n_cells


def pan_work(data: PanData, r: int, n_cells: int) -> PanWork:
    """The buffers of one chain (``r`` targets, ``n_cells`` missing cells)."""
    p = data.XtX.shape[0]
    q, _, J = data.ZtYc.shape
    d = q * r
    pr = p * r
    mx = max(d, r, p, 1)
    n_pat = max(data.pat_nobs.shape[0], 1)
    n_inc = data.Xi.shape[1]
    e = np.empty
    return PanWork(
        z=e(pan_draw_counts(J, p, q, r, n_cells)),
        chi=e(d + r),
        w1=e((mx, mx)),
        w2=e((mx, mx)),
        Sinv=e((r, r)),
        Pinv=e((d, d)),
        XtY=e((p, r)),
        ZtY=e((q, r, J)),
        YtY=e((r, r)),
        R=e((q, r, J)),
        P=e((d, d, J)),
        v=e((d, J)),
        F=e((d, pr, J)),
        f=e((d, J)),
        A=e((pr, pr)),
        cvec=e(pr),
        tmp=e(J),
        SB=e((d, d)),
        XtW=e((p, r)),
        WtW=e((r, r)),
        E=e((r, r)),
        scale=e((mx, mx)),
        Kp=np.zeros((n_pat, r, r)),
        Cp=np.zeros((n_pat, r, r)),
        mu=e((r, max(n_inc, 1))),
        failed_at=np.zeros(1, np.int64),
    )


# The steps below are inlined (numba IR) into pan_iterate: a separately compiled function that
# takes the bundles costs a library of its own, and its caller re-optimises and re-generates the
# machine code of everything it links in; as one function the iteration compiles ~5 s faster.
@njit(inline="always")
def draw_effects(data, par, w):
    """1. (beta, b) | Sigma, Psi, Y as one block: beta with b integrated out (GLS), then
    b_j | beta ~ N(P_j^-1 vec(Z_j'(Y_j - X_j beta) Sigma^-1), P_j^-1). Normals: z[:p r] for beta,
    z[p r : p r + d J] for b. Returns a Status code."""
    p = data.XtX.shape[0]
    q, r, J = data.ZtYc.shape
    d = q * r
    pr = p * r
    if not spd_inverse(par.Sigma, w.Sinv, w.w1, r):
        return _SIGMA
    if not spd_inverse(par.Psi, w.Pinv, w.w1, d):
        return _PSI
    if not _precision_cholesky(data.ZtZ, w.Sinv, w.Pinv, w.P):
        return _RANDOM_EFFECTS
    if not _draw_beta_collapsed(
        w.z[0:pr], data.XtX, w.XtY, data.ZtX, w.ZtY, w.Sinv, w.P, w.F, w.f, w.A, w.cvec, par.beta
    ):
        return _BETA
    _draw_given_cholesky(
        w.z[pr : pr + d * J], data.ZtX, w.ZtY, par.beta, w.Sinv, par.B, w.R, w.P, w.v
    )
    return _OK


@njit(inline="always")
def draw_psi(data, par, w, cur):
    """2. Psi | b ~ IW(c + J, Dinv + sum_j vec(b_j) vec(b_j)'); the vec(b_j) are the columns of
    w.v after :func:`draw_effects`. Normals from z[cur:]. Returns a Status code."""
    d = par.Psi.shape[0]
    sum_outer(w.v, w.SB)
    if not draw_covariance_iw(
        w.chi[:d], w.z[cur : cur + d * (d - 1) // 2], data.Dinv, w.SB, w.scale, par.Psi, w.w1, w.w2
    ):
        return _PSI
    return _OK


@njit(inline="always")
def draw_sigma(data, par, w, cur):
    """3. Sigma | beta, b, Y ~ IW(a + N, Binv + E'E), E = Y - X beta - Z b, from the
    cross-products: W = Y - Z b first, then E = W - X beta. Normals from z[cur:]."""
    r = par.Sigma.shape[0]
    d = par.Psi.shape[0]
    residual_crossproducts(w.XtY, w.YtY, data.ZtX, w.ZtY, data.ZtZ, par.B, w.tmp, w.XtW, w.WtW)
    fixed_residual_crossproducts(w.WtW, w.XtW, data.XtX, par.beta, w.E)
    if not draw_covariance_iw(
        w.chi[d : d + r],
        w.z[cur : cur + r * (r - 1) // 2],
        data.Binv,
        w.E,
        w.scale,
        par.Sigma,
        w.w1,
        w.w2,
    ):
        return _SIGMA
    return _OK


@njit(inline="always")
def draw_missing(data, par, w, cur):
    """4. Missing cells of each incomplete row | its observed cells: normal with mean
    x_i beta + z_i b_j and covariance Sigma, pattern by pattern; then the incomplete rows'
    cross-products are brought up to date. Normals from z[cur:]."""
    pattern_factors(
        par.Sigma, data.pat_obs, data.pat_nobs, data.pat_mis, data.pat_nmis, w.Kp, w.Cp, w.w1, w.w2
    )
    row_means(data.Xi, data.Zi, data.Ci, par.beta, par.B, w.mu)
    draw_missing_cells(
        par.Yi,
        w.mu,
        w.z,
        cur,
        data.pat_start,
        data.pat_obs,
        data.pat_nobs,
        data.pat_mis,
        data.pat_nmis,
        w.Kp,
        w.Cp,
    )
    rows_crossproducts(data.Xi, data.Zi, par.Yi, data.Ci, data.Seg, par.XtYi, par.ZtYi, par.YtYi)


@njit(inline="always")
def record(par, store, o):
    """Store beta, Psi and Sigma as iteration ``o`` of their chains."""
    record_matrix(par.beta, store.beta, o)
    record_covariance(par.Psi, store.psi, o)
    record_covariance(par.Sigma, store.sigma, o)


@njit(nrt=False)
def pan_iterate(n_steps, rec0, rng, data, par, w, store):
    """Run ``n_steps`` Gibbs iterations in place (steps 1-4 of the module docstring); iteration s
    is stored at index rec0 + s of ``store`` (rec0 < 0: not stored).

    ``rng`` is the chain's numpy Generator; each iteration first draws all its normals into w.z
    (beta as (r, p), clusters as (d, J), Psi, Sigma, then per pattern its missing cells as
    (n_mis, rows)) and its chi-squares into w.chi (d for Psi, then r for Sigma). Returns 0, or the
    :class:`~pymitml.exceptions.Status` of the failing step, with the failing iteration (counted
    within this call) in w.failed_at[0].
    """
    p = data.XtX.shape[0]
    q, r, J = data.ZtYc.shape
    d = q * r
    cur_psi = p * r + d * J
    cur_sigma = cur_psi + d * (d - 1) // 2
    cur_missing = cur_sigma + r * (r - 1) // 2
    for s in range(n_steps):
        w.failed_at[0] = s
        fill_normals(rng, w.z, w.chi, data.dfs)
        total_crossproducts(
            data.XtYc, data.ZtYc, data.YtYc, par.XtYi, par.ZtYi, par.YtYi, w.XtY, w.ZtY, w.YtY
        )
        code = draw_effects(data, par, w)
        if code == _OK:
            code = draw_psi(data, par, w, cur_psi)
        if code == _OK:
            code = draw_sigma(data, par, w, cur_sigma)
        if code != _OK:
            return code
        if data.Xi.shape[1] > 0:
            draw_missing(data, par, w, cur_missing)
        if rec0 >= 0:
            record(par, store, rec0 + s)
    return _OK
