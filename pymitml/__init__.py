"""pymitml: multilevel multiple imputation, mixed models and pooling for Python.

The mitml + pan + jomo + lme4 workflow of R, natively::

    import pymitml as pm
    imp = pm.pan_impute(df, "ReadDis + SES ~ 1 + CognAbility + (1|ID)", m=20, seed=1)
    fits = imp.complete().with_(lambda d: pm.lmer("ReadDis ~ SES + (1|ID)", d))
    pm.pool_estimates(fits)
"""
from __future__ import annotations

from . import bridge, datasets, io
from .diagnostics import ChainSummary, gelman_rubin, mcse, psr_by_iteration, summarize
from .formula import parse_formula
from .io import (
    read_blimp,
    read_long,
    read_mplus,
    read_rds,
    read_spss,
    read_stata,
    read_stata_characteristics,
)
from .lmm import LmerFit, lmer
from .missing import MissingPattern, complete_case_analysis, missing_pattern
from .mitml_list import MitmlList, MitmlResult, cluster_means, long_to_mitml_list
from .pool import (
    PooledEstimates,
    anova,
    compare_models,
    multilevel_r2,
    pool_constraints,
    pool_estimates,
)
from .result import ImputationResult
from .samplers.jomo import jomo_impute
from .samplers.pan import pan_impute

__version__ = "0.1.0"

__all__ = [
    "ChainSummary",
    "ImputationResult",
    "LmerFit",
    "MissingPattern",
    "MitmlList",
    "MitmlResult",
    "PooledEstimates",
    "anova",
    "bridge",
    "cluster_means",
    "compare_models",
    "complete_case_analysis",
    "datasets",
    "gelman_rubin",
    "io",
    "lmer",
    "long_to_mitml_list",
    "mcse",
    "missing_pattern",
    "multilevel_r2",
    "pan_impute",
    "jomo_impute",
    "parse_formula",
    "plot_chains",
    "plot_psr",
    "pool_constraints",
    "pool_estimates",
    "psr_by_iteration",
    "read_blimp",
    "read_long",
    "read_mplus",
    "read_rds",
    "read_spss",
    "read_stata",
    "read_stata_characteristics",
    "summarize",
]


def __getattr__(name: str):
    """Plotting is imported on first use (matplotlib is slow to import)."""
    if name in ("plot_chains", "plot_psr"):
        from . import plots

        return getattr(plots, name)
    raise AttributeError(f"module 'pymitml' has no attribute {name!r}")
