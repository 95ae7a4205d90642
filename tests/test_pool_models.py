"""Pooled model tests (D1-D4), constraints, anova and multilevel R2 against mitml.

Reference values: r_compat/models_ref.json, made by r_compat/models_ref.R from the completed data
of r_compat/models_data.R (mitml::panImpute on studentratings and jomoImpute on leadership, m = 5).
Both sides analyse the same CSV files. A few cases also run live in R through rpy2.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pymitml.lmm import lmer
from pymitml.pool.anova import anova
from pymitml.pool.constraints import pool_constraints
from pymitml.pool.model_tests import TEST_COLUMNS, compare_models, d1, d2
from pymitml.pool.r2 import multilevel_r2

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

R_COMPAT = Path(__file__).resolve().parents[1] / "r_compat"
REF = json.loads((R_COMPAT / "models_ref.json").read_text())
RTOL = 1e-6


def _split(path: Path) -> list[pd.DataFrame]:
    long = pd.read_csv(path)
    return [g.drop(columns=".imp").reset_index(drop=True) for _, g in long.groupby(".imp")]


@pytest.fixture(scope="module")
def fits():
    """All fits of the reference cases, by the names r_compat/models_ref.R uses."""
    sr = _split(R_COMPAT / "models_implist.csv")
    ld = _split(R_COMPAT / "models_leadership.csv")
    out = {}

    def lm(name, formula):
        out[name] = [smf.ols(formula, d).fit() for d in sr]

    def mixed(name, formula, data=sr, reml=True):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out[name] = [lmer(formula, d, REML=reml) for d in data]

    mixed("lmer_full", "Achiev ~ ReadDis + SES + Cogn + Girl + (1|ID)")
    mixed("lmer_null", "Achiev ~ ReadDis + Cogn + (1|ID)")
    mixed("lmer_min", "Achiev ~ Cogn + (1|ID)")
    mixed("lmer_full_ml", "Achiev ~ ReadDis + SES + Cogn + Girl + (1|ID)", reml=False)
    mixed("lmer_null_ml", "Achiev ~ ReadDis + Cogn + (1|ID)", reml=False)
    mixed("lead_slope", "JOBSAT ~ NEGLEAD + WLOAD + COHES + (1 + NEGLEAD|GRPID)", ld)
    mixed("lead_ri", "JOBSAT ~ NEGLEAD + WLOAD + COHES + (1|GRPID)", ld)
    mixed("lead_null", "JOBSAT ~ NEGLEAD + (1|GRPID)", ld)
    lm("lm_full", "Achiev ~ ReadDis + SES + Cogn + Girl")
    lm("lm_null", "Achiev ~ ReadDis + Cogn")
    lm("lm_min", "Achiev ~ Cogn")
    binom = sm.families.Binomial()
    out["glm_full"] = [
        smf.glm("Girl ~ Achiev + ReadDis + SES", d, family=binom).fit(tol=1e-14) for d in sr
    ]
    out["glm_null"] = [smf.glm("Girl ~ ReadDis", d, family=binom).fit(tol=1e-14) for d in sr]
    out["sr"], out["ld"] = sr, ld
    return out


def _row(table: pd.DataFrame) -> np.ndarray:
    return table[TEST_COLUMNS].to_numpy(dtype=float)


def _ref_row(ref: dict) -> np.ndarray:
    return np.array([ref[c] for c in TEST_COLUMNS], dtype=float).T


# --------------------------------------------------------------------------------------------
# testModels

MODEL_CASES = {
    "lmer_D1": ("lmer_full", "lmer_null", {"method": "D1"}),
    "lmer_D1_dfcom": ("lmer_full", "lmer_null", {"method": "D1", "df_com": 45}),
    "lmer_D2_wald": ("lmer_full", "lmer_null", {"method": "D2"}),
    "lmer_D2_wald_positive": ("lmer_full", "lmer_null", {"method": "D2", "ariv": "positive"}),
    "lmer_D2_likelihood": ("lmer_full", "lmer_null", {"method": "D2", "use": "likelihood"}),
    "lmer_D3": ("lmer_full", "lmer_null", {"method": "D3"}),
    "lmer_D3_positive": ("lmer_full", "lmer_null", {"method": "D3", "ariv": "positive"}),
    "lmer_D4": ("lmer_full", "lmer_null", {"method": "D4"}),
    "lmer_D4_robust": ("lmer_full", "lmer_null", {"method": "D4", "ariv": "robust"}),
    "lmer_D4_positive": ("lmer_full", "lmer_null", {"method": "D4", "ariv": "positive"}),
    "lmer_ml_D3": ("lmer_full_ml", "lmer_null_ml", {"method": "D3"}),
    "lead_slope_D3": ("lead_slope", "lead_ri", {"method": "D3"}),
    "lead_slope_D4": ("lead_slope", "lead_ri", {"method": "D4"}),
    "lead_slope_D2_likelihood": ("lead_slope", "lead_ri", {"method": "D2", "use": "likelihood"}),
    "lead_slope_null_D3": ("lead_slope", "lead_null", {"method": "D3"}),
    "lead_slope_null_D4_robust": ("lead_slope", "lead_null", {"method": "D4", "ariv": "robust"}),
    "lead_slope_null_D1": ("lead_slope", "lead_null", {"method": "D1"}),
    "lm_D1": ("lm_full", "lm_null", {"method": "D1"}),
    "lm_D1_dfcom": ("lm_full", "lm_null", {"method": "D1", "df_com": 745}),
    "lm_D1_dfcom_small": ("lm_full", "lm_null", {"method": "D1", "df_com": 12}),
    "lm_D2_wald": ("lm_full", "lm_null", {"method": "D2"}),
    "lm_D2_likelihood": ("lm_full", "lm_null", {"method": "D2", "use": "likelihood"}),
    "lm_D3": ("lm_full", "lm_null", {"method": "D3"}),
    "lm_D4": ("lm_full", "lm_null", {"method": "D4"}),
    "lm_D4_robust": ("lm_full", "lm_null", {"method": "D4", "ariv": "robust"}),
    "lm_D4_positive": ("lm_full", "lm_null", {"method": "D4", "ariv": "positive"}),
    "lm_D3_min": ("lm_full", "lm_min", {"method": "D3"}),
    "glm_D1": ("glm_full", "glm_null", {"method": "D1"}),
    "glm_D2_likelihood": ("glm_full", "glm_null", {"method": "D2", "use": "likelihood"}),
    "glm_D4": ("glm_full", "glm_null", {"method": "D4"}),
}


def test_reference_covers_every_case():
    assert set(MODEL_CASES) == set(REF["models"])


@pytest.mark.parametrize("case", sorted(MODEL_CASES))
def test_compare_models_equals_mitml(fits, case):
    model, null, kwargs = MODEL_CASES[case]
    res = compare_models(fits[model], fits[null], **kwargs)
    np.testing.assert_allclose(_row(res.table)[0], _ref_row(REF["models"][case]), rtol=RTOL)
    assert list(res.table.columns) == TEST_COLUMNS


def test_reml_fits_are_refitted_for_likelihood_methods(fits):
    res = compare_models(fits["lmer_full"], fits["lmer_null"], method="D3")
    assert res.reml and res.refit and res.use == "likelihood"
    wald = compare_models(fits["lmer_full"], fits["lmer_null"], method="D1")
    assert wald.reml and not wald.refit
    assert "Models originally fitted with REML were refitted using ML." in str(res)


@pytest.mark.parametrize(
    "case, model, null, kwargs",
    [
        ("lm_D1_dfcom", "lm_full", "lm_null", {"method": "D1", "df_com": 12}),
        ("lmer_D3", "lmer_full", "lmer_null", {"method": "D3"}),
        ("lm_D4_robust", "lm_full", "lm_null", {"method": "D4", "ariv": "robust"}),
    ],
)
def test_printout_matches_mitml(fits, case, model, null, kwargs):
    res = compare_models(fits[model], fits[null], **kwargs)
    assert res.summary().split("\n") == REF["print"][case]


# --------------------------------------------------------------------------------------------
# statistics on arrays: invariants


def test_d1_with_one_parameter_is_the_squared_pooled_t():
    rng = np.random.default_rng(3)
    q = rng.normal(1.0, 0.2, size=(7, 1))
    u = rng.uniform(0.01, 0.02, size=(7, 1, 1))
    f, k, _v, r = d1(q, u)
    b = q.var(ddof=1)
    t = u.mean() + (1 + 1 / 7) * b
    assert k == 1
    assert f == pytest.approx(q.mean() ** 2 / t, rel=1e-12)
    assert r == pytest.approx((1 + 1 / 7) * b / u.mean(), rel=1e-12)


def test_d2_of_identical_statistics_has_zero_riv():
    f, _k, v, r = d2(np.full(5, 6.0), 2)
    assert r == 0.0 and f == pytest.approx(3.0) and np.isinf(v)


def test_constraints_on_parameters_equal_the_nested_model_test(fits):
    """A linear test of SES = Girl = 0 is D1 of the model without SES and Girl."""
    con = pool_constraints(fits["lm_full"], ["SES", "Girl"], derivative="exact")
    red = compare_models(
        fits["lm_full"], [smf.ols("Achiev ~ ReadDis + Cogn", d).fit() for d in fits["sr"]]
    )
    np.testing.assert_allclose(_row(con.table), _row(red.table), rtol=1e-12)


# --------------------------------------------------------------------------------------------
# testConstraints

CON_LIN = ["ReadDis - SES", "Girl"]
CON_NL = ["ReadDis * SES", "Cogn^2 - 0.2", "exp(10 * Girl) - 0.5", "(Intercept)/100 - SES/2"]
CONSTRAINT_CASES = {
    "lmer_lin_D1": ("lmer_full", CON_LIN, {"method": "D1"}),
    "lmer_nl_D1": ("lmer_full", CON_NL, {"method": "D1"}),
    "lmer_nl_D1_dfcom": ("lmer_full", CON_NL, {"method": "D1", "df_com": 45}),
    "lmer_nl_D2": ("lmer_full", CON_NL, {"method": "D2"}),
    "lmer_nl_D2_positive": ("lmer_full", CON_NL, {"method": "D2", "ariv": "positive"}),
    "lm_lin_D1": ("lm_full", CON_LIN, {"method": "D1"}),
    "lm_nl_D2": ("lm_full", CON_NL, {"method": "D2"}),
}


def _check_constraints(res, ref, rtol):
    np.testing.assert_allclose(_row(res.table)[0], _ref_row(ref), rtol=rtol)
    np.testing.assert_allclose(res.estimates["Estimate"], ref["Qbar"], rtol=rtol)
    np.testing.assert_allclose(res.total_covariance.to_numpy(), np.array(ref["T"]), rtol=rtol)


@pytest.mark.parametrize("case", sorted(CONSTRAINT_CASES))
@pytest.mark.parametrize("derivative", ["forward", "exact"])
def test_pool_constraints_equals_mitml(fits, case, derivative):
    model, constraints, kwargs = CONSTRAINT_CASES[case]
    res = pool_constraints(fits[model], constraints, derivative=derivative, **kwargs)
    _check_constraints(res, REF["constraints"][case], RTOL)
    assert list(res.estimates.index) == constraints


def _r_qhat_uhat():
    c = REF["constraints"]
    q = pd.DataFrame(np.array(c["qhat"], dtype=float), columns=c["names"])
    u = np.array(c["uhat"], dtype=float).reshape(len(q), len(c["names"]), len(c["names"]))
    return q, u


@pytest.mark.parametrize("method", ["D1", "D2"])
def test_forward_derivative_reproduces_numericderiv_bit_for_bit(method):
    """With R's own estimates, the default derivative reproduces mitml to rounding."""
    q, u = _r_qhat_uhat()
    res = pool_constraints(qhat=q, uhat=u, constraints=CON_NL, method=method)
    _check_constraints(res, REF["constraints"][f"lm_qhat_{method}"], 1e-12)
    exact = pool_constraints(qhat=q, uhat=u, constraints=CON_NL, method=method, derivative="exact")
    _check_constraints(exact, REF["constraints"][f"lm_qhat_{method}"], 1e-6)


