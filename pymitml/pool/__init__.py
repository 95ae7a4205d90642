"""Pooling across imputed data sets: estimates (Rubin's rules), model tests, constraints, R2.

Estimates are read from fitted models by :func:`extract_estimates` (a ``functools.singledispatch``
function: register an adapter for a new model class with ``@extract_estimates.register(MyFit)``).
"""
from __future__ import annotations

from ._extract import estimates as extract_estimates
from ._extract import variance_components as extract_variance_components
from .anova import AnovaResult, anova
from .constraints import ConstraintTestResult, pool_constraints
from .estimates import COLUMNS, PooledEstimates, pool_estimates
from .model_tests import ModelTestResult, compare_models
from .r2 import multilevel_r2

__all__ = [
    "COLUMNS",
    "AnovaResult",
    "ConstraintTestResult",
    "ModelTestResult",
    "PooledEstimates",
    "anova",
    "compare_models",
    "extract_estimates",
    "extract_variance_components",
    "multilevel_r2",
    "pool_constraints",
    "pool_estimates",
]
