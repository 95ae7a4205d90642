"""One jomo chain: the state bundles of :mod:`._jomo_state` built from a group's data, and the
driver's :class:`~.driver.Chain` around them (the kernel call of a segment, the threshold and
proposal tuning between segments, the imputed values read off the state)."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ._covariance import CovWork, fixed_block
from ._jomo_hr_kernel import cluster_rows_crossproducts, jomo_hr_iterate
from ._jomo_kernel import jomo_draw_counts, jomo_iterate
from ._jomo_start import _level1_start, _level2_start
from ._jomo_state import (
    ClusterMoments,
    Moments,
    OffsetsHR,
    Params,
    ParamsHR,
    Prior,
    PriorHR,
    Rows,
    SingleLevel,
    Store,
    StoreHR,
    Work,
    WorkHR,
    noise_offsets,
)
from ._jomo_targets import _Layout
from ._latent import CatSpec, Thresholds, latent_work, observed_rows
from ._layout import design_crossproducts, row_blocks
from ._level2 import Level2, level2_work
from .driver import Chain


@dataclass(frozen=True)
class RunSettings:
    """What one chain is asked to do (the same for every chain of a run but ``seed``, ``m_c`` and
    ``chain``)."""

    seed: int  # the task's seed (from spawn_seeds)
    prior: dict
    n_burn: int
    n_iter: int
    m_c: int  # imputations this chain draws
    diag_only: bool  # keep_chains == "diagonal"
    intercept: bool  # the first predictor is the intercept (targets are centred)
    single: bool  # no cluster term
    box: tuple  # latent bounds (lo, hi)
    mode: int = 0  # random_L1: 0 "mean", 1 "full"
    chain: int = 0
    group: object = None


def _cat_spec(start, k1, obs, K, ordinal, constraint, box, thr, rows=True) -> CatSpec:
    """``constraint`` = (free elements, exact, FixedBlock) of the level's covariance matrix."""
    free, exact, block = constraint
    if rows:
        obs_rows, n_obs = observed_rows(obs)
    else:
        obs_rows, n_obs = np.zeros((len(start), 1), np.int64), np.zeros(len(start), np.int64)
    return CatSpec(
        start,
        k1,
        obs,
        K,
        ordinal,
        obs_rows,
        n_obs,
        free,
        bool(exact),
        block,
        float(box[0]),
        float(box[1]),
        thr,
    )


def _thresholds(L2, lo, hi) -> Thresholds:
    return Thresholds(L2.gam[lo:hi], L2.thr_sd[lo:hi], L2.thr_acc[lo:hi])


def _level2_bundle(L2, d, J, ncat, box):
    """The Level2 bundle of a chain (None without level-2 targets)."""
    if not L2.r2:
        return None
    du = d + L2.r2
    exact2 = L2.ncat2 == 1 and J - du - 1 > du - 1
    block2 = fixed_block(L2.Psi, d + L2.cat2_start[0], L2.cat2_k1[0]) if exact2 else None
    cat2 = _cat_spec(
        L2.cat2_start,
        L2.cat2_k1,
        L2.cat2_obs,
        L2.cat_K[ncat:],
        L2.cat_ord_all[ncat:],
        (L2.free2, exact2, block2),
        box,
        _thresholds(L2, ncat, None),
        rows=False,
    )
    return Level2(
        L2.X2,
        L2.Lx2,
        L2.Y2,
        L2.beta2,
        np.empty((L2.r2, J)),
        np.zeros((d, J)),
        L2.perm2,
        L2.pat2_start,
        L2.p2obs,
        L2.n2obs,
        L2.p2mis,
        L2.n2mis,
        cat2,
        level2_work(d, J, L2.p2, L2.r2, L2.n2obs.shape[0]),
    )


def _check_noise(n_norm, n_unif, end_norm, end_unif):
    if n_norm != end_norm or max(n_unif, 1) < end_unif:
        raise RuntimeError(
            "internal error: the pre-drawn random numbers do not match the sampler's layout; "
            "please report this with the model formula."
        )


