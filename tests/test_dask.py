"""Dask: chains (pan, jomo, fcs) and analyses as tasks on a LocalCluster of two worker processes
give bit-identical results to local runs; a lost worker's task is rerun with the same result."""

from __future__ import annotations

import os

import numpy as np
import pytest

import pymitml as pm

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client():
    cluster = distributed.LocalCluster(
        n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None
    )
    c = distributed.Client(cluster)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def df():
    return pm.datasets.random_intercept(30, 6, seed=8)


def _same_result(a, b):
    assert np.array_equal(a.replacement, b.replacement)
    assert np.array_equal(a.index, b.index)
    for k in a.par_chains_burnin:
        assert np.array_equal(a.par_chains_burnin[k], b.par_chains_burnin[k], equal_nan=True)
        assert np.array_equal(
            a.par_chains_imputation[k], b.par_chains_imputation[k], equal_nan=True
        )


def test_pan_chains_on_dask_are_bit_identical(client, df):
    kw = dict(m=4, n_burn=40, n_iter=5, seed=7, chains=2)
    f = "y + x ~ 1 + z + w + (1|id)"
    local = pm.pan_impute(df, f, n_threads=1, **kw)
    _same_result(local, pm.pan_impute(df, f, n_threads=2, **kw))
    _same_result(local, pm.pan_impute(df, f, client=client, **kw))


def test_jomo_and_fcs_chains_on_dask_are_bit_identical(client, df):
    kw = dict(m=2, n_burn=20, n_iter=3, seed=3, chains=2)
    f = "y + x ~ 1 + z + (1|id)"
    _same_result(pm.jomo_impute(df, f, **kw), pm.jomo_impute(df, f, client=client, **kw))
    fk = dict(cluster="id", method={"y": "2l.pan", "x": "2l.pan"}, m=2, maxit=2, seed=4)
    _same_result(pm.fcs_impute(df, **fk), pm.fcs_impute(df, client=client, **fk))


def test_model_based_and_three_level_chains_on_dask_are_bit_identical(client, df):
    kw = dict(m=2, n_burn=20, n_iter=3, seed=5, chains=2, verbose=False)
    f = "y ~ x + z + (1 | id)"
    a, b = pm.model_impute(df, f, **kw), pm.model_impute(df, f, client=client, **kw)
    assert np.array_equal(a.replacement, b.replacement)
    d3 = df.assign(school=(df["id"] - 1) // 5)
    fk = dict(cluster=["school", "id"], m=2, maxit=2, seed=6)
    a, b = pm.fcs_impute(d3, **fk), pm.fcs_impute(d3, client=client, **fk)
    assert np.array_equal(a.replacement, b.replacement)


def test_analyses_on_dask_build_the_data_on_the_workers(client, df):
    imp = pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=3, n_burn=30, n_iter=5, seed=1)
    implist = imp.complete()
    fit = lambda d: pm.lmer("y ~ x + z + (1|id)", d)  # noqa: E731
    serial = implist.with_(fit)
    remote = implist.with_(fit, client=client)
    for a, b in zip(serial, remote):
        assert np.array_equal(a.fixef, b.fixef) and np.array_equal(a.vcov, b.vcov)
    # the data sets are built from the observed data + replacement matrix on the workers
    pids = implist.with_(lambda d: os.getpid(), client=client)
    assert os.getpid() not in set(pids)
    # a transformed (within) list goes too, with warnings and failures recorded
    w = implist.within(lambda d: d.assign(yz=d["y"] * d["z"]))

    def f(d, i):
        if i == 1:
            raise ValueError("not this one")
        return float(d["yz"].sum())

    res = w.with_(f, include_data=True, client=client)
    assert res.failed == [1] and res[0] == float(w[0]["yz"].sum())


def test_a_lost_worker_is_replaced_and_the_result_unchanged(client, df, tmp_path):
    imp = pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=2, n_burn=20, n_iter=5, seed=9)
    implist = imp.complete()
    marker = tmp_path / "died"

    def dies_once(d, i):
        if i == 0 and not marker.exists():
            marker.write_text("x")
            os._exit(1)  # the worker process dies mid-task
        return float(d["y"].sum())

    res = implist.with_(dies_once, include_data=True, client=client)
    assert marker.exists()
    assert list(res) == [float(d["y"].sum()) for d in implist]


def test_a_client_that_is_not_dask_is_refused(df):
    with pytest.raises(
        TypeError, match=r"`client` must be a dask.distributed.Client .* got builtins.str"
    ):
        pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=2, n_burn=5, n_iter=2, client="localhost")
    implist = pm.MitmlList([df, df])
    with pytest.raises(TypeError, match="`client` must be a dask.distributed.Client"):
        implist.with_(len, client=object())


def test_a_study_on_dask_equals_the_serial_study(client, tmp_path):
    from pymitml import studies

    cells = studies.design_grid(("ri", "mnar"), (20,), (5,), (0.3,))
    kw = {"methods": ["complete", "listwise"], "progress": False}
    serial = studies.run_study(cells, reps=2, out=tmp_path / "a", **kw)
    on_dask = studies.run_study(cells, reps=2, out=tmp_path / "b", client=client, **kw)
    cols = [c for c in serial.columns if c != "seconds"]
    assert serial[cols].equals(on_dask[cols])


def test_a_worker_lost_during_the_chains_changes_nothing(client, df, tmp_path, monkeypatch):
    """A chain task whose worker process dies on the first attempt, after it ran its chain and
    before it returned (the other chains running meanwhile): the scheduler reruns it on another
    worker (the nanny starts a new one), and the imputations are those of an undisturbed run."""
    from pymitml import _distributed

    kw = dict(m=4, n_burn=60, n_iter=5, seed=12, chains=4)
    f = "y + x ~ 1 + z + w + (1|id)"
    undisturbed = pm.pan_impute(df, f, n_threads=1, **kw)
    marker = tmp_path / "chain-died"
    workers_before = set(client.scheduler_info()["workers"])
    real = _distributed.run_chain_tasks

    def with_a_death(client_, run_task, make_chain, plan, seeds, tick):
        def dies_once(make_chain, plan, k, seed):
            out = run_task(make_chain, plan, k, seed)
            if k == 1 and not marker.exists():
                marker.write_text(str(os.getpid()))
                os._exit(1)  # the worker process dies while the chain task runs
            return out

        return real(client_, dies_once, make_chain, plan, seeds, tick)

    monkeypatch.setattr(_distributed, "run_chain_tasks", with_a_death)
    disturbed = pm.pan_impute(df, f, client=client, **kw)
    assert marker.exists()  # the worker did die
    client.wait_for_workers(2, timeout=60)
    assert set(client.scheduler_info()["workers"]) != workers_before  # and was replaced
    _same_result(undisturbed, disturbed)
