"""GLM families of :func:`pymitml.glmer`, as R's ``binomial()`` and ``poisson()`` objects.

A family is a response distribution with its variance function V(mu) and a link g with
eta = g(mu); what the penalised iteratively reweighted least squares (PIRLS) needs per row is

    mu = g^{-1}(eta),   d mu / d eta,   V(mu),
    working weight  w = a (d mu/d eta)^2 / V(mu)     (a: prior weight, e.g. binomial trials),
    working residual (y - mu) / (d mu/d eta),
    deviance residual  d(y, mu) = 2 a [log p(y | mu = y) - log p(y | mu)]:
        binomial: 2 a [y log(y/mu) + (1-y) log((1-y)/(1-mu))],
        Poisson:  2 a [y log(y/mu) - (y - mu)].

The inverse links are clamped as R's ``make.link`` clamps them (mu stays inside (0, 1) or
above 0 by machine epsilon), so extreme linear predictors give finite deviances, as in R.
``aic`` is the family's -2 log-likelihood (R's ``family$aic`` without the 2k term), which lme4
uses for ``logLik`` of a Laplace fit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._numba import njit

__all__ = ["FAMILIES", "Family", "glm_rows", "make_family"]

BINOMIAL, POISSON = 0, 1
LOGIT, PROBIT, CLOGLOG, LOG = 0, 1, 2, 3
_LINK_CODES = {"logit": LOGIT, "probit": PROBIT, "cloglog": CLOGLOG, "log": LOG}
#: family -> (default link, accepted links)
FAMILIES = {"binomial": ("logit", ("logit", "probit", "cloglog")), "poisson": ("log", ("log",))}

_EPS = float(np.finfo(float).eps)
_PROBIT_BOUND = 8.125890664701906  # -qnorm(.Machine$double.eps): R's probit clamp
_SQRT2 = math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Family:
    """A GLM family: ``name`` ("binomial", "poisson") and ``link`` (R's names)."""

    name: str
    link: str

    @property
    def code(self) -> int:
        return BINOMIAL if self.name == "binomial" else POISSON

    @property
    def link_code(self) -> int:
        return _LINK_CODES[self.link]

    def linkinv(self, eta: np.ndarray) -> np.ndarray:
        """mu = g^{-1}(eta) (R's ``family$linkinv``)."""
        eta = np.ascontiguousarray(eta, dtype=float)
        mu = np.empty_like(eta)
        _linkinv_rows(self.link_code, eta, mu)
        return mu

    def variance(self, mu: np.ndarray) -> np.ndarray:
        """V(mu): mu (1 - mu) (binomial) or mu (Poisson)."""
        mu = np.asarray(mu, dtype=float)
        return mu * (1.0 - mu) if self.code == BINOMIAL else mu.copy()

    def aic(self, y: np.ndarray, mu: np.ndarray, weights: np.ndarray) -> float:
        """-2 log-likelihood of the response given mu (R's ``family$aic``, without 2k)."""
        from scipy.special import gammaln  # lazy: scipy.special is slow to import

        y, mu, w = (np.asarray(a, dtype=float) for a in (y, mu, weights))
        if self.code == POISSON:
            with np.errstate(divide="ignore", invalid="ignore"):
                ll = np.where(y == 0.0, -mu, y * np.log(mu) - mu - gammaln(y + 1.0))
            # R's dpois: probability 0 at a non-integer count (with a warning at the boundary)
            ll = np.where(np.abs(y - np.rint(y)) > 1e-7 * np.maximum(1.0, y), -np.inf, ll)
            return float(-2.0 * np.sum(w * ll))
        m = np.rint(w)
        k = np.rint(m * y)
        with np.errstate(divide="ignore", invalid="ignore"):
            logc = gammaln(m + 1.0) - gammaln(k + 1.0) - gammaln(m - k + 1.0)
            ll = logc + np.where(k > 0, k * np.log(mu), 0.0)
            ll = ll + np.where(m - k > 0, (m - k) * np.log1p(-mu), 0.0)
        return float(-2.0 * np.sum(np.where(m > 0, ll, 0.0)))


def make_family(family: str, link: str | None) -> Family:
    """Validated :class:`Family` from R's names (``link=None``: the family's default link)."""
    if not isinstance(family, str) or family not in FAMILIES:
        raise ValueError(
            f"`family` must be one of {list(FAMILIES)}; got {family!r}. glmer fits binary and "
            "binomial responses with 'binomial' and counts with 'poisson'."
        )
    default, links = FAMILIES[family]
    if link is None:
        link = default
    if link not in links:
        raise ValueError(
            f"`link` must be one of {list(links)} for family '{family}'; got {link!r}."
        )
    return Family(family, link)


@njit
def _linkinv(link, e):
    if link == LOGIT:
        if e < -30.0:
            t = _EPS
        elif e > 30.0:
            t = 1.0 / _EPS
        else:
            t = math.exp(e)
        return t / (1.0 + t)
    if link == PROBIT:
        e = min(max(e, -_PROBIT_BOUND), _PROBIT_BOUND)
        return 0.5 * math.erfc(-e / _SQRT2)
    if link == CLOGLOG:
        return max(min(-math.expm1(-math.exp(e)), 1.0 - _EPS), _EPS)
    return max(math.exp(e), _EPS)


@njit
def _mu_eta(link, e):
    if link == LOGIT:
        if e > 30.0 or e < -30.0:
            return _EPS
        t = math.exp(e)
        return t / ((1.0 + t) * (1.0 + t))
    if link == PROBIT:
        return max(_INV_SQRT_2PI * math.exp(-0.5 * e * e), _EPS)
    if link == CLOGLOG:
        e = min(e, 700.0)
        return max(math.exp(e) * math.exp(-math.exp(e)), _EPS)
    return max(math.exp(e), _EPS)


@njit
def _ylogy(y, mu):
    return y * math.log(y / mu) if y > 0.0 else 0.0


@njit
def _dev_resid(family, y, mu, a):
    if family == BINOMIAL:
        return 2.0 * a * (_ylogy(y, mu) + _ylogy(1.0 - y, 1.0 - mu))
    return 2.0 * a * (_ylogy(y, mu) - (y - mu))


@njit
def _linkinv_rows(link, eta, mu):
    for i in range(eta.shape[0]):
        mu[i] = _linkinv(link, eta[i])


@njit
def _mean_and_slope(link, e):
    """(mu, d mu / d eta) at eta = e, sharing the exponential of the logit and log links."""
    if link == LOGIT:
        if e > 30.0 or e < -30.0:
            return _linkinv(link, e), _EPS
        t = math.exp(e)
        m = t / (1.0 + t)
        return m, m / (1.0 + t)
    if link == LOG:
        m = max(math.exp(e), _EPS)
        return m, m
    return _linkinv(link, e), _mu_eta(link, e)


@njit
def glm_rows(family, link, eta, y, a, mu, sqrtw, wres, devres):
    """Per-row GLM quantities at the linear predictor ``eta`` (n,); returns sum of ``devres``.

    Writes mu, sqrt(working weight), working residual (y - mu)/(d mu/d eta) and the deviance
    residuals (all (n,)); ``a`` are the prior weights.
    """
    total = 0.0
    for i in range(eta.shape[0]):
        m, d = _mean_and_slope(link, eta[i])
        v = m * (1.0 - m) if family == BINOMIAL else m
        mu[i] = m
        sqrtw[i] = math.sqrt(a[i] * d * d / v)
        wres[i] = (y[i] - m) / d
        r = _dev_resid(family, y[i], m, a[i])
        devres[i] = r
        total += r
    return total
