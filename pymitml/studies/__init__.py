"""Validity studies: bias and coverage of the imputation methods across simulated designs.

A study is a list of designs (:class:`Design`: a data generator with its analysis model and its
truth), a list of methods (:data:`METHODS`: listwise deletion, single-level imputation, pan- and
jomo-style joint models, chained equations with mice's 2l.pan / 2l.norm / 2l.pmm and, where this
pymitml has it, model-based imputation) and a number of replications. :func:`run_study` runs the
replications in parallel (processes or a Dask cluster) with one seed per replication, writes one
file per replication and resumes where a killed run stopped; :func:`summarize` gives the tidy
table (bias, relative bias, RMSE, coverage, width, FMI, each with its Monte Carlo standard error).

>>> from pymitml import studies  # doctest: +SKIP
>>> res = studies.run_study(studies.DESIGNS, reps=500, out="study_out", n_jobs=8)  # doctest: +SKIP
>>> studies.summarize(res)  # doctest: +SKIP

``benchmarks/study_validity.py`` runs the published study and prints its table.
"""

from ._designs import DESIGNS, Design, design_grid
from ._methods import METHODS, NotApplicable, Settings, method_names
from ._runner import load_results, pack_results, run_replication, run_study, unpack_results
from ._summary import plot_summary, summarize, to_markdown

__all__ = [
    "DESIGNS",
    "Design",
    "METHODS",
    "NotApplicable",
    "Settings",
    "design_grid",
    "load_results",
    "method_names",
    "pack_results",
    "plot_summary",
    "run_replication",
    "run_study",
    "summarize",
    "to_markdown",
    "unpack_results",
]
