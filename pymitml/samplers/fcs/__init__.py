"""Multilevel chained equations (mice's FCS with its 2l.* methods): :func:`fcs_impute`."""

from ._impute import fcs_impute
from ._spec import make_predictor_matrix

__all__ = ["fcs_impute", "make_predictor_matrix"]
