"""Plots of imputation chains (mitml's ``plot.mitml``) and of the potential scale reduction by
iteration (Blimp's burn-in PSR table as a figure).

Per parameter: the trace with a centred moving average (burn-in shaded), the autocorrelation
function up to lag ``n_iter``, the posterior density (rotated, sharing the trace's axis) and a
text panel with EAP, MAP, SD, 2.5%, 97.5%, Rhat and the smoothed ACF at lag ``n_iter``.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot state, Agg
rendering), so plotting works headless and from threads.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping, Sequence
from typing import Any, cast

import numpy as np
from matplotlib.figure import Figure
from matplotlib.gridspec import GridSpec
from matplotlib.ticker import MaxNLocator

from .diagnostics._psr import psr_by_iteration
from .diagnostics._statistics import gelman_rubin, lag_autocorrelation, moving_average
from .diagnostics._summary import _imp_chains, _quantile7
from .diagnostics._tables import BLOCKS, RHAT_THRESHOLD, _as_chains, _block_series, _labels

__all__ = ["block_figure", "kde", "parameter_statistics", "plot_chains", "plot_psr"]

_CHAIN_COLORS = (
    "black",
    "tab:blue",
    "tab:orange",
    "tab:green",
    "tab:red",
    "tab:purple",
    "tab:brown",
    "tab:pink",
    "tab:olive",
    "tab:cyan",
)


# ---------------------------------------------------------------------------------------------
# numbers shown in the text panel
# ---------------------------------------------------------------------------------------------


def _bw_nrd0(x: np.ndarray) -> float:
    """Silverman's rule of thumb as R's ``bw.nrd0``: 0.9 min(sd, IQR/1.34) n^-1/5."""
    hi = float(np.std(x, ddof=1)) if x.size > 1 else 0.0
    lo = min(hi, (_quantile7(x, 0.75) - _quantile7(x, 0.25)) / 1.34)
    if not lo > 0:
        lo = hi or abs(float(x[0])) or 1.0
    return 0.9 * lo * x.size**-0.2


def kde(x: Any, n: int = 512, cut: float = 3.0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian kernel density on ``n`` points from ``min - cut bw`` to ``max + cut bw`` with R's
    default bandwidth (``bw.nrd0``), like R's ``density``.

    Exact kernel sums up to 4096 draws; beyond that the draws are linearly binned on 2048 points
    first (as R does).

    Returns
    -------
    (grid, density) : two arrays of length ``n``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    x = x[np.isfinite(x)]
    bw = _bw_nrd0(x)
    grid = np.linspace(x.min() - cut * bw, x.max() + cut * bw, n)
    if x.size > 4096:
        edges = np.linspace(grid[0], grid[-1], 2048)
        pos = (x - edges[0]) / (edges[1] - edges[0])
        lo = np.clip(np.floor(pos).astype(np.int64), 0, 2046)
        frac = pos - lo
        w = np.bincount(lo, 1 - frac, 2048) + np.bincount(lo + 1, frac, 2048)
        pts, wts = edges, w / x.size
    else:
        pts, wts = x, np.full(x.size, 1.0 / x.size)
    z = (grid[:, None] - pts[None, :]) / bw
    dens = (np.exp(-0.5 * z * z) * wts).sum(1) / (bw * math.sqrt(2 * math.pi))
    return grid, dens


def parameter_statistics(draws: Any, n_iter: int, n_Rhat: int = 3, thin: int = 1) -> dict:
    """The text panel of mitml's plot for one parameter.

    Parameters
    ----------
    draws : array (iterations,) or (chains, iterations) of the imputation phase (already thinned).
    n_iter : int; the ACF is reported at lag ``ceil(n_iter / thin)``, smoothed over +-2 lags.
    n_Rhat : int; segments per chain for Rhat.

    Returns
    -------
    dict with ``EAP, MAP, SD, 2.5%, 97.5%, Rhat, ACF-k`` (and ``Rhat-chains`` with several
    chains). EAP, SD and the quantiles are over all draws; MAP is the mode of :func:`kde`.
    """
    d = np.asarray(draws, dtype=np.float64)
    if d.ndim == 1:
        d = d[None, :]
    flat = d.ravel()
    grid, dens = kde(flat)
    lag = math.ceil(n_iter / thin)
    out = {
        "EAP": float(flat.mean()),
        "MAP": float(grid[np.argmax(dens)]),
        "SD": float(flat.std(ddof=1)),
        "2.5%": _quantile7(flat, 0.025),
        "97.5%": _quantile7(flat, 0.975),
        "Rhat": float(gelman_rubin(d, n_Rhat, chains_axis=0))
        if d.shape[1] // n_Rhat >= 2
        else np.nan,
        "ACF-k": float(np.mean(lag_autocorrelation(d, lag, smooth=2))),
    }
    if d.shape[0] > 1:
        out["Rhat-chains"] = float(gelman_rubin(d, 1, chains_axis=0))
    return out


# ---------------------------------------------------------------------------------------------
# drawing
# ---------------------------------------------------------------------------------------------


def _draw_parameter(
    fig: Figure,
    gs_cell,
    title: str,
    burn: np.ndarray | None,
    imp: np.ndarray,
    n_iter: int,
    trace: str,
    thin: int,
    smooth: int,
    n_Rhat: int,
) -> list:
    """Four axes for one parameter in ``gs_cell``: trace, ACF, density, text.

    ``burn`` (chains, n_burn) or None and ``imp`` (chains, n_imp) are the unthinned draws.
    """
    nb = 0 if burn is None else burn.shape[1]
    if trace == "imputation" or burn is None:
        series, first = imp, nb + 1
    elif trace == "burnin":
        series, first = burn, 1
    else:
        series, first = np.concatenate([burn, imp], axis=1), 1
    series = series[:, thin - 1 :: thin]
    x = first + thin - 1 + thin * np.arange(series.shape[1])
    drw = cast(np.ndarray, burn if trace == "burnin" else imp)[:, thin - 1 :: thin]
    sub = gs_cell.subgridspec(
        2, 2, width_ratios=(5, 1), height_ratios=(1.13, 1), wspace=0.02, hspace=0.6
    )
    ax_tr = fig.add_subplot(sub[0, 0])
    ax_acf = fig.add_subplot(sub[1, 0])
    ax_den = fig.add_subplot(sub[0, 1], sharey=ax_tr)
    ax_txt = fig.add_subplot(sub[1, 1])
    ymin, ymax = float(np.nanmin(series)), float(np.nanmax(series))
    yr = ymax - ymin or (abs(ymax) or 1.0) * 0.1
    if trace == "all" and nb > 0:
        ax_tr.axvspan(0.5, nb + 0.5, color="0.92", zorder=0, label="burn-in")
        ax_tr.axvline(nb + 0.5, color="tab:blue", lw=0.8)
    many = series.shape[0] > 1
    half = math.floor(n_iter / (smooth * thin)) if smooth and smooth > 0 else 0
    for c in range(series.shape[0]):
        col = _CHAIN_COLORS[c % len(_CHAIN_COLORS)]
        if trace == "all" and nb > 0 and not many:
            inb = x <= nb
            ax_tr.plot(x[inb], series[c, inb], color="0.6", lw=0.7)
            ax_tr.plot(x[~inb], series[c, ~inb], color=col, lw=0.7)
        else:
            ax_tr.plot(
                x, series[c], color=col, lw=0.7, alpha=0.8 if many else 1.0, label=f"chain {c + 1}"
            )
        if half > 0:
            ax_tr.plot(
                x,
                moving_average(series[c], half),
                color="tab:orange" if not many else col,
                lw=1.2,
                alpha=0.9,
            )
    if many:
        handles = [h for h in ax_tr.get_lines() if str(h.get_label()).startswith("chain ")]
        ax_tr.legend(
            handles=handles,
            loc="upper right",
            fontsize=6,
            ncol=len(handles),
            frameon=False,
            handlelength=1.2,
        )
    ax_tr.set_ylim(ymin - 0.03 * yr, ymax + 0.03 * yr)
    ax_tr.set_xlim(x[0] - 0.5, x[-1] + 0.5)
    ax_tr.set_title(title, fontsize=9, loc="left")
    ax_tr.set_ylabel("Trace", fontweight="bold")
    ax_tr.set_xlabel("Iteration", fontweight="bold")
    # ACF up to lag ceil(n_iter / thin), averaged over chains
    lag = max(1, math.ceil(n_iter / thin))
    ac = (
        np.nanmean(
            np.stack([np.atleast_1d(lag_autocorrelation(drw, k)) for k in range(1, lag + 1)]),
            axis=1,
        )
        if drw.shape[1] > 1
        else np.zeros(lag)
    )
    ax_acf.vlines(np.arange(1, lag + 1), 0, ac, color="black", lw=1.2)
    ax_acf.axhline(0, color="black", lw=0.6)
    for h in (-0.1, 0.1):
        ax_acf.axhline(h, color="tab:blue", lw=0.8)
    ax_acf.set_ylim(-0.1 - 0.05, 1.0)
    ax_acf.set_yticks([0, 0.5, 1])
    ax_acf.set_xlim(0.5, lag + 0.5)
    ax_acf.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax_acf.set_ylabel("ACF", fontweight="bold")
    ax_acf.set_xlabel("Lag", fontweight="bold")
    # density, rotated
    stats = parameter_statistics(drw, n_iter, n_Rhat=n_Rhat, thin=thin)
    grid, dens = kde(drw)
    ax_den.plot(dens, grid, color="black", lw=1)
    ax_den.tick_params(labelleft=False, labelbottom=False, left=False, bottom=False)
    # text
    ax_txt.axis("off")
    short = {"Rhat-chains": "Rhat-c"}
    lines = [f"{short.get(k, k) + ':':<7}{v:7.3f}" for k, v in stats.items()]
    flag = stats["Rhat"] > RHAT_THRESHOLD or stats.get("Rhat-chains", 0) > RHAT_THRESHOLD
    ax_txt.text(
        0.0,
        0.5,
        "\n".join(lines),
        family="monospace",
        fontsize=7.5,
        va="center",
        ha="left",
        fontweight="bold",
        color="tab:red" if flag else "black",
        transform=ax_txt.transAxes,
    )
    return [ax_tr, ax_acf, ax_den, ax_txt]


def _source(x: Any, burnin: Mapping | None, n_iter: int | None):
    """Normalise the input: (imp dict, burn dict or None, n_iter, n_burn, names, group labels)."""
    if isinstance(x, Mapping):
        if n_iter is None:
            raise ValueError(
                "`n_iter` is required when `x` is a dict of arrays; pass the iterations "
                "between imputations, e.g. n_iter=100."
            )
        imp = {b: _as_chains(v, b, None) for b, v in x.items() if v is not None and b in BLOCKS}
        burn = (
            None
            if burnin is None
            else {
                b: _as_chains(v, b, None)
                for b, v in burnin.items()
                if v is not None and b in BLOCKS
            }
        )
        return imp, burn, int(n_iter), None, None
    imp_, _ = _imp_chains(x, "imputation")
    burn_, _ = _imp_chains(x, "burnin")
    st = getattr(x, "settings", {}) or {}
    n_it = int(n_iter if n_iter is not None else st.get("n_iter", 1))
    groups = list(getattr(x, "group_labels", []) or [])
    imp = {b: _as_chains(v, b, None) for b, v in imp_.items()}
    burn = {b: _as_chains(v, b, None) for b, v in burn_.items()} or None
    if burn is not None and all(v.shape[2] == 0 for v in burn.values()):
        burn = None
    return imp, burn, n_it, getattr(x, "param_names", None), (groups if groups != [None] else None)


def block_figure(
    x: Any,
    block: str,
    *,
    burnin: Mapping | None = None,
    n_iter: int | None = None,
    trace: str = "all",
    thin: int = 1,
    smooth: int = 3,
    n_Rhat: int = 3,
    groups: Sequence | None = None,
    max_params: int = 16,
    params: Sequence[int] | None = None,
) -> Figure:
    """One figure with every parameter of ``block`` stacked (four panels each).

    Parameters
    ----------
    x, burnin, n_iter, trace, thin, smooth, n_Rhat : see :func:`plot_chains`.
    block : ``"beta"``, ``"beta2"``, ``"psi"`` or ``"sigma"``.
    groups : group positions to show (default all).
    max_params : int, default 16; at most this many parameters (a warning names the rest).
    params : positions (in :func:`pymitml.diagnostics.parameter_table` order within the block)
        to draw instead of all.

    Returns
    -------
    matplotlib.figure.Figure with 4 axes per parameter drawn.
    """
    items = _items(x, block, burnin, n_iter, groups, params)
    if len(items) > max_params:
        warnings.warn(
            f"block '{block}' has {len(items)} parameters; drawing the first {max_params}. "
            "Use format='pdf' (one page per parameter), `params=` or `max_params=`.",
            stacklevel=2,
        )
        items = items[:max_params]
    h = 3.4 * len(items)
    fig = Figure(figsize=(9.0, h), layout=None)
    gs = GridSpec(
        len(items),
        1,
        figure=fig,
        hspace=0.35,
        left=0.08,
        right=0.98,
        top=1 - 0.3 / h,
        bottom=0.45 / h,
    )
    for k, (title, b_, i_, n_it) in enumerate(items):
        _draw_parameter(fig, gs[k], title, b_, i_, n_it, _check_trace(trace), thin, smooth, n_Rhat)
    return fig


def _check_trace(trace: str) -> str:
    if trace not in ("imputation", "burnin", "all"):
        raise ValueError(f"`trace` must be 'imputation', 'burnin' or 'all'; got {trace!r}.")
    return trace


def _items(x, block, burnin, n_iter, groups, params):
    imp, burn, n_it, names, glabels = _source(x, burnin, n_iter)
    if block not in imp:
        raise ValueError(f"`block` must be one of {list(imp)} for this run; got {block!r}.")
    i, j, g, s = _block_series(imp[block], block)
    sb = _block_series(burn[block], block)[3] if burn is not None and block in burn else None
    labels = _labels(block, (names or {}).get(block), i, j)
    G = imp[block].shape[3]
    sel = np.arange(len(i))
    if groups is not None:
        sel = sel[np.isin(g, list(groups))]
    if params is not None:
        sel = np.asarray(params, dtype=int)
    items = []
    for k in sel.tolist():
        title = (
            labels[k] if G == 1 else f"{labels[k]}  [group {glabels[g[k]] if glabels else g[k]}]"
        )
        items.append((title, None if sb is None else sb[k], s[k], n_it))
    return items


def _check_format(fmt: str) -> str:
    if fmt not in ("png", "pdf"):
        raise ValueError(f"`format` must be 'png' or 'pdf'; got {fmt!r}.")
    return fmt


def plot_chains(
    x: Any,
    path: str | os.PathLike | None = None,
    *,
    blocks: Sequence[str] | None = None,
    format: str = "png",
    burnin: Mapping | None = None,
    n_iter: int | None = None,
    trace: str = "all",
    thin: int = 1,
    smooth: int = 3,
    n_Rhat: int = 3,
    groups: Sequence | None = None,
    max_params: int = 16,
    psr: bool = True,
    dpi: int = 90,
    prefix: str = "chains_",
) -> dict:
    """Trace, ACF, density and summary statistics per parameter, one file per block (mitml's
    ``plot``).

    Parameters
    ----------
    x : ImputationResult, or dict block -> array (rows, cols, iterations, groups[, chains]) of
        the imputation phase (then give ``n_iter`` and optionally ``burnin``).
    path : directory, optional
        Where to write ``{prefix}{block}.{format}`` (created if needed). Without ``path`` nothing
        is written and the figures are returned.
    blocks : blocks to draw (default all of the run).
    format : ``"png"`` (one image per block, parameters stacked, at most ``max_params``) or
        ``"pdf"`` (one multi-page file per block, one page per parameter, all parameters).
    burnin : dict of burn-in arrays (only when ``x`` is a dict).
    n_iter : iterations between imputations (taken from ``x.settings`` for an ImputationResult).
    trace : ``"all"`` (default: burn-in shaded, then the imputation phase), ``"imputation"`` or
        ``"burnin"``. The ACF, density and statistics use the imputation phase (the burn-in with
        ``trace="burnin"``).
    thin : int, default 1; plot every ``thin``-th draw.
    smooth : int, default 3; the moving average spans ``2 floor(n_iter / (smooth thin)) + 1``
        draws (0 switches it off).
    n_Rhat : int, default 3; segments per chain for the Rhat shown.
    groups : group positions to draw (default all).
    max_params : int, default 16 (PNG only).
    psr : bool, default True; also write/return the PSR-by-iteration figure (``"psr"``) when the
        burn-in is available.
    dpi : int, default 90 (PNG resolution).
    prefix : str, default ``"chains_"``.

    Returns
    -------
    dict block -> path of the written file, or block -> Figure when ``path`` is None (with
    ``format="pdf"`` and no path: block -> list of one Figure per parameter).

    Examples
    --------
    >>> files = imp.plot("diagnostics", format="pdf")  # doctest: +SKIP
    """
    fmt = _check_format(format)
    _check_trace(trace)
    if not isinstance(thin, (int, np.integer)) or thin < 1:
        raise ValueError(f"`thin` must be a positive integer; got {thin!r}.")
    imp, burn, _, _, _ = _source(x, burnin, n_iter)
    todo = [b for b in BLOCKS if b in imp] if blocks is None else list(blocks)
    bad = [b for b in todo if b not in imp]
    if bad:
        raise ValueError(
            f"`blocks` {bad} not in this run; choose from {[b for b in BLOCKS if b in imp]}."
        )
    out: dict = {}
    if path is not None:
        os.makedirs(path, exist_ok=True)
    kw: dict[str, Any] = {
        "burnin": burnin,
        "n_iter": n_iter,
        "trace": trace,
        "thin": thin,
        "smooth": smooth,
        "n_Rhat": n_Rhat,
    }
    for b in todo:
        if fmt == "png":
            fig = block_figure(x, b, groups=groups, max_params=max_params, **kw)
            if path is None:
                out[b] = fig
            else:
                fn = os.path.join(os.fspath(path), f"{prefix}{b}.png")
                fig.savefig(fn, dpi=dpi)
                out[b] = fn
        else:
            items = _items(x, b, burnin, n_iter, groups, None)
            figs = []
            for title, b_, i_, n_it_ in items:
                fig = Figure(figsize=(9.0, 4.2))
                gs = GridSpec(1, 1, figure=fig, left=0.08, right=0.98, top=0.92, bottom=0.11)
                _draw_parameter(fig, gs[0], title, b_, i_, n_it_, trace, thin, smooth, n_Rhat)
                figs.append(fig)
            if path is None:
                out[b] = figs
            else:
                from matplotlib.backends.backend_pdf import PdfPages

                fn = os.path.join(os.fspath(path), f"{prefix}{b}.pdf")
                with PdfPages(fn) as pdf:
                    for fig in figs:
                        pdf.savefig(fig)
                out[b] = fn
    n_total = next(iter(imp.values())).shape[2] + (
        0 if burn is None else next(iter(burn.values())).shape[2]
    )
    if psr and burn is not None and n_total >= 8:
        fig = plot_psr(
            x
            if not isinstance(x, Mapping)
            else {b: np.concatenate([burn[b], imp[b]], axis=2) for b in imp if b in burn}
        )
        if path is None:
            out["psr"] = fig
        else:
            fn = os.path.join(os.fspath(path), f"{prefix}psr.{fmt}")
            fig.savefig(fn, dpi=dpi)
            out["psr"] = fn
    return out


def plot_psr(
    x: Any,
    path: str | os.PathLike | None = None,
    checkpoints: Sequence[int] | None = None,
    n_points: int = 20,
) -> Figure:
    """Largest potential scale reduction per block at increasing iteration counts (the figure
    of :func:`pymitml.diagnostics.psr_by_iteration`, Blimp's burn-in PSR table).

    Parameters
    ----------
    x : ImputationResult or dict block -> array (burn-in and imputation joined).
    path : file to write (format from the suffix), optional.
    checkpoints, n_points : see :func:`pymitml.diagnostics.psr_by_iteration`.

    Returns
    -------
    matplotlib.figure.Figure (one axes; one line per block, reference lines at 1.05 and 1.1).
    """
    tab = psr_by_iteration(x, checkpoints=checkpoints, n_points=n_points)
    fig = Figure(figsize=(7.0, 3.6))
    ax = fig.add_subplot(1, 1, 1)
    for k, b in enumerate(b for b in BLOCKS if b in tab):
        ax.plot(
            tab["to"],
            tab[b],
            marker="o",
            ms=3,
            lw=1.2,
            label=b,
            color=_CHAIN_COLORS[(k + 1) % len(_CHAIN_COLORS)],
        )
    ax.axhline(1.05, color="0.4", lw=0.8, ls="--")
    ax.axhline(1.1, color="tab:red", lw=0.8, ls=":")
    n_burn = None if isinstance(x, Mapping) else (getattr(x, "settings", {}) or {}).get("n_burn")
    if n_burn:
        ax.axvline(n_burn + 0.5, color="tab:blue", lw=0.8)
    ax.set_xlabel("Iterations (PSR from the second half of each chain, split in two)")
    ax.set_ylabel("Largest PSR")
    ax.set_title("Potential scale reduction by iteration", fontsize=10, loc="left")
    ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path)
    return fig
