"""pymitml.pool_estimates against mitml::testEstimates.

Reference numbers: r_compat/pool_estimates.R -> r_compat/pool_estimates_ref.json, computed by R on the
completed data sets in r_compat/pool_studentratings_m5.csv (mitml's studentratings, panImpute, m = 5).
Pooling is checked three ways: from R's own per-imputation estimates (independent of any fitter),
from statsmodels OLS vs R's lm, and from pymitml's lmer vs R's lmer.
"""

from __future__ import annotations

import dataclasses
import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool import COLUMNS, PooledEstimates, extract_estimates, pool_estimates
from pymitml.pool._extract import stack_estimates, variance_components

ROOT = Path(__file__).resolve().parents[1]
REF = json.loads((ROOT / "r_compat" / "pool_estimates_ref.json").read_text())["cases"]
MODEL_CASES = [
    "lm",
    "lm_dfcom",
    "lm_dfcom_vec",
    "lmer_ri",
    "lmer_ri_ml_dfcom",
    "lmer_rs",
    "lmer_factors",
]
LMER_CASES = ["lmer_ri", "lmer_ri_ml_dfcom", "lmer_rs", "lmer_factors"]
RTOL = 1e-6
# R computes p = 2 * (1 - pt(|t|, df)), which is exact only to ~1e-16 absolute (0 for tiny p);
# pymitml uses the survival function, so tiny p-values are compared on an absolute scale.
P_ATOL = 1e-13


def r_table(case: dict, key: str = "table") -> pd.DataFrame:
    t = {c: list(np.atleast_1d(v)) for c, v in case[key].items()}  # JSON unboxes length-1 vectors
    return pd.DataFrame({c: t[c] for c in t if c != "names"}, index=t["names"])


def df_com_of(case: dict):
    d = case["df_com"]
    return None if d is None else (d[0] if len(d) == 1 else np.array(d))


def assert_table_close(
    got: pd.DataFrame, want: pd.DataFrame, rtol: float = RTOL, p_atol: float = P_ATOL
) -> None:
    assert list(got.index) == list(want.index)
    assert list(got.columns) == list(want.columns)
    for c in want.columns:
        atol = p_atol if c == "P(>|t|)" else 0.0
        np.testing.assert_allclose(
            got[c].to_numpy(), want[c].to_numpy(), rtol=rtol, atol=atol, err_msg=f"column {c}"
        )


def r_fits(case: dict) -> list[SimpleNamespace]:
    """Duck-typed lmer fits holding R's own fixef, vcov, VarCorr table and sigma."""
    names = case["names"]
    out = []
    for q, u, vc, s in zip(case["qhat"], case["uhat"], case["varcorr"], case["sigma"]):
        varcorr = pd.DataFrame(vc)
        out.append(
            SimpleNamespace(
                fixef=pd.Series(q, index=names),
                vcov=pd.DataFrame(u, index=names, columns=names),
                varcorr=varcorr,
                sigma=s,
            )
        )
    return out


@pytest.fixture(scope="module")
def implist() -> pm.MitmlList:
    long = pd.read_csv(ROOT / "r_compat" / "pool_studentratings_m5.csv")
    long["FedState"] = pd.Categorical(long["FedState"], categories=["B", "SH"])
    return pm.long_to_mitml_list(long, split=".imp")


# ------------------------------------------------------------------------------------------
# pooling R's own estimates: the arithmetic, independent of the fitter
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", MODEL_CASES)
def test_qhat_uhat_from_R_fits_match_testEstimates(name):
    case = REF[name]
    qhat = pd.DataFrame(case["qhat"], columns=case["names"])
    uhat = np.array(case["uhat"])
    est = pool_estimates(qhat=qhat, uhat=uhat, df_com=df_com_of(case))
    assert_table_close(est.table, r_table(case))
    assert est.m == 5


@pytest.mark.parametrize("name", LMER_CASES)
def test_extra_pars_from_R_varcorr_match_testEstimates(name):
    case = REF[name]
    est = pool_estimates(r_fits(case), extra_pars=True, df_com=df_com_of(case))
    assert_table_close(est.table, r_table(case))
    want = r_table(case, "extra")
    assert list(est.extra.index) == list(want.index)  # mitml's names and order
    assert list(est.extra.columns) == ["Estimate"]
    np.testing.assert_allclose(est.extra["Estimate"], want["Estimate"], rtol=RTOL)


def test_random_slope_extra_names_follow_mitml():
    est = pool_estimates(r_fits(REF["lmer_rs"]), extra_pars=True)
    assert list(est.extra.index) == [
        "Intercept~~Intercept|ID",
        "Cogn10~~Cogn10|ID",
        "Intercept~~Cogn10|ID",
        "Residual~~Residual",
        "ICC|ID",
    ]


