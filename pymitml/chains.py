"""Former home of the chain driver, now :mod:`pymitml.samplers.driver`; these names stay importable
from here for code not yet moved (the jomo sampler imports ``SEGMENT``, ``check_run`` and
``run_tasks`` from this module)."""
from __future__ import annotations

from ._validation import check_run, imputation_plan
from .samplers.driver import SEGMENT, run_tasks

__all__ = ["SEGMENT", "check_run", "imputation_plan", "run_tasks"]
