"""Rights & Sterba's R^2 decomposition: by-hand formulas, Nakagawa (performance) identities,
recovery of the population decomposition, the non-centred case, pooling and bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool import r2_rights_sterba


def _data(J=60, n=15, seed=1, centred=True):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    x = rng.standard_normal(J * n) + (0 if centred else 0.7 * rng.standard_normal(J)[g])
    xc = x - pd.Series(x).groupby(g).transform("mean").to_numpy() if centred else x
    w = rng.standard_normal(J)[g]
    u0 = np.sqrt(0.3) * rng.standard_normal(J)
    u1 = np.sqrt(0.1) * rng.standard_normal(J)
    y = 1 + 0.5 * xc + 0.4 * w + u0[g] + u1[g] * xc + np.sqrt(0.6) * rng.standard_normal(J * n)
    return pd.DataFrame({"g": g, "y": y, "x": xc, "w": w})


def test_measures_equal_the_formulas_by_hand():
    d = _data()
    fit = pm.lmer("y ~ x + w + (1 + x | g)", d)
    r = r2_rights_sterba(fit)
    b = fit.fixef
    T = fit.cov_random.to_numpy()
    s2 = fit.sigma**2
    f1 = b["x"] ** 2 * d["x"].var(ddof=1)
    f2 = b["w"] ** 2 * d["w"].var(ddof=1)
    W = np.column_stack([np.ones(len(d)), d["x"]])
    mu = W.mean(axis=0)
    S = np.cov(W.T, ddof=0)
    v = np.trace(T @ S)
    m = mu @ T @ mu
    tot = f1 + f2 + v + m + s2
    want = {
        ("total", "f1"): f1 / tot,
        ("total", "f2"): f2 / tot,
        ("total", "v"): v / tot,
        ("total", "m"): m / tot,
        ("total", "fvm"): (f1 + f2 + v + m) / tot,
        ("within", "f1"): f1 / (f1 + v + s2),
        ("within", "v"): v / (f1 + v + s2),
        ("between", "f2"): f2 / (f2 + m),
        ("between", "m"): m / (f2 + m),
    }
    for k, val in want.items():
        assert r[k] == pytest.approx(val, rel=1e-10), k
    # the total decomposition sums to one with the residual share
    parts = r[[("total", k) for k in ("f1", "f2", "v", "m")]].sum()
    assert parts + s2 / tot == pytest.approx(1.0, rel=1e-12)


def test_total_measures_are_nakagawas_r2():
    """R2_t(f) is Nakagawa's marginal R^2 and R2_t(fvm) the conditional one (both divisors as
    performance::r2_nakagawa), centred or not."""
    for centred in (True, False):
        d = _data(centred=centred, seed=3)
        fit = pm.lmer("y ~ x + w + (1 + x | g)", d)
        r = r2_rights_sterba(fit)
        ns = pm.pool.r2_nakagawa(fit)
        assert r[("total", "f")] == pytest.approx(ns["marginal"], rel=1e-12)
        assert r[("total", "fvm")] == pytest.approx(ns["conditional"], rel=1e-12)


def test_recovers_the_population_decomposition():
    # 2000 clusters: the SE of the slopes (~0.008) moves each share by < 0.004 per SE
    d = _data(J=2000, n=20, seed=5)
    r = r2_rights_sterba(pm.lmer("y ~ x + w + (1 + x | g)", d))
    # population: f1 = 0.25, f2 = 0.16, v = 0.1 (Var x_w ~ 0.95 after centring), m = 0.3, s2 = 0.6
    vx = (20 - 1) / 20
    f1, f2, v, m, s2 = 0.25 * vx, 0.16, 0.1 * vx, 0.3, 0.6
    tot = f1 + f2 + v + m + s2
    assert r[("total", "f1")] == pytest.approx(f1 / tot, abs=0.015)
    assert r[("total", "f2")] == pytest.approx(f2 / tot, abs=0.02)
    assert r[("total", "v")] == pytest.approx(v / tot, abs=0.01)
    assert r[("total", "m")] == pytest.approx(m / tot, abs=0.02)
    assert r[("within", "f1")] == pytest.approx(f1 / (f1 + v + s2), abs=0.015)
    assert r[("between", "m")] == pytest.approx(m / (f2 + m), abs=0.04)


def test_predictor_varying_at_both_levels_gives_total_measures_only():
    d = _data(centred=False)
    r = r2_rights_sterba(pm.lmer("y ~ x + w + (1 + x | g)", d))
    assert r.attrs["mixed"] == ("x",)
    assert list(r.index) == [("total", k) for k in ("f", "v", "m", "fv", "fvm")]


@pytest.fixture(scope="module")
def fits():
    d = _data(J=40, n=10, seed=7)
    rng = np.random.default_rng(8)
    d.loc[rng.random(len(d)) < 0.2, "y"] = np.nan
    imp = pm.pan_impute(
        d, "y ~ 1 + x + w + (1 + x|g)", m=5, n_burn=300, n_iter=30, seed=2, progress=False
    )
    return imp.complete().with_(lambda dd: pm.lmer("y ~ x + w + (1 + x | g)", dd))


def test_pooled_decomposition(fits):
    res = pm.pool_r2_rights_sterba(fits)
    tab = res.table
    assert res.m == 5 and res.mixed == ()
    per = res.per_imputation
    logit = np.log(per / (1 - per))
    want = 1 / (1 + np.exp(-logit.mean(axis=0)))
    np.testing.assert_allclose(tab["Estimate"], want, rtol=1e-12)
    assert (tab["Min"] <= tab["Estimate"]).all() and (tab["Estimate"] <= tab["Max"]).all()
    assert (tab["2.5 %"] < tab["Estimate"]).all() and (tab["Estimate"] < tab["97.5 %"]).all()
    assert ((tab["FMI"] >= 0) & (tab["FMI"] < 1)).all()
    assert "Rights & Sterba R2 pooled over 5 imputed data sets" in str(res)
    assert ("between", "m") in tab.index and ("within", "f1v") in tab.index


def test_delta_method_se_matches_a_simulation_spread():
    """The per-fit standard error of logit R2_t(f) is close to the sampling spread of the
    estimate over data sets drawn from one model."""
    from pymitml.pool.r2_rights_sterba import _layout, _logit_se

    ests, ses = [], []
    for s in range(40):
        fit = pm.lmer("y ~ x + w + (1 + x | g)", _data(J=50, n=10, seed=100 + s))
        r = r2_rights_sterba(fit)[("total", "f")]
        ests.append(np.log(r / (1 - r)))
        ses.append(_logit_se(fit, _layout(fit), [("total", "f")])[0])
    ratio = np.mean(ses) / np.std(ests, ddof=1)
    # the delta SE conditions on X while the spread also varies X: allow for that (and 40 reps)
    assert 0.6 < ratio < 1.4, ratio


def test_structural_zeros_are_left_out():
    d = _data(seed=9)
    rng = np.random.default_rng(1)
    d.loc[rng.random(len(d)) < 0.1, "y"] = np.nan
    imp = pm.pan_impute(
        d, "y ~ 1 + x + w + (1|g)", m=2, n_burn=100, n_iter=10, seed=1, progress=False
    )
    res = pm.pool_r2_rights_sterba(imp.complete().with_(lambda dd: pm.lmer("y ~ x + (1 | g)", dd)))
    idx = list(res.table.index)
    assert ("total", "v") not in idx and ("total", "f2") not in idx and ("between", "m") not in idx
    assert ("total", "f1") in idx and ("within", "f1") in idx


def test_bad_input():
    d = _data(J=20, n=5)
    d["h"] = np.random.default_rng(2).integers(0, 7, len(d))
    d["y"] += np.random.default_rng(3).standard_normal(7)[d["h"]]
    multi = pm.lmer("y ~ x + (1 | g) + (1 | h)", d)
    with pytest.raises(
        ValueError, match=r"several random-effect terms, for grouping factors \(g, h\)"
    ):
        pm.pool_r2_rights_sterba([multi, multi])
    with pytest.raises(
        ValueError, match="pooling needs fits from at least 2 imputed data sets; got 1"
    ):
        pm.pool_r2_rights_sterba([pm.lmer("y ~ x + (1 | g)", d)])
    with pytest.raises(TypeError, match="`fits` must be a list of pm.lmer fits"):
        pm.pool_r2_rights_sterba(pm.lmer("y ~ x + (1 | g)", d))
    d["yb"] = (d["y"] > 1).astype(int)
    gf = pm.glmer("yb ~ x + (1 | g)", d, family="binomial")
    with pytest.raises(TypeError, match="needs linear mixed-model fits from pm.lmer; got a"):
        pm.pool_r2_rights_sterba([gf, gf])
