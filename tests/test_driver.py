"""The chain driver: streams per task, the burn-in / n_iter scheme, threads, interruption, errors,
and the assembly of the result."""

from __future__ import annotations

import time

import numpy as np
import pytest

import pymitml as pm
from pymitml.exceptions import NumericalFailureError, SamplingInterrupted, Status
from pymitml.samplers import driver


def _toy_chain(g, c, seed, fail_at=None, record=None):
    """A chain whose state is one number advanced by a random walk; stores it as 'beta'."""
    rng = np.random.default_rng(seed)
    state = np.zeros(1)
    count = [0]

    def advance(n, rec0, store):
        for s in range(n):
            if fail_at is not None and count[0] == fail_at:
                return Status.PSI, s
            state[0] += rng.standard_normal()
            count[0] += 1
            if rec0 >= 0:
                store["beta"][0, 0, rec0 + s] = state[0]
        if record is not None:
            record.append((g, c, n, rec0))
        return 0

    return driver.Chain(
        advance=advance,
        shapes={"beta": (1, 1)},
        current=lambda: state.copy(),
        cells=(np.array([0]), np.array([g])),
    )


def _run(n_threads=1, **kw):
    return driver.run_chains(
        _toy_chain,
        ["a", "b"],
        n_burn=300,
        n_iter=7,
        per_chain=[2, 2],
        seed=4,
        n_threads=n_threads,
        **kw,
    )


def test_scheme_segments_and_thread_independence():
    rec = []
    out = driver.run_chains(
        lambda g, c, s: _toy_chain(g, c, s, record=rec),
        [None],
        n_burn=600,
        n_iter=7,
        per_chain=[3],
        seed=1,
    )
    # burn-in in segments of at most SEGMENT, then one call per imputation
    assert [(n, r0) for _, _, n, r0 in rec] == [
        (250, 0),
        (250, 250),
        (100, 500),
        (7, 0),
        (7, 7),
        (7, 14),
    ]
    o = out[0][0]
    assert o.burnin["beta"].shape == (1, 1, 600) and o.imputation["beta"].shape == (1, 1, 21)
    # the value read after each stretch is the last stored draw of that stretch
    assert np.array_equal(o.draws[0], o.imputation["beta"][0, 0, [6, 13, 20]])
    a, b = _run(1), _run(2)
    for g in range(2):
        for c in range(2):
            assert np.array_equal(a[g][c].imputation["beta"], b[g][c].imputation["beta"])
    assert not np.array_equal(a[0][0].draws, a[0][1].draws)  # own stream per task


def test_assemble_result_orders_cells_and_stacks_chains():
    out = _run(1)
    res = driver.assemble_result(
        out,
        blocks=["beta"],
        group_rows=[np.array([5, 6]), np.array([0, 1])],
        target_columns=[3],
        method="toy",
        formula="",
        targets=["y"],
        prior=[{}, {}],
        settings={},
        codebook=None,
        group_labels=["a", "b"],
    )
    assert res.par_chains_imputation["beta"].shape == (1, 1, 14, 2, 2)
    assert res.par_imputation["beta"].shape == (1, 1, 14, 2)
    # group b's cell is data row 1, group a's is row 5: sorted by row within the target
    assert res.index.tolist() == [[1, 3], [5, 3]]
    assert np.array_equal(res.replacement[1], np.concatenate([o.draws[0] for o in out[0]]))


@pytest.mark.parametrize("n_threads", [1, 2])
def test_failure_names_step_iteration_chain_and_group(n_threads):
    with pytest.raises(NumericalFailureError) as e:
        driver.run_chains(
            lambda g, c, s: _toy_chain(g, c, s, fail_at=260 if (g, c) == (1, 1) else None),
            ["a", "b"],
            n_burn=300,
            n_iter=7,
            per_chain=[1, 1],
            seed=1,
            n_threads=n_threads,
            sampler="toy",
        )
    err = e.value
    assert err.status == Status.PSI and err.iteration == 260 and err.chain == 1 and err.group == "b"
    assert "Psi" in str(err) and "toy" in str(err)


