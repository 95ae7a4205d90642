"""Failure accounting for pooling: which imputations' analyses failed or warned.

:meth:`pymitml.MitmlList.with_` keeps an analysis that raised as a :class:`~pymitml.FailedFit`
and records every imputation's warnings (:class:`~pymitml.FitStatus`). Before pooling,
:func:`screen_fits` reads those records (or, for a plain list, the fits' own ``singular`` /
``converged`` flags) and applies the caller's ``on_failure`` rule:

* ``"error"`` (default): any failed fit stops pooling with :class:`FitFailureError`, which lists
  the imputations and their messages; warned fits are pooled with a :class:`FitWarning`
  naming them.
* ``"drop"``: failed fits are left out (with a :class:`FitWarning`); warned fits are pooled.
* ``"drop_warned"``: failed and warned fits are both left out.

Dropping imputations is valid when failure is unrelated to the imputed values (the remaining
m' data sets are still exchangeable draws); the result reports what was dropped
(:class:`FitReport`), so a reader can judge that.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..exceptions import PymitmlError, PymitmlWarning
from ..mitml_list import FailedFit, FitStatus, MitmlResult, fit_status

__all__ = [
    "ON_FAILURE",
    "FitFailureError",
    "FitReport",
    "FitWarning",
    "check_no_failed",
    "screen_fit_lists",
    "screen_fit_pair",
    "screen_fits",
]

#: the values ``on_failure`` accepts
ON_FAILURE = ("error", "drop", "drop_warned")


class FitFailureError(PymitmlError, ValueError):
    """Pooling refused: the analysis failed on some imputed data sets."""


class FitWarning(PymitmlWarning):
    """Some imputed data sets' analyses warned (singular, non-converged, separation, ...)."""


@dataclass(frozen=True)
class FitReport:
    """How many of the m analyses were pooled, and which failed, warned or were dropped.

    Imputation numbers are 0-based here; printouts show them 1-based.
    """

    m_total: int
    failed: tuple[int, ...] = ()
    warned: tuple[int, ...] = ()
    dropped: tuple[int, ...] = ()
    messages: tuple[tuple[int, tuple[str, ...]], ...] = ()

    @property
    def m_pooled(self) -> int:
        return self.m_total - len(self.dropped)

    @property
    def clean(self) -> bool:
        return not (self.failed or self.warned or self.dropped)

    def lines(self) -> list[str]:
        """Printout lines (none when every analysis ran cleanly)."""
        if self.clean:
            return []
        out = [
            f"Fits: {self.m_pooled} of {self.m_total} imputations pooled; "
            f"{len(self.failed)} failed, {len(self.warned)} warned, "
            f"{len(self.dropped)} dropped."
        ]
        msgs = dict(self.messages)
        for i in sorted(set(self.failed) | set(self.warned)):
            tag = "failed" if i in self.failed else "warned"
            drop = ", dropped" if i in self.dropped else ""
            out.append(f"  imputation {i + 1} ({tag}{drop}): {'; '.join(msgs.get(i, ()))}")
        return out


def _statuses(fits: Sequence[Any]) -> tuple[FitStatus, ...]:
    if isinstance(fits, MitmlResult):
        return fits.statuses
    return tuple(fit_status(f, i) for i, f in enumerate(fits))


def _listing(recs: Sequence[FitStatus]) -> str:
    return "\n".join(f"  imputation {r.imputation + 1}: {'; '.join(r.messages)}" for r in recs)


def check_on_failure(on_failure: Any) -> str:
    if on_failure not in ON_FAILURE:
        raise ValueError(f"`on_failure` must be one of {list(ON_FAILURE)}; got {on_failure!r}.")
    return str(on_failure)


