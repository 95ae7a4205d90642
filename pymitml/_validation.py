"""Argument checks shared by every public entry point (validate once, at the boundary).

Each check returns the normalised value or raises ValueError/TypeError naming the argument, the
value received and the fix, e.g. "`n_burn` must be an integer >= 0; got -5.".
"""
from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_positive_int", "check_run", "check_threads", "imputation_plan"]


def check_positive_int(value: Any, name: str, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum``, or a ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < minimum:
        what = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
        raise ValueError(f"`{name}` must be {what}; got {value!r}.")
    return int(value)


def check_run(m, n_burn, n_iter, chains, keep_chains) -> tuple[int, int, int, int, list[int]]:
    """The samplers' common run arguments, checked: (m, n_burn, n_iter, chains, imputations per chain)."""
    m = check_positive_int(m, "m")
    n_burn = check_positive_int(n_burn, "n_burn", minimum=0)
    n_iter = check_positive_int(n_iter, "n_iter")
    chains = check_positive_int(chains, "chains")
    if keep_chains not in ("full", "diagonal"):
        raise ValueError(f"`keep_chains` must be 'full' or 'diagonal'; got {keep_chains!r}.")
    return m, n_burn, n_iter, chains, imputation_plan(m, chains)


def imputation_plan(m: int, chains: int) -> list[int]:
    """How many of the m imputations each chain draws (equal shares; m must divide evenly)."""
    if m % chains:
        raise ValueError(
            f"`m` ({m}) must be a multiple of `chains` ({chains}) so every chain draws the same number "
            f"of imputations; use m={chains * (m // chains + 1)} or chains=1."
        )
    return [m // chains] * chains


def check_threads(n_threads: Any, n_tasks: int, cpu_count: int) -> int:
    """``n_threads`` (None: up to the number of cores) as a positive int."""
    if n_threads is None:
        return max(1, min(n_tasks, cpu_count))
    if isinstance(n_threads, bool) or not isinstance(n_threads, (int, np.integer)) or n_threads < 1:
        raise ValueError(f"`n_threads` must be a positive integer or None; got {n_threads!r}.")
    return int(n_threads)
