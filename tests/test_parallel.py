"""``MitmlList.with_(func, n_jobs=k)``: analyses on processes or threads give the serial results,
in imputation order, with the same warnings, statuses and failures."""

from __future__ import annotations

import threading
import warnings

import numpy as np
import pytest

import pymitml as pm


@pytest.fixture(scope="module")
def imp():
    df = pm.datasets.random_intercept(20, 8, seed=5)
    return pm.pan_impute(df, "y + x ~ 1 + z + w + (1|id)", m=5, n_burn=50, n_iter=5, seed=2)


def ols(d):
    """Module level, so plain pickle sends it too: least squares of y on x and z."""
    X = np.column_stack([np.ones(len(d)), d["x"].to_numpy(), d["z"].to_numpy()])
    coef, *_ = np.linalg.lstsq(X, d["y"].to_numpy(), rcond=None)
    return coef


def warn_on_third(d, i):
    if i == 2:
        warnings.warn("third data set", RuntimeWarning, stacklevel=1)
    if i == 3:
        raise ValueError(f"no fit for data set {i}")
    return float(d["y"].sum())


def _lmer(d):
    return pm.lmer("y ~ x + z + (1|id)", d, REML=True)


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_parallel_results_are_the_serial_ones_in_order(imp, backend):
    implist = imp.complete()
    serial = implist.with_(ols)
    par = implist.with_(ols, n_jobs=2, backend=backend)
    assert len(par) == len(serial) == 5
    for a, b in zip(serial, par):
        assert np.array_equal(a, b)  # bit-identical
    assert par.source is implist


def test_lmer_on_threads_is_bit_identical(imp):
    implist = imp.complete()
    serial = implist.with_(_lmer)
    par = implist.with_(_lmer, n_jobs=2, backend="threads")
    for a, b in zip(serial, par):
        assert np.array_equal(a.fixef, b.fixef) and np.array_equal(a.vcov, b.vcov)
        assert a.loglik == b.loglik
    assert pm.pool_estimates(par).table.equals(pm.pool_estimates(serial).table)


@pytest.mark.parametrize("backend", ["processes", "threads"])
def test_warnings_and_failures_are_recorded_per_imputation(imp, backend):
    implist = imp.complete()
    with pytest.warns(RuntimeWarning, match=r"third data set \(imputation 3\)"):
        res = implist.with_(warn_on_third, include_data=True, n_jobs=2, backend=backend)
    st = res.status
    assert list(st["status"]) == ["ok", "ok", "warning", "error", "ok"]
    assert st["messages"][2] == "RuntimeWarning: third data set"
    assert st["messages"][3] == "ValueError: no fit for data set 3"
    assert res.failed == [3] and res.warned == [2]
    assert res[0] == float(implist[0]["y"].sum())
    with pytest.raises(ValueError, match="no fit for data set 3"):
        implist.with_(warn_on_third, include_data=True, errors="raise", n_jobs=2, backend=backend)


def test_a_lambda_goes_to_processes_with_cloudpickle(imp):
    implist = imp.complete()
    k = 3.0
    res = implist.with_(lambda d: float(d["x"].mean()) * k, n_jobs=2)
    assert list(res) == [float(d["x"].mean()) * k for d in implist]


def test_unpicklable_function_says_use_threads(imp):
    lock = threading.Lock()

    def locked(d):
        with lock:
            return len(d)

    implist = imp.complete()
    with pytest.raises(TypeError, match=r"cannot be pickled .* use backend='threads'"):
        implist.with_(locked, n_jobs=2)
    assert list(implist.with_(locked, n_jobs=2, backend="threads")) == [len(implist[0])] * 5


def test_bad_parallel_arguments(imp):
    implist = imp.complete()
    with pytest.raises(
        ValueError, match=r"`n_jobs` must be a positive integer, -1 \(all cores\) or None; got 0"
    ):
        implist.with_(ols, n_jobs=0)
    with pytest.raises(ValueError, match="`n_jobs` must be .*; got True"):
        implist.with_(ols, n_jobs=True)
    with pytest.raises(ValueError, match="`backend` must be 'processes' or 'threads'; got 'gpu'"):
        implist.with_(ols, n_jobs=2, backend="gpu")
    with pytest.raises(ValueError, match="give either `client`"):
        implist.with_(ols, n_jobs=2, client=object())
