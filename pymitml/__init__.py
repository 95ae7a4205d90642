"""pymitml: multilevel multiple imputation, mixed models and pooling for Python.

The mitml + pan + jomo + lme4 workflow of R, natively::

    import pymitml as pm

    imp = pm.pan_impute(df, "ReadDis + SES ~ 1 + CognAbility + (1|ID)", m=20, seed=1)
    fits = imp.complete().with_(lambda d: pm.lmer("ReadDis ~ SES + (1|ID)", d))
    pm.pool_estimates(fits)
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from . import datasets, io
from .diagnostics import ChainSummary, gelman_rubin, mcse, psr_by_iteration, summarize
from .exceptions import (
    ConvergenceWarning,
    FileFormatError,
    NumericalFailureError,
    PymitmlError,
    PymitmlWarning,
    SamplingInterrupted,
)
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
from .missing import MissingPattern, complete_case_analysis, missing_pattern
from .mitml_list import MitmlList, MitmlResult, cluster_means, long_to_mitml_list
from .pool import (
    PooledEstimates,
    anova,
    check_compatibility,
    compare_models,
    multilevel_r2,
    pool_constraints,
    pool_emmeans,
    pool_estimates,
    pool_predictions,
    pool_r2_nakagawa,
    pool_r2_rights_sterba,
    pool_variance_components,
    register_model,
)
from .result import ImputationResult

if TYPE_CHECKING:  # imported on first use, see __getattr__
    from . import bridge
    from .levels import detect_levels
    from .lmm import LmerFit, lmer
    from .lmm.glmer import GlmerFit, glmer
    from .plots import plot_chains, plot_psr
    from .samplers.fcs import fcs_impute, make_predictor_matrix
    from .samplers.jomo import jomo_impute
    from .samplers.model import delta_analysis, model_impute
    from .samplers.pan import pan_impute

try:
    __version__ = version("pymitml")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

#: public names whose modules are imported on first use: numba (the samplers' and lmer's
#: kernels), matplotlib and rpy2 take most of the import time and many sessions need none of them
_LAZY = {
    "bridge": (".bridge", None),
    "detect_levels": (".levels", "detect_levels"),
    "fcs_impute": (".samplers.fcs", "fcs_impute"),
    "jomo_impute": (".samplers.jomo", "jomo_impute"),
    "make_predictor_matrix": (".samplers.fcs", "make_predictor_matrix"),
    "model_impute": (".samplers.model", "model_impute"),
    "delta_analysis": (".samplers.model", "delta_analysis"),
    "GlmerFit": (".lmm.glmer", "GlmerFit"),
    "glmer": (".lmm.glmer", "glmer"),
    "LmerFit": (".lmm", "LmerFit"),
    "lmer": (".lmm", "lmer"),
    "pan_impute": (".samplers.pan", "pan_impute"),
    "plot_chains": (".plots", "plot_chains"),
    "plot_psr": (".plots", "plot_psr"),
}

__all__ = [
    "ChainSummary",
    "ConvergenceWarning",
    "FileFormatError",
    "GlmerFit",
    "ImputationResult",
    "LmerFit",
    "MissingPattern",
    "MitmlList",
    "MitmlResult",
    "NumericalFailureError",
    "PooledEstimates",
    "PymitmlError",
    "PymitmlWarning",
    "SamplingInterrupted",
    "anova",
    "bridge",
    "check_compatibility",
    "cluster_means",
    "compare_models",
    "complete_case_analysis",
    "datasets",
    "delta_analysis",
    "detect_levels",
    "fcs_impute",
    "gelman_rubin",
    "glmer",
    "io",
    "jomo_impute",
    "lmer",
    "long_to_mitml_list",
    "make_predictor_matrix",
    "mcse",
    "missing_pattern",
    "model_impute",
    "multilevel_r2",
    "pan_impute",
    "parse_formula",
    "plot_chains",
    "plot_psr",
    "pool_constraints",
    "pool_emmeans",
    "pool_estimates",
    "pool_predictions",
    "pool_r2_nakagawa",
    "pool_r2_rights_sterba",
    "pool_variance_components",
    "psr_by_iteration",
    "read_blimp",
    "read_long",
    "read_mplus",
    "read_rds",
    "read_spss",
    "read_stata",
    "read_stata_characteristics",
    "register_model",
    "summarize",
]


def __getattr__(name: str) -> Any:
    """The names in ``_LAZY``, imported on first access and then cached in the module."""
    try:
        module_name, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'pymitml' has no attribute {name!r}") from None
    module = importlib.import_module(module_name, __name__)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
