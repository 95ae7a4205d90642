"""pymitml: multilevel multiple imputation, mixed models and pooling for Python.

The mitml + pan + jomo + lme4 workflow of R, natively::

    import pymitml as pm
    imp = pm.pan_impute(df, "ReadDis + SES ~ 1 + CognAbility + (1|ID)", m=20, seed=1)
    fits = imp.complete().with_(lambda d: pm.lmer("ReadDis ~ SES + (1|ID)", d))
    pm.pool_estimates(fits)
"""
from __future__ import annotations

from . import datasets
from .formula import parse_formula
from .result import ImputationResult
from .samplers.pan import pan_impute
from .mitml_list import MitmlList, MitmlResult, cluster_means, long_to_mitml_list

__version__ = "0.1.0"

__all__ = [
    "datasets",
    "pan_impute",
    "ImputationResult",
    "parse_formula",
    "MitmlList",
    "MitmlResult",
    "cluster_means",
    "long_to_mitml_list",
]
