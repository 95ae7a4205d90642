"""Arranging rows by missingness pattern (shared by the samplers)."""
from __future__ import annotations

import numpy as np

__all__ = ["pattern_layout"]


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
    pat_start = np.concatenate([[0], np.cumsum(np.bincount(pat, minlength=len(uniq)))]).astype(np.int64)
    pmask = ((uniq[:, None] >> np.arange(r)) & 1).astype(bool)
    n_pat = len(uniq)
    pat_obs = np.zeros((n_pat, r), np.int64)
    pat_mis = np.zeros((n_pat, r), np.int64)
    nobs = np.zeros(n_pat, np.int64)
    nmis = np.zeros(n_pat, np.int64)
    for g in range(n_pat):  # loop over patterns (at most 2^r, set-up only)
        o, mm = np.flatnonzero(~pmask[g]), np.flatnonzero(pmask[g])
        pat_obs[g, :len(o)], pat_mis[g, :len(mm)] = o, mm
        nobs[g], nmis[g] = len(o), len(mm)
    return rows, pat_start, pat_obs, nobs, pat_mis, nmis