def test_exact_derivative_matches_central_differences():
    q, u = _r_qhat_uhat()
    res = pool_constraints(
        qhat=q, uhat=u, constraints="exp(10 * Girl) * SES / Cogn", derivative="exact"
    )

    def g(t):
        return np.exp(10 * t[4]) * t[2] / t[3]

    num = np.empty((len(q), 5))
    for i, theta in enumerate(q.to_numpy()):
        for j in range(5):
            h = 1e-5 * max(abs(theta[j]), 1e-3)
            e = np.zeros(5)
            e[j] = h
            num[i, j] = (g(theta + e) - g(theta - e)) / (2 * h)
    expected = np.einsum("li,lij,lj->l", num, u, num)
    np.testing.assert_allclose(res.uhat[:, 0, 0], expected, rtol=1e-7)


def test_constraint_names_backticks_and_intercept(fits):
    q, u = _r_qhat_uhat()
    q = q.rename(columns={"ReadDis": "Read:Dis"})
    a = pool_constraints(
        qhat=q, uhat=u, constraints=["`Read:Dis` * SES", "`(Intercept)` - 5", "Intercept + SES"]
    )
    b = pool_constraints(
        qhat=_r_qhat_uhat()[0],
        uhat=u,
        constraints=["ReadDis * SES", "(Intercept) - 5", "(Intercept) + SES"],
    )
    np.testing.assert_allclose(a.estimates.to_numpy(), b.estimates.to_numpy(), rtol=1e-15)


