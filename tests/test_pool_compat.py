"""check_compatibility: analysis terms the imputation model lacked are named; pooling reports it."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool.compatibility import CompatibilityWarning, check_compatibility


def _data(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(30), 6)
    x = rng.normal(size=g.size)
    w = rng.normal(size=30)[g]
    z = rng.normal(size=g.size)
    y = 1 + x + 0.5 * w + rng.normal(size=30)[g] + rng.normal(size=g.size)
    y[:30] = np.nan
    x[50:60] = np.nan
    df = pd.DataFrame({"y": y, "x": x, "w": w, "z": z, "g": g, "h": g % 5})
    df["z_cm"] = df.groupby("g")["z"].transform("mean")
    df["x_cm"] = df.groupby("g")["x"].transform("mean")  # from incomplete x: before imputation
    return df


def _pan(df, formula):
    return pm.pan_impute(df, formula, m=2, n_burn=20, n_iter=2, seed=1, progress=False)


@pytest.fixture(scope="module")
def pan_imp():
    return _pan(_data()[["y", "x", "w", "z", "g", "h"]], "y + x ~ 1 + w + (1|g)")


def _kinds(report):
    return {(i.term, i.kind) for i in report.issues}


def test_congenial_analysis_has_no_issues(pan_imp):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CompatibilityWarning)
        rep = check_compatibility(pan_imp, "y ~ x + w + (1 | g)")
    assert rep.ok and rep.imputed == ("x", "y")
    assert "only terms the imputation model (pan) includes" in str(rep)


def test_each_missing_structure_is_named(pan_imp):
    with pytest.warns(CompatibilityWarning) as rec:
        rep = check_compatibility(pan_imp, "y ~ x * w + z + I(x^2) + (1 + x + w | g)")
    assert _kinds(rep) == {
        ("z", "variable"),
        ("x:w", "interaction"),
        ("I(x ** 2)", "nonlinear term"),
        ("(... x | g)", "random slope"),
        ("(... w | g)", "random slope"),
    }
    assert len(rec) == 5 and any("x:w" in str(w.message) for w in rec)
    msg = {i.term: i.message for i in rep.issues}
    assert "imputed variable 'x'" in msg["(... x | g)"]
    assert "'y' was imputed without a random slope of 'w'" in msg["(... w | g)"]


def test_grouping_factor_and_silence_without_imputed_variables(pan_imp):
    rep = check_compatibility(pan_imp, "y ~ x + (1 | h)", warn=False)
    assert ("| h", "grouping factor") in _kinds(rep)
    assert check_compatibility(pan_imp, "w ~ z + (1 | g)", warn=False).ok  # nothing imputed


def test_cluster_means():
    df = _data()
    imp = _pan(df, "y + x ~ 1 + w + z + (1|g)")
    rep = check_compatibility(imp, "y ~ x + z + z_cm + x_cm + (1 | g)", warn=False)
    kinds = _kinds(rep)
    # z_cm: a contextual effect of z, which the imputation of y lacked
    assert ("z_cm (cluster mean of z)", "cluster mean") in kinds
    # x_cm: cluster means of the incomplete x (NaN-skipping), frozen before imputation
    assert ("x_cm (cluster mean of x)", "cluster mean") in kinds or ("x_cm", "variable") in kinds


def test_fcs_predictor_matrix_codes():
    df = _data()[["y", "x", "w", "z", "g"]]
    P = pm.make_predictor_matrix(df, cluster="g")
    P.loc["y", "z"] = 0
    imp = pm.fcs_impute(
        df,
        cluster="g",
        method={"y": "2l.pan", "x": "2l.pan"},
        predictor_matrix=P,
        m=2,
        maxit=2,
        seed=1,
    )
    rep = check_compatibility(imp, "y ~ x + z + (1 + x | g)", warn=False)
    kinds = _kinds(rep)
    assert ("z", "predictor") in kinds
    assert ("(... x | g)", "random slope") in kinds  # x is imputed
    P2 = pm.make_predictor_matrix(df, cluster="g")
    P2.loc["y", "z"] = 2
    imp2 = pm.fcs_impute(
        df,
        cluster="g",
        method={"y": "2l.pan", "x": "2l.pan"},
        predictor_matrix=P2,
        m=2,
        maxit=2,
        seed=1,
    )
    assert check_compatibility(imp2, "y ~ x + z + (1 + z | g)", warn=False).ok


def test_pool_estimates_reports_the_check(pan_imp):
    good = pan_imp.complete().with_(lambda d: pm.lmer("y ~ x + w + (1 | g)", d))
    est = pm.pool_estimates(good)
    assert est.compatibility is not None and est.compatibility.ok
    assert str(est).rstrip().endswith("includes.")
    with pytest.warns(CompatibilityWarning, match="x:w"):
        bad = pm.pool_estimates(
            pan_imp.complete().with_(lambda d: pm.lmer("y ~ x * w + (1 | g)", d))
        )
    assert "x:w: 'x:w' involves imputed variable(s) ['x']" in str(bad)
    assert pm.check_compatibility is check_compatibility


def test_bad_input(pan_imp):
    with pytest.raises(TypeError, match="formula string"):
        check_compatibility(pan_imp, 3)
    with pytest.raises(TypeError, match="ImputationResult"):
        check_compatibility(object(), "y ~ x + (1 | g)")


def test_several_random_terms(pan_imp):
    rep = check_compatibility(pan_imp, "y ~ x + w + (1 | g) + (1 | h)", warn=False)
    assert _kinds(rep) == {("| h", "grouping factor")}
    rep = check_compatibility(pan_imp, "y ~ x + w + (1 | g) + (0 + x || g)", warn=False)
    assert _kinds(rep) == {("(... x | g)", "random slope")}
