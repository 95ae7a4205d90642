"""Running the chains: burn-in / n_iter / m scheme, several chains, threads, progress.

Each (group, chain) pair is one task with its own random stream (SeedSequence.spawn, fixed by
the task's position), run start to finish on one worker thread; numba kernels release the GIL,
so tasks run in parallel and the draws do not depend on the number of threads.
"""
from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

from ._model import check_positive_int

__all__ = ["SEGMENT", "check_run", "imputation_plan", "run_tasks"]

#: iterations per kernel call; the progress bar advances between calls
SEGMENT = 250


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


def _want_progress(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def run_tasks(tasks: Sequence[Callable[[Callable[[int], None]], object]], total: int,
              n_threads: int | None = None, progress: bool | None = None,
              desc: str = "imputing") -> list:
    """Run ``tasks`` (each called with a ``tick(n_iterations)`` callback) and return their results
    in task order. ``total`` is the number of iterations over all tasks, for the progress bar."""
    if n_threads is None:
        n_threads = min(len(tasks), os.cpu_count() or 1)
    if not isinstance(n_threads, int) or n_threads < 1:
        raise ValueError(f"`n_threads` must be a positive integer or None; got {n_threads!r}.")
    bar = None
    lock = threading.Lock()
    if _want_progress(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=total, desc=desc, unit="it", leave=False)

    def tick(n: int) -> None:
        if bar is not None:
            with lock:
                bar.update(n)

    try:
        if n_threads == 1 or len(tasks) == 1:
            return [t(tick) for t in tasks]
        with ThreadPoolExecutor(max_workers=n_threads) as pool:
            futures = [pool.submit(t, tick) for t in tasks]
            return [f.result() for f in futures]
    finally:
        if bar is not None:
            bar.close()
