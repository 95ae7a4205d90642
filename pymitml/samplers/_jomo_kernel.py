"""Gibbs sampler of jomo's joint model (level-1 targets, continuous and categorical), over arrays.

Model (Carpenter & Kenward 2013; jomo's ``jomo1ran``/``jomo1``), cluster j, r columns (continuous
targets, then K-1 latent normals per categorical target):

    Y_j = X_j beta + Z_j u_j + E_j,   vec(u_j) ~ N(0, Psi) (target-major),
    rows of E_j ~ N(0, Sigma),        flat prior on beta,   Psi ~ IW(d, Dinv).

Latent normals of a categorical target with K observed levels: level k < K <=> latent k is the
largest and > 0; level K <=> all latents < 0; their block of Sigma is fixed to 1 on the diagonal
and 0.5 off it. Single-level models have no Z (q = 0) and one cluster.

One iteration of :func:`jomo_iterate` (jomo's steps; the order differs but not the stationary
distribution):

1. latents of observed categories (:func:`~._latent.latent_step`), then the missing cells of each
   stored row given the observed part of the row (latents of a missing category unconstrained);
2. level-2 targets (:func:`~._level2.level2_step`): latents, beta2, the conditional prior of u_j;
3. (beta, u) as one block: beta with u integrated out (GLS), then u_j | beta, Sigma, Psi;
   Psi ~ IW(J + d, Dinv + sum u u') (with categorical level-2 targets: the flat-prior target
   restricted to the fixed latent block, :func:`~._covariance.restricted_update`);
4. single-level models: beta | Sigma ~ MatrixNormal((X'X)^-1 X'Y, (X'X)^-1, Sigma);
5. Sigma | beta, u with residual cross-products S: without categorical targets
   Sigma ~ IW(N - 1, Binv + S) (jomo's degrees of freedom); with them, the flat-prior target
   -tr(Sigma^-1 S)/2 - N log|Sigma|/2 restricted to the fixed blocks (exact with one block,
   jomo's element-wise Metropolis-Hastings otherwise);
6. missing level-2 values; record.

Steps 3-5 need only the sufficient statistics X'Y, Z_j'Y_j, Y'Y (rows that never change enter
through constant cross-products; the others are stored transposed, grouped by missingness pattern).
Without categorical targets ``cat`` is None, without level-2 targets ``l2`` is None: numba then
compiles neither path. The random_L1 sampler is in :mod:`._jomo_hr_kernel`.
"""

from __future__ import annotations

