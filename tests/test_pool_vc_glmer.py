"""pool_variance_components with glmer fits: per-fit SEs from the Hessian of the Laplace /
quadrature deviance in (phi, beta) jointly, and pooled rows, against R.

Reference: r_compat/pool_vc_glmer.R (lme4's glmer(devFunOnly = TRUE) at c(theta(phi), beta),
numDeriv::hessian, Rubin's rules by hand) -> r_compat/pool_vc_glmer_ref.json.
"""

from __future__ import annotations

import json
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
REF = json.loads((RC / "pool_vc_glmer_ref.json").read_text())["cases"]


def _data(name: str) -> pd.DataFrame:
    d = pd.read_csv(RC / name)
    for c in ("INDEX", "BROOD", "LOCATION", "YEAR"):
        if c in d:
            d[c] = d[c].astype(str)
    if "herd" in d:
        d["herd"] = d["herd"].astype(str)
        d["period"] = d["period"].astype(str)
    return d


def _fit(case: dict, d: pd.DataFrame):
    return pm.glmer(case["formula"], d, family=case["family"], link=case["link"], nAGQ=case["nAGQ"])


def _case_fits(name: str) -> list:
    case = REF[name]
    d = _data(case["data"])
    if ".imp" not in d:
        return [_fit(case, d)]
    return [_fit(case, g.drop(columns=".imp").reset_index(drop=True)) for _, g in d.groupby(".imp")]


@pytest.fixture(scope="module", params=sorted(REF))
def case(request):
    return request.param, _case_fits(request.param)


@pytest.fixture(scope="module")
def sim() -> pd.DataFrame:
    return _data("glmer_sim.csv")


def test_per_fit_se_equal_numderiv_hessian_of_lme4_deviance(case):
    name, fits = case
    for fit, ref in zip(fits, REF[name]["fits"], strict=True):
        phi, cov = transformed_covariance_parameters(fit)
        assert "log sigma" not in phi.index
        np.testing.assert_allclose(phi.to_numpy(), ref["phi"], rtol=1e-4, atol=1e-5)
        se = np.sqrt(np.diag(cov.to_numpy()))
        np.testing.assert_allclose(se, ref["se"], rtol=1e-4)
        v_ref = np.array(ref["V"], dtype=float).reshape(cov.shape)  # JSON unboxes 1 x 1
        np.testing.assert_allclose(cov.to_numpy(), v_ref, rtol=1e-3, atol=1e-7)


def test_joint_hessian_differs_from_profiling_beta_at_its_mode(case):
    # the phi block of the inverse joint Hessian is larger than the inverse of the phi block
    # alone (beta held at its estimate): uncertainty of beta is carried into Var(phi)
    name, fits = case
    fit = fits[0]
    phi, cov = transformed_covariance_parameters(fit)
    from pymitml.lmm.ddf_numderiv import hessian
    from pymitml.lmm.fit import LmerFit
    from pymitml.lmm.glmer_optimize import GlmerObjective
    from pymitml.pool.variance_components import _terms_and_values, _varpar

    terms = _terms_and_values(fit)[0]
    obj = GlmerObjective(fit._design, fit.nAGQ)
    beta = fit.fixef.to_numpy()

    def dev(x):
        return obj.stage2(np.r_[_varpar(x, terms, LmerFit.theta_from_cov)[:-1], beta])

    cond = 2.0 * np.linalg.inv(hessian(dev, phi.to_numpy()))
    assert np.all(np.diag(cov.to_numpy()) >= np.diag(cond) * (1 - 1e-6))


_ROWS = {"sd1": "sd(Intercept)|g", "icc": "ICC|g"}


