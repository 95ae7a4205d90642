"""Arranging rows by missingness pattern (shared by the samplers)."""

from __future__ import annotations

import numpy as np

from ._gibbs import cluster_runs

__all__ = ["design_crossproducts", "pattern_layout", "row_blocks", "rows_crossproducts_np"]


def pattern_layout(miss: np.ndarray, rows: np.ndarray | None = None):
    """Rows sorted by missingness pattern, with each pattern's observed/missing targets.

    ``rows`` (boolean mask) selects the rows to arrange; default: the incomplete ones.
    Returns (rows, pat_start, pat_obs, pat_nobs, pat_mis, pat_nmis): the row positions ordered by
    pattern (stable); pattern g owns rows[pat_start[g]:pat_start[g+1]].
    """
    r = miss.shape[1]
    inc = np.flatnonzero(miss.any(axis=1) if rows is None else rows)
    codes = (miss[inc] * (1 << np.arange(r))).sum(axis=1)
    uniq, pat = np.unique(codes, return_inverse=True)
    order = np.argsort(pat, kind="stable")
    rows = inc[order].astype(np.int64)
    pat_start = np.concatenate([[0], np.cumsum(np.bincount(pat, minlength=len(uniq)))]).astype(
        np.int64
    )
    pmask = ((uniq[:, None] >> np.arange(r)) & 1).astype(bool)
    n_pat = len(uniq)
    pat_obs = np.zeros((n_pat, r), np.int64)
    pat_mis = np.zeros((n_pat, r), np.int64)
    nobs = np.zeros(n_pat, np.int64)
    nmis = np.zeros(n_pat, np.int64)
    for g in range(n_pat):  # loop over patterns (at most 2^r, set-up only)
        o, mm = np.flatnonzero(~pmask[g]), np.flatnonzero(pmask[g])
        pat_obs[g, : len(o)], pat_mis[g, : len(mm)] = o, mm
        nobs[g], nmis[g] = len(o), len(mm)
    return rows, pat_start, pat_obs, nobs, pat_mis, nmis


def row_blocks(X, Z, Y, clus, J, miss, rows_mask=None):
    """The samplers' data layout: rows outside ``rows_mask`` (default: the complete rows) enter
    through constant cross-products; the others are stored transposed, grouped by pattern and,
    within a pattern, by cluster (stable), so that a cluster's rows of one pattern are contiguous.

    Returns a dict with ``rows``, ``pat_start``, ``pat_obs``, ``pat_nobs``, ``pat_mis``,
    ``pat_nmis`` (see :func:`pattern_layout`), the other rows ``comp`` (ordered by cluster), their
    constant ``XtYc``, ``ZtYc``, ``YtYc``, the blocks ``Xi``, ``Zi``, ``Yi``, ``Ci``, the runs
    ``Seg`` of equal cluster codes in ``Ci`` and the blocks' current cross-products ``XtYi``,
    ``ZtYi``, ``YtYi``.
    """
    p, q, r = X.shape[1], Z.shape[1], Y.shape[1]
    keep = miss.any(axis=1) if rows_mask is None else rows_mask
    rows, pat_start, pobs, nobs, pmis, nmis = pattern_layout(miss, keep)
    pat_of = np.repeat(np.arange(len(nobs)), np.diff(pat_start))
    rows = rows[np.lexsort((clus[rows], pat_of))]
    comp = np.flatnonzero(~keep)
    comp = comp[np.argsort(clus[comp], kind="stable")]
    out = dict(
        rows=rows,
        pat_start=pat_start,
        pat_obs=pobs,
        pat_nobs=nobs,
        pat_mis=pmis,
        pat_nmis=nmis,
        comp=comp,
    )
    out["XtYc"], out["ZtYc"], out["YtYc"] = np.zeros((p, r)), np.zeros((q, r, J)), np.zeros((r, r))
    rows_crossproducts_np(
        np.ascontiguousarray(X[comp].T),
        np.ascontiguousarray(Z[comp].T),
        np.ascontiguousarray(Y[comp].T),
        clus[comp],
        cluster_runs(clus[comp]),
        out["XtYc"],
        out["ZtYc"],
        out["YtYc"],
    )
    out["Xi"] = np.ascontiguousarray(X[rows].T)
    out["Zi"] = np.ascontiguousarray(Z[rows].T)
    out["Yi"] = np.ascontiguousarray(Y[rows].T)
    out["Ci"] = np.ascontiguousarray(clus[rows])
    out["Seg"] = cluster_runs(out["Ci"])
    out["XtYi"], out["ZtYi"], out["YtYi"] = np.zeros((p, r)), np.zeros((q, r, J)), np.zeros((r, r))
    rows_crossproducts_np(
        out["Xi"],
        out["Zi"],
        out["Yi"],
        out["Ci"],
        out["Seg"],
        out["XtYi"],
        out["ZtYi"],
        out["YtYi"],
    )
    return out


