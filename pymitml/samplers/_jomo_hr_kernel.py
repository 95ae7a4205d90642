"""``random_L1``: jomo's model with cluster-specific level-1 covariance matrices (``jomo1ranconhr``,
``jomo1rancathr``, ``jomo2hr``), over arrays.

    Y_j = X_j beta + Z_j u_j + E_j,   rows of E_j ~ N(0, Sigma_j),   Sigma_j ~ IW(a, Lambda),
    Lambda ~ W(r + 1, Binv),   a ~ chi2(eta) (a > r),   vec(u_j) ~ N(0, Psi).

One iteration of :func:`jomo_hr_iterate`:

1. latents of observed categories under the cluster's Sigma_j (thresholds first), then the
   missing cells of each stored row from the conditional normal of its row under Sigma_j;
2. level-2 step (as in :mod:`._jomo_kernel`) or Psi^-1;
3. one pass over the clusters: u_j | beta, Sigma_j, Psi and the cluster's share of beta's
   precision sum_j Sigma_j^-1 (x) X_j'X_j and right side;
4. Psi ~ IW(J + du, Dinv + sum u u') (categorical level-2 targets: jomo's Metropolis-Hastings);
5. beta | u, Sigma_j (GLS);
6. a by random-walk Metropolis-Hastings on log(a - r) with Lambda integrated out; then
   Lambda ~ W(J a + r + 1, (Binv^-1 + sum_j Sigma_j^-1)^-1);
7. Sigma_j ~ IW(n_j + a, Lambda + S_j) per cluster (S_j: its residual cross-products); with
   categorical targets restricted to the fixed latent blocks: exact with one categorical target
   (:func:`~._covariance.draw_iw_given_block`), jomo's element-wise Metropolis-Hastings otherwise;
8. missing level-2 values; record.

Per-cluster arrays are cluster-major, (J, ., .). Chi-square draws (their degrees of freedom
change with a), the Bartlett normals of the J Wishart draws and all level-2, latent and
Metropolis-Hastings noise come from the chain's Generator as the steps need them; each iteration
first draws its other normals into one buffer laid out as :class:`~._jomo_state.OffsetsHR`.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import njit
from ..exceptions import Status
from ._covariance import draw_iw_given_block, lmgamma, logdet_chol, mh_covariance
from ._gibbs import row_means
from ._jomo_steps import random_effects_crossproducts, record_level2
from ._kernel_options import compose, step, step_alloc
from ._latent import latent_step
from ._level2 import draw_missing_level2, level2_step
from ._linalg import (
    chol_inplace,
    draw_inv_wishart,
    draw_inv_wishart_pair,
    solve_lower,
    solve_lower_t,
    spd_inverse,
)

_PSI = int(Status.PSI)
_BETA = int(Status.BETA)
_RANDOM_EFFECTS = int(Status.RANDOM_EFFECTS)
_MISSING = int(Status.MISSING)
_SIGMA_J = int(Status.SIGMA_J)
_LAMBDA = int(Status.LAMBDA)


@njit(nrt=False)
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


@step_alloc
def _log_post_df(a, eta, J, r, sum_logdet, Ginv, SumInv, w):
    """log p(a | Sigma_1..J) with the scale matrix integrated out (jomo2hr's model):
    Sigma_j ~ IW(a, Lambda), Lambda ~ W(r + 1, Binv), a ~ chi2(eta) (density at a)."""
    g = r + 1.0
    M = np.empty((r, r))
    for i in range(r):
        for j in range(r):
            M[i, j] = Ginv[i, j] + SumInv[i, j]
    ld = logdet_chol(M, w, r)
    return (
        (0.5 * eta - 1.0) * math.log(a)
        - 0.5 * a
        - J * lmgamma(0.5 * a, r)
        - 0.5 * (a + r + 1.0) * sum_logdet
        + lmgamma(0.5 * (J * a + g), r)
        - 0.5 * (J * a + g) * ld
    )


@compose
def _cluster_inverses(par, work):
    """Sigma_j^-1, sum_j Sigma_j^-1 and sum_j log|Sigma_j| of the current Sigma_j."""
    SigJ, SinvJ, w1, w2 = par.SigJ, work.SinvJ, work.w1, work.w2
    J, r = SigJ.shape[0], SigJ.shape[1]
    for j in range(J):
        for t in range(r):
            for u in range(r):
                w2[t, u] = SigJ[j, t, u]
        if not spd_inverse(w2, w1, work.scale, r):
            return False
        for t in range(r):
            for u in range(r):
                SinvJ[j, t, u] = w1[t, u]
    sum_logdet = 0.0
    work.SumInv[:, :] = 0.0
    for j in range(J):
        sum_logdet += logdet_chol(SigJ[j], w1, r)
        for t in range(r):
            for u in range(r):
                work.SumInv[t, u] += SinvJ[j, t, u]
    work.logdet[0] = sum_logdet
    return True


@compose
def _latents_hr(rng, rows, cat, work, off):
    """Step 1a: thresholds (their proposals drawn here) and latents under the cluster's Sigma_j."""
    zt, ut = work.zt, work.ut
    for x in range(off.n_thr1):
        zt[x] = rng.standard_normal()
        ut[x] = max(rng.random(), 1e-300)
    latent_step(
        rng,
        rows.Yi,
        work.mu,
        work.SinvJ,
        rows.Ci,
        cat,
        zt[: off.n_thr1],
        ut[: off.n_thr1],
        work.lat,
    )


@compose
def _missing_cells_hr(rows, par, work, cm):
    """Step 1b: missing cells row by row under the cluster's Sigma_j (normals z[cm:]). Returns
    the position after them, or -1 if a conditional covariance failed."""
    Yi, Ci, mu, w1, e, z, SigJ = rows.Yi, rows.Ci, work.mu, work.w1, work.e, work.z, par.SigJ
    pat_obs, pat_mis = rows.pat_obs, rows.pat_mis
    r = Yi.shape[0]
    for g in range(rows.pat_nobs.shape[0]):
        no = rows.pat_nobs[g]
        nm = rows.pat_nmis[g]
        if nm == 0:
            continue
        c_prev = -1
        for i in range(rows.pat_start[g], rows.pat_start[g + 1]):
            c = Ci[i]
            if c != c_prev:  # rows are grouped by cluster within a pattern: one factor per run
                c_prev = c
                for x in range(no + nm):
                    ix = pat_obs[g, x] if x < no else pat_mis[g, x - no]
                    for y in range(no + nm):
                        iy = pat_obs[g, y] if y < no else pat_mis[g, y - no]
                        w1[x, y] = SigJ[c, ix, iy]
                if not chol_inplace(w1, r):
                    return -1
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
    return cm


@compose
def _level2_prior_hr(rng, par, l2, work, off):
    """Step 2: the level-2 step (its noise drawn here), or Psi^-1. Returns a Status code."""
    d = work.V.shape[0]
    if l2 is None:
        if d > 0 and not spd_inverse(par.Psi, work.Pinv, work.w1, d):
            return _PSI
        return 0
    z2, u2 = work.z2, work.u2
    for x in range(z2.shape[0]):
        z2[x] = rng.standard_normal()
    for x in range(u2.shape[0]):
        u2[x] = max(rng.random(), 1e-300)
    o2 = off.p2r2 + off.n_cells2
    return level2_step(
        par.Psi,
        d,
        par.B,
        l2,
        work.Pinv,
        z2[: off.p2r2],
        z2[o2 : o2 + off.n_thr2],
        u2[off.n_lat2 : off.n_lat2 + off.n_thr2],
        u2[: off.n_lat2],
        work.lat,
        work.w1,
        work.w2,
    )


@compose
def _random_effects_all(mom, par, M, work, z0):
    """u_j | beta, Sigma_j, Psi for every cluster (mean with the conditional prior mean M_j);
    writes B and V. Returns False if a cluster's posterior precision is not positive definite.
    (Arrays are taken out of the bundles once, outside the loop over clusters.)"""
    ZtY, ZtX, ZtZ, SinvJ, Pinv, Pj, vj, w2 = (
        work.ZtY,
        mom.ZtX,
        mom.ZtZ,
        work.SinvJ,
        work.Pinv,
        work.Pj,
        work.vj,
        work.w2,
    )
    beta, B, V = par.beta, par.B, work.V
    q, r, J = B.shape
    p = beta.shape[0]
    d = q * r
    for j in range(J):
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
                        Pj[t * q + a_, u * q + b] = (
                            Pinv[t * q + a_, u * q + b] + SinvJ[j, t, u] * ZtZ[j, a_, b]
                        )
        if not chol_inplace(Pj, d):
            return False
        solve_lower(Pj, vj, d)
        for x in range(d):
            vj[x] += z0[x * J + j]
        solve_lower_t(Pj, vj, d)
        for t in range(r):
            for a_ in range(q):
                x = t * q + a_
                B[a_, t, j] = vj[x] + M[x, j]
                V[x, j] = vj[x] + M[x, j]
    return True


@compose
def _beta_shares_all(mom, par, work):
    """Per cluster X_j'W_j and W_j'W_j (W_j = Y_j - Z_j u_j) and the cluster's share of beta's
    precision Sinv_j (x) X_j'X_j and right side vec(X_j'W_j Sinv_j), summed in cluster order."""
    XtY, ZtY, YtY, G, WtW, SinvJ, B = (
        work.XtY,
        work.ZtY,
        work.YtY,
        work.G,
        work.WtW,
        work.SinvJ,
        par.B,
    )
    ZtX, ZtZ, XtXj, rhs, H = mom.ZtX, mom.ZtZ, mom.XtXj, work.rhs, work.H
    q, r, J = B.shape
    p = par.beta.shape[0]
    for j in range(J):
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


@compose
def _random_effects_pass(mom, par, l2, work, off):
    """Step 3: the clusters' totals (constant rows + stored rows), u_j, then beta's precision and
    right side."""
    q, r, J = par.B.shape
    p = par.beta.shape[0]
    work.rhs[:] = 0.0
    work.H[:, :] = 0.0
    if q * r == 0:
        return True
    M = work.M if l2 is None else l2.M
    XtY, ZtY, YtY, XtYc, ZtYc, YtYc = work.XtY, work.ZtY, work.YtY, mom.XtYc, mom.ZtYc, mom.YtYc
    for j in range(J):
        for t in range(r):
            for k in range(p):
                XtY[j, k, t] += XtYc[j, k, t]
            for a_ in range(q):
                ZtY[j, a_, t] += ZtYc[j, a_, t]
            for u in range(r):
                YtY[j, u, t] += YtYc[j, u, t]
    if not _random_effects_all(mom, par, M, work, work.z[off.u : off.u + q * r * J]):
        return False
    _beta_shares_all(mom, par, work)
    return True


@compose
def _psi_step_hr(rng, par, prior, l2, store, work, off):
    """Step 4: Psi of (u_j, u2_j). Returns a Status code."""
    Psi, w2, Dinv = par.Psi, work.w2, prior.Dinv
    du = Psi.shape[0]
    if du == 0:
        return 0
    d, J = work.V.shape
    random_effects_crossproducts(work.V, l2, work.SB, d)
    for x in range(du):
        for y in range(x + 1):
            w2[x, y] = Dinv[x, y] + work.SB[x, y]
            w2[y, x] = Dinv[y, x] + work.SB[x, y]
    if (
        l2 is not None and l2.cat.start.shape[0] > 0
    ):  # flat prior as in jomo2com: the cross-products alone
        Q2 = work.Q2
        for x in range(du):
            for y in range(du):
                Q2[x, y] = w2[x, y] - Dinv[x, y]
        o2 = off.p2r2 + off.n_cells2 + off.n_thr2
        o3 = off.n_lat2 + off.n_thr2
        store.accepted[0] += mh_covariance(
            Psi,
            Q2,
            float(J),
            l2.cat.free,
            work.z2[o2 : o2 + off.n_free2],
            work.u2[o3 : o3 + off.n_free2],
            work.w1,
            work.w3,
            du,
            float(J),
        )
        return 0
    for x in range(du):
        work.chi[x] = rng.chisquare(J + du - x)
    if not draw_inv_wishart(work.chi, work.z[off.psi : off.lam], w2, Psi, work.w1, work.w3, du):
        return _PSI
    return 0


@compose
def _beta_step_hr(par, work, off):
    """Step 5: beta | u, Sigma_j from the precision and right side of the pass over the clusters."""
    H, rhs = work.H, work.rhs
    p, r = par.beta.shape
    pr = p * r
    if not chol_inplace(H, pr):
        return False
    solve_lower(H, rhs, pr)
    for x in range(pr):
        rhs[x] += work.z[off.beta + x]
    solve_lower_t(H, rhs, pr)
    for t in range(r):
        for k in range(p):
            par.beta[k, t] = rhs[t * p + k]
    return True


@compose
def _df_lambda_step(rng, par, prior, work, off):
    """Step 6: a (Lambda integrated out; SumInv and the log-determinants belong to the current
    Sigma_j), then Lambda ~ W(J a + r + 1, (Ginv + sum Sinv)^-1). Returns False on failure."""
    r = par.Lam.shape[0]
    J = par.SigJ.shape[0]
    a = par.a[0]
    phi = math.log(a - r)
    phi_new = phi + par.a_sd[0] * work.z[off.a]
    a_new = r + math.exp(phi_new)
    lp_old = (
        _log_post_df(a, prior.eta, J, r, work.logdet[0], prior.Ginv, work.SumInv, work.w1) + phi
    )
    lp_new = (
        _log_post_df(a_new, prior.eta, J, r, work.logdet[0], prior.Ginv, work.SumInv, work.w1)
        + phi_new
    )
    if math.log(max(rng.random(), 1e-300)) < lp_new - lp_old:
        a = a_new
        par.a[0] = a
        par.a_acc[0] += 1
    for t in range(r):
        for u in range(r):
            work.w2[t, u] = prior.Ginv[t, u] + work.SumInv[t, u]
    for x in range(r):
        work.chi[x] = rng.chisquare(J * a + r + 1.0 - x)
    if not draw_inv_wishart(
        work.chi, work.z[off.lam : off.beta], work.w2, work.scale, work.w1, work.w3, r
    ):
        return False
    return spd_inverse(work.scale, par.Lam, work.w1, r)


@step
def _mh_sigma_j(rng, SigJ_j, SinvJ_j, S, N, n_prop, free, mh, w):
    """jomo's Metropolis-Hastings steps for the free elements of one Sigma_j (several categorical
    targets) under IW restricted to the latent blocks, then its inverse and log-determinant.
    ``mh`` = (normals, uniforms) of the steps, drawn here; ``w`` = (w1, w3) work. Returns
    (accepted moves, log|Sigma_j|; NaN if it lost positive definiteness)."""
    z_mh, u_mh = mh
    w1, w3 = w
    r = SigJ_j.shape[0]
    for x in range(z_mh.shape[0]):
        z_mh[x] = rng.standard_normal()
        u_mh[x] = max(rng.random(), 1e-300)
    acc = mh_covariance(SigJ_j, S, N, free, z_mh, u_mh, w1, w3, r, n_prop)
    if not spd_inverse(SigJ_j, w1, w3, r):
        return acc, math.nan
    for t in range(r):
        for u in range(r):
            SinvJ_j[t, u] = w1[t, u]
    return acc, logdet_chol(SigJ_j, w1, r)


@step
def _sigma_j_step(rng, mom, cat, block, par, store, work, off):
    """Step 7: Sigma_j ~ IW(n_j + a, Lambda + S_j) per cluster, S_j = W'W - b'X'W - W'X b + b'X'X b
    (with categorical targets restricted to the latent blocks: exact given the one fixed block
    ``block``, or with ``block`` None jomo's Metropolis-Hastings steps; compiled on its own so
    that only the path in use is); keeps sum_j Sigma_j^-1 and sum_j log|Sigma_j| up to date.
    Returns False if a draw failed."""
    beta, G, XtXj, w2, WtW, Lam = par.beta, work.G, mom.XtXj, work.w2, work.WtW, par.Lam
    SigJ, SinvJ, SumInv, chi, nb, nj, iw = (
        par.SigJ,
        work.SinvJ,
        work.SumInv,
        work.chi,
        work.nb,
        mom.nj,
        work.iw,
    )
    iw5 = iw[:5]
    p, r = beta.shape
    J = SigJ.shape[0]
    a = par.a[0]
    nls = off.beta - off.lam
    mh = (work.z_mh[: off.n_free1], work.u_mh[: off.n_free1])
    ww = (work.w1, work.w3)
    n_acc = 0
    sum_logdet = 0.0
    SumInv[:, :] = 0.0
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
        if cat is None:
            for x in range(r):
                chi[x] = rng.chisquare(nj[j] + a - x)
            for x in range(nls):
                nb[x] = rng.standard_normal()
            ld = draw_inv_wishart_pair(w2, chi, nb, SigJ[j], SinvJ[j], iw5, r)
        elif block is None:
            acc_j, ld = _mh_sigma_j(
                rng, SigJ[j], SinvJ[j], w2, nj[j] + a + r + 1.0, nj[j], cat.free, mh, ww
            )
            n_acc += acc_j
        else:  # one categorical target: the exact draw given its fixed block
            ld = draw_iw_given_block(rng, w2, nj[j] + a, block, SigJ[j], SinvJ[j], iw, r)
        if ld != ld:
            store.accepted[0] += n_acc
            return False
        sum_logdet += ld
        for t in range(r):
            for u in range(r):
                SumInv[t, u] += SinvJ[j, t, u]
    store.accepted[0] += n_acc
    work.logdet[0] = sum_logdet
    return True


@step
def _record_sigma_j(store, SigJ, o):
    """The Sigma_j as iteration o: their mean (mode 0) or every one stacked (mode 1); only the
    variances when the chain keeps one column."""
    J, r = SigJ.shape[0], SigJ.shape[1]
    diag = store.sigma.shape[1] == 1
    if store.mode == 0:
        for t in range(r):
            for u in range(r):
                acc = 0.0
                for j in range(J):
                    acc += SigJ[j, t, u]
                if diag:
                    if t == u:
                        store.sigma[t, 0, o] = acc / J
                else:
                    store.sigma[t, u, o] = acc / J
        return
    for j in range(J):
        for t in range(r):
            if diag:
                store.sigma[j * r + t, 0, o] = SigJ[j, t, t]
            else:
                for u in range(r):
                    store.sigma[j * r + t, u, o] = SigJ[j, t, u]


@compose
def _record_hr(store, par, l2, cat, o):
    store.a[o] = par.a[0]
    record_level2(store, l2, cat, o)
    for k in range(par.beta.shape[0]):
        for t in range(par.beta.shape[1]):
            store.beta[k, t, o] = par.beta[k, t]
    ch_psi = store.psi
    for x in range(ch_psi.shape[0]):
        for y in range(ch_psi.shape[1]):
            ch_psi[x, y, o] = par.Psi[x, x] if ch_psi.shape[1] == 1 else par.Psi[x, y]
    _record_sigma_j(store, par.SigJ, o)


@njit(nrt=False, glue=True)
def jomo_hr_iterate(n_steps, rec0, rng, rows, mom, cat, par, prior, l2, store, work):
    """Run ``n_steps`` iterations in place (the steps of the module docstring); iteration s is
    stored at index rec0 + s of the chains (rec0 < 0: not stored).

    Bundles: ``rows`` (:class:`~._jomo_state.Rows`), ``mom`` (ClusterMoments), ``cat`` (CatSpec
    with thresholds, or None), ``par`` (ParamsHR), ``prior`` (PriorHR), ``l2`` (Level2 or None),
    ``store`` (StoreHR), ``work`` (WorkHR, with its noise layout ``work.off``). Returns 0 or the
    :class:`~pymitml.exceptions.Status` of the failing step (its iteration in ``work.fail_at``).
    """
    off = work.off
    work.fail_at[0] = 0
    if not _cluster_inverses(par, work):
        return _SIGMA_J
    z = work.z
    for s in range(n_steps):
        work.fail_at[0] = s
        for x in range(z.shape[0]):
            z[x] = rng.standard_normal()
        row_means(rows.Xi, rows.Zi, rows.Ci, par.beta, par.B, work.mu)
        if cat is not None:
            _latents_hr(rng, rows, cat, work, off)
        if _missing_cells_hr(rows, par, work, off.cells) < 0:
            return _MISSING
        cluster_rows_crossproducts(rows.Xi, rows.Zi, rows.Yi, rows.Ci, work.XtY, work.ZtY, work.YtY)
        code = _level2_prior_hr(rng, par, l2, work, off)
        if code:
            return code
        if not _random_effects_pass(mom, par, l2, work, off):
            return _RANDOM_EFFECTS
        code = _psi_step_hr(rng, par, prior, l2, store, work, off)
        if code:
            return code
        if not _beta_step_hr(par, work, off):
            return _BETA
        if not _df_lambda_step(rng, par, prior, work, off):
            return _LAMBDA
        if not _sigma_j_step(
            rng, mom, cat, None if cat is None else cat.block, par, store, work, off
        ):
            return _SIGMA_J
        if l2 is not None:
            draw_missing_level2(
                l2, work.V, par.Psi, work.w1, work.w2, work.z2[off.p2r2 : off.p2r2 + off.n_cells2]
            )
        if rec0 >= 0:
            _record_hr(store, par, l2, cat, rec0 + s)
    return 0