def _work(dims, blk, n_inc, off, noise):
    """The Work bundle of jomo_iterate (allocated once per chain)."""
    J, p, q, r, p2, r2 = dims
    d, du, pr = q * r, q * r + r2, p * r
    mx = max(du, r, p, p2, 1)
    n_pat = blk["pat_nobs"].shape[0]
    lat = latent_work(max(J, n_inc))
    lat = lat._replace(lw=np.empty((7, max(n_inc, 1))), li=np.empty((1, max(n_inc, 1)), np.int64))
    w1, w2 = np.empty((mx, mx)), np.empty((mx, mx))
    iw = np.empty((20, mx, mx))
    dfs, nrm, unif, chi = noise
    return Work(
        dfs,
        nrm,
        unif,
        chi,
        off,
        w1,
        w2,
        np.empty((mx, mx)),
        np.empty((1, r, r)),
        np.empty((max(d, 1), max(d, 1))),
        np.empty((p, r)),
        np.empty((d, pr, J)),
        np.empty((d, J)),
        np.empty((pr, pr)),
        np.empty(pr),
        np.empty((q, r, J)),
        np.empty((q, r, J)),
        np.empty((q, r, J)),
        np.empty((d, d, J)),
        np.empty((d, J)),
        lat,
        np.empty((r, max(n_inc, 1))),
        np.zeros((max(n_pat, 1), r, r)),
        np.zeros((max(n_pat, 1), r, r)),
        np.empty((du, du)),
        np.empty((du, du)),
        np.empty((p, r)),
        np.empty((p, r)),
        np.empty((r, r)),
        np.empty((r, r)),
        np.empty((r, r)),
        np.empty((r, r)),
        CovWork(iw, w1, w2),
        np.empty((mx, mx)),
        np.zeros(1, np.int64),
    )


def _start(gd, lay: _Layout, S: RunSettings, design, l2, lay2) -> SimpleNamespace:
    """What both samplers start from: the level-1 state, the stored rows (by pattern and cluster)
    and their Rows bundle, the level-2 state, the missing cells. ``design`` = (X, Z, clus, J)."""
    X, Z, clus, J = design
    q = Z.shape[1]
    ncat = len(lay.cat_k1)
    st = _level1_start(gd, lay, S.intercept, X)
    # rows with missing cells or latents: stored by pattern and cluster; the others enter through
    # their cross-products
    blk = row_blocks(X, Z, st.Y, clus, J, st.miss, st.miss.any(axis=1) | (ncat > 0))
    rows = blk["rows"]
    n_inc = len(rows)
    cat_obs = (
        np.ascontiguousarray(st.cat_local[:, rows]) if ncat else np.zeros((0, n_inc), np.int64)
    )
    Psi = (
        np.kron(np.diag(0.5 * np.diag(st.Sigma)), np.eye(q)) if q else np.zeros((0, 0))
    )  # target-major vec(u)
    pos_of_row = np.full(len(X), -1, dtype=np.int64)
    pos_of_row[rows] = np.arange(n_inc)
    pat_start, nmis = blk["pat_start"], blk["pat_nmis"]
    n_cells = int(sum(nmis[g] * (pat_start[g + 1] - pat_start[g]) for g in range(len(nmis))))
    L2 = _level2_start(gd, l2, lay, lay2, st, Psi, q, J)
    rows_b = Rows(
        blk["Xi"],
        blk["Zi"],
        blk["Ci"],
        blk["Seg"],
        blk["Yi"],
        pat_start,
        blk["pat_obs"],
        blk["pat_nobs"],
        blk["pat_mis"],
        nmis,
    )
    return SimpleNamespace(
        st=st,
        blk=blk,
        n_inc=n_inc,
        cat_obs=cat_obs,
        n_cells=n_cells,
        L2=L2,
        rows=rows_b,
        cells=_missing_cells(gd, l2, pos_of_row),
        n_free2=int(np.triu(L2.free2).sum()) if L2.ncat2 else 0,
        n_lat2=int(L2.cat2_k1.sum()) if L2.ncat2 else 0,
    )