@pytest.mark.parametrize("n_threads", [1, 2])
def test_ctrl_c_stops_every_worker_and_returns_nothing(monkeypatch, n_threads):
    seen = []

    def hook(task, done):
        seen.append((task, done))
        if task == 0 and done >= 500:
            raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_segment_hook", hook)
    t = time.perf_counter()
    with pytest.raises(SamplingInterrupted, match="interrupted by the user after .* iterations"):
        driver.run_chains(
            _toy_chain,
            ["a", "b"],
            n_burn=10**6,
            n_iter=1,
            per_chain=[1, 1],
            seed=1,
            n_threads=n_threads,
        )
    assert time.perf_counter() - t < 30  # the other tasks stopped at their next segment
    assert max(d for _, d in seen) < 10**5


def test_ctrl_c_in_a_real_sampler_raises_sampling_interrupted(monkeypatch):
    def hook(task, done):
        raise KeyboardInterrupt

    monkeypatch.setattr(driver, "_segment_hook", hook)
    df = pm.datasets.random_intercept(10, 5, seed=1)
    t = time.perf_counter()
    with pytest.raises(SamplingInterrupted, match="nothing was returned"):
        pm.pan_impute(
            df, "y ~ 1 + z + (1|id)", m=2, chains=2, n_burn=10**6, n_iter=1, seed=1, n_threads=2
        )
    assert time.perf_counter() - t < 30
    assert issubclass(SamplingInterrupted, KeyboardInterrupt)


def test_sigint_during_threaded_sampling_stops_promptly(tmp_path):
    """A real Ctrl-C (SIGINT to the process) while two worker threads sample."""
    import os
    import signal
    import subprocess
    import sys

    code = (
        "import sys, pymitml as pm\n"
        "from pymitml.samplers import driver\n"
        "df = pm.datasets.random_intercept(10, 5, seed=1)\n"
        "pm.pan_impute(df, 'y + x ~ 1 + z + (1|id)', m=1, n_burn=5, n_iter=1, seed=1)\n"
        "driver._segment_hook = lambda k, d: (d == 250 and k == 0) and print('sampling', flush=True)\n"
        "try:\n"
        "    pm.pan_impute(df, 'y ~ 1 + z + (1|id)', m=2, chains=2, n_burn=10**6, n_iter=1,\n"
        "                  seed=1, n_threads=2)\n"
        "except pm.exceptions.SamplingInterrupted as e:\n"
        "    print('interrupted:', e, flush=True)\n"
        "    sys.exit(3)\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    assert proc.stdout.readline().strip() == "sampling"
    t = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3 and "nothing was returned" in out
    assert time.perf_counter() - t < 10


def test_settings_are_typed_and_read_like_a_dict():
    from pymitml.result import RunSettings

    df = pm.datasets.random_intercept(6, 5, seed=1)
    imp = pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=2, n_burn=3, n_iter=2, seed=7)
    s = imp.settings
    assert isinstance(s, RunSettings) and s.n_burn == 3 and s.seed == 7
    assert s["n_iter"] == 2 and s.get("random_L1") is None and "random_L1" not in s
    assert dict(s) == {
        "n_burn": 3,
        "n_iter": 2,
        "m": 2,
        "chains": 1,
        "keep_chains": "full",
        "group": None,
        "cluster": "id",
        "seed": 7,
    }
    # a sampler that still passes a plain dict gets the same record; unknown keys stay a dict
    j = RunSettings.coerce({**dict(s), "random_L1": "mean"})
    assert isinstance(j, RunSettings) and j["random_L1"] == "mean"
    assert RunSettings.coerce({"n_burn": 1, "other": 2}) == {"n_burn": 1, "other": 2}
