"""MitmlList: the m completed data sets, and the analyses run on each (mitml's mitml.list)."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from ._frame import as_pandas, library_of

__all__ = [
    "FailedFit",
    "FitStatus",
    "MitmlList",
    "MitmlResult",
    "cluster_means",
    "fit_status",
    "long_to_mitml_list",
    "register_writer",
]


class FailedFit:
    """Stands in :class:`MitmlResult` for an analysis that raised on one imputed data set.

    Attributes
    ----------
    imputation : 0-based number of the data set.
    error : the exception the analysis raised (:meth:`reraise` raises it again).
    """

    __slots__ = ("error", "imputation")

    def __init__(self, imputation: int, error: BaseException):
        self.imputation = int(imputation)
        self.error = error

    @property
    def message(self) -> str:
        return f"{type(self.error).__name__}: {self.error}"

    def reraise(self) -> None:
        raise self.error

    def __repr__(self) -> str:
        return f"<FailedFit: imputation {self.imputation + 1}: {self.message}>"


@dataclass(frozen=True)
class FitStatus:
    """What happened when the analysis ran on one imputed data set.

    Attributes
    ----------
    imputation : 0-based number of the data set.
    status : ``"ok"``, ``"warning"`` (the analysis warned, or the fit reports a singular
        (boundary) or non-converged fit) or ``"error"`` (the analysis raised).
    messages : the warnings (``"Category: text"``), the fit's own flags and the error.
    """

    imputation: int
    status: str
    messages: tuple[str, ...] = ()


def _flag_messages(fit: Any) -> list[tuple[str, str]]:
    """Trouble a fit reports about itself, as (keyword, text): boundary (singular) fits,
    failed convergence."""
    out = []
    if getattr(fit, "singular", False) is True:
        out.append(("singular", "boundary (singular) fit"))
    if getattr(fit, "converged", True) is False:
        out.append(("converge", "the fit did not converge"))
    return out


def fit_status(fit: Any, imputation: int, caught: Sequence[str] = ()) -> FitStatus:
    """The :class:`FitStatus` of one result: ``caught`` are warnings recorded while it ran."""
    if isinstance(fit, FailedFit):
        return FitStatus(imputation, "error", (*caught, fit.message))
    msgs = list(caught)
    for key, text in _flag_messages(fit):
        if not any(key in m.lower() for m in msgs):  # already said by a warning
            msgs.append(text)
    return FitStatus(imputation, "warning" if msgs else "ok", tuple(msgs))


class MitmlResult(list[Any]):
    """The list of analysis results returned by :meth:`MitmlList.with_` (mitml's mitml.result).

    An analysis that raised is kept as a :class:`FailedFit` at its position; ``status`` records
    for every imputation whether the analysis ran cleanly, warned or failed, with the messages.
    Pooling functions read it: they refuse failed fits and warn about warned ones unless told
    otherwise (``on_failure=``).
    """

    def __init__(
        self, items: Any = (), status: Sequence[FitStatus] | None = None, source: Any = None
    ):
        super().__init__(items)
        self._status: tuple[FitStatus, ...] | None = None if status is None else tuple(status)
        #: the MitmlList the analyses ran on (pool_emmeans builds its reference grid from it)
        self.source = source

    @property
    def status(self) -> pd.DataFrame:
        """One row per imputation: imputation (1-based), status, messages ("; "-joined)."""
        recs = self.statuses
        return pd.DataFrame(
            {
                "imputation": [r.imputation + 1 for r in recs],
                "status": [r.status for r in recs],
                "messages": ["; ".join(r.messages) for r in recs],
            }
        )

    @property
    def statuses(self) -> tuple[FitStatus, ...]:
        """The :class:`FitStatus` records (recorded by ``with_``, else read from the fits)."""
        if self._status is not None and len(self._status) == len(self):
            return self._status
        return tuple(fit_status(f, i) for i, f in enumerate(self))

    @property
    def failed(self) -> list[int]:
        """0-based numbers of the imputations whose analysis raised."""
        return [r.imputation for r in self.statuses if r.status == "error"]

    @property
    def warned(self) -> list[int]:
        """0-based numbers of the imputations whose analysis warned."""
        return [r.imputation for r in self.statuses if r.status == "warning"]

    def __repr__(self) -> str:
        ok = [f for f in self if not isinstance(f, FailedFit)]
        kind = type(ok[0]).__name__ if ok else ("nothing" if not self else "FailedFit")
        extra = []
        if self.failed:
            extra.append(f"{len(self.failed)} failed")
        if self.warned:
            extra.append(f"{len(self.warned)} warned")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"<MitmlResult: {len(self)} fits of {kind}{tail}>"


def _run_one(
    func: Callable[..., Any], args: tuple, i: int, errors: str
) -> tuple[Any, FitStatus, list]:
    """Run one analysis, recording its warnings and (``errors="record"``) its exception."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = func(*args)
        except Exception as exc:  # noqa: BLE001  (recorded, re-raised at pooling)
            if errors == "raise":
                raise
            out = FailedFit(i, exc)
    texts = [f"{w.category.__name__}: {w.message}" for w in caught]
    return out, fit_status(out, i, texts), list(caught)


def _reemit(records: list[tuple[int, list]]) -> None:
    """Warn once per distinct (category, text), naming the imputations (1-based) that raised it."""
    seen: dict[tuple[type, str], list[int]] = {}
    for i, caught in records:
        for w in caught:
            seen.setdefault((w.category, str(w.message)), []).append(i + 1)
    for (category, text), imps in seen.items():
        which = ", ".join(str(k) for k in imps)
        label = "imputation" if len(imps) == 1 else "imputations"
        try:
            warnings.warn(f"{text} ({label} {which})", category, stacklevel=3)
        except TypeError:  # a warning class whose constructor needs other arguments
            warnings.warn(
                f"{category.__name__}: {text} ({label} {which})", UserWarning, stacklevel=3
            )


class MitmlList(Sequence):
    """A list of m completed data sets (pandas or polars), all with the same columns.

    Parameters
    ----------
    frames : sequence of DataFrames (all pandas or all polars) with identical columns.
    original : the incomplete data (imputation 0 in Stata/SPSS/Blimp exports), if known.

    Examples
    --------
    >>> implist = imp.complete()  # doctest: +SKIP
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ x + (1|g)", d))  # doctest: +SKIP
    """

    def __init__(self, frames: Sequence[Any], original: Any = None):
        frames = list(frames)
        if not frames:
            raise ValueError("a MitmlList needs at least one data set; got none.")
        libs = {library_of(f) for f in frames}
        if len(libs) > 1:
            raise TypeError(
                "all data sets in a MitmlList must come from one library (pandas or polars)."
            )
        cols = list(frames[0].columns)
        for i, f in enumerate(frames[1:], start=2):
            if list(f.columns) != cols:
                raise ValueError(
                    f"data set {i} has columns {list(f.columns)}, but data set 1 has {cols}."
                )
        if original is not None and library_of(original) not in libs:
            raise TypeError("`original` must come from the same library as the data sets.")
        self._frames = frames
        self.original = original
        #: the ImputationResult these data sets came from, when known (set by ``complete()``;
        #: pooling uses it to check the analysis against the imputation model)
        self.imputation: Any = None

    # --- sequence protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self._frames)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return MitmlList(self._frames[i], self.original)
        return self._frames[i]

    def __repr__(self) -> str:
        f = self._frames[0]
        return (
            f"<MitmlList: {len(self)} imputed data sets ({self.library}), "
            f"{f.shape[0]} rows x {f.shape[1]} columns>"
        )

    @property
    def library(self) -> str:
        return library_of(self._frames[0])

    @property
    def columns(self) -> list[str]:
        return list(self._frames[0].columns)

    # --- analysis ----------------------------------------------------------
    def with_(
        self, func: Callable[..., Any], include_data: bool = False, errors: str = "record"
    ) -> MitmlResult:
        """Run ``func`` on every data set (mitml's ``with``); returns the list of results.

        ``include_data=True`` calls ``func(data, i)`` with the 0-based imputation number too.

        Every run's warnings are recorded (and shown once each, naming the imputations), and
        fits that flag themselves singular or not converged are noted: ``result.status`` has
        one row per imputation. ``errors="record"`` (default): an analysis that raises is kept
        as a :class:`FailedFit` and the other data sets are still analysed; pooling the
        result then refuses with a list of the failures (or drops them with
        ``on_failure="drop"``). If every analysis raises, the first exception is raised here.
        ``errors="raise"``: the first exception stops ``with_`` at once.
        """
        if not callable(func):
            raise TypeError(
                f"`func` must be callable (e.g. a lambda taking a DataFrame); got {type(func).__name__}."
            )
        if errors not in ("record", "raise"):
            raise ValueError(f"`errors` must be 'record' or 'raise'; got {errors!r}.")
        out, status, caught = [], [], []
        for i, d in enumerate(self._frames):
            r, st, w = _run_one(func, (d, i) if include_data else (d,), i, errors)
            out.append(r)
            status.append(st)
            caught.append((i, w))
        if out and all(isinstance(r, FailedFit) for r in out):
            first = out[0].error
            first.add_note(
                f"pymitml: the analysis raised on all {len(out)} imputed data sets; "
                "this is the error of the first."
            )
            raise first
        _reemit(caught)
        return MitmlResult(out, status, self)

    def within(self, func: Callable[[Any], Any], ignore: Sequence[str] | None = None) -> MitmlList:
        """Transform every data set (mitml's ``within``): ``func`` gets a copy and returns a DataFrame.

        Columns named in ``ignore`` are dropped from the result after ``func`` ran.
        """
        out = []
        for d in self._frames:
            r = func(d.copy() if self.library == "pandas" else d)
            if r is None:
                raise ValueError(
                    "`func` in within() must return the transformed DataFrame; it returned None."
                )
            if ignore:
                r = r.drop(columns=list(ignore))
            out.append(r)
        return MitmlList(out, self.original)

    def subset(self, rows: Callable[[Any], Any] | str) -> MitmlList:
        """Rows kept by a boolean function of the data set, or a pandas ``query`` string."""
        out = []
        for d in self._frames:
            if isinstance(rows, str):
                p = as_pandas(d).query(rows)
                out.append(p if self.library == "pandas" else _like(p, d))
            else:
                mask = np.asarray(rows(d), dtype=bool)
                out.append(d[mask] if self.library == "pandas" else d.filter(mask))
        return MitmlList(out, None)

    def sort(self, by: str | Sequence[str], descending: bool = False) -> MitmlList:
        """Every data set sorted by ``by`` (stable)."""
        by = [by] if isinstance(by, str) else list(by)
        if self.library == "pandas":
            out = [
                d.sort_values(by, ascending=not descending, kind="mergesort") for d in self._frames
            ]
        else:
            out = [d.sort(by, descending=descending, maintain_order=True) for d in self._frames]
        return MitmlList(out, None)

    def to_long(self, imputation: str = ".imp", id: str = ".id", include_original: bool = False):
        """All data sets stacked, with the imputation number (1..m; 0 = original) and row id (1..N).

        The inverse is :func:`long_to_mitml_list`.
        """
        blocks = [(0, self.original)] if include_original and self.original is not None else []
        blocks += [(i + 1, d) for i, d in enumerate(self._frames)]
        if self.library == "polars":
            import polars as pl

            return pl.concat(
                [
                    d.with_columns(
                        pl.lit(i, dtype=pl.Int64).alias(imputation),
                        pl.int_range(1, d.height + 1, dtype=pl.Int64).alias(id),
                    ).select([imputation, id, *d.columns])
                    for i, d in blocks
                ],
                how="vertical_relaxed",
            )
        parts = []
        for i, d in blocks:
            p = d.copy()
            p.insert(0, id, np.arange(1, len(d) + 1))
            p.insert(0, imputation, i)
            parts.append(p)
        return pd.concat(parts, axis=0)

    # --- interchange: the writers live in pymitml.io and register themselves ----------
    def to_stata(self, path, **kwargs):
        """Write one Stata .dta in ``mi flong`` style (see :func:`pymitml.io.stata.write_stata`)."""
        return _writer("stata")(self, path, **kwargs)

    def to_spss(self, path, **kwargs):
        """Write one SPSS .sav stacked by ``Imputation_`` plus a .sps (:func:`pymitml.io.spss.write_spss`)."""
        return _writer("spss")(self, path, **kwargs)

    def to_mplus(self, stem, **kwargs):
        """Write Mplus TYPE=IMPUTATION files (:func:`pymitml.io.mplus.write_mplus`)."""
        return _writer("mplus")(self, stem, **kwargs)

    def to_blimp(self, path, **kwargs):
        """Write Blimp-style stacked or separate files (:func:`pymitml.io.blimp.write_blimp`)."""
        return _writer("blimp")(self, path, **kwargs)

    def to_rds(self, path, **kwargs):
        """Write an R .rds holding a real ``mitml.list`` (needs R; :func:`pymitml.io.rds.write_rds`)."""
        return _writer("rds")(self, path, **kwargs)

    def to_file(self, path, **kwargs):
        """Write the long format (CSV or parquet, by extension) with an imputation column
        (:func:`pymitml.io.long.write_long`)."""
        return _writer("long")(self, path, **kwargs)


# --------------------------------------------------------------------------------------------
# writer registry: pymitml.io depends on this module, never the other way round. Each format
# module of pymitml.io enters its writer here when it is imported (``import pymitml`` imports
# them all), and the ``to_*`` methods above look the writer up by format name.

#: format name -> ``writer(mitml_list, target, **kwargs)``
_WRITERS: dict[str, Callable[..., Any]] = {}

_W = TypeVar("_W", bound=Callable[..., Any])


def register_writer(fmt: str) -> Callable[[_W], _W]:
    """Decorator entering ``writer(mitml_list, target, **kwargs)`` as the writer of ``fmt``."""

    def decorator(writer: _W) -> _W:
        _WRITERS[fmt] = writer
        return writer

    return decorator


def _writer(fmt: str) -> Callable[..., Any]:
    try:
        return _WRITERS[fmt]
    except KeyError:
        raise LookupError(
            f"no writer is registered for the format {fmt!r} (registered: "
            f"{sorted(_WRITERS)}); `import pymitml.io` registers the built-in "
            "writers."
        ) from None


def _like(p: pd.DataFrame, template):
    import polars as pl

    return pl.from_pandas(p).cast(dict(template.schema))


def long_to_mitml_list(
    data: Any, split: str = ".imp", exclude: Sequence | None = None, drop: Sequence[str] = (".id",)
) -> MitmlList:
    """Split a stacked data set into a MitmlList (mitml's ``long2mitml.list``).

    Parameters
    ----------
    data : pandas or polars DataFrame with an imputation-number column.
    split : name of that column.
    exclude : values of ``split`` that are not imputations (e.g. ``[0]``, the original data); the
        first excluded block, if there is exactly one, becomes ``original``.
    drop : helper columns removed from each block when present (``split`` is always removed).
    """
    lib = library_of(data)
    if split not in data.columns:
        raise ValueError(
            f"`split` column '{split}' not found in the data; columns are {list(data.columns)}."
        )
    exclude = list(exclude or [])
    dropcols = [split] + [c for c in drop if c in data.columns]
    if lib == "polars":
        import polars as pl

        keys = data[split].unique(maintain_order=True).to_list()
        keys = sorted(keys)
        blocks = {k: data.filter(pl.col(split) == k).drop(dropcols) for k in keys}
    else:
        keys = sorted(pd.unique(data[split]))
        blocks = {k: data.loc[data[split] == k].drop(columns=dropcols) for k in keys}
    imps = [blocks[k] for k in keys if k not in exclude]
    orig = [blocks[k] for k in keys if k in exclude]
    return MitmlList(imps, orig[0] if len(orig) == 1 else None)


def cluster_means(x: Any, cluster: Any, adj: bool = False, data: Any = None) -> np.ndarray:
    """Cluster means of ``x`` for every row (mitml's ``clusterMeans``); missing values are skipped.

    Parameters
    ----------
    x, cluster : column names in ``data``, or arrays of equal length.
    adj : leave-one-out means (each row's own value left out); NaN where the row's own value is
        missing or no other value is observed in its cluster (as mitml).
    """
    if data is not None:
        pdf = as_pandas(data)
        x = pdf[x] if isinstance(x, str) else x
        cluster = pdf[cluster] if isinstance(cluster, str) else cluster
    xv = np.asarray(pd.Series(x).to_numpy(dtype=np.float64, na_value=np.nan), dtype=np.float64)
    codes, _ = pd.factorize(pd.Series(cluster), sort=False)
    if (codes < 0).any():
        raise ValueError("`cluster` has missing ids; every row needs a cluster.")
    obs = ~np.isnan(xv)
    sums = np.bincount(codes, weights=np.where(obs, xv, 0.0))
    cnts = np.bincount(codes, weights=obs.astype(float))
    with np.errstate(invalid="ignore", divide="ignore"):
        if not adj:
            return sums[codes] / cnts[codes]
        s = sums[codes] - np.where(obs, xv, 0.0)
        n = cnts[codes] - obs
        # as mitml: a row whose own value is missing gets NaN in the adjusted version
        return np.where(obs & (n > 0), s / np.where(n > 0, n, 1), np.nan)
