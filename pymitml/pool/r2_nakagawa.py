"""Nakagawa-Schielzeth R^2 of lmer fits, per imputation and pooled (performance::r2_nakagawa).

For a linear mixed model (Nakagawa & Schielzeth 2013; random slopes by Johnson 2014):

    var_f = var(X beta_hat)                              (sample variance, divisor n - 1)
    var_r = (1/n) sum_i z_i' Tau z_i                     (z_i: row i's random-effect columns)
    var_e = sigma^2
    R2_marginal    = var_f / (var_f + var_r + var_e)
    R2_conditional = (var_f + var_r) / (var_f + var_r + var_e)

With a random intercept only, var_r = tau_00; with several terms var_r is the sum of the
terms' parts. (performance 0.10.2 leaves the slope variance of an uncorrelated term
``(x || g)`` out of var_r; it is included here, as the formula says.) Across imputations each R^2 is pooled on the
logit scale, R2_pooled = expit(mean_l logit R2_l), as R^2 is bounded and skewed (cf. Harel
2009, who averages Fisher z of sqrt(R^2)); the plain means are reported beside.

Intervals (conditional on each data set's X): per fit, the variance of logit R^2 by the delta
method in (beta, phi), with Var(beta) = vcov, Var(phi) = the observed-information covariance of
:func:`~pymitml.pool.variance_components.transformed_covariance_parameters` (log SDs, Fisher z,
log sigma), beta and phi taken as uncorrelated (they are asymptotically, in linear mixed
models); Rubin's rules on the logit scale, back-transformed. Boundary fits have no such
standard errors: then the interval columns are NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._failures import FitReport, check_on_failure, screen_fits
from .estimates import _percent_labels, _rubin, format_table

__all__ = ["PooledR2", "pool_r2_nakagawa", "r2_nakagawa"]


def _check(fit: Any) -> None:
    if hasattr(fit, "family") or not all(
        hasattr(fit, a) for a in ("X", "fixef", "varcorr", "sigma")
    ):
        raise TypeError(
            "Nakagawa's R^2 here needs linear mixed-model fits from pm.lmer; got a "
            f"{type(fit).__name__}."
        )


def r2_nakagawa(fit: Any) -> pd.Series:
    """Marginal and conditional R^2 of one lmer fit (``performance::r2_nakagawa``).

    Returns a Series with ``marginal``, ``conditional`` and the variance parts ``var_fixed``,
    ``var_random``, ``var_residual``.
    """
    _check(fit)
    blocks = _random_blocks(fit)
    X = np.asarray(fit.X, dtype=float)
    beta = fit.fixef.to_numpy(dtype=float)
    if len(blocks) == 1:
        return r2_parts(X, blocks[0][0], beta, blocks[0][1], float(fit.sigma))
    # several terms: var_r is the sum of the terms' parts (performance::r2_nakagawa)
    var_r = sum(float(np.mean(np.einsum("ij,jk,ik->i", Z, tau, Z))) for Z, tau in blocks)
    var_f = _var_fixed(X, beta)
    var_e = float(fit.sigma) ** 2
    total = var_f + var_r + var_e
    return pd.Series(
        {
            "marginal": var_f / total,
            "conditional": (var_f + var_r) / total,
            "var_fixed": var_f,
            "var_random": var_r,
            "var_residual": var_e,
        }
    )


def _var_fixed(X: np.ndarray, beta: np.ndarray) -> float:
    """var(X beta) (divisor n - 1) from the centred columns: exactly 0 for an intercept only."""
    eta = (X - X.mean(axis=0)) @ beta
    return float(eta @ eta) / (X.shape[0] - 1)


def _random_blocks(fit: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per random-effect term: each row's values of the term's columns (n, q) and the term's
    covariance matrix (q, q), in lme4's order."""
    terms = getattr(fit, "re_terms", ())
    if not terms:
        Z = np.asarray(fit.Z, dtype=float)
        tau = fit.cov_random.to_numpy(dtype=float)
        if Z.ndim != 2 or Z.shape[1] != tau.shape[0]:
            raise ValueError("the fit's random-effect design does not match its covariance matrix.")
        return [(Z, tau)]
    from scipy import sparse

    Zs = sparse.csc_matrix(fit.Z_sparse())
    out = []
    for info, (_, names, tau) in zip(terms, fit.cov_random_terms()):
        q = len(names)
        collapse = sparse.kron(np.ones((int(info.n_levels), 1)), sparse.identity(q))
        out.append((np.asarray((Zs[:, info.columns] @ collapse).todense()), np.asarray(tau)))
    return out


