"""Failure accounting: with_ records warnings and errors per imputation; pooling acts on them."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.mitml_list import FailedFit
from pymitml.pool._failures import FitFailureError, FitWarning


def _frames(m: int = 5, seed: int = 3) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(25), 8)
    out = []
    for _ in range(m):
        x = rng.normal(size=g.size)
        y = 1.0 + 0.5 * x + rng.normal(size=25)[g] + rng.normal(size=g.size)
        out.append(pd.DataFrame({"y": y, "x": x, "g": g}))
    return out


def _troubled_list() -> pm.MitmlList:
    """Imputation 2 cannot be fitted (a missing response), imputation 4 gives a singular fit."""
    frames = _frames()
    frames[1].loc[3, "y"] = np.nan
    rng = np.random.default_rng(9)
    frames[3]["y"] = 1.0 + 0.5 * frames[3]["x"] + rng.normal(size=len(frames[3]))  # no cluster var
    return pm.MitmlList(frames)


def _fit(d):
    return pm.lmer("y ~ x + (1 | g)", d)


@pytest.fixture(scope="module")
def troubled():
    return _troubled_list().with_(_fit)


def test_with_records_errors_and_singular_fits(troubled):
    fits = troubled
    assert len(fits) == 5
    assert isinstance(fits[1], FailedFit) and isinstance(fits[1].error, ValueError)
    assert "y" in fits[1].message
    st = fits.status
    assert st["status"].tolist() == ["ok", "error", "ok", "warning", "ok"]
    assert st["imputation"].tolist() == [1, 2, 3, 4, 5]
    assert "singular" in st.loc[3, "messages"]
    assert fits.failed == [1] and fits.warned == [3]
    assert "1 failed, 1 warned" in repr(fits)


def test_pooling_refuses_failed_fits_and_lists_them(troubled):
    with pytest.raises(FitFailureError, match=r"failed on 1 of 5(.|\n)*imputation 2: ValueError"):
        pm.pool_estimates(troubled)
    with pytest.raises(FitFailureError) as info:
        pm.pool_estimates(troubled)
    assert isinstance(info.value.__cause__, ValueError)  # the original error is chained
    # the functions without on_failure refuse too, naming the imputation
    with pytest.raises(FitFailureError, match="imputation 2"):
        pm.pool_constraints(troubled, ["x"])
    with pytest.raises(FitFailureError, match="imputation 2"):
        pm.multilevel_r2(troubled)


def test_drop_pools_the_rest_and_reports(troubled):
    with pytest.warns(FitWarning) as rec:
        est = pm.pool_estimates(troubled, on_failure="drop")
    texts = [str(w.message) for w in rec]
    assert any("failed and were dropped" in t and "imputation 2" in t for t in texts)
    assert any("warned (pooled all the same)" in t and "imputation 4" in t for t in texts)
    assert est.m == 4
    rep = est.fit_report
    assert rep.m_total == 5 and rep.failed == (1,) and rep.warned == (3,) and rep.dropped == (1,)
    kept = [troubled[i] for i in (0, 2, 3, 4)]
    with pytest.warns(FitWarning):
        ref = pm.pool_estimates(kept)  # the same four fits, by hand
    np.testing.assert_allclose(est.table.to_numpy(), ref.table.to_numpy(), rtol=1e-12)
    text = str(est)
    assert "Fits: 4 of 5 imputations pooled; 1 failed, 1 warned, 1 dropped." in text
    assert "imputation 2 (failed, dropped): ValueError" in text
    assert "imputation 4 (warned): boundary (singular) fit" in text
    assert "on_failure='drop'" in text


def test_drop_warned_pools_only_clean_fits(troubled):
    with pytest.warns(FitWarning):
        est = pm.pool_estimates(troubled, on_failure="drop_warned")
    assert est.m == 3 and est.fit_report.dropped == (1, 3)
    ref = pm.pool_estimates([troubled[i] for i in (0, 2, 4)])
    np.testing.assert_allclose(est.table.to_numpy(), ref.table.to_numpy(), rtol=1e-12)


def test_warned_fits_are_pooled_with_a_warning_listing_them():
    frames = _frames()
    rng = np.random.default_rng(9)
    frames[2]["y"] = 1.0 + 0.5 * frames[2]["x"] + rng.normal(size=len(frames[2]))
    fits = pm.MitmlList(frames).with_(_fit)
    assert fits.warned == [2]
    with pytest.warns(FitWarning, match=r"1 of 5 analyses warned(.|\n)*imputation 3"):
        est = pm.pool_estimates(fits)
    assert est.m == 5 and "1 warned, 0 dropped" in str(est)


def test_clean_fits_print_as_before():
    fits = pm.MitmlList(_frames()).with_(_fit)
    assert fits.status["status"].eq("ok").all()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FitWarning)
        est = pm.pool_estimates(fits)
    assert est.fit_report.clean and "Fits:" not in str(est)


def test_warnings_are_recorded_and_shown_once_per_message():
    calls = []

    def analysis(d, i):
        calls.append(i)
        if i in (1, 3):
            warnings.warn("iteration limit reached", pm.ConvergenceWarning, stacklevel=2)
        return (pd.Series({"a": float(d["x"].mean())}), np.array([[0.01]]))

    with pytest.warns(pm.ConvergenceWarning) as rec:
        fits = pm.MitmlList(_frames()).with_(analysis, include_data=True)
    assert calls == [0, 1, 2, 3, 4]
    shown = [str(w.message) for w in rec if issubclass(w.category, pm.ConvergenceWarning)]
    assert shown == ["iteration limit reached (imputations 2, 4)"]
    assert fits.warned == [1, 3]
    assert "ConvergenceWarning: iteration limit reached" in fits.status.loc[1, "messages"]
    with pytest.warns(FitWarning, match="imputation 2: ConvergenceWarning"):
        pm.pool_estimates(fits)


def test_separation_warning_from_statsmodels_is_recorded():
    sm = pytest.importorskip("statsmodels.api")
    frames = _frames(3)
    frames[1]["x"] = np.where(frames[1]["y"] > 1.0, 1.0, -1.0)  # x separates z perfectly

    def logit(d):
        z = (d["y"] > 1.0).astype(float)
        return sm.GLM(z, sm.add_constant(d["x"]), family=sm.families.Binomial()).fit()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the re-emitted warnings themselves
        fits = pm.MitmlList(frames).with_(logit)
    assert fits.status["status"].tolist()[1] in ("warning", "error")
    assert fits.status["status"].tolist()[0] == "ok"
    msg = fits.status.loc[1, "messages"].lower()
    assert "separation" in msg or "converge" in msg or "overflow" in msg


def test_errors_raise_keeps_the_old_behaviour():
    frames = _frames(3)
    frames[1].loc[0, "y"] = np.nan
    with pytest.raises(ValueError, match="y"):
        pm.MitmlList(frames).with_(_fit, errors="raise")
    with pytest.raises(ValueError, match="`errors` must be"):
        pm.MitmlList(frames).with_(_fit, errors="ignore")


def test_all_failing_raises_at_once_with_a_note():
    with pytest.raises(KeyError) as info:
        pm.MitmlList(_frames(3)).with_(lambda d: d["no_such_column"])
    assert any("all 3 imputed data sets" in n for n in info.value.__notes__)


def test_plain_lists_are_screened_by_the_fits_flags(troubled):
    plain = list(troubled)  # no recorded status: FailedFit and the singular flag still count
    with pytest.raises(FitFailureError, match="imputation 2"):
        pm.pool_estimates(plain)
    with pytest.warns(FitWarning, match="imputation 4: boundary"):
        est = pm.pool_estimates(plain, on_failure="drop")
    assert est.fit_report.failed == (1,) and est.fit_report.warned == (3,)


def test_bad_on_failure_value(troubled):
    with pytest.raises(ValueError, match="`on_failure` must be one of"):
        pm.pool_estimates(troubled, on_failure="skip")


def test_too_few_fits_left():
    frames = _frames(3)
    for i in (0, 1):
        frames[i].loc[0, "y"] = np.nan
    fits = pm.MitmlList(frames).with_(_fit)
    with pytest.raises(FitFailureError, match="only 1 of 3 fits are left"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FitWarning)
            pm.pool_estimates(fits, on_failure="drop")


def test_compare_models_screens_both_lists(troubled):
    null = _troubled_list().with_(lambda d: pm.lmer("y ~ 1 + (1 | g)", d))
    with pytest.raises(FitFailureError, match="imputation 2: model: ValueError"):
        pm.compare_models(troubled, null)
    with pytest.warns(FitWarning):
        res = pm.compare_models(troubled, null, on_failure="drop")
    assert res.m == 4 and res.fit_report.dropped == (1,)
    keep = [0, 2, 3, 4]
    with pytest.warns(FitWarning):
        ref = pm.compare_models([troubled[i] for i in keep], [null[i] for i in keep])
    np.testing.assert_allclose(res.table.to_numpy(), ref.table.to_numpy(), rtol=1e-12)
    assert "Fits: 4 of 5 imputations pooled; 1 failed" in res.summary()
    with pytest.warns(FitWarning):
        res2 = pm.compare_models(troubled, null, on_failure="drop_warned")
    assert res2.m == 3 and res2.fit_report.dropped == (1, 3)


def test_pool_constraints_drops_failed_fits_on_request(troubled):
    with pytest.warns(FitWarning):
        got = pm.pool_constraints(troubled, ["x"], on_failure="drop")
    kept = [f for i, f in enumerate(troubled) if i != 1]
    ref = pm.pool_constraints(kept, ["x"])
    np.testing.assert_allclose(got.table.to_numpy(float), ref.table.to_numpy(float), rtol=1e-12)
    with pytest.raises(ValueError, match="`on_failure` must be one of"):
        pm.pool_constraints(troubled, ["x"], on_failure="skip")


def test_multilevel_r2_drops_failed_fits_on_request(troubled):
    with pytest.warns(FitWarning):
        got = pm.multilevel_r2(troubled, on_failure="drop")
    kept = [f for i, f in enumerate(troubled) if i != 1]
    pd.testing.assert_series_equal(got, pm.multilevel_r2(kept))


# ----- anova(on_failure=...) -----
def _null_fit(d):
    return pm.lmer("y ~ 1 + (1 | g)", d)


def test_anova_refuses_failed_fits_by_default(troubled):
    null = _troubled_list().with_(_null_fit)
    with pytest.raises(FitFailureError, match=r"failed on 1 of 5(.|\n)*imputation 2: model 1: "):
        pm.anova(troubled, null)
    with pytest.raises(ValueError, match="`on_failure` must be one of"):
        pm.anova(troubled, null, on_failure="skip")


def test_anova_drop_pools_the_rest_and_reports(troubled):
    null = _troubled_list().with_(_null_fit)
    with pytest.warns(FitWarning, match="1 of 5 analyses failed and were dropped"):
        res = pm.anova(troubled, null, on_failure="drop")
    assert res.m == 4 and res.fit_report.dropped == (1,) and res.fit_report.warned == (3,)
    keep = [0, 2, 3, 4]
    with pytest.warns(FitWarning, match="warned"):
        ref = pm.anova([troubled[i] for i in keep], [null[i] for i in keep])
    np.testing.assert_allclose(res.table.to_numpy(), ref.table.to_numpy(), rtol=1e-12)
    assert res.tests[0].fit_report == res.fit_report
    text = res.summary()
    assert "Fits: 4 of 5 imputations pooled; 1 failed, 1 warned, 1 dropped." in text
    assert "imputation 2 (failed, dropped): model 1: ValueError" in text
    with pytest.warns(FitWarning):
        res2 = pm.anova(troubled, null, on_failure="drop_warned")
    assert res2.m == 3 and res2.fit_report.dropped == (1, 3)
    ref2 = pm.anova([troubled[i] for i in (0, 2, 4)], [null[i] for i in (0, 2, 4)])
    np.testing.assert_allclose(res2.table.to_numpy(), ref2.table.to_numpy(), rtol=1e-12)


def test_anova_singular_fits_warn_and_can_be_dropped():
    frames = _frames()
    rng = np.random.default_rng(9)
    frames[2]["y"] = 1.0 + 0.5 * frames[2]["x"] + rng.normal(size=len(frames[2]))  # singular
    implist = pm.MitmlList(frames)
    full, null = implist.with_(_fit), implist.with_(_null_fit)
    assert full.warned == [2] and null.warned in ([], [2])
    with pytest.warns(FitWarning, match=r"1 of 5 analyses warned \(pooled all the same\)"):
        res = pm.anova(full, null)
    assert res.m == 5 and res.fit_report.dropped == () and res.fit_report.warned == (2,)
    assert "imputation 3 (warned): model 1: boundary (singular) fit" in res.summary()
    with pytest.warns(FitWarning, match="dropped from pooling"):
        res2 = pm.anova(full, null, on_failure="drop_warned")
    assert res2.m == 4
    keep = [0, 1, 3, 4]
    ref = pm.anova([full[i] for i in keep], [null[i] for i in keep])
    np.testing.assert_allclose(res2.table.to_numpy(), ref.table.to_numpy(), rtol=1e-12)


def test_anova_failure_in_one_of_three_models_drops_that_imputation_from_all():
    implist = pm.MitmlList(_frames())
    calls = {"n": 0}

    def big(d):
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("forced failure")
        return pm.lmer("y ~ x + (1 + x | g)", d)

    f0, f1 = implist.with_(_null_fit), implist.with_(_fit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f2 = implist.with_(big)
    assert isinstance(f2[4], FailedFit)
    with pytest.raises(FitFailureError, match="imputation 5: model 3: RuntimeError"):
        pm.anova(f0, f1, f2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FitWarning)
        res = pm.anova(f0, f1, f2, on_failure="drop")
        ref = pm.anova(f0[:4], f1[:4], f2[:4])
    assert res.m == 4 and res.fit_report.failed == (4,)
    np.testing.assert_allclose(res.table.to_numpy(), ref.table.to_numpy(), rtol=1e-12)
    assert res.formulas == ref.formulas
