"""Denominator degrees of freedom for lmer fits: Satterthwaite (lmerTest), Kenward-Roger (pbkrtest).

``fit.coef_table(ddf="Satterthwaite")`` is lmerTest's ``summary(fit)$coefficients``;
``ddf="Kenward-Roger"`` is ``summary(fit, ddf = "Kenward-Roger")``: the standard errors come
from pbkrtest's adjusted covariance ``vcovAdj`` and the df from ``Lb_ddf``. :func:`contest`
tests a contrast matrix L (one or more rows), H0: L beta = rhs, with an F statistic and its
numerator/denominator df, as lmerTest's ``contest(fit, L)`` (``contestMD``) and pbkrtest's
``KRmodcomp(fit, L)``.

The methods and their formulas are in :mod:`.ddf_satterthwaite` and
:mod:`.ddf_kenward_roger`. The variance-parameter derivatives and adjusted covariance are
computed once per fit and kept (in a weak cache) for later tables and contrasts.
"""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice
from .ddf_design import design_of
from .ddf_kenward_roger import KenwardRoger, kenward_roger, kr_adjust
from .ddf_satterthwaite import SatterthwaiteParts, satterthwaite_1d, satterthwaite_md
from .ddf_satterthwaite import satterthwaite_parts as _satterthwaite_parts

__all__ = ["DDF_METHODS", "coef_table_ddf", "contest", "ddf_of"]

#: the ``ddf`` methods :meth:`LmerFit.coef_table` and :func:`contest` accept
DDF_METHODS = ("Satterthwaite", "Kenward-Roger")

_CACHE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()


def _varpar(fit: Any) -> np.ndarray:
    return np.r_[np.asarray(fit.theta, dtype=float), float(fit.sigma)]


def _parts(fit: Any, ddf: str) -> Any:
    """The fit's Satterthwaite parts or Kenward-Roger adjustment (computed once)."""
    store = _CACHE.setdefault(fit, {})
    if ddf not in store:
        if ddf == "Kenward-Roger" and not fit.REML:
            raise ValueError(
                "`ddf='Kenward-Roger'` is only available for REML fits (as in lmerTest); "
                "this fit is ML: refit with `fit.refit(REML=True)` or use ddf='Satterthwaite'."
            )
        design = design_of(fit)
        if ddf == "Satterthwaite":
            store[ddf] = _satterthwaite_parts(design, _varpar(fit))
        else:
            store[ddf] = kenward_roger(design, fit.theta, fit.sigma)
    return store[ddf]


def _check_fit(fit: Any, ddf: Any) -> str:
    from .fit import LmerFit

    if not isinstance(fit, LmerFit):
        raise TypeError(f"`fit` must be an LmerFit (from pm.lmer); got {type(fit).__name__}.")
    return check_choice(ddf, DDF_METHODS, "ddf")


def ddf_of(fit: Any, L: Any, ddf: str = "Satterthwaite") -> tuple[np.ndarray, np.ndarray]:
    """Variance and df of each row l of L (m, p) as a 1-d contrast: (var (m,), df (m,)).

    Satterthwaite: Var(l'beta) from ``fit.vcov``; Kenward-Roger: from the adjusted covariance.
    """
    ddf = _check_fit(fit, ddf)
    L = _check_L(L, fit.n_fixed)
    part = _parts(fit, ddf)
    out = np.empty((2, L.shape[0]))
    for i, row in enumerate(L):
        if isinstance(part, SatterthwaiteParts):
            out[:, i] = satterthwaite_1d(part, row)
        else:
            out[0, i] = float(row @ part.phi_adj @ row)
            out[1, i] = kr_adjust(part, row[None, :])[0]
    return out[0], out[1]


