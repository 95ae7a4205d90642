"""Model-based (substantive-model-compatible, Blimp-style) imputation."""

from ._delta import delta_analysis
from ._impute import ModelImputationResult, model_impute

__all__ = ["ModelImputationResult", "delta_analysis", "model_impute"]
