"""pool_r2_nakagawa / r2_nakagawa against performance::r2_nakagawa (r_compat/pool_r2.R)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool.r2_nakagawa import pool_r2_nakagawa, r2_nakagawa, r2_parts

RC = Path(__file__).resolve().parents[1] / "r_compat"
REF = json.loads((RC / "pool_r2_ref.json").read_text())["cases"]
CLUSTER = {
    "ddf_sleepstudy.csv": "Subject",
    "pool_studentratings_m5.csv": "ID",
    "pool_vc_rs_implist.csv": "g",
}


def _frames(csv: str) -> list[pd.DataFrame]:
    d = pd.read_csv(RC / csv)
    d[CLUSTER[csv]] = d[CLUSTER[csv]].astype(str)
    if ".imp" not in d:
        return [d, d]
    return [g.drop(columns=".imp").reset_index(drop=True) for _, g in d.groupby(".imp")]


@pytest.mark.parametrize("name", sorted(REF))
def test_equal_performance_per_imputation_and_pooled(name):
    case = REF[name]
    formula = case["formula"]
    fits = pm.MitmlList(_frames(case["data"])).with_(
        lambda d: pm.lmer(formula, d, REML=case["REML"])
    )
    # the formula at lme4's own estimates: performance's values to 1e-9
    at_r = pd.DataFrame(
        [
            r2_parts(f.X, f.Z, np.array(p["beta"]), np.array(p["tau"]), p["sigma"])
            for f, p in zip(fits, case["parameters"], strict=True)
        ]
    )
    np.testing.assert_allclose(at_r["marginal"], case["marginal"], rtol=1e-9)
    np.testing.assert_allclose(at_r["conditional"], case["conditional"], rtol=1e-9)
    # end to end, at pymitml's optimum: random-intercept fits to 1e-6; lme4's BOBYQA stops
    # short in theta in random-slope models (~1e-5 relative in R^2), so those to 5e-5
    tol = 1e-6 if "(1 |" in formula else 5e-5
    per = pd.DataFrame([r2_nakagawa(f) for f in fits])
    np.testing.assert_allclose(per["marginal"], case["marginal"], rtol=tol)
    np.testing.assert_allclose(per["conditional"], case["conditional"], rtol=tol)
    res = pool_r2_nakagawa(fits)
    for row in ("marginal", "conditional"):
        np.testing.assert_allclose(res.table.loc[row, "Estimate"], case[f"pooled_{row}"], rtol=tol)
    assert "pooled over" in str(res)


def test_parts_add_up_and_bad_input():
    fits = pm.MitmlList(_frames("pool_vc_rs_implist.csv")).with_(
        lambda d: pm.lmer("y ~ x + (1 + x | g)", d)
    )
    r = r2_nakagawa(fits[0])
    tot = r["var_fixed"] + r["var_random"] + r["var_residual"]
    assert r["conditional"] - r["marginal"] == pytest.approx(r["var_random"] / tot)
    # the random-slope variance part depends on x: larger than tau_00 alone here
    assert r["var_random"] != pytest.approx(fits[0].cov_random.iloc[0, 0])
    with pytest.raises(TypeError, match="pm.lmer"):
        r2_nakagawa((np.zeros(1), np.eye(1)))
    with pytest.raises(TypeError, match="list of pm.lmer"):
        pool_r2_nakagawa(fits[0])
    assert pm.pool_r2_nakagawa is pool_r2_nakagawa
