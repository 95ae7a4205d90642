"""Convergence diagnostics of imputation chains (mitml's ``summary.mitml`` and more).

Every statistic works on plain arrays laid out like mitml's ``par.imputation``:
``(rows, cols, iterations, groups)`` or, with several chains, ``(rows, cols, iterations, groups,
chains)``. Nothing here knows how the sampler works.

Statistics (mitml's definitions, checked against R to 1e-8 in tests/test_diagnostics.py):

* potential scale reduction :math:`\\hat R` (Gelman & Rubin 1992, with the degrees-of-freedom
  correction) on the imputation phase of one chain split into ``n_Rhat`` segments of equal length
  (the last ``iterations mod n_Rhat`` draws are left out), and across chains when several ran;
* autocorrelation at lag 1, lag ``n_iter`` and ``2 n_iter`` (the two longer lags smoothed over
  the lags ``k-2..k+2`` with normal weights, sd 0.5);
* goodness of approximation: the Monte Carlo standard error from an autoregressive spectral
  estimate at frequency zero (Yule-Walker AR model, order by AIC) divided by the posterior SD;
* the Monte Carlo standard error by batch means (:func:`mcse`), to compare samplers.
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._frame import as_pandas

__all__ = [
    "BLOCKS",
    "RHAT_THRESHOLD",
    "ChainSummary",
    "acf",
    "gelman_rubin",
    "goodness_of_approximation",
    "imputation_summary",
    "lag_autocorrelation",
    "mcse",
    "moving_average",
    "parameter_table",
    "psr_by_iteration",
    "summarize",
]

#: parameter blocks in mitml's order
BLOCKS = ("beta", "beta2", "psi", "sigma")
#: Rhat above this is flagged in printouts
RHAT_THRESHOLD = 1.05
_TITLES = {"beta": "Beta", "beta2": "Beta2", "psi": "Psi", "sigma": "Sigma"}


# ---------------------------------------------------------------------------------------------
# single statistics, vectorised over leading axes; the chain runs along the last axis
# ---------------------------------------------------------------------------------------------

def _constant(a: np.ndarray, axes=(-1,)) -> np.ndarray:
    """True where every draw along ``axes`` equals the first (exactly, as R's arithmetic on a
    constant chain gives zero variance)."""
    first = a[(...,) + (slice(0, 1),) * len(axes)] if axes else a
    return np.all(a == first, axis=axes)


def _cov(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sample covariance (n - 1 denominator) along the last axis."""
    n = a.shape[-1]
    da = a - a.mean(-1, keepdims=True)
    db = b - b.mean(-1, keepdims=True)
    return (da * db).sum(-1) / (n - 1)


def _psrf_sequences(seq: np.ndarray) -> np.ndarray:
    """Gelman-Rubin statistic of ``seq`` with shape (..., m sequences, n draws).

    With :math:`\\bar x_s, s^2_s` the sequence means and variances,
    :math:`B/n = \\mathrm{var}(\\bar x_s)`, :math:`W = \\mathrm{mean}(s^2_s)`,
    :math:`\\hat V = \\tfrac{n-1}{n} W + B/n + B/(mn)`, the variance of :math:`\\hat V` estimated
    from the sequences, :math:`d = 2\\hat V^2/\\widehat{\\mathrm{var}}(\\hat V)` and
    :math:`\\hat R = \\sqrt{(\\hat V / W)\\, d/(d-2)}`; 1 when every sequence is constant at one
    value.
    """
    m, n = seq.shape[-2], seq.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        mns = seq.mean(-1)
        vrs = seq.var(-1, ddof=1)
        b_n = mns.var(-1, ddof=1)
        w = vrs.mean(-1)
        muhat = seq.mean((-2, -1))
        v_hat = (n - 1) / n * w + b_n + b_n / m
        var_v = (((n - 1) / n) ** 2 / m * vrs.var(-1, ddof=1)
                 + ((m + 1) / (m * n)) ** 2 * 2 / (m - 1) * (b_n * n) ** 2
                 + 2 * ((m + 1) * (n - 1) / (m * n ** 2)) * (n / m)
                 * (_cov(vrs, mns ** 2) - 2 * muhat * _cov(vrs, mns)))
        df = 2 * v_hat ** 2 / var_v
        rhat = np.sqrt((v_hat / w) * df / (df - 2))
    const = ((b_n == 0) & np.all(vrs == 0, axis=-1)) | _constant(seq, (-2, -1))
    return np.where(const, 1.0, rhat)