@pytest.mark.parametrize(
    "name", ["lm", "lm_dfcom", "lmer_ri", "lmer_rs", "lmer_ri_ml_dfcom", "qhat_only", "uhat_diag"]
)
def test_printout_matches_mitml(name):
    case = REF[name]
    if name in LMER_CASES:
        est = pool_estimates(r_fits(case), extra_pars=True, df_com=df_com_of(case))
    elif name == "qhat_only":
        q = REF["lm"]["qhat"]
        est = pool_estimates(qhat=pd.DataFrame(q, columns=REF["lm"]["names"]))
    elif name == "uhat_diag":
        q = pd.DataFrame(REF["lm"]["qhat"], columns=REF["lm"]["names"])
        u = np.array([np.diag(m) for m in np.array(REF["lm"]["uhat"])])
        est = pool_estimates(qhat=q, uhat=u, df_com=746)
    else:
        q = pd.DataFrame(case["qhat"], columns=case["names"])
        est = pool_estimates(qhat=q, uhat=np.array(case["uhat"]), df_com=df_com_of(case))
        if name == "lm":  # R printed lm with extra.pars = TRUE: the residual variance block
            est = dataclasses.replace(est, _extra=r_table(case, "extra")[["Estimate"]])
    got = str(est).splitlines()
    want = case["print"].splitlines()
    assert got[3].startswith("pool_estimates(")
    del got[3], want[3]  # the Call line differs by design
    assert got == want


def test_qhat_only_and_diagonal_uhat_match_R():
    q = np.array(REF["lm"]["qhat"])
    est = pool_estimates(qhat=q)
    assert list(est.table.columns) == ["Estimate"]
    np.testing.assert_allclose(
        est.table["Estimate"], r_table(REF["qhat_only"])["Estimate"], rtol=RTOL
    )
    assert list(est.table.index) == ["Parameter.1", "Parameter.2", "Parameter.3", "Parameter.4"]
    u = np.array([np.diag(m) for m in np.array(REF["lm"]["uhat"])])  # (m, k) variances
    est = pool_estimates(qhat=list(q), uhat=list(u), df_com=746)  # lists of rows
    want = r_table(REF["uhat_diag"]).set_axis(est.table.index)
    assert_table_close(est.table, want)
    assert est.total_covariance is None


def test_confint_matches_R():
    case = REF["lmer_ri"]
    est = pool_estimates(r_fits(case))
    ci = est.confint(level=0.9)
    assert list(ci.columns) == ["5 %", "95 %"]
    np.testing.assert_allclose(ci["5 %"], case["confint90"]["lower"], rtol=RTOL)
    np.testing.assert_allclose(ci["95 %"], case["confint90"]["upper"], rtol=RTOL)
    assert list(est.confint().columns) == ["2.5 %", "97.5 %"]
    assert list(est.confint(0.999).columns) == ["0.05 %", "99.95 %"]
    np.testing.assert_allclose(est.confint(parm=["SES"]).to_numpy(), est.confint().loc[["SES"]])


# ------------------------------------------------------------------------------------------
# real fits in Python on the same completed data
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["lm", "lm_dfcom", "lm_dfcom_vec"])
def test_statsmodels_ols_matches_R_lm(implist, name):
    smf = pytest.importorskip("statsmodels.formula.api")
    case = REF[name]
    fits = implist.with_(lambda d: smf.ols(case["formula"], d).fit())
    est = pool_estimates(fits, extra_pars=case["extra_pars"], df_com=df_com_of(case))
    want = r_table(case).rename(index={"(Intercept)": "Intercept"})
    assert_table_close(est.table, want)
    if case["extra_pars"]:
        np.testing.assert_allclose(
            est.extra.loc["Residual~~Residual", "Estimate"],
            r_table(case, "extra")["Estimate"].iloc[0],
            rtol=RTOL,
        )


def _native_fits(implist, case):
    from pymitml.lmm import lmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return implist.with_(lambda d: lmer(case["formula"], d, REML=case["REML"]))


@pytest.mark.parametrize("name", ["lmer_ri", "lmer_ri_ml_dfcom", "lmer_factors"])
def test_native_lmer_matches_R(implist, name):
    case = REF[name]
    fits = _native_fits(implist, case)
    # same optimum as lme4 (these random-intercept fits converge cleanly in R)
    np.testing.assert_allclose([f.loglik for f in fits], case["loglik"], rtol=1e-9)
    est = pool_estimates(fits, extra_pars=True, df_com=df_com_of(case))
    assert_table_close(est.table, r_table(case))
    want = r_table(case, "extra")
    assert list(est.extra.index) == list(want.index)
    np.testing.assert_allclose(est.extra["Estimate"], want["Estimate"], rtol=RTOL)


