"""Running a study: replications in parallel, one file per replication, resumable.

A task is one replication of one design for one method: draw the data from the replication's
seed, run the method on it, score each pooled parameter against the truth, and write the rows to
``<out>/<design>/<method>/rep_<r>.csv`` (written to a temporary file and renamed, so a killed study leaves
either a whole file or none). Running the same study again skips the files that exist: a study
killed part way continues where it stopped, and its results are the same as an uninterrupted
run's, because every replication's seed is a function of the study seed, the design's name and
the replication number only. A method added to a finished study runs on the same data sets.
"""

from __future__ import annotations

import gzip
import os
import time
import warnings
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._designs import Design
from ._methods import METHODS, NotApplicable, Settings

__all__ = ["run_replication", "run_study", "load_results"]

COLUMNS = [
    "design",
    "rep",
    "seed",
    "method",
    "parameter",
    "truth",
    "estimate",
    "se",
    "lower",
    "upper",
    "covered",
    "width",
    "fmi",
    "status",
    "message",
    "seconds",
]


def _score(design: Design, fits: Any, level: float) -> list[dict[str, Any]]:
    """Pooled fixed effects and variance components of the fits, against the truth.

    Fixed effects: Rubin's rules (:func:`~pymitml.pool_estimates`). A variance component's
    estimate is the mean of its m estimates (mitml's pooled value; boundary fits with a zero
    variance count, as they do in the literature's studies), and its interval the pooled one on
    the log-SD scale (:func:`~pymitml.pool_variance_components`) from the fits that are not on
    the boundary; when fewer than two are left the replication has no interval for it
    (``covered`` missing), never a dropped replication. One fit (listwise deletion) is passed
    twice: B = 0, so the pooled interval is the fit's own Wald interval.
    """
    import pymitml as pm
    from pymitml.pool._extract import variance_components
    from pymitml.pool._failures import FitFailureError

    if len(fits) == 1:
        fits = [fits[0], fits[0]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = pm.pool_estimates(fits, on_failure="drop")
        ci = est.confint(level)
        per_fit = [variance_components(f) for f in fits]
        avg = pd.concat([v for v in per_fit if v is not None], axis=1).mean(axis=1)
        try:
            vc = pm.pool_variance_components(fits, level=level, on_failure="drop_warned").table
        except (ValueError, FitFailureError):  # every fit (or all but one) on the boundary
            vc = pd.DataFrame()
    rows = []
    for par, truth in design.truth.items():
        if par in est.table.index:
            e = float(est.table.loc[par, "Estimate"])
            se = float(est.table.loc[par, "Std.Error"])
            lo, hi = (float(x) for x in ci.loc[par])
            fmi = float(est.table.loc[par, "FMI"])
        elif par in avg.index:
            e, se = float(avg[par]), float("nan")
            if par in vc.index:
                lo, hi = float(vc.loc[par].iloc[1]), float(vc.loc[par].iloc[2])
                fmi = float(vc.loc[par, "FMI"])
            else:
                lo = hi = fmi = float("nan")
        else:
            raise KeyError(f"parameter {par!r} is not among the pooled estimates")
        has = bool(np.isfinite(lo) and np.isfinite(hi))
        rows.append(
            {
                "parameter": par,
                "truth": truth,
                "estimate": e,
                "se": se,
                "lower": lo,
                "upper": hi,
                "covered": bool(lo <= truth <= hi) if has else pd.NA,
                "width": hi - lo,
                "fmi": fmi,
            }
        )
    return rows


def run_replication(
    design: Design,
    rep: int,
    methods: Sequence[str],
    settings: Settings,
    seed: int = 1,
    level: float = 0.95,
) -> pd.DataFrame:
    """Every method on one replication of ``design``; a tidy frame of scored parameters."""
    rseed = design.seed(seed, rep)
    data = design.generate(rseed)
    data.attrs["seed"] = rseed
    out: list[dict[str, Any]] = []
    for k, name in enumerate(methods):
        t0 = time.perf_counter()
        base = {"design": design.name, "rep": rep, "seed": rseed, "method": name}
        try:
            fits = METHODS[name](design, data, settings, rseed + k)
            rows = _score(design, fits, level)
            status, msg = "ok", ""
        except NotApplicable as e:
            rows, status, msg = [], "not applicable", str(e)
        except Exception as e:  # a failed method is a result of the study, not a crash
            rows, status, msg = [], "error", f"{type(e).__name__}: {e}".splitlines()[0][:300]
        dt = time.perf_counter() - t0
        if not rows:
            rows = [{"parameter": p, "truth": t} for p, t in design.truth.items()]
        out.extend({**base, **r, "status": status, "message": msg, "seconds": dt} for r in rows)
    return pd.DataFrame(out).reindex(columns=COLUMNS)


def _path(out: Path, design: Design, method: str, rep: int) -> Path:
    return out / design.name / method / f"rep_{rep:05d}.csv"


def _task(args: tuple) -> str:
    design, rep, method, settings, seed, level, out = args
    path = _path(out, design, method, rep)
    res = run_replication(design, rep, [method], settings, seed, level)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    res.to_csv(tmp, index=False)
    os.replace(tmp, path)
    return str(path)


def run_study(
    designs: Sequence[Design],
    *,
    reps: int,
    out: str | os.PathLike,
    methods: Sequence[str] | None = None,
    settings: Settings | None = None,
    seed: int = 1,
    n_jobs: int = 1,
    level: float = 0.95,
    client: Any = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run (or resume) a study and return all its results (see :func:`load_results`).

    Parameters
    ----------
    designs : the cells (:func:`~pymitml.studies.design_grid`, :data:`~pymitml.studies.DESIGNS`).
    reps : replications per cell; a later call with more continues the same study.
    out : folder of the per-replication result files (created; existing files are kept).
    methods : names from :data:`~pymitml.studies.METHODS` (default: all).
    settings : m, n_burn, n_iter, maxit of every imputation.
    seed : the study seed (with the design name and replication number, each replication's).
    n_jobs : worker processes (1: in this process). The workers are spawned, so a script
        that calls this with ``n_jobs > 1`` must do so under ``if __name__ == "__main__":``.
    client : a ``dask.distributed.Client`` to run the replications on instead.
    """
    methods = list(METHODS) if methods is None else list(methods)
    bad = [m for m in methods if m not in METHODS]
    if bad:
        raise ValueError(f"unknown methods {bad}; choose from {list(METHODS)}.")
    if not isinstance(reps, int) or reps < 1:
        raise ValueError(f"`reps` must be a positive integer; got {reps!r}.")
    names = [d.name for d in designs]
    if len(set(names)) != len(names):
        raise ValueError("design names must be unique (they name the result folders).")
    settings = settings or Settings()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    todo = [
        (d, r, mth, settings, seed, level, root)
        for d in designs
        for r in range(1, reps + 1)
        for mth in methods
        if not _path(root, d, mth, r).exists()
    ]
    t0 = time.perf_counter()
    if client is not None:
        futures = client.map(_task, todo, pure=False)
        client.gather(futures)
    elif n_jobs > 1 and len(todo) > 1:
        import multiprocessing as mp

        with ProcessPoolExecutor(n_jobs, mp_context=mp.get_context("spawn")) as ex:
            for i, _ in enumerate(ex.map(_task, todo), 1):
                _report(progress, i, len(todo), t0)
    else:
        for i, t in enumerate(todo, 1):
            _task(t)
            _report(progress, i, len(todo), t0)
    return load_results(root, designs, reps, methods)


def _report(progress: bool, i: int, n: int, t0: float) -> None:
    if progress:
        el = time.perf_counter() - t0
        print(f"  {i}/{n} replications, {el:.0f} s", flush=True)


def load_results(
    out: str | os.PathLike,
    designs: Sequence[Design] | None = None,
    reps: int | None = None,
    methods: Sequence[str] | None = None,
) -> pd.DataFrame:
    """The results written so far under ``out`` (optionally only these designs, methods and
    first ``reps`` replications), in design, method and replication order."""
    root = Path(out)
    wanted = None if designs is None else [d.name for d in designs]
    frames = []
    for f in sorted(root.glob("*/*/rep_*.csv")):
        if wanted is not None and f.parent.parent.name not in wanted:
            continue
        if methods is not None and f.parent.name not in methods:
            continue
        if reps is not None and int(f.stem.split("_")[1]) > reps:
            continue
        frames.append(pd.read_csv(f, dtype={"message": str, "status": str}))
    if not frames:
        return pd.DataFrame(columns=COLUMNS)
    res = pd.concat(frames, ignore_index=True)
    res["message"] = res["message"].fillna("")
    res["covered"] = res["covered"].astype("boolean")
    d_order = wanted or sorted(res["design"].unique())
    m_order = list(methods) if methods is not None else list(METHODS)
    m_order += sorted(set(res["method"]) - set(m_order))
    res["_d"] = res["design"].map({n: i for i, n in enumerate(d_order)})
    res["_m"] = res["method"].map({n: i for i, n in enumerate(m_order)})
    res = res.sort_values(["_d", "_m", "rep"], kind="stable").drop(columns=["_d", "_m"])
    return res.reset_index(drop=True)


def pack_results(out: str | os.PathLike, packed: str | os.PathLike) -> list[Path]:
    """Gather the per-replication files under ``out`` into one compressed CSV per design and
    method (``packed/<design>/<method>.csv.gz``), the form a study's partial results are carried
    in (a git commit, another machine); :func:`unpack_results` restores the files. Unfinished
    temporary files are left out. Returns the files written."""
    root, dest = Path(out), Path(packed)
    written = []
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        files = sorted(folder.glob("rep_*.csv"))
        if not files:
            continue
        frames = [pd.read_csv(f, dtype=str, keep_default_na=False) for f in files]
        target = dest / folder.parent.name / f"{folder.name}.csv.gz"
        target.parent.mkdir(parents=True, exist_ok=True)
        # mtime=0: the same results give the same bytes, so an unchanged cell is no git change
        with gzip.GzipFile(target, "wb", mtime=0) as fh:
            pd.concat(frames, ignore_index=True).to_csv(fh, index=False)
        written.append(target)
    return written


def unpack_results(packed: str | os.PathLike, out: str | os.PathLike) -> int:
    """Write back the per-replication files of :func:`pack_results` under ``out`` (files already
    there are kept), so that :func:`run_study` resumes after them. Returns how many it wrote."""
    n = 0
    for f in sorted(Path(packed).glob("*/*.csv.gz")):
        tab = pd.read_csv(f, dtype=str, keep_default_na=False)
        folder = Path(out) / f.parent.name / f.name[: -len(".csv.gz")]
        folder.mkdir(parents=True, exist_ok=True)
        for rep, rows in tab.groupby("rep", sort=False):
            path = folder / f"rep_{int(rep):05d}.csv"
            if not path.exists():
                rows.to_csv(path, index=False)
                n += 1
    return n