def r2_parts(
    X: np.ndarray, Z: np.ndarray, beta: np.ndarray, tau: np.ndarray, sigma: float
) -> pd.Series:
    """The R^2 formulas of the module docstring at given parameters: X (n, p), Z (n, q) the
    random-effect columns of each row, beta (p,), tau (q, q), sigma."""
    tau = np.atleast_2d(np.asarray(tau, dtype=float))
    var_f = _var_fixed(X, beta)
    var_r = float(np.mean(np.einsum("ij,jk,ik->i", Z, tau, Z)))
    var_e = float(sigma) ** 2
    total = var_f + var_r + var_e
    return pd.Series(
        {
            "marginal": var_f / total,
            "conditional": (var_f + var_r) / total,
            "var_fixed": var_f,
            "var_random": var_r,
            "var_residual": var_e,
        }
    )


@dataclass(frozen=True, repr=False, eq=False)
class PooledR2:
    """Pooled Nakagawa R^2: ``table`` (rows marginal, conditional; columns ``Estimate``
    (logit-scale pooled), ``Mean`` (plain mean), ``Min``, ``Max``, the interval, and on the
    logit scale ``Std.Error``, ``df``, ``FMI``), ``per_imputation``."""

    _table: pd.DataFrame
    _per_imputation: pd.DataFrame
    m: int
    fit_report: FitReport | None = None

    @property
    def table(self) -> pd.DataFrame:
        return self._table.copy()

    @property
    def per_imputation(self) -> pd.DataFrame:
        return self._per_imputation.copy()

    def to_string(self, digits: int = 3) -> str:
        lines = ["", f"Nakagawa-Schielzeth R2 pooled over {self.m} imputed data sets", ""]
        if self.fit_report is not None and not self.fit_report.clean:
            lines += self.fit_report.lines() + [""]
        lines += format_table(self._table, digits, 5)
        lines += [
            "",
            "Estimate: mean of logit(R2) over imputations, back-transformed; intervals by Rubin's",
            "rules on the logit scale (delta-method standard errors, conditional on X).",
        ]
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return self.to_string()


def pool_r2_nakagawa(
    fits: Sequence[Any], *, level: float = 0.95, on_failure: str = "error"
) -> PooledR2:
    """Nakagawa-Schielzeth marginal and conditional R^2 of m lmer fits, pooled.

    Parameters
    ----------
    fits : m ``pm.lmer`` fits.
    level : confidence level of the intervals (see the module docstring).
    on_failure : ``"error"`` | ``"drop"`` | ``"drop_warned"`` as in :func:`pool_estimates`.

    Examples
    --------
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ x + (1 + x | g)", d))  # doctest: +SKIP
    >>> pm.pool_r2_nakagawa(fits).table  # doctest: +SKIP
    """
    kept, report = screen_r2_fits(fits, level, on_failure)
    per = pd.DataFrame([r2_nakagawa(f) for f in kept])
    per.index = pd.RangeIndex(1, len(kept) + 1, name="fit")
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.stack([_logit_variances(f) for f in kept])
    table = logit_pooled_table(per[["marginal", "conditional"]], u, level)
    per["se_logit_marginal"] = np.sqrt(u[:, 0])
    per["se_logit_conditional"] = np.sqrt(u[:, 1])
    return PooledR2(table, per, len(kept), report)


