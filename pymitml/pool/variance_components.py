"""Pooled variance components with standard errors and intervals (lmer and glmer fits).

mitml's ``testEstimates(extra.pars = TRUE)`` averages the variance components over the m
imputations and gives no standard errors. Here every random-effect SD, variance, covariance,
correlation, the residual variance and the ICC get a pooled estimate, a standard error and a
confidence interval:

1. Per fit, the covariance parameters are written on scales where their sampling distribution
   is close to normal, phi = (log sd_a per random-effect column a, Fisher z = atanh(rho_ab) per
   pair, ..., log sigma), term by term in the order of ``varcorr``.
2. Per fit, Var(phi_hat) = 2 H^{-1}, H the Hessian in phi of the fit's own deviance
   (REML criterion, or ML deviance with beta profiled out; lmerTest's ``devfun_vp`` composed
   with phi -> (theta, sigma)), by numDeriv's Richardson scheme: the observed information.
3. Derived quantities by the delta method on the same scales: the ICC of grouping factor g on
   the logit scale, logit ICC_g = log tau_g - log(sum_{h != g} tau_h + sigma^2) (tau: intercept
   variances), and covariances sd_a sd_b rho_ab on their own scale.
4. Rubin's rules on each transformed quantity (q_bar, u_bar, b, t = u_bar + (1 + 1/m) b), with
   Barnard & Rubin's (1999) df (``df_com``; None: Rubin's v_m), interval q_bar -/+ t_v se,
   then back-transformed: SD = exp(.), variance = exp(2 .), rho = tanh(.), ICC = expit(.).

``Average`` is mitml's plain mean of the m point values, kept beside the pooled estimate.
glmer fits (binomial, Poisson; :mod:`.variance_components_glmer`): phi has no log sigma, and
step 2 uses the Hessian of the Laplace (nAGQ = 1) or quadrature deviance in (phi, beta)
jointly, since beta is not profiled out; Var(phi_hat) is the phi block of 2 H^{-1}. There are
no residual rows. The ICC is the latent-scale one (Nakagawa & Schielzeth 2013) for binomial
fits: tau_g / (sum_h tau_h + c) with c = pi^2/3 for the logit link and c = 1 for the probit
link; other links and Poisson fits get no ICC row.

Boundary (singular) fits have SD = 0 or |rho| = 1, where the transformed scale is infinite;
they cannot be pooled this way (``on_failure="drop_warned"`` leaves them out).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._failures import FitFailureError, FitReport, check_on_failure, screen_fits
from .estimates import _percent_labels, _rubin, format_table
from .variance_components_glmer import (
    glmer_transformed_covariance_parameters,
    is_glmer_fit,
    latent_residual_variance,
)

__all__ = [
    "PooledVarianceComponents",
    "pool_variance_components",
    "transformed_covariance_parameters",
]

#: SDs below this fraction of sigma (or |rho| above 1 - this) make a fit a boundary fit here
BOUNDARY_TOL = 1e-6


@dataclass(frozen=True)
class _Term:
    group: str
    names: tuple[str, ...]

    @property
    def q(self) -> int:
        return len(self.names)


def _terms_and_values(fit: Any) -> tuple[list[_Term], list[np.ndarray], float]:
    """Random-effect terms of ``fit.varcorr`` with each term's covariance matrix, and sigma
    (1 for a glmer fit)."""
    vc = fit.varcorr
    grp = vc["grp"].astype(str)
    rows = vc.loc[grp != "Residual"]
    terms, covs = [], []
    for g in pd.unique(rows["grp"].astype(str)):
        block = rows.loc[rows["grp"].astype(str) == g]
        is_var = block["var2"].isna()
        names = tuple(str(v) for v in block.loc[is_var, "var1"])
        pos = {n: i for i, n in enumerate(names)}
        cov = np.diag(block.loc[is_var, "vcov"].to_numpy(dtype=float))
        for a, b, c in block.loc[~is_var, ["var1", "var2", "vcov"]].itertuples(index=False):
            cov[pos[str(a)], pos[str(b)]] = cov[pos[str(b)], pos[str(a)]] = float(c)
        terms.append(_Term(g, names))
        covs.append(cov)
    return terms, covs, 1.0 if is_glmer_fit(fit) else float(fit.sigma)


def _pairs(q: int) -> list[tuple[int, int]]:
    return [(a, b) for a in range(q) for b in range(a + 1, q)]


def _phi_names(terms: list[_Term], residual: bool = True) -> list[str]:
    out = []
    for t in terms:
        out += [f"log sd({_label(n)})|{t.group}" for n in t.names]
        out += [
            f"z cor({_label(t.names[a])},{_label(t.names[b])})|{t.group}" for a, b in _pairs(t.q)
        ]
    return out + (["log sigma"] if residual else [])


def _phi_of(covs: list[np.ndarray], sigma: float, residual: bool = True) -> np.ndarray:
    """phi = (log sd, atanh rho) per term, then log sigma (``residual``)."""
    out = []
    for cov in covs:
        sd = np.sqrt(np.diag(cov))
        out += list(np.log(sd))
        out += [np.arctanh(cov[a, b] / (sd[a] * sd[b])) for a, b in _pairs(cov.shape[0])]
    return np.array(out + ([np.log(sigma)] if residual else []))


def _covs_of(phi: np.ndarray, terms: list[_Term]) -> tuple[list[np.ndarray], float]:
    """The inverse of :func:`_phi_of`: each term's covariance matrix, and sigma (1 when phi
    has no log sigma)."""
    covs, k = [], 0
    for t in terms:
        sd = np.exp(phi[k : k + t.q])
        k += t.q
        cor = np.eye(t.q)
        for a, b in _pairs(t.q):
            cor[a, b] = cor[b, a] = np.tanh(phi[k])
            k += 1
        covs.append(cor * np.outer(sd, sd))
    return covs, float(np.exp(phi[k])) if k < phi.size else 1.0


def _varpar(phi: np.ndarray, terms: list[_Term], theta_from_cov: Any) -> np.ndarray:
    """lmerTest's varpar (theta of every term, then sigma) at phi."""
    covs, sigma = _covs_of(phi, terms)
    return np.concatenate([theta_from_cov(c, sigma) for c in covs] + [np.array([sigma])])


