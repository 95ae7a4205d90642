"""pool_variance_components: per-fit observed-information SEs and pooled values against R.

Reference: r_compat/pool_vc.R (lme4's deviance function at theta(phi), numDeriv::hessian,
Rubin's rules by hand) -> r_compat/pool_vc_ref.json.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool._failures import FitFailureError, FitWarning
from pymitml.pool.variance_components import (
    pool_variance_components,
    transformed_covariance_parameters,
)

RC = Path(__file__).resolve().parents[1] / "r_compat"
REF = json.loads((RC / "pool_vc_ref.json").read_text())["cases"]


def _implist(csv: str, cluster: str) -> pm.MitmlList:
    d = pd.read_csv(RC / csv)
    d[cluster] = d[cluster].astype(str)
    return pm.MitmlList(
        [g.drop(columns=".imp").reset_index(drop=True) for _, g in d.groupby(".imp")]
    )


def _case_fits(name: str) -> list:
    case = REF[name]
    if case["data"].startswith("ddf_"):  # one data set: sleepstudy, Penicillin
        d = pd.read_csv(RC / case["data"])
        for c in ("Subject", "plate", "sample"):
            if c in d:
                d[c] = d[c].astype(str)
        return [pm.lmer(case["formula"], d, REML=case["REML"])]
    cluster = "ID" if "ID" in case["formula"] else "g"
    return list(_implist(case["data"], cluster).with_(lambda x: pm.lmer(case["formula"], x)))


@pytest.fixture(scope="module", params=sorted(REF))
def case(request):
    return request.param, _case_fits(request.param)


def test_per_fit_se_equal_numderiv_hessian_of_lme4_deviance(case):
    name, fits = case
    for fit, ref in zip(fits, REF[name]["fits"], strict=True):
        phi, cov = transformed_covariance_parameters(fit)
        np.testing.assert_allclose(phi.to_numpy(), ref["phi"], rtol=1e-4, atol=1e-5)
        se = np.sqrt(np.diag(cov.to_numpy()))
        np.testing.assert_allclose(se, ref["se"], rtol=1e-4)
        np.testing.assert_allclose(cov.to_numpy(), np.array(ref["V"]), rtol=1e-3, atol=1e-7)


# R's quantity names -> ours, per case
_ROWS = {
    "studentratings_ri": {
        "sd1": "sd(Intercept)|ID",
        "sigma": "sd(Residual)",
        "icc": "ICC|ID",
    },
    "sim_rs": {
        "sd1": "sd(Intercept)|g",
        "sd2": "sd(x)|g",
        "cov12": "Intercept~~x|g",
        "cor12": "cor(Intercept,x)|g",
        "sigma": "sd(Residual)",
        "icc": "ICC|g",
    },
}


@pytest.mark.parametrize("name", sorted(_ROWS))
def test_pooled_rows_equal_rubins_rules_in_r(name):
    res = pool_variance_components(_case_fits(name))
    ref = REF[name]["pooled"]
    tab = res.table
    rows = [_ROWS[name][n] for n in ref["names"]]
    got = tab.loc[rows]
    for ours, theirs in [
        ("Transformed", "qbar"),
        ("Std.Error", "se"),
        ("Estimate", "estimate"),
        ("2.5 %", "lower"),
        ("97.5 %", "upper"),
    ]:
        np.testing.assert_allclose(got[ours].to_numpy(), ref[theirs], rtol=2e-4, atol=2e-5)
    # df is sensitive to b / u_bar: a looser but still failing-capable check
    np.testing.assert_allclose(got["df"].to_numpy(), ref["df"], rtol=5e-3)


def test_table_is_internally_consistent():
    fits = _case_fits("sim_rs")
    res = pool_variance_components(fits)
    tab = res.table
    # variance = sd^2 for the estimate and both limits (one pooled parameter)
    for var, sd in [
        ("Intercept~~Intercept|g", "sd(Intercept)|g"),
        ("Residual~~Residual", "sd(Residual)"),
    ]:
        np.testing.assert_allclose(
            tab.loc[var, ["Estimate", "2.5 %", "97.5 %"]].to_numpy(dtype=float),
            tab.loc[sd, ["Estimate", "2.5 %", "97.5 %"]].to_numpy(dtype=float) ** 2,
        )
    # Average is mitml's extra-parameter mean for the quantities it has
    mitml = pm.pool_estimates(fits, extra_pars=True).extra["Estimate"]
    for key in [
        "Intercept~~Intercept|g",
        "x~~x|g",
        "Intercept~~x|g",
        "Residual~~Residual",
        "ICC|g",
    ]:
        np.testing.assert_allclose(tab.loc[key, "Average"], mitml[key], rtol=1e-10)
    assert (tab["2.5 %"] < tab["Estimate"]).all() and (tab["Estimate"] < tab["97.5 %"]).all()
    assert (
        tab.loc["ICC|g", "Scale"] == "logit"
        and tab.loc["cor(Intercept,x)|g", "Scale"] == "Fisher z"
    )
    assert res.m == 5 and res.per_imputation.shape == (5, len(tab))
    assert "Pooled variance components from 5 imputed data sets" in str(res)
    # the level changes the interval, not the estimate
    wide = pool_variance_components(fits, level=0.99).table
    assert (wide["0.5 %"] < tab["2.5 %"]).all()
    np.testing.assert_allclose(wide["Estimate"], tab["Estimate"])
    # Barnard-Rubin df with df_com are smaller than Rubin's
    br = pool_variance_components(fits, df_com=50).table
    assert (br["df"] < tab["df"]).all() and (br["df"] < 50).all()


def test_icc_interval_delta_method_matches_direct_linear_combination():
    fit = _case_fits("studentratings_ri")[0]
    phi, cov = transformed_covariance_parameters(fit)
    g = np.array([2.0, -2.0])  # logit ICC = 2 log sd0 - 2 log sigma
    res = pool_variance_components(_case_fits("studentratings_ri"))
    se1 = res.per_imputation_se.loc[1, "ICC|ID"]
    np.testing.assert_allclose(se1, np.sqrt(g @ cov.to_numpy() @ g), rtol=1e-12)
    icc = fit.extra_pars["ICC|ID"]
    np.testing.assert_allclose(
        res.per_imputation.loc[1, "ICC|ID"], np.log(icc / (1 - icc)), rtol=1e-10
    )


def _singular_list() -> pm.MitmlList:
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(30), 6)
    frames = []
    for i in range(4):
        x = rng.normal(size=g.size)
        e = rng.normal(size=g.size)
        if i == 2:  # imputation 3: within-cluster noise only, demeaned: a boundary fit
            e = e - pd.Series(e).groupby(g).transform("mean").to_numpy()
            u = 0.0
        else:
            u = rng.normal(size=30)[g]
        frames.append(pd.DataFrame({"y": x + u + e, "x": x, "g": g}))
    return pm.MitmlList(frames)


def test_singular_fits_refused_then_dropped_explicitly():
    fits = _singular_list().with_(lambda d: pm.lmer("y ~ x + (1 | g)", d))
    assert fits.warned == [2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        with pytest.raises(FitFailureError, match="imputations 3"):
            pool_variance_components(fits)
    with pytest.warns(FitWarning, match="dropped from pooling"):
        res = pool_variance_components(fits, on_failure="drop_warned")
    assert res.m == 3 and res.fit_report.dropped == (2,)
    assert "imputation 3 (warned, dropped)" in str(res)
    with pytest.raises(ValueError, match="boundary"):
        transformed_covariance_parameters(fits[2])


def test_bad_input():
    fits = _case_fits("studentratings_ri")
    with pytest.raises(ValueError, match="`level`"):
        pool_variance_components(fits, level=95)
    with pytest.raises(ValueError, match="`df_com`"):
        pool_variance_components(fits, df_com=-1)
    with pytest.raises(TypeError, match="pm.lmer"):
        pool_variance_components([(np.zeros(1), np.eye(1))] * 3)
    with pytest.raises(TypeError, match="list of pm.lmer fits"):
        pool_variance_components(fits[0])
    assert pm.pool_variance_components is pool_variance_components
