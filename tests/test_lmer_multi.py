"""lmer with several random-effect terms, weights, offsets, transformed responses and
rank-deficient designs, against lme4 (r_compat/lmer_multi_ref.R) and invariants."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pymitml.lmm import ConvergenceWarning, MultiLmerFit, anova, lmer
from pymitml.lmm._terms import parse_lmer_formula

REF_DIR = Path(__file__).resolve().parent.parent / "r_compat"
REF = json.loads((REF_DIR / "lmer_multi_ref.json").read_text())
SLEEP = pd.read_csv(REF_DIR / "ddf_sleepstudy.csv")
SLEEP["w"] = 1 + (np.arange(1, len(SLEEP) + 1) % 3) / 2
DATA = {
    "penicillin": pd.read_csv(REF_DIR / "ddf_penicillin.csv"),
    "pastes": pd.read_csv(REF_DIR / "ddf_pastes.csv"),
    "sleep": SLEEP,
    "sim": pd.read_csv(REF_DIR / "lmer_multi_sim.csv"),
}
CASES = {
    "penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "penicillin", None),
    "pastes": ("strength ~ 1 + (1 | batch/cask)", "pastes", None),
    "pastes_interaction": ("strength ~ 1 + (1 | batch) + (1 | cask:batch)", "pastes", None),
    "sleep_uncorrelated": ("Reaction ~ Days + (Days || Subject)", "sleep", None),
    "sleep_weights": ("Reaction ~ Days + (Days | Subject)", "sleep", "w"),
    "sleep_log_offset": (
        "log(Reaction) ~ Days + offset(Days / 100) + (1 | Subject)",
        "sleep",
        None,
    ),
    "crossed_slope": ("y ~ x + f + (1 + x | g) + (1 | h)", "sim", None),
    "crossed_factor": ("y ~ x + (1 | g) + (0 + f | h)", "sim", None),
    "crossed_weights": ("y ~ x + f + (1 | g) + (1 | h)", "sim", "w"),
    "interaction_group": ("y ~ x + (1 | g:h)", "sim", None),
    "rank_deficient": ("y ~ x + x2 + (1 | g) + (1 | h)", "sim", None),
    "log_response": ("log(pos) ~ x + (1 | g) + (1 | h)", "sim", None),
}
NAMES = [f"{c}_{k}" for c in CASES for k in ("reml", "ml")]


def _fit(name: str):
    case, kind = name.rsplit("_", 1)
    formula, data, w = CASES[case]
    df = DATA[data]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the rank-deficiency message
        warnings.simplefilter("error", ConvergenceWarning)
        return lmer(formula, df, REML=kind == "reml", weights=None if w is None else df[w])


@pytest.fixture(scope="module")
def fits():
    return {name: _fit(name) for name in NAMES}


def _list(x):
    return x if isinstance(x, list) else [x]


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-300))


@pytest.mark.parametrize("name", NAMES)
def test_matches_lme4(fits, name):
    r, fit = REF[name], fits[name]
    assert isinstance(fit, MultiLmerFit)
    assert list(fit.fixef.index) == _list(r["beta_names"])
    assert _rel(fit.theta, r["theta"]) < 1e-5
    assert _rel(fit.fixef, r["beta"]) < 1e-5
    assert _rel(np.sqrt(np.diag(fit.vcov)), r["se"]) < 1e-5
    assert fit.sigma == pytest.approx(r["sigma"], rel=1e-5)
    assert fit.loglik == pytest.approx(r["loglik"], rel=1e-9)
    # at least as high as lme4's (default controls); the tight fit to 1e-9 in the deviance
    assert fit.loglik >= r["default_loglik"] - 1e-9 * abs(r["default_loglik"])
    assert fit.loglik >= r["loglik"] - 1e-8
    if not fit.REML:
        assert fit.deviance == pytest.approx(r["deviance_ml"], rel=1e-9)
    if fit.REML:
        assert fit.reml_criterion == pytest.approx(r["reml"], rel=1e-9)
    assert _rel(fit.random_vector(), r["b"]) < 1e-5
    assert list(fit.varcorr["grp"]) == r["vc_grp"]
    assert _rel(fit.varcorr["vcov"], r["vc_vcov"]) < 2e-5
    assert _rel(fit.fitted()[:10], r["fitted"]) < 1e-6
    assert _rel(fit.residuals()[:10], r["resid"]) < 1e-5


def test_nested_slash_equals_explicit_interaction(fits):
    a, b = fits["pastes_reml"], fits["pastes_interaction_reml"]
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    assert list(a.ranef) == ["cask:batch", "batch"]
    assert a.ranef["cask:batch"].index[:3].tolist() == ["a:A", "a:B", "a:C"]


def test_uncorrelated_terms_are_two_terms_of_one_factor(fits):
    a = fits["sleep_uncorrelated_reml"]
    b = lmer("Reaction ~ Days + (1 | Subject) + (0 + Days | Subject)", SLEEP)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    assert list(a.varcorr["grp"]) == ["Subject", "Subject.1", "Residual"]
    out = str(a)
    assert "Subject.1 Days" in out and "groups:  Subject, 18" in out


def test_summary_lists_every_factor(fits):
    out = str(fits["penicillin_reml"])
    assert "plate    (Intercept)" in out and "sample   (Intercept)" in out
    assert "Number of obs: 144, groups:  plate, 24; sample, 6" in out


def test_one_term_fit_unchanged_by_general_path():
    """The general (blocked) path on a one-term model equals the one-factor fitter."""
    one = lmer("Reaction ~ Days + (Days | Subject)", SLEEP)
    gen = lmer("Reaction ~ Days + (Days | Subject)", SLEEP, weights=np.ones(len(SLEEP)))
    assert isinstance(gen, MultiLmerFit) and not isinstance(one, MultiLmerFit)
    assert gen.loglik == pytest.approx(one.loglik, rel=1e-10)
    np.testing.assert_allclose(gen.fixef, one.fixef, rtol=1e-6)
    np.testing.assert_allclose(gen.theta, one.theta, rtol=1e-5)


def test_offset_argument_equals_offset_term():
    a = lmer("Reaction ~ Days + offset(Days / 100) + (1 | Subject)", SLEEP)
    b = lmer("Reaction ~ Days + (1 | Subject)", SLEEP, offset=SLEEP["Days"] / 100)
    assert a.loglik == pytest.approx(b.loglik, rel=1e-12)
    np.testing.assert_allclose(a.fitted(), b.fitted(), rtol=1e-10)


def test_loglik_at_and_refit(fits):
    fit = fits["crossed_slope_ml"]
    assert fit.loglik_at(fit.fixef, fit.theta, fit.sigma) == pytest.approx(fit.loglik, rel=1e-10)
    assert fit.loglik_at(fit.fixef + 0.1, fit.theta, fit.sigma) < fit.loglik
    reml = fits["crossed_slope_reml"]
    assert reml.loglik_at(reml.fixef, reml.theta, reml.sigma, REML=True) == pytest.approx(
        reml.loglik, rel=1e-10
    )
    assert reml.refit(REML=False).loglik == pytest.approx(fit.loglik, rel=1e-9)
    y2 = fit.y + 1.0
    shifted = fit.refit(y=y2)
    assert shifted.fixef["(Intercept)"] == pytest.approx(fit.fixef["(Intercept)"] + 1.0, rel=1e-6)


def test_predict_new_data_and_re_form(fits):
    fit = fits["crossed_slope_reml"]
    df = DATA["sim"]
    np.testing.assert_allclose(fit.predict(df), fit.fitted(), rtol=1e-10)
    fixed = fit.predict(df, re_form="~0")
    np.testing.assert_allclose(fixed, fit.X @ fit.fixef.to_numpy(), rtol=1e-12)
    only_g = fit.predict(df, re_form="~ (1 + x | g)")
    b = fit.ranef["g"].loc[df["g"]].to_numpy()
    np.testing.assert_allclose(only_g, fixed + b[:, 0] + b[:, 1] * df["x"].to_numpy(), rtol=1e-10)
    new = df.head(3).assign(g=["zz", "g01", "g01"])
    with pytest.raises(ValueError, match="new levels of grouping factor 'g'"):
        fit.predict(new)
    got = fit.predict(new, allow_new_levels=True)
    assert got[0] == pytest.approx(fit.predict(new.head(1), re_form="~ (1 | h)")[0], rel=1e-12)


def test_anova_refits_with_ml(fits):
    small = lmer("y ~ x + (1 | g) + (1 | h)", DATA["sim"])
    big = fits["crossed_slope_reml"]
    tab = anova(big, small)
    assert list(tab.index) == ["fit1", "fit0"] and tab.attrs["refitted"]
    ll0, ll1 = small.refit(REML=False).loglik, big.refit(REML=False).loglik
    assert tab["Chisq"].iloc[1] == pytest.approx(2 * (ll1 - ll0), rel=1e-10)
    assert tab["Df"].iloc[1] == big.df - small.df == 4


@pytest.mark.r
def test_anova_and_predict_live_in_r(R, fits):
    path = (REF_DIR / "lmer_multi_sim.csv").as_posix()
    r = np.asarray(
        R(
            f'd <- read.csv("{path}", stringsAsFactors = TRUE);'
            "a <- lmer(y ~ x + f + (1 + x | g) + (1 | h), d); b <- lmer(y ~ x + (1 | g) + (1 | h), d);"
            "t <- suppressMessages(anova(b, a)); nd <- d[1:5, ]; nd$g <- factor(c('zz', 'g01', 'g02', 'g03', 'g04'));"
            "c(t$Chisq[2], t[['Pr(>Chisq)']][2], predict(a, nd, allow.new.levels = TRUE),"
            " predict(a, nd, re.form = NA))"
        )
    )
    big = fits["crossed_slope_reml"]
    small = lmer("y ~ x + (1 | g) + (1 | h)", DATA["sim"])
    tab = anova(small, big)
    assert tab["Chisq"].iloc[1] == pytest.approx(r[0], rel=1e-4)
    assert tab["Pr(>Chisq)"].iloc[1] == pytest.approx(r[1], rel=1e-3)
    nd = DATA["sim"].head(5).assign(g=["zz", "g01", "g02", "g03", "g04"])
    np.testing.assert_allclose(big.predict(nd, allow_new_levels=True), r[2:7], rtol=5e-5)
    np.testing.assert_allclose(big.predict(nd, re_form="~0"), r[7:12], rtol=1e-6)


@pytest.mark.r
def test_instEval_crossed_three_factors(R):
    """InstEval (73,421 rows; s 2972 x d 1128 x dept 14), ML, against a tight lme4 fit."""
    r = REF["instEval_ml"]
    df = pd.DataFrame(
        {c: np.asarray(R(f"as.character(InstEval${c})")) for c in ("s", "d", "dept", "service")}
    )
    df["y"] = np.asarray(R("InstEval$y"), dtype=float)
    fit = lmer("y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)", df, REML=False)
    assert _rel(fit.theta, r["theta"]) < 1e-5
    assert _rel(fit.fixef, r["beta"]) < 1e-5
    assert _rel(np.sqrt(np.diag(fit.vcov)), r["se"]) < 1e-5
    assert fit.loglik >= r["default_loglik"] - 1e-9 * abs(r["default_loglik"])
    assert fit.loglik >= r["loglik"] - 1e-6


# ---------------------------------------------------------------- grammar and errors


def test_grammar_expansions():
    f = parse_lmer_formula("log(y) ~ x + offset(o) + (1 | a/b/c) + (1 + x || g)")
    assert [t.text for t in f.random] == [
        "(1 | a)",
        "(1 | b:a)",
        "(1 | c:b:a)",
        "(1 | g)",
        "(0 + x | g)",
    ]
    assert f.response == "log(y)" and f.offsets == ("o",) and f.fixed == "x"
    g = parse_lmer_formula("y ~ 1 | g")  # lme4 accepts a bar term without parentheses
    assert [t.text for t in g.random] == ["(1 | g)"] and g.fixed == "1"


def test_errors_name_the_term():
    sim = DATA["sim"]
    with pytest.raises(
        ValueError, match="grouping factor 'one' of the term '\\(1 \\| one\\)' has 1 level"
    ):
        lmer("y ~ x + (1 | g) + (1 | one)", sim.assign(one="a"))
    with pytest.raises(ValueError, match="number of levels of grouping factor 'row'"):
        lmer("y ~ x + (1 | g) + (1 | row)", sim.assign(row=np.arange(len(sim))))
    with pytest.raises(ValueError, match="`weights` must be finite and non-negative"):
        lmer("y ~ x + (1 | g)", sim, weights=-np.ones(len(sim)))
    with pytest.raises(ValueError, match="`weights` must have one value per row"):
        lmer("y ~ x + (1 | g)", sim, weights=np.ones(3))
    with pytest.raises(ValueError, match="has no random-effects term"):
        lmer("y ~ x", sim)
    with pytest.raises(
        ValueError, match="random-effects design of the term '\\(1 \\+ x \\+ x2 \\| g\\)' is rank"
    ):
        lmer("y ~ x + (1 + x + x2 | g) + (1 | h)", sim)


def test_d4_stacks_every_grouping_factor():
    """D4's stacked refit relabels each grouping factor per imputation (checked by hand)."""
    import pymitml as pm
    from pymitml.pool._likelihood import _lmer_stacked_fit

    base = DATA["sim"]
    rng = np.random.default_rng(5)
    sets = [base.assign(y=base["y"] + rng.normal(scale=0.3, size=len(base))) for _ in range(3)]
    big = [lmer("y ~ x + f + (1 | g) + (1 | h)", d, REML=False) for d in sets]
    small = [lmer("y ~ x + (1 | g) + (1 | h)", d, REML=False) for d in sets]
    stacked = pd.concat(
        [d.assign(g=d["g"] + f"_{k}", h=d["h"] + f"_{k}") for k, d in enumerate(sets)],
        ignore_index=True,
    )
    direct = lmer("y ~ x + f + (1 | g) + (1 | h)", stacked, REML=False)
    assert _lmer_stacked_fit(big).loglik == pytest.approx(direct.loglik, rel=1e-9)
    res = pm.compare_models(big, small, method="D4")
    assert np.isfinite(res.table["F.value"].iloc[0]) and res.table["df1"].iloc[0] == 2


@pytest.mark.parametrize("formula", ["y ~ x + (1 | g)", "y ~ x + (1 | g) + (1 | h)"])
def test_infinite_values_are_an_error(formula):
    d = DATA["sim"].copy()
    d.loc[[4, 9], "x"] = [np.inf, -np.inf]
    with pytest.raises(ValueError, match=r"column 'x' has 2 infinite value\(s\) \(rows \[4, 9\]\)"):
        lmer(formula, d)
    d.loc[[4, 9], "x"] = 0.0
    d.loc[2, "y"] = np.inf
    with pytest.raises(ValueError, match=r"column 'y' has 1 infinite value\(s\) \(rows \[2\]\)"):
        lmer(formula, d)
