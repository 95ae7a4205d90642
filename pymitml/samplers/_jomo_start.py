"""Start-up of a jomo chain: the starting state of the level-1 part (working matrix, thresholds,
beta, Sigma with its fixed latent blocks) and of the level-2 part (per-cluster targets, their
missingness patterns, the joint Psi)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np

from ._jomo_targets import _cluster_level, _Layout
from ._layout import pattern_layout


def _level1_start(gd, lay: _Layout, intercept: bool, X: np.ndarray) -> SimpleNamespace:
    """Starting state of the level-1 part, shared by both samplers: the working matrix ``Y``
    (continuous targets, centred with an intercept, then the latents of the categorical ones), its
    missing cells ``miss``, the local level of every row's category (``cat_local``, -1 missing),
    ordinal thresholds ``gam`` (with proposal SDs and acceptance counters), the OLS ``beta`` and
    a residual covariance ``Sigma`` whose latent blocks are fixed (``free`` marks the rest)."""
    from scipy.stats import norm  # lazy: scipy.stats is slow to import

    N = len(X)
    r = lay.r
    nc = lay.n_con
    ncat = len(lay.cat_k1)
    Y = np.zeros((N, r))
    miss = np.zeros((N, r), dtype=bool)
    cmiss = np.isnan(gd.Y[:, :nc])
    obs_mean = np.array([np.nanmean(gd.Y[:, t]) for t in range(nc)])
    shift = np.zeros(r)
    if intercept:
        shift[:nc] = obs_mean
    Y[:, :nc] = np.where(cmiss, obs_mean, gd.Y[:, :nc]) - shift[:nc]
    miss[:, :nc] = cmiss
    cat_local = np.full((ncat, N), -1, np.int64)
    Kmax = max([len(lv) for lv in lay.levels], default=2)
    cat_K = np.array([len(lv) for lv in lay.levels], np.int64)
    gam = np.full((ncat, Kmax + 1), np.inf)
    gam[:, 0] = -np.inf
    gam[:, 1] = 0.0
    thr_sd = np.full((ncat, Kmax + 1), 0.05)
    thr_acc = np.zeros((ncat, Kmax + 1), np.int64)
    n_thr = int(sum(K - 2 for K, o in zip(cat_K, lay.cat_ord) if o and K > 2))
    for v in range(ncat):
        codes = gd.Y[:, nc + v]
        c0, k1 = lay.cat_start[v], lay.cat_k1[v]
        ok = ~np.isnan(codes)
        loc = np.full(N, -1, np.int64)
        loc[ok] = np.searchsorted(
            lay.levels[v], codes[ok].astype(np.int64)
        )  # levels are sorted codes
        cat_local[v] = loc
        if lay.cat_ord[v]:
            K = len(lay.levels[v])
            cum = np.cumsum(np.bincount(loc[ok], minlength=K))[:-1] / ok.sum()
            z0 = norm.ppf(np.clip(cum, 1e-6, 1 - 1e-6))
            gam[v, 1:K] = z0 - z0[0]
            gam[v, K:] = np.inf
            mid = np.empty(K)
            mid[0], mid[K - 1] = gam[v, 1] - 0.5, gam[v, K - 1] + 0.5
            mid[1 : K - 1] = 0.5 * (gam[v, 1 : K - 1] + gam[v, 2:K])
            Y[:, c0] = np.where(ok, mid[np.maximum(loc, 0)], 0.0)
            miss[:, c0] = ~ok
            continue
        blk = np.where(ok[:, None], -0.5, 0.0) * np.ones((N, k1))
        rows_obs = np.flatnonzero(ok & (loc < k1))
        blk[rows_obs, loc[rows_obs]] = 0.5
        Y[:, c0 : c0 + k1] = blk
        miss[:, c0 : c0 + k1] = ~ok[:, None]
    beta, Sigma, free = _beta_sigma_start(X, Y, lay)
    return SimpleNamespace(
        Y=Y,
        miss=miss,
        shift=shift,
        cat_local=cat_local,
        cat_K=cat_K,
        gam=gam,
        thr_sd=thr_sd,
        thr_acc=thr_acc,
        n_thr=n_thr,
        beta=beta,
        Sigma=Sigma,
        free=free,
    )


def _beta_sigma_start(X: np.ndarray, Y: np.ndarray, lay: _Layout) -> tuple:
    """The OLS ``beta`` of the starting working matrix and a residual covariance ``Sigma`` whose
    latent blocks are fixed (1 on the diagonal, 0.5 off it; ``free`` marks the other elements)."""
    r, nc = lay.r, lay.n_con
    beta = np.linalg.solve(X.T @ X, X.T @ Y)
    res = Y - X @ beta
    Sigma = np.eye(r)
    free = np.ones((r, r), dtype=bool)
    if nc:
        Sc = np.atleast_2d(np.cov(res[:, :nc], rowvar=False))
        Sigma[:nc, :nc] = (
            Sc if np.linalg.eigvalsh(Sc).min() > 1e-8 else np.diag(np.maximum(np.diag(Sc), 1e-3))
        )
    for v in range(len(lay.cat_k1)):
        c0, k1 = lay.cat_start[v], lay.cat_k1[v]
        Sigma[c0 : c0 + k1, c0 : c0 + k1] = 0.5 + 0.5 * np.eye(k1)
        free[c0 : c0 + k1, c0 : c0 + k1] = False  # (an ordinal latent: its variance, fixed to 1)
    return beta, Sigma, free


def _level2_working(Y2codes: np.ndarray, lay2: _Layout, J: int) -> tuple:
    """The working level-2 matrix (J, r2): continuous targets (mean-imputed), then the K - 1 latent
    normals of each nominal level-2 target (one latent cut at thresholds for an ordinal one);
    with its missing cells, the column means, the clusters' local levels and the thresholds."""
    from scipy.stats import norm  # lazy: scipy.stats is slow to import

    nc2 = lay2.n_con
    ncat2 = len(lay2.cat_k1)
    r2 = lay2.r
    Y2c = np.zeros((J, r2))
    miss2 = np.zeros((J, r2), dtype=bool)
    miss2[:, :nc2] = np.isnan(Y2codes[:, :nc2])
    mean2 = np.zeros(r2)
    mean2[:nc2] = np.nanmean(Y2codes[:, :nc2], axis=0)
    Y2c[:, :nc2] = np.where(miss2[:, :nc2], mean2[:nc2], Y2codes[:, :nc2])
    cat2_obs = np.full((ncat2, J), -1, np.int64)
    K2 = np.array([len(lv) for lv in lay2.levels], np.int64)
    gam2 = np.full((ncat2, max(K2, default=2) + 1), np.inf)
    gam2[:, 0] = -np.inf
    gam2[:, 1] = 0.0
    for v in range(ncat2):
        codes = Y2codes[:, nc2 + v]
        c0, k1 = lay2.cat_start[v], lay2.cat_k1[v]
        ok = ~np.isnan(codes)
        cat2_obs[v, ok] = np.searchsorted(lay2.levels[v], codes[ok].astype(np.int64))
        if lay2.cat_ord[v]:  # ordinal: one latent cut at thresholds (the first at 0)
            K = len(lay2.levels[v])
            cum = np.cumsum(np.bincount(cat2_obs[v, ok], minlength=K))[:-1] / ok.sum()
            z0 = norm.ppf(np.clip(cum, 1e-6, 1 - 1e-6))
            gam2[v, 1:K] = z0 - z0[0]
            mid = np.empty(K)
            mid[0], mid[K - 1] = gam2[v, 1] - 0.5, gam2[v, K - 1] + 0.5
            mid[1 : K - 1] = 0.5 * (gam2[v, 1 : K - 1] + gam2[v, 2:K])
            Y2c[:, c0] = np.where(ok, mid[np.maximum(cat2_obs[v], 0)], 0.0)
            miss2[:, c0] = ~ok
            continue
        blk = np.where(ok[:, None], -0.5, 0.0) * np.ones((J, k1))
        sel = np.flatnonzero(ok & (cat2_obs[v] < k1))
        blk[sel, cat2_obs[v, sel]] = 0.5
        Y2c[:, c0 : c0 + k1] = blk
        miss2[:, c0 : c0 + k1] = ~ok[:, None]
    return Y2c, miss2, mean2, cat2_obs, K2, gam2