def test_constraint_printout_matches_mitml(fits):
    res = pool_constraints(fits["lm_full"], ["ReadDis - SES", "(Intercept)*1e6"])
    assert res.summary().split("\n") == REF["print"]["lm_con"]


# --------------------------------------------------------------------------------------------
# anova

ANOVA_CASES = {
    "lmer_D3": (("lmer_full", "lmer_null", "lmer_min"), {}),
    "lmer_D4": (("lmer_min", "lmer_full", "lmer_null"), {"method": "D4"}),
    "lmer_D2": (("lmer_full", "lmer_null", "lmer_min"), {"method": "D2"}),
    "lm_D3": (("lm_full", "lm_null", "lm_min"), {}),
    "lm_D4_robust": (("lm_full", "lm_min"), {"method": "D4", "ariv": "robust"}),
    "lead_D3": (("lead_null", "lead_slope", "lead_ri"), {}),
    "glm_fallback": (("glm_null", "glm_full"), {}),
}


@pytest.mark.parametrize("case", sorted(ANOVA_CASES))
def test_anova_equals_mitml(fits, case):
    names, kwargs = ANOVA_CASES[case]
    ref = REF["anova"][case]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = anova(*(fits[n] for n in names), **kwargs)
    np.testing.assert_allclose(_row(res.table), np.atleast_2d(_ref_row(ref)), rtol=RTOL)
    assert res.method == ref["method"]
    assert [f.replace(" ", "") for f in res.formulas] == [
        f.replace(" ", "") for f in np.atleast_1d(ref["formula"])
    ]
    if case == "glm_fallback":
        assert any("switching to 'D4'" in str(w.message) for w in caught)


