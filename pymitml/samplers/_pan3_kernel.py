"""Gibbs sampler of the three-level multivariate linear mixed model (pan with two nested levels).

Model (Yucel 2008, an extension of Schafer & Yucel 2002), pupil rows i in class c in school s,
r targets:

    Y = X beta + Z3 u_s + Z2 v_c + E,   vec(u_s) ~ N(0, Psi3) (order d3 = q3 r, target-major),
    vec(v_c) ~ N(0, Psi2) (d2 = q2 r),  rows of E ~ N(0, Sigma),  flat prior on beta,
    Sigma ~ IW(a, Binv),  Psi2 ~ IW(c, Dinv),  Psi3 ~ IW(c3, Dinv3).

One iteration, with the missing cells of Y filled by their current draws:

1. beta | u, Sigma, Psi2, Y with the class effects integrated out: pan's generalised least
   squares step on W = Y - Z3 u over the classes.
2. u_s | beta, Sigma, Psi2, Psi3, Y with the class effects integrated out (Woodbury within each
   class): normal, precision Psi3^-1 + Sigma^-1 (x) Z3_s'Z3_s - sum_c G_c' P_c^-1 G_c.
3. v_c | beta, u, Sigma, Psi2, Y: pan's random-effect step on Y - Z3 u.
   Steps 2-3 draw (u, v) | beta jointly (u from its margin, then v given u); with step 1 this is
   a two-block Gibbs sampler over beta and (u, v), with no step conditioning school effects on
   class effects (that would make the school effects and the class means of the class effects
   move together, slowly).
4. Psi2 | v ~ IW(c + C, Dinv + sum_c vec(v_c) vec(v_c)'), Psi3 | u ~ IW(c3 + S, Dinv3 + sum_s
   vec(u_s) vec(u_s)'), Sigma | beta, u, v, Y ~ IW(a + N, Binv + E'E).
5. Missing cells of each incomplete row from the normal of the missing given the observed part
   of that row, mean x_i beta + z3_i u_s + z2_i v_c, covariance Sigma.

Every step works on sufficient statistics (X'Y, Z2_c'Y_c per class, Z3_s'Y_s per school, Y'Y),
split into the constant part of the complete rows and the part of the incomplete rows as in pan
(:mod:`pymitml.samplers._pan_kernel`); classes are numbered school by school. The steps are the
shared ones of :mod:`pymitml.samplers._gibbs`.
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
    add_row_effects,
    cluster_residual_crossproducts,
    draw_covariance_iw,
    draw_from_precisions,
    draw_missing_cells,
    fill_normals,
    fixed_residual_crossproducts,
    outer_collapsed_precision,
    pattern_factors,
    record_covariance,
    record_matrix,
    residual_crossproducts,
    row_means,
    rows_crossproducts,
    subtract_outer_effects,
    sum_outer,
    total_crossproducts,
)
from ._linalg import spd_inverse

__all__ = [
    "Pan3Data",
    "Pan3Params",
    "Pan3Store",
    "Pan3Work",
    "pan3_draw_counts",
    "pan3_iterate",
    "pan3_work",
]

_OK = int(Status.OK)
_SIGMA = int(Status.SIGMA)
_PSI = int(Status.PSI)
_BETA = int(Status.BETA)
_RANDOM_EFFECTS = int(Status.RANDOM_EFFECTS)


class Pan3Data(NamedTuple):
    """What stays fixed during a chain. Classes c = 0..C-1 (numbered school by school), schools
    s = 0..S-1, ``school_of`` (C,) the school of each class.

    Design cross-products: XtX (p, p), Z2tZ2 (q2, q2, C), Z2tX (q2, p, C), Z2tZ3 (q2, q3, C),
    Z3tZ3 (q3, q3, S), Z3tX (q3, p, S). Complete rows: XtYc (p, r), Z2tYc (q2, r, C),
    Z3tYc (q3, r, S), YtYc (r, r). Incomplete rows, transposed and grouped by pattern (then by
    class): Xi (p, n), Z2i (q2, n), Z3i (q3, n), Ci / Si (n,) their class / school codes, SegC /
    SegS the runs of equal codes, X0 (0, n) (no fixed columns: school cross-products only),
    patterns as in pan. Prior: Binv (r, r), Dinv2 (d2, d2), Dinv3 (d3, d3); dfs (d2 + d3 + r,)
    the chi-square degrees of freedom of the Bartlett draws (Psi2's, Psi3's, Sigma's).
    """

    XtX: np.ndarray
    Z2tZ2: np.ndarray
    Z2tX: np.ndarray
    Z2tZ3: np.ndarray
    Z3tZ3: np.ndarray
    Z3tX: np.ndarray
    school_of: np.ndarray
    XtYc: np.ndarray
    Z2tYc: np.ndarray
    Z3tYc: np.ndarray
    YtYc: np.ndarray
    Xi: np.ndarray
    Z2i: np.ndarray
    Z3i: np.ndarray
    Ci: np.ndarray
    Si: np.ndarray
    SegC: np.ndarray
    SegS: np.ndarray
    X0: np.ndarray
    pat_start: np.ndarray
    pat_obs: np.ndarray
    pat_nobs: np.ndarray
    pat_mis: np.ndarray
    pat_nmis: np.ndarray
    Binv: np.ndarray
    Dinv2: np.ndarray
    Dinv3: np.ndarray
    dfs: np.ndarray


class Pan3Params(NamedTuple):
    """The current draws: beta (p, r), Sigma (r, r), Psi2 (d2, d2), Psi3 (d3, d3), class effects
    V (q2, r, C), school effects U (q3, r, S), the incomplete rows Yi (r, n) and their
    cross-products XtYi (p, r), Z2tYi (q2, r, C), Z3tYi (q3, r, S), YtYi (r, r)."""

    beta: np.ndarray
    Sigma: np.ndarray
    Psi2: np.ndarray
    Psi3: np.ndarray
    V: np.ndarray
    U: np.ndarray
    Yi: np.ndarray
    XtYi: np.ndarray
    Z2tYi: np.ndarray
    Z3tYi: np.ndarray
    YtYi: np.ndarray


class Pan3Work(NamedTuple):
    """Buffers, allocated once per chain by :func:`pan3_work`."""

    z: np.ndarray
    chi: np.ndarray
    w1: np.ndarray
    w2: np.ndarray
    scale: np.ndarray
    Sinv: np.ndarray
    Pinv2: np.ndarray
    Pinv3: np.ndarray
    XtY: np.ndarray
    Z2tY: np.ndarray
    Z3tY: np.ndarray
    YtY: np.ndarray
    XtW: np.ndarray
    WtW: np.ndarray
    Z2tW: np.ndarray
    XtE: np.ndarray
    EtE: np.ndarray
    E: np.ndarray
    R2: np.ndarray
    R3: np.ndarray
    P2: np.ndarray
    v2: np.ndarray
    F: np.ndarray
    f: np.ndarray
    A: np.ndarray
    cvec: np.ndarray
    Fo: np.ndarray
    Ao: np.ndarray
    co: np.ndarray
    SB2: np.ndarray
    SB3: np.ndarray
    tmpC: np.ndarray
    tmpS: np.ndarray
    Kp: np.ndarray
    Cp: np.ndarray
    mu: np.ndarray
    XtY0: np.ndarray
    YtY0: np.ndarray
    failed_at: np.ndarray


class Pan3Store(NamedTuple):
    """Stored draws, iteration on the last axis: beta (p, r, n), psi (d2, d2 or 1, n) the class
    level, psi3 (d3, d3 or 1, n) the school level, sigma (r, r or 1, n)."""

    beta: np.ndarray
    psi: np.ndarray
    psi3: np.ndarray
    sigma: np.ndarray


def pan3_draw_counts(C, S, p, q2, q3, r, n_cells):
    """Standard normals one iteration consumes: beta, schools, classes, Psi2, Psi3, Sigma, cells."""
    d2, d3 = q2 * r, q3 * r
    tri = d2 * (d2 - 1) // 2 + d3 * (d3 - 1) // 2 + r * (r - 1) // 2
    return p * r + S * d3 + C * d2 + tri + n_cells


def pan3_work(data: Pan3Data, r: int, n_cells: int) -> Pan3Work:
    """The buffers of one chain (``r`` targets, ``n_cells`` missing cells)."""
    p = data.XtX.shape[0]
    q2, _, C = data.Z2tYc.shape
    q3, _, S = data.Z3tYc.shape
    d2, d3 = q2 * r, q3 * r
    pr = p * r
    mx = max(d2, d3, r, p, 1)
    n_pat = max(data.pat_nobs.shape[0], 1)
    n_inc = data.Xi.shape[1]
    e = np.empty
    return Pan3Work(
        z=e(pan3_draw_counts(C, S, p, q2, q3, r, n_cells)),
        chi=e(d2 + d3 + r),
        w1=e((mx, mx)),
        w2=e((mx, mx)),
        scale=e((mx, mx)),
        Sinv=e((r, r)),
        Pinv2=e((d2, d2)),
        Pinv3=e((d3, d3)),
        XtY=e((p, r)),
        Z2tY=e((q2, r, C)),
        Z3tY=e((q3, r, S)),
        YtY=e((r, r)),
        XtW=e((p, r)),
        WtW=e((r, r)),
        Z2tW=e((q2, r, C)),
        XtE=e((p, r)),
        EtE=e((r, r)),
        E=e((r, r)),
        R2=e((q2, r, C)),
        R3=e((q3, r, S)),
        P2=e((d2, d2, C)),
        v2=e((d2, C)),
        F=e((d2, pr, C)),
        f=e((d2, C)),
        A=e((pr, pr)),
        cvec=e(pr),
        Fo=e((d2, d3, C)),
        Ao=e((d3, d3, S)),
        co=e((d3, S)),
        SB2=e((d2, d2)),
        SB3=e((d3, d3)),
        tmpC=e(C),
        tmpS=e(S),
        Kp=np.zeros((n_pat, r, r)),
        Cp=np.zeros((n_pat, r, r)),
        mu=e((r, max(n_inc, 1))),
        XtY0=e((0, r)),
        YtY0=e((r, r)),
        failed_at=np.zeros(1, np.int64),
    )


@njit(inline="always")
def draw_fixed(data, par, w):
    """1. beta | u, Sigma, Psi2, Y with the class effects integrated out: pan's GLS step on
    W = Y - Z3 u (its cross-products X'W, W'W, Z2_c'W_c first). Normals z[:p r]."""
    p = data.XtX.shape[0]
    r = par.Sigma.shape[0]
    d2 = par.Psi2.shape[0]
    d3 = par.Psi3.shape[0]
    if not spd_inverse(par.Sigma, w.Sinv, w.w1, r):
        return _SIGMA
    if not spd_inverse(par.Psi2, w.Pinv2, w.w1, d2):
        return _PSI
    if not spd_inverse(par.Psi3, w.Pinv3, w.w1, d3):
        return _PSI
    if not _precision_cholesky(data.Z2tZ2, w.Sinv, w.Pinv2, w.P2):
        return _RANDOM_EFFECTS
    residual_crossproducts(w.XtY, w.YtY, data.Z3tX, w.Z3tY, data.Z3tZ3, par.U, w.tmpS, w.XtW, w.WtW)
    subtract_outer_effects(w.Z2tY, data.Z2tZ3, par.U, data.school_of, w.Z2tW)
    if not _draw_beta_collapsed(
        w.z[0 : p * r],
        data.XtX,
        w.XtW,
        data.Z2tX,
        w.Z2tW,
        w.Sinv,
        w.P2,
        w.F,
        w.f,
        w.A,
        w.cvec,
        par.beta,
    ):
        return _BETA
    return _OK


@njit(inline="always")
def draw_school_effects(data, par, w, cur):
    """2. u_s | beta, Sigma, Psi2, Psi3, Y with the class effects integrated out (see
    :func:`~pymitml.samplers._gibbs.outer_collapsed_precision`). Normals z[cur:]; afterwards
    w.co holds the vec(u_s) as columns."""
    cluster_residual_crossproducts(w.Z3tY, data.Z3tX, par.beta, w.R3)
    cluster_residual_crossproducts(w.Z2tY, data.Z2tX, par.beta, w.R2)
    outer_collapsed_precision(
        data.Z3tZ3,
        data.Z2tZ3,
        w.R3,
        w.R2,
        data.school_of,
        w.Sinv,
        w.Pinv3,
        w.P2,
        w.Fo,
        w.f,
        w.Ao,
        w.co,
    )
    n = w.co.shape[0] * w.co.shape[1]
    if not draw_from_precisions(w.z[cur : cur + n], w.Ao, w.co, par.U):
        return _RANDOM_EFFECTS
    return _OK


@njit(inline="always")
def draw_class_effects(data, par, w, cur):
    """3. v_c | beta, u, Sigma, Psi2, Y: pan's random-effect step on Y - Z3 u. Normals z[cur:];
    afterwards w.v2 holds the vec(v_c) as columns."""
    n = w.v2.shape[0] * w.v2.shape[1]
    subtract_outer_effects(w.Z2tY, data.Z2tZ3, par.U, data.school_of, w.Z2tW)
    _draw_given_cholesky(
        w.z[cur : cur + n], data.Z2tX, w.Z2tW, par.beta, w.Sinv, par.V, w.R2, w.P2, w.v2
    )


@njit(inline="always")
def draw_covariances(data, par, w, cur):
    """4. Psi2 | v, Psi3 | u, Sigma | beta, u, v, Y (inverse Wishart each). Normals z[cur:],
    chi-squares w.chi (Psi2's, Psi3's, Sigma's)."""
    r = par.Sigma.shape[0]
    d2 = par.Psi2.shape[0]
    d3 = par.Psi3.shape[0]
    t2 = d2 * (d2 - 1) // 2
    t3 = d3 * (d3 - 1) // 2
    sum_outer(w.v2, w.SB2)
    if not draw_covariance_iw(
        w.chi[:d2], w.z[cur : cur + t2], data.Dinv2, w.SB2, w.scale, par.Psi2, w.w1, w.w2
    ):
        return _PSI
    cur += t2
    sum_outer(w.co, w.SB3)
    if not draw_covariance_iw(
        w.chi[d2 : d2 + d3],
        w.z[cur : cur + t3],
        data.Dinv3,
        w.SB3,
        w.scale,
        par.Psi3,
        w.w1,
        w.w2,
    ):
        return _PSI
    cur += t3
    # E = Y - Z3 u - Z2 v - X beta: W = Y - Z3 u (Z2'W is current after step 3), then W - Z2 v
    residual_crossproducts(w.XtY, w.YtY, data.Z3tX, w.Z3tY, data.Z3tZ3, par.U, w.tmpS, w.XtW, w.WtW)
    residual_crossproducts(w.XtW, w.WtW, data.Z2tX, w.Z2tW, data.Z2tZ2, par.V, w.tmpC, w.XtE, w.EtE)
    fixed_residual_crossproducts(w.EtE, w.XtE, data.XtX, par.beta, w.E)
    if not draw_covariance_iw(
        w.chi[d2 + d3 : d2 + d3 + r],
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
    """5. Missing cells of each incomplete row | its observed cells (mean x beta + z3 u + z2 v,
    covariance Sigma); then the incomplete rows' cross-products (class and school)."""
    pattern_factors(
        par.Sigma, data.pat_obs, data.pat_nobs, data.pat_mis, data.pat_nmis, w.Kp, w.Cp, w.w1, w.w2
    )
    row_means(data.Xi, data.Z2i, data.Ci, par.beta, par.V, w.mu)
    add_row_effects(data.Z3i, data.Si, par.U, w.mu)
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
    rows_crossproducts(data.Xi, data.Z2i, par.Yi, data.Ci, data.SegC, par.XtYi, par.Z2tYi, par.YtYi)
    rows_crossproducts(data.X0, data.Z3i, par.Yi, data.Si, data.SegS, w.XtY0, par.Z3tYi, w.YtY0)


@njit(inline="always")
def record(par, store, o):
    """Store beta, Psi2, Psi3 and Sigma as iteration ``o`` of their chains."""
    record_matrix(par.beta, store.beta, o)
    record_covariance(par.Psi2, store.psi, o)
    record_covariance(par.Psi3, store.psi3, o)
    record_covariance(par.Sigma, store.sigma, o)


@njit(nrt=False)
def pan3_iterate(n_steps, rec0, rng, data, par, w, store):
    """Run ``n_steps`` Gibbs iterations in place (steps 1-5 of the module docstring); iteration
    s is stored at index rec0 + s of ``store`` (rec0 < 0: not stored).

    Each iteration first draws its normals into w.z (beta as (r, p), schools as (d3, S),
    classes as (d2, C), Psi2, Psi3, Sigma, then per pattern its missing cells) and its
    chi-squares into w.chi. Returns 0 or the Status of the failing step (iteration within this
    call in w.failed_at[0]).
    """
    p = data.XtX.shape[0]
    r = par.Sigma.shape[0]
    d2 = par.Psi2.shape[0]
    d3 = par.Psi3.shape[0]
    C = data.school_of.shape[0]
    S = data.Z3tYc.shape[2]
    cur_u = p * r
    cur_v = cur_u + d3 * S
    cur_cov = cur_v + d2 * C
    cur_missing = cur_cov + d2 * (d2 - 1) // 2 + d3 * (d3 - 1) // 2 + r * (r - 1) // 2
    for s in range(n_steps):
        w.failed_at[0] = s
        fill_normals(rng, w.z, w.chi, data.dfs)
        total_crossproducts(
            data.XtYc, data.Z2tYc, data.YtYc, par.XtYi, par.Z2tYi, par.YtYi, w.XtY, w.Z2tY, w.YtY
        )
        total_crossproducts(
            data.XtYc, data.Z3tYc, data.YtYc, par.XtYi, par.Z3tYi, par.YtYi, w.XtY, w.Z3tY, w.YtY
        )
        code = draw_fixed(data, par, w)
        if code == _OK:
            code = draw_school_effects(data, par, w, cur_u)
        if code == _OK:
            draw_class_effects(data, par, w, cur_v)
            code = draw_covariances(data, par, w, cur_cov)
        if code != _OK:
            return code
        if data.Xi.shape[1] > 0:
            draw_missing(data, par, w, cur_missing)
        if rec0 >= 0:
            record(par, store, rec0 + s)
    return _OK