def _check_fit(fit: Any, i: int) -> None:
    if is_glmer_fit(fit):
        if not all(hasattr(fit, a) for a in ("varcorr", "theta", "fixef", "link")):
            raise TypeError(
                f"fit {i + 1} ({type(fit).__name__}) lacks what pool_variance_components needs."
            )
        return
    if not all(hasattr(fit, a) for a in ("varcorr", "theta", "sigma", "X", "y", "REML")):
        raise TypeError(
            "pool_variance_components needs mixed-model fits from pm.lmer or pm.glmer; fit "
            f"{i + 1} is a {type(fit).__name__}."
        )
    if hasattr(fit, "family"):
        raise TypeError(
            "pool_variance_components handles pm.lmer and pm.glmer fits; fit "
            f"{i + 1} is a generalised model of another kind ({type(fit).__name__})."
        )


def _boundary(covs: list[np.ndarray], sigma: float) -> bool:
    for cov in covs:
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        if np.any(sd <= BOUNDARY_TOL * sigma):
            return True
        for a, b in _pairs(cov.shape[0]):
            if abs(cov[a, b] / (sd[a] * sd[b])) >= 1.0 - BOUNDARY_TOL:
                return True
    return False


def transformed_covariance_parameters(fit: Any) -> tuple[pd.Series, pd.DataFrame]:
    """phi_hat and its covariance 2 H^{-1} for one lmer or glmer fit (steps 1-2 of the module
    docstring; for glmer the phi block of 2 H^{-1}, H over (phi, beta)).

    Returns
    -------
    phi : Series indexed ``"log sd(a)|g"``, ``"z cor(a,b)|g"``, ..., ``"log sigma"`` (lmer
        only).
    cov : DataFrame, the inverse observed information of phi (same labels).

    Raises
    ------
    ValueError
        For a boundary (singular) fit, or when the Hessian is not positive definite.
    """
    from ..lmm.ddf_design import design_of
    from ..lmm.ddf_numderiv import hessian

    _check_fit(fit, 0)
    terms, covs, sigma = _terms_and_values(fit)
    if _boundary(covs, sigma):
        raise ValueError(
            "the fit is on the boundary (an SD of zero or a correlation of +-1): its variance "
            "components have no standard errors on the log-SD / Fisher-z scale. Simplify the "
            "random part or leave such fits out (on_failure='drop_warned')."
        )
    glmm = is_glmer_fit(fit)
    phi = _phi_of(covs, sigma, residual=not glmm)
    from ..lmm.fit import LmerFit

    theta_from_cov = getattr(type(fit), "theta_from_cov", LmerFit.theta_from_cov)
    vp = _varpar(phi, terms, theta_from_cov)
    theta = np.asarray(fit.theta, dtype=float)
    if vp.size - 1 != theta.size or not np.allclose(vp[:-1], theta, rtol=1e-6, atol=1e-8):
        raise ValueError(
            "the fit's theta does not match its varcorr table (random-effect terms in an "
            "order this function does not know); please report this with the formula."
        )
    if glmm:
        return glmer_transformed_covariance_parameters(
            fit,
            phi,
            _phi_names(terms, residual=False),
            lambda x: _varpar(x, terms, theta_from_cov)[:-1],
        )
    design = design_of(fit)

    def dev(x: np.ndarray) -> float:
        return design.deviance(_varpar(x, terms, theta_from_cov))

    H = hessian(dev, phi)
    H = 0.5 * (H + H.T)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the Hessian of the deviance in the transformed variance parameters is not positive "
            "definite at this fit (a flat or boundary likelihood): no standard errors."
        ) from None
    names = _phi_names(terms)
    cov = 2.0 * np.linalg.inv(H)
    return pd.Series(phi, index=names), pd.DataFrame(cov, index=names, columns=names)