def gelman_rubin(x: Any, n_segments: int = 3, chains_axis: int | None = None) -> np.ndarray | float:
    """Potential scale reduction as mitml computes it (``.GelmanRubin``).

    Parameters
    ----------
    x : array (..., iterations), or (..., chains, iterations) with ``chains_axis``.
        The draws of one parameter per leading index; the chain runs along the last axis.
    n_segments : int, default 3
        Each chain is cut into this many consecutive segments of ``iterations // n_segments``
        draws (the last ``iterations % n_segments`` draws are left out, as in mitml). With one
        segment per chain and several chains this is the classic between-chain statistic.
    chains_axis : int, optional
        Axis of ``x`` holding independent chains; every segment of every chain is a sequence.

    Returns
    -------
    float or array of the leading shape: :math:`\\hat R`, 1 for a constant chain, ``nan`` or
    ``inf`` where the formula is undefined (as in R).

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> float(gelman_rubin(rng.normal(size=300))) < 1.05
    True
    """
    a = np.asarray(x, dtype=np.float64)
    if chains_axis is not None:
        a = np.moveaxis(a, chains_axis, -2)
    else:
        a = a[..., None, :]
    n_it = a.shape[-1]
    if not isinstance(n_segments, (int, np.integer)) or n_segments < 1:
        raise ValueError(f"`n_segments` must be a positive integer; got {n_segments!r}.")
    n = n_it // n_segments
    if n < 2 or a.shape[-2] * n_segments < 2:
        raise ValueError(
            f"`x` has {n_it} iterations in {a.shape[-2]} chain(s); Gelman-Rubin needs at least two "
            f"sequences of two draws each (n_segments={n_segments}); run more iterations.")
    seq = a[..., : n * n_segments].reshape(a.shape[:-2] + (a.shape[-2] * n_segments, n))
    out = _psrf_sequences(seq)
    return float(out) if out.ndim == 0 else out