def _merge_thresholds(
    st: SimpleNamespace, lay: _Layout, lay2: _Layout, K2: np.ndarray, gam2: np.ndarray
) -> tuple:
    """Thresholds of both levels in one array (level-2 rows after the level-1 ones), fresh
    proposal SDs and counters, the levels and ordinal flags of every categorical target."""
    width = max(st.gam.shape[1], gam2.shape[1])

    def widen(a, fill):
        return np.hstack([a, np.full((a.shape[0], width - a.shape[1]), fill, a.dtype)])

    gam = np.ascontiguousarray(np.vstack([widen(st.gam, np.inf), widen(gam2, np.inf)]))
    n_thr = st.n_thr + int(sum(K - 2 for K, o in zip(K2, lay2.cat_ord) if o and K > 2))
    return (
        gam,
        np.full(gam.shape, 0.05),
        np.zeros(gam.shape, np.int64),
        np.concatenate([st.cat_K, K2]),
        np.concatenate([lay.cat_ord, lay2.cat_ord]),
        n_thr,
    )


def _level2_start(
    gd, l2, lay: _Layout, lay2, st: SimpleNamespace, Psi: np.ndarray, q: int, J: int
) -> SimpleNamespace:
    """Starting state of the level-2 part (both samplers): per-cluster targets (continuous ones
    centred with an intercept, then latents) and design, clusters arranged by missingness pattern,
    the joint Psi of (u_j, u2_j) (``Psi`` holds the level-1 block), and the thresholds of ordinal
    targets of both levels in one array (level-2 rows after the level-1 ones)."""
    Sigma = st.Sigma
    d = q * lay.r
    gam, thr_sd, thr_acc, cat_K, n_thr = st.gam, st.thr_sd, st.thr_acc, st.cat_K, st.n_thr
    ncat2 = 0
    cat2_start = cat2_k1 = np.zeros(0, np.int64)
    if lay2 is not None:
        cat2_start, cat2_k1 = lay2.cat_start, lay2.cat_k1
    cat2_obs = np.zeros((0, J), np.int64)
    free2 = np.zeros((0, 0), dtype=bool)
    if l2 is not None:
        X2c, Y2codes = _cluster_level(gd, l2)
        ncat2 = len(lay2.cat_k1)
        r2, p2 = lay2.r, X2c.shape[1]
        if np.all(np.isnan(Y2codes), axis=0).any():
            raise ValueError(
                "a level-2 target has no observed value in this group; drop it from the model."
            )
        Y2c, miss2, mean2, cat2_obs, K2, gam2 = _level2_working(Y2codes, lay2, J)
        shift2 = mean2 if (l2["x_names"] and l2["x_names"][0] == "(Intercept)") else np.zeros(r2)
        Y2 = np.ascontiguousarray((Y2c - shift2).T)
        X2 = np.ascontiguousarray(X2c.T)
        Lx2 = np.ascontiguousarray(np.linalg.cholesky(X2c.T @ X2c))
        aug = np.zeros((J, d + r2), dtype=bool)
        aug[:, d:] = miss2
        perm2, pat2_start, p2obs, n2obs, p2mis, n2mis = pattern_layout(aug, miss2.any(axis=1))
        n_cells2 = int(miss2.sum())
        beta2 = np.zeros((p2, r2))
        res2 = Y2.T - X2c @ np.linalg.lstsq(X2c, Y2.T, rcond=None)[0]
        v2 = np.maximum(res2.var(axis=0), 1e-3)
        Psi = np.zeros((d + r2, d + r2))
        Psi[:d, :d] = np.kron(np.diag(0.5 * np.diag(Sigma)), np.eye(q))
        Psi[d:, d:] = np.diag(v2)
        if ncat2:
            free2 = np.ones((d + r2, d + r2), dtype=bool)
            for v in range(ncat2):  # latent block: 1 on the diagonal, 0.5 off it (fixed)
                c0, k1 = d + lay2.cat_start[v], lay2.cat_k1[v]
                Psi[c0 : c0 + k1, c0 : c0 + k1] = 0.5 + 0.5 * np.eye(k1)
                free2[c0 : c0 + k1, c0 : c0 + k1] = False
    else:
        r2 = p2 = n_cells2 = 0
        X2, Y2, Lx2 = np.zeros((0, J)), np.zeros((0, J)), np.zeros((0, 0))
        perm2, pat2_start = np.zeros(0, np.int64), np.zeros(1, np.int64)
        p2obs = p2mis = np.zeros((0, d), np.int64)
        n2obs = n2mis = np.zeros(0, np.int64)
        beta2 = np.zeros((0, 0))
        shift2 = np.zeros(0)
    du = d + r2
    cat_ord_all = lay.cat_ord
    if ncat2:  # level-2 thresholds in the rows after the level-1 ones
        gam, thr_sd, thr_acc, cat_K, cat_ord_all, n_thr = _merge_thresholds(st, lay, lay2, K2, gam2)
    return SimpleNamespace(
        ncat2=ncat2,
        cat2_start=cat2_start,
        cat2_k1=cat2_k1,
        cat2_obs=cat2_obs,
        free2=free2,
        r2=r2,
        p2=p2,
        n_cells2=n_cells2,
        X2=X2,
        Y2=Y2,
        Lx2=Lx2,
        perm2=perm2,
        pat2_start=pat2_start,
        p2obs=p2obs,
        n2obs=n2obs,
        p2mis=p2mis,
        n2mis=n2mis,
        beta2=beta2,
        shift2=shift2,
        du=du,
        gam=gam,
        thr_sd=thr_sd,
        thr_acc=thr_acc,
        cat_K=cat_K,
        cat_ord_all=cat_ord_all,
        n_thr=n_thr,
        Psi=Psi,
    )