def test_native_lmer_random_slope_reaches_lme4_likelihood(implist):
    # lme4 warns "failed to converge" / "singular" on some of these fits, so only the likelihood
    # is compared (pymitml's must be at least as high); pooling itself is checked from R's
    # estimates in test_extra_pars_from_R_varcorr_match_testEstimates.
    case = REF["lmer_rs"]
    fits = _native_fits(implist, case)
    assert np.all(np.array([f.loglik for f in fits]) >= np.array(case["loglik"]) - 1e-6)
    est = pool_estimates(fits, extra_pars=True)
    assert list(est.extra.index) == list(r_table(case, "extra").index)


def test_statsmodels_mixedlm_pools_fixed_effects_only(implist):
    smf = pytest.importorskip("statsmodels.formula.api")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fits = implist[:2].with_(
            lambda d: smf.mixedlm("ReadAchiev ~ ReadDis + SES", d, groups="ID").fit(reml=True)
        )
        est = pool_estimates(fits, extra_pars=True)
    assert list(est.table.index) == ["Intercept", "ReadDis", "SES"]
    assert list(est.extra.index) == ["Intercept~~Intercept|ID", "Residual~~Residual", "ICC|ID"]
    vc = est.extra["Estimate"]
    assert vc["ICC|ID"] == pytest.approx(
        np.mean([f.cov_re.iloc[0, 0] / (f.cov_re.iloc[0, 0] + f.scale) for f in fits])
    )


# ------------------------------------------------------------------------------------------
# rules and invariants
# ------------------------------------------------------------------------------------------
def test_rubin_rules_by_hand():
    q = np.array([[1.0, 2.0], [1.5, 2.5], [0.7, 1.6]])
    u = np.array([[[0.04, 0.01], [0.01, 0.09]]] * 3)
    est = pool_estimates(qhat=q, uhat=u, df_com=20)
    m = 3
    b = np.cov(q.T, ddof=1)
    t = u[0] + (1 + 1 / m) * b
    r = (1 + 1 / m) * np.diag(b) / np.diag(u[0])
    vm = (m - 1) * (1 + 1 / r) ** 2
    vobs = (1 - r / (r + 1)) * (21 / 23) * 20
    v = 1 / (1 / vm + 1 / vobs)
    tab = est.table
    np.testing.assert_allclose(tab["Std.Error"], np.sqrt(np.diag(t)))
    np.testing.assert_allclose(tab["df"], v)
    np.testing.assert_allclose(tab["FMI"], (r + 2 / (v + 3)) / (r + 1))
    np.testing.assert_allclose(est.total_covariance.to_numpy(), t)


def test_no_between_imputation_variance_gives_complete_data_inference():
    q = np.array([[1.0, 2.0]] * 4)
    u = np.array([[0.25, 1.0]] * 4)
    tab = pool_estimates(qhat=q, uhat=u).table
    assert np.all(tab["RIV"] == 0) and np.all(np.isinf(tab["df"])) and np.all(tab["FMI"] == 0)
    np.testing.assert_allclose(tab["P(>|t|)"], 2 * (1 - __import__("scipy").stats.norm.cdf([2, 2])))
    tab = pool_estimates(qhat=q, uhat=u, df_com=30).table  # df -> df_com's v_obs
    np.testing.assert_allclose(tab["df"], 31 / 33 * 30)


def test_huge_df_com_equals_unadjusted():
    case = REF["lm"]
    q, u = np.array(case["qhat"]), np.array(case["uhat"])
    a = pool_estimates(qhat=q, uhat=u).table
    b = pool_estimates(qhat=q, uhat=u, df_com=1e12).table
    np.testing.assert_allclose(b["df"], a["df"], rtol=1e-6)


def test_tuple_and_dict_fits_and_custom_adapter():
    case = REF["lm_dfcom"]
    names = case["names"]
    pairs = [(pd.Series(q, index=names), np.array(u)) for q, u in zip(case["qhat"], case["uhat"])]
    dicts = [{"coef": dict(zip(names, q)), "vcov": u} for q, u in zip(case["qhat"], case["uhat"])]
    for fits in (pairs, dicts):
        assert_table_close(pool_estimates(fits, df_com=746).table, r_table(case))

    class MyFit:
        def __init__(self, q, u):
            self.q, self.u = q, u

    @extract_estimates.register(MyFit)
    def _(fit):
        return pd.Series(fit.q, index=names), pd.DataFrame(fit.u, index=names, columns=names)

    fits = [MyFit(q, u) for q, u in zip(case["qhat"], case["uhat"])]
    assert_table_close(pool_estimates(fits, df_com=746).table, r_table(case))
    with pytest.warns(UserWarning, match="variance components not supported.*MyFit"):
        assert pool_estimates(fits, extra_pars=True).extra is None


