"""model_impute: invariants, recovery of a random-slope / interaction design, exact errors."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pymitml as pm


def _slope_data(seed=1, J=40, nj=15, miss_x=0.25, miss_y=0.15):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    w = rng.normal(size=J)[g]
    u0 = rng.normal(size=J) * 0.7
    u1 = rng.normal(size=J) * 0.5
    y = 1 + (1 + u1[g]) * x + 0.5 * w + 0.5 * x * w + u0[g] + rng.normal(size=n)
    xm = x.copy()
    xm[rng.random(n) < miss_x] = np.nan
    ym = y.copy()
    ym[rng.random(n) < miss_y] = np.nan
    return pd.DataFrame({"g": g, "x": xm, "w": w, "y": ym})


FORMULA = "y ~ x + w + x:w + (1 + x | g)"


@pytest.fixture(scope="module")
def small_run():
    df = _slope_data()
    imp = pm.model_impute(df, FORMULA, m=4, n_burn=300, n_iter=50, chains=2, seed=3, verbose=False)
    return df, imp


def test_observed_values_unchanged_and_layout_kept(small_run):
    df, imp = small_run
    for d in imp.complete():
        assert list(d.columns) == list(df.columns)
        assert (d.dtypes == df.dtypes).all()
        assert d.index.equals(df.index)
        obs = df.notna()
        for c in df.columns:
            np.testing.assert_array_equal(d[c][obs[c]].to_numpy(), df[c][obs[c]].to_numpy())
        assert not d.isna().any().any()


def test_same_seed_same_output_whatever_threads():
    df = _slope_data(J=20, nj=10)
    kw = dict(m=2, n_burn=50, n_iter=10, chains=2, seed=11, verbose=False)
    a = pm.model_impute(df, FORMULA, n_threads=1, **kw)
    b = pm.model_impute(df, FORMULA, n_threads=2, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    np.testing.assert_array_equal(a.draws, b.draws)


def test_estimates_table_and_acceptance(small_run):
    _, imp = small_run
    est = imp.estimates
    assert list(est.columns) == ["Median", "StdDev", "2.5%", "97.5%", "PSR", "N_Eff"]
    assert ("y", "w:x") in est.index or ("y", "x:w") in est.index
    assert ("y", "Var(x)") in est.index and ("x", "Residual Var.") in est.index
    assert ("y", "ICC") in est.index
    acc = imp.acceptance
    assert "x" in acc.index
    assert 0.35 < acc.loc["x", "imputation"] < 0.65  # tuned toward 0.5 during burn-in


def test_pools_with_lmer(small_run):
    _, imp = small_run
    fits = imp.complete().with_(lambda d: pm.lmer(FORMULA, d, REML=True))
    tab = pm.pool_estimates(fits).table
    assert abs(tab.loc["x", "Estimate"] - 1.0) < 0.3


# ---------------------------------------------------------------- bad input (exact messages)
@pytest.fixture(scope="module")
def tiny():
    return _slope_data(J=10, nj=5)


RUN = dict(m=1, n_burn=1, n_iter=1, chains=1, verbose=False)


@pytest.mark.parametrize(
    "formula, kwargs, message",
    [
        (
            "yy ~ x + (1 | g)",
            {},
            "the response 'yy' of the focal model 'yy ~ x + (1 | g)' is not a column of the data; "
            "available columns: ['g', 'x', 'w', 'y'].",
        ),
        (
            "y ~ x + w + (1 | g)",
            {"selection": {"w": "~ w"}},
            "selection model for 'w': 'w' has no missing values, so there is no missingness to "
            "model; remove 'w' from `selection`.",
        ),
        (
            "y ~ x + w + (1 + w | g)",
            {},
            "random slope of 'w' in (1 + w | g) of the focal model 'y ~ x + w + (1 + w | g)': 'w' "
            "is constant within clusters of 'g' (a level-2 variable) and cannot have a random "
            "slope; keep it in the fixed part only.",
        ),
        (
            "y ~ x + w + (1 | g)",
            {"predictors": ["w ~ x"]},
            "predictor model 'w ~ x': 'w' on its left has no missing values; complete predictors "
            "are conditioned on: list it in `fixed=` (or on the right of another model) instead "
            "of modelling it; a complete variable the analysis does not use goes in "
            "`auxiliary=`.",
        ),
        (
            "y ~ log(x) + (1 | g)",
            {},
            "cannot read the term 'log(x)' of the focal model 'y ~ log(x) + (1 | g)'; "
            "model_impute's formulas take column names, products 'a:b', crossings 'a*b', powers "
            "'I(a^2)', cluster means 'cmean(a)' and cluster-mean-centred values 'cwc(a)'. "
            "Compute other transformations as columns of the data first.",
        ),
        (
            "y ~ x + (1 | g)",
            {"predictors": ["x ~ sqrt(w)"]},
            "cannot read the term 'sqrt(w)' of predictor model 'x ~ sqrt(w)'; model_impute's "
            "formulas take column names, products 'a:b', crossings 'a*b', powers 'I(a^2)', "
            "cluster means 'cmean(a)' and cluster-mean-centred values 'cwc(a)'. Compute other "
            "transformations as columns of the data first.",
        ),
        (
            "y ~ x + z + (1 | g)",
            {},
            "variable(s) ['z'] not found in the data; available columns: ['g', 'x', 'w', 'y'].",
        ),
        (
            "y ~ x + (1 | g) + (1 | w)",
            {},
            "`formula` 'y ~ x + (1 | g) + (1 | w)' has random effects for ['g', 'w']; "
            "model_impute takes one cluster variable: use one term such as '(1 + x | cluster)'.",
        ),
        ("y ~ x ~ w", {}, "`formula` must contain exactly one '~'; got 'y ~ x ~ w'."),
        (
            "y ~ x + w + (1 | g)",
            {"predictors": ["x ~ w + y"]},
            "the predictor model of 'x' (x ~ w + y): 'y' is the focal model's response; the "
            "factorisation f(y | x, ...) f(x | ...) cannot also condition 'x' on it: remove 'y' "
            "from the predictor model.",
        ),
        (
            "y ~ x + (1 | g)",
            {"fixed": ["x"]},
            "`fixed` variable 'x' has 9 missing value(s); fixed predictors are conditioned on "
            "and must be complete: remove it from `fixed` (it then gets a predictor model).",
        ),
        (
            "y ~ x + (1 | g)",
            {"selection": {"y": "r ~ y + x"}},
            "selection model 'r ~ y + x' for 'y' has 'r' on its left; write only the right "
            "side: {'y': '~ y + x'}.",
        ),
    ],
)
def test_bad_input_messages(tiny, formula, kwargs, message):
    with pytest.raises(ValueError) as err:
        pm.model_impute(tiny, formula, **kwargs, **RUN)
    assert str(err.value) == message


def test_circular_predictor_models(tiny):
    df = tiny.assign(
        w=np.where(np.arange(len(tiny)) % 4 == 0, np.nan, tiny["w"] * np.arange(len(tiny)))
    )
    with pytest.raises(ValueError) as err:
        pm.model_impute(df, "y ~ x + w + (1 | g)", predictors=["x ~ w", "w ~ x"], **RUN)
    assert str(err.value) == (
        "the predictor models condition in a circle (x -> w -> x): the factorisation needs an "
        "order; list the variables of one model on the left together ('x + w ~ ...') or drop "
        "one of the predictors."
    )


def test_bad_run_arguments(tiny):
    with pytest.raises(ValueError, match=r"`n_burn` must be an integer >= 0; got -5\."):
        pm.model_impute(tiny, FORMULA, n_burn=-5, verbose=False)
    with pytest.raises(TypeError, match=r"`selection` must be a dict"):
        pm.model_impute(tiny, FORMULA, selection=["y"], **RUN)


def test_nonconvergence_warning_names_parameter(tiny):
    with pytest.warns(pm.ConvergenceWarning, match=r"PSR .* after burn-in for .*longer burn-in"):
        pm.model_impute(tiny, FORMULA, m=2, n_burn=2, n_iter=5, chains=2, seed=1, verbose=False)


def test_default_order_printed(tiny, capsys):
    pm.model_impute(tiny, FORMULA, m=1, n_burn=1, n_iter=1, chains=1)
    out = capsys.readouterr().out
    assert "predictor models (factored regressions, in this order): x ~ w" in out


# ---------------------------------------------------------------- recovery (small simulation)
def test_recovers_random_slope_of_incomplete_predictor_under_mar():
    """Random slope of x, x MAR on y (listwise deletion is biased): the pooled fixed effects and
    the posterior slope variance land near the truth (generous Monte Carlo tolerance)."""
    rng = np.random.default_rng(2024)
    J, nj = 100, 20
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    u0, u1 = 0.7 * rng.normal(size=J), 0.5 * rng.normal(size=J)
    y = 1 + (1 + u1[g]) * x + u0[g] + rng.normal(size=n)
    xm = x.copy()
    xm[rng.random(n) < stats_norm_cdf(-0.6 + 0.8 * (y - 1))] = np.nan
    df = pd.DataFrame({"g": g, "x": xm, "y": y})
    f = "y ~ x + (1 + x | g)"
    cc = pm.lmer(f, df.dropna(), REML=True)
    assert cc.fixef["x"] < 0.9  # listwise deletion biased
    imp = pm.model_impute(df, f, m=5, n_burn=1500, n_iter=100, chains=1, seed=7, verbose=False)
    tab = pm.pool_estimates(imp.complete().with_(lambda d: pm.lmer(f, d, REML=True))).table
    assert abs(tab.loc["(Intercept)", "Estimate"] - 1.0) < 0.15
    assert abs(tab.loc["x", "Estimate"] - 1.0) < 0.12
    est = imp.estimates
    assert 0.15 < est.loc[("y", "Var(x)"), "Median"] < 0.38  # truth 0.25
    assert 0.3 < est.loc[("y", "Var(Intercept)"), "Median"] < 0.7  # truth 0.49
    assert abs(est.loc[("y", "Residual Var."), "Median"] - 1.0) < 0.1


def stats_norm_cdf(z):
    from scipy.stats import norm

    return norm.cdf(z)


# ---------------------------------------------------------------- latent / observed cluster means
def _context_data(seed=3, J=100, nj=10):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    mu = 0.7 * rng.normal(size=J)
    x = mu[g] + rng.normal(size=n)
    y = 0.5 * (x - mu[g]) + 1.5 * mu[g] + 0.5 * rng.normal(size=J)[g] + rng.normal(size=n)
    return g, x, y


def test_latent_cluster_means_recover_within_and_between_slopes():
    g, x, y = _context_data()
    xm = x.copy()
    xm[np.random.default_rng(0).random(len(x)) < 0.3] = np.nan
    df = pd.DataFrame({"g": g, "x": xm, "y": y})
    imp = pm.model_impute(
        df, "y ~ cwc(x) + cmean(x) + (1 | g)", m=2, n_burn=1500, n_iter=500, seed=1, verbose=False
    )
    assert imp.models == ["y ~ cwc(x) + cmean(x) + (1 | g)", "x ~ x.mean", "x.mean ~ 1"]
    est = imp.estimates
    assert abs(est.loc[("y", "cwc(x)"), "Median"] - 0.5) < 0.1
    assert abs(est.loc[("y", "x.mean"), "Median"] - 1.5) < 0.35
    assert abs(est.loc[("x.mean", "Residual Var."), "Median"] - 0.49) < 0.2
    assert abs(est.loc[("x", "Residual Var."), "Median"] - 1.0) < 0.15
    assert set(imp.acceptance.index) == {"x", "x.mean"}
    assert imp.targets == ["x"]  # the latent mean is not a column of the completed data


def test_observed_cluster_means_of_complete_variable():
    g, x, y = _context_data(J=40)
    y[::6] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    imp = pm.model_impute(
        df,
        "y ~ cwc(x) + cmean(x) + (1 | g)",
        cluster_means="observed",
        m=2,
        n_burn=300,
        n_iter=100,
        seed=1,
        verbose=False,
    )
    assert imp.models == ["y ~ cwc(x) + cmean(x) + (1 | g)"]
    xbar = pd.Series(x).groupby(g).transform("mean")
    fit = pm.lmer("y ~ xc + xbar + (1 | g)", df.assign(xc=x - xbar, xbar=xbar).dropna(), REML=True)
    est = imp.estimates
    assert abs(est.loc[("y", "cwc(x)"), "Median"] - fit.fixef["xc"]) < 0.1
    # an incomplete variable's observed cluster means: the means of its current values
    df2 = df.assign(x=np.where(np.arange(len(x)) % 5 == 0, np.nan, x))
    imp2 = pm.model_impute(
        df2,
        "y ~ cwc(x) + cmean(x) + (1 | g)",
        cluster_means="observed",
        m=2,
        n_burn=300,
        n_iter=100,
        seed=1,
        verbose=False,
    )
    assert imp2.models == ["y ~ cwc(x) + cmean(x) + (1 | g)", "x ~ 1"]
    assert abs(imp2.estimates.loc[("y", "cwc(x)"), "Median"] - fit.fixef["xc"]) < 0.12


# ---------------------------------------------------------------- categorical, single level, delta
def test_binary_outcome_and_ordinal_predictor_probit():
    from scipy.stats import norm

    rng = np.random.default_rng(8)
    J, nj = 60, 15
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    o = np.digitize(0.8 * x + rng.normal(size=n), [-0.5, 0.5, 1.2]).astype(float)  # 0..3
    eta = -0.3 + 0.8 * x + 0.3 * o + 0.5 * rng.normal(size=J)[g]
    y = (rng.random(n) < norm.cdf(eta)).astype(float)
    ym, om = y.copy(), o.copy()
    ym[rng.random(n) < 0.15] = np.nan
    om[rng.random(n) < 0.2] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "o": om, "y": ym})
    imp = pm.model_impute(
        df,
        "y ~ x + o + (1 | g)",
        ordinal=["y", "o"],
        m=2,
        n_burn=1000,
        n_iter=500,
        seed=2,
        verbose=False,
    )
    est = imp.estimates
    assert abs(est.loc[("y", "x"), "Median"] - 0.8) < 0.2
    assert abs(est.loc[("y", "o"), "Median"] - 0.3) < 0.15
    assert ("o", "Threshold 2") in est.index and ("o", "Threshold 3") in est.index
    for d in imp.complete():
        assert set(d["y"].unique()) <= {0.0, 1.0}
        assert set(d["o"].unique()) <= {0.0, 1.0, 2.0, 3.0}
        np.testing.assert_array_equal(d["o"][df.o.notna()], df.o.dropna())


def test_single_level_interaction():
    rng = np.random.default_rng(4)
    n = 800
    x = rng.normal(size=n)
    z = 0.5 * x + rng.normal(size=n)
    y = 1 + x + z + 0.5 * x * z + rng.normal(size=n)
    xm = x.copy()
    xm[rng.random(n) < 0.3] = np.nan
    df = pd.DataFrame({"x": xm, "z": z, "y": y})
    imp = pm.model_impute(df, "y ~ x + z + x:z", m=2, n_burn=800, n_iter=400, seed=3, verbose=False)
    est = imp.estimates
    assert abs(est.loc[("y", "x:z"), "Median"] - 0.5) < 0.12
    assert abs(est.loc[("x", "z"), "Median"] - 0.4) < 0.12  # x ~ z: 0.5 var(x|z)/var(z)... approx
    assert ("y", "Var(Intercept)") not in est.index


def test_delta_analysis_shifts_the_pooled_estimate():
    df = _slope_data(J=30, nj=10, miss_x=0.0)
    df["x"] = df["x"].fillna(0.0)
    tab = pm.delta_analysis(
        df,
        "y ~ x + (1 | g)",
        deltas=[-1.0, 0.0, 1.0],
        term="(Intercept)",
        m=4,
        n_burn=300,
        n_iter=50,
        seed=1,
    )
    assert list(tab.index) == [-1.0, 0.0, 1.0]
    share = df["y"].isna().mean()
    step = tab["Estimate"].diff().dropna().to_numpy()
    np.testing.assert_allclose(step, share, rtol=0.35)  # intercept moves by ~ delta x missing share
    assert (tab["2.5%"] < tab["Estimate"]).all() and (tab["Estimate"] < tab["97.5%"]).all()


def test_polars_in_polars_out_and_summary(tiny):
    pl = pytest.importorskip("polars")
    imp = pm.model_impute(
        pl.from_pandas(tiny), FORMULA, m=2, n_burn=40, n_iter=5, chains=1, seed=1, verbose=False
    )
    d = imp.complete(1)
    assert isinstance(d, pl.DataFrame) and d.columns == list(tiny.columns)
    assert d["x"].null_count() == 0
    text = str(imp.summary())
    assert "Models (factorisation, in order):\n  y ~ x + w + x:w + (1 + x | g)\n  x ~ w" in text
    assert "Metropolis acceptance rates:" in text and "Highest PSR" in text
    assert repr(imp).startswith("<ImputationResult (model): 'y ~ x + w + x:w + (1 + x | g)'")


def test_incomplete_level2_predictor_with_cross_level_interaction():
    rng = np.random.default_rng(12)
    J, nj = 80, 12
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    w2 = rng.normal(size=J)
    x = 0.3 * w2[g] + rng.normal(size=n)
    y = 1 + x + 0.5 * w2[g] + 0.5 * x * w2[g] + 0.6 * rng.normal(size=J)[g] + rng.normal(size=n)
    wm = w2.copy()
    wm[rng.random(J) < 0.25] = np.nan
    xm = x.copy()
    xm[rng.random(n) < 0.2] = np.nan
    df = pd.DataFrame({"g": g, "x": xm, "w": wm[g], "y": y})
    imp = pm.model_impute(
        df, "y ~ x + w + x:w + (1 | g)", m=2, n_burn=1000, n_iter=300, seed=4, verbose=False
    )
    assert imp.models == ["y ~ x + w + x:w + (1 | g)", "x ~ w", "w ~ 1"]
    est = imp.estimates
    assert abs(est.loc[("y", "x:w"), "Median"] - 0.5) < 0.12
    assert abs(est.loc[("y", "w"), "Median"] - 0.5) < 0.2
    assert abs(est.loc[("x", "w"), "Median"] - 0.3) < 0.12
    for d in imp.complete():  # one value per cluster
        assert (d.groupby("g")["w"].nunique() == 1).all()


def test_selection_model_recovers_mnar_outcome():
    """y MNAR on itself: the probit selection model's slope on y and the focal intercept come out
    near the truth, where the MAR model-based imputation is biased."""
    from scipy.stats import norm

    rng = np.random.default_rng(21)
    J, nj = 60, 20
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    y = 1 + x + 0.5 * rng.normal(size=J)[g] + rng.normal(size=n)
    ym = y.copy()
    ym[rng.random(n) < norm.cdf(-0.8 + 0.9 * (y - 1))] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": ym})
    kw = dict(m=2, n_burn=1500, n_iter=500, seed=5, verbose=False)
    mar = pm.model_impute(df, "y ~ x + (1 | g)", **kw).estimates
    mnar = pm.model_impute(df, "y ~ x + (1 | g)", selection={"y": "~ y + x"}, **kw).estimates
    assert mar.loc[("y", "Intercept"), "Median"] < 0.85  # MAR: biased down
    assert abs(mnar.loc[("y", "Intercept"), "Median"] - 1.0) < 0.12
    assert abs(mnar.loc[("y.missing", "y"), "Median"] - 0.9) < 0.25
    assert abs(mnar.loc[("y", "x"), "Median"] - 1.0) < 0.1


def test_trace_plot_and_delta_plot(tiny, tmp_path):
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    imp = pm.model_impute(tiny, FORMULA, m=2, n_burn=20, n_iter=5, chains=2, seed=1, verbose=False)
    fig = imp.plot(tmp_path / "trace.png", parameters=[("y", "x"), ("x", "Residual Var.")])
    assert len(fig.axes) == 2 and (tmp_path / "trace.png").stat().st_size > 0
    assert len(fig.axes[0].lines) == 2  # one per chain
    with pytest.raises(ValueError, match=r"`parameters` \[\('y', 'nope'\)\] not among"):
        imp.plot(parameters=[("y", "nope")])
    tab, ax = pm.delta_analysis(
        tiny, "y ~ x + (1 | g)", deltas=[0.0, 1.0], m=2, n_burn=20, n_iter=5, seed=1, plot=True
    )
    assert list(tab.index) == [0.0, 1.0] and ax.get_xlabel().startswith("delta")


def test_nominal_predictor_multinomial_probit():
    rng = np.random.default_rng(5)
    J, nj = 60, 20
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    z = rng.normal(size=n)
    util = np.column_stack([0.5 * z, -0.3 + 0.8 * z]) + rng.multivariate_normal(
        [0, 0], [[1, 0.5], [0.5, 1]], size=n
    )
    c = np.where((util < 0).all(1), 0, util.argmax(1) + 1)
    y = 1 + z + np.array([0, 1.0, -1.0])[c] + 0.5 * rng.normal(size=J)[g] + rng.normal(size=n)
    cat = pd.Categorical(np.array(["a", "b", "c"])[c])
    cm = cat.copy()
    cm[rng.random(n) < 0.3] = np.nan
    df = pd.DataFrame({"g": g, "z": z, "c": cm, "y": y})
    imp = pm.model_impute(
        df, "y ~ z + c + (1 | g)", m=2, n_burn=600, n_iter=200, seed=1, verbose=False
    )
    assert imp.models == ["y ~ z + c + (1 | g)", "c ~ z (multinomial probit)"]
    est = imp.estimates
    assert abs(est.loc[("y", "cb"), "Median"] - 1.0) < 0.25
    assert abs(est.loc[("y", "cc"), "Median"] + 1.0) < 0.25
    assert abs(est.loc[("c", "z [cb]"), "Median"] - 0.5) < 0.15
    assert abs(est.loc[("c", "z [cc]"), "Median"] - 0.8) < 0.15
    for d in imp.complete():
        assert d["c"].dtype == df["c"].dtype and d["c"].notna().all()
        assert (d["c"][df.c.notna()] == df["c"].dropna()).all()


def test_nominal_level2_predictor_multinomial_probit():
    """An incomplete nominal level-2 variable (one category per cluster, MAR on a complete
    level-2 variable): one set of utilities per cluster, imputed values constant within
    clusters, and the focal and predictor model's coefficients recovered."""
    rng = np.random.default_rng(7)
    J, nj = 200, 5
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    z = rng.normal(size=J)
    util = np.column_stack([0.5 * z, -0.3 + 0.8 * z]) + rng.multivariate_normal(
        [0, 0], [[1, 0.5], [0.5, 1]], size=J
    )
    c = np.where((util < 0).all(1), 0, util.argmax(1) + 1)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + np.array([0, 1.0, -1.0])[c][g] + 0.5 * rng.normal(size=J)[g]
    y = y + rng.normal(size=n)
    cat = pd.Categorical(np.array(["a", "b", "c"])[c][g])
    cm = cat.copy()
    cm[(rng.random(J) < 0.5 / (1 + np.exp(-z)))[g]] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "z": z[g], "c": cm, "y": y})
    imp = pm.model_impute(
        df,
        "y ~ x + c + (1 | g)",
        predictors=["c ~ z"],
        m=4,
        n_burn=600,
        n_iter=100,
        seed=3,
        verbose=False,
    )
    assert imp.models == ["y ~ x + c + (1 | g)", "c ~ z (multinomial probit)"]
    est = imp.estimates
    assert abs(est.loc[("y", "cb"), "Median"] - 1.0) < 0.3
    assert abs(est.loc[("y", "cc"), "Median"] + 1.0) < 0.3
    assert abs(est.loc[("c", "z [cb]"), "Median"] - 0.5) < 0.3
    assert abs(est.loc[("c", "z [cc]"), "Median"] - 0.8) < 0.3
    for d in imp.complete():
        assert d["c"].dtype == df["c"].dtype and d["c"].notna().all()
        assert (d["c"][df.c.notna()] == df["c"].dropna()).all()
        assert d.groupby("g", observed=True)["c"].nunique().max() == 1
        assert d["c"][df.c.isna()].nunique() == 3  # every category is imputed somewhere


