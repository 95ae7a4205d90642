"""Linear mixed models with one grouping factor, fitted the way lme4 fits them.

>>> fit = pm.lmer("y ~ x + (1 + x | g)", df, REML=False)  # doctest: +SKIP
>>> fit.fixef, fit.vcov, fit.varcorr, fit.sigma, fit.loglik  # doctest: +SKIP
"""

from __future__ import annotations

from .fit import ConvergenceWarning, LmerFit, lmer

__all__ = ["ConvergenceWarning", "LmerFit", "lmer"]