def coef_table_ddf(fit: Any, ddf: str) -> pd.DataFrame:
    """lmerTest's coefficient table: Estimate, Std. Error, df, t value, Pr(>|t|).

    Examples
    --------
    >>> fit = pm.lmer("Reaction ~ Days + (Days | Subject)", sleepstudy)  # doctest: +SKIP
    >>> fit.coef_table(ddf="Satterthwaite").round(3)  # doctest: +SKIP
                 Estimate  Std. Error      df  t value  Pr(>|t|)
    (Intercept)   251.405       6.825  17.000   36.838       0.0
    Days           10.467       1.546  17.000    6.771       0.0
    """
    from scipy import stats

    ddf = _check_fit(fit, ddf)
    est = fit.fixef.to_numpy(dtype=float)
    var, df = ddf_of(fit, np.eye(est.size), ddf)
    se = np.sqrt(var)
    t = est / se
    return pd.DataFrame(
        {
            "Estimate": est,
            "Std. Error": se,
            "df": df,
            "t value": t,
            "Pr(>|t|)": 2.0 * stats.t.sf(np.abs(t), df),
        },
        index=fit.fixef.index,
    )


def _check_L(L: Any, p: int) -> np.ndarray:
    arr = np.asarray(L, dtype=float)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != p or arr.shape[0] == 0:
        raise ValueError(
            f"`L` must be a contrast vector of length {p} or a matrix with {p} columns (one per "
            f"fixed effect) and at least one row; got shape {np.shape(L)}."
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("`L` has missing or infinite values.")
    return arr


def contest(fit: Any, L: Any, ddf: str = "Satterthwaite", *, rhs: Any = 0.0) -> pd.DataFrame:
    """F test of H0: L beta = rhs with Satterthwaite or Kenward-Roger denominator df.

    lmerTest's ``contest(fit, L, ddf=, rhs=)`` (joint test): for Kenward-Roger the F value is
    pbkrtest's scaled statistic (``KRmodcomp``'s ``Ftest``), Mean Sq the unscaled one times
    sigma^2.

    Parameters
    ----------
    fit : LmerFit.
    L : contrast vector (p,) or matrix (m, p), columns in the order of ``fit.fixef``.
    ddf : ``"Satterthwaite"`` (default) or ``"Kenward-Roger"`` (REML fits only).
    rhs : the hypothesised value(s) of L beta: a scalar or m values.

    Returns
    -------
    DataFrame with one row: Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F).

    Examples
    --------
    >>> pm.lmm.ddf.contest(fit, np.eye(2), ddf="Kenward-Roger")  # doctest: +SKIP
    """
    from scipy import stats

    ddf = _check_fit(fit, ddf)
    L = _check_L(L, fit.n_fixed)
    rhs_v = np.broadcast_to(np.asarray(rhs, dtype=float), (L.shape[0],)).copy()
    beta = fit.fixef.to_numpy(dtype=float)
    part = _parts(fit, ddf)
    if isinstance(part, KenwardRoger):
        F_unscaled, ndf, den, scale = _kr_test(part, L, beta, rhs_v)
    else:
        F_unscaled, ndf, den = satterthwaite_md(part, L, beta, rhs_v)
        scale = 1.0
    ms = F_unscaled * fit.sigma**2
    F = F_unscaled * scale
    return pd.DataFrame(
        {
            "Sum Sq": [ms * ndf],
            "Mean Sq": [ms],
            "NumDF": [ndf],
            "DenDF": [den],
            "F value": [F],
            "Pr(>F)": [stats.f.sf(F, ndf, den)],
        }
    )


def _kr_test(
    kr: KenwardRoger, L: np.ndarray, beta: np.ndarray, rhs: np.ndarray
) -> tuple[float, int, float, float]:
    """(unscaled F, ndf, ddf, scaling) of pbkrtest's ``KRmodcomp(fit, L, betaH)``."""
    beta_h = np.linalg.pinv(L) @ rhs if np.any(rhs != 0.0) else np.zeros_like(beta)
    rank = int(np.linalg.matrix_rank(L))
    if rank < L.shape[0]:  # pbkrtest's force_full_rank: a basis of L's row space
        L = np.linalg.svd(L)[2][:rank]
    ddf, scaling, _, _ = kr_adjust(kr, L)
    diff = L @ (beta - beta_h)
    wald = float(diff @ np.linalg.solve(L @ kr.phi_adj @ L.T, diff))
    return wald / rank, rank, ddf, scaling
