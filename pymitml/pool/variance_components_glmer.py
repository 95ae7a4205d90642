"""Observed-information SEs of the transformed covariance parameters of a glmer fit.

For a GLMM the fixed effects cannot be profiled out of the deviance in closed form, so the
observed information is taken jointly: with phi = (log sd_a per random-effect column, Fisher
z = atanh(rho_ab) per pair, term by term in the order of ``varcorr``; no residual SD, the scale
of a binomial or Poisson model is 1) and beta the fixed effects,

    D(phi, beta) = the fit's own criterion at theta(phi) and beta (lme4's
                   ``glmer(..., devFunOnly = TRUE)`` with nAGQ >= 1, which takes c(theta, beta)):
                   the Laplace deviance  sum d_i + |u|^2 + log|L|^2  (nAGQ = 1), or the adaptive
                   Gauss-Hermite deviance (nAGQ > 1), u the conditional modes by PIRLS at
                   fixed (theta, beta);
    H            = the Hessian of D in (phi, beta) (numDeriv's Richardson scheme);
    Var(phi_hat) = the phi block of 2 H^{-1}.

theta(phi) is the lower-triangular Cholesky factor of the covariance matrix (lme4's
parameterisation with sigma = 1). Fits with nAGQ = 0 are refused: their beta does not maximise
the Laplace likelihood, so the Hessian there is not an observed information.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["glmer_transformed_covariance_parameters", "is_glmer_fit", "latent_residual_variance"]

#: the latent-scale residual variance of the binomial links (Nakagawa & Schielzeth 2013)
_LATENT_VARIANCE = {"logit": float(np.pi**2 / 3.0), "probit": 1.0}


def is_glmer_fit(fit: Any) -> bool:
    """True for pm.glmer fits (they carry a family and the design of their deviance)."""
    return hasattr(fit, "family") and hasattr(fit, "_design") and hasattr(fit, "nAGQ")


def latent_residual_variance(fit: Any) -> float | None:
    """pi^2/3 (binomial logit), 1 (binomial probit), None otherwise (no ICC row)."""
    if getattr(fit, "family", None) != "binomial":
        return None
    return _LATENT_VARIANCE.get(str(getattr(fit, "link", "")))


def glmer_transformed_covariance_parameters(
    fit: Any, phi: np.ndarray, names: list[str], theta_of: Any
) -> tuple[pd.Series, pd.DataFrame]:
    """phi_hat and the phi block of 2 H^{-1}, H the Hessian of the deviance in (phi, beta).

    ``theta_of(phi)`` maps phi to lme4's theta; ``names`` label phi.
    """
    from ..lmm.ddf_numderiv import hessian
    from ..lmm.glmer_optimize import GlmerObjective

    if int(fit.nAGQ) < 1:
        raise ValueError(
            "pool_variance_components needs glmer fits with nAGQ >= 1 (Laplace or adaptive "
            "Gauss-Hermite); with nAGQ = 0 the fixed effects do not maximise the likelihood, "
            "so there is no observed information. Refit with nAGQ=1."
        )
    obj = GlmerObjective(fit._design, int(fit.nAGQ))
    obj.u = np.asarray(fit._mode.u, dtype=float).copy()  # warm start at the fit's modes
    beta = fit.fixef.to_numpy(dtype=float)
    k = phi.size

    def dev(x: np.ndarray) -> float:
        return obj.stage2(np.concatenate([theta_of(x[:k]), x[k:]]))

    H = hessian(dev, np.concatenate([phi, beta]))
    H = 0.5 * (H + H.T)
    try:
        np.linalg.cholesky(H)
    except np.linalg.LinAlgError:
        raise ValueError(
            "the Hessian of the glmer deviance in (transformed variance parameters, fixed "
            "effects) is not positive definite at this fit (a flat or boundary likelihood, or "
            "separation): no standard errors."
        ) from None
    cov = 2.0 * np.linalg.inv(H)[:k, :k]
    cov = 0.5 * (cov + cov.T)
    return pd.Series(phi, index=names), pd.DataFrame(cov, index=names, columns=names)