def test_anova_printout_matches_mitml(fits):
    res = anova(fits["lm_min"], fits["lm_full"], fits["lm_null"])
    assert res.summary().split("\n") == REF["print"]["lm_anova"]


# --------------------------------------------------------------------------------------------
# multilevelR2

R2_CASES = {
    "slope": ("lead_slope", "all"),
    "ri": ("lead_ri", "all"),
    "full": ("lmer_full", "all"),
    "full_ml": ("lmer_full_ml", "all"),
    "slope_mvp": ("lead_slope", "MVP"),
    "slope_rb": ("lead_slope", "raudenbush"),
}


@pytest.mark.parametrize("case", sorted(R2_CASES))
def test_multilevel_r2_equals_mitml(fits, case):
    name, method = R2_CASES[case]
    res = multilevel_r2(fits[name], method=method)
    ref = REF["r2"][case]
    ref = pd.Series(ref) if isinstance(ref, dict) else pd.Series(ref, index=["MVP"])
    assert list(res.index) == list(ref.index)
    np.testing.assert_allclose(res.to_numpy(), ref.to_numpy(), rtol=RTOL)


def _r_params(case: str, kind: str) -> list[dict]:
    q = 2  # (1 + NEGLEAD | GRPID)
    out = []
    for p in REF["params"][case][kind].values():
        tau = np.array(p["Tau"], dtype=float)
        out.append(
            {k: np.array(v, dtype=float) for k, v in p.items()}
            | {
                "Tau": tau.reshape(int(np.sqrt(tau.size)), -1)
                if tau.size > 1
                else tau.reshape(1, 1)
            }
        )
    assert out[0]["Tau"].shape[0] in (1, q)
    return out


