"""Convergence diagnostics of imputation chains (mitml's ``summary.mitml`` and more).

Every statistic works on plain arrays laid out like mitml's ``par.imputation``:
``(rows, cols, iterations, groups)`` or, with several chains, ``(rows, cols, iterations, groups,
chains)``. Nothing here knows how the sampler works.

Statistics (mitml's definitions, checked against R to 1e-8 in tests/test_diagnostics.py):

* potential scale reduction :math:`\\hat R` (Gelman & Rubin 1992, with the degrees-of-freedom
  correction) on the imputation phase of one chain split into ``n_Rhat`` segments of equal length
  (the last ``iterations mod n_Rhat`` draws are left out), and across chains when several ran;
* autocorrelation at lag 1, lag ``n_iter`` and ``2 n_iter`` (the two longer lags smoothed over
  the lags ``k-2..k+2`` with normal weights, sd 0.5);
* goodness of approximation: the Monte Carlo standard error from an autoregressive spectral
  estimate at frequency zero (Yule-Walker AR model, order by AIC) divided by the posterior SD;
* the Monte Carlo standard error by batch means (:func:`mcse`), to compare samplers.

Modules: :mod:`._statistics` (the statistics on arrays), :mod:`._tables` (chains -> a table of
named parameters), :mod:`._summary` (:class:`ChainSummary`, :func:`summarize`,
:func:`imputation_summary`), :mod:`._psr` (:func:`psr_by_iteration`); plots in
:mod:`pymitml.plots`.
"""

from __future__ import annotations

from ._psr import psr_by_iteration
from ._statistics import _ar_spectrum0 as _ar_spectrum0  # used by the tests
from ._statistics import (
    acf,
    gelman_rubin,
    goodness_of_approximation,
    lag_autocorrelation,
    mcse,
    moving_average,
)
from ._summary import ChainSummary, imputation_summary, summarize
from ._tables import BLOCKS, RHAT_THRESHOLD, parameter_table

__all__ = [
    "BLOCKS",
    "RHAT_THRESHOLD",
    "ChainSummary",
    "acf",
    "gelman_rubin",
    "goodness_of_approximation",
    "imputation_summary",
    "lag_autocorrelation",
    "mcse",
    "moving_average",
    "parameter_table",
    "psr_by_iteration",
    "summarize",
]