def _psrf_classic(seq: np.ndarray) -> np.ndarray:
    """BDA3 potential scale reduction without the df correction: sqrt(var_plus / W)."""
    n = seq.shape[-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        w = seq.var(-1, ddof=1).mean(-1)
        b_n = seq.mean(-1).var(-1, ddof=1)
        r = np.sqrt(((n - 1) / n * w + b_n) / w)
    return np.where(((w == 0) & (b_n == 0)) | _constant(seq, (-2, -1)), 1.0, r)


def lag_autocorrelation(x: Any, lag: int, smooth: int = 0, sd: float = 0.5) -> np.ndarray | float:
    """Autocorrelation at one lag, optionally smoothed over neighbouring lags (mitml's
    ``.reducedACF``).

    :math:`\\rho_\\ell = \\sum_{t=1}^{n-\\ell} y_t y_{t+\\ell} / \\sum_t y_t^2` with
    :math:`y = x - \\bar x`; with ``smooth = s > 0`` the weighted mean of :math:`\\rho` over the
    lags :math:`\\ell - s .. \\ell + s` with weights proportional to the N(0, sd) density.
    A constant chain has autocorrelation 0; a lag of ``iterations`` or more gives ``nan``.
    Negative lags (``lag < smooth``) use :math:`\\rho_{-\\ell} = \\rho_\\ell` (mitml gives NA there).

    Parameters
    ----------
    x : array (..., iterations)
    lag : int, non-negative
    smooth : int, default 0
    sd : float, default 0.5

    Examples
    --------
    >>> float(lag_autocorrelation(np.array([1.0, 2, 3, 4]), 1))
    0.25
    """
    a = np.asarray(x, dtype=np.float64)
    n = a.shape[-1]
    y = a - a.mean(-1, keepdims=True)
    ss = np.where(_constant(a), 0.0, (y * y).sum(-1))
    lags = lag + np.arange(-smooth, smooth + 1)
    acs = []
    for ll in np.abs(lags):
        if ll >= n:
            ac = np.full(ss.shape, np.nan)
        else:
            ac = (y[..., : n - ll] * y[..., ll:]).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            acs.append(np.where(ss > 0, ac / np.where(ss > 0, ss, 1.0), 0.0))
    acs = np.stack(acs, -1)
    if smooth > 0:
        w = np.exp(-0.5 * (np.arange(-smooth, smooth + 1) / sd) ** 2)
        out = (acs * (w / w.sum())).sum(-1)
    else:
        out = acs[..., 0]
    return float(out) if out.ndim == 0 else out


def acf(x: Any, max_lag: int) -> np.ndarray:
    """Autocorrelation function at lags 0..max_lag (R's ``acf``: demeaned, denominator n).

    Parameters
    ----------
    x : array (..., iterations)
    max_lag : int; lags beyond ``iterations - 1`` are ``nan``.

    Returns
    -------
    array (..., max_lag + 1)
    """
    return np.stack([np.asarray(lag_autocorrelation(x, k)) for k in range(max_lag + 1)], -1)


def _ar_spectrum0(x: np.ndarray) -> np.ndarray:
    """Spectral density at frequency 0 of each row of ``x`` (rows, n) from a Yule-Walker AR fit
    with the order chosen by AIC (R's ``ar(x, aic=TRUE)``): var.pred / (1 - sum(ar))^2.

    Durbin-Levinson over all rows at once; rows must not be constant.
    """
    rows, n = x.shape
    p_max = int(min(n - 1, math.floor(10 * math.log10(n))))
    y = x - x.mean(1, keepdims=True)
    r = np.stack([(y[:, : n - k] * y[:, k:]).sum(1) / n for k in range(p_max + 1)], 1)
    a = np.zeros((rows, p_max + 1))          # a[:, j] = phi_j of the current order
    v = r[:, 0].copy()                        # innovation variance of the current order
    best_aic = n * np.log(v)
    best_var = v * n / (n - 1)
    best_sum = np.zeros(rows)
    for k in range(1, p_max + 1):
        acc = r[:, k] - (a[:, 1:k] * r[:, k - 1:0:-1]).sum(1)
        phi = acc / v
        a_prev = a[:, 1:k].copy()
        a[:, 1:k] = a_prev - phi[:, None] * a_prev[:, ::-1]
        a[:, k] = phi
        v = v * (1.0 - phi * phi)
        with np.errstate(divide="ignore", invalid="ignore"):
            aic = n * np.log(v) + 2 * k
        better = aic < best_aic
        best_aic = np.where(better, aic, best_aic)
        best_var = np.where(better, v * n / (n - (k + 1)), best_var)
        best_sum = np.where(better, a[:, 1: k + 1].sum(1), best_sum)
    return best_var / (1.0 - best_sum) ** 2


def _spectral_parts(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(spectral density at 0, variance) for (P, chains, n) draws; 0 spectrum where constant."""
    P, C, n = a.shape
    flat = a.reshape(P * C, n)
    v = np.where(_constant(flat), 0.0, flat.var(1, ddof=1))
    sp0 = np.zeros(P * C)
    ok = v > 0
    if ok.any():
        sp0[ok] = _ar_spectrum0(flat[ok])
    return sp0.reshape(P, C), v.reshape(P, C)


def goodness_of_approximation(x: Any, chains_axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """mitml's "goodness of approximation" (``.SDprop``): MCSE / posterior SD, and the
    effective sample size.

    The Monte Carlo variance of the mean of n draws is :math:`S(0)/n` where :math:`S(0)` is the
    spectral density at frequency zero of a Yule-Walker AR model fitted to the chain (order by
    AIC, at most :math:`\\min(n-1, \\lfloor 10\\log_{10} n \\rfloor)`). With C chains the MCSE of
    the pooled mean is :math:`\\sqrt{\\sum_c S_c(0)/n}/C` and the SD is that of all draws.

    Parameters
    ----------
    x : array (..., iterations), or (..., chains, iterations) with ``chains_axis``.
    chains_axis : int, optional

    Returns
    -------
    (sd_prop, n_eff) : arrays of the leading shape; a constant chain has sd_prop 0 and
    n_eff equal to the number of draws.
    """
    a = np.asarray(x, dtype=np.float64)
    a = np.moveaxis(a, chains_axis, -2) if chains_axis is not None else a[..., None, :]
    lead = a.shape[:-2]
    C, n = a.shape[-2], a.shape[-1]
    sp0, _ = _spectral_parts(a.reshape((-1, C, n)))
    pooled = a.reshape(-1, C * n)
    v = np.where(_constant(pooled), 0.0, pooled.var(1, ddof=1))
    mcmc_v = sp0.sum(1) / n / C ** 2
    const = v == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sdp = np.where(const, 0.0, np.sqrt(mcmc_v / v))
        neff = np.where(const, float(C * n), v / mcmc_v)
    return sdp.reshape(lead), neff.reshape(lead)


def mcse(x: Any, method: str = "batch", batch_size: int | None = None,
         chains_axis: int | None = None) -> np.ndarray | float:
    """Monte Carlo standard error of the posterior mean.

    Parameters
    ----------
    x : array (..., iterations), or (..., chains, iterations) with ``chains_axis``.
    method : ``"batch"`` (default) or ``"ar"``.
        ``"batch"``: non-overlapping batch means. With batch size b (default
        :math:`\\lfloor\\sqrt n\\rfloor`) and a = n // b batches of the first a b draws,
        :math:`\\hat\\sigma^2 = b \\sum_k (\\bar x_k - \\bar x)^2 / (a - 1)` and the MCSE is
        :math:`\\sqrt{\\hat\\sigma^2 / (a b)}`. ``"ar"``: the AR spectral estimate used by
        :func:`goodness_of_approximation`. With several chains the per-chain variances are
        averaged and divided by the total number of draws.
    batch_size : int, optional

    Returns
    -------
    float or array of the leading shape.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> round(float(mcse(rng.normal(size=10_000))), 2)
    0.01
    """
    a = np.asarray(x, dtype=np.float64)
    a = np.moveaxis(a, chains_axis, -2) if chains_axis is not None else a[..., None, :]
    C, n = a.shape[-2], a.shape[-1]
    if method == "ar":
        lead = a.shape[:-2]
        sp0, _ = _spectral_parts(a.reshape((-1, C, n)))
        out = np.sqrt(sp0.sum(1) / n / C ** 2).reshape(lead)
    elif method == "batch":
        b = math.isqrt(n) if batch_size is None else batch_size
        if not isinstance(b, (int, np.integer)) or b < 1 or n // b < 2:
            raise ValueError(
                f"`batch_size` must be a positive integer giving at least two batches of the {n} "
                f"iterations; got {batch_size!r}.")
        nb = n // b
        means = a[..., : nb * b].reshape(a.shape[:-1] + (nb, b)).mean(-1)
        sig2 = b * means.var(-1, ddof=1)          # per chain
        out = np.sqrt(sig2.mean(-1) / (C * nb * b))
    else:
        raise ValueError(f"`method` must be 'batch' or 'ar'; got {method!r}.")
    return float(out) if np.ndim(out) == 0 else out


def moving_average(x: Any, half_width: int, fill: bool = True) -> np.ndarray:
    """Centred moving average over ``2 half_width + 1`` draws (mitml's ``.movingAverage``).

    With ``fill``, the first and last ``half_width`` points average the shorter symmetric windows
    that fit (``2 j + 1`` draws at distance j from the end); otherwise they are ``nan``.
    """
    a = np.asarray(x, dtype=np.float64)
    n, B = a.shape[-1], int(half_width)
    out = np.full(a.shape, np.nan)
    if B <= 0:
        return a.copy()
    cs = np.concatenate([np.zeros(a.shape[:-1] + (1,)), np.cumsum(a, -1)], -1)
    if n > 2 * B:
        out[..., B: n - B] = (cs[..., 2 * B + 1:] - cs[..., : n - 2 * B]) / (2 * B + 1)
    if fill:
        for j in range(min(B, n)):
            w = 2 * j + 1
            if w <= n:
                out[..., j] = cs[..., w] / w
                out[..., n - 1 - j] = (cs[..., n] - cs[..., n - w]) / w
    return out


# ---------------------------------------------------------------------------------------------
# per-parameter tables over a dict of blocks
# ---------------------------------------------------------------------------------------------

def _as_chains(arr: Any, block: str, chains_axis: int | None) -> np.ndarray:
    """A (rows, cols, iterations, groups, chains) float array."""
    a = np.asarray(arr, dtype=np.float64)
    if chains_axis is not None:
        if a.ndim != 5:
            raise ValueError(f"`par['{block}']` must have 5 axes with `chains_axis`; got shape {a.shape}.")
        a = np.moveaxis(a, chains_axis, 4)
    elif a.ndim == 4:
        a = a[..., None]
    elif a.ndim != 5:
        raise ValueError(
            f"`par['{block}']` must be (rows, cols, iterations, groups) or with a trailing chains "
            f"axis; got shape {a.shape}.")
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
        else:
            out.append(f"{head}: {r_} WITH {c_}")
    return out


def _block_series(a: np.ndarray, block: str):
    """(i, j, g, series (P, chains, iterations)) in mitml's order (row fastest, then column,
    then group), keeping the lower triangle of psi and of each stacked sigma matrix."""
    R_, K, _, G, _ = a.shape
    i, j, g = (v.ravel(order="F") for v in np.meshgrid(np.arange(R_), np.arange(K), np.arange(G),
                                                       indexing="ij"))
    if block == "psi":
        keep = j <= i
    elif block == "sigma":
        keep = j <= i % K
    else:
        keep = np.ones(i.shape, bool)
    i, j, g = i[keep], j[keep], g[keep]
    series = np.moveaxis(a[i, j, :, g, :], 1, 2)     # (P, C, T)
    return i, j, g, series


def parameter_table(par: Mapping[str, Any], n_iter: int, n_Rhat: int | None = 3,
                    goodness_of_appr: bool = True, autocorrelation: bool = True,
                    chains_axis: int | None = None, param_names: Mapping | None = None,
                    group_labels: list | None = None) -> pd.DataFrame:
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
        cols: dict[str, Any] = {"block": block, "row": i, "col": j,
                                "group": [group_labels[k] if group_labels else k for k in g]}
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


# ---------------------------------------------------------------------------------------------
# the summary record and its printout
# ---------------------------------------------------------------------------------------------

def _quantile7(x: np.ndarray, p: float) -> float:
    """R's default quantile (type 7), robust to infinite values like R's."""
    x = np.sort(x)
    h = (len(x) - 1) * p
    lo, hi = math.floor(h), math.ceil(h)
    q = x[lo]
    if hi > lo and x[hi] != q:
        q = (1 - (h - lo)) * q + (h - lo) * x[hi]
    return float(q)


def _five(x: np.ndarray) -> list[float]:
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return [np.nan] * 6
    return [float(x.min()), _quantile7(x, 0.25), float(x.mean()), _quantile7(x, 0.5),
            _quantile7(x, 0.75), float(x.max())]


def _fmt_table(rows: list[str], cols: list[str], cells: list[list[str]], left: bool = False) -> str:
    wl = max(len(r) for r in rows)
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]

    def j(v, w):
        return v.ljust(w) if left else v.rjust(w)

    out = [" " * wl + "".join(" " + j(c, w) for c, w in zip(cols, widths)).rstrip()]
    for r, row in zip(rows, cells):
        out.append((r.ljust(wl) + "".join(" " + j(v, w) for v, w in zip(row, widths))).rstrip())
    return "\n".join(out)


def _num(v: float) -> str:
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return f"{v:.3f}"


def _acf_str(v: float) -> str:
    if np.isnan(v):
        return "   NA"
    s = f"{v:.3f}"
    return s.replace("-0.", "-.") if v < 0 else s.replace("0.", " .", 1) if s.startswith("0.") else s


@dataclass(frozen=True)
class ChainSummary:
    """Convergence diagnostics of imputation chains (what mitml's ``summary`` reports).

    Attributes
    ----------
    table : DataFrame, one row per parameter with every computed statistic
        (see :func:`parameter_table`).
    rhat : DataFrame ``block, row, col, group, parameter, Rhat[, Rhat_chains]`` or None.
    goodness : DataFrame ``..., SDprop, n_eff`` or None.
    autocorrelation : DataFrame ``..., lag-1, lag-k, lag-2k`` or None.
    missing_rates : DataFrame (one row ``MD%``, one column per variable, percent) or None.
    settings : n_burn, n_iter, m, chains, n_Rhat, n_groups and what else is known.
    """

    table: pd.DataFrame
    rhat: pd.DataFrame | None
    goodness: pd.DataFrame | None
    autocorrelation: pd.DataFrame | None
    missing_rates: pd.DataFrame | None = None
    settings: dict = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        """Parameters with Rhat (or Rhat_chains) above :data:`RHAT_THRESHOLD`, worst first."""
        if self.rhat is None:
            return self.table.iloc[:0]
        r = self.rhat
        worst = r["Rhat"].to_numpy()
        if "Rhat_chains" in r:
            worst = np.fmax(worst, r["Rhat_chains"].to_numpy())
        out = r[worst > RHAT_THRESHOLD].assign(worst=worst[worst > RHAT_THRESHOLD])
        return out.sort_values("worst", ascending=False, kind="stable").drop(columns="worst")

    def block_table(self, stat: str) -> pd.DataFrame:
        """Min, 25%, Mean, Median, 75%, Max of ``stat`` per block (mitml's printed table)."""
        t = self.table
        blocks = [b for b in BLOCKS if (t["block"] == b).any()]
        data = [_five(t.loc[t["block"] == b, stat].to_numpy()) for b in blocks]
        return pd.DataFrame(data, index=[_TITLES[b] for b in blocks],
                            columns=["Min", "25%", "Mean", "Median", "75%", "Max"])

    def worst(self, stat: str, absolute: bool = False) -> dict:
        """Block -> (row, col) (0-based) of the largest ``stat`` (first one on ties)."""
        out = {}
        for b in BLOCKS:
            sub = self.table[self.table["block"] == b]
            if len(sub):
                v = sub[stat].to_numpy()
                v = np.abs(v) if absolute else v
                k = int(np.argmax(np.where(np.isnan(v), -np.inf, v)))
                out[b] = (int(sub["row"].iloc[k]), int(sub["col"].iloc[k]))
        return out

    def _worst_line(self, stat: str, absolute: bool = False) -> str:
        w = self.worst(stat, absolute)
        return ", ".join(f"{_TITLES[b]}: [{r + 1},{c + 1}]" for b, (r, c) in w.items())

    def __str__(self) -> str:
        s = self.settings
        lines = [""]
        for k in ("method", "formula"):
            if s.get(k) is not None:
                lines.append(f"{k.capitalize() + ':':<25} {s[k]}")
        if s.get("cluster") is not None:
            lines.append(f"{'Cluster variable:':<25} {s['cluster']}")
        if s.get("targets"):
            lines.append(f"{'Target variables:':<25} {' '.join(map(str, s['targets']))}")
        if "n_burn" in s and "m" in s:
            lines += ["", (f"Performed {s['n_burn']} burn-in iterations, and generated {s['m']} imputed "
                          f"data sets,\neach {s['n_iter']} iterations apart.")]
        if s.get("chains", 1) > 1:
            lines.append(f"Ran {s['chains']} chains; imputations were drawn across the chains.")
        if s.get("n_groups", 1) > 1:
            lines.append(f"Imputations were carried out separately within {s['n_groups']} groups.")
        t = self.table
        if self.rhat is not None:
            lines += ["", "Potential scale reduction (Rhat, imputation phase):", ""]
            lines.append(self._stat_block("Rhat"))
            lines += ["", "Largest potential scale reduction:", self._worst_line("Rhat")]
            if "Rhat_chains" in t:
                lines += ["", (f"Potential scale reduction between the {s.get('chains', '')} chains "
                              "(Gelman-Rubin):"), ""]
                lines.append(self._stat_block("Rhat_chains"))
                lines += ["", "Largest potential scale reduction between chains:",
                          self._worst_line("Rhat_chains")]
        if self.goodness is not None:
            lines += ["", "Goodness of approximation (imputation phase):", ""]
            lines.append(self._stat_block("SDprop"))
            lines += ["", "Poorest approximation:", self._worst_line("SDprop")]
        if self.autocorrelation is not None:
            lines += ["", "Autocorrelation (ACF, imputation phase):", ""]
            blocks = [b for b in BLOCKS if (t["block"] == b).any()]
            cells = []
            beyond = False
            for b in blocks:
                sub = t[t["block"] == b]
                vals = [sub[c].to_numpy(float) for c in ("lag-1", "lag-k", "lag-2k")]
                beyond |= any(np.isnan(v).all() for v in vals)
                mean = [v[~np.isnan(v)].mean() if (~np.isnan(v)).any() else np.nan for v in vals]
                mx = [v[~np.isnan(v)].max() if (~np.isnan(v)).any() else np.nan for v in vals]
                cells.append([_acf_str(v) for v in mean + mx])
            cells.insert(0, [" Lag1", " Lagk", "Lag2k"] * 2)
            lines.append(_fmt_table([""] + [_TITLES[b] + ":" for b in blocks],
                                    [" Mean", "", "", " Max", "", ""], cells, left=True))
            if beyond:
                lines.append("(NA: the lag reaches beyond the imputation phase of a chain.)")
            lines += ["", "Largest autocorrelation at lag k:", self._worst_line("lag-k", absolute=True)]
        if self.rhat is not None:
            fl = self.flagged
            lines.append("")
            if len(fl):
                lines.append(f"Parameters with Rhat > {RHAT_THRESHOLD} ({len(fl)} of {len(self.rhat)}); "
                             "run more burn-in iterations:")
                show = fl.head(10)
                for _, r in show.iterrows():
                    g = "" if s.get("n_groups", 1) <= 1 else f" (group {r['group']})"
                    vals = f"Rhat {_num(r['Rhat'])}"
                    if "Rhat_chains" in r:
                        vals += f", between chains {_num(r['Rhat_chains'])}"
                    lines.append(f"  {r['parameter']}{g}: {vals}")
                if len(fl) > len(show):
                    lines.append(f"  ... and {len(fl) - len(show)} more (see .flagged)")
            else:
                lines.append(f"All parameters have Rhat <= {RHAT_THRESHOLD}.")
        if s.get("n_dropped"):
            lines.append(f"({s['n_dropped']} parameters with undefined statistics left out, as in mitml.)")
        if self.missing_rates is not None:
            lines += ["", "Missing data per variable:"]
            mr = self.missing_rates.iloc[0]
            vals = ["0" if v == 0 else f"{v:.1f}" for v in mr.to_numpy(dtype=float)]
            lines.append(_fmt_table(["MD%"], [str(c) for c in mr.index], [vals]))
        lines.append("")
        return "\n".join(lines)

    def _stat_block(self, stat: str) -> str:
        bt = self.block_table(stat)
        cells = [[_num(v) for v in row] for row in bt.to_numpy()]
        return _fmt_table([r + ":" for r in bt.index], list(bt.columns), cells)

    def __repr__(self) -> str:
        return self.__str__()


def _check_n_rhat(n_Rhat):
    if n_Rhat is None:
        return None
    if not isinstance(n_Rhat, (int, np.integer)) or isinstance(n_Rhat, bool) or n_Rhat < 1:
        raise ValueError(f"`n_Rhat` must be an integer >= 2 (or None to skip Rhat); got {n_Rhat!r}.")
    return int(n_Rhat) if n_Rhat >= 2 else None      # mitml: Rhat only when n.Rhat >= 2


def summarize(par: Mapping[str, Any], n_iter: int, n_Rhat: int | None = 3,
              goodness_of_appr: bool = False, autocorrelation: bool = False,
              chains_axis: int | None = None, param_names: Mapping | None = None,
              group_labels: list | None = None, settings: Mapping | None = None,
              missing_rates: pd.DataFrame | None = None) -> ChainSummary:
    """Convergence diagnostics of the imputation phase (mitml's ``summary.mitml``).

    Parameters
    ----------
    par : dict block -> array
        ``"beta"``, ``"beta2"``, ``"psi"``, ``"sigma"`` (any subset) -> draws laid out like
        mitml's ``par.imputation``: (rows, cols, iterations, groups), or with a trailing chains
        axis (rows, cols, iterations, groups, chains). Only the lower triangle of ``psi`` and of
        each stacked ``sigma`` matrix is summarised.
    n_iter : int
        Iterations between imputations (``k``: autocorrelations are reported at 1, k, 2k).
    n_Rhat : int or None, default 3
        Segments per chain for Rhat; None (or 1) skips Rhat.
    goodness_of_appr, autocorrelation : bool, default False
        Also compute these (mitml's defaults).
    chains_axis : int, optional
        Axis of the chains when it is not the fifth.
    param_names : dict block -> (row names, column names), optional; labels the parameters.
    group_labels : list, optional; labels of the groups axis.
    settings : dict, optional; shown in the printout (n_burn, m, chains, ...).
    missing_rates : DataFrame, optional; shown in the printout.

    Returns
    -------
    ChainSummary

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> s = summarize({"beta": rng.normal(size=(2, 1, 300, 1))}, n_iter=10, autocorrelation=True)
    >>> s.rhat.shape[0]
    2
    """
    if not isinstance(par, Mapping):
        raise TypeError(f"`par` must be a dict block -> array; got {type(par).__name__}.")
    if not isinstance(n_iter, (int, np.integer)) or isinstance(n_iter, bool) or n_iter < 1:
        raise ValueError(f"`n_iter` must be a positive integer; got {n_iter!r}.")
    n_Rhat = _check_n_rhat(n_Rhat)
    total = 0
    for b in BLOCKS:
        if b in par and par[b] is not None:
            a = _as_chains(par[b], b, chains_axis)
            total += len(_block_series(a[:, :, :1], b)[0])
    tab = parameter_table(par, int(n_iter), n_Rhat, bool(goodness_of_appr), bool(autocorrelation),
                          chains_axis, param_names, group_labels)
    key = ["block", "row", "col", "group", "parameter"]

    def part(cols):
        cols = [c for c in cols if c in tab]
        return tab[key + cols] if cols else None

    st = dict(settings or {})
    st.setdefault("n_iter", int(n_iter))
    st["n_Rhat"] = n_Rhat
    st.setdefault("n_groups", len(group_labels) if group_labels else
                  int(np.asarray(next(iter(v for v in par.values() if v is not None))).shape[3]))
    st["n_dropped"] = total - len(tab)
    return ChainSummary(
        table=tab,
        rhat=part(["Rhat", "Rhat_chains"]) if n_Rhat is not None else None,
        goodness=part(["SDprop", "n_eff"]) if goodness_of_appr else None,
        autocorrelation=part(["lag-1", "lag-k", "lag-2k"]) if autocorrelation else None,
        missing_rates=missing_rates,
        settings=st,
    )


def _missing_rates(data: Any) -> pd.DataFrame | None:
    if data is None:
        return None
    df = as_pandas(data)
    return pd.DataFrame([df.isna().mean().to_numpy() * 100], index=["MD%"],
                        columns=[str(c) for c in df.columns])


def _imp_chains(imp: Any, phase: str) -> tuple[dict, bool]:
    """(dict block -> 5-axis array, True) from the chains attribute, or the 4-axis first chain."""
    ch = getattr(imp, f"par_chains_{phase}", None)
    if ch:
        return {b: v for b, v in ch.items() if v is not None}, True
    par = getattr(imp, f"par_{phase}", None)
    if par is None:
        raise TypeError(f"`imp` must be an ImputationResult (with par_{phase}); got {type(imp).__name__}.")
    return {b: v for b, v in par.items() if v is not None}, False


def imputation_summary(imp: Any, n_Rhat: int | None = 3, goodness_of_appr: bool = False,
                       autocorrelation: bool = False) -> ChainSummary:
    """mitml's ``summary`` of an imputation run: Rhat (split chains, and between chains when
    several ran), optional autocorrelation and goodness of approximation, missing % per variable.

    Parameters
    ----------
    imp : ImputationResult
        Anything with ``par_imputation`` (or ``par_chains_imputation``) and ``settings``
        (``n_iter``, ``n_burn``, ``m``, ``chains``); ``incomplete``, ``param_names``,
        ``group_labels``, ``targets``, ``formula`` and ``method`` are used when present.
    n_Rhat, goodness_of_appr, autocorrelation : see :func:`summarize`.

    Returns
    -------
    ChainSummary; ``print`` it for mitml's layout.

    Examples
    --------
    >>> s = imp.summary(autocorrelation=True)   # doctest: +SKIP
    >>> s.rhat                                   # doctest: +SKIP
    """
    par, _ = _imp_chains(imp, "imputation")
    st = dict(getattr(imp, "settings", {}) or {})
    if "n_iter" not in st:
        raise ValueError("`imp.settings` must hold 'n_iter' (iterations between imputations).")
    groups = list(getattr(imp, "group_labels", []) or [])
    info = {k: st.get(k) for k in ("n_burn", "n_iter", "m", "chains", "cluster") if k in st}
    info["chains"] = int(st.get("chains", 1) or 1)
    info["n_groups"] = len(groups) if groups else 1
    info["targets"] = list(getattr(imp, "targets", []) or [])
    info["method"] = getattr(imp, "method", None)
    f = getattr(imp, "formula", None)
    info["formula"] = None if f is None else (f if isinstance(f, str) else str(f))
    return summarize(par, int(st["n_iter"]), n_Rhat=n_Rhat, goodness_of_appr=goodness_of_appr,
                     autocorrelation=autocorrelation, param_names=getattr(imp, "param_names", None),
                     group_labels=groups if groups and groups != [None] else None, settings=info,
                     missing_rates=_missing_rates(getattr(imp, "incomplete", None)))


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


def psr_by_iteration(x: Any, checkpoints: Any = None, n_points: int = 20,
                     param_names: Mapping | None = None) -> pd.DataFrame:
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
        raise ValueError(f"`checkpoints` must lie between 8 and the {total} iterations run; got {bad}.")
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
            w = s[:, :, start: start + 2 * h]
            seq = w.reshape(w.shape[0], w.shape[1] * 2, h)
            r = _psrf_classic(seq)
            r = np.where(np.all(np.isnan(w), axis=(1, 2)), np.nan, r)
            if np.all(np.isnan(r)):
                rec[b] = np.nan
                continue
            k = int(np.nanargmax(r))
            rec[b] = float(r[k])
            if r[k] > best:
                best, lab, blk = float(r[k]), labels[k] + ("" if len(set(g)) == 1 else f" (group {g[k]})"), b
        rec.update(max_psr=best, parameter=lab, block=blk)
        rows.append(rec)
    cols = ["from", "to", "max_psr", "parameter", "block"] + [b for b in BLOCKS if b in series]
    return pd.DataFrame(rows)[cols]