@pytest.mark.parametrize("case", ["lead_slope", "lead_ri"])
def test_d3_pooled_likelihood_at_lme4_estimates(fits, case):
    """Given lme4's own estimates, the pooled log-likelihoods equal mitml's (devfun2) exactly."""
    from pymitml.pool import _likelihood

    psi = _likelihood.pooled_parameters(_r_params(case, "ml"))
    got = _likelihood.logliks_at(fits[case], psi)
    np.testing.assert_allclose(
        got, np.array(REF["params"][case]["LL.pooled"], dtype=float), rtol=1e-11
    )


def test_multilevel_r2_at_lme4_estimates(fits):
    """Given lme4's estimates and null-model variances, R2 equals mitml's to rounding."""
    from pymitml.pool.r2 import r2_values

    vals = [
        r2_values(
            p["beta"], p["Tau"], float(p["sigma2"]), f.X, f.Z, (float(p["s0"]), float(p["t00"]))
        )
        for p, f in zip(_r_params("lead_slope", "reml"), fits["lead_slope"])
    ]
    np.testing.assert_allclose(
        np.mean(vals, axis=0), pd.Series(REF["r2"]["slope"]).to_numpy(), rtol=1e-12
    )


def test_multilevel_r2_single_fit_and_per_imputation(fits):
    single = multilevel_r2(fits["lead_slope"][0])
    np.testing.assert_allclose(
        single.to_numpy(), pd.Series(REF["r2"]["single"]).to_numpy(), rtol=RTOL
    )
    per = multilevel_r2(fits["lead_slope"], pooled=False)
    assert per.shape == (5, 4)
    np.testing.assert_allclose(
        per.mean().to_numpy(), pd.Series(REF["r2"]["slope"]).to_numpy(), rtol=RTOL
    )


# --------------------------------------------------------------------------------------------
# errors


def test_error_models_not_nested(fits):
    with pytest.raises(
        ValueError,
        match="the models are not nested: the null model has "
        r"parameters \['SES', 'Girl'\]",
    ):
        compare_models(fits["lm_null"], fits["lm_full"])
    with pytest.raises(ValueError, match="not nested or have the same parameters"):
        compare_models(fits["lm_full"], fits["lm_full"], method="D2")
    with pytest.raises(
        ValueError,
        match="the models are not nested: the model has 5 parameters and the null model 7",
    ):
        compare_models(fits["lmer_null"], fits["lmer_full"], method="D3")