# --------------------------------------------------------------------------------------------
# derived quantities: (names, scales, values(phi), jacobian(phi), back-transform, raw(phi))
# --------------------------------------------------------------------------------------------
_BACK: dict[str, Callable[[Any], Any]] = {
    "log SD": np.exp,
    "log SD (variance)": lambda x: np.exp(2.0 * x),
    "Fisher z": np.tanh,
    "logit": lambda x: 1.0 / (1.0 + np.exp(-x)),
    "identity": lambda x: x,
}


def _label(n: str) -> str:
    return "Intercept" if n == "(Intercept)" else n


def _quantities(
    terms: list[_Term], phi: np.ndarray, latent: float | None = None, glmm: bool = False
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Rows of the pooled table at one fit: names, scales, transformed values and their
    Jacobian in phi (rows x len(phi)).

    ``glmm``: phi has no log sigma, there are no residual rows, and the ICC uses the fixed
    latent residual variance ``latent`` (no ICC rows when it is None).
    """
    names: list[str] = []
    scales: list[str] = []
    vals: list[float] = []
    jac: list[np.ndarray] = []
    d = phi.size
    k = 0
    unit = np.eye(d)
    intercepts: list[tuple[str, int]] = []
    for t in terms:
        sd_at = {}
        for a, n in enumerate(t.names):
            sd_at[a] = k
            names += [f"{_label(n)}~~{_label(n)}|{t.group}", f"sd({_label(n)})|{t.group}"]
            scales += ["log SD (variance)", "log SD"]
            vals += [phi[k], phi[k]]
            jac += [unit[k], unit[k]]
            if n == "(Intercept)":
                intercepts.append((t.group, k))
            k += 1
        for a, b in _pairs(t.q):
            ia, ib = sd_at[a], sd_at[b]
            rho = np.tanh(phi[k])
            s = np.exp(phi[ia] + phi[ib])
            g = np.zeros(d)
            g[ia] = g[ib] = s * rho
            g[k] = s * (1.0 - rho * rho)
            na, nb = t.names[a], t.names[b]
            names += [
                f"{_label(na)}~~{_label(nb)}|{t.group}",
                f"cor({_label(na)},{_label(nb)})|{t.group}",
            ]
            scales += ["identity", "Fisher z"]
            vals += [s * rho, phi[k]]
            jac += [g, unit[k]]
            k += 1
    if glmm:
        if latent is None:
            return names, scales, np.asarray(vals), np.stack(jac)
        fixed_part = [float(latent)]
        varying: list[int] = []
    else:
        ks = k  # log sigma
        names += ["Residual~~Residual", "sd(Residual)"]
        scales += ["log SD (variance)", "log SD"]
        vals += [phi[ks], phi[ks]]
        jac += [unit[ks], unit[ks]]
        fixed_part, varying = [], [ks]
    for group, ki in intercepts:  # logit ICC_g = log tau_g - log(other tau + sigma^2 or c)
        others = [kj for _, kj in intercepts if kj != ki] + varying
        parts = [np.exp(2.0 * phi[kj]) for kj in others]
        rest = float(np.sum(parts) + np.sum(fixed_part))
        g = np.zeros(d)
        g[ki] = 2.0
        for kj, part in zip(others, parts):
            g[kj] -= 2.0 * part / rest
        names.append(f"ICC|{group}")
        scales.append("logit")
        vals.append(2.0 * phi[ki] - np.log(rest))
        jac.append(g)
    return names, scales, np.asarray(vals), np.stack(jac)


# --------------------------------------------------------------------------------------------
# the result record
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class PooledVarianceComponents:
    """Pooled variance components (see the module docstring for the method).

    Attributes
    ----------
    table : DataFrame, one row per quantity: ``Estimate`` (back-transformed pooled value),
        the interval (``"2.5 %"``, ``"97.5 %"`` for level 0.95), ``Average`` (mitml's mean of
        the m point values), ``Scale``, and on that scale ``Transformed`` (q_bar),
        ``Std.Error``, ``df``, ``RIV``, ``FMI``.
    per_imputation : DataFrame (m x quantities): each fit's transformed values.
    per_imputation_se : DataFrame (m x quantities): their standard errors.
    m : imputations pooled; level : confidence level; df_com : as given.
    fit_report : failures and warnings of the analyses (:class:`~pymitml.pool.FitReport`).
    """

    _table: pd.DataFrame
    _per_imputation: pd.DataFrame
    _per_imputation_se: pd.DataFrame
    m: int
    level: float
    df_com: float | None
    fit_report: FitReport | None = None

    @property
    def table(self) -> pd.DataFrame:
        return self._table.copy()

    @property
    def per_imputation(self) -> pd.DataFrame:
        return self._per_imputation.copy()

    @property
    def per_imputation_se(self) -> pd.DataFrame:
        return self._per_imputation_se.copy()

    def to_string(self, digits: int = 3) -> str:
        lo, hi = _percent_labels((1.0 - self.level) / 2.0)
        num = self._table[["Estimate", lo, hi, "Average", "Std.Error", "df", "FMI"]]
        lines = [
            "",
            f"Pooled variance components from {self.m} imputed data sets",
            "(Rubin's rules on log SD, Fisher z and logit ICC scales; observed-information SEs).",
            "",
        ]
        if self.fit_report is not None and not self.fit_report.clean:
            lines += self.fit_report.lines() + [""]
        body = format_table(num, digits, 5)
        scale = ["Scale"] + self._table["Scale"].tolist()
        lines += [f"{row}{s}" for row, s in zip(body, scale)]
        lines.append("")
        lines.append(
            "Std.Error, df and FMI refer to the transformed scale (Scale); "
            + (
                "large-sample df (Rubin 1987)."
                if self.df_com is None
                else f"Barnard-Rubin df with df_com = {self.df_com:g}."
            )
        )
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return self.to_string()


def _raw(scale: str, x: np.ndarray) -> np.ndarray:
    return _BACK[scale](x)


def pool_variance_components(
    fits: Sequence[Any],
    *,
    level: float = 0.95,
    df_com: float | None = None,
    on_failure: str = "error",
) -> PooledVarianceComponents:
    """Pool variance components, correlations and the ICC of m lmer or glmer fits.

    Parameters
    ----------
    fits : m ``pm.lmer`` fits (``implist.with_(lambda d: pm.lmer(...))``), REML or ML, or m
        ``pm.glmer`` fits with nAGQ >= 1 (no residual rows; the latent-scale ICC with residual
        variance pi^2/3 for binomial logit and 1 for binomial probit fits, none otherwise).
    level : confidence level of the intervals.
    df_com : complete-data df for Barnard & Rubin's df (e.g. the number of clusters minus the
        number of cluster-level parameters); None: Rubin's large-sample df.
    on_failure : ``"error"`` | ``"drop"`` | ``"drop_warned"`` as in :func:`pool_estimates`;
        boundary (singular) fits cannot be pooled on these scales and need ``"drop_warned"``.

    Returns
    -------
    PooledVarianceComponents
        ``.table`` (Estimate, interval, Average, Scale, Transformed, Std.Error, df, RIV, FMI).

    Examples
    --------
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ x + (1 + x | g)", d))  # doctest: +SKIP
    >>> pm.pool_variance_components(fits).table  # doctest: +SKIP
    """
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"`level` must be a number between 0 and 1; got {level!r}.")
    if df_com is not None and not (isinstance(df_com, (int, float)) and df_com > 0):
        raise ValueError(f"`df_com` must be a positive number or None; got {df_com!r}.")
    on_failure = check_on_failure(on_failure)
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence):
        raise TypeError(
            "`fits` must be a list of pm.lmer fits, one per imputed data set; got "
            f"{type(fits).__name__}."
        )
    kept, report = screen_fits(fits, on_failure)
    if len(kept) < 2:
        raise ValueError(f"pooling needs fits from at least 2 imputed data sets; got {len(kept)}.")
    for i, f in enumerate(kept):
        _check_fit(f, i)
    bad = [
        i
        for i, f in zip((j for j in range(len(fits)) if j not in report.dropped), kept)
        if _boundary(*_terms_and_values(f)[1:])
    ]
    if bad:
        raise FitFailureError(
            "boundary (singular) fits have SDs of zero or correlations of +-1, which are "
            "infinite on the log-SD / Fisher-z scale: imputations "
            f"{', '.join(str(i + 1) for i in bad)}. Leave them out with "
            "on_failure='drop_warned' (and report it), or simplify the random part."
        )
    rows_q, rows_u, rows_raw = [], [], []
    names: list[str] | None = None
    scales: list[str] = []
    for f in kept:
        phi, cov = transformed_covariance_parameters(f)
        terms = _terms_and_values(f)[0]
        glmm = is_glmer_fit(f)
        latent = latent_residual_variance(f) if glmm else None
        n, scales, vals, jac = _quantities(terms, phi.to_numpy(), latent, glmm)
        if names is not None and n != names:
            raise ValueError(
                f"the fits have different random parts ({n} vs {names}); fit the same model "
                "to every imputed data set."
            )
        names = n
        rows_q.append(vals)
        rows_u.append(np.einsum("ij,jk,ik->i", jac, cov.to_numpy(), jac))
        rows_raw.append([_raw(s, v) for s, v in zip(scales, vals)])
    assert names is not None
    q = np.stack(rows_q)
    u = np.stack(rows_u)
    dfc = None if df_com is None else np.full(q.shape[1], float(df_com))
    pooled, _ = _rubin(q, u, True, dfc)
    q_bar, se, v = pooled[:, 0], pooled[:, 1], pooled[:, 3]
    from scipy import stats

    a = (1.0 - level) / 2.0
    fac = stats.t.ppf(1.0 - a, v)
    lo_t, hi_t = q_bar - fac * se, q_bar + fac * se
    lo, hi = _percent_labels(a)
    back = np.array([_raw(s, x) for s, x in zip(scales, q_bar)])
    table = pd.DataFrame(
        {
            "Estimate": back,
            lo: [_raw(s, x) for s, x in zip(scales, lo_t)],
            hi: [_raw(s, x) for s, x in zip(scales, hi_t)],
            "Average": np.stack(rows_raw).mean(axis=0),
            "Scale": [s.replace(" (variance)", "") for s in scales],
            "Transformed": q_bar,
            "Std.Error": se,
            "df": v,
            "RIV": pooled[:, 5],
            "FMI": pooled[:, 6],
        },
        index=names,
    )
    imps = pd.RangeIndex(1, len(kept) + 1, name="fit")
    return PooledVarianceComponents(
        table,
        pd.DataFrame(q, index=imps, columns=names),
        pd.DataFrame(np.sqrt(u), index=imps, columns=names),
        len(kept),
        float(level),
        None if df_com is None else float(df_com),
        report,
    )