def test_stack_estimates_shapes():
    case = REF["lmer_rs"]
    names, q, u = stack_estimates(r_fits(case))
    assert names == case["names"] and q.shape == (5, 3) and u.shape == (5, 3, 3)
    vc = variance_components(r_fits(case)[0])
    assert vc.index[-1] == "ICC|ID"


def test_result_is_immutable_and_tidy():
    est = pool_estimates(r_fits(REF["lmer_ri"]))
    with pytest.raises(dataclasses.FrozenInstanceError):
        est.m = 3
    tab = est.table
    tab.iloc[0, 0] = -1.0
    assert est.table.iloc[0, 0] != -1.0
    assert isinstance(est, PooledEstimates) and tuple(est.table.columns) == COLUMNS
    tidy = est.tidy()
    assert list(tidy.columns) == [
        "term",
        "estimate",
        "std_error",
        "statistic",
        "df",
        "p_value",
        "riv",
        "fmi",
        "conf_low",
        "conf_high",
    ]
    np.testing.assert_allclose(tidy["conf_low"], est.confint()["2.5 %"])


def test_df_com_vector_is_read_only():
    case = REF["lm_dfcom_vec"]
    est = pool_estimates(
        qhat=np.array(case["qhat"]), uhat=np.array(case["uhat"]), df_com=[746, 600, 300, 50]
    )
    assert est.df_com.tolist() == [746, 600, 300, 50]
    with pytest.raises(ValueError):
        est.df_com[0] = 1


# ------------------------------------------------------------------------------------------
# errors
# ------------------------------------------------------------------------------------------
def test_unknown_fit_type_error_names_type_and_fix():
    class Weird:
        pass

    with pytest.raises(
        TypeError, match=r"type '.*Weird'.*pool_estimates\(qhat=\.\.\., uhat=\.\.\.\)"
    ):
        pool_estimates([Weird(), Weird()])


def test_parameter_names_must_agree_across_imputations():
    a = (pd.Series([1.0, 2.0], index=["x", "z"]), np.eye(2))
    b = (pd.Series([1.0, 2.0], index=["x", "w"]), np.eye(2))
    with pytest.raises(
        ValueError, match=r"fit 2 \(imputation 2\) are named \['x', 'w'\].*only in fit 2: \['w'\]"
    ):
        pool_estimates([a, b])
    c = (pd.Series([2.0, 1.0], index=["z", "x"]), np.eye(2))
    with pytest.raises(ValueError, match="different order"):
        pool_estimates([a, c])


