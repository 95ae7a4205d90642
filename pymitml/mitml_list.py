"""MitmlList: the m completed data sets, and the analyses run on each (mitml's mitml.list)."""

from __future__ import annotations

import os
import threading
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


# --- where the data sets come from ----------------------------------------------------------
# A MitmlList reads its data sets from a source: either frames it was given (``_Frames``, how
# the readers and users build lists) or, for ``ImputationResult.complete()``, the observed data
# once plus the replacement matrix (``_Imputed``), from which data set i is built when it is
# used. Transformations of a lazy list stay lazy: a slice (``_Select``), rows kept or reordered
# (``_Rows``) and the columns ``within()`` changed (``_Delta``). Every source is picklable, so a
# process or a Dask worker receives the source once and builds the data sets itself.


class _Source:
    """``n`` data sets, data set ``i`` built by ``get(i)`` (a new frame the caller may change)."""

    lazy = True

    def __len__(self) -> int:
        raise NotImplementedError

    def get(self, i: int) -> Any:
        raise NotImplementedError

    @property
    def template(self) -> Any:
        """A frame with the data sets' columns, of their library (not a copy; its dtypes may
        differ where imputed values change them, e.g. an integer column that gets decimals)."""
        raise NotImplementedError

    def n_rows(self) -> int:
        return int(self.template.shape[0])


class _Frames(_Source):
    """Data sets held as given."""

    lazy = False

    def __init__(self, frames: list):
        self.frames = frames

    def __len__(self) -> int:
        return len(self.frames)

    def get(self, i: int) -> Any:
        return self.frames[i]

    @property
    def template(self) -> Any:
        return self.frames[0]


class _Imputed(_Source):
    """Imputations ``which`` (1-based; 0 = the incomplete data) rebuilt through the codebook:
    ``values[k, j - 1]`` goes to row ``rows[k]`` of codebook target ``cols[k]`` in data set j."""

    def __init__(
        self,
        codebook: Any,
        rows: np.ndarray,
        cols: np.ndarray,
        values: np.ndarray,
        which: Sequence[int],
    ):
        self.codebook, self.rows, self.cols, self.values = codebook, rows, cols, values
        self.which = [int(k) for k in which]

    def __len__(self) -> int:
        return len(self.which)

    def get(self, i: int) -> Any:
        k = self.which[i]
        if k == 0:
            inc = self.codebook.incomplete
            return inc.copy() if self.codebook.library == "pandas" else inc.clone()
        return self.codebook.complete(self.rows, self.cols, self.values[:, k - 1])

    @property
    def template(self) -> Any:
        return self.codebook.incomplete


class _Select(_Source):
    """Data sets ``positions`` of ``parent`` (a slice of a lazy list)."""

    def __init__(self, parent: _Source, positions: Sequence[int]):
        self.parent, self.positions = parent, list(positions)

    def __len__(self) -> int:
        return len(self.positions)

    def get(self, i: int) -> Any:
        return self.parent.get(self.positions[i])

    @property
    def template(self) -> Any:
        return self.parent.template


class _Rows(_Source):
    """Rows ``positions[i]`` (0-based, in that order) of the parent's data set i; equal position
    arrays of consecutive data sets are stored once."""

    def __init__(self, parent: _Source, positions: list[np.ndarray]):
        self.parent, self.positions = parent, positions

    def __len__(self) -> int:
        return len(self.positions)

    def get(self, i: int) -> Any:
        d = self.parent.get(i)
        pos = self.positions[i]
        return d.iloc[pos] if library_of(d) == "pandas" else d[pos]

    @property
    def template(self) -> Any:
        return self.parent.template

    def n_rows(self) -> int:
        return len(self.positions[0])


