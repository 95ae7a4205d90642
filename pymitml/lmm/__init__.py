"""Linear and generalised linear mixed models, fitted the way lme4 fits them.

>>> fit = pm.lmer("y ~ x + (1 + x | school) + (1 | school:class)", df, REML=False)  # doctest: +SKIP
>>> fit.fixef, fit.vcov, fit.varcorr, fit.sigma, fit.loglik, fit.ranef  # doctest: +SKIP
>>> fit.coef_table(ddf="Satterthwaite")  # doctest: +SKIP
>>> contest(fit, L, ddf="Kenward-Roger")  # doctest: +SKIP
>>> fit.predict(newdata, re_form="~0")
... anova(fit0, fit1)  # doctest: +SKIP
"""

from __future__ import annotations

from .ddf import contest
from .fit import ConvergenceWarning, LmerFit, lmer
from .multi_fit import MultiLmerFit
from .predict import anova

__all__ = ["ConvergenceWarning", "LmerFit", "MultiLmerFit", "anova", "contest", "lmer"]