def screen_r2_fits(fits: Sequence[Any], level: float, on_failure: str) -> tuple[list, FitReport]:
    """The checks of the R^2 pooling functions; the fits kept and the failure report."""
    on_failure = check_on_failure(on_failure)
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"`level` must be a number between 0 and 1; got {level!r}.")
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence):
        raise TypeError(
            f"`fits` must be a list of pm.lmer fits, one per imputed data set; got {type(fits).__name__}."
        )
    kept, report = screen_fits(fits, on_failure)
    if len(kept) < 2:
        raise ValueError(f"pooling needs fits from at least 2 imputed data sets; got {len(kept)}.")
    return kept, report


def logit_pooled_table(r2: pd.DataFrame, u: np.ndarray, level: float) -> pd.DataFrame:
    """R^2 values (fits x measures) pooled on the logit scale: ``Estimate`` = expit(mean logit),
    the plain ``Mean``, ``Min``, ``Max``, and with the per-fit variances ``u`` of logit R^2 an
    interval by Rubin's rules on that scale (``Std.Error``, ``df``, ``FMI`` on the logit scale;
    NaN when some fit has no finite variance)."""
    with np.errstate(divide="ignore"):  # R2 = 0 (no fixed predictors): logit -inf, pooled 0
        logit = np.log(r2 / (1.0 - r2))
    pooled = 1.0 / (1.0 + np.exp(-logit.mean(axis=0)))
    table = pd.DataFrame(
        {"Estimate": pooled, "Mean": r2.mean(axis=0), "Min": r2.min(axis=0), "Max": r2.max(axis=0)}
    )
    lo_name, hi_name = _percent_labels((1.0 - level) / 2.0)
    if np.all(np.isfinite(u)):
        from scipy import stats

        arr, _ = _rubin(logit.to_numpy(), u, True, None)
        se, v = arr[:, 1], arr[:, 3]
        fac = stats.t.ppf(1.0 - (1.0 - level) / 2.0, v)
        expit = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
        table[lo_name] = expit(arr[:, 0] - fac * se)
        table[hi_name] = expit(arr[:, 0] + fac * se)
        table["Std.Error"], table["df"], table["FMI"] = se, v, arr[:, 6]
    else:
        for c in (lo_name, hi_name, "Std.Error", "df", "FMI"):
            table[c] = np.nan
    return table


def _logit_variances(fit: Any) -> np.ndarray:
    """Delta-method variances of (logit R2_marginal, logit R2_conditional) of one fit; NaN for
    boundary fits (see the module docstring)."""
    from .variance_components import (
        _covs_of,
        _terms_and_values,
        transformed_covariance_parameters,
    )

    try:
        phi_s, cov = transformed_covariance_parameters(fit)
    except ValueError:
        return np.full(2, np.nan)
    terms = _terms_and_values(fit)[0]
    blocks = _random_blocks(fit)
    if len(terms) != len(blocks):
        return np.full(2, np.nan)
    X = np.asarray(fit.X, dtype=float)
    beta = fit.fixef.to_numpy(dtype=float)
    Xc = X - X.mean(axis=0)
    S = Xc.T @ Xc / (X.shape[0] - 1)
    Ms = [Z.T @ Z / Z.shape[0] for Z, _ in blocks]
    phi = phi_s.to_numpy()

    def vr_of(x: np.ndarray) -> float:
        return float(sum(np.sum(c * M) for c, M in zip(_covs_of(x, terms)[0], Ms)))

    vf = float(beta @ S @ beta)
    vr = vr_of(phi)
    ve = float(np.exp(2.0 * phi[-1]))
    h = 1e-6
    unit = np.eye(phi.size)
    dvr = np.array([(vr_of(phi + h * e) - vr_of(phi - h * e)) / (2.0 * h) for e in unit])
    dve = np.zeros(phi.size)
    dve[-1] = 2.0 * ve
    dvf = 2.0 * S @ beta
    g_m = (dvf / vf, -(dvr + dve) / (vr + ve))
    g_c = (dvf / (vf + vr), dvr / (vf + vr) - dve / ve)
    V_b, V_p = fit.vcov.to_numpy(dtype=float), cov.to_numpy()
    return np.array([gb @ V_b @ gb + gp @ V_p @ gp for gb, gp in (g_m, g_c)])
