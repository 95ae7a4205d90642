"""The model classes pymitml knows out of the box, entered into the registry (:mod:`._registry`).

Classes from other libraries are named by ``"module:QualName"`` strings, so nothing here imports
statsmodels or pymitml's mixed-model code: an entry becomes active once its module is loaded
(which it is whenever a fit of that class exists).

========================================  ==========================  ===============  ==========
class                                     estimates                   extra_pars       likelihood
========================================  ==========================  ===============  ==========
``pymitml.lmm.fit.LmerFit``               fixef, vcov                 VarCorr, ICC     D2-D4
``pymitml.lmm.glmer_fit.GlmerFit``        fixef, vcov                 VarCorr          D2, D4
statsmodels results (wrapped or not)      params, cov_params()        OLS/GLM: sigma2  OLS, GLM
                                          (MixedLM: fixed effects)    MixedLM: cov_re  (see below)
``(estimates, covariance)`` tuples        as given                    none             none
``{"coef": ..., "vcov": ...}`` dicts      as given                    none             none
lme4-like objects (fixef, vcov, varcorr)  fixef, vcov                 VarCorr, ICC     none
========================================  ==========================  ===============  ==========

statsmodels' likelihood methods: OLS (D2, D3, D4), GLM binomial/Poisson and Logit, Probit,
Poisson (D2, D4).
"""

from __future__ import annotations

from typing import Any

from . import _extract as ex
from . import _likelihood as ll
from ._registry import ModelAdapter, register_model, register_protocol

__all__: list[str] = []


def _statsmodels_likelihood(fit: Any) -> Any:
    for adapter in (ll._OLS, ll._GLM):
        if adapter.matches(fit):
            return adapter
    return None


def _lmer_likelihood(fit: Any) -> Any:
    return ll._Lmer


def _glmer_likelihood(fit: Any) -> Any:
    return ll._Glmer


register_model(tuple, ex._estimates_pair)
register_model(dict, ex._estimates_dict)
register_model(
    "pymitml.lmm.fit:LmerFit",
    ex._estimates_lmer,
    variance_components=ex._vc_lmer,
    likelihood=_lmer_likelihood,
)
register_model(
    "pymitml.lmm.glmer_fit:GlmerFit",
    ex._estimates_lmer,
    variance_components=ex._vc_lmer,
    likelihood=_glmer_likelihood,
)
for _name in ("statsmodels.base.wrapper:ResultsWrapper", "statsmodels.base.model:Results"):
    register_model(
        _name,
        ex._estimates_statsmodels,
        variance_components=ex._vc_statsmodels,
        likelihood=_statsmodels_likelihood,
    )
register_protocol(ex._looks_like_lmer, ModelAdapter(ex._estimates_lmer, ex._vc_lmer))
