"""``GlmerFit``: a fitted generalised linear mixed model in lme4's layout (``glmerMod``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from ._design import LmerDesign
from ._family import Family
from ._pirls import PirlsResult, lower_tri
from .fit import _varcorr
from .glmer_design import GlmerDesign
from .multi_fit import SeveralTerms

__all__ = ["GlmerFit", "MultiGlmerFit"]


@dataclass(frozen=True, eq=False, repr=False)
class GlmerFit:
    """A fitted GLMM (what lme4 calls a ``glmerMod``).

    Attributes
    ----------
    formula : the model formula.
    family, link : R's family and link names.
    nAGQ : quadrature points (1: Laplace approximation; 0: lme4's nAGQ = 0).
    fixef : pandas Series of the fixed effects, indexed by R's column names.
    vcov : DataFrame, lme4's default covariance of the fixed effects: 2 H^{-1} restricted to
        beta, with H the finite-difference Hessian of the deviance over (theta, beta)
        (``vcov.merMod`` with ``use.hessian=TRUE``); the RX-based one if H is not positive
        definite (with a message).
    vcov_rx : DataFrame, (R_X'R_X)^{-1} of the penalised weighted system at the optimum
        (``vcov(fit, use.hessian=FALSE)``).
    varcorr : DataFrame laid out like R's ``as.data.frame(VarCorr(fit))`` (grp, var1, var2,
        vcov, sdcor); a GLMM has no residual row.
    theta : relative covariance factor (lower triangle of T, column-major; lme4's ``theta``).
    objective : the optimised criterion (lme4's ``opt$fval``): sum of the deviance residuals
        + u'u + log det(L L') for nAGQ = 1, the quadrature deviance for nAGQ > 1.
    loglik : lme4's ``logLik``: for nAGQ = 1 the Laplace approximation with the family's full
        log-likelihood, -(aic + u'u + log det(L L'))/2; for nAGQ > 1 -objective/2 (as lme4).
    deviance : lme4's ``deviance(fit)``: the sum of squared deviance residuals at the modes.
    ranef : DataFrame of conditional modes (b = Lambda u), one row per cluster.
    nobs, ngroups, n_fixed : rows analysed, clusters, fixed effects.
    converged, singular : lme4's gradient check and boundary (isSingular) flags.
    messages : convergence, singularity and separation messages.
    n_evaluations : deviance evaluations.
    """

    formula: str
    family: str
    link: str
    nAGQ: int
    fixef: pd.Series
    vcov: pd.DataFrame
    vcov_rx: pd.DataFrame
    varcorr: pd.DataFrame
    theta: np.ndarray
    objective: float
    loglik: float
    deviance: float
    ranef: pd.DataFrame
    nobs: int
    ngroups: int
    n_fixed: int
    converged: bool
    singular: bool
    messages: tuple[str, ...]
    n_evaluations: int
    hessian: np.ndarray | None = field(repr=False)
    _design: GlmerDesign = field(repr=False)
    _mode: PirlsResult = field(repr=False)

    # ----- the design -----
    @property
    def X(self) -> np.ndarray:
        """Fixed-effects design matrix (nobs, n_fixed)."""
        return self._design.lmer.X

    @property
    def Z(self) -> np.ndarray:
        """Random-effects design of each row (nobs, q)."""
        return cast(LmerDesign, self._design.lmer).Z

    @property
    def y(self) -> np.ndarray:
        """Response as the family sees it (0/1, proportions or counts) (nobs,)."""
        return self._design.y

    @property
    def prior_weights(self) -> np.ndarray:
        """Prior weights (binomial: numbers of trials) (nobs,)."""
        return self._design.weights

    @property
    def offset(self) -> np.ndarray:
        return self._design.offset

    @property
    def cluster_codes(self) -> np.ndarray:
        return cast(LmerDesign, self._design.lmer).codes

    @property
    def cluster_labels(self) -> np.ndarray:
        return cast(LmerDesign, self._design.lmer).labels

    @property
    def cluster(self) -> str:
        return cast(LmerDesign, self._design.lmer).cluster

    @property
    def rows(self) -> np.ndarray:
        """Positions (0-based) in the data of the rows analysed."""
        return self._design.lmer.rows

    @property
    def response(self) -> str:
        return self._design.response

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return self._design.lmer.fixed_names

    @property
    def random_names(self) -> tuple[str, ...]:
        return cast(LmerDesign, self._design.lmer).random_names

    @property
    def family_object(self) -> Family:
        return self._design.family

    # ----- derived quantities -----
    @property
    def df(self) -> int:
        """Number of estimated parameters (fixed effects and theta), logLik's df."""
        return self.n_fixed + self.theta.size

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + math.log(self.nobs) * self.df

    @property
    def T(self) -> np.ndarray:
        """The q x q lower-triangular relative covariance factor."""
        return lower_tri(self.theta, len(self.random_names))

    @property
    def cov_random(self) -> pd.DataFrame:
        """Covariance matrix of one cluster's random effects, T T' (the scale is 1)."""
        names = list(self.random_names)
        T = self.T
        return pd.DataFrame(T @ T.T, index=names, columns=names)

    def coef_table(self) -> pd.DataFrame:
        """Estimate, Std. Error, z value and Pr(>|z|) (lme4's summary table)."""
        from scipy.special import ndtr  # lazy: scipy.special is slow to import

        est = self.fixef.to_numpy()
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        z = est / se
        return pd.DataFrame(
            {"Estimate": est, "Std. Error": se, "z value": z, "Pr(>|z|)": 2.0 * ndtr(-np.abs(z))},
            index=self.fixef.index,
        )

    def predict(self, type: str = "link", re_form: str | None = None) -> np.ndarray:
        """Linear predictor (``type="link"``) or fitted means (``"response"``) of the rows.

        ``re_form=None`` includes the conditional modes (lme4's default), ``re_form="~0"``
        (or ``"NA"``) gives the population-level prediction X beta + offset.
        """
        if type not in ("link", "response"):
            raise ValueError(f"`type` must be 'link' or 'response'; got {type!r}.")
        if re_form is None:
            eta = self._mode.eta
        elif re_form.replace(" ", "") in ("~0", "NA"):
            eta = self.offset + self.X @ self.fixef.to_numpy()
        else:
            raise ValueError(f"`re_form` must be None or '~0'; got {re_form!r}.")
        return eta.copy() if type == "link" else self.family_object.linkinv(eta)

    def fitted(self) -> np.ndarray:
        """Conditional means mu = g^{-1}(eta) on the response scale (nobs,)."""
        return self._mode.mu.copy()

    def residuals(self, type: str = "deviance") -> np.ndarray:
        """Residuals of ``type`` "deviance" (default, as lme4), "pearson", "response", "working"."""
        y, mu = self.y, self._mode.mu
        if type == "deviance":
            return np.sign(y - mu) * np.sqrt(np.maximum(self._mode.devres, 0.0))
        if type == "pearson":
            v = self.family_object.variance(mu)
            return (y - mu) * np.sqrt(self.prior_weights / v)
        if type == "response":
            return y - mu
        if type == "working":
            return (y - mu) / self._mu_eta()
        raise ValueError(
            f"`type` must be 'deviance', 'pearson', 'response' or 'working'; got {type!r}."
        )

    def _mu_eta(self) -> np.ndarray:
        # working weights w = a mu_eta^2 / V: recover mu_eta from the stored sqrt(w)
        v = self.family_object.variance(self._mode.mu)
        with np.errstate(divide="ignore", invalid="ignore"):
            return self._mode.sqrtw * np.sqrt(v / self.prior_weights)

    @property
    def extra_pars(self) -> pd.Series:
        """Variance components named as mitml names them (``"Intercept~~Intercept|g"``, ...)."""
        from ..pool._extract import _vc_lmer

        return _vc_lmer(self)

    # ----- printing -----
    def summary(self) -> str:
        """lme4-style summary (``summary(fit)`` in R) as a string."""
        from .glmer_summary import format_glmer_summary

        return format_glmer_summary(self)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return (
            f"<GlmerFit {self.family}({self.link}) {self.formula!r}: nobs={self.nobs}, "
            f"groups={self.ngroups}, loglik={self.loglik:.4f}"
            f"{', singular' if self.singular else ''}"
            f"{'' if self.converged else ', NOT converged'}>"
        )


def varcorr_frame(design: LmerDesign, T: np.ndarray) -> pd.DataFrame:
    """R's ``as.data.frame(VarCorr(fit))`` of one grouping factor (a GLMM has no residual row)."""
    table = _varcorr(design, T, 1.0)
    return table.loc[table["grp"] != "Residual"].reset_index(drop=True)


def frame(values: Any, names: list[str]) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(values, dtype=float), index=names, columns=names)