def screen_fits(
    fits: Sequence[Any], on_failure: str = "error", *, stacklevel: int = 3
) -> tuple[list[Any], FitReport]:
    """The fits to pool and the :class:`FitReport`, after the ``on_failure`` rule.

    Raises :class:`FitFailureError` (failed fits with ``on_failure="error"``, or fewer than two
    fits left) and warns with :class:`FitWarning`.
    """
    on_failure = check_on_failure(on_failure)
    recs = _statuses(fits)
    failed = [r for r in recs if r.status == "error"]
    warned = [r for r in recs if r.status == "warning"]
    m = len(recs)
    if failed and on_failure == "error":
        first = next(f for f in fits if isinstance(f, FailedFit))
        raise FitFailureError(
            f"the analysis failed on {len(failed)} of {m} imputed data sets:\n"
            f"{_listing(failed)}\n"
            "Fix the analysis (the first error is chained below), or pool the others "
            "explicitly with on_failure='drop'."
        ) from first.error
    drop = {r.imputation for r in failed}
    if on_failure == "drop_warned":
        drop |= {r.imputation for r in warned}
    if failed:
        warnings.warn(
            f"{len(failed)} of {m} analyses failed and were dropped from pooling:\n"
            f"{_listing(failed)}",
            FitWarning,
            stacklevel=stacklevel,
        )
    if warned:
        what = "dropped from pooling" if on_failure == "drop_warned" else "pooled all the same"
        warnings.warn(
            f"{len(warned)} of {m} analyses warned ({what}):\n{_listing(warned)}",
            FitWarning,
            stacklevel=stacklevel,
        )
    kept = [f for i, f in enumerate(fits) if i not in drop]
    if drop and len(kept) < 2:
        raise FitFailureError(
            f"only {len(kept)} of {m} fits are left to pool after dropping imputations "
            f"{sorted(i + 1 for i in drop)}; pooling needs at least 2."
        )
    report = FitReport(
        m_total=m,
        failed=tuple(r.imputation for r in failed),
        warned=tuple(r.imputation for r in warned),
        dropped=tuple(sorted(drop)),
        messages=tuple((r.imputation, r.messages) for r in recs if r.status != "ok"),
    )
    return kept, report


def screen_fit_pair(
    fits: Sequence[Any], null_fits: Sequence[Any], on_failure: str = "error"
) -> tuple[list[Any], list[Any], FitReport]:
    """:func:`screen_fits` for two lists fitted to the same imputations (model comparisons): an
    imputation counts as failed (warned) when either model failed (warned) there, and is dropped
    from both lists."""
    (a, b), report = screen_fit_lists(
        [fits, null_fits], on_failure, ("model", "null model"), stacklevel=5
    )
    return a, b, report


def screen_fit_lists(
    lists: Sequence[Sequence[Any]],
    on_failure: str = "error",
    labels: Sequence[str] | None = None,
    *,
    stacklevel: int = 4,
) -> tuple[list[list[Any]], FitReport]:
    """:func:`screen_fits` for several lists fitted to the same imputations (``anova``): an
    imputation counts as failed (warned) when any model failed (warned) there, and is dropped
    from every list. ``labels`` prefix each model's messages (default ``"model 1"``, ...)."""
    on_failure = check_on_failure(on_failure)
    labels = [f"model {k + 1}" for k in range(len(lists))] if labels is None else list(labels)
    recs = [_statuses(fl) for fl in lists]
    if len({len(r) for r in recs}) > 1:  # the caller's length check names this properly
        return [list(fl) for fl in lists], FitReport(len(recs[0]))
    merged = []
    for i, row in enumerate(zip(*recs)):
        states = [r.status for r in row]
        status = "error" if "error" in states else "warning" if "warning" in states else "ok"
        msgs = tuple(f"{lab}: {x}" for lab, r in zip(labels, row) for x in r.messages)
        merged.append(FitStatus(row[0].imputation, status, msgs))
    # stand-ins carrying the merged records, so screen_fits applies one rule to every list
    proxy = MitmlResult(
        [next((f for f in col if isinstance(f, FailedFit)), col[0]) for col in zip(*lists)],
        merged,
    )
    _, report = screen_fits(proxy, on_failure, stacklevel=stacklevel)
    keep = [i for i in range(len(merged)) if i not in report.dropped]
    return [[fl[i] for i in keep] for fl in lists], report


def check_no_failed(fits: Sequence[Any]) -> None:
    """Raise :class:`FitFailureError` when a list of fits holds a :class:`FailedFit` (for the
    pooling functions without an ``on_failure`` option)."""
    failed = [f for f in fits if isinstance(f, FailedFit)]
    if failed:
        raise FitFailureError(
            f"the analysis failed on {len(failed)} of {len(fits)} imputed data sets:\n"
            + "\n".join(f"  imputation {f.imputation + 1}: {f.message}" for f in failed)
            + "\nFix the analysis (the first error is chained below), or leave the failed "
            "imputations out of both lists of fits yourself."
        ) from failed[0].error
