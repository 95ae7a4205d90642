"""fcs_impute: the frame (methods, predictor matrix, visit sequence, where, level 2), errors,
completed data, chains, and recovery of known parameters."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.samplers.fcs import fcs_impute, make_predictor_matrix


def _sim(seed=0, J=40, n=12):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    N = J * n
    w = rng.normal(size=J)[g]
    x = rng.normal(size=N) + 0.5 * rng.normal(size=J)[g]
    y = 1 + 0.5 * x + 0.4 * w + rng.normal(scale=0.7, size=J)[g] + rng.normal(size=N)
    b = (0.8 * x + rng.normal(size=N) > 0).astype(float)
    cat = pd.Categorical(rng.choice(["lo", "mid", "hi"], N), categories=["lo", "mid", "hi"])
    df = pd.DataFrame({"school": g + 100, "y": y, "x": x, "b": b, "w": w, "cat": cat})
    df.loc[rng.random(N) < 0.25, "y"] = np.nan
    df.loc[rng.random(N) < 0.1, "b"] = np.nan
    df.loc[np.isin(g, rng.choice(J, 6, replace=False)), "w"] = np.nan
    return df.sample(frac=1.0, random_state=1).set_index(pd.Index(np.arange(N) * 3 + 7))


def test_make_predictor_matrix_is_mices_default():
    df = _sim()
    P = make_predictor_matrix(df, cluster="school")
    assert list(P.index) == list(df.columns) == list(P.columns)
    assert (P["school"].drop("school") == -2).all()
    assert (P.loc["school"] == 0).all()
    assert np.all(np.diag(P.to_numpy()) == 0)
    assert P.loc["y", "x"] == 1
    assert (make_predictor_matrix(df).to_numpy() == 1 - np.eye(6)).all()


def test_default_methods_by_type_and_level_are_shown():
    df = _sim().drop(columns="cat")
    imp = fcs_impute(df, cluster="school", m=2, maxit=2, seed=1)
    assert imp.methods == {"school": "", "y": "2l.pan", "x": "", "b": "2l.bin", "w": "2lonly.norm"}
    assert "'y': '2l.pan'" in repr(imp) and "'w': '2lonly.norm'" in repr(imp)
    imp1 = fcs_impute(df.drop(columns="school"), m=1, maxit=1, seed=1)
    assert imp1.methods == {"y": "pmm", "x": "", "b": "logreg", "w": "pmm"}


def test_completed_data_keep_observed_cells_order_index_dtypes():
    df = _sim().drop(columns="cat")
    df["school"] = "s" + df["school"].astype(str)  # any cluster id type
    imp = fcs_impute(df, cluster="school", m=3, maxit=3, seed=2)
    out = imp.complete()
    assert len(out) == 3
    for d in out:
        assert d.index.equals(df.index) and list(d.columns) == list(df.columns)
        assert d.dtypes.equals(df.dtypes)
        assert not d.isna().any().any()
        obs = df.notna()
        for c in df.columns:
            assert (d[c][obs[c]] == df[c][obs[c]]).all()
        assert set(np.unique(d["b"])) <= {0.0, 1.0}
        # level-2 variable: one value per cluster
        assert (d.groupby("school")["w"].nunique() == 1).all()
    assert imp.chain_mean.shape == (3, 3, 3) and imp.chain_var.shape == (3, 3, 3)
    assert imp.targets == ["y", "b", "w"]


def test_polars_frames_come_back_as_polars():
    pl = pytest.importorskip("polars")
    df = _sim().drop(columns="cat")
    imp = fcs_impute(
        pl.from_pandas(df.reset_index(drop=True)), cluster="school", m=2, maxit=2, seed=3
    )
    d = imp.complete(1)
    assert isinstance(d, pl.DataFrame) and d.null_count().sum_horizontal()[0] == 0
    ref = fcs_impute(df.reset_index(drop=True), cluster="school", m=2, maxit=2, seed=3)
    np.testing.assert_array_equal(ref.replacement, imp.replacement)


def test_categorical_targets_keep_their_categories():
    df = _sim()
    df["bc"] = pd.Categorical(np.where(df["b"] == 1, "yes", "no"))
    df.loc[df["b"].isna(), "bc"] = np.nan
    df = df.drop(columns=["b", "cat"])
    imp = fcs_impute(df, cluster="school", m=2, maxit=2, seed=4)
    assert imp.methods["bc"] == "2l.bin"
    d = imp.complete(2)
    assert d["bc"].dtype == df["bc"].dtype and d["bc"].notna().all()
    assert set(d["bc"]) == {"yes", "no"}


def test_same_seed_same_imputations_whatever_the_threads():
    df = _sim().drop(columns="cat")
    a = fcs_impute(df, cluster="school", m=4, maxit=2, seed=9, n_threads=1)
    b = fcs_impute(df, cluster="school", m=4, maxit=2, seed=9, n_threads=2)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    c = fcs_impute(df, cluster="school", m=4, maxit=2, seed=10)
    assert not np.array_equal(a.replacement, c.replacement)


def test_where_visit_sequence_and_passive():
    df = _sim().drop(columns="cat")
    df["ratio"] = df["y"] / df["x"]
    where = df.isna().to_numpy()
    where[:5, df.columns.get_loc("x")] = True  # re-impute five observed x
    meth = {"x": "2l.norm", "ratio": "~ I(y / x)"}
    imp = fcs_impute(
        df,
        cluster="school",
        method=meth,
        where=where,
        m=2,
        maxit=2,
        seed=5,
        visit_sequence=["x", "y", "ratio", "b", "w"],
    )
    assert imp.visit_sequence == ["x", "y", "ratio", "b", "w"]
    d = imp.complete(1)
    assert not np.allclose(d["x"].to_numpy()[:5], df["x"].to_numpy()[:5])
    rm = df["ratio"].isna().to_numpy()  # passive cells recomputed, observed ones kept (mice)
    np.testing.assert_allclose(d["ratio"][rm], (d["y"] / d["x"])[rm])
    assert (d["ratio"][~rm] == df["ratio"][~rm]).all()
    assert (d["x"].to_numpy()[5:][~where[5:, 2]] == df["x"].to_numpy()[5:][~where[5:, 2]]).all()


def test_long_chain_with_thinning():
    df = _sim().drop(columns="cat")
    imp = fcs_impute(df, cluster="school", m=4, maxit=3, long_chain=True, thin=2, seed=6)
    assert imp.m == 4 and imp.settings["chains"] == 1
    assert imp.chain_mean.shape == (3, 3 + 4 * 2, 1)
    s = imp.summary()
    assert "y" in str(s.rhat.index.tolist()) or len(s.rhat)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": {"y": "2l.foo"}}, "unknown method '2l.foo' for 'y'"),
        ({"method": {"y": "2lonly.norm"}}, "'y' varies within clusters; use a 2l.* method"),
        ({"method": {"cat": "logreg"}}, "method 'logreg' does not fit 'cat' (categorical with 3"),
        ({"method": {"y": "2l.bin"}}, "method '2l.bin' does not fit 'y' (numeric)"),
        ({"method": {"zz": "pmm"}}, "`method` names ['zz'], which are not columns"),
        ({"method": {"y": "~ I(y2 / x)"}}, "names ['y2'], which are not columns of the data"),
        ({"method": {"y": "~ I(y / x)"}}, "uses 'y' itself"),
        ({"method": {"y": "~ I(__import__('os'))"}}, "only numbers, column names"),
        ({"visit_sequence": ["y", "nope"]}, "`visit_sequence` names ['nope']"),
        ({"visit_sequence": ["x"]}, "have nothing to impute"),
        ({"where": np.zeros((3, 3), bool)}, "`where` must be a boolean array"),
    ],
)
def test_bad_input_names_the_variable_and_the_fix(kwargs, message):
    df = _sim()
    with pytest.raises(ValueError, match=re.escape(message)):
        fcs_impute(df, cluster="school", m=1, maxit=1, **kwargs)


def test_bad_predictor_matrices_and_clusters():
    df = _sim().drop(columns="cat")
    P = make_predictor_matrix(df, cluster="school")
    bad = P.copy()
    bad.loc["y", "y"] = 1
    with pytest.raises(ValueError, match=re.escape("['y'] predicting themselves")):
        fcs_impute(df, cluster="school", predictor_matrix=bad)
    bad = P.rename(index={"y": "yy"})
    with pytest.raises(ValueError, match=re.escape("names ['yy'], which are not columns")):
        fcs_impute(df, cluster="school", predictor_matrix=bad)
    bad = P.copy()
    bad.loc["y", "x"] = 7
    with pytest.raises(
        ValueError, match=re.escape("codes must be among [0, 1, 2, 3, 4, -2]; got [7]")
    ):
        fcs_impute(df, cluster="school", predictor_matrix=bad)
    bad = P.copy()
    bad.loc["y", "x"] = -2
    with pytest.raises(ValueError, match="marks \\['school', 'x'\\] as cluster id"):
        fcs_impute(df, cluster="school", predictor_matrix=bad)
    with pytest.raises(ValueError, match="method '2l.pan' of 'y' needs the cluster id"):
        fcs_impute(df, method={"y": "2l.pan"})
    d2 = df.copy()
    d2.iloc[3, 0] = np.nan
    with pytest.raises(ValueError, match="cluster id 'school' is missing in 1 row"):
        fcs_impute(d2, cluster="school")
    with pytest.raises(TypeError, match="`predictor_matrix` must be a pandas DataFrame"):
        fcs_impute(df, cluster="school", predictor_matrix=[[0]])
    small = df[df["school"] < 102]
    with pytest.raises(ValueError, match="'2l.norm' of 'y' has 1 random effects but only 2"):
        fcs_impute(small, cluster="school", method={"y": "2l.norm"})
    # the cluster id found from the predictor matrix alone
    imp = fcs_impute(df, predictor_matrix=P, m=1, maxit=1, seed=1)
    assert imp.settings["cluster"] == "school" and imp.methods["y"] == "2l.pan"


def test_collinear_and_empty_predictor_sets_warn():
    df = _sim().drop(columns="cat")
    df["x2"] = 2 * df["x"]
    with pytest.warns(UserWarning, match=re.escape("['x2'] of 'y' are constant or collinear")):
        fcs_impute(df, cluster="school", m=1, maxit=1, seed=1)
    P = make_predictor_matrix(df, cluster="school")
    P.loc["y", :] = 0
    P.loc["y", "school"] = -2
    with pytest.warns(UserWarning, match="'y' has no predictors"):
        fcs_impute(df, cluster="school", predictor_matrix=P, m=1, maxit=1, seed=1)


def test_every_method_runs_and_recovers_the_mean():
    df = _sim().drop(columns="cat")
    true_mean = 1 + 0.0  # E[y] = 1 (x and w centred)
    for meth in ("2l.pan", "2l.norm", "2l.pmm", "2l.lmer", "norm", "norm.nob", "pmm"):
        imp = fcs_impute(
            df, cluster="school", method={"y": meth, "w": "2lonly.pmm"}, m=4, maxit=4, seed=7
        )
        ys = [d["y"].mean() for d in imp.complete()]
        assert abs(np.mean(ys) - true_mean) < 0.35, meth
    with pytest.raises(ValueError, match="'2lonly.mean' of 'w' has no observed value in 6"):
        fcs_impute(df, cluster="school", method={"w": "2lonly.mean"}, m=1, maxit=1)
    full = _sim().drop(columns="cat")["w"].isna()
    df.loc[full, "w"] = df.loc[full].groupby("school")["x"].transform("size") * 0.0 + 0.25
    df.loc[df.index[::5], "w"] = np.nan  # missing rows in clusters with observed values
    imp = fcs_impute(
        df, cluster="school", method={"w": "2lonly.mean", "b": "logreg"}, m=2, maxit=2, seed=8
    )
    assert (imp.complete(1).groupby("school")["w"].nunique() == 1).all()
    d = imp.complete(1)
    assert set(np.unique(d["b"])) <= {0.0, 1.0}


def test_two_level_pan_recovers_the_model():
    rng = np.random.default_rng(11)
    J, n = 150, 20
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    y = 2.0 + 1.0 * x + rng.normal(scale=1.0, size=J)[g] + rng.normal(scale=1.0, size=J * n)
    y[rng.random(J * n) < 1 / (1 + np.exp(-x))] = np.nan  # MAR on x
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    imp = fcs_impute(df, cluster="g", m=5, maxit=5, seed=1)
    fits = imp.complete().with_(lambda d: pm.lmer("y ~ x + (1|g)", d))
    est = pm.pool_estimates(fits).table["Estimate"]
    assert abs(est.iloc[0] - 2.0) < 0.25 and abs(est.iloc[1] - 1.0) < 0.08
    sds = [np.sqrt(f.varcorr.iloc[0]["vcov"]) if hasattr(f.varcorr, "iloc") else 1.0 for f in fits]
    assert len(sds) == 5


def test_ordered_and_nominal_categories_two_level_and_single_level():
    """2l.polr / 2l.polyreg (continuation-ratio probit steps, not in mice) and mice's polr /
    polyreg: the imputed levels follow their predictor."""
    rng = np.random.default_rng(12)
    J, n = 60, 15
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    z = x + rng.normal(scale=0.5, size=J)[g] + rng.normal(size=J * n)
    lev = np.digitize(z, [-0.8, 0.8])  # 0, 1, 2 with x predicting the level
    df = pd.DataFrame(
        {
            "g": g,
            "x": x,
            "o": pd.Categorical.from_codes(lev, ["low", "mid", "high"], ordered=True),
            "c": pd.Categorical.from_codes(rng.integers(0, 3, J * n), ["a", "b", "c"]),
        }
    )
    miss = rng.random(J * n) < 0.3
    df.loc[miss, "o"] = np.nan
    df.loc[rng.random(J * n) < 0.2, "c"] = np.nan
    imp = fcs_impute(df, cluster="g", m=3, maxit=4, seed=2)
    assert imp.methods["o"] == "2l.polr" and imp.methods["c"] == "2l.polyreg"
    for d in imp.complete():
        assert d["o"].dtype == df["o"].dtype and d["o"].notna().all() and d["c"].notna().all()
        # the imputed levels follow x as the observed ones do
        lv = d["o"].cat.codes.to_numpy()[miss]
        r_true = np.corrcoef(lev[miss], x[miss])[0, 1]
        assert np.corrcoef(lv, x[miss])[0, 1] > 0.6 * r_true
        assert abs(np.mean(lv == 2) - np.mean(lev[miss] == 2)) < 0.1
    one = fcs_impute(df.drop(columns="g"), m=2, maxit=2, seed=3)
    assert one.methods["o"] == "polr" and one.methods["c"] == "polyreg"
    assert one.complete(1)["o"].notna().all()


def test_polr_and_polyreg_survive_separation_and_a_single_category():
    """mice's augmented rows keep the fits finite when x separates the categories; a target
    with one observed category imputes it (mice's polyreg returns it without a fit)."""
    x = np.linspace(-2, 2, 60)
    o = pd.Categorical.from_codes(np.digitize(x, [-0.7, 0.7]), ["a", "b", "c"], ordered=True)
    df = pd.DataFrame({"x": x, "o": o, "u": pd.Categorical(np.asarray(o).astype(str))})
    miss = np.zeros(60, bool)
    miss[::6] = True
    df.loc[miss, ["o", "u"]] = np.nan
    P = pd.DataFrame([[0, 0, 0], [1, 0, 0], [1, 0, 0]], index=df.columns, columns=df.columns)
    imp = fcs_impute(
        df, method={"o": "polr", "u": "polyreg"}, predictor_matrix=P, m=20, maxit=1, seed=4
    )
    for v in ("o", "u"):
        got = np.array([d[v].to_numpy()[miss] for d in imp.complete()])
        truth = np.asarray(o)[miss]
        # the far ends are imputed as their side's category in most imputations
        assert np.mean(got[:, x[miss] < -1.5] == "a") > 0.8
        assert np.mean(got[:, x[miss] > 1.5] == "c") > 0.8
        assert np.mean(got == truth[None, :]) > 0.6
    one = df.copy()
    one["o"] = pd.Categorical(np.where(miss, None, "b"), ["a", "b", "c"], ordered=True)
    imp = fcs_impute(
        one, method={"o": "polr", "u": "polyreg"}, predictor_matrix=P, m=2, maxit=1, seed=4
    )
    assert (imp.complete(1)["o"] == "b").all()


def test_failed_polr_fit_falls_back_to_the_multinomial_logit(monkeypatch):
    """As mice.impute.polr: when the proportional-odds fit fails, the multinomial logit's
    probabilities are used (here the polr kernel is made to fail)."""
    from pymitml.samplers.fcs import _methods

    rng = np.random.default_rng(3)
    x = rng.normal(size=300)
    o = pd.Categorical.from_codes(
        np.digitize(x + rng.logistic(size=300), [-1, 1]), list("abc"), ordered=True
    )
    df = pd.DataFrame({"x": x, "o": o})
    df.loc[rng.random(300) < 0.3, "o"] = np.nan
    used = []
    real = _methods.mlogit_fit

    def spy(*a):
        used.append(1)
        return real(*a)

    monkeypatch.setattr(_methods, "polr_fit", lambda *a: 3)
    monkeypatch.setattr(_methods, "mlogit_fit", spy)
    imp = fcs_impute(df, method={"o": "polr"}, m=2, maxit=2, seed=1)
    assert len(used) == 4 and imp.complete(2)["o"].notna().all()
    lv = imp.complete(2)["o"].cat.codes.to_numpy()[df["o"].isna().to_numpy()]
    assert np.corrcoef(lv, x[df["o"].isna().to_numpy()])[0, 1] > 0.3


def test_post_hooks_squeeze_or_transform():
    df = _sim().drop(columns="cat")
    imp = fcs_impute(df, cluster="school", post={"y": (0.0, 1.5)}, m=2, maxit=2, seed=1)
    miss = df["y"].isna().to_numpy()
    for d in imp.complete():
        v = d["y"].to_numpy()[miss]
        assert v.min() >= 0.0 and v.max() <= 1.5
    imp = fcs_impute(df, cluster="school", post={"y": np.round}, m=1, maxit=1, seed=1)
    v = imp.complete(1)["y"].to_numpy()[miss]
    np.testing.assert_array_equal(v, np.round(v))
    with pytest.raises(ValueError, match="`post` names 'x', which is not an imputed column"):
        fcs_impute(df, cluster="school", post={"x": (0, 1)})
    with pytest.raises(TypeError, match="`post\\['y'\\]` must be a function"):
        fcs_impute(df, cluster="school", post={"y": 3})


def test_summary_and_trace_plots_of_chain_means_and_variances():
    pytest.importorskip("matplotlib")
    df = _sim().drop(columns="cat")
    imp = fcs_impute(df, cluster="school", m=3, maxit=6, seed=1)
    s = imp.summary()
    assert list(s.rhat["parameter"])[:3] == ["Mean [1,1]: y", "Mean [2,1]: b", "Mean [3,1]: w"]
    assert "Cluster variable:         school" in str(s)
    figs = imp.plot()
    assert sorted(figs) == ["mean", "var"]
    # mice's chainMean: the mean of the imputed cells of chain c after iteration i
    last = imp.complete(3)["y"].to_numpy()[df["y"].isna().to_numpy()].mean()
    assert imp.chain_mean[0, -1, 2] == pytest.approx(last)


@pytest.mark.parametrize("method", ["2l.pmm", "2l.norm", "2l.pan"])
def test_two_level_methods_recover_fixed_effects_and_variances(method):
    """MAR on x: complete-case estimates are biased, the imputations are not (20 data sets).

    For 2l.pmm this simulation recovery is the only check: base mice 3.15 has no 2l.pmm (the
    add-on packages miceadds / micemd have one, not installed), so there is no R reference;
    2l.pan and 2l.norm are also checked against mice in tests/test_fcs_r.py."""
    rng = np.random.default_rng(21)
    J, n = 300, 15
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    y = 2.0 + 1.0 * x + rng.normal(scale=0.8, size=J)[g] + rng.normal(size=J * n)
    full_mean = y.mean()
    y[rng.random(J * n) < 1 / (1 + np.exp(-1.5 * x))] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    imp = fcs_impute(df, cluster="g", method={"y": method}, m=20, maxit=10, seed=3)
    fits = imp.complete().with_(lambda d: pm.lmer("y ~ x + (1|g)", d))
    est = pm.pool_estimates(fits).table["Estimate"].to_numpy()
    assert abs(est[0] - 2.0) < 0.1 and abs(est[1] - 1.0) < 0.05
    sd_int = np.mean([f.varcorr["sdcor"].iloc[0] for f in fits])
    sigma = np.mean([f.sigma for f in fits])
    assert abs(sd_int - 0.8) < 0.08 and abs(sigma - 1.0) < 0.05
    assert abs(np.mean([d["y"].mean() for d in imp.complete()]) - full_mean) < 0.05


def test_two_level_categorical_steps_recover_the_category_shares():
    rng = np.random.default_rng(22)
    J, n = 300, 15
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    lat = 0.8 * x + rng.normal(scale=0.7, size=J)[g] + rng.normal(size=J * n)
    lev = np.digitize(lat, [-0.7, 0.9])
    b = (lat + rng.normal(size=J * n) > 0.3).astype(float)
    df = pd.DataFrame(
        {
            "g": g,
            "x": x,
            "b": b,
            "o": pd.Categorical.from_codes(lev, ["l", "m", "h"], ordered=True),
        }
    )
    miss = rng.random(J * n) < 1 / (1 + np.exp(-1.5 * x))  # MAR on x
    df.loc[miss, "o"] = np.nan
    df.loc[rng.random(J * n) < 1 / (1 + np.exp(1.5 * x)), "b"] = np.nan
    imp = fcs_impute(df, cluster="g", m=10, maxit=10, seed=4)
    assert imp.methods["o"] == "2l.polr" and imp.methods["b"] == "2l.bin"
    shares = np.mean(
        [np.bincount(d["o"].cat.codes, minlength=3) / len(d) for d in imp.complete()], 0
    )
    np.testing.assert_allclose(shares, np.bincount(lev, minlength=3) / len(lev), atol=0.02)
    pb = np.mean([d["b"].mean() for d in imp.complete()])
    assert abs(pb - b.mean()) < 0.02


def test_nullable_boolean_and_string_targets_in_pandas_and_polars():
    pl = pytest.importorskip("polars")
    df = _sim().drop(columns="cat")
    df["flag"] = pd.array(df["x"].to_numpy() > 0, dtype="boolean")
    df.loc[df.index[::6], "flag"] = pd.NA
    df["s"] = np.where(df["x"] > 0.5, "hi", "lo").astype(object)
    df.loc[df.index[::7], "s"] = None
    imp = fcs_impute(df, cluster="school", m=2, maxit=2, seed=1)
    assert imp.methods["flag"] == imp.methods["s"] == "2l.bin"
    d = imp.complete(1)
    assert d["flag"].dtype == df["flag"].dtype and d["flag"].notna().all()
    assert set(d["s"]) == {"hi", "lo"}
    p = fcs_impute(
        pl.from_pandas(df.reset_index(drop=True)), cluster="school", m=2, maxit=2, seed=1
    ).complete(1)
    assert p.schema["flag"] == pl.Boolean and p.schema["s"] == pl.String
    assert p.null_count().sum_horizontal()[0] == 0


def test_predictor_codes_build_fixed_random_and_cluster_mean_columns():
    df = _sim()
    P = make_predictor_matrix(df, cluster="school")
    P.loc["y", "cat"] = 4  # indicators: fixed + random slopes + their cluster means
    P.loc["y", "x"] = 3  # fixed + cluster mean
    P.loc["y", "b"] = 2  # fixed + random slope
    imp = fcs_impute(df, cluster="school", predictor_matrix=P, m=1, maxit=2, seed=1)
    d = imp.extra["designs"]["y"]
    assert d.x_names == [
        "(Intercept)",
        "x",
        "b",
        "w",
        "catmid",
        "cathi",
        "mean(x)",
        "mean(catmid)",
        "mean(cathi)",
    ]
    assert d.z_names == ["(Intercept)", "b", "catmid", "cathi"]
    assert imp.extra["designs"]["w"].x_names[0] == "(Intercept)"
    assert all(n.startswith("mean(") for n in imp.extra["designs"]["w"].x_names[1:])
    assert (imp.predictor_matrix.loc["y"] == P.loc["y"]).all()