class _Delta(_Source):
    """The parent's data sets as ``within()`` changed them. ``deltas[i]`` is ``(columns,
    changed)``: the result's column order and the columns that differ from the parent's data set
    i (new or changed, by name); or ``(None, frame)`` when rows or the index changed (the whole
    result is kept)."""

    def __init__(self, parent: _Source, deltas: list, template: Any):
        self.parent, self.deltas, self._template = parent, deltas, template

    def __len__(self) -> int:
        return len(self.deltas)

    def get(self, i: int) -> Any:
        cols, changed = self.deltas[i]
        if cols is None:
            return changed.copy() if library_of(changed) == "pandas" else changed.clone()
        base = self.parent.get(i)
        if library_of(base) == "polars":
            out = base.with_columns(list(changed.values())) if changed else base
            return out if out.columns == cols else out.select(cols)
        for c, s in changed.items():
            base[c] = s
        return base if list(base.columns) == cols else base[cols]

    @property
    def template(self) -> Any:
        return self._template

    def n_rows(self) -> int:
        cols, frame = self.deltas[0]
        return int(frame.shape[0]) if cols is None else self.parent.n_rows()


def _same_column(a: Any, b: Any) -> bool:
    """The two columns (pandas or polars Series) hold the same values with the same dtype."""
    if a.dtype != b.dtype:
        return False
    if isinstance(a, pd.Series):
        return bool(a.equals(b))
    return bool(a.equals(b, check_dtypes=True, check_names=False))


def _delta(base: Any, result: Any) -> tuple:
    """What ``within()`` keeps of one transformed data set (see :class:`_Delta`)."""
    cols = list(result.columns)
    if len(set(cols)) != len(cols) or result.shape[0] != base.shape[0]:
        return None, result
    if isinstance(result, pd.DataFrame) and not result.index.equals(base.index):
        return None, result
    changed = {}
    have = set(base.columns)
    for c in cols:
        s = result[c]
        if c not in have or not _same_column(s, base[c]):
            changed[c] = s.copy() if isinstance(s, pd.Series) else s.clone()
    return cols, changed


def _missing_like(col: Any, n: int) -> Any:
    """A column of ``n`` missing values that holds ``col``'s values (pandas or polars Series):
    the same dtype where it has a missing value (float, nullable, category, text), else the
    nullable or float counterpart (integers become float64 in pandas, booleans ``boolean``)."""
    if not isinstance(col, pd.Series):
        import polars as pl

        return pl.Series(col.name, [None] * n, dtype=col.dtype)
    dt = col.dtype
    if pd.api.types.is_bool_dtype(dt) and not isinstance(dt, pd.CategoricalDtype):
        dt = pd.BooleanDtype()
    elif isinstance(dt, np.dtype) and dt.kind in "iu":
        dt = np.dtype(np.float64)
    return pd.Series(col.iloc[:0].astype(dt)).reindex(pd.RangeIndex(n)).array


def _conformed_original(original: Any, result: Any) -> Any:
    """``original`` with ``result``'s columns: its own where it has them, else all missing."""
    n = int(original.shape[0])
    if result.shape[0] != n:
        return None
    if library_of(original) == "polars":
        have = set(original.columns)
        extra = [_missing_like(result[c], n) for c in result.columns if c not in have]
        return original.with_columns(extra).select(list(result.columns))
    out = original.copy()
    for c in result.columns:
        if c not in out.columns:
            out[c] = _missing_like(result[c], n)
    return out[list(result.columns)]


def _within_original(
    func: Callable[[Any], Any], original: Any, result: Any, ignore: Sequence[str] | None
) -> Any:
    """The original as ``within()`` gives it back (see :meth:`MitmlList.within`): ``func`` on a
    copy of it, or, when that fails or differs in columns or rows from ``result`` (the first
    transformed data set), the original conformed to ``result``'s columns."""
    if original is None or result is None:
        return original
    try:
        with warnings.catch_warnings():  # e.g. arithmetic on missing values: not the user's news
            warnings.simplefilter("ignore")
            r = func(original.copy() if library_of(original) == "pandas" else original)
            if ignore and r is not None:
                drop = list(ignore)
                r = r.drop(columns=drop) if library_of(r) == "pandas" else r.drop(drop)
    except Exception:  # noqa: BLE001  (the incomplete data may not suit func: conform instead)
        r = None
    if (
        r is not None
        and library_of(r) == library_of(original)
        and list(r.columns) == list(result.columns)
        and r.shape[0] == original.shape[0]
    ):
        return r
    return _conformed_original(original, result)