def _run_chain(gd, lay: _Layout, S: RunSettings, l2=None, lay2=None) -> Chain:
    """One chain of jomo_iterate (random_L1 = "none"), as the driver's :class:`Chain`."""
    X, Z, clus = gd.X, gd.Z, gd.clus
    if S.single:
        Z = np.zeros((len(X), 0))
        clus = np.zeros(len(X), np.int64)
    N, p = X.shape
    q = Z.shape[1]
    r = lay.r
    J = 1 if S.single else len(gd.cluster_labels)
    ncat = len(lay.cat_k1)
    c = _start(gd, lay, S, (X, Z, clus, J), l2, lay2)
    st, blk, L2, n_inc = c.st, c.blk, c.L2, c.n_inc
    XtX = np.ascontiguousarray(X.T @ X)
    ZtZ, ZtX = design_crossproducts(X, Z, clus, J)
    n_free = int(np.triu(st.free).sum()) if ncat else 0
    r2, p2, du = L2.r2, L2.p2, L2.du
    off, noise = _noise(c, (J, p, q, r, N), n_free, int(lay.cat_k1.sum()))
    shapes = {
        "beta": (p, r),
        "psi": (du, 1 if S.diag_only else du),
        "sigma": (r, 1 if S.diag_only else r),
        "beta2": (p2, r2),
        "gam": L2.gam.shape,
    }
    rng = np.random.default_rng(S.seed)
    accepted = np.zeros(1, np.int64)
    exact1 = ncat == 1 and N - r - 1 > r - 1
    cat = None
    if ncat:
        block1 = fixed_block(st.Sigma, lay.cat_start[0], lay.cat_k1[0]) if exact1 else None
        cat = _cat_spec(
            lay.cat_start,
            lay.cat_k1,
            c.cat_obs,
            L2.cat_K[:ncat],
            L2.cat_ord_all[:ncat],
            (st.free, exact1, block1),
            S.box,
            _thresholds(L2, 0, ncat),
        )
    mom = Moments(
        XtX,
        ZtZ,
        ZtX,
        blk["XtYc"],
        blk["ZtYc"],
        blk["YtYc"],
        blk["XtYi"],
        blk["ZtYi"],
        blk["YtYi"],
        float(N),
    )
    lev2 = _level2_bundle(L2, q * r, J, ncat, S.box)
    prior = Prior(
        np.ascontiguousarray(S.prior["Binv"]),
        np.ascontiguousarray(S.prior.get("Dinv", np.zeros((0, 0)))),
    )
    par = Params(st.beta, st.Sigma, L2.Psi, np.zeros((q, r, J)))
    work = _work((J, p, q, r, p2, r2), blk, n_inc, off, noise)
    Lx = np.ascontiguousarray(
        np.linalg.cholesky(XtX)
    )  # (also the check that X'X is positive definite)
    single = SingleLevel(Lx, np.empty((p, r)), np.empty(p)) if S.single else None

    def advance(n, rec0, ch):
        store = Store(
            ch["beta"], ch["psi"], ch["sigma"], ch["beta2"], ch["gam"], accepted, S.diag_only
        )
        code = jomo_iterate(n, rec0, rng, c.rows, mom, cat, par, prior, lev2, single, store, work)
        return code, int(work.fail_at[0])

    def after_segment(n, burn_in):
        _tune_thresholds(L2.thr_sd, L2.thr_acc, n, burn_in and L2.n_thr)

    # one categorical target at a level (and enough rows / clusters): exact draws there, no MH
    n_mh = (n_free if ncat > 1 or N - r - 1 <= r - 1 else 0) + (
        c.n_free2 if L2.ncat2 > 1 or J - du - 1 <= du - 1 else 0
    )
    return _chain(c, (S, lay, lay2, clus), shapes, advance, after_segment, (accepted, n_mh))


def _noise(c: SimpleNamespace, dims, n_free: int, n_lat: int) -> tuple:
    """The noise offsets of jomo_iterate and its noise buffers (dfs, normals, uniforms,
    chi-squares of one iteration); ``dims`` = (J, p, q, r, N)."""
    J, p, q, r, N = dims
    st, L2, n_inc, n_cells = c.st, c.L2, c.n_inc, c.n_cells
    du, p2, r2 = L2.du, L2.p2, L2.r2
    n_norm, n_unif = jomo_draw_counts(
        (J, p, q, r),
        (n_cells, n_inc, n_lat, n_free),
        (p2, r2, L2.n_cells2, c.n_lat2, c.n_free2, L2.n_thr),
    )
    off = noise_offsets(
        (J, q * r, p, r, du),
        (n_cells, n_lat * n_inc, n_free, st.n_thr),
        (p2 * r2, L2.n_cells2, L2.n_thr - st.n_thr, c.n_free2, c.n_lat2 * J),
    )
    _check_noise(n_norm, n_unif, off.thr1 + off.n_thr1, off.uthr1 + off.n_thr1)
    dfs = np.concatenate([J + du - np.arange(du), N - 1 - np.arange(r)]).astype(float)
    return off, (dfs, np.empty((1, n_norm)), np.empty((1, max(n_unif, 1))), np.empty((1, du + r)))


