"""delta_analysis: a pattern-mixture tipping-point analysis over a grid of shifts."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._impute import model_impute

__all__ = ["delta_analysis"]


def delta_analysis(
    data: Any,
    formula: str,
    *,
    variable: str | None = None,
    deltas: Sequence[float] = (-1.0, -0.5, 0.0, 0.5, 1.0),
    term: str | None = None,
    analysis: Callable[[Any], Any] | None = None,
    plot: bool = False,
    **kwargs,
):
    """Pooled estimate of one term per pattern-mixture shift delta (tipping-point analysis).

    The data are imputed once by :func:`model_impute` (MAR, or the selection model given in
    ``kwargs``); for every delta the imputed values of ``variable`` are shifted by delta (the
    pattern-mixture model: missing values differ from the imputation model's predictions by
    delta), the analysis is refitted to the m shifted data sets and pooled by Rubin's rules.

    Parameters
    ----------
    data, formula : as :func:`model_impute` (``formula`` is also the default analysis, fitted by
        ``pm.lmer`` with REML, or ordinary least squares without a random term).
    variable : the shifted variable (default: the focal response).
    deltas : the shifts.
    term : the pooled coefficient reported (default: the first non-intercept coefficient).
    analysis : ``analysis(completed DataFrame) -> fit`` (anything :func:`pool_estimates` takes).
    plot : also draw estimate and 95% interval against delta (returns ``(table, axes)``).
    kwargs : passed to :func:`model_impute` (m, n_burn, n_iter, chains, seed, predictors, ...).

    Returns
    -------
    DataFrame indexed by delta: Estimate, Std.Error, 2.5%, 97.5%, P(>|t|) of ``term``.
    """
    from ...pool import pool_estimates

    kwargs.setdefault("verbose", False)
    imp = model_impute(data, formula, **kwargs)
    name = variable or formula.split("~")[0].strip()
    if name not in imp.targets:
        raise ValueError(f"`variable` '{name}' has no imputed values; choose one of {imp.targets}.")
    t = imp.targets.index(name)
    pos = imp.extra["target_positions"][t]
    rows = imp.index[:, 1] == pos
    if analysis is None:
        analysis = _default_analysis(formula)
    out = []
    for delta in deltas:
        rep = imp.replacement.copy()
        rep[rows] += float(delta)
        shifted = dataclasses.replace(imp, replacement=rep)
        fits = shifted.complete().with_(analysis)
        tab = pool_estimates(fits).table
        key = term if term is not None else next(i for i in tab.index if "Intercept" not in i)
        if key not in tab.index:
            raise ValueError(
                f"`term` {key!r} is not a pooled coefficient; choose one of {list(tab.index)}."
            )
        r = tab.loc[key]
        half = r["Std.Error"] * _t_quantile(r["df"])
        out.append(
            (
                float(delta),
                r["Estimate"],
                r["Std.Error"],
                r["Estimate"] - half,
                r["Estimate"] + half,
                r["P(>|t|)"],
            )
        )
    table = pd.DataFrame(
        out, columns=["delta", "Estimate", "Std.Error", "2.5%", "97.5%", "P(>|t|)"]
    ).set_index("delta")
    table.attrs["term"] = key
    if not plot:
        return table
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(table.index, table["Estimate"], marker="o")
    ax.fill_between(table.index, table["2.5%"], table["97.5%"], alpha=0.25)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel(f"delta (shift of the imputed '{name}')")
    ax.set_ylabel(f"pooled estimate of {key}")
    return table, ax


def _t_quantile(df: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.975, df if np.isfinite(df) else 1e12))


def _default_analysis(formula: str):
    if "|" in formula:
        from ...lmm import lmer

        return lambda d: lmer(formula, d, REML=True)
    import statsmodels.formula.api as smf

    return lambda d: smf.ols(formula.replace("^", "**"), d).fit()
