"""Likelihood adapters for the likelihood-based pooled tests (D2 likelihood, D3, D4, anova).

One adapter per model class answers what mitml asks of a fit through ``logLik``, ``.updateML``,
``.getArgsLL``/``.getUserLL`` and ``.updateStackedLL``:

- ``is_reml`` / ``ml_fit``: REML fits are refitted by maximum likelihood;
- ``loglik``: the maximised log-likelihood and its number of parameters ``df``;
- ``parameters`` / ``loglik_at``: the parameters psi of the likelihood and the log-likelihood at a
  given psi (for D3: at psi averaged over imputations);
- ``stacked_loglik``: the log-likelihood of the model refitted to the m data sets stacked (D4),
  clusters relabelled per imputation.

The adapters are found through the model registry (:mod:`._registry`, entries in
:mod:`._builtin`). Built in: statsmodels OLS results (psi = beta, sigma^2 with the ML estimate RSS/n), pymitml's
``LmerFit`` (psi = beta, Tau = sigma^2 T T', sigma^2), and statsmodels GLM (binomial, Poisson)
and Logit/Probit/Poisson results (log-likelihood and stacked refits only: D2 and D4, no D3, as in
mitml).
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pandas as pd

from ._extract import stack_estimates
from ._registry import adapter_for

__all__ = [
    "adapter",
    "data_signature",
    "formula_text",
    "is_reml",
    "logliks",
    "logliks_at_pooled",
    "ml_fit",
    "parameter_arrays",
    "stacked_loglik",
]

_LOG_2PI = float(np.log(2 * np.pi))


class _NoLikelihood(TypeError):
    """The fit class has no likelihood adapter."""


# --------------------------------------------------------------------------------------------
# ordinary least squares (statsmodels)


class _MaximumLikelihood:
    """Adapters for fits that are maximum-likelihood fits already (no REML to undo)."""

    @staticmethod
    def is_reml(fit) -> bool:
        return False

    @staticmethod
    def ml_fit(fit):
        return fit


class _OLS(_MaximumLikelihood):
    """statsmodels OLS results: log L(beta, s2) = -n/2 log(2 pi s2) - |y - X beta|^2 / (2 s2)."""

    name = "OLS"
    methods = ("D2", "D3", "D4")

    @staticmethod
    def matches(fit: Any) -> bool:
        model = getattr(fit, "model", None)
        return type(model).__name__ == "OLS" and type(model).__module__.startswith("statsmodels")

    @staticmethod
    def loglik(fit) -> tuple[float, int]:
        y, X = _ols_arrays(fit)
        beta = np.asarray(fit.params, dtype=float)
        s2 = float(np.sum((y - X @ beta) ** 2)) / y.shape[0]
        return _ols_loglik(y, X, beta, s2), int(fit.model.rank) + 1

    @staticmethod
    def parameters(fit) -> dict[str, np.ndarray]:
        y, X = _ols_arrays(fit)
        beta = np.asarray(fit.params, dtype=float)
        return {"beta": beta, "sigma2": np.array(np.sum((y - X @ beta) ** 2) / y.shape[0])}

    @staticmethod
    def loglik_at(fit, psi: dict[str, np.ndarray]) -> float:
        y, X = _ols_arrays(fit)
        return _ols_loglik(y, X, psi["beta"], float(psi["sigma2"]))

    @staticmethod
    def stacked_loglik(fits: list) -> float:
        ys, Xs = zip(*(_ols_arrays(f) for f in fits))
        y, X = np.concatenate(ys), np.concatenate(Xs)
        beta, *_ = np.linalg.lstsq(X, y, rcond=None)
        return _ols_loglik(y, X, beta, float(np.sum((y - X @ beta) ** 2)) / y.shape[0])

    @staticmethod
    def signature(fit):
        y, X = _ols_arrays(fit)
        names = list(getattr(fit.model, "exog_names", None) or range(X.shape[1]))
        return y, {str(n): X[:, j] for j, n in enumerate(names)}

    @staticmethod
    def formula(fit) -> str:
        f = getattr(fit.model, "formula", None)
        if f is not None:
            return str(f)
        names = getattr(fit.model, "exog_names", None) or []
        return f"{fit.model.endog_names} ~ " + " + ".join(map(str, names))

    @staticmethod
    def df(fit) -> int:
        return int(fit.model.rank) + 1


def _ols_arrays(fit) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(fit.model.endog, dtype=float)
    X = np.asarray(fit.model.exog, dtype=float)
    return y, X


def _ols_loglik(y: np.ndarray, X: np.ndarray, beta: np.ndarray, s2: float) -> float:
    n = y.shape[0]
    rss = float(np.sum((y - X @ beta) ** 2))
    return -0.5 * n * (_LOG_2PI + np.log(s2)) - rss / (2 * s2)


# --------------------------------------------------------------------------------------------
# linear mixed models (pymitml.lmer)


class _Lmer:
    """pymitml ``LmerFit``: psi = (beta, Tau = sigma^2 T T', sigma^2), T from ``theta``."""

    name = "LmerFit"
    methods = ("D2", "D3", "D4")

    @staticmethod
    def matches(fit: Any) -> bool:
        lmm = sys.modules.get("pymitml.lmm")
        cls = getattr(lmm, "LmerFit", None)
        return isinstance(cls, type) and isinstance(fit, cls)

    @staticmethod
    def is_reml(fit) -> bool:
        return bool(fit.REML)

    @staticmethod
    def ml_fit(fit):
        return fit.refit(REML=False) if fit.REML else fit

    @staticmethod
    def loglik(fit) -> tuple[float, int]:
        return float(fit.loglik), int(fit.df)

    @staticmethod
    def parameters(fit) -> dict[str, np.ndarray]:
        s2 = float(fit.sigma) ** 2
        return {
            "beta": fit.fixef.to_numpy(dtype=float),
            "Tau": fit.cov_random.to_numpy(),
            "sigma2": np.array(s2),
        }

    @staticmethod
    def loglik_at(fit, psi: dict[str, np.ndarray]) -> float:
        sigma = float(np.sqrt(psi["sigma2"]))
        theta = fit.theta_from_cov(psi["Tau"], sigma)
        return float(fit.loglik_at(psi["beta"], theta, sigma))

    @staticmethod
    def stacked_loglik(fits: list) -> float:
        return float(_lmer_stacked_fit(fits).loglik)

    @staticmethod
    def signature(fit):
        X = np.asarray(fit.X, dtype=float)
        return np.asarray(fit.y, dtype=float), {n: X[:, j] for j, n in enumerate(fit.fixed_names)}

    @staticmethod
    def formula(fit) -> str:
        return str(fit.formula)

    @staticmethod
    def df(fit) -> int:
        return int(fit.df)


def _lmer_stacked_fit(fits: list):
    """The ML fit of the model to the m data sets stacked, clusters relabelled per imputation.

    The stacked model is rebuilt from the fits' design arrays (so transformations and factor
    codings in the formula carry over unchanged) as ``y ~ 0 + x1 + ... + (0 + z1 + ... | g)``.
    """
    from ..lmm import lmer

    formula, frame = _stacked_design(fits)
    return lmer(formula, frame, REML=False)


def _stacked_design(fits: list) -> tuple[str, pd.DataFrame]:
    """``y ~ 0 + x0 + ... + (0 + z0 + ... | g)`` and its data: the fits' design arrays stacked,
    clusters relabelled per imputation (every grouping factor of a fit with several terms)."""
    X = np.concatenate([f.X for f in fits])
    y = np.concatenate([f.y for f in fits])
    cols: dict[str, np.ndarray] = {"y": y}
    cols.update({f"x{j}": X[:, j] for j in range(X.shape[1])})
    fixed = " + ".join(["0", *(f"x{j}" for j in range(X.shape[1]))])
    terms = []
    designs = [getattr(f._design, "lmer", f._design) for f in fits]
    if not hasattr(designs[0], "terms"):
        per_fit = [[(f.Z, f.cluster_codes, f.ngroups)] for f in fits]
    else:
        if any(d.weights is not None or d.offset is not None for d in designs):
            raise ValueError(
                "D4 cannot stack lmer fits with prior weights or offsets; use D1 or D2."
            )
        per_fit = [[(t.Z, t.codes, t.n_levels) for t in d.terms] for d in designs]
    for k in range(len(per_fit[0])):
        offsets = np.cumsum([0] + [pf[k][2] for pf in per_fit[:-1]])
        cols[f"g{k}"] = np.concatenate([pf[k][1] + o for pf, o in zip(per_fit, offsets)])
        Z = np.concatenate([pf[k][0] for pf in per_fit])
        cols.update({f"z{k}_{j}": Z[:, j] for j in range(Z.shape[1])})
        random = " + ".join(["0", *(f"z{k}_{j}" for j in range(Z.shape[1]))])
        terms.append(f"({random} | g{k})")
    return f"y ~ {fixed} + {' + '.join(terms)}", pd.DataFrame(cols)


class _Glmer(_MaximumLikelihood):
    """pymitml ``GlmerFit``: log-likelihood (D2) and stacked refits (D4), no D3 (as mitml)."""

    name = "GlmerFit"
    methods = ("D2", "D4")

    @staticmethod
    def loglik(fit) -> tuple[float, int]:
        return float(fit.loglik), int(fit.df)

    @staticmethod
    def stacked_loglik(fits: list) -> float:
        from ..lmm.glmer import glmer

        formula, frame = _stacked_design(fits)
        f0 = fits[0]
        stacked = glmer(
            formula,
            frame,
            f0.family,
            link=f0.link,
            nAGQ=f0.nAGQ,
            weights=np.concatenate([f.prior_weights for f in fits]),
            offset=np.concatenate([f.offset for f in fits]),
        )
        return float(stacked.loglik)

    signature = _Lmer.signature
    formula = _Lmer.formula
    df = _Lmer.df


# --------------------------------------------------------------------------------------------
# generalised linear models without a dispersion parameter (statsmodels GLM binomial/Poisson,
# Logit, Probit, Poisson): log-likelihood and stacked refits (D2, D4), no D3 (as in mitml)

_GLM_FAMILIES = ("Binomial", "Poisson")
_DISCRETE = ("Logit", "Probit", "Poisson")


class _GLM(_MaximumLikelihood):
    """statsmodels GLM (binomial, Poisson) and discrete Logit/Probit/Poisson results."""

    name = "GLM"
    methods = ("D2", "D4")

    @staticmethod
    def matches(fit: Any) -> bool:
        model: Any = getattr(fit, "model", None)
        kind = type(model).__name__
        if not type(model).__module__.startswith("statsmodels"):
            return False
        if kind == "GLM":
            return type(model.family).__name__ in _GLM_FAMILIES
        return kind in _DISCRETE

    @staticmethod
    def loglik(fit) -> tuple[float, int]:
        return float(fit.llf), _GLM.df(fit)

    @staticmethod
    def df(fit) -> int:
        return int(np.linalg.matrix_rank(np.asarray(fit.model.exog, dtype=float)))

    @staticmethod
    def stacked_loglik(fits: list) -> float:
        model = fits[0].model
        for f in fits:
            if _GLM._has_extras(f.model):
                raise _NoLikelihood(
                    "D4 cannot refit a GLM with offset, exposure or weights on "
                    "stacked data; use method='D2'."
                )
        y = np.concatenate([np.asarray(f.model.endog, dtype=float) for f in fits])
        X = np.concatenate([np.asarray(f.model.exog, dtype=float) for f in fits])
        if type(model).__name__ == "GLM":
            return float(type(model)(y, X, family=model.family).fit().llf)
        return float(type(model)(y, X).fit(disp=0).llf)

    @staticmethod
    def _has_extras(model) -> bool:
        for attr in ("offset", "exposure"):
            v = getattr(model, attr, None)
            if v is not None and np.any(np.asarray(v) != 0):
                return True
        for attr in ("freq_weights", "var_weights"):
            v = getattr(model, attr, None)
            if v is not None and np.any(np.asarray(v) != 1):
                return True
        return False

    signature = _OLS.signature
    formula = _OLS.formula


# --------------------------------------------------------------------------------------------
# dispatch


def adapter(fit: Any, what: str = "the likelihood"):
    """The likelihood adapter of ``fit``'s class (from the model registry, :mod:`._registry`),
    or a TypeError naming the supported classes."""
    entry = adapter_for(fit)
    found = entry.likelihood(fit) if entry is not None and entry.likelihood is not None else None
    if found is not None:
        return found
    raise _NoLikelihood(
        f"cannot evaluate {what} for fits of class '{type(fit).__name__}': the likelihood methods "
        "(D2 with use='likelihood', D3, D4, anova) support pymitml.lmer fits and statsmodels OLS "
        "results; use method='D1' or method='D2' with use='wald' for other fits."
    )


def is_reml(fit: Any) -> bool:
    """Whether ``fit`` was estimated by REML (False for classes without a likelihood adapter)."""
    try:
        return adapter(fit).is_reml(fit)
    except _NoLikelihood:
        return False


def ml_fit(fit: Any):
    """``fit`` refitted by maximum likelihood if it used REML, else ``fit`` itself."""
    return adapter(fit).ml_fit(fit)


def model_df(fit: Any) -> int:
    """Number of parameters of the model's likelihood (R's ``attr(logLik(fit), "df")``)."""
    return adapter(fit).df(fit)


def logliks(fits: list) -> tuple[np.ndarray, int]:
    """Maximised log-likelihoods (m,) of ML fits and the models' number of parameters."""
    a = adapter(fits[0])
    out = [a.loglik(f) for f in fits]
    return np.array([o[0] for o in out]), out[0][1]


def logliks_at_pooled(fits: list) -> np.ndarray:
    """Log-likelihood of each imputation's data at the parameters averaged over imputations."""
    a = _d3_adapter(fits[0])
    return logliks_at(fits, pooled_parameters([a.parameters(f) for f in fits]))


def pooled_parameters(psis: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Element-wise mean of m parameter sets (mitml's psi-bar: beta, Tau, sigma^2 averaged)."""
    return {
        key: np.mean([np.asarray(p[key], dtype=float) for p in psis], axis=0) for key in psis[0]
    }


def logliks_at(fits: list, psi: dict[str, np.ndarray]) -> np.ndarray:
    """Log-likelihood of each fit's data at the parameters ``psi`` (m,)."""
    a = _d3_adapter(fits[0])
    return np.array([a.loglik_at(f, psi) for f in fits])


def _d3_adapter(fit: Any):
    a = adapter(fit)
    if "D3" not in a.methods:
        raise _NoLikelihood(
            f"D3 needs the likelihood at given parameters, which is not "
            f"available for fits of class '{type(fit).__name__}'; use "
            "method='D4' or method='D2' with use='likelihood'."
        )
    return a


def stacked_loglik(fits: list) -> float:
    """Log-likelihood of the model refitted (ML) to the m data sets stacked (not divided by m)."""
    return adapter(fits[0]).stacked_loglik(fits)


def data_signature(fit: Any):
    """(response, {fixed-effect name: design column}) of a fit, or None if not available."""
    try:
        return adapter(fit).signature(fit)
    except (_NoLikelihood, AttributeError):
        return None


def formula_text(fit: Any) -> str:
    """The model formula of ``fit`` as text (for anova printouts)."""
    try:
        return adapter(fit).formula(fit)
    except (_NoLikelihood, AttributeError):
        return type(fit).__name__


def parameter_arrays(fits: list, name: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parameter names, estimates (m, k) and covariances (m, k, k) of m fits."""
    return stack_estimates(fits)
