"""One chain driver for every sampler: streams, burn-in / n_iter / m, chains, threads, progress,
interruption, and the assembly of the :class:`~pymitml.result.ImputationResult`.

A sampler describes one (group, chain) task by a :class:`Chain`: how to advance its state
``n`` iterations (a kernel call), which parameter blocks it stores and their shapes, which
missing cells it imputes and how to read their current values. :func:`run_chains` runs every
task and :func:`assemble_result` turns their :class:`ChainOutput` into the result.

Scheme of one task (mitml's): ``n_burn`` burn-in iterations, then ``m_c`` imputations ``n_iter``
iterations apart, the imputed values read after each stretch. The driver calls ``advance`` in
segments of at most :data:`SEGMENT` iterations, ticking the progress bar and checking the stop
flag between segments.

Randomness: task k = g * chains + c (group g, chain c) gets the k-th of ``spawn_seeds(seed, G *
chains)``, whatever thread runs it, so results do not depend on ``n_threads``. Each task runs
start to finish on one worker thread; numba kernels release the GIL, so tasks run in parallel.

Interruption: Ctrl-C (a KeyboardInterrupt in the main thread, or raised by a worker) sets a stop
flag, the workers finish their current segment and stop, and :class:`SamplingInterrupted` is
raised once they have all returned; nothing is returned.

A sampler on the driver (pan's ``pan_impute`` is the worked example)::

    def make_chain(g, c, seed):  # runs on the worker thread
        rng = np.random.default_rng(seed)
        ...  # start values, layout, kernel bundles

        def advance(n, rec0, store):  # store: block -> (..., iterations) array
            code = my_iterate(n, rec0, rng, data, par, work, store["beta"], store["sigma"])
            return code, int(work.failed_at[0])  # or just code

        return Chain(
            advance,
            shapes={"beta": (p, r), "sigma": (r, r)},
            current=lambda: Yi[ct, cpos] + shift[ct],
            cells=(ct, cr),
            after_segment=None,
            finish=None,
        )


    out = run_chains(
        make_chain,
        [gd.label for gd in spec.groups],
        n_burn=n_burn,
        n_iter=n_iter,
        per_chain=per_chain,
        seed=seed,
        n_threads=n_threads,
        progress=progress,
        sampler="my_impute",
    )
    return assemble_result(
        out,
        blocks=("beta", "sigma"),
        group_rows=[gd.rows for gd in spec.groups],
        target_columns=spec.target_positions,
        method="mine",
        formula=...,
        targets=...,
        prior=...,
        settings=RunSettings(...),
        codebook=codebook,
        param_names=...,
        group_labels=[gd.label for gd in spec.groups],
        extra={},
    )
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from .._random import spawn_seeds
from .._validation import check_threads
from ..exceptions import SamplingInterrupted, raise_for_status

__all__ = [
    "SEGMENT",
    "Chain",
    "ChainOutput",
    "assemble_result",
    "replacement_matrix",
    "run_chains",
    "stack_chains",
]

#: iterations per kernel call; the progress bar advances and the stop flag is read between calls
SEGMENT = 250

#: test hook: called as ``_segment_hook(task, iterations_done)`` after every segment of a task
_segment_hook: Callable[[int, int], None] | None = None


@dataclass
class Chain:
    """One (group, chain) task as a sampler hands it to :func:`run_chains`.

    Attributes
    ----------
    advance : ``advance(n, rec0, store) -> status``: run ``n`` (<= SEGMENT) iterations in place,
        storing iteration s at index ``rec0 + s`` of every array of ``store`` (dict block ->
        array ``shapes[block] + (iterations,)``). Returns 0, a :class:`~pymitml.exceptions.Status`
        code, ``(status, s)`` with s the failing iteration within the call, or
        ``(status, s, variable)`` naming the target whose step failed.
    shapes : block -> shape of one stored draw, e.g. ``{"beta": (p, r), "psi": (d, d), ...}``;
        the driver allocates the burn-in and imputation stores from them (zeros).
    current : ``current() -> (cells,)`` array: the current values of the missing cells, in the
        order of ``cells``, on the data's scale.
    cells : (target index, row index within the group) of each missing cell.
    after_segment : optional ``after_segment(n, burn_in)`` after every segment of n iterations
        (e.g. adapting Metropolis proposals during burn-in).
    finish : optional ``finish(burnin, imputation) -> extra``: last changes to the stores in place
        (e.g. intercepts back on the data's scale); its return value becomes ``ChainOutput.extra``.
    """

    advance: Callable[[int, int, dict], Any]
    shapes: Mapping[str, tuple]
    current: Callable[[], np.ndarray]
    cells: tuple[np.ndarray, np.ndarray]
    after_segment: Callable[[int, bool], None] | None = None
    finish: Callable[[dict, dict], Any] | None = None


@dataclass
class ChainOutput:
    """What one task produced: stored draws per phase (block -> (..., iterations)), the imputed
    values (cells, m_c), the cells (target index, row within group) and the sampler's extra."""

    burnin: dict
    imputation: dict
    draws: np.ndarray
    cells: tuple[np.ndarray, np.ndarray]
    extra: Any = None


class _Stop(Exception):
    """Raised inside a worker when the stop flag is set (never leaves the driver)."""


def _want_progress(progress: bool | None) -> bool:
    if progress is None:
        return bool(getattr(sys.stderr, "isatty", lambda: False)())
    return bool(progress)


class _Progress:
    """Iterations done over all tasks (for the bar and the interruption message)."""

    def __init__(self, total: int, progress: bool | None, desc: str) -> None:
        self.total, self.done = total, 0
        self.lock = threading.Lock()
        self.bar = None
        if _want_progress(progress):
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="it", leave=False)

    def tick(self, n: int) -> None:
        with self.lock:
            self.done += n
            if self.bar is not None:
                self.bar.update(n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _execute(tasks: Sequence[Callable[[], Any]], n_threads: int, stop: threading.Event) -> list:
    """Results of ``tasks`` in order. When a task fails (or Ctrl-C arrives while waiting) the stop
    flag is set, every running task is waited for, then the first failure (in task order, a real
    error before a stop) propagates."""
    if n_threads == 1 or len(tasks) == 1:
        return [t() for t in tasks]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:  # leaving waits for the workers
        futures = [pool.submit(t) for t in tasks]
        try:
            wait(futures, return_when=FIRST_EXCEPTION)
        except BaseException:  # Ctrl-C in the main thread
            stop.set()
            raise
        if any(f.exception() is not None for f in futures if f.done()):
            stop.set()
            wait(futures)
            errors: list[BaseException] = [e for f in futures if (e := f.exception()) is not None]
            raise next((e for e in errors if not isinstance(e, _Stop)), errors[0])
        return [f.result() for f in futures]


def _interrupted(prog: _Progress) -> SamplingInterrupted:
    return SamplingInterrupted(
        f"sampling interrupted by the user after {prog.done} of {prog.total} iterations "
        "(over all chains); nothing was returned."
    )


@dataclass(frozen=True)
class _Plan:
    """What every task of a run shares: the scheme, imputations per chain, names for errors."""

    n_burn: int
    n_iter: int
    per_chain: tuple[int, ...]
    group_labels: tuple
    sampler: str

    @property
    def chains(self) -> int:
        return len(self.per_chain)


def _run_task(
    make_chain: Callable[[int, int, int], Chain],
    plan: _Plan,
    k: int,
    seed: int,
    tick: Callable[[int], None] | None = None,
    stop: threading.Event | None = None,
) -> ChainOutput:
    """Task k (group, chain = divmod(k, chains)) from start to finish: burn-in, then the
    imputations ``n_iter`` iterations apart. ``tick(n)`` after every segment; a set ``stop``
    ends the task between segments (raises ``_Stop``). The same on a thread, a process or a
    Dask worker: everything random comes from ``seed``."""
    if stop is not None and stop.is_set():
        raise _Stop
    g, c = divmod(k, plan.chains)
    ch = make_chain(g, c, seed)
    m_c, n_burn, n_iter = plan.per_chain[c], plan.n_burn, plan.n_iter
    burn = {b: np.zeros(tuple(sh) + (n_burn,)) for b, sh in ch.shapes.items()}
    imp = {b: np.zeros(tuple(sh) + (m_c * n_iter,)) for b, sh in ch.shapes.items()}
    draws = np.zeros((len(ch.cells[0]), m_c))
    it = 0  # iterations this chain has done

    def advance(n: int, rec0: int, store: dict, burn_in: bool) -> None:
        nonlocal it
        done = 0
        while done < n:
            if stop is not None and stop.is_set():
                raise _Stop
            step = min(SEGMENT, n - done)
            res = ch.advance(step, rec0 + done, store)
            code, at, var = (*res, None)[:3] if isinstance(res, tuple) else (res, 0, None)
            raise_for_status(
                int(code),
                sampler=plan.sampler,
                iteration=it + int(at),
                chain=c,
                group=plan.group_labels[g],
                variable=var,
            )
            done += step
            it += step
            if tick is not None:
                tick(step)
            if ch.after_segment is not None:
                ch.after_segment(step, burn_in)
            if _segment_hook is not None:
                _segment_hook(k, it)

    advance(n_burn, 0, burn, True)
    for i in range(m_c):
        advance(n_iter, i * n_iter, imp, False)
        draws[:, i] = ch.current()
    extra = ch.finish(burn, imp) if ch.finish is not None else None
    return ChainOutput(burn, imp, draws, ch.cells, extra)


def run_chains(
    make_chain: Callable[[int, int, int], Chain],
    group_labels: Sequence,
    *,
    n_burn: int,
    n_iter: int,
    per_chain: Sequence[int],
    seed=None,
    n_threads: int | None = None,
    progress: bool | None = None,
    sampler: str = "sampler",
    client: Any = None,
) -> list[list[ChainOutput]]:
    """Run every (group, chain) task; ``outputs[g][c]`` is chain c of group g.

    Parameters
    ----------
    make_chain : ``make_chain(g, c, seed) -> Chain``, called where the task runs (so set-up
        runs in parallel too); ``seed`` is the task's integer seed (for
        ``np.random.default_rng``).
    group_labels : one label per imputation group (``[None]`` without ``group=``); used in error
        messages.
    n_burn, n_iter : burn-in iterations; iterations between imputations.
    per_chain : imputations each chain draws (``imputation_plan(m, chains)``).
    seed : the user's seed (int, Generator, SeedSequence or None).
    n_threads : worker threads (None: up to the number of cores); draws do not depend on it.
    progress : show a progress bar (None: only in an interactive terminal).
    sampler : the public function's name, for error messages.
    client : a ``dask.distributed.Client``: every task runs as a Dask task on its cluster
        (``make_chain`` is sent to the workers once, with cloudpickle); the draws are the same
        as on local threads. ``n_threads`` is then ignored.

    Raises
    ------
    NumericalFailureError : a step of a chain failed (see :func:`raise_for_status`).
    SamplingInterrupted : Ctrl-C; every worker was stopped first.
    """
    chains = len(per_chain)
    G = len(group_labels)
    seeds = spawn_seeds(seed, G * chains)
    total = G * (chains * n_burn + n_iter * int(sum(per_chain)))
    plan = _Plan(
        int(n_burn), int(n_iter), tuple(int(x) for x in per_chain), tuple(group_labels), sampler
    )
    threads = 1
    if client is not None:
        from .._distributed import check_client

        check_client(client)  # before any work, so a wrong client fails at once
    else:
        threads = check_threads(n_threads, G * chains, os.cpu_count() or 1)
    prog, stop = _Progress(total, progress, "imputing"), threading.Event()

    try:
        if client is not None:
            from .._distributed import run_chain_tasks

            flat = run_chain_tasks(client, _run_task, make_chain, plan, seeds, prog.tick)
        else:
            tasks = [
                partial(_run_task, make_chain, plan, k, seeds[k], prog.tick, stop)
                for k in range(G * chains)
            ]
            flat = _execute(tasks, threads, stop)
    except (KeyboardInterrupt, _Stop):
        stop.set()
        raise _interrupted(prog) from None
    finally:
        prog.close()
    return [flat[g * chains : (g + 1) * chains] for g in range(G)]


def stack_chains(
    outputs: Sequence[Sequence[ChainOutput]],
    blocks: Sequence[str],
    phase: str,
    pad: Callable[[np.ndarray, str], np.ndarray] | None = None,
) -> dict:
    """block -> array (rows, cols, iterations, groups, chains) of one phase (``"burnin"`` or
    ``"imputation"``). ``pad(array, block)`` may widen a group's draws to a common shape (groups
    with fewer columns, filled with NaN as mitml does)."""
    fix = pad if pad is not None else (lambda a, b: a)
    return {
        b: np.stack(
            [np.stack([fix(getattr(o, phase)[b], b) for o in outs], axis=-1) for outs in outputs],
            axis=-2,
        )
        for b in blocks
    }


def replacement_matrix(
    outputs: Sequence[Sequence[ChainOutput]],
    group_rows: Sequence[np.ndarray],
    target_columns: Sequence[int] | np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """mitml's replacement matrix and its index from the tasks' imputed values.

    Cell (t, i) of group g is data row ``group_rows[g][i]`` and data column ``target_columns[t]``;
    cells are ordered by target (in ``target_columns`` order), then row, and the imputations of
    a group's chains follow each other (chain 0's first). Returns ``(index (cells, 2), values
    (cells, m))``.
    """
    cols_of = np.asarray(target_columns, dtype=np.int64)
    row_parts: list[np.ndarray] = []
    t_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    for outs, grows in zip(outputs, group_rows):
        ct, cr = outs[0].cells
        row_parts.append(np.asarray(grows)[cr])
        t_parts.append(np.asarray(ct, dtype=np.int64))
        val_parts.append(np.concatenate([o.draws for o in outs], axis=1))
    m = sum(o.draws.shape[1] for o in outputs[0]) if outputs else 0
    rows_all = np.concatenate(row_parts).astype(np.int64) if row_parts else np.zeros(0, np.int64)
    ts = np.concatenate(t_parts) if t_parts else np.zeros(0, np.int64)
    vals = np.concatenate(val_parts, axis=0) if val_parts else np.zeros((0, m))
    order = np.lexsort((rows_all, ts))
    index = np.column_stack([rows_all[order], cols_of[ts[order]]]).astype(np.int64)
    return index, np.ascontiguousarray(vals[order])


def assemble_result(
    outputs: Sequence[Sequence[ChainOutput]],
    *,
    blocks: Sequence[str],
    group_rows: Sequence[np.ndarray],
    target_columns: Sequence[int] | np.ndarray,
    pad: Callable[[np.ndarray, str], np.ndarray] | None = None,
    **fields,
):
    """The :class:`~pymitml.result.ImputationResult` of a run.

    ``blocks``: the stored blocks that are parameter chains (others, like jomo's thresholds, stay
    in the outputs for the sampler to use); ``group_rows``, ``target_columns``: see
    :func:`replacement_matrix`; ``pad``: see :func:`stack_chains`. ``fields`` are the result's
    remaining fields (method, formula, targets, prior, settings, codebook, param_names,
    group_labels, extra).
    """
    from ..result import ImputationResult

    ch_burn = stack_chains(outputs, blocks, "burnin", pad)
    ch_imp = stack_chains(outputs, blocks, "imputation", pad)
    index, replacement = replacement_matrix(outputs, group_rows, target_columns)
    return ImputationResult(
        par_burnin={b: v[..., 0] for b, v in ch_burn.items()},
        par_imputation={b: v[..., 0] for b, v in ch_imp.items()},
        par_chains_burnin=ch_burn,
        par_chains_imputation=ch_imp,
        replacement=replacement,
        index=index,
        **fields,
    )
