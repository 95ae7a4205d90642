"""Multilevel R-squared measures of linear mixed models (mitml's ``multilevelR2``).

For a model ``y = X beta + Z b + e`` with one grouping factor, fixed effects beta (first column of
X the intercept), random effects b ~ N(0, Tau) whose first term is the intercept, residual
variance s1 = sigma^2, and the random-intercept-only null model ``y ~ 1 + (1 | g)`` with
residual variance s0 and intercept variance t0.0 (fitted to the same rows, by the same criterion):

- RB1 = 1 - s1 / s0 (level-1 variance explained; Raudenbush & Bryk 2002)
- RB2 = 1 - t0.1 / t0.0 (level-2 intercept variance explained; Raudenbush & Bryk 2002)
- SB = 1 - (s1 + t0.1) / (s0 + t0.0) (total variance explained; Snijders & Bosker 2012)
- MVP = var(X beta) / v_y with v_y = var(X beta) + t0.1 + 2 mu_Z' tau_10 + mu_Z' T_11 mu_Z
  + tr(T_11 S_Z) + s1 (variance explained by the fixed effects; LaHuis et al. 2014, the
  Nakagawa & Schielzeth marginal R2 extended to random slopes), where mu_Z and S_Z are the
  means and covariance of the random slopes' predictors and Tau = [[t0.1, tau_10'],
  [tau_10, T_11]].

With a list of fits (one per imputation) each measure is averaged over imputations.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._failures import check_no_failed, screen_fits

__all__ = ["multilevel_r2"]

_CODES = ("RB1", "RB2", "SB", "MVP")
_ALIASES = {
    "ALL": _CODES,
    "RAUDENBUSH": ("RB1", "RB2"),
    "RAUDENBUSH-BRYK": ("RB1", "RB2"),
    "SNIJDERS": ("SB",),
    "SNIJDERS-BOSKER": ("SB",),
    "LAHUIS": ("MVP",),
    "NAKAGAWA": ("MVP",),
}


def multilevel_r2(
    fits: Any, method: str | Sequence[str] = "all", pooled: bool = True, on_failure: str = "error"
) -> pd.Series | pd.DataFrame:
    """Multilevel R-squared of linear mixed models, averaged over imputations (``multilevelR2``).

    Parameters
    ----------
    fits : one ``pymitml.lmer`` fit, or a list of m fits (one per imputed data set).
    method : which measures: mitml's codes ``"RB1"``, ``"RB2"``, ``"SB"``, ``"MVP"`` (one or a
        list, case-insensitive), ``"all"`` (default), or the aliases ``"raudenbush"`` (RB1, RB2),
        ``"snijders"`` (SB), ``"nakagawa"``/``"lahuis"`` (MVP).
    pooled : with a list, return the mean over imputations (a Series, as mitml); False returns
        a DataFrame with one row per imputation.
    on_failure : fits that failed or warned (recorded by ``with_``): ``"error"`` (default),
        ``"drop"`` or ``"drop_warned"``, as :func:`pymitml.pool_estimates`.

    Returns
    -------
    pandas Series indexed by the measures' codes (or a DataFrame, see ``pooled``).

    Notes
    -----
    RB1, RB2 and SB refit the null model ``y ~ 1 + (1 | g)`` to each data set with the fit's
    criterion (REML or ML), as mitml does via ``update``; MVP needs no refit. The model must
    contain a fixed intercept.

    Examples
    --------
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ x + (1 + x|g)", d))  # doctest: +SKIP
    >>> pm.multilevel_r2(fits)  # doctest: +SKIP
    RB1    0.137
    RB2    0.509
    SB     0.183
    MVP    0.141
    dtype: float64
    """
    codes = _codes(method)
    single = not isinstance(fits, Sequence) or isinstance(fits, (str, bytes))
    fit_list = [fits] if single else list(fits)
    if not fit_list:
        raise ValueError("`fits` is empty; pass an lmer fit or a list of lmer fits.")
    if single:
        check_no_failed(fit_list)
    else:
        fit_list, _ = screen_fits(fits, on_failure)
    for f in fit_list:
        _check_lmer(f)
    rows = [_r2_one(f, codes) for f in fit_list]
    table = pd.DataFrame(rows, columns=list(codes))
    if single:
        return table.iloc[0].rename(None)
    if not pooled:
        table.index = pd.RangeIndex(1, len(rows) + 1, name="imputation")
        return table
    return table.mean(axis=0)


def _codes(method: Any) -> tuple[str, ...]:
    items = [method] if isinstance(method, str) else method
    if not isinstance(items, Sequence) or not items or not all(isinstance(x, str) for x in items):
        raise ValueError(
            f"`method` must be one of {list(_CODES)}, 'all', 'raudenbush', "
            f"'snijders', 'nakagawa', or a list of codes; got {method!r}."
        )
    out: list[str] = []
    for x in items:
        key = x.upper()
        chosen = _ALIASES.get(key, (key,) if key in _CODES else None)
        if chosen is None:
            raise ValueError(
                f"`method` must be among {list(_CODES)} or 'all', 'raudenbush', "
                f"'snijders', 'nakagawa'; got {x!r}."
            )
        out += [c for c in chosen if c not in out]
    return tuple(c for c in _CODES if c in out)


def _check_lmer(fit: Any) -> None:
    lmm = sys.modules.get("pymitml.lmm")
    cls: Any = getattr(lmm, "LmerFit", None)
    is_lmer = isinstance(cls, type) and isinstance(fit, cls)  # (a bool: fit stays Any)
    if not is_lmer:
        raise TypeError(
            "multilevel R-squared is available for pymitml.lmer fits; got a fit of "
            f"class '{type(fit).__name__}'."
        )
    if not fit.fixed_names or fit.fixed_names[0] != "(Intercept)":
        raise ValueError(
            f"multilevel R-squared needs a model with a fixed intercept; the model "
            f"{fit.formula!r} has none: add '1 +' to the fixed part."
        )


def _r2_one(fit, codes: tuple[str, ...]) -> list[float]:
    """RB1, RB2, SB, MVP (those in ``codes``) of one fit."""
    null = _null_model(fit) if {"RB1", "RB2", "SB"} & set(codes) else None
    return r2_values(
        fit.fixef.to_numpy(dtype=float),
        fit.cov_random.to_numpy(),
        float(fit.sigma) ** 2,
        fit.X,
        fit.Z,
        null,
        codes,
    )


def r2_values(
    beta: np.ndarray,
    tau: np.ndarray,
    s1: float,
    X: np.ndarray,
    Z: np.ndarray,
    null: tuple[float, float] | None,
    codes: tuple[str, ...] = _CODES,
) -> list[float]:
    """The measures from a fit's parameters and design (see the module docstring).

    beta (p,) fixed effects with the intercept first; tau (q, q) random-effects covariance with
    the intercept first; s1 residual variance; X (n, p) and Z (n, q) designs; null = (s0, t0.0)
    of the null model (needed for RB1, RB2, SB).
    """
    t0_1 = tau[0, 0]
    t10 = tau[0, 1:]
    t11 = tau[1:, 1:]
    X = np.asarray(X, dtype=float)[:, 1:]
    Z = np.asarray(Z, dtype=float)[:, 1:]
    mu_z = Z.mean(axis=0)
    s_z = np.atleast_2d(np.cov(Z, rowvar=False)) if Z.shape[1] else np.zeros((0, 0))
    v_yhat = float(np.var(X @ beta[1:], ddof=1))
    v_y = v_yhat + t0_1 + 2 * mu_z @ t10 + mu_z @ t11 @ mu_z + np.trace(t11 @ s_z) + s1
    values = {"MVP": v_yhat / v_y}
    if null is not None:
        s0, t0_0 = null
        values["RB1"] = 1 - s1 / s0
        values["RB2"] = 1 - t0_1 / t0_0
        values["SB"] = 1 - (s1 + t0_1) / (s0 + t0_0)
    return [float(values[c]) for c in codes]


def _null_model(fit) -> tuple[float, float]:
    """Residual and intercept variance of ``y ~ 1 + (1 | g)`` on the fit's rows and criterion."""
    from ..lmm import lmer

    data = pd.DataFrame({"y": np.asarray(fit.y, dtype=float), "g": np.asarray(fit.cluster_codes)})
    null = lmer("y ~ 1 + (1 | g)", data, REML=fit.REML)
    return float(null.sigma) ** 2, float(null.cov_random.to_numpy()[0, 0])
