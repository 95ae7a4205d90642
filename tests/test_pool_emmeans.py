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
    with pytest.raises(ValueError, match="`adjust`"):
        pool_emmeans(fits, "FedState", adjust="tukey")
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
