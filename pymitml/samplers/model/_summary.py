"""Blimp-style posterior summaries of the model-based sampler's draws.

PSR (potential scale reduction): Gelman & Rubin's statistic without the df correction,
sqrt(((n-1)/n W + B/n) / W), over the chains with each chain split in halves (so one chain
works too). N_Eff: effective sample size from the chains' pooled autocorrelations summed over
Geyer's initial positive sequence.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["effective_size", "posterior_table", "psr", "psr_by_segment"]


def psr(draws: np.ndarray) -> np.ndarray:
    """Split-chain PSR of draws (npar, iterations, chains) -> (npar,)."""
    npar, n, C = draws.shape
    h = n // 2
    if h < 2:
        return np.full(npar, np.nan)
    seq = np.concatenate([draws[:, :h, :], draws[:, n - h :, :]], axis=2)  # (npar, h, 2C)
    means = seq.mean(1)
    w = seq.var(1, ddof=1).mean(1)
    b_n = means.var(1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.sqrt(((h - 1) / h * w + b_n) / w)
    return np.where((w == 0) & (b_n == 0), 1.0, r)


def psr_by_segment(burn: np.ndarray, names: list[str], n_segments: int = 20) -> pd.DataFrame:
    """Blimp's burn-in table: at each checkpoint k/n_segments of the burn-in, the highest PSR
    over the parameters on the second half of the iterations so far, and its parameter."""
    npar, n, C = burn.shape
    rows = []
    for k in range(1, n_segments + 1):
        it = int(round(k * n / n_segments))
        if it < 8:
            continue
        r = psr(burn[:, it // 2 : it, :])
        if np.all(np.isnan(r)):
            continue
        i = int(np.nanargmax(r))
        rows.append((it, float(r[i]), names[i]))
    return pd.DataFrame(rows, columns=["Iteration", "Highest PSR", "Parameter"]).set_index(
        "Iteration"
    )


def effective_size(draws: np.ndarray) -> np.ndarray:
    """Effective sample size of (npar, iterations, chains) draws (Geyer's initial positive
    sequence on the chain-averaged autocovariances)."""
    npar, n, C = draws.shape
    if n < 4:
        return np.full(npar, float(n * C))
    x = draws - draws.mean(1, keepdims=True)
    f = np.fft.rfft(x, n=2 * n, axis=1)
    acov = np.fft.irfft(f * np.conj(f), axis=1)[:, :n, :] / n  # (npar, n, C)
    acov = acov.mean(2)
    var0 = acov[:, 0]
    out = np.empty(npar)
    for a in range(npar):  # per parameter (summaries, not a hot path)
        if var0[a] <= 0:
            out[a] = n * C
            continue
        rho = acov[a] / var0[a]
        tau = -1.0
        for t in range(0, n - 1, 2):
            pair = rho[t] + rho[t + 1]
            if pair < 0:
                break
            tau += 2 * pair
        out[a] = n * C / max(tau, 1e-12)
    return out


def posterior_table(draws: np.ndarray, index: pd.MultiIndex) -> pd.DataFrame:
    """Median, StdDev, 2.5%, 97.5%, PSR, N_Eff of (npar, iterations, chains) draws."""
    flat = draws.reshape(draws.shape[0], -1)
    q = np.quantile(flat, [0.5, 0.025, 0.975], axis=1)
    return pd.DataFrame(
        {
            "Median": q[0],
            "StdDev": flat.std(1, ddof=1) if flat.shape[1] > 1 else np.nan,
            "2.5%": q[1],
            "97.5%": q[2],
            "PSR": psr(draws),
            "N_Eff": effective_size(draws),
        },
        index=index,
    )