from .._numba import njit
from ..exceptions import Status
from ._covariance import draw_iw_given_block as _draw_iw_given_block  # noqa: F401  (re-exported)
from ._covariance import restricted_update
from ._gibbs import (
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
from ._jomo_hr_kernel import cluster_rows_crossproducts, jomo_hr_iterate  # noqa: F401  (re-exported)
from ._jomo_steps import random_effects_crossproducts, record_level2
from ._kernel_options import compose, step
from ._latent import latent_step
from ._level2 import draw_missing_level2, level2_step
from ._linalg import chol_inplace, draw_inv_wishart, solve_lower_t, spd_inverse

__all__ = ["jomo_draw_counts", "jomo_hr_iterate", "jomo_iterate"]

_SIGMA = int(Status.SIGMA)
_PSI = int(Status.PSI)
_BETA = int(Status.BETA)
_RANDOM_EFFECTS = int(Status.RANDOM_EFFECTS)


def jomo_draw_counts(dims, level1, level2=(0, 0, 0, 0, 0)):
    """(normals, uniforms) one iteration consumes: ``dims`` = (J, p, q, r), ``level1`` = (missing
    cells, stored rows, latent columns, free elements of Sigma), ``level2`` = (p2, r2, missing
    cells, latent columns, free elements of Psi); ``n_thr`` thresholds of both levels come last
    in both buffers: level2 may carry it as a sixth element."""
    J, p, q, r = dims
    n_cells, n_inc, n_lat, n_free = level1
    p2, r2, n_cells2, n_lat2, n_free2 = level2[:5]
    n_thr = level2[5] if len(level2) > 5 else 0
    d = q * r
    du = d + r2
    nsig = max(r * (r - 1) // 2, n_free)
    npsi = max(du * (du - 1) // 2, n_free2)
    return (
        J * d + npsi + nsig + p * r + n_cells + p2 * r2 + n_cells2 + n_thr,
        n_lat * n_inc + n_free + n_free2 + n_lat2 * J + n_thr,
    )


@compose
def _draw_noise(rng, work):
    """This iteration's random numbers, from the chain's generator into row 0 of the buffers (the
    uniforms of the level-1 latents are drawn later, directly)."""
    z = work.nrm[0]
    uu = work.unif[0]
    for i in range(z.shape[0]):
        z[i] = rng.standard_normal()
    for i in range(work.off.lat1, uu.shape[0]):
        uu[i] = max(rng.random(), 1e-300)  # open interval (0, 1)
    for i in range(work.chi.shape[1]):
        work.chi[0, i] = rng.chisquare(work.dfs[i])


@compose
def _add_cluster_moments(A, Bm, out):
    """out = A + Bm (arrays (q, r, J))."""
    q, r, J = out.shape
    for a in range(q):
        for t in range(r):
            for j in range(J):
                out[a, t, j] = A[a, t, j] + Bm[a, t, j]


@compose
def _rows_step(rng, rows, mom, cat, par, work):
    """Steps 1: latents and missing cells of the stored rows, then their cross-products."""
    z, uu, off = work.nrm[0], work.unif[0], work.off
    row_means(rows.Xi, rows.Zi, rows.Ci, par.beta, par.B, work.mu)
    if cat is not None:
        latent_step(
            rng,
            rows.Yi,
            work.mu,
            work.Sinv,
            rows.Ci,
            cat,
            z[off.thr1 : off.thr1 + off.n_thr1],
            uu[off.uthr1 : off.uthr1 + off.n_thr1],
            work.lat,
        )
    pattern_factors(
        par.Sigma,
        rows.pat_obs,
        rows.pat_nobs,
        rows.pat_mis,
        rows.pat_nmis,
        work.Kp,
        work.Cp,
        work.w1,
        work.w2,
    )
    draw_missing_cells(
        rows.Yi,
        work.mu,
        z,
        off.cells,
        rows.pat_start,
        rows.pat_obs,
        rows.pat_nobs,
        rows.pat_mis,
        rows.pat_nmis,
        work.Kp,
        work.Cp,
    )
    rows_crossproducts(rows.Xi, rows.Zi, rows.Yi, rows.Ci, rows.Seg, mom.XtYi, mom.ZtYi, mom.YtYi)


@compose
def _level2_prior_step(mom, par, l2, work):
    """Step 2: the level-2 step and Z'(Y - Z M) (the conditional prior mean of u moved to the
    data), or without level-2 targets Psi^-1. Returns a Status code."""
    d = work.v.shape[0]
    if l2 is None:
        if d > 0 and not spd_inverse(par.Psi, work.Pinv, work.w1, d):
            return _PSI
        return 0
    z, uu, off = work.nrm[0], work.unif[0], work.off
    p2r2 = l2.X2.shape[0] * l2.Y2.shape[0]
    code = level2_step(
        par.Psi,
        d,
        par.B,
        l2,
        work.Pinv,
        z[off.beta2 : off.beta2 + p2r2],
        z[off.thr2 : off.thr2 + off.n_thr2],
        uu[off.uthr2 : off.uthr2 + off.n_thr2],
        uu[off.lat2 : off.lat2 + off.n_lat2],
        work.lat,
        work.w1,
        work.w2,
    )
    if code:
        return code
    ZtY, ZtYm, ZtZ, M = work.ZtY, work.ZtYm, mom.ZtZ, l2.M
    q, r, J = ZtY.shape
    for a in range(q):
        for t in range(r):
            for j in range(J):
                acc = ZtY[a, t, j]
                for b in range(q):
                    acc -= ZtZ[a, b, j] * M[t * q + b, j]
                ZtYm[a, t, j] = acc
    return 0


@step
def _data_crossproduct_x(mom, l2, work):
    """X'(Y - Z M) into work.XtYm (X'Y without level-2 targets)."""
    XtYc, XtYi, ZtX, XtYm = mom.XtYc, mom.XtYi, mom.ZtX, work.XtYm
    q, r, J = work.ZtY.shape
    p = mom.XtX.shape[0]
    for t in range(r):
        for k in range(p):
            acc = XtYc[k, t] + XtYi[k, t]
            if l2 is not None:
                for a in range(q):
                    Ma = l2.M[t * q + a]
                    Xa = ZtX[a, k]
                    for j in range(J):
                        acc -= Xa[j] * Ma[j]
            XtYm[k, t] = acc


@compose
def _beta_u_step(mom, par, l2, work):
    """Step 3a: (beta, u) as one block, beta with u integrated out, then u | beta (u = v + M with
    level-2 targets). Returns a Status code."""
    z, off = work.nrm[0], work.off
    q, r, J = work.ZtY.shape
    p = mom.XtX.shape[0]
    d = q * r
    _data_crossproduct_x(mom, l2, work)
    Sinv = work.Sinv[0]
    ZtYu = work.ZtY if l2 is None else work.ZtYm
    if not _precision_cholesky(mom.ZtZ, Sinv, work.Pinv, work.P):
        return _RANDOM_EFFECTS
    if not _draw_beta_collapsed(
        z[off.beta : off.beta + p * r],
        mom.XtX,
        work.XtYm,
        mom.ZtX,
        ZtYu,
        Sinv,
        work.P,
        work.F,
        work.fv,
        work.Ac,
        work.cvec,
        par.beta,
    ):
        return _BETA
    _draw_given_cholesky(
        z[off.u : off.u + d * J], mom.ZtX, ZtYu, par.beta, Sinv, par.B, work.R, work.P, work.v
    )
    if l2 is not None:
        v, M, B = work.v, l2.M, par.B
        for t in range(r):
            for a in range(q):
                x = t * q + a
                for j in range(J):
                    v[x, j] += M[x, j]
                    B[a, t, j] = v[x, j]
    return 0


@compose
def _psi_step(rng, par, prior, l2, store, work):
    """Step 3b: Psi of (u_j, u2_j). Returns a Status code."""
    Psi = par.Psi
    du = Psi.shape[0]
    if du == 0:
        return 0
    z, uu, off = work.nrm[0], work.unif[0], work.off
    d = work.v.shape[0]
    J = work.v.shape[1]
    npsi = off.sigma - off.psi
    random_effects_crossproducts(work.v, l2, work.SB, d)
    if l2 is not None and l2.cat.start.shape[0] > 0:  # jomo2com: flat prior, latent block fixed
        c2 = l2.cat
        acc_mh, ld = restricted_update(
            rng,
            Psi,
            work.SB,
            float(J),
            c2.block,
            c2.free,
            z[off.psi : off.psi + npsi],
            uu[off.free2 : off.free2 + off.n_free2],
            work.ws,
            work.cov,
        )
        if c2.exact and ld != ld:
            return _PSI
        store.accepted[0] += acc_mh
        return 0
    for x in range(du):
        for y in range(du):
            work.scale_p[x, y] = prior.Dinv[x, y] + work.SB[x, y]
    if not draw_inv_wishart(
        work.chi[0, :du], z[off.psi : off.psi + npsi], work.scale_p, Psi, work.w1, work.w2, du
    ):
        return _PSI
    return 0


@compose
def _residual_step(mom, par, work):
    """X'W and W'W of W = Y - Z u from the sufficient statistics."""
    r = par.Sigma.shape[0]
    p = mom.XtX.shape[0]
    for t in range(r):
        for u in range(r):
            work.YtYs[t, u] = mom.YtYc[t, u] + mom.YtYi[t, u]
        for k in range(p):
            work.XtYs[k, t] = mom.XtYc[k, t] + mom.XtYi[k, t]
    residual_crossproducts(
        work.XtYs, work.YtYs, mom.ZtX, work.ZtY, mom.ZtZ, par.B, work.lat.cm, work.XtW, work.WtW
    )


@compose
def _beta_single_level(single, par, work):
    """Step 4 (no clusters): beta | Sigma ~ MatrixNormal((X'X)^-1 X'W, (X'X)^-1, Sigma)."""
    Lx, bh, w2, w3, nz = single.Lx, single.bh, work.w2, work.w3, single.nz
    z = work.nrm[0]
    cur = work.off.beta
    p = Lx.shape[0]
    r = par.Sigma.shape[0]
    for t in range(r):
        for k in range(p):
            bh[k, t] = work.XtW[k, t]
        for i in range(p):  # L^-1
            sacc = bh[i, t]
            for k in range(i):
                sacc -= Lx[i, k] * bh[k, t]
            bh[i, t] = sacc / Lx[i, i]
        solve_lower_t(Lx, bh[:, t], p)
    for t in range(r):
        for u in range(r):
            w3[t, u] = par.Sigma[t, u]
    if not chol_inplace(w3, r):
        return _BETA
    for u in range(r):
        for k in range(p):
            nz[k] = z[cur + k]
        cur += p
        solve_lower_t(Lx, nz, p)
        for k in range(p):
            w2[k, u] = nz[k]
    for k in range(p):
        for t in range(r):
            acc = bh[k, t]
            for u in range(t + 1):
                acc += w2[k, u] * w3[t, u]
            par.beta[k, t] = acc
    return 0


@step
def _residual_sscp(XtX, beta, XtW, WtW, S):
    """S = W'W - b'X'W - W'X b + b'X'X b (the residual cross-products of the level-1 model)."""
    p, r = beta.shape
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


@compose
def _sigma_step(rng, mom, cat, par, prior, store, work):
    """Step 5: Sigma | beta, u (IW, or the restricted flat-prior target with categorical targets).
    Returns a Status code."""
    z, uu, off = work.nrm[0], work.unif[0], work.off
    Sigma, S = par.Sigma, work.S
    r = Sigma.shape[0]
    du = par.Psi.shape[0]
    nsig = off.beta - off.sigma
    _residual_sscp(mom.XtX, par.beta, work.XtW, work.WtW, S)
    if cat is not None:  # jomo1ran with categorical targets: flat prior, latent blocks fixed
        acc_mh, ld = restricted_update(
            rng,
            Sigma,
            S,
            mom.N,
            cat.block,
            cat.free,
            z[off.sigma : off.sigma + nsig],
            uu[off.free1 :],
            work.ws,
            work.cov,
        )
        if cat.exact and ld != ld:
            return _SIGMA
        store.accepted[0] += acc_mh
        return 0
    for t in range(r):
        for u in range(r):
            work.scale_s[t, u] = prior.Binv[t, u] + S[t, u]
    if not draw_inv_wishart(
        work.chi[0, du : du + r],
        z[off.sigma : off.sigma + nsig],
        work.scale_s,
        Sigma,
        work.w1,
        work.w2,
        r,
    ):
        return _SIGMA
    return 0


@compose
def _record(store, par, l2, cat, o):
    for k in range(par.beta.shape[0]):
        for t in range(par.beta.shape[1]):
            store.beta[k, t, o] = par.beta[k, t]
    record_level2(store, l2, cat, o)
    record_covariances(par.Psi, par.Sigma, store.psi, store.sigma, o, store.diag_only)


@njit(nrt=False, glue=True)
def jomo_iterate(n_steps, rec0, rng, rows, mom, cat, par, prior, l2, single, store, work):
    """Run ``n_steps`` iterations in place (the steps of the module docstring); iteration s is
    stored at index rec0 + s of the chains (rec0 < 0: not stored).

    Bundles: ``rows`` (:class:`~._jomo_state.Rows`), ``mom`` (Moments), ``cat`` (CatSpec of the
    level-1 categorical targets with their thresholds, or None), ``par`` (Params), ``prior``,
    ``l2`` (Level2, or None), ``single`` (SingleLevel for models without clusters, else None),
    ``store`` (Store), ``work`` (Work: noise buffers laid out by
    ``work.off``, work arrays). Randomness: ``rng`` is the chain's numpy Generator; each iteration
    first draws its normals, uniforms and chi-squares into the buffers. Returns 0 or the
    :class:`~pymitml.exceptions.Status` of the failing step (its iteration in ``work.fail_at``).
    """
    for s in range(n_steps):
        work.fail_at[0] = s
        _draw_noise(rng, work)
        if not spd_inverse(par.Sigma, work.Sinv[0], work.w1, par.Sigma.shape[0]):
            return _SIGMA
        if rows.Yi.shape[1] > 0:
            _rows_step(rng, rows, mom, cat, par, work)
        _add_cluster_moments(mom.ZtYc, mom.ZtYi, work.ZtY)
        code = _level2_prior_step(mom, par, l2, work)
        if single is None and code == 0:
            code = _beta_u_step(mom, par, l2, work)
        if code == 0:
            code = _psi_step(rng, par, prior, l2, store, work)
        if code:
            return code
        _residual_step(mom, par, work)
        if single is not None:
            code = _beta_single_level(single, par, work)
        if code == 0:
            code = _sigma_step(rng, mom, cat, par, prior, store, work)
        if code:
            return code
        if l2 is not None:
            draw_missing_level2(
                l2, work.v, par.Psi, work.w1, work.w2, work.nrm[0, work.off.cells2 :]
            )
        if rec0 >= 0:
            _record(store, par, l2, cat, rec0 + s)
    return 0