def _frame_nbytes(frame: Any) -> int:
    """Memory one data set like ``frame`` takes (bytes)."""
    if library_of(frame) == "pandas":
        return int(frame.memory_usage(index=True, deep=True).sum())
    return int(frame.estimated_size())


def _available_memory() -> int | None:
    """Bytes of memory available to new allocations (Linux /proc/meminfo), None if unknown."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


#: warn before materialising all data sets at once when they would take more than this share
#: of the available memory
MATERIALIZE_WARN_SHARE = 0.5


def _warn_if_large(source: _Source, n: int) -> None:
    """Warn, with the estimate, when ``n`` data sets built at once would not fit comfortably."""
    need = n * _frame_nbytes(source.template)
    avail = _available_memory()
    if avail is not None and need > MATERIALIZE_WARN_SHARE * avail:
        warnings.warn(
            f"materialising all {n} data sets at once needs about {need / 2**30:.2f} GiB "
            f"({need / n / 2**20:.1f} MiB each) and {avail / 2**30:.2f} GiB is available; "
            "iterate over the MitmlList instead (each data set is built when it is used), "
            "or use with_() and the writers, which build one data set at a time.",
            UserWarning,
            stacklevel=3,
        )


# --- running the analyses --------------------------------------------------------------------
#: one analysis's result: (the result or a FailedFit, its status, its warnings as (category, text))
_Outcome = tuple[Any, FitStatus, list[tuple[type, str]]]


def _call(func: Callable[..., Any], source: _Source, i: int, include_data: bool, errors: str):
    """``func`` on data set i (built here), or a FailedFit when it raised (``errors="record"``)."""
    d = source.get(i)
    try:
        return func(d, i) if include_data else func(d)
    except Exception as exc:  # noqa: BLE001  (recorded, re-raised at pooling)
        if errors == "raise":
            raise
        return FailedFit(i, exc)


def _outcome(out: Any, i: int, caught: Sequence[tuple[type, str]]) -> _Outcome:
    texts = [f"{cat.__name__}: {text}" for cat, text in caught]
    return out, fit_status(out, i, texts), list(caught)


def _run_one(
    func: Callable[..., Any], source: _Source, i: int, include_data: bool, errors: str
) -> _Outcome:
    """Run one analysis, recording its warnings and (``errors="record"``) its exception."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = _call(func, source, i, include_data, errors)
    return _outcome(out, i, [(w.category, str(w.message)) for w in caught])


#: applied to every analysis's result as soon as it is there: ``post(result, i)``
_Post = Callable[[Any, int], Any]


def _keep(result: Any, i: int) -> Any:
    return result


def _run_threads(
    func: Callable[..., Any],
    source: _Source,
    n_jobs: int,
    include_data: bool,
    errors: str,
    post: _Post = _keep,
) -> list[_Outcome]:
    """The analyses on ``n_jobs`` threads. ``warnings.catch_warnings`` is process-wide, so one
    handler records every warning under the imputation its thread is running."""
    from concurrent.futures import ThreadPoolExecutor

    local = threading.local()
    caught: dict[int, list[tuple[type, str]]] = {i: [] for i in range(len(source))}
    lock = threading.Lock()

    def show(message, category, filename, lineno, file=None, line=None):
        with lock:
            caught[getattr(local, "i", 0)].append((category, str(message)))

    def one(i: int) -> Any:
        local.i = i
        return post(_call(func, source, i, include_data, errors), i)

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        with ThreadPoolExecutor(max_workers=n_jobs) as pool:
            outs = list(pool.map(one, range(len(source))))
    return [_outcome(o, i, caught[i]) for i, o in enumerate(outs)]


