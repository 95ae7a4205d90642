"""Argument checks shared by every public entry point (validate once, at the boundary).

Each check returns the normalised value or raises ValueError/TypeError naming the argument, the
value received and the fix, e.g. "`n_burn` must be an integer >= 0; got -5.".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "check_bool",
    "check_choice",
    "check_df_com",
    "check_df_com_method",
    "check_library",
    "check_positive_int",
    "check_run",
    "check_threads",
    "imputation_plan",
]


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


def check_choice(value: Any, allowed: Sequence[str], name: str) -> str:
    """``value`` if it is one of the strings ``allowed``, else a ValueError listing them."""
    if not isinstance(value, str) or value not in allowed:
        alts = ", ".join(repr(a) for a in allowed)
        raise ValueError(f"`{name}` must be one of {alts}; got {value!r}.")
    return value


def check_bool(value: Any, name: str) -> None:
    """A TypeError unless ``value`` is a bool (Python's or NumPy's)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"`{name}` must be True or False; got {value!r}.")


def check_library(library: Any) -> str:
    """``library`` if it is ``"pandas"`` or ``"polars"``, else a ValueError."""
    if library not in ("pandas", "polars"):
        raise ValueError(f"`library` must be 'pandas' or 'polars'; got {library!r}.")
    return library


def check_df_com(df_com: Any) -> float | None:
    """The complete-data degrees of freedom: None, or a positive finite number as a float."""
    if df_com is None:
        return None
    if isinstance(df_com, str):
        raise ValueError(
            f"`df_com={df_com!r}`: df methods of the fits ('Satterthwaite', 'Kenward-Roger') "
            "are available in pool_estimates only; here give a positive number or None."
        )
    scalar = bool(np.isscalar(df_com))  # (a plain bool: no type narrowing of df_com)
    if isinstance(df_com, bool) or not scalar or not np.isfinite(df_com) or df_com <= 0:
        raise ValueError(
            f"`df_com` must be a positive number (complete-data degrees of freedom) "
            f"or None; got {df_com!r}."
        )
    return float(df_com)


#: ``df_com`` strings: complete-data df taken from the fits (lmerTest / pbkrtest)
DF_COM_METHODS = ("Satterthwaite", "Kenward-Roger")


def check_df_com_method(df_com: Any) -> str | None:
    """The df method if ``df_com`` is a string ('Satterthwaite' or 'Kenward-Roger'), else None."""
    if not isinstance(df_com, str):
        return None
    return check_choice(df_com, DF_COM_METHODS, "df_com")