def _chain(c: SimpleNamespace, context, shapes, advance, after_segment, acceptance) -> Chain:
    """The driver's Chain of either sampler: the missing cells and how to read them, and at the end
    the intercepts back on the data's scale and the Metropolis-Hastings acceptance rate
    (``acceptance`` = (counter, steps per iteration)) as the chain's extra. ``context`` =
    (settings, layout, level-2 layout, cluster of every row)."""
    S, lay, lay2, clus = context
    st, L2 = c.st, c.L2
    accepted, n_mh = acceptance
    ct, cr, cpos = c.cells
    n_total = S.n_burn + S.m_c * S.n_iter

    def current():
        return _imputed_values(
            c.blk["Yi"], L2.Y2, ct, cr, cpos, clus, lay, lay2, st.shift, L2.shift2, L2.gam
        )

    def finish(burn, imp):
        _restore_intercepts(
            (burn, imp),
            st.shift if S.intercept and lay.n_con else None,
            L2.shift2 if L2.r2 else None,
        )
        return accepted[0] / (n_mh * n_total) if n_mh else np.nan

    return Chain(advance, shapes, current, (ct, cr), after_segment=after_segment, finish=finish)


def _work_hr(dims, n_inc, counts, off):
    """The WorkHR bundle of jomo_hr_iterate (allocated once per chain)."""
    J, p, q, r, p2, r2 = dims
    n_thr1, n_free, n_z2, n_u2, n_pat2 = counts
    d, du, pr = q * r, q * r + r2, p * r
    mx = max(du, r, p, pr, p2, 1)
    n = max(n_inc, J, 1)
    lat = latent_work(n)._replace(
        lw=np.empty((7, max(n_inc, 1))), li=np.empty((1, max(n_inc, 1)), np.int64)
    )
    n_z = J * d + du * (du - 1) // 2 + r * (r - 1) // 2 + pr + (off.a - off.cells) + 1
    return WorkHR(
        np.empty((mx, mx)),
        np.empty((mx, mx)),
        np.empty((mx, mx)),
        np.empty((J, r, r)),
        np.empty((max(d, 1), max(d, 1))),
        np.empty((r, max(n_inc, 1))),
        np.zeros((J, p, r)),
        np.zeros((J, q, r)),
        np.zeros((J, r, r)),
        np.zeros((J, p, r)),
        np.zeros((J, r, r)),
        np.empty((d, J)),
        np.empty((pr, pr)),
        np.empty(pr),
        np.empty((r, r)),
        np.zeros(1),
        np.empty((r, r)),
        np.empty(r),
        np.empty(max(du, r, 1)),
        np.empty(max(r * (r - 1) // 2, 1)),
        np.empty((d, d)),
        np.empty(d),
        lat,
        np.empty(max(n_thr1, 1)),
        np.empty(max(n_thr1, 1)),
        np.empty(max(n_free, 1)),
        np.empty(max(n_free, 1)),
        np.empty((du, du)),
        np.empty(max(n_z2, 1)),
        np.empty(max(n_u2, 1)),
        np.empty((20, r, r)),
        np.empty(n_z),
        np.empty((du, du)),
        np.zeros((d, J)),
        off,
        np.zeros(1, np.int64),
    )


def _cluster_moments(X, Z, Y, clus, J, comp):
    """Per-cluster cross-products (cluster-major) of a random_L1 chain."""
    p, q, r = X.shape[1], Z.shape[1], Y.shape[1]
    XtYc, ZtYc, YtYc = np.zeros((J, p, r)), np.zeros((J, q, r)), np.zeros((J, r, r))
    cluster_rows_crossproducts(
        np.ascontiguousarray(X[comp].T),
        np.ascontiguousarray(Z[comp].T),
        np.ascontiguousarray(Y[comp].T),
        clus[comp],
        XtYc,
        ZtYc,
        YtYc,
    )
    nj = np.bincount(clus, minlength=J).astype(np.float64)
    XtXj = np.empty((J, p, p))
    for k in range(p):  # set-up only (p^2 bincounts)
        for k2 in range(p):
            XtXj[:, k, k2] = np.bincount(clus, weights=X[:, k] * X[:, k2], minlength=J)
    ZtZ, ZtX = (
        np.ascontiguousarray(np.moveaxis(x, -1, 0)) for x in design_crossproducts(X, Z, clus, J)
    )
    return ClusterMoments(nj, XtXj, ZtZ, ZtX, XtYc, ZtYc, YtYc)


def _run_chain_hr(gd, lay: _Layout, S: RunSettings, l2=None, lay2=None) -> Chain:
    """One chain with cluster-specific level-1 covariance matrices (random_L1 = "mean" / "full"),
    as the driver's :class:`Chain`."""
    X, Z, clus = gd.X, gd.Z, gd.clus
    p = X.shape[1]
    q = Z.shape[1]
    r = lay.r
    J = len(gd.cluster_labels)
    ncat = len(lay.cat_k1)
    c = _start(gd, lay, S, (X, Z, clus, J), l2, lay2)
    st, blk, L2, n_inc, n_cells = c.st, c.blk, c.L2, c.n_inc, c.n_cells
    mom = _cluster_moments(X, Z, st.Y, clus, J, blk["comp"])
    a0 = r + 2.0
    SigJ = np.ascontiguousarray(np.repeat(st.Sigma[None], J, axis=0))
    free = st.free if ncat else np.zeros((r, r), dtype=bool)
    n_free = int(np.triu(free).sum())
    du, r2, d = L2.du, L2.r2, q * r
    n_thr2 = L2.n_thr - st.n_thr
    o_psi = J * d
    o_lam = o_psi + du * (du - 1) // 2
    o_beta = o_lam + r * (r - 1) // 2
    off = OffsetsHR(
        0,
        o_psi,
        o_lam,
        o_beta,
        o_beta + p * r,
        o_beta + p * r + n_cells,
        st.n_thr,
        n_free if ncat else 0,
        L2.p2 * r2,
        L2.n_cells2,
        n_thr2,
        c.n_free2,
        c.n_lat2 * J,
    )
    shapes = {
        "beta": (p, r),
        "psi": (du, 1 if S.diag_only else du),
        "sigma": ((r if S.mode == 0 else r * J), 1 if S.diag_only else r),
        "gam": L2.gam.shape,
        "beta2": (L2.p2, r2),
        "a": (),
    }
    rng = np.random.default_rng(S.seed)
    mh_acc = np.zeros(1, np.int64)
    cat = None
    if ncat:
        block1 = fixed_block(SigJ[0], lay.cat_start[0], lay.cat_k1[0]) if ncat == 1 else None
        cat = _cat_spec(
            lay.cat_start,
            lay.cat_k1,
            c.cat_obs,
            L2.cat_K[:ncat],
            L2.cat_ord_all[:ncat],
            (free, ncat == 1, block1),
            S.box,
            _thresholds(L2, 0, ncat),
        )
    lev2 = _level2_bundle(L2, d, J, ncat, S.box)
    if (
        lev2 is not None
    ):  # jomo2hr: Metropolis-Hastings on Psi with categorical level-2 targets, never exact
        lev2 = lev2._replace(cat=lev2.cat._replace(exact=False, block=None))
    par = ParamsHR(
        st.beta,
        SigJ,
        L2.Psi,
        st.Sigma * (a0 - r - 1.0),
        np.zeros((q, r, J)),
        np.array([a0]),
        np.array([0.3]),
        np.zeros(1, np.int64),
    )
    prior = PriorHR(
        np.linalg.inv(S.prior["Binv"]), np.ascontiguousarray(S.prior["Dinv"]), float(S.prior["a"])
    )
    n_z2 = L2.p2 * r2 + L2.n_cells2 + n_thr2 + c.n_free2 if r2 else 0
    n_u2 = c.n_lat2 * J + n_thr2 + c.n_free2 if r2 else 0
    work = _work_hr(
        (J, p, q, r, L2.p2, r2), n_inc, (st.n_thr, n_free, n_z2, n_u2, L2.n2obs.shape[0]), off
    )

    def advance(n, rec0, ch):
        store = StoreHR(
            ch["beta"], ch["psi"], ch["sigma"], ch["beta2"], ch["gam"], ch["a"], mh_acc, S.mode
        )
        code = jomo_hr_iterate(n, rec0, rng, c.rows, mom, cat, par, prior, lev2, store, work)
        return code, int(work.fail_at[0])

    def after_segment(n, burn_in):
        if burn_in:  # burn-in only: tune the proposals of the degrees of freedom and the thresholds
            rate = par.a_acc[0] / n
            par.a_sd[0] *= 0.7 if rate < 0.25 else (1.4 if rate > 0.55 else 1.0)
        _tune_thresholds(L2.thr_sd, L2.thr_acc, n, burn_in and L2.n_thr)
        par.a_acc[0] = 0

    n_mh = (
        n_free * J if ncat > 1 else 0
    ) + c.n_free2  # one level-1 categorical target: exact draws of Sigma_j
    return _chain(c, (S, lay, lay2, clus), shapes, advance, after_segment, (mh_acc, n_mh))


def _missing_cells(gd, l2, pos_of_row):
    """Missing cells (data column, row) of a group: the level-1 targets' (continuous, then
    categorical), then the level-2 targets' (each row of a cluster whose value is missing), with
    the position of each row in the sampler's block."""
    cells = np.argwhere(np.isnan(gd.Y).T)
    ct, cr = cells[:, 0], cells[:, 1]
    if l2 is not None:
        cells2 = np.argwhere(np.isnan(l2["Y"][gd.rows]).T)
        ct = np.concatenate([ct, cells2[:, 0] + gd.Y.shape[1]])
        cr = np.concatenate([cr, cells2[:, 1]])
    return ct, cr, pos_of_row[cr]


def _imputed_values(
    Yi, Y2, ct, cr, cpos, clus, lay: _Layout, lay2, shift, shift2, gam
) -> np.ndarray:
    """The current values of the missing cells: level-1 ones from the stored rows, level-2 ones
    from their cluster's values (categories from the latents, see :func:`_current_values`)."""
    n1 = lay.n_con + len(lay.cat_k1)
    out = np.empty(len(ct))
    sel1 = ct < n1
    out[sel1] = _current_values(Yi, ct[sel1], cpos[sel1], lay, shift, gam)
    if lay2 is not None:
        sel2 = ~sel1
        out[sel2] = _current_values(
            Y2, ct[sel2] - n1, clus[cr[sel2]], lay2, shift2, gam[len(lay.cat_k1) :]
        )
    return out


def _tune_thresholds(thr_sd, thr_acc, k, adapt) -> None:
    """After k iterations: during burn-in (``adapt``) tune the threshold proposals towards an
    acceptance of about 0.45; then reset the acceptance counts."""
    if adapt:
        rate = thr_acc / k
        thr_sd[:] = np.where(rate < 0.3, thr_sd * 0.7, np.where(rate > 0.6, thr_sd * 1.4, thr_sd))
    thr_acc[:] = 0


def _restore_intercepts(chains, shift, shift2) -> None:
    """Targets were centred internally: put the intercept rows of beta (and beta2) back on the
    data's scale (``None``: nothing to restore)."""
    for ch in chains:
        if shift is not None:
            ch["beta"][0] += shift[:, None]
        if shift2 is not None:
            ch["beta2"][0] += shift2[:, None]


def _current_values(Yi, ct, cpos, lay: _Layout, shift, gam) -> np.ndarray:
    """Values of the missing cells: continuous draws, or category codes from the latents."""
    out = np.empty(len(ct))
    nc = lay.n_con
    con = ct < nc
    out[con] = Yi[ct[con], cpos[con]] + shift[ct[con]]
    for v in range(len(lay.cat_k1)):
        sel = np.flatnonzero(ct == nc + v)
        if not len(sel):
            continue
        c0, k1 = lay.cat_start[v], lay.cat_k1[v]
        if lay.cat_ord[v]:  # level = number of thresholds below the latent
            K = len(lay.levels[v])
            local = np.searchsorted(gam[v, 1:K], Yi[c0, cpos[sel]], side="left")
            out[sel] = lay.levels[v][local]
            continue
        lat = Yi[c0 : c0 + k1][:, cpos[sel]]
        top = lat.max(axis=0)
        local = np.where(top > 0, lat.argmax(axis=0), k1)
        out[sel] = lay.levels[v][local]
    return out
