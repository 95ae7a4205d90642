"""Linear mixed models with one grouping factor, fitted the way lme4 fits them.

>>> fit = pm.lmer("y ~ x + (1 + x | g)", df, REML=False)  # doctest: +SKIP
>>> fit.fixef, fit.vcov, fit.varcorr, fit.sigma, fit.loglik  # doctest: +SKIP
>>> fit.coef_table(ddf="Satterthwaite")  # doctest: +SKIP
>>> contest(fit, L, ddf="Kenward-Roger")  # doctest: +SKIP
"""

from __future__ import annotations

from .ddf import contest
from .fit import ConvergenceWarning, LmerFit, lmer

__all__ = ["ConvergenceWarning", "LmerFit", "contest", "lmer"]
