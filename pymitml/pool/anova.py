"""Pooled likelihood-ratio comparisons of a sequence of nested models (mitml's ``anova.mitml.result``).

The models are ordered by decreasing number of parameters and each is compared with the next by
:func:`pymitml.pool.model_tests.compare_models`, with D3 by default. As in mitml, a method that the
model class does not support falls back along D3 -> D4 -> D2 (likelihood), with a warning, and REML
fits are refitted by maximum likelihood first.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from .._validation import check_choice
from . import _likelihood as _ll
from ._failures import FitReport, check_on_failure, screen_fit_lists
from .model_tests import (
    TEST_COLUMNS,
    ModelTestResult,
    _as_fit_list,
    _check_same_data,
    _compare,
    _format_table,
)

__all__ = ["AnovaResult", "anova"]

_ORDER = ("D3", "D4", "D2")


@dataclass(frozen=True, eq=False)
class AnovaResult:
    """Comparisons of consecutive models (mitml's ``mitml.anova``).

    Attributes
    ----------
    table : DataFrame with one row per comparison (index ``"1 vs 2"``, ``"2 vs 3"``, ...) and the
        columns ``F.value, df1, df2, P(>F), RIV``.
    formulas : the models' formulas, in the order compared (decreasing complexity).
    tests : the individual :class:`ModelTestResult` records.
    m, method, ariv : as used; reml : whether any fit was refitted from REML to ML;
    ordered : whether the models were ordered by their number of parameters.
    fit_report : failures and warnings of the analyses over all models
        (:class:`~pymitml.pool.FitReport`; an imputation counts when any model failed or
        warned there).
    """

    table: pd.DataFrame
    formulas: list[str]
    tests: list[ModelTestResult]
    m: int
    method: str
    ariv: str = "default"
    reml: bool = False
    ordered: bool = True
    fit_report: FitReport | None = None

    def summary(self, digits: int = 3, sci_limit: int = 5) -> str:
        """The printout of mitml's ``print.mitml.anova``."""
        out = [
            "",
            f"Model comparison calculated from {self.m} imputed data sets.",
            f"Combination method: {self.method}"
            + (" (likelihood)" if self.method == "D2" else "")
            + (" (robust)" if self.method == "D4" and self.ariv == "robust" else ""),
            "",
        ]
        if self.fit_report is not None and not self.fit_report.clean:
            out += self.fit_report.lines() + [""]
        out += [f"Model {i + 1}: {f}" for i, f in enumerate(self.formulas)]
        out.append("")
        rows = [f"{i + 1} vs {i + 2} " for i in range(len(self.tests))]
        out += _format_table(
            self.table.to_numpy(), TEST_COLUMNS, rows, [digits, 0] + [digits] * 3, sci_limit
        )
        out.append("")
        out.append(
            "Models were automatically ordered via 'logLik' (by decreasing complexity)."
            if self.ordered
            else "Models were ordered as provided by the user (by decreasing complexity)."
        )
        if self.method == "D4":
            out.append("Data for stacking were automatically extracted from the fitted models.")
        if self.reml:
            out.append("Models originally fit with REML were automatically refit using ML.")
        out.append("")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<AnovaResult {self.method}: {len(self.formulas)} models, m = {self.m}>"


def anova(
    *fits: Sequence[Any],
    method: str | None = None,
    ariv: str = "default",
    on_failure: str = "error",
) -> AnovaResult:
    """Compare nested models fitted to m imputed data sets, consecutively (mitml's ``anova``).

    Parameters
    ----------
    *fits : two or more lists of m fits (one list per model, e.g. from ``MitmlList.with_``),
        in any order: they are sorted by decreasing number of parameters.
    method : ``"D3"`` (the default, also for None), ``"D4"`` or ``"D2"`` (likelihood-ratio
        statistics). A method the fits do not support falls back along D3 -> D4 -> D2 with a
        warning, as in mitml.
    ariv : for D4: ``"default"``, ``"positive"`` or ``"robust"``.
    on_failure : as in :func:`pool_estimates`, over all the lists: an imputation where any
        model failed (warned) counts as failed (warned); ``"error"`` (default) refuses failed
        fits and warns about warned ones, ``"drop"`` leaves out the imputations where a model
        failed, ``"drop_warned"`` also those where one warned, from every list (messages are
        labelled ``model k`` in the order the lists were given).

    Returns
    -------
    AnovaResult with ``.table`` (one row per comparison: ``F.value, df1, df2, P(>F), RIV``);
    ``print`` it for mitml's layout.

    Examples
    --------
    >>> f0 = implist.with_(lambda d: pm.lmer("y ~ 1 + (1|g)", d))  # doctest: +SKIP
    >>> f1 = implist.with_(lambda d: pm.lmer("y ~ x + (1|g)", d))  # doctest: +SKIP
    >>> f2 = implist.with_(lambda d: pm.lmer("y ~ x + (1 + x|g)", d))  # doctest: +SKIP
    >>> print(pm.anova(f0, f1, f2))  # doctest: +SKIP
    """
    method = check_choice("D3" if method is None else method, _ORDER, "method")
    ariv = check_choice(ariv, ("default", "positive", "robust"), "ariv")
    on_failure = check_on_failure(on_failure)
    if len(fits) < 2:
        raise ValueError(
            f"anova needs at least two lists of fits (one per model); got {len(fits)}."
        )
    report = None
    if all(isinstance(f, Sequence) and not isinstance(f, (str, bytes)) for f in fits):
        screened, report = screen_fit_lists(fits, on_failure)
        fits = tuple(screened)
    lists = [_as_fit_list(f, f"fits[{i}]") for i, f in enumerate(fits)]
    m = len(lists[0])
    for i, f in enumerate(lists[1:], start=1):
        if len(f) != m:
            raise ValueError(
                f"fits[{i}] holds {len(f)} fits but fits[0] holds {m}: the numbers of imputations "
                "differ; fit every model to the same MitmlList."
            )
    classes = [type(f[0]) for f in lists]
    if len(set(classes)) > 1:
        warnings.warn(
            "the lists hold fits of different classes "
            f"({sorted({c.__name__ for c in classes})}); results may not be trustworthy.",
            UserWarning,
            stacklevel=2,
        )
    used = _supported_method(lists, method)
    if used != method:
        warnings.warn(
            f"the '{method}' method is not supported for these models; switching to '{used}'.",
            UserWarning,
            stacklevel=2,
        )
    reml = any(_ll.is_reml(f) for fl in lists for f in fl)
    dfs = [_ll.model_df(fl[0]) for fl in lists]
    order = sorted(range(len(lists)), key=lambda i: -dfs[i])  # stable: ties keep given order
    lists = [lists[i] for i in order]
    for a, b in itertools.pairwise(lists):
        _check_same_data(a, b)
    ml_lists = [[_ll.ml_fit(f) for f in fl] for fl in lists]
    tests = []
    for a, b in itertools.pairwise(ml_lists):
        res = _compare(a, b, used, "likelihood", ariv if used == "D4" else "default", None)
        tests.append(res)
    table = pd.concat([t.table for t in tests], ignore_index=True)
    table.index = [f"{i + 1} vs {i + 2}" for i in range(len(tests))]
    tests = [replace(t, fit_report=report) for t in tests]
    return AnovaResult(
        table=table,
        formulas=[_ll.formula_text(fl[0]) for fl in lists],
        tests=tests,
        m=m,
        method=used,
        ariv=ariv,
        reml=reml,
        ordered=True,
        fit_report=report,
    )


def _supported_method(lists: list[list], method: str) -> str:
    """The first of ``method`` and its fallbacks (D3 -> D4 -> D2) that every model supports."""
    problems = {}
    for cand in _ORDER[_ORDER.index(method) :]:
        missing = [
            type(fl[0]).__name__
            for fl in lists
            if cand not in getattr(_adapter_or_none(fl[0]), "methods", ())
        ]
        if not missing:
            return cand
        problems[cand] = sorted(set(missing))
    detail = "; ".join(f"{k}: not available for {v}" for k, v in problems.items())
    raise TypeError(
        f"the '{method}' method is not supported for these models and no alternative was found "
        f"({detail}). Likelihood comparisons support pymitml.lmer fits and statsmodels OLS, GLM "
        "and discrete-choice results; use pm.compare_models(..., method='D1') for Wald tests."
    )


def _adapter_or_none(fit: Any):
    try:
        return _ll.adapter(fit)
    except TypeError:
        return None