def test_m_below_two_is_an_error():
    fit = (pd.Series([1.0]), np.eye(1))
    with pytest.raises(ValueError, match="at least 2 imputed data sets; got 1"):
        pool_estimates([fit])
    with pytest.raises(ValueError, match="at least 2 imputed data sets; `qhat` has 1"):
        pool_estimates(qhat=np.array([[1.0, 2.0]]), uhat=np.ones((1, 2)))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({}, "either `fits`"),
        ({"fits": [], "qhat": np.ones((2, 1))}, "either `fits`"),
        ({"qhat": np.ones((3, 2)), "uhat": np.ones((3, 3, 3))}, r"shape \(m, k, k\) = \(3, 2, 2\)"),
        (
            {"qhat": np.ones((3, 2)), "uhat": np.ones((3, 2)), "df_com": -1},
            "`df_com` must be a positive",
        ),
        (
            {"qhat": np.ones((3, 2)), "uhat": np.ones((3, 2)), "df_com": [1, 2, 3]},
            "`df_com` must be",
        ),
        (
            {"qhat": np.array([[1.0, np.nan], [1, 2]])},
            r"estimate of 'Parameter.2' in imputation 1 \(`qhat` row 1\) is nan",
        ),
        (
            {"qhat": np.ones((2, 1)), "uhat": np.array([[np.inf], [1]])},
            r"variance of 'Parameter.1' in imputation 1 \(`uhat` entry 1\) is inf",
        ),
        ({"qhat": "abc"}, "`qhat` must be"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        pool_estimates(**kwargs)


def test_extra_pars_with_qhat_warns():
    with pytest.warns(UserWarning, match="`extra_pars` is ignored"):
        pool_estimates(qhat=np.ones((2, 1)), uhat=np.ones((2, 1)), extra_pars=True)


def test_importing_pool_does_not_import_statsmodels_or_lmm():
    import os
    import subprocess
    import sys

    code = (
        "import sys, pymitml.pool; "
        "print('statsmodels' in sys.modules, 'pymitml.lmm.fit' in sys.modules, 'rpy2' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env, check=True
    )  # env: without what starting R here added
    assert out.stdout.split()[0] == "False" and out.stdout.split()[2] == "False", out.stderr


# ------------------------------------------------------------------------------------------
# live R: random data, pooled in both
# ------------------------------------------------------------------------------------------
def test_live_R_testEstimates_on_random_estimates(R):
    from pymitml.bridge import r_run

    rng = np.random.default_rng(7)
    m, k = 7, 3
    q = rng.normal(size=(m, k))
    a = rng.normal(size=(m, k, k)) * 0.3
    u = np.einsum("mij,mkj->mik", a, a) + 0.1 * np.eye(k)
    for dfc in (None, 25.0):
        est = pool_estimates(qhat=q, uhat=u, df_com=dfc)
        rtab = r_run(
            "e <- mitml::testEstimates(qhat = t(q), uhat = aperm(u, c(2, 3, 1)), df.com = dfc)"
            "; unclass(e$estimates)[, 1:7]",
            q=q,
            u=u,
            dfc=dfc,
        )
        np.testing.assert_allclose(est.table.to_numpy(), np.asarray(rtab), rtol=1e-10, atol=1e-15)


# ------------------------------------------------------------------------------------------
# df_com from the fits: Satterthwaite / Kenward-Roger (r_compat/ddf_pool.R)
# ------------------------------------------------------------------------------------------
DDF_POOL = json.loads((ROOT / "r_compat" / "ddf_pool_ref.json").read_text())


@pytest.fixture(scope="module")
def ddf_pool_fits():
    long = pd.read_csv(ROOT / "r_compat" / "pool_studentratings_m5.csv")
    return [
        pm.lmer(DDF_POOL["formula"], d.drop(columns=".imp"), REML=True)
        for _, d in long.groupby(".imp")
    ]


@pytest.mark.parametrize("method", ["Satterthwaite", "Kenward-Roger"])
def test_df_com_from_fits_matches_r(ddf_pool_fits, method):
    ref = DDF_POOL[method]
    per_fit = np.stack([f.coef_table(ddf=method)["df"].to_numpy() for f in ddf_pool_fits])
    np.testing.assert_allclose(per_fit, np.asarray(ref["df"]), rtol=1e-6)
    est = pool_estimates(ddf_pool_fits, df_com=method)
    np.testing.assert_allclose(est.df_com, ref["df_com"], rtol=1e-6)
    want = pd.DataFrame(ref["table"], index=ref["names"])
    assert_table_close(est.table, want, rtol=1e-6)
    # by hand: Barnard & Rubin with R's per-fit df averaged per coefficient
    names, q, u = stack_estimates(ddf_pool_fits)
    m = q.shape[0]
    b = np.var(q, axis=0, ddof=1)
    ubar = np.mean(np.diagonal(u, axis1=1, axis2=2), axis=0)
    riv = (1 + 1 / m) * b / ubar
    v_m = (m - 1) * (1 + 1 / riv) ** 2
    dfc = np.mean(np.asarray(ref["df"]), axis=0)
    v_obs = (1 / (1 + riv)) * (dfc + 1) / (dfc + 3) * dfc
    np.testing.assert_allclose(est.table["df"], 1 / (1 / v_m + 1 / v_obs), rtol=1e-6)
    assert f"df_com={method!r}" in est.call


def test_df_com_string_errors(ddf_pool_fits):
    with pytest.raises(
        ValueError, match="`df_com` must be one of 'Satterthwaite', 'Kenward-Roger'"
    ):
        pool_estimates(ddf_pool_fits, df_com="KR")
    q = np.ones((3, 2)) + np.arange(3)[:, None]
    with pytest.raises(ValueError, match="give `fits`, not `qhat`"):
        pool_estimates(qhat=q, uhat=np.ones((3, 2)), df_com="Satterthwaite")
    pairs = [
        (pd.Series([1.0 + i], index=["a"]), pd.DataFrame([[0.1]], ["a"], ["a"])) for i in range(3)
    ]
    with pytest.raises(TypeError, match="fit 1 is a tuple, which has no such df"):
        pool_estimates(pairs, df_com="Satterthwaite")
    from pymitml._validation import check_df_com

    with pytest.raises(ValueError, match="available in pool_estimates only"):
        check_df_com("Satterthwaite")