class _Rerun:
    """The analysis of data set ``i`` run again (a light fit rebuilds its design from it)."""

    def __init__(self, func: Callable[..., Any], source: _Source, i: int, include_data: bool):
        self.func, self.source, self.i, self.include_data = func, source, i, include_data

    def __call__(self) -> Any:
        d = self.source.get(self.i)
        return self.func(d, self.i) if self.include_data else self.func(d)


def _lightened(result: Any, func: Callable[..., Any], source: _Source, i: int, inc: bool) -> Any:
    """``result`` without its per-row design arrays when it is a fit that can drop them."""
    lighten = getattr(result, "_lightened", None)
    return lighten(_Rerun(func, source, i, inc)) if callable(lighten) else result


_WORKER: dict[str, Any] = {}


def _worker_init(payload: bytes) -> None:
    """Worker process start: the source and the analysis, unpickled once per process."""
    import pickle

    _WORKER["source"], _WORKER["func"] = pickle.loads(payload)


def _worker_run(i: int, include_data: bool, errors: str) -> _Outcome:
    return _run_one(_WORKER["func"], _WORKER["source"], i, include_data, errors)


def _dumps(obj: Any) -> bytes:
    """Pickle with cloudpickle when it is installed (lambdas and closures), else pickle."""
    try:
        import cloudpickle
    except ImportError:
        import pickle

        return pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return cloudpickle.dumps(obj)


def _pickled_analysis(source: _Source, func: Callable[..., Any]) -> bytes:
    """``(source, func)`` pickled, or a TypeError that says what to do instead."""
    try:
        return _dumps((source, func))
    except Exception as exc:  # noqa: BLE001  (pickling raises many kinds)
        raise TypeError(
            f"`func` ({getattr(func, '__qualname__', type(func).__name__)}) cannot be pickled to "
            f"send it to worker processes ({type(exc).__name__}: {exc}); use "
            "backend='threads' (numba fits such as pymitml.lmer release the GIL), or define "
            "the analysis as a module-level function."
        ) from exc


