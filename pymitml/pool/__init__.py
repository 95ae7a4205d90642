"""Pooling across imputed data sets: estimates (Rubin's rules), model tests, constraints, R2.

Estimates are read from fitted models by :func:`extract_estimates` (a ``functools.singledispatch``
function: register an adapter for a new model class with ``@extract_estimates.register(MyFit)``).
"""
from __future__ import annotations

from ._extract import estimates as extract_estimates
from ._extract import variance_components as extract_variance_components
from .estimates import COLUMNS, PooledEstimates, pool_estimates

__all__ = [
    "COLUMNS",
    "PooledEstimates",
    "extract_estimates",
    "extract_variance_components",
    "pool_estimates",
]
