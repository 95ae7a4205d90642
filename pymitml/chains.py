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

from ._validation import check_run, check_threads, imputation_plan

__all__ = ["SEGMENT", "check_run", "imputation_plan", "run_tasks"]

#: iterations per kernel call; the progress bar advances between calls
SEGMENT = 250


def _want_progress(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


def run_tasks(tasks: Sequence[Callable[[Callable[[int], None]], object]], total: int,
              n_threads: int | None = None, progress: bool | None = None,
              desc: str = "imputing") -> list:
    """Run ``tasks`` (each called with a ``tick(n_iterations)`` callback) and return their results
    in task order. ``total`` is the number of iterations over all tasks, for the progress bar."""
    n_threads = check_threads(n_threads, len(tasks), os.cpu_count() or 1)
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
