"""Dask glue: imputation chains and per-imputation analyses as tasks on a ``dask.distributed``
cluster.

Nothing here imports Dask at module level (``import pymitml`` never loads it); the functions
import ``distributed`` when a client is passed. Two uses:

- :func:`run_chain_tasks` (the chain driver, ``pan_impute(..., client=c)`` and the other
  samplers): the sampler's ``make_chain`` is scattered to the cluster once and every
  (group, chain) task runs there from its own seed, so the draws are the ones a local run
  makes, whatever the number of workers.
- :func:`run_analyses` (``MitmlList.with_(func, client=c)``): the list's source (observed data
  and replacement matrix for a list from ``complete()``) is sent to every worker once, and each
  task builds its data set there and runs ``func`` on it.

Tasks are pure functions of their inputs, so when a worker is lost the scheduler reruns its
tasks elsewhere with the same result (Dask's ``allowed-failures``, default 3 per task).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["check_client", "run_analyses", "run_chain_tasks"]


def check_client(client: Any) -> Any:
    """``client`` if it is a ``dask.distributed.Client``; else a TypeError saying what to pass."""
    try:
        from distributed import Client
    except ImportError:
        raise ImportError(
            "`client=` needs Dask's distributed scheduler, which is not installed; install it "
            "with `pip install 'pymitml[dask]'` (or `pip install 'dask[distributed]'`)."
        ) from None
    if not isinstance(client, Client):
        raise TypeError(
            "`client` must be a dask.distributed.Client (e.g. Client(LocalCluster(n_workers=4)) "
            f"or Client('scheduler-address:8786')); got {type(client).__module__}."
            f"{type(client).__qualname__}. Leave it None to run locally."
        )
    if client.status not in ("running", "newly-created"):
        raise ValueError(f"the Dask client is not connected (status {client.status!r}).")
    return client


def _gather_in_order(client: Any, futures: Sequence[Any], on_done: Callable[[int], None]) -> list:
    """Results of ``futures`` in their order; ``on_done(k)`` as each finishes. The first failed
    task in order raises its error (the others are cancelled); Ctrl-C cancels them all."""
    from distributed import as_completed

    index = {f.key: k for k, f in enumerate(futures)}
    try:
        for f in as_completed(futures):
            if f.status == "error":
                break
            on_done(index[f.key])
        failed = [f for f in futures if f.status == "error"]
        if failed:
            client.cancel([f for f in futures if not f.done()])
            for f in futures:  # the first failure in task order
                if f.status == "error":
                    f.result()  # raises the task's exception
        return client.gather(list(futures))
    except BaseException:
        client.cancel(list(futures))
        raise


def _identity(x: Any) -> Any:
    return x


def _held(client: Any, obj: Any, key: str) -> Any:
    """``obj`` as a future the tasks depend on: sent once, fetched by the workers that need it,
    and (unlike scattered data) recomputed by the scheduler when the worker holding it dies."""
    return client.submit(_identity, obj, key=key, pure=False)


def run_chain_tasks(
    client: Any,
    run_task: Callable[..., Any],
    make_chain: Callable[..., Any],
    plan: Any,
    seeds: Sequence[int],
    tick: Callable[[int], None],
) -> list:
    """``run_task(make_chain, plan, k, seeds[k])`` for every task k, as Dask tasks; results in
    task order. ``tick(n)`` receives a task's iterations when it finishes."""
    check_client(client)
    run = uuid.uuid4().hex[:12]
    shared = _held(client, make_chain, f"pymitml-maker-{run}")
    futures = [
        client.submit(
            run_task, shared, plan, k, seeds[k], key=f"pymitml-chain-{run}-{k}", pure=False
        )
        for k in range(len(seeds))
    ]

    def done(k: int) -> None:
        c = k % plan.chains
        tick(plan.n_burn + plan.n_iter * plan.per_chain[c])

    try:
        return _gather_in_order(client, futures, done)
    finally:
        del shared


def _analysis_task(source: Any, func: Callable[..., Any], i: int, include_data: bool, errors: str):
    """One analysis on a worker: data set i built from the source, warnings recorded."""
    from .mitml_list import _run_one

    return _run_one(func, source, i, include_data, errors)


def run_analyses(
    client: Any, source: Any, func: Callable[..., Any], include_data: bool, errors: str
) -> list:
    """``func`` on every data set of ``source`` as Dask tasks; the (result, status, warnings)
    of each, in imputation order."""
    check_client(client)
    from .mitml_list import _pickled_analysis

    _pickled_analysis(source, func)  # a clear error before anything is sent
    run = uuid.uuid4().hex[:12]
    src = _held(client, source, f"pymitml-source-{run}")
    fn = _held(client, func, f"pymitml-func-{run}")
    futures = [
        client.submit(
            _analysis_task,
            src,
            fn,
            i,
            include_data,
            errors,
            key=f"pymitml-with-{run}-{i}",
            pure=False,
        )
        for i in range(len(source))
    ]
    return _gather_in_order(client, futures, lambda k: None)