def test_pooled_rows_equal_rubin_by_hand_in_r():
    fits = _case_fits("implist_ri")
    res = pool_variance_components(fits)
    tab = res.table
    ref = REF["implist_ri"]["pooled"]
    for i, rname in enumerate(ref["names"]):
        row = tab.loc[_ROWS[rname]]
        for col, key in (
            ("Transformed", "qbar"),
            ("Std.Error", "se"),
            ("df", "df"),
            ("Estimate", "estimate"),
            ("2.5 %", "lower"),
            ("97.5 %", "upper"),
        ):
            np.testing.assert_allclose(row[col], ref[key][i], rtol=1e-4, err_msg=f"{rname} {col}")
    assert "sd(Residual)" not in tab.index and "Residual~~Residual" not in tab.index
    assert list(tab.index) == [
        "Intercept~~Intercept|g",
        "sd(Intercept)|g",
        "ICC|g",
    ]
    # mitml's average of the point values beside the pooled estimate
    sds = [float(np.sqrt(f.varcorr["vcov"].iloc[0])) for f in fits]
    np.testing.assert_allclose(tab.loc["sd(Intercept)|g", "Average"], np.mean(sds), rtol=1e-12)


@pytest.mark.parametrize(
    ("link", "c"), [("logit", np.pi**2 / 3.0), ("probit", 1.0)], ids=["logit", "probit"]
)
def test_latent_icc_constant_per_link(sim, link, c):
    fit = pm.glmer("yp ~ x + (1 | g)", sim, family="binomial", link=link)
    tab = pool_variance_components([fit, fit]).table  # B = 0: the complete-data values
    tau = float(fit.varcorr["vcov"].iloc[0])
    np.testing.assert_allclose(tab.loc["ICC|g", "Estimate"], tau / (tau + c), rtol=1e-10)
    assert tab.loc["ICC|g", "RIV"] == 0.0
    se_sd = tab.loc["sd(Intercept)|g", "Std.Error"]  # logit ICC = 2 log sd - log c
    np.testing.assert_allclose(tab.loc["ICC|g", "Std.Error"], 2.0 * se_sd, rtol=1e-12)


def test_no_icc_for_poisson_or_cloglog(sim):
    pois = pm.glmer("yc ~ x + f + (1 | g)", sim, family="poisson")
    clog = pm.glmer("yp ~ x + (1 | g)", sim, family="binomial", link="cloglog")
    for fit in (pois, clog):
        tab = pool_variance_components([fit, fit]).table
        assert list(tab.index) == ["Intercept~~Intercept|g", "sd(Intercept)|g"]


def test_random_slope_rows():
    fit = _case_fits("bin_slope")[0]
    tab = pool_variance_components([fit, fit]).table
    assert list(tab.index) == [
        "Intercept~~Intercept|g",
        "sd(Intercept)|g",
        "x~~x|g",
        "sd(x)|g",
        "Intercept~~x|g",
        "cor(Intercept,x)|g",
        "ICC|g",
    ]
    ref = REF["bin_slope"]["fits"][0]
    np.testing.assert_allclose(
        tab.loc[["sd(Intercept)|g", "sd(x)|g", "cor(Intercept,x)|g"], "Std.Error"],
        ref["se"],
        rtol=1e-4,
    )


def test_nagq0_refused(sim):
    fit = pm.glmer("yp ~ x + (1 | g)", sim, family="binomial", nAGQ=0)
    with pytest.raises(ValueError, match="nAGQ >= 1 .*Refit with nAGQ=1"):
        transformed_covariance_parameters(fit)


def test_singular_glmer_fit_refused_then_dropped(sim):
    import warnings

    ok = pm.glmer("yp ~ x + (1 | g)", sim, family="binomial")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sing = pm.glmer("y0 ~ x + (1 | g)", sim, family="binomial")
    assert sing.singular
    with pytest.raises(FitFailureError, match="boundary"), pytest.warns(FitWarning):
        pool_variance_components([ok, ok, sing])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = pool_variance_components([ok, ok, sing], on_failure="drop_warned")
    assert res.m == 2


def test_lmer_and_glmer_fits_not_mixed(sim):
    g = pm.glmer("yp ~ x + (1 | g)", sim, family="binomial")
    lm = pm.lmer("yp ~ x + (1 | g)", sim)
    with pytest.raises(ValueError, match="different random parts"):
        pool_variance_components([g, lm])