def test_error_different_numbers_of_imputations(fits):
    with pytest.raises(
        ValueError,
        match="`null_fits` holds 4 fits but `fits` holds 5: the numbers of imputations differ",
    ):
        compare_models(fits["lm_full"], fits["lm_null"][:4])
    with pytest.raises(ValueError, match=r"fits\[1\] holds 3 fits but fits\[0\] holds 5"):
        anova(fits["lm_full"], fits["lm_null"][:3])


def test_error_fits_from_different_data_lists(fits):
    shuffled = fits["lmer_null"][1:] + fits["lmer_null"][:1]
    with pytest.raises(
        ValueError, match="fit 1 of the model and of the null model were fitted to different data"
    ):
        compare_models(fits["lmer_full"], shuffled, method="D3")
    other = [smf.ols("Achiev ~ ReadDis + Cogn", d).fit() for d in fits["sr"][::-1]]
    with pytest.raises(ValueError, match="fitted to different data"):
        compare_models(fits["lm_full"], other, method="D1")


def test_error_mismatched_parameter_sets(fits):
    mixed = fits["lm_full"][:4] + [smf.ols("Achiev ~ ReadDis + SES + Cogn", fits["sr"][4]).fit()]
    with pytest.raises(ValueError, match="Every imputed data set must give the same parameters"):
        compare_models(mixed, fits["lm_null"])


def test_error_bad_arguments(fits):
    with pytest.raises(
        ValueError, match="`method` must be one of 'D1', 'D2', 'D3', 'D4'; got 'D5'"
    ):
        compare_models(fits["lm_full"], fits["lm_null"], method="D5")
    with pytest.raises(ValueError, match="`df_com` must be a positive number"):
        compare_models(fits["lm_full"], fits["lm_null"], df_com=-3)
    with pytest.raises(TypeError, match="`fits` must be a list of fitted models"):
        compare_models(fits["lm_full"][0], fits["lm_null"])
    with pytest.warns(UserWarning, match="`df_com` is only used with method 'D1'"):
        compare_models(fits["lm_full"], fits["lm_null"], method="D2", df_com=10)
    with pytest.raises(ValueError, match="anova needs at least two lists of fits"):
        anova(fits["lm_full"])


def test_error_likelihood_unavailable(fits):
    pairs = [(f.params, f.cov_params()) for f in fits["lm_full"]]
    pairs0 = [(f.params, f.cov_params()) for f in fits["lm_null"]]
    assert compare_models(pairs, pairs0).table.shape == (1, 5)  # Wald works on pairs
    with pytest.raises(TypeError, match="cannot evaluate the likelihood for fits of class 'tuple'"):
        compare_models(pairs, pairs0, method="D3")
    with pytest.raises(TypeError, match="D3 needs the likelihood at given parameters"):
        compare_models(fits["glm_full"], fits["glm_null"], method="D3")
    with pytest.raises(TypeError, match="available for pymitml.lmer fits"):
        multilevel_r2(fits["lm_full"])


def test_error_constraints(fits):
    with pytest.raises(ValueError, match="names 'Achievement', which is not a parameter"):
        pool_constraints(fits["lm_full"], "Achievement - 1")
    with pytest.raises(ValueError, match="calls 'gamma', which is not supported"):
        pool_constraints(fits["lm_full"], "gamma(SES)")
    with pytest.raises(ValueError, match="contains"):
        pool_constraints(fits["lm_full"], "SES if Girl else Cogn")
    with pytest.raises(ValueError, match="give either `fits` or both `qhat` and `uhat`"):
        pool_constraints(constraints="SES")
    with pytest.raises(ValueError, match="`constraints` must be a non-empty string"):
        pool_constraints(fits["lm_full"], [])
    with pytest.raises(ValueError, match="are not finite at the estimates"):
        pool_constraints(fits["lm_full"], "log(ReadDis)")


# --------------------------------------------------------------------------------------------
# live in R (rpy2)