@dataclass(frozen=True, eq=False, repr=False)
class MultiGlmerFit(SeveralTerms, GlmerFit):
    """A GLMM with several random-effect terms: ``ranef`` is a dict {grouping factor: DataFrame}.

    ``re_terms`` describes the terms and ``Z_sparse()`` gives the full Z; the one-factor
    accessors (``Z``, ``cluster_codes``, ``cov_random``, ``T``, ``random_names``) raise.
    """

    re_terms: tuple = field(default=())

    def Z_sparse(self) -> Any:
        """Z (nobs, number of random effects) as scipy CSC, in lme4's column order."""
        return self._design.lmer.Z_sparse()  # type: ignore[union-attr]

    def cov_random_terms(self) -> list[tuple[str, list[str], np.ndarray]]:
        """(group label, column names, T T') of each term, in lme4's order."""
        out = []
        for info in self.re_terms:
            T = lower_tri(self.theta[info.theta], len(info.names))
            out.append((info.label, list(info.names), T @ T.T))
        return out

    def __repr__(self) -> str:
        groups = ", ".join(f"{t.label}={t.n_levels}" for t in self.re_terms)
        return (
            f"<GlmerFit {self.family}({self.link}) {self.formula!r}: nobs={self.nobs}, "
            f"groups: {groups}, loglik={self.loglik:.4f}"
            f"{', singular' if self.singular else ''}"
            f"{'' if self.converged else ', NOT converged'}>"
        )
