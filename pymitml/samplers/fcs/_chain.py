"""One chain of chained equations for the driver: start values, the visits of one iteration,
and mice's ``chainMean`` / ``chainVar`` recorded after every iteration."""

from __future__ import annotations

import numpy as np

from ..driver import Chain
from ._methods import make_method
from ._spec import FcsSpec

__all__ = ["make_fcs_chain", "start_values"]


def start_values(spec: FcsSpec, rng: np.random.Generator) -> np.ndarray:
    """(N, C) current values: observed cells as given, cells to impute drawn at random from the
    observed values of their column (mice's start), per cluster for level-2 columns."""
    cur = np.column_stack([c.values for c in spec.columns]).astype(np.float64)
    J = len(spec.start) - 1
    for t in spec.targets:
        miss = spec.where[:, t]
        obs = ~miss & ~np.isnan(cur[:, t])
        pool = cur[obs, t]
        if not len(pool):
            pool = np.zeros(1)
        if spec.columns[t].level == 2:
            per = rng.choice(pool, J)
            cur[miss, t] = per[spec.clus[miss]]
        else:
            cur[miss, t] = rng.choice(pool, int(miss.sum()))
    for t, f in spec.passive.items():
        _passive(spec, cur, t, f)
    return cur


def _passive(spec: FcsSpec, cur: np.ndarray, t: int, f) -> None:
    names = spec.names
    miss = spec.where[:, t]
    val = f.evaluate({n: cur[:, names.index(n)] for n in f.names})
    cur[miss, t] = val[miss]


def _record(spec: FcsSpec, cur: np.ndarray, targets: list[int], mean, var, o: int) -> None:
    for i, t in enumerate(targets):
        v = cur[spec.where[:, t], t]
        if spec.columns[t].kind == "categorical":
            v = v + 1.0  # mice summarises factors by their 1-based codes
        mean[i, 0, o] = v.mean() if len(v) else np.nan
        var[i, 0, o] = v.var(ddof=1) if len(v) > 1 else np.nan


def make_fcs_chain(
    spec: FcsSpec, designs: dict, seed: int, sweeps: int, make=make_method, start=start_values
) -> Chain:
    """The driver's :class:`Chain` of one chained-equations chain (``make`` builds a target's
    method object, ``start`` the start values; several cluster variables pass their own)."""
    rng = np.random.default_rng(seed)
    cur = start(spec, rng)
    targets = spec.targets
    meths = {
        t: make(spec, t, designs[t], spec.methods[spec.names[t]], sweeps)
        for t in set(spec.visit)
        if t not in spec.passive
    }
    cell_t = (
        np.concatenate(
            [np.full(int(spec.where[:, t].sum()), i, np.int64) for i, t in enumerate(targets)]
        )
        if targets
        else np.zeros(0, np.int64)
    )
    sorted_rows = (
        np.concatenate([np.flatnonzero(spec.where[:, t]) for t in targets])
        if targets
        else np.zeros(0, np.int64)
    )
    cell_col = np.asarray(targets, dtype=np.int64)[cell_t] if targets else np.zeros(0, np.int64)

    def advance(n: int, rec0: int, store: dict):
        for s in range(n):
            for t in spec.visit:
                f = spec.passive.get(t)
                if f is not None:
                    _passive(spec, cur, t, f)
                    continue
                code = meths[t].visit(cur, rng)
                if code:
                    return code, s, spec.names[t]
                hook = spec.post.get(t)
                if hook is not None:  # mice's post: e.g. squeeze the imputations into a range
                    miss = spec.where[:, t]
                    cur[miss, t] = np.asarray(hook(cur[miss, t].copy()), dtype=np.float64)
            _record(spec, cur, targets, store["mean"], store["var"], rec0 + s)
        return 0

    V = len(targets)
    return Chain(
        advance=advance,
        shapes={"mean": (V, 1), "var": (V, 1)},
        current=lambda: cur[sorted_rows, cell_col].copy(),
        cells=(cell_t, spec.order[sorted_rows]),
    )