def _simulated_list(seed: int, m: int = 4) -> list[pd.DataFrame]:
    """m 'imputed' data sets with a clear random slope: the observed x plus imputation noise."""
    rng = np.random.default_rng(seed)
    J, nj = 40, 12
    g = np.repeat(np.arange(1, J + 1), nj)
    x = rng.normal(size=J * nj)
    z = rng.normal(size=J * nj)
    u0, u1 = rng.normal(0, 0.7, J), rng.normal(0, 0.5, J)
    y = 1 + 0.4 * x + 0.2 * z + u0[g - 1] + u1[g - 1] * x + rng.normal(size=J * nj)
    return [
        pd.DataFrame(
            {
                "g": g,
                "y": y,
                "x": x + rng.normal(0, 0.3, J * nj),
                "z": z + rng.normal(0, 0.3, J * nj),
            }
        )
        for _ in range(m)
    ]


_R_LIVE = """
function(long) {
  implist <- lapply(split(long, long$imp), function(d) { d$imp <- NULL; d })
  each <- function(fun, fml, ...) {
    out <- lapply(implist, function(d) do.call(fun, list(formula = fml, data = d, ...)))
    class(out) <- c("mitml.result", "list"); out }
  tight <- lmerControl(optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-14,
                       ftol_abs = 1e-15, xtol_rel = 0, ftol_rel = 1e-15, maxeval = 1e5))
  s <- each(lmer, y ~ x + z + (1 + x | g), control = tight)
  r <- each(lmer, y ~ x + z + (1 | g), control = tight)
  l1 <- each(lm, y ~ x + z); l0 <- each(lm, y ~ 1)
  tab <- function(x) as.numeric(x$test)
  list(D3 = tab(testModels(s, r, method = "D3")), D4 = tab(testModels(s, r, method = "D4")),
       D1 = tab(testModels(l1, l0, method = "D1", df.com = 30)),
       con = tab(testConstraints(l1, constraints = c("x * z", "x^2 - z"), method = "D2")),
       R2 = as.numeric(multilevelR2(s)))
}
"""


@pytest.fixture(scope="module")
def live(R):
    """R's results and the simulated data sets, computed once for the live tests."""
    import rpy2.robjects as ro
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    data = _simulated_list(11)
    long = pd.concat([d.assign(imp=i + 1) for i, d in enumerate(data)], ignore_index=True)
    with localconverter(ro.default_converter + pandas2ri.converter):
        r_long = ro.conversion.py2rpy(long)
    out = R(_R_LIVE)(r_long)
    ref = {k: np.asarray(out.rx2(k), dtype=float) for k in ("D3", "D4", "D1", "con", "R2")}
    return data, ref


@pytest.mark.r
def test_live_in_r_random_slope_lmer_d3_d4_r2(live):
    data, ref = live
    s = [lmer("y ~ x + z + (1 + x | g)", d) for d in data]
    r = [lmer("y ~ x + z + (1 | g)", d) for d in data]
    # R's fits run lme4's optimiser to convergence (D3 and R2 depend on the estimates themselves)
    np.testing.assert_allclose(
        _row(compare_models(s, r, method="D3").table)[0], ref["D3"], rtol=RTOL
    )
    np.testing.assert_allclose(
        _row(compare_models(s, r, method="D4").table)[0], ref["D4"], rtol=RTOL
    )
    np.testing.assert_allclose(multilevel_r2(s).to_numpy(), ref["R2"], rtol=RTOL)


@pytest.mark.r
def test_live_in_r_ols_small_sample_d1_and_constraints(live):
    data, ref = live
    l1 = [smf.ols("y ~ x + z", d).fit() for d in data]
    l0 = [smf.ols("y ~ 1", d).fit() for d in data]
    np.testing.assert_allclose(
        _row(compare_models(l1, l0, df_com=30).table)[0], ref["D1"], rtol=RTOL
    )
    con = pool_constraints(l1, ["x * z", "x^2 - z"], method="D2")
    np.testing.assert_allclose(_row(con.table)[0], ref["con"], rtol=RTOL)
