"""Rhat by iteration: the potential scale reduction over growing windows of the chains."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._statistics import _psrf_classic
from ._summary import _imp_chains
from ._tables import BLOCKS, _as_chains, _block_series, _labels

# ---------------------------------------------------------------------------------------------
# potential scale reduction by iteration (Blimp's burn-in PSR table)
# ---------------------------------------------------------------------------------------------


def _full_chains(x: Any) -> tuple[dict, int]:
    """dict block -> (rows, cols, iterations, groups, chains) of burn-in + imputation phase, and
    the number of burn-in iterations."""
    if isinstance(x, Mapping):
        return {b: _as_chains(v, b, None) for b, v in x.items() if v is not None and b in BLOCKS}, 0
    burn, _ = _imp_chains(x, "burnin")
    imp_, _ = _imp_chains(x, "imputation")
    out = {}
    nb = 0
    for b in BLOCKS:
        if b in imp_:
            a1 = _as_chains(imp_[b], b, None)
            if b in burn:
                a0 = _as_chains(burn[b], b, None)
                nb = a0.shape[2]
                a1 = np.concatenate([a0, a1], axis=2)
            out[b] = a1
    return out, nb


def psr_by_iteration(
    x: Any, checkpoints: Any = None, n_points: int = 20, param_names: Mapping | None = None
) -> pd.DataFrame:
    """Largest potential scale reduction at increasing iteration counts (Blimp's burn-in table).

    At checkpoint t the draws ``t//2 + 1 .. t`` of each chain (the first half is discarded as
    burn-in) are split into two halves, and the split-chain PSR (Gelman et al. 2013, without the
    df correction) is computed for every parameter over all halves of all chains.

    Parameters
    ----------
    x : ImputationResult (burn-in and imputation phase are joined) or dict block -> array
        (rows, cols, iterations, groups[, chains]).
    checkpoints : sequence of int, optional
        Iteration counts; default ``n_points`` counts evenly spaced up to the total.
    n_points : int, default 20
    param_names : dict, optional; labels (taken from ``x.param_names`` for an ImputationResult).

    Returns
    -------
    DataFrame with columns ``from, to`` (1-based iterations used), ``max_psr``, ``parameter``
    (label of the worst parameter), ``block``, and one column per block with that block's largest
    PSR.
    """
    chains, _ = _full_chains(x)
    if not chains:
        raise ValueError("`x` has no parameter blocks to compute PSR for.")
    if param_names is None and not isinstance(x, Mapping):
        param_names = getattr(x, "param_names", None)
    total = next(iter(chains.values())).shape[2]
    if checkpoints is None:
        if not isinstance(n_points, (int, np.integer)) or n_points < 1:
            raise ValueError(f"`n_points` must be a positive integer; got {n_points!r}.")
        checkpoints = np.unique(np.linspace(total / n_points, total, n_points).round().astype(int))
        checkpoints = [c for c in checkpoints if c >= 8]
        if not checkpoints:
            raise ValueError(f"`x` has {total} iterations; the PSR by iteration needs at least 8.")
    cps = [int(c) for c in checkpoints]
    bad = [c for c in cps if not 8 <= c <= total]
    if bad:
        raise ValueError(
            f"`checkpoints` must lie between 8 and the {total} iterations run; got {bad}."
        )
    series = {}
    for b, a in chains.items():
        i, j, g, s = _block_series(a, b)
        series[b] = (s, _labels(b, (param_names or {}).get(b), i, j), g)
    rows = []
    for t in cps:
        start = t // 2
        h = (t - start) // 2
        rec: dict[str, Any] = {"from": start + 1, "to": t}
        best, lab, blk = -np.inf, None, None
        for b, (s, labels, g) in series.items():
            w = s[:, :, start : start + 2 * h]
            seq = w.reshape(w.shape[0], w.shape[1] * 2, h)
            r = _psrf_classic(seq)
            r = np.where(np.all(np.isnan(w), axis=(1, 2)), np.nan, r)
            if np.all(np.isnan(r)):
                rec[b] = np.nan
                continue
            k = int(np.nanargmax(r))
            rec[b] = float(r[k])
            if r[k] > best:
                best, lab, blk = (
                    float(r[k]),
                    labels[k] + ("" if len(set(g)) == 1 else f" (group {g[k]})"),
                    b,
                )
        rec.update(max_psr=best, parameter=lab, block=blk)
        rows.append(rec)
    cols = ["from", "to", "max_psr", "parameter", "block"] + [b for b in BLOCKS if b in series]
    return pd.DataFrame(rows)[cols]
