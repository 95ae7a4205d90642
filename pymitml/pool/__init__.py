"""Pooling across imputed data sets: estimates (Rubin's rules), model tests, constraints, R2.

Fitted models are recognised through one registry of model classes (:mod:`._registry`):
pymitml's ``LmerFit``, statsmodels results (OLS, GLM, MixedLM, ...), ``(estimates, covariance)``
tuples and dicts are built in; :func:`register_model` adds a class of your own::

    pm.register_model(MyFit, lambda fit: (coef_series, vcov_frame))
"""

from __future__ import annotations

from . import _builtin  # noqa: F401  (enters the built-in model classes into the registry)
from ._extract import estimates as extract_estimates
from ._extract import variance_components as extract_variance_components
from ._failures import FitFailureError, FitReport, FitWarning
from ._registry import ModelAdapter, register_model
from .anova import AnovaResult, anova
from .compatibility import CompatibilityReport, CompatibilityWarning, check_compatibility
from .constraints import ConstraintTestResult, pool_constraints
from .emmeans import PooledEmmeans, pool_emmeans, pool_predictions
from .estimates import COLUMNS, PooledEstimates, pool_estimates
from .model_tests import ModelTestResult, compare_models
from .r2 import multilevel_r2
from .r2_nakagawa import PooledR2, pool_r2_nakagawa, r2_nakagawa
from .r2_rights_sterba import PooledR2RightsSterba, pool_r2_rights_sterba, r2_rights_sterba
from .variance_components import PooledVarianceComponents, pool_variance_components

__all__ = [
    "COLUMNS",
    "AnovaResult",
    "CompatibilityReport",
    "CompatibilityWarning",
    "ConstraintTestResult",
    "FitFailureError",
    "FitReport",
    "FitWarning",
    "ModelAdapter",
    "ModelTestResult",
    "PooledEmmeans",
    "PooledEstimates",
    "PooledR2",
    "PooledVarianceComponents",
    "anova",
    "check_compatibility",
    "compare_models",
    "extract_estimates",
    "extract_variance_components",
    "multilevel_r2",
    "pool_constraints",
    "pool_emmeans",
    "pool_estimates",
    "pool_predictions",
    "pool_r2_nakagawa",
    "pool_r2_rights_sterba",
    "PooledR2RightsSterba",
    "pool_variance_components",
    "r2_nakagawa",
    "r2_rights_sterba",
    "register_model",
]
