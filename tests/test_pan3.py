"""pan_impute with two nested random terms: the three-level joint model (samplers/pan3.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool.compatibility import CompatibilityWarning

from ._data import batch_means_mcse

F3 = "y + x ~ 1 + z + (1|school) + (1|school:class)"


def _data(seed=0, S=20, K=4, n=6, var3=0.3, var2=0.2, miss=0.25):
    rng = np.random.default_rng(seed)
    C = S * K
    school = np.repeat(np.arange(S), K * n)
    cid = np.repeat(np.arange(C), n)
    N = len(cid)
    z = rng.normal(size=N)
    x = (
        0.5 * z
        + rng.normal(0, np.sqrt(var3), S)[school]
        + rng.normal(0, 0.5, C)[cid]
        + rng.normal(size=N)
    )
    y = 1 + 0.5 * x + rng.normal(0, np.sqrt(var3), S)[school]
    y = y + rng.normal(0, np.sqrt(var2), C)[cid] + rng.normal(size=N)
    df = pd.DataFrame({"school": school, "class": cid % K + 1, "cid": cid, "y": y, "x": x, "z": z})
    df.loc[rng.random(N) < miss, "y"] = np.nan
    df.loc[rng.random(N) < miss, "x"] = np.nan
    return df


@pytest.fixture(scope="module")
def small():
    return _data()


def test_observed_values_layout_and_chains(small):
    df = small.set_index(pd.RangeIndex(100, 100 + len(small)))
    imp = pm.pan_impute(df, F3, m=3, n_burn=30, n_iter=5, seed=1)
    assert imp.m == 3
    for d in imp.complete():
        pd.testing.assert_index_equal(d.index, df.index)
        assert list(d.columns) == list(df.columns)
        assert d[["y", "x"]].notna().all().all()
        obs = df[["y", "x"]].notna()
        np.testing.assert_array_equal(d[["y", "x"]].to_numpy()[obs], df[["y", "x"]].to_numpy()[obs])
        pd.testing.assert_frame_equal(d[["school", "class", "z"]], df[["school", "class", "z"]])
    assert imp.par_imputation["beta"].shape == (2, 2, 15, 1)
    assert imp.par_imputation["psi"].shape == (2, 2, 15, 1)
    assert imp.par_imputation["psi3"].shape == (2, 2, 15, 1)
    assert imp.par_imputation["sigma"].shape == (2, 2, 15, 1)
    assert imp.param_names["psi3"][0] == ["y:(Intercept)|school", "x:(Intercept)|school"]
    assert imp.param_names["psi"][0][0] == "y:(Intercept)|school:class"
    assert set(imp.prior[0]) == {"a", "Binv", "c", "Dinv", "c3", "Dinv3"}
    # the last stored draw of every chain block is a covariance matrix
    for b in ("psi", "psi3", "sigma"):
        assert np.linalg.eigvalsh(imp.par_imputation[b][:, :, -1, 0]).min() > 0


def test_summary_reports_both_levels(small):
    imp = pm.pan_impute(small, F3, m=2, n_burn=20, n_iter=5, seed=2)
    text = str(imp.summary())
    assert (
        "Cluster variables (nested): school (level 3, 20 groups), school:class (level 2, 80 groups)"
        in text
    )
    assert "Psi3:" in text and "Psi:" in text and "Sigma:" in text
    assert "level 1: y x z" in text


def test_same_seed_same_draws_whatever_threads_and_row_order(small):
    kw = dict(m=4, n_burn=20, n_iter=5, seed=11, chains=2)
    a = pm.pan_impute(small, F3, n_threads=1, **kw)
    b = pm.pan_impute(small, F3, n_threads=2, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    for k in a.par_chains_imputation:
        np.testing.assert_array_equal(a.par_chains_imputation[k], b.par_chains_imputation[k])
    c = pm.pan_impute(small, F3, m=4, n_burn=20, n_iter=5, seed=12, chains=2)
    assert not np.array_equal(a.replacement, c.replacement)


def test_random_slopes_at_either_level_and_keep_diagonal(small):
    df = small.copy()
    df["x"] = df["x"].fillna(0.0)
    imp = pm.pan_impute(
        df,
        "y ~ 1 + x + z + (1 + z|school) + (1 + x|school:class)",
        m=2,
        n_burn=30,
        n_iter=5,
        seed=3,
        keep_chains="diagonal",
    )
    assert imp.par_imputation["psi3"].shape == (2, 1, 10, 1)
    assert imp.par_imputation["psi"].shape == (2, 1, 10, 1)
    assert imp.param_names["psi"][0] == ["y:(Intercept)|school:class", "y:x|school:class"]
    assert (imp.par_imputation["psi3"] > 0).all()
    # the outer term may come second; unique class ids work as the inner factor
    imp2 = pm.pan_impute(df, "y ~ 1 + x + (1|cid) + (1|school)", m=2, n_burn=10, n_iter=2, seed=3)
    assert imp2.extra["factors"] == ("school", "cid")


def test_group_runs_each_group_separately(small):
    df = small.copy()
    df["g"] = np.where(df["school"] < 10, "a", "b")
    imp = pm.pan_impute(df, F3, group="g", m=2, n_burn=10, n_iter=2, seed=4)
    assert imp.par_imputation["psi3"].shape[-1] == 2
    assert imp.group_labels == ["a", "b"]


def test_school_variance_near_zero_matches_two_level_pan():
    """With no school variance in the data and a prior that lets Psi3 go to ~0, the class-level
    posterior means (beta, Psi at the class level, Sigma) equal two-level pan's within Monte
    Carlo error (batch-means MCSE of both chains, 4.5 combined SE)."""
    df = _data(seed=5, S=30, K=5, n=8, var3=0.0, var2=0.3, miss=0.3)
    kw = dict(m=2, n_burn=500, n_iter=2000, seed=6)
    three = pm.pan_impute(df, F3, prior={"Dinv3": 1e-6 * np.eye(2)}, **kw)
    two = pm.pan_impute(df, "y + x ~ 1 + z + (1|cid)", **kw)
    assert three.par_imputation["psi3"][..., 0].mean(axis=-1).max() < 1e-3
    for b in ("beta", "psi", "sigma"):
        a3 = three.par_imputation[b][..., 0]
        a2 = two.par_imputation[b][..., 0]
        for i in range(a3.shape[0]):
            for j in range(a3.shape[1]):
                se = np.hypot(batch_means_mcse(a3[i, j]), batch_means_mcse(a2[i, j]))
                diff = a3[i, j].mean() - a2[i, j].mean()
                assert abs(diff) < 4.5 * se, (b, i, j, diff, se)


def test_school_variance_is_recovered_from_complete_data():
    """No missing values: the posterior means of Psi3 and Psi (y's intercept variances) land
    near the REML estimates of the same data (posterior SD ~ 30% with 30 schools)."""
    df = _data(seed=8, S=30, K=5, n=8, var3=0.4, var2=0.3, miss=0.0)
    df.loc[0, "y"] = np.nan  # one cell so that there is something to impute
    imp = pm.pan_impute(
        df, "y ~ 1 + x + z + (1|school) + (1|school:class)", m=2, n_burn=300, n_iter=1000, seed=9
    )
    fit = pm.lmer("y ~ x + z + (1|school) + (1|school:class)", df.dropna())
    vc = fit.varcorr.set_index("grp")["vcov"]
    assert abs(imp.par_imputation["psi3"][0, 0, :, 0].mean() - vc["school"]) < 0.35 * vc["school"]
    assert (
        abs(imp.par_imputation["psi"][0, 0, :, 0].mean() - vc["school:class"])
        < 0.3 * vc["school:class"]
    )
    assert (
        abs(imp.par_imputation["sigma"][0, 0, :, 0].mean() - vc["Residual"]) < 0.1 * vc["Residual"]
    )
    beta = imp.par_imputation["beta"][:, 0, :, 0].mean(axis=-1)
    np.testing.assert_allclose(beta, fit.fixef.to_numpy(), atol=0.08)


# --- bad input ---------------------------------------------------------------------------------


def test_error_class_ids_reused_across_schools(small):
    with pytest.raises(ValueError) as e:
        pm.pan_impute(small, "y + x ~ 1 + z + (1|school) + (1|class)", m=2, n_burn=5, n_iter=1)
    msg = str(e.value)
    assert "cluster variable 'class' is not nested in 'school'" in msg
    assert "write the inner factor as 'school:class'" in msg
    assert "pm.fcs_impute(df, cluster=['school', 'class'], crossed=True)" in msg
    assert "pass crossed=True" not in msg


def test_error_crossed_factors_point_to_fcs():
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "school": rng.integers(0, 10, 300),
            "nbhd": rng.integers(0, 15, 300),
            "y": rng.normal(size=300),
        }
    )
    df.loc[:20, "y"] = np.nan
    with pytest.raises(ValueError, match=r"crossed=True\)") as e:
        pm.pan_impute(df, "y ~ 1 + (1|school) + (1|nbhd)", m=2, n_burn=5, n_iter=1)
    assert "needs nested factors" in str(e.value)


def test_error_messages_for_other_bad_formulas(small):
    with pytest.raises(ValueError, match="has 3 random-effects terms; pan_impute takes"):
        pm.pan_impute(small, F3 + " + (1|cid)", m=2, n_burn=5, n_iter=1)
    with pytest.raises(ValueError, match="two random terms for 'school'"):
        pm.pan_impute(small, "y ~ 1 + (1|school) + (0 + z|school)", m=2, n_burn=5, n_iter=1)
    with pytest.raises(ValueError, match="'||' are not supported"):
        pm.pan_impute(small, "y ~ 1 + (1|school) + (1 + z||school:class)", m=2, n_burn=5, n_iter=1)
    with pytest.raises(ValueError, match="exactly one of `formula` or `type`"):
        pm.pan_impute(small, F3, type={"y": 1}, m=2, n_burn=5, n_iter=1)
    with pytest.raises(ValueError, match=r"`prior\['Dinv3'\]` must be a 2 x 2 matrix"):
        pm.pan_impute(small, F3, prior={"Dinv3": np.eye(3)}, m=2, n_burn=5, n_iter=1)
    with pytest.raises(ValueError, match="unknown key"):
        pm.pan_impute(small, F3, prior={"D3": 1.0}, m=2, n_burn=5, n_iter=1)
    bad = small.copy()
    bad.loc[3, "z"] = np.nan
    with pytest.raises(ValueError, match="predictor 'z' has 1 missing value"):
        pm.pan_impute(bad, F3, m=2, n_burn=5, n_iter=1)
    one = small[small["school"] == 0]
    with pytest.raises(ValueError, match="'school' has a single group; a three-level model"):
        pm.pan_impute(one, F3, m=2, n_burn=5, n_iter=1)
    with pytest.raises(ValueError, match="column"):
        pm.pan_impute(small, "y ~ 1 + (1|school) + (1 + w|school:class)", m=2, n_burn=5, n_iter=1)


def test_check_compatibility_reads_the_three_level_formula(small):
    imp = pm.pan_impute(small, F3, m=2, n_burn=10, n_iter=2, seed=1)
    ok = pm.check_compatibility(imp, "y ~ x + z + (1|school) + (1|school:class)")
    assert not ok.issues
    with pytest.warns(CompatibilityWarning, match="random slope of imputed variable 'x'"):
        pm.check_compatibility(imp, "y ~ x + z + (1|school) + (1 + x|school:class)")
