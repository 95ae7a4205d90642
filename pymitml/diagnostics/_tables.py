"""The chains of one imputation as a table of named parameters (mitml's summary layout)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from ._statistics import gelman_rubin, goodness_of_approximation, lag_autocorrelation

#: parameter blocks in mitml's order
BLOCKS = ("beta", "beta2", "psi", "psi3", "sigma", "mean", "var")
#: Rhat above this is flagged in printouts
RHAT_THRESHOLD = 1.05
_TITLES = {
    "beta": "Beta",
    "beta2": "Beta2",
    "psi": "Psi",
    "psi3": "Psi3",
    "sigma": "Sigma",
    "mean": "Mean",
    "var": "Var",
}

# ---------------------------------------------------------------------------------------------
# per-parameter tables over a dict of blocks
# ---------------------------------------------------------------------------------------------


def _as_chains(arr: Any, block: str, chains_axis: int | None) -> np.ndarray:
    """A (rows, cols, iterations, groups, chains) float array."""
    a = np.asarray(arr, dtype=np.float64)
    if chains_axis is not None:
        if a.ndim != 5:
            raise ValueError(
                f"`par['{block}']` must have 5 axes with `chains_axis`; got shape {a.shape}."
            )
        a = np.moveaxis(a, chains_axis, 4)
    elif a.ndim == 4:
        a = a[..., None]
    elif a.ndim != 5:
        raise ValueError(
            f"`par['{block}']` must be (rows, cols, iterations, groups) or with a trailing chains "
            f"axis; got shape {a.shape}."
        )
    return a


def _labels(block: str, names: tuple | None, i: np.ndarray, j: np.ndarray) -> list[str]:
    rn, cn = (list(names[0]), list(names[1])) if names else ([], [])

    def name(seq, k):
        return str(seq[k]) if k < len(seq) else None

    title = _TITLES.get(block, block)
    out = []
    for a, b in zip(i.tolist(), j.tolist()):
        r_, c_ = name(rn, a), name(cn, b)
        head = f"{title} [{a + 1},{b + 1}]"
        if r_ is None or c_ is None:
            out.append(head)
        elif block in ("beta", "beta2"):
            out.append(f"{head}: {c_} ON {r_}")
        elif block in ("mean", "var"):  # chained equations: chainMean / chainVar of a variable
            out.append(f"{head}: {r_}")
        else:
            out.append(f"{head}: {r_} WITH {c_}")
    return out


def _block_series(a: np.ndarray, block: str):
    """(i, j, g, series (P, chains, iterations)) in mitml's order (row fastest, then column,
    then group), keeping the lower triangle of psi and of each stacked sigma matrix."""
    R_, K, _, G, _ = a.shape
    i, j, g = (
        v.ravel(order="F")
        for v in np.meshgrid(np.arange(R_), np.arange(K), np.arange(G), indexing="ij")
    )
    if block == "psi":
        keep = j <= i
    elif block == "sigma":
        keep = j <= i % K
    else:
        keep = np.ones(i.shape, bool)
    i, j, g = i[keep], j[keep], g[keep]
    series = np.moveaxis(a[i, j, :, g, :], 1, 2)  # (P, C, T)
    return i, j, g, series


def parameter_table(
    par: Mapping[str, Any],
    n_iter: int,
    n_Rhat: int | None = 3,
    goodness_of_appr: bool = True,
    autocorrelation: bool = True,
    chains_axis: int | None = None,
    param_names: Mapping | None = None,
    group_labels: list | None = None,
) -> pd.DataFrame:
    """One row per parameter with the requested statistics (mitml's ``conv`` tables, stacked).

    Columns: ``block, row, col, group, parameter`` (0-based positions in the arrays, the group
    label, a readable label with mitml's 1-based ``[row,col]``), then ``Rhat`` (each chain split
    into ``n_Rhat`` segments; with several chains all segments of all chains are the sequences), ``Rhat_chains`` (between
    chains; several chains only), ``SDprop`` and ``n_eff`` (goodness of approximation), and
    ``lag-1, lag-k, lag-2k`` (autocorrelations at 1, ``n_iter``, ``2 n_iter``; averaged over
    chains). Rows where Rhat or SDprop is undefined (``nan``) are left out, as mitml does.
    See :func:`summarize` for the arguments.
    """
    frames = []
    for block in BLOCKS:
        if block not in par or par[block] is None:
            continue
        a = _as_chains(par[block], block, chains_axis)
        i, j, g, s = _block_series(a, block)
        P, C, _ = s.shape
        cols: dict[str, Any] = {
            "block": block,
            "row": i,
            "col": j,
            "group": [group_labels[k] if group_labels else k for k in g],
        }
        cols["parameter"] = _labels(block, (param_names or {}).get(block), i, j)
        allnan = np.all(np.isnan(s), axis=(1, 2))
        checks = []
        if n_Rhat is not None:
            cols["Rhat"] = np.asarray(gelman_rubin(s, n_Rhat, chains_axis=1)).reshape(P)
            checks.append("Rhat")
            if C > 1:
                cols["Rhat_chains"] = np.asarray(gelman_rubin(s, 1, chains_axis=1)).reshape(P)
        if goodness_of_appr:
            sdp, neff = goodness_of_approximation(s, chains_axis=1)
            cols["SDprop"], cols["n_eff"] = sdp.reshape(P), neff.reshape(P)
            checks.append("SDprop")
        if autocorrelation:
            cols["lag-1"] = np.asarray(lag_autocorrelation(s, 1)).mean(1)
            cols["lag-k"] = np.asarray(lag_autocorrelation(s, n_iter, smooth=2)).mean(1)
            cols["lag-2k"] = np.asarray(lag_autocorrelation(s, 2 * n_iter, smooth=2)).mean(1)
        df = pd.DataFrame(cols)
        keep = ~allnan
        for c in checks:
            keep &= ~np.isnan(df[c].to_numpy())
        frames.append(df[keep])
    if not frames:
        raise ValueError(f"`par` has none of the blocks {list(BLOCKS)}; got keys {list(par)}.")
    return pd.concat(frames, ignore_index=True)