def test_nominal_level1_model_of_an_incomplete_level2_predictor():
    """A level-2 variable's full conditional takes the nominal level-1 model's likelihood over
    every row of the cluster (it took one wrong row before, attenuating the coefficient of the
    imputed level-2 variable by about 25%)."""
    rng = np.random.default_rng(201)
    J, nj = 150, 8
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    z = rng.normal(size=J)
    util = np.column_stack([0.8 * z[g], -0.8 * z[g]]) + rng.multivariate_normal(
        [0, 0], [[1, 0.5], [0.5, 1]], size=n
    )
    c = np.where((util < 0).all(1), 0, util.argmax(1) + 1)
    x = rng.normal(size=n)
    y = 1 + 0.5 * x + np.array([0, 1.0, -1.0])[c] + 0.5 * rng.normal(size=J)[g]
    y = y + rng.normal(size=n)
    zm = z.copy()
    zm[rng.random(J) < 0.4] = np.nan
    cat = pd.Categorical(np.array(["a", "b", "c"])[c])
    cat[rng.random(n) < 0.2] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "z": zm[g], "c": cat, "y": y})
    imp = pm.model_impute(
        df,
        "y ~ x + c + (1 | g)",
        predictors=["c ~ z", "z ~ 1"],
        m=4,
        n_burn=500,
        n_iter=50,
        seed=1,
        verbose=False,
    )
    est = imp.estimates
    assert abs(est.loc[("c", "z [cb]"), "Median"] - 0.8) < 0.1
    assert abs(est.loc[("c", "z [cc]"), "Median"] + 0.8) < 0.1
    for d in imp.complete():
        assert d.groupby("g")["z"].nunique().max() == 1
        assert (d["z"][df.z.notna()] == df["z"].dropna()).all()