def design_crossproducts(X, Z, clus, J):
    """Fixed per-cluster cross-products Z_j'Z_j (q, q, J) and Z_j'X_j (q, p, J), by NumPy (set-up
    only; sums in row order, so equal to :func:`cluster_crossproducts` bit for bit, without
    compiling a kernel for a one-off computation)."""
    q, p = Z.shape[1], X.shape[1]
    ZtZ = np.empty((q, q, J))
    ZtX = np.empty((q, p, J))
    for a in range(q):  # loops over columns (q^2 + q p bincounts), not rows
        for b in range(q):
            ZtZ[a, b] = np.bincount(clus, weights=Z[:, a] * Z[:, b], minlength=J)
        for k in range(p):
            ZtX[a, k] = np.bincount(clus, weights=Z[:, a] * X[:, k], minlength=J)
    return ZtZ, ZtX


def _dot_np(x, y) -> float:
    """:func:`~._gibbs._dot` by NumPy, bit for bit: four accumulators over the elements i = k mod 4
    (the tail after the last multiple of 4 added to the first), each summed in order from 0.0
    (``cumsum`` is sequential), then (s0 + s1) + (s2 + s3)."""
    prod = x * y
    n = prod.shape[0]
    n4 = n - n % 4
    s = [
        np.cumsum(np.concatenate([[0.0], prod[k:n4:4], prod[n4:] if k == 0 else []]))[-1]
        for k in range(4)
    ]
    return (s[0] + s[1]) + (s[2] + s[3])


def rows_crossproducts_np(Xt, Zt, Yt, C, seg, XtY, ZtY, YtY) -> None:
    """:func:`~._gibbs.rows_crossproducts` by NumPy, bit for bit (the same sums in the same order:
    ``np.bincount`` adds its weights in order), for the set-up: calling the kernel from Python
    would compile a second copy of it (its callers' copy has no entry point from Python)."""
    p, q, r = Xt.shape[0], Zt.shape[0], Yt.shape[0]
    for t in range(r):  # loops over columns, not rows
        for k in range(p):
            XtY[k, t] = _dot_np(Xt[k], Yt[t])
        for u in range(t + 1):
            YtY[t, u] = YtY[u, t] = _dot_np(Yt[t], Yt[u])
    J = ZtY.shape[2]
    n_seg = seg.shape[0] - 1
    n = Yt.shape[1]
    if n < 4 * n_seg:  # the kernel's short-run branch: one running sum per cluster, row by row
        for a in range(q):
            for t in range(r):
                ZtY[a, t] = np.bincount(C, weights=Zt[a] * Yt[t], minlength=J)
        return
    # long runs: per run, the rows at even and at odd offsets from its start summed apart, their
    # sum added to the run's cluster (runs in order)
    run = np.repeat(np.arange(n_seg), np.diff(seg))
    half = 2 * run + (np.arange(n) - seg[run]) % 2
    for a in range(q):
        for t in range(r):
            v = np.bincount(half, weights=Zt[a] * Yt[t], minlength=2 * n_seg)
            ZtY[a, t] = np.bincount(C[seg[:-1]], weights=v[0::2] + v[1::2], minlength=J)