def _run_processes(
    func: Callable[..., Any],
    source: _Source,
    n_jobs: int,
    include_data: bool,
    errors: str,
    post: _Post = _keep,
) -> list[_Outcome]:
    """The analyses on ``n_jobs`` processes; each receives the source and ``func`` once."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    payload = _pickled_analysis(source, func)
    method = "forkserver" if "forkserver" in mp.get_all_start_methods() else "spawn"
    with ProcessPoolExecutor(
        max_workers=min(n_jobs, len(source)),
        mp_context=mp.get_context(method),
        initializer=_worker_init,
        initargs=(payload,),
    ) as pool:
        futures = [pool.submit(_worker_run, i, include_data, errors) for i in range(len(source))]
        try:
            outs = []
            for k in range(len(futures)):  # each result posted and its future let go
                out, status, caught = futures[k].result()
                futures[k] = None  # type: ignore[call-overload]
                outs.append((post(out, k), status, caught))
            return outs
        except (AttributeError, TypeError) as exc:
            if "pickle" not in str(exc).lower():
                raise
            raise TypeError(
                f"a result of `func` could not be sent back from a worker process ({exc}); "
                "use backend='threads', or return something picklable."
            ) from exc


def _check_jobs(n_jobs: Any, backend: str, client: Any) -> int:
    if n_jobs is None:
        n_jobs = 1
    if (
        isinstance(n_jobs, bool)
        or not isinstance(n_jobs, (int, np.integer))
        or (n_jobs < 1 and n_jobs != -1)
    ):
        raise ValueError(
            f"`n_jobs` must be a positive integer, -1 (all cores) or None; got {n_jobs!r}."
        )
    if backend not in ("processes", "threads"):
        raise ValueError(f"`backend` must be 'processes' or 'threads'; got {backend!r}.")
    if client is not None and n_jobs != 1:
        raise ValueError(
            "give either `client` (a Dask cluster runs the analyses) or `n_jobs` (local "
            f"workers), not both; got n_jobs={n_jobs!r} and a client."
        )
    return (os.cpu_count() or 1) if n_jobs == -1 else int(n_jobs)


def _reemit(records: list[tuple[int, list[tuple[type, str]]]]) -> None:
    """Warn once per distinct (category, text), naming the imputations (1-based) that raised it."""
    seen: dict[tuple[type, str], list[int]] = {}
    for i, caught in records:
        for category, text in caught:
            seen.setdefault((category, text), []).append(i + 1)
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

    Notes
    -----
    The list returned by :meth:`ImputationResult.complete` is lazy: it holds the observed data
    once and the replacement matrix (missing cells x m), and builds a data set each time one is
    used (``implist[i]``, iteration, :meth:`with_`, the writers), so a data set taken from it is
    a new DataFrame each time (changing it does not change the list). :meth:`within`,
    :meth:`subset`, :meth:`sort` and slices of a lazy list stay lazy (``within`` keeps only the
    columns it changed). :meth:`materialize` builds all data sets at once and holds them (a
    list made from frames, ``MitmlList(frames)``, holds its frames as given).

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
        self._src: _Source = _Frames(frames)
        self.original = original
        #: the ImputationResult these data sets came from, when known (set by ``complete()``;
        #: pooling uses it to check the analysis against the imputation model)
        self.imputation: Any = None

    @classmethod
    def _from_source(cls, source: _Source, original: Any = None) -> MitmlList:
        """A list reading its data sets from ``source`` (no checks: the source is consistent)."""
        if len(source) == 0:
            raise ValueError("a MitmlList needs at least one data set; got none.")
        out = cls.__new__(cls)
        out._src, out.original, out.imputation = source, original, None
        return out

    @classmethod
    def from_imputation(
        cls,
        codebook: Any,
        rows: np.ndarray,
        cols: np.ndarray,
        replacement: np.ndarray,
        which: Sequence[int],
        original: Any = None,
    ) -> MitmlList:
        """A lazy list of imputations ``which`` (1-based; 0 = incomplete data): the codebook's
        observed data with ``replacement[k, j - 1]`` at row ``rows[k]`` of target ``cols[k]``."""
        return cls._from_source(_Imputed(codebook, rows, cols, replacement, which), original)

    # --- sequence protocol -------------------------------------------------
    def __len__(self) -> int:
        return len(self._src)

    def __getitem__(self, i):
        n = len(self)
        if isinstance(i, slice):
            if not self._src.lazy:
                return MitmlList(self._src.frames[i], self.original)  # type: ignore[attr-defined]
            return MitmlList._from_source(_Select(self._src, range(n)[i]), self.original)
        if not isinstance(i, (int, np.integer)):
            raise TypeError(
                f"MitmlList indices must be integers or slices; got {type(i).__name__}."
            )
        k = int(i) + n if i < 0 else int(i)
        if not 0 <= k < n:
            raise IndexError(f"data set {i} out of range; the list holds {n} data sets.")
        return self._src.get(k)

    def __iter__(self):
        for i in range(len(self)):
            yield self._src.get(i)

    def __repr__(self) -> str:
        return (
            f"<MitmlList: {len(self)} imputed data sets ({self.library}), "
            f"{self._src.n_rows()} rows x {len(self.columns)} columns>"
        )

    @property
    def library(self) -> str:
        return library_of(self._src.template)

    @property
    def columns(self) -> list[str]:
        return list(self._src.template.columns)

    @property
    def lazy(self) -> bool:
        """True when the data sets are built on use (see the class notes)."""
        return bool(self._src.lazy)

    def materialize(self) -> MitmlList:
        """All data sets built now and held (warns, with the estimate, if they would take more
        than half the available memory); the list itself is unchanged."""
        if not self._src.lazy:
            return self
        _warn_if_large(self._src, len(self))
        out = MitmlList(list(self), self.original)
        out.imputation = self.imputation
        return out

    # --- analysis ----------------------------------------------------------
    def with_(
        self,
        func: Callable[..., Any],
        include_data: bool = False,
        errors: str = "record",
        *,
        n_jobs: int | None = None,
        backend: str = "processes",
        client: Any = None,
        light: bool | None = None,
    ) -> MitmlResult:
        """Run ``func`` on every data set (mitml's ``with``); returns the list of results.

        ``include_data=True`` calls ``func(data, i)`` with the 0-based imputation number too.

        Every run's warnings are recorded (and shown once each, naming the imputations), and
        fits that flag themselves singular or not converged are noted: ``result.status`` has
        one row per imputation. ``errors="record"`` (default): an analysis that raises is kept
        as a :class:`FailedFit` and the other data sets are still analysed; pooling the
        result then refuses with a list of the failures (or drops them with
        ``on_failure="drop"``). If every analysis raises, the first exception is raised here.
        ``errors="raise"``: the first exception (in imputation order) is raised.

        Parallel runs give the same results, in imputation order, as the serial run:

        - ``n_jobs=k`` (-1: all cores) runs the analyses on k worker processes
          (``backend="processes"``; each process receives the observed data and the
          replacement matrix once and builds its data sets; ``func`` must be picklable:
          lambdas and closures are sent with cloudpickle when it is installed) or on k threads
          (``backend="threads"``; numba fits such as :func:`pymitml.lmer` release the GIL;
          up to k data sets are in memory at once).
        - ``client=`` a ``dask.distributed.Client``: the analyses run as Dask tasks; the list's
          source (observed data + replacement matrix) is sent to every worker once and each
          task builds its data set there (needs ``pip install pymitml[dask]``). Dask's
          workers run BLAS with one thread: an analysis whose large matrix products go through
          a multi-threaded BLAS may differ from a local run by rounding unless that run uses
          one BLAS thread too (``OPENBLAS_NUM_THREADS=1``).

        ``light`` (default: when the list is lazy) keeps :func:`pymitml.lmer` fits without
        their per-row design arrays (y, X, Z, cluster codes: about 1.3 data sets per fit), so
        m fits take little more memory than their estimates; pooling, summaries, tests,
        predictions and degrees of freedom give the same results, and what needs the arrays
        (``fit.X``, ``fitted()``, ddf, D4) rebuilds them from the data set (the analysis
        runs again up to the design, one fit at a time). ``light=False`` keeps them.
        """
        if not callable(func):
            raise TypeError(
                f"`func` must be callable (e.g. a lambda taking a DataFrame); got {type(func).__name__}."
            )
        if errors not in ("record", "raise"):
            raise ValueError(f"`errors` must be 'record' or 'raise'; got {errors!r}.")
        jobs = _check_jobs(n_jobs, backend, client)
        src = self._src
        post: _Post = _keep
        if self._src.lazy if light is None else light:  # each fit made light at once

            def post(r: Any, i: int) -> Any:
                return _lightened(r, func, src, i, include_data)

        results: list[_Outcome]
        if client is not None:
            from ._distributed import run_analyses

            results = run_analyses(client, src, func, include_data, errors)
            results = [(post(r[0], i), *r[1:]) for i, r in enumerate(results)]
        elif jobs > 1 and len(src) > 1 and backend == "threads":
            results = _run_threads(func, src, jobs, include_data, errors, post)
        elif jobs > 1 and len(src) > 1:
            results = _run_processes(func, src, jobs, include_data, errors, post)
        else:
            results = []
            for i in range(len(src)):
                out_i, status, caught = _run_one(func, src, i, include_data, errors)
                results.append((post(out_i, i), status, caught))
                del out_i  # the whole fit goes before the next analysis runs
        out = [r[0] for r in results]
        if errors == "raise":
            first = next((r for r in out if isinstance(r, FailedFit)), None)
            if first is not None:  # only from parallel runs, which record and raise here
                raise first.error
        if out and all(isinstance(r, FailedFit) for r in out):
            first_err = out[0].error
            first_err.add_note(
                f"pymitml: the analysis raised on all {len(out)} imputed data sets; "
                "this is the error of the first."
            )
            raise first_err
        _reemit([(i, r[2]) for i, r in enumerate(results)])
        return MitmlResult(out, [r[1] for r in results], self)

    def within(self, func: Callable[[Any], Any], ignore: Sequence[str] | None = None) -> MitmlList:
        """Transform every data set (mitml's ``within``): ``func`` gets a copy and returns a DataFrame.

        Columns named in ``ignore`` are dropped from the result after ``func`` ran. ``func``
        runs once per data set, now, and once on the incomplete data (``original``) when the
        list has it, so a derived column is missing there where its inputs are (Stata's m = 0
        of a passive variable) and the writers get an original with the result's columns; if
        ``func`` raises on the incomplete data (or gives other columns or rows), the original
        keeps its own values of the result's columns, columns it lacks are all missing, and
        columns the result dropped are dropped (with other rows it is dropped: None). On a lazy list the result is lazy too: it keeps only the
        columns ``func`` added or changed (per data set) and rebuilds the rest; a result with
        other rows or another index is kept whole.
        """
        deltas, template = [], None
        for d in self:
            base = d.copy() if library_of(d) == "pandas" else d
            r = func(base)
            if r is None:
                raise ValueError(
                    "`func` in within() must return the transformed DataFrame; it returned None."
                )
            if ignore:
                drop = list(ignore)
                r = r.drop(columns=drop) if library_of(r) == "pandas" else r.drop(drop)
            if not self._src.lazy:
                deltas.append(r)
                continue
            deltas.append(_delta(d, r))
            if template is None:
                template = r
        first = deltas[0] if not self._src.lazy else template
        original = _within_original(func, self.original, first, ignore)
        if not self._src.lazy:
            return MitmlList(deltas, original)
        if template is not None:  # an empty frame with the result's columns
            template = (
                template.iloc[:0].copy() if library_of(template) == "pandas" else template.clear()
            )
        return MitmlList._from_source(_Delta(self._src, deltas, template), original)

    def _with_rows(self, positions: Callable[[Any], np.ndarray]) -> MitmlList:
        """Lazy list of the rows ``positions(data set)`` of every data set."""
        kept: list[np.ndarray] = []
        for d in self:
            p = np.asarray(positions(d), dtype=np.int64)
            kept.append(kept[-1] if kept and np.array_equal(kept[-1], p) else p)
        return MitmlList._from_source(_Rows(self._src, kept), None)

    def subset(self, rows: Callable[[Any], Any] | str) -> MitmlList:
        """Rows kept by a boolean function of the data set, or a pandas ``query`` string."""
        if self._src.lazy:
            if isinstance(rows, str):
                expr = rows
                return self._with_rows(
                    lambda d: as_pandas(d).reset_index(drop=True).query(expr).index.to_numpy()
                )
            fn = rows
            return self._with_rows(lambda d: np.flatnonzero(np.asarray(fn(d), dtype=bool)))
        out = []
        for d in self:
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
        if self._src.lazy:
            if self.library == "pandas":
                return self._with_rows(
                    lambda d: (
                        d.reset_index(drop=True)
                        .sort_values(by, ascending=not descending, kind="mergesort")
                        .index.to_numpy()
                    )
                )
            import polars as pl

            return self._with_rows(
                lambda d: (
                    d.select(pl.arg_sort_by(by, descending=descending, maintain_order=True))
                    .to_series()
                    .to_numpy()
                )
            )
        if self.library == "pandas":
            out = [d.sort_values(by, ascending=not descending, kind="mergesort") for d in self]
        else:
            out = [d.sort(by, descending=descending, maintain_order=True) for d in self]
        return MitmlList(out, None)

    def to_long(self, imputation: str = ".imp", id: str = ".id", include_original: bool = False):
        """All data sets stacked, with the imputation number (1..m; 0 = original) and row id (1..N).

        The inverse is :func:`long_to_mitml_list`. The result holds every data set (warns, with
        the estimate, when that would take more than half the available memory).
        """
        _warn_if_large(self._src, len(self) + (1 if include_original else 0))
        blocks = [(0, self.original)] if include_original and self.original is not None else []
        blocks += list(enumerate(self, start=1))
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
