"""model_impute: invariants, recovery of a random-slope / interaction design, exact errors."""

from __future__ import annotations

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