def test_same_seed_same_output_complex_model():
    """Latent means, an ordinal and a nominal predictor and a selection model: identical draws
    for 1 and 2 threads, and for a repeated run."""
    rng = np.random.default_rng(30)
    J, nj = 15, 8
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    o = rng.integers(0, 3, n).astype(float)
    c = pd.Categorical(np.array(["a", "b", "c"])[rng.integers(0, 3, n)])
    y = x + o + rng.normal(size=n)
    x[::5] = np.nan
    o[::7] = np.nan
    c[::6] = np.nan
    y[::4] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "o": o, "c": c, "y": y})
    kw = dict(
        ordinal=["o"],
        selection={"y": "~ y + o"},
        m=2,
        n_burn=30,
        n_iter=5,
        chains=2,
        seed=9,
        verbose=False,
    )
    f = "y ~ cwc(x) + cmean(x) + o + c + (1 | g)"
    a = pm.model_impute(df, f, n_threads=1, **kw)
    b = pm.model_impute(df, f, n_threads=2, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    np.testing.assert_array_equal(a.draws, b.draws)
    assert a.complete(2).equals(b.complete(2))


def test_auxiliary_variable_makes_mar_on_it_valid():
    """y and x are missing where an auxiliary v (correlated with y, not in the analysis) is
    high: without v the intercept is biased down; with ``auxiliary=["v"]`` the pooled estimates
    are close to the complete data's."""
    from pymitml import studies

    (d,) = studies.design_grid(("ri",), (100,), (20,), (0.3,), rate=0.3)
    df = d.generate(4)
    full = pm.lmer(d.analysis, d.generate(4, complete=True)).fixef
    run = {"m": 10, "n_burn": 600, "n_iter": 40, "seed": 2, "verbose": False}
    with warnings.catch_warnings():
        warnings.simplefilter(
            "ignore"
        )  # short chains: the auxiliary's intercept variance mixes slowly
        plain = pm.model_impute(df, d.focal, **run)
        aux = pm.model_impute(df, d.focal, auxiliary=["v"], **run)
    assert aux.models[1] == "v ~ y + x + z"

    def pooled(imp):
        fits = imp.complete().with_(lambda dd: pm.lmer(d.analysis, dd))
        return pm.pool_estimates(fits).table

    p0, p1 = pooled(plain), pooled(aux)
    z0 = (p0["Estimate"] - full) / p0["Std.Error"]
    z1 = (p1["Estimate"] - full) / p1["Std.Error"]
    assert z0["(Intercept)"] < -1.5, z0
    assert z1.abs().max() < 1.0, z1
    # the auxiliary's model: v depends on y, not on x or z given y
    est = aux.estimates
    assert est.loc[("v", "y"), "2.5%"] > 0.3
    assert est.loc[("v", "x"), "2.5%"] < 0 < est.loc[("v", "x"), "97.5%"]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"auxiliary": ["x"]},
            "auxiliary model 'x ~ y + x' : 'x' is in the focal model",
        ),
        (
            {"auxiliary": ["q"]},
            "auxiliary variable 'q' is not a column of the data.",
        ),
        (
            {"auxiliary": ["w2"], "predictors": ["x ~ w2"]},
            "the predictor model of 'x' (x ~ w2): 'w2' is an auxiliary variable; auxiliary "
            "variables are regressed on the analysis variables and used by no other model.",
        ),
        ({"auxiliary": 3}, "`auxiliary` must be a list of formulas such as ['v'] or ['v ~ y + x']"),
    ],
)
def test_auxiliary_bad_input(tiny, kwargs, message):
    df = tiny.assign(w2=tiny["w"] * 2 + np.arange(len(tiny)) % 3)
    with pytest.raises((ValueError, TypeError)) as err:
        pm.model_impute(df, "y ~ x + (1 | g)", **kwargs, **RUN)
    assert message.replace(" : ", ": ") in str(err.value)


def test_only_the_models_columns_are_checked(tiny):
    """Infinite values or text mixed with numbers in a column the models do not use pass
    through unchanged; in a model column they are errors naming it."""
    df = tiny.assign(note=["a", 1] * (len(tiny) // 2), big=np.inf)
    imp = pm.model_impute(df, "y ~ x + (1 | g)", **RUN)
    out = imp.complete()[0]
    assert out["note"].tolist() == df["note"].tolist() and np.isinf(out["big"]).all()
    with pytest.raises(ValueError, match="'big'"):
        pm.model_impute(df, "y ~ x + big + (1 | g)", **RUN)
    with pytest.warns(pm.exceptions.ScaleWarning, match="'x'"):
        pm.model_impute(tiny.assign(x=tiny["x"] * 1e-9), "y ~ x + (1 | g)", **RUN)
