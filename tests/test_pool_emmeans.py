"""pool_emmeans against emmeans per imputation pooled by Rubin's rules (r_compat/pool_emmeans.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool.emmeans import pool_emmeans, pool_predictions

RC = Path(__file__).resolve().parents[1] / "r_compat"
REF = json.loads((RC / "pool_emmeans_ref.json").read_text())["cases"]


@pytest.fixture(scope="module")
def implist() -> pm.MitmlList:
    d = pd.read_csv(RC / "pool_studentratings_m5.csv")
    d["ID"] = d["ID"].astype(str)
    return pm.MitmlList(
        [g.drop(columns=".imp").reset_index(drop=True) for _, g in d.groupby(".imp")]
    )


_FITS: dict[str, list] = {}


def _fits(implist, formula):
    if formula not in _FITS:
        _FITS[formula] = implist.with_(lambda d: pm.lmer(formula, d))
    return _FITS[formula]


def _specs(case):
    s = case["specs"]
    return [s] if isinstance(s, str) else s


def _at(case):
    at = case["at"]
    return {k: v for k, v in at.items()} if isinstance(at, dict) else None


@pytest.mark.parametrize("name", sorted(REF))
def test_equal_emmeans_per_imputation_and_pooled(implist, name):
    case = REF[name]
    fits = _fits(implist, case["formula"])
    res = pool_emmeans(fits, _specs(case), at=_at(case), pairwise=True)
    emm, con = res.emmeans, res.contrasts
    # labels in emmeans' order (first specs variable fastest); numeric specs at the `at` values
    for v, labels in zip(_specs(case), case["labels"]):
        assert [f"{x:g}" if isinstance(x, float) else str(x) for x in emm[v]] == labels
    # the reference grid itself: our L with lme4's beta and vcov gives emmeans' values
    from pymitml.pool.emmeans import _emm_matrix, _grid

    for fit, d, per in zip(fits, implist, case["per_imputation"], strict=True):
        grid, X = _grid(fit, d, _specs(case), _at(case) or {})
        L = _emm_matrix(grid, X, _specs(case))[1]
        np.testing.assert_allclose(L @ np.array(per["beta"]), per["emmean"], rtol=1e-10)
        se = np.sqrt(np.diag(L @ np.array(per["vcov_beta"]) @ L.T))
        np.testing.assert_allclose(se, per["SE"], rtol=1e-10)
    # end to end: lme4's optimiser stops short of the optimum in the model with two terms
    # (its estimates differ from ours by ~3e-5 relative there): 1e-6 for the others
    tol = 1e-4 if case["formula"].count("|") > 1 else 1e-6
    pooled = case["pooled"]
    np.testing.assert_allclose(emm["emmean"], pooled["estimate"], rtol=tol)
    np.testing.assert_allclose(emm["SE"], pooled["se"], rtol=tol)
    # Rubin's df (m - 1)(1 + 1/r)^2 magnifies the tiny between-imputation variance here
    np.testing.assert_allclose(emm["df"], pooled["df"], rtol=1e-5 if tol < 1e-5 else 1e-2)
    np.testing.assert_allclose(emm["2.5 %"], pooled["lower"], rtol=tol)
    np.testing.assert_allclose(emm["97.5 %"], pooled["upper"], rtol=tol)
    pc = case["pooled_contrasts"]
    np.testing.assert_allclose(con["estimate"], pc["estimate"], rtol=100 * tol, atol=1e-6)
    np.testing.assert_allclose(con["SE"], pc["se"], rtol=tol)
    np.testing.assert_allclose(con["p.value"], pc["p"], rtol=10 * tol, atol=1e-12)
    assert len(con) == np.atleast_1d(case["contrast"]).size
    assert "Estimated marginal means pooled over 5 imputed data sets" in str(res)


def test_per_imputation_values_and_satterthwaite_df(implist):
    case = REF["cells_at"]
    fits = _fits(implist, case["formula"])
    for i, (fit, per) in enumerate(zip(fits, case["per_imputation"], strict=True)):
        r = pool_emmeans([fit, fit], _specs(case), at=_at(case), data=[implist[i]] * 2)
        np.testing.assert_allclose(r.emmeans["emmean"], per["emmean"], rtol=1e-6)
        np.testing.assert_allclose(r.emmeans["SE"], per["SE"], rtol=1e-6)
    # df_com="Satterthwaite": per row the mean of the fits' lmerTest df in Barnard-Rubin's v
    res = pool_emmeans(fits, _specs(case), at=_at(case), df_com="Satterthwaite")
    df_r = np.mean([per["df_satterthwaite"] for per in case["per_imputation"]], axis=0)
    m = 5
    riv = res.emmeans["RIV"].to_numpy()
    lam = riv / (1 + riv)
    v_m = (m - 1) * (1 + 1 / riv) ** 2
    v_obs = (1 - lam) * (df_r + 1) / (df_r + 3) * df_r
    np.testing.assert_allclose(res.emmeans["df"], 1 / (1 / v_m + 1 / v_obs), rtol=1e-4)


def test_bonferroni_and_errors(implist):
    case = REF["cells_at"]
    fits = _fits(implist, case["formula"])
    plain = pool_emmeans(fits, _specs(case), pairwise=True).contrasts
    bonf = pool_emmeans(fits, _specs(case), pairwise=True, adjust="bonferroni").contrasts
    np.testing.assert_allclose(bonf["p.value"], np.minimum(1, 6 * plain["p.value"]))
    with pytest.raises(ValueError, match="pass the MitmlList"):
        pool_emmeans(list(fits), "FedState")
    with pytest.raises(ValueError, match="not predictors"):
        pool_emmeans(fits, "SchClimate")
    with pytest.raises(ValueError, match="levels"):
        pool_emmeans(fits, "FedState", at={"FedState": ["XX"]})
    with pytest.raises(ValueError, match="`adjust` must be 'none', 'bonferroni' or 'tukey'"):
        pool_emmeans(fits, "FedState", adjust="holm")
    assert pm.pool_emmeans is pool_emmeans


def test_pooled_predictions_equal_r(implist):
    ref = json.loads((RC / "pool_emmeans_ref.json").read_text())["predictions"]
    fits = _fits(implist, ref["formula"])
    newdata = pd.DataFrame(ref["newdata"])
    out = pool_predictions(fits, newdata)
    pooled = ref["pooled"]
    np.testing.assert_allclose(out["fit"], pooled["estimate"], rtol=1e-6)
    np.testing.assert_allclose(out["SE"], pooled["se"], rtol=1e-6)
    np.testing.assert_allclose(out["df"], pooled["df"], rtol=1e-5)
    np.testing.assert_allclose(out["2.5 %"], pooled["lower"], rtol=1e-6)
    np.testing.assert_allclose(out["97.5 %"], pooled["upper"], rtol=1e-6)
    assert out["FedState"].tolist() == ["B", "SH", "SH"]
    with pytest.raises(ValueError, match="lacks the predictor"):
        pool_predictions(fits, newdata.drop(columns="ReadDis"))
    with pytest.raises(ValueError, match="level"):
        pool_predictions(fits, newdata.assign(Sex="Other"))
    assert pm.pool_predictions is pool_predictions


# ----- adjust="tukey" (r_compat/pool_emmeans_tukey.R) -----
TUKEY = json.loads((RC / "pool_emmeans_tukey_ref.json").read_text())["cases"]
_COLS = (("estimate", "estimate"), ("SE", "SE"), ("2.5 %", "lower"), ("97.5 %", "upper"))


def _num(x):
    return np.array([float(v) for v in x])  # R's Inf arrives as the string "Inf"


def _check_contrasts(tab, ref, names=True):
    if names:  # numeric specs: emmeans labels "ReadDis1 - ReadDis2", we "1.0 - 2.0"
        assert tab["contrast"].tolist() == list(ref["contrast"])
    # R's ptukey uses the infinite-df formula above 25000 df (relative error ~ 1/df there)
    df = _num(ref["df"])
    rtol = np.where(np.isfinite(df) & (df > 25000), 1e-4, 1e-6)
    for col, key in _COLS:
        np.testing.assert_array_less(
            np.abs(tab[col].to_numpy() - _num(ref[key])), rtol * np.abs(_num(ref[key])), err_msg=col
        )
    # p-values: R's ptukey is accurate to ~1e-9 absolute (it returns 0 below that)
    np.testing.assert_allclose(tab["p.value"], _num(ref["p"]), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", sorted(TUKEY))
def test_tukey_on_identical_copies_equals_emmeans_complete_data(implist, name):
    # m copies of one data set: B = 0, Rubin's df = Inf, so pooled == complete-data emmeans
    case = TUKEY[name]
    same = pm.MitmlList([implist[0]] * 3)
    fits = same.with_(lambda d: pm.lmer(case["formula"], d))
    res = pool_emmeans(fits, _specs(case), at=_at(case), pairwise=True, adjust="tukey")
    tab = res.contrasts
    assert np.all(np.isinf(tab["df"])) and np.all(tab["RIV"] == 0.0)
    _check_contrasts(tab, case["complete"]["asymptotic"], names=name != "numeric_at")
    assert "Tukey-adjusted p-values and intervals" in res.to_string()


@pytest.mark.parametrize("name", sorted(TUKEY))
def test_tukey_step_with_finite_df_per_row_equals_emmeans(name):
    # emmeans' Tukey adjustment with Satterthwaite df (one df per contrast), applied to R's
    # unadjusted table: the same per-row use of the df as pool_emmeans makes of pooled df
    from pymitml.pool.emmeans import _tukey

    case = TUKEY[name]
    none, ref = case["complete"]["satterthwaite_none"], case["complete"]["satterthwaite"]
    assert len(set(np.round(_num(none["df"]), 6))) == (1 if name == "numeric_at" else 6)
    ct = pd.DataFrame(
        {
            "contrast": none["contrast"],
            "SE": _num(none["SE"]),
            "df": _num(none["df"]),
            "2.5 %": np.nan,
            "97.5 %": np.nan,
            "t.ratio": _num(none["t"]),
            "p.value": _num(none["p"]),
            "_est": _num(none["estimate"]),
        }
    )
    _tukey(ct, case["complete"]["k"], 0.95)
    ct["estimate"] = ct["_est"]
    _check_contrasts(ct, ref)  # R's own df here: the names are R's


@pytest.mark.parametrize("name", sorted(TUKEY))
def test_tukey_pooled_equals_rubin_by_hand_in_r(implist, name):
    case = TUKEY[name]
    fits = implist.with_(lambda d: pm.lmer(case["formula"], d))
    tab = pool_emmeans(fits, _specs(case), at=_at(case), pairwise=True, adjust="tukey").contrasts
    ref = case["pooled"]
    _check_contrasts(tab, ref, names=name != "numeric_at")
    np.testing.assert_allclose(tab["df"], ref["df"], rtol=1e-6)
    plain = pool_emmeans(fits, _specs(case), at=_at(case), pairwise=True).contrasts
    bonf = pool_emmeans(
        fits, _specs(case), at=_at(case), pairwise=True, adjust="bonferroni"
    ).contrasts
    # Tukey between the unadjusted and Bonferroni p-values; wider intervals than unadjusted
    assert np.all(plain["p.value"] <= tab["p.value"] + 1e-15)
    assert np.all(tab["p.value"] <= bonf["p.value"] + 1e-15)
    assert np.all(tab["97.5 %"] - tab["2.5 %"] > plain["97.5 %"] - plain["2.5 %"])
    np.testing.assert_allclose(tab["t.ratio"], plain["t.ratio"], rtol=1e-15)


def test_tukey_with_two_means_is_unadjusted(implist):
    fits = _fits(implist, REF["fedstate"]["formula"])
    plain = pool_emmeans(fits, "FedState", pairwise=True).contrasts
    tuk = pool_emmeans(fits, "FedState", pairwise=True, adjust="tukey", df_com=50).contrasts
    plain50 = pool_emmeans(fits, "FedState", pairwise=True, df_com=50).contrasts
    assert len(plain) == 1
    for col in ("p.value", "2.5 %", "97.5 %"):
        np.testing.assert_allclose(tuk[col], plain50[col], rtol=1e-7)
    assert not np.allclose(plain["df"], plain50["df"])


@pytest.mark.parametrize("name", sorted(TUKEY))
def test_bonferroni_on_identical_copies_equals_emmeans(implist, name):
    # p-values times K and intervals at level 1 - 0.05 / K, as emmeans' adjust = "bonferroni"
    case = TUKEY[name]
    same = pm.MitmlList([implist[0]] * 3)
    fits = same.with_(lambda d: pm.lmer(case["formula"], d))
    res = pool_emmeans(fits, _specs(case), at=_at(case), pairwise=True, adjust="bonferroni")
    _check_contrasts(res.contrasts, case["complete"]["asymptotic_bonferroni"], names=False)
    assert "Bonferroni-adjusted p-values and intervals" in res.to_string()
