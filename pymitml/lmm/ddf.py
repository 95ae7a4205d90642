"""Denominator degrees of freedom for lmer fits (Satterthwaite as lmerTest, Kenward-Roger as pbkrtest)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from .._validation import check_choice

__all__ = ["DDF_METHODS", "coef_table_ddf"]

#: the ``ddf`` methods :meth:`LmerFit.coef_table` accepts
DDF_METHODS = ("Satterthwaite", "Kenward-Roger")


def coef_table_ddf(fit: Any, ddf: str) -> pd.DataFrame:
    """lmerTest's coefficient table with ``ddf`` degrees of freedom (in progress)."""
    check_choice(ddf, DDF_METHODS, "ddf")
    raise NotImplementedError(f"`ddf={ddf!r}` is not available yet.")
