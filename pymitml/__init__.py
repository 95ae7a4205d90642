"""pymitml: multilevel multiple imputation, mixed models and pooling for Python.

The mitml + pan + jomo + lme4 workflow of R, natively::

    import pymitml as pm
    imp = pm.pan_impute(df, "ReadDis + SES ~ 1 + CognAbility + (1|ID)", m=20, seed=1)
    fits = imp.complete().with_(lambda d: pm.lmer("ReadDis ~ SES + (1|ID)", d))
    pm.pool_estimates(fits)
"""
from __future__ import annotations

from . import datasets
from .diagnostics import ChainSummary, gelman_rubin, mcse, psr_by_iteration, summarize
from .missing import MissingPattern, complete_case_analysis, missing_pattern
from .formula import parse_formula
from .lmm import LmerFit, lmer
from .pool import (
    PooledEstimates, anova, compare_models, multilevel_r2, pool_constraints, pool_estimates,
)
from . import bridge, io
from .io import (
    read_blimp, read_long, read_mplus, read_rds, read_spss, read_stata, read_stata_characteristics,
)
from .result import ImputationResult
from .samplers.pan import pan_impute
from .mitml_list import MitmlList, MitmlResult, cluster_means, long_to_mitml_list

__version__ = "0.1.0"

__all__ = [
    "datasets",
    "pan_impute",
    "lmer",
    "LmerFit",
    "pool_estimates",
    "PooledEstimates",
    "compare_models",
    "pool_constraints",
    "anova",
    "multilevel_r2",
    "bridge",
    "io",
    "read_blimp",
    "read_long",
    "read_mplus",
    "read_rds",
    "read_spss",
    "read_stata",
    "read_stata_characteristics",
    "ImputationResult",
    "ChainSummary",
    "gelman_rubin",
    "mcse",
    "psr_by_iteration",
    "summarize",
    "MissingPattern",
    "complete_case_analysis",
    "missing_pattern",
    "plot_chains",
    "plot_psr",
    "parse_formula",
    "MitmlList",
    "MitmlResult",
    "cluster_means",
    "long_to_mitml_list",
]


def __getattr__(name: str):
    """Plotting is imported on first use (matplotlib is slow to import)."""
    if name in ("plot_chains", "plot_psr"):
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'pymitml' has no attribute {name!r}")
