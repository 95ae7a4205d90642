"""MitmlList: with_/within/subset/sort, long format round trip, cluster means (vs mitml)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import pymitml as pm


@pytest.fixture()
def implist():
    df = pm.datasets.random_intercept(10, 5, seed=2)
    imp = pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=3, n_burn=20, n_iter=5, seed=1)
    return imp.complete()


def test_with_within_subset_sort(implist):
    means = implist.with_(lambda d: d["y"].mean())
    assert isinstance(means, pm.MitmlResult) and len(means) == 3
    assert means[0] == pytest.approx(implist[0]["y"].mean())
    w = implist.within(lambda d: d.assign(yx=d.y * d.x))
    assert np.allclose(w[1]["yx"], implist[1]["y"] * implist[1]["x"])
    s = implist.subset("z > 0")
    assert all((d["z"] > 0).all() for d in s)
    srt = implist.sort("y", descending=True)
    assert srt[2]["y"].is_monotonic_decreasing
    with pytest.raises(TypeError, match="`func` must be callable"):
        implist.with_("lm(y ~ x)")


def test_long_round_trip_pandas_and_polars(implist):
    long = implist.to_long(include_original=True)
    assert list(long.columns[:2]) == [".imp", ".id"]
    assert sorted(long[".imp"].unique()) == [0, 1, 2, 3]
    back = pm.long_to_mitml_list(long, split=".imp", exclude=[0])
    assert len(back) == 3
    for a, b in zip(back, implist):
        pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(back.original, implist.original)
    pl_list = pm.MitmlList([pl.from_pandas(d) for d in implist])
    pl_long = pl_list.to_long()
    back2 = pm.long_to_mitml_list(pl_long)
    assert back2[1].equals(pl.from_pandas(implist[1]))


def test_mismatched_columns_rejected():
    with pytest.raises(ValueError, match="data set 2 has columns"):
        pm.MitmlList([pd.DataFrame({"a": [1]}), pd.DataFrame({"b": [1]})])


def test_cluster_means_match_mitml(R):
    from ._data import r_array

    df = pd.DataFrame({"g": [1, 1, 1, 2, 2, 3], "x": [1.0, 2.0, np.nan, 4.0, 6.0, 7.0]})
    import rpy2.robjects as ro

    ro.globalenv["x"] = ro.FloatVector([1.0, 2.0, ro.NA_Real, 4.0, 6.0, 7.0])
    ro.globalenv["g"] = ro.IntVector(df["g"])
    for adj in (False, True):
        ref = r_array(R, f"mitml::clusterMeans(x, g, adj={'TRUE' if adj else 'FALSE'})")
        ours = pm.cluster_means("x", "g", adj=adj, data=df)
        np.testing.assert_allclose(ours, ref, rtol=1e-12, equal_nan=True)
