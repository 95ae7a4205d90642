"""The statistics on plain chain arrays: Rhat, autocorrelation, spectral MCSE, batch means."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

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
        var_v = (
            ((n - 1) / n) ** 2 / m * vrs.var(-1, ddof=1)
            + ((m + 1) / (m * n)) ** 2 * 2 / (m - 1) * (b_n * n) ** 2
            + 2
            * ((m + 1) * (n - 1) / (m * n**2))
            * (n / m)
            * (_cov(vrs, mns**2) - 2 * muhat * _cov(vrs, mns))
        )
        df = 2 * v_hat**2 / var_v
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
            f"sequences of two draws each (n_segments={n_segments}); run more iterations."
        )
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
    ac_lags: list[np.ndarray] = []
    for ll in np.abs(lags):
        if ll >= n:
            ac = np.full(ss.shape, np.nan)
        else:
            ac = (y[..., : n - ll] * y[..., ll:]).sum(-1)
        with np.errstate(divide="ignore", invalid="ignore"):
            ac_lags.append(np.where(ss > 0, ac / np.where(ss > 0, ss, 1.0), 0.0))
    acs = np.stack(ac_lags, -1)
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
    a = np.zeros((rows, p_max + 1))  # a[:, j] = phi_j of the current order
    v = r[:, 0].copy()  # innovation variance of the current order
    best_aic = n * np.log(v)
    best_var = v * n / (n - 1)
    best_sum = np.zeros(rows)
    for k in range(1, p_max + 1):
        acc = r[:, k] - (a[:, 1:k] * r[:, k - 1 : 0 : -1]).sum(1)
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
        best_sum = np.where(better, a[:, 1 : k + 1].sum(1), best_sum)
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


def goodness_of_approximation(
    x: Any, chains_axis: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
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
    mcmc_v = sp0.sum(1) / n / C**2
    const = v == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        sdp = np.where(const, 0.0, np.sqrt(mcmc_v / v))
        neff = np.where(const, float(C * n), v / mcmc_v)
    return sdp.reshape(lead), neff.reshape(lead)


def mcse(
    x: Any, method: str = "batch", batch_size: int | None = None, chains_axis: int | None = None
) -> np.ndarray | float:
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
        out = np.sqrt(sp0.sum(1) / n / C**2).reshape(lead)
    elif method == "batch":
        b = math.isqrt(n) if batch_size is None else batch_size
        if not isinstance(b, (int, np.integer)) or b < 1 or n // b < 2:
            raise ValueError(
                f"`batch_size` must be a positive integer giving at least two batches of the {n} "
                f"iterations; got {batch_size!r}."
            )
        nb = n // b
        means = a[..., : nb * b].reshape(a.shape[:-1] + (nb, b)).mean(-1)
        sig2 = b * means.var(-1, ddof=1)  # per chain
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
        out[..., B : n - B] = (cs[..., 2 * B + 1 :] - cs[..., : n - 2 * B]) / (2 * B + 1)
    if fill:
        for j in range(min(B, n)):
            w = 2 * j + 1
            if w <= n:
                out[..., j] = cs[..., w] / w
                out[..., n - 1 - j] = (cs[..., n] - cs[..., n - w]) / w
    return out
