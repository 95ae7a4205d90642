"""pm.glmer against lme4's glmer (references made by r_compat/glmer_ref.R) and its invariants."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.exceptions import ConvergenceWarning
from pymitml.lmm._family import glm_rows, make_family
from pymitml.lmm._pirls import GlmmData, OneFactorSystem, pirls
from pymitml.lmm._pirls_agq import agq_deviance
from pymitml.lmm.glmer_design import build_glmer_design
from pymitml.lmm.glmer_fit import MultiGlmerFit

HERE = Path(__file__).resolve().parent.parent / "r_compat"
REF = json.loads((HERE / "glmer_ref.json").read_text())
CASES = [k for k in REF if k not in ("r_versions", "pooling") and not REF[k]["pending"]]
TOL = 1e-4


def _cbpp() -> pd.DataFrame:
    df = pd.read_csv(HERE / "glmer_cbpp.csv")
    df["period"] = df["period"].astype(str)
    df["herd"] = df["herd"].astype(str).str.zfill(2)
    df["prop"] = df["incidence"] / df["size"]
    return df


def _sim() -> pd.DataFrame:
    return pd.read_csv(HERE / "glmer_sim.csv")


def _data(case: dict) -> pd.DataFrame:
    return _cbpp() if case["data"] == "cbpp" else _sim()


_FITS: dict[str, pm.GlmerFit] = {}


def _fit(name: str) -> pm.GlmerFit:
    if name not in _FITS:
        c = REF[name]
        _FITS[name] = pm.glmer(
            c["formula"],
            _data(c),
            c["family"],
            link=c["link"],
            nAGQ=c["nAGQ"],
            weights=c["weights"] or None,
        )
    return _FITS[name]


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-3)))


def _rel_cov(a, b) -> float:
    """max |a_ij - b_ij| / sqrt(b_ii b_jj): covariances relative to their variances' scale."""
    a, b = np.atleast_2d(np.asarray(a, dtype=float)), np.atleast_2d(np.asarray(b, dtype=float))
    d = np.sqrt(np.diag(b))
    return float(np.max(np.abs(a - b) / np.outer(d, d)))


@pytest.mark.parametrize("name", CASES)
def test_estimates_equal_lme4(name):
    c, fit = REF[name], _fit(name)
    assert fit.converged, fit.messages
    assert list(fit.fixef.index) == c["fixef_names"]
    assert _rel(fit.fixef, c["fixef"]) < TOL
    assert _rel(fit.theta, np.atleast_1d(c["theta"])) < TOL
    assert _rel_cov(fit.vcov.to_numpy(), c["vcov"]) < TOL
    assert _rel_cov(fit.vcov_rx.to_numpy(), c["vcov_rx"]) < TOL
    assert _rel(fit.varcorr["vcov"], np.atleast_1d(c["varcorr"]["vcov"])) < TOL
    assert _rel(fit.varcorr["sdcor"], np.atleast_1d(c["varcorr"]["sdcor"])) < TOL
    # the optimum is at least as good as lme4's tightly converged one
    r_objective = c["dev"] if c["nAGQ"] > 1 else c["drsum"] + c["ussq"] + c["ldL2"]
    assert fit.objective <= r_objective + 1e-8 * abs(r_objective)
    assert fit.objective == pytest.approx(r_objective, rel=1e-8)
    assert fit.loglik == pytest.approx(c["loglik"], rel=1e-8)
    assert fit.df == c["df"] and fit.nobs == c["nobs"] and fit.ngroups == c["ngroups"]
    assert fit.aic == pytest.approx(c["aic"], rel=1e-8)
    assert fit.bic == pytest.approx(c["bic"], rel=1e-8)
    assert fit.deviance == pytest.approx(c["deviance"], rel=TOL)
    assert fit.singular == c["singular"]


@pytest.mark.parametrize("name", ["cbpp_laplace", "bin_slope", "poisson", "cloglog_agq7"])
def test_modes_fitted_residuals_equal_lme4(name):
    c, fit = REF[name], _fit(name)
    ranef = np.asarray(c["ranef"], dtype=float).reshape(fit.ranef.shape)
    assert list(fit.ranef.columns) == list(np.atleast_1d(c["ranef_names"]))
    assert np.max(np.abs(fit.ranef.to_numpy() - ranef)) < TOL * np.max(np.abs(ranef))
    scale = lambda v: np.max(np.abs(v))  # noqa: E731
    for mine, key in [
        (fit.fitted(), "fitted"),
        (fit.predict(), "eta"),
        (fit.predict(type="response"), "fitted"),
        (fit.residuals(), "resid_deviance"),
        (fit.residuals("pearson"), "resid_pearson"),
        (fit.residuals("response"), "resid_response"),
    ]:
        ref = np.asarray(c[key])
        assert np.max(np.abs(mine - ref)) < TOL * scale(ref), key


def test_laplace_and_agq_at_lme4_parameters():
    """The criterion itself, at lme4's estimates: equal to 1e-9 (no optimiser involved)."""
    for name in ("cbpp_laplace", "cbpp_agq25"):
        c = REF[name]
        fam = make_family("binomial", None)
        d = build_glmer_design(c["formula"], _cbpp(), fam, None, None, "fail")
        L = d.lmer
        system = OneFactorSystem(L.X, L.Z, L.codes, L.n_clusters)
        data = GlmmData(d.y, d.weights, d.offset, fam)
        theta = np.atleast_1d(c["theta"])
        mode = pirls(system, data, theta, np.asarray(c["fixef"]))
        assert mode is not None and mode.converged
        if c["nAGQ"] == 1:
            assert mode.devres.sum() == pytest.approx(c["drsum"], rel=1e-10)
            assert np.sum(mode.u**2) == pytest.approx(c["ussq"], rel=1e-9)
            assert mode.logdet == pytest.approx(c["ldL2"], rel=1e-8)
            # nAGQ = 1 quadrature is the Laplace approximation
            one = agq_deviance(mode, data, L.Z, L.codes, float(theta[0]), 1)
            assert one == pytest.approx(mode.laplace, rel=1e-13)
        else:
            dev = agq_deviance(mode, data, L.Z, L.codes, float(theta[0]), c["nAGQ"])
            assert dev == pytest.approx(c["dev"], rel=1e-10)


def test_pirls_mode_is_stationary():
    """At the mode the gradient of the penalised deviance in u vanishes (finite differences)."""
    c = REF["bin_slope"]
    fam = make_family("binomial", None)
    d = build_glmer_design(c["formula"], _sim(), fam, None, None, "fail")
    L = d.lmer
    system = OneFactorSystem(L.X, L.Z, L.codes, L.n_clusters)
    data = GlmmData(d.y, d.weights, d.offset, fam)
    theta, beta = np.asarray(c["theta"]), np.asarray(c["fixef"])
    mode = pirls(system, data, theta, beta)
    T = np.array([[theta[0], 0.0], [theta[1], theta[2]]])

    def penalised(u):
        eta = L.X @ beta + np.sum(L.Z * (u @ T.T)[L.codes], axis=1)
        mu = 1.0 / (1.0 + np.exp(-eta))
        y = d.y
        dev = -2.0 * np.sum(y * np.log(mu) + (1 - y) * np.log1p(-mu))
        return dev + np.sum(u * u)

    h = 1e-6
    for j, a in [(0, 0), (3, 1), (17, 0)]:
        up, lo = mode.u.copy(), mode.u.copy()
        up[j, a] += h
        lo[j, a] -= h
        assert abs(penalised(up) - penalised(lo)) / (2 * h) < 1e-5


@pytest.mark.parametrize("link", ["logit", "probit", "cloglog", "log"])
def test_family_rows_numpy_reference(link):
    rng = np.random.default_rng(3)
    eta = rng.normal(scale=1.0, size=50)  # inside the clamps
    fam = make_family("poisson" if link == "log" else "binomial", link)
    from scipy.special import ndtr

    mu_ref = {
        "logit": 1 / (1 + np.exp(-eta)),
        "probit": ndtr(eta),
        "cloglog": -np.expm1(-np.exp(eta)),
        "log": np.exp(eta),
    }[link]
    dmu = {
        "logit": mu_ref * (1 - mu_ref),
        "probit": np.exp(-0.5 * eta**2) / math.sqrt(2 * math.pi),
        "cloglog": np.exp(eta - np.exp(eta)),
        "log": mu_ref,
    }[link]
    a = rng.integers(1, 5, size=50).astype(float)
    y = rng.binomial(a.astype(int), mu_ref) / a if link != "log" else rng.poisson(mu_ref) * 1.0
    var = mu_ref * (1 - mu_ref) if link != "log" else mu_ref
    mu, sw, wres, dr = (np.empty(50) for _ in range(4))
    total = glm_rows(fam.code, fam.link_code, eta, y, a, mu, sw, wres, dr)
    with np.errstate(divide="ignore", invalid="ignore"):
        if link == "log":
            dref = 2 * a * (np.where(y > 0, y * np.log(y / mu_ref), 0) - (y - mu_ref))
        else:
            dref = (
                2
                * a
                * (
                    np.where(y > 0, y * np.log(y / mu_ref), 0)
                    + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu_ref)), 0)
                )
            )
    np.testing.assert_allclose(mu, mu_ref, rtol=1e-12)
    np.testing.assert_allclose(sw, np.sqrt(a * dmu**2 / var), rtol=1e-10)
    np.testing.assert_allclose(wres, (y - mu_ref) / dmu, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dr, dref, rtol=1e-10, atol=1e-12)
    assert total == pytest.approx(dref.sum(), rel=1e-12)


def test_response_codings_agree():
    """0/1 numeric, bool and a two-level factor (first level = failure) give the same fit."""
    sim = _sim()
    base = _fit("probit")
    sim["yb_bool"] = sim["yp"].astype(bool)
    sim["yb_fac"] = pd.Categorical(np.where(sim["yp"] == 1, "yes", "no"), ["no", "yes"])
    for col in ("yb_bool", "yb_fac"):
        fit = pm.glmer(f"{col} ~ x + (1 | g)", sim, link="probit")
        np.testing.assert_allclose(fit.fixef, base.fixef, rtol=1e-7)
    # the proportion with weights is the cbind model (same numbers as lme4's, tested above)
    assert _rel(_fit("cbpp_prop").fixef, _fit("cbpp_laplace").fixef) < 1e-7


def test_offset_shifts_intercept():
    sim = _sim()
    base = _fit("poisson")
    sim["off"] = 0.7
    fit = pm.glmer("yc ~ x + f + offset(off) + (1 | g)", sim, "poisson")
    fit2 = pm.glmer("yc ~ x + f + (1 | g)", sim, "poisson", offset=np.full(len(sim), 0.7))
    assert fit.fixef["(Intercept)"] == pytest.approx(base.fixef["(Intercept)"] - 0.7, abs=1e-6)
    assert fit.loglik == pytest.approx(base.loglik, rel=1e-9)
    np.testing.assert_allclose(fit2.fixef, fit.fixef, rtol=1e-8)


def test_derivative_free_fallback(monkeypatch):
    """When Newton alone does not pass the convergence check, COBYQA runs and Newton polishes."""
    from pymitml.lmm import glmer_optimize as go

    real, calls = go._convergence, []

    def first_fails(*args):
        calls.append(1)
        return (False, ["forced"]) if len(calls) <= 2 else real(*args)

    monkeypatch.setattr(go, "_convergence", first_fails)
    c = REF["probit"]
    fit = pm.glmer(c["formula"], _sim(), link="probit")
    assert len(calls) >= 3 and fit.converged
    assert _rel(fit.fixef, c["fixef"]) < TOL
    assert fit.objective <= c["drsum"] + c["ussq"] + c["ldL2"] + 1e-8


def test_summary_layout():
    text = _fit("cbpp_laplace").summary()
    assert "Generalized linear mixed model fit by maximum likelihood (Laplace" in text
    assert " Family: binomial  ( logit )" in text
    assert "   194.1    204.2    -92.0    184.1       51" in text
    assert "Number of obs: 56, groups:  herd, 15" in text
    assert "z value Pr(>|z|)" in text
    # the lines of R's summary(fit) of the same (tightly converged) fit, trailing blanks aside
    for line in [
        "-2.3818 -0.7888 -0.2024  0.5146  2.8796",
        " herd   (Intercept) 0.4125   0.6423",
        "(Intercept)  -1.3985     0.2325  -6.016 1.79e-09 ***",
        "period2      -0.9923     0.3066  -3.236 0.001212 **",
        "period4      -1.5803     0.4274  -3.697 0.000218 ***",
        "period4 -0.261  0.212  0.196",
    ]:
        assert line in text.splitlines(), line
    assert "nAGQ = 25" in _fit("cbpp_agq25").summary()


# ----- bad input --------------------------------------------------------------------------


def test_binomial_response_out_of_range():
    sim = _sim()
    with pytest.raises(ValueError, match=r"response 'yc' must be in \[0, 1\]"):
        pm.glmer("yc ~ x + (1 | g)", sim)
    cb = _cbpp()
    with pytest.raises(ValueError, match="negative counts in 1 row"):
        cb.loc[0, "incidence"] = cb.loc[0, "size"] + 1
        pm.glmer("cbind(incidence, size - incidence) ~ period + (1 | herd)", cb)


def test_poisson_bad_counts():
    sim = _sim()
    sim["yneg"] = sim["yc"] - 1.0
    with pytest.raises(ValueError, match="negative values are not allowed for the 'poisson'"):
        pm.glmer("yneg ~ x + (1 | g)", sim, "poisson")
    sim["yhalf"] = sim["yc"] + 0.5
    with pytest.warns(UserWarning, match="non-integer x = "):
        fit = pm.glmer("yhalf ~ x + (1 | g)", sim, "poisson")
    # the deviance-based fit is defined, logLik is -Inf as in lme4 (whose optimiser leaves
    # theta at its start value 1 on these data: not a reference)
    assert np.isfinite(fit.objective) and fit.loglik == -np.inf and fit.converged


def test_singular_fit_is_flagged():
    fit = _fit("singular")
    assert fit.singular and fit.theta[0] < 1e-4
    assert "boundary (singular) fit: see help('isSingular')" in fit.messages[-1]
    assert fit.converged


def test_weights_argument():
    cb = _cbpp()
    fit = pm.glmer("prop ~ period + (1 | herd)", cb, weights=cb["size"].to_numpy())
    np.testing.assert_allclose(fit.fixef, _fit("cbpp_laplace").fixef, rtol=1e-7)
    with pytest.raises(ValueError, match="`weights` must be a column name or have one value"):
        pm.glmer("prop ~ period + (1 | herd)", cb, weights=[1.0, 2.0])
    with pytest.raises(ValueError, match="`weights` must be non-negative"):
        pm.glmer("prop ~ period + (1 | herd)", cb, weights=-cb["size"])
    with pytest.warns(UserWarning, match="non-integer #successes in a binomial glm"):
        pm.glmer("prop ~ period + (1 | herd)", cb)


def test_grouping_factor_with_one_level():
    sim = _sim()
    sim["one"] = "a"
    with pytest.raises(ValueError, match="cluster 'one' has 1 cluster"):
        pm.glmer("yb ~ x + (1 | one)", sim)


def test_agq_needs_one_scalar_random_effect():
    with pytest.raises(ValueError, match="nAGQ > 1 is only available for models with a single"):
        pm.glmer("yb ~ x + (1 + x | g)", _sim(), nAGQ=5)


def test_bad_nagq():
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="`nAGQ` must be a non-negative integer"):
            pm.glmer("yb ~ x + (1 | g)", _sim(), nAGQ=bad)


def test_polars_input():
    pl = pytest.importorskip("polars")
    fit = pm.glmer("yp ~ x + (1 | g)", pl.from_pandas(_sim()), link="probit")
    np.testing.assert_allclose(fit.fixef, _fit("probit").fixef, rtol=1e-9)


def test_three_grouping_factors_grouseticks():
    """lme4's grouseticks: Poisson with three grouping factors (one observation-level).

    lme4's stage-2 optimum (tight control) is flat along the intercept/HEIGHT direction
    (HEIGHT ~ 460 on average): ours has a higher log-likelihood, so theta is compared to 1e-4
    and beta, whose last digits follow that flat direction, to 1e-3 of its largest element.
    """
    r = REF["grouseticks"]
    gt = pd.read_csv(HERE / "glmer_grouseticks.csv")
    gt["YEAR"] = gt["YEAR"].astype(str)
    fit = pm.glmer(r["formula"], gt, "poisson")
    assert isinstance(fit, MultiGlmerFit)
    assert list(fit.fixef.index) == r["fixef_names"]
    assert fit.loglik >= r["loglik"] - 1e-9 * abs(r["loglik"])
    assert fit.loglik == pytest.approx(r["loglik"], rel=1e-6)
    np.testing.assert_allclose(fit.theta, r["theta"], rtol=1e-4)
    scale = np.max(np.abs(r["fixef"]))
    np.testing.assert_allclose(fit.fixef, r["fixef"], atol=1e-3 * scale)
    assert list(fit.ranef) == ["INDEX", "BROOD", "LOCATION"]
    assert [t.n_levels for t in fit.re_terms] == [403, 118, 63]
    out = str(fit)
    assert "INDEX    (Intercept)" in out and "groups:  INDEX, 403; BROOD, 118; LOCATION, 63" in out
    with pytest.raises(AttributeError, match="this fit has 3 random-effect terms"):
        fit.cluster_codes
    with pytest.raises(ValueError, match="nAGQ > 1 is only available .* 3 random-effect terms"):
        pm.glmer(r["formula"], gt, "poisson", nAGQ=5)


def test_bad_family_and_link():
    with pytest.raises(ValueError, match="`family` must be one of"):
        pm.glmer("yb ~ x + (1 | g)", _sim(), "gaussian")
    with pytest.raises(ValueError, match="`link` must be one of"):
        pm.glmer("yc ~ x + (1 | g)", _sim(), "poisson", link="logit")


def test_perfect_separation_warns_naming_the_term():
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(20), 15)
    x = rng.normal(size=g.size)
    sep = (x > 0).astype(float)
    df = pd.DataFrame({"y": sep, "x": x, "z": rng.normal(size=g.size), "g": g})
    with pytest.warns(ConvergenceWarning, match=r"separation by \['x'\]"):
        fit = pm.glmer("y ~ z + x + (1 | g)", df)
    assert not fit.converged


def test_missing_values():
    sim = _sim()
    sim.loc[3, "x"] = np.nan
    with pytest.raises(ValueError, match="missing values in 1 row"):
        pm.glmer("yp ~ x + (1 | g)", sim)
    fit = pm.glmer("yp ~ x + (1 | g)", sim, na_action="omit")
    assert fit.nobs == len(sim) - 1 and 3 not in fit.rows


# ----- pooling ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pooled_fits():
    long = pd.read_csv(HERE / "glmer_implist.csv")
    implist = pm.long_to_mitml_list(long, split=".imp")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        full = implist.with_(lambda d: pm.glmer("yb ~ x + f + (1 | g)", d))
        null = implist.with_(lambda d: pm.glmer("yb ~ x + (1 | g)", d))
    return full, null


def test_pool_estimates_equal_mitml(pooled_fits):
    full, _ = pooled_fits
    ref = REF["pooling"]
    est = pm.pool_estimates(full, extra_pars=True)
    tab = est.table
    want = np.asarray(ref["estimates"]["values"])
    assert list(tab.index) == ref["estimates"]["rows"]
    for j, col in enumerate(ref["estimates"]["cols"]):
        assert _rel(tab[col], want[:, j]) < TOL, col
    extra = est.extra
    assert list(extra.index) == [ref["extra"]["rows"]]
    assert _rel(extra["Estimate"], np.ravel(ref["extra"]["values"])) < TOL
    lls = [f.loglik for f in full]
    assert _rel(lls, ref["loglik_full"]) < 1e-8


@pytest.mark.parametrize(
    "key,kwargs",
    [
        ("D1", dict(method="D1")),
        ("D2_wald", dict(method="D2", use="wald")),
        ("D2_likelihood", dict(method="D2", use="likelihood")),
        ("D4", dict(method="D4")),
    ],
)
def test_compare_models_equal_mitml(pooled_fits, key, kwargs):
    full, null = pooled_fits
    ref = REF["pooling"][key]
    res = pm.compare_models(full, null, **kwargs)
    got = res.table.iloc[0]
    for col, value in zip(ref["cols"], ref["values"]):
        assert got[col] == pytest.approx(value, rel=TOL), col


def test_d3_is_not_available(pooled_fits):
    full, null = pooled_fits
    with pytest.raises(TypeError, match="D3"):
        pm.compare_models(full, null, method="D3")


# ----- live R ------------------------------------------------------------------------------

R_TIGHT = "glmerControl(tolPwrss = 1e-12, optCtrl = list(maxfun = 1e5, rhoend = 1e-12))"


@pytest.mark.r
@pytest.mark.parametrize(
    "formula,family,extra",
    [
        ("y ~ x + w + (1 + x | g)", "binomial", ""),
        ("k ~ x + (1 | g)", "poisson", ", nAGQ = 9"),
    ],
)
def test_live_r_glmer(R, tmp_path, formula, family, extra):
    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(40), rng.integers(5, 25, size=40))
    n = g.size
    x, w = rng.normal(size=n), rng.normal(size=40)[g]
    b0, b1 = rng.normal(scale=0.8, size=40)[g], rng.normal(scale=0.4, size=40)[g]
    y = rng.binomial(1, 1 / (1 + np.exp(-(0.2 + 0.7 * x - 0.4 * w + b0 + b1 * x))))
    k = rng.poisson(np.exp(0.3 + 0.4 * x + b0))
    d = pd.DataFrame({"g": [f"c{j:02d}" for j in g], "x": x, "w": w, "y": y, "k": k})
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    R(
        f"d <- read.csv('{path}'); fit <- suppressMessages(glmer({formula}, d, family = "
        f"{family}{extra}, control = {R_TIGHT}))"
    )
    nagq = 9 if "nAGQ" in extra else 1
    fit = pm.glmer(formula, d, family, nAGQ=nagq)
    assert _rel(fit.fixef, np.array(R("fixef(fit)"))) < TOL
    assert _rel_cov(fit.vcov.to_numpy(), np.array(R("as.matrix(vcov(fit))"))) < TOL
    assert _rel(fit.theta, np.array(R("getME(fit, 'theta')"))) < TOL
    r_obj = (
        R("fit@devcomp$cmp[['dev']]")[0]
        if nagq > 1
        else R("sum(fit@devcomp$cmp[c('drsum', 'ussq', 'ldL2')])")[0]
    )
    assert fit.objective <= r_obj + 1e-8 * abs(r_obj)
    assert fit.loglik == pytest.approx(R("as.numeric(logLik(fit))")[0], rel=1e-7)
    r_misc = R("mitml:::.getMisc.merMod(fit)")
    assert list(fit.extra_pars.index) == list(r_misc.names)
    assert _rel(fit.extra_pars.to_numpy(), np.array(r_misc)) < TOL


@pytest.mark.parametrize("fixed", [True, False])
def test_sparse_system_equals_one_factor_system(fixed):
    """The generic sparse penalised system (any Z, Lambda) gives the one-factor kernels' PIRLS."""
    from scipy import sparse

    from pymitml.lmm._pirls import lower_tri
    from pymitml.lmm._pirls_sparse import SparseSystem

    c = REF["bin_slope"]
    fam = make_family("binomial", None)
    d = build_glmer_design(c["formula"], _sim(), fam, None, None, "fail")
    L = d.lmer
    J, q = L.n_clusters, L.q
    rows = np.repeat(np.arange(L.n), q)
    cols = (L.codes[:, None] * q + np.arange(q)).ravel()
    Z = sparse.csc_matrix((L.Z.ravel(), (rows, cols)), shape=(L.n, J * q))

    def lam(theta):
        return sparse.kron(sparse.identity(J), sparse.csr_matrix(lower_tri(theta, q)), "csc")

    data = GlmmData(d.y, d.weights, d.offset, fam)
    theta, beta = np.asarray(c["theta"]), np.asarray(c["fixef"])
    a = pirls(OneFactorSystem(L.X, L.Z, L.codes, J), data, theta, beta, fixed=fixed)
    b = pirls(SparseSystem(L.X, Z, lam), data, theta, beta, fixed=fixed)
    assert a is not None and b is not None
    assert b.laplace == pytest.approx(a.laplace, rel=1e-12)
    np.testing.assert_allclose(b.u.ravel(), a.u.ravel(), atol=1e-10)
    np.testing.assert_allclose(b.beta, a.beta, atol=1e-10)


@pytest.mark.parametrize("fixed", [True, False])
def test_blocked_system_equals_sparse_system(fixed):
    """lmer's blocked factorisation in PIRLS equals the generic sparse system (three factors)."""
    from scipy import sparse

    from pymitml.lmm._pirls_blocked import BlockedSystem
    from pymitml.lmm._pirls_sparse import SparseSystem

    r = REF["grouseticks"]
    gt = pd.read_csv(HERE / "glmer_grouseticks.csv")
    gt["YEAR"] = gt["YEAR"].astype(str)
    fam = make_family("poisson", None)
    d = build_glmer_design(r["formula"], gt, fam, None, None, "fail")
    M = d.lmer
    sizes = [t.n_levels for t in M.terms]

    def lam(theta):
        return sparse.diags(np.repeat(theta, sizes), format="csc")

    data = GlmmData(d.y, d.weights, d.offset, fam)
    theta, beta = np.asarray(r["theta"]), np.asarray(r["fixef"])
    a = pirls(SparseSystem(M.X, M.Z_sparse(), lam), data, theta, beta, fixed=fixed)
    b = pirls(BlockedSystem(M), data, theta, beta, fixed=fixed)
    assert a is not None and b is not None
    assert b.laplace == pytest.approx(a.laplace, rel=1e-11)
    np.testing.assert_allclose(b.u.ravel(), a.u.ravel(), atol=1e-9)
    np.testing.assert_allclose(b.b.ravel(), a.b.ravel(), atol=1e-9)
    np.testing.assert_allclose(b.beta, a.beta, atol=1e-9)


def test_infinite_values_are_an_error():
    d = _sim()
    d.loc[3, "x"] = np.inf
    with pytest.raises(ValueError, match=r"column 'x' has 1 infinite value\(s\) \(rows \[3\]\)"):
        pm.glmer("yb ~ x + (1 | g)", d)
    d = _sim().assign(cnt=lambda t: np.where(np.arange(len(t)) == 5, np.inf, 1.0))
    with pytest.raises(
        ValueError, match=r"response 'cnt' has 1 infinite value\(s\) \(rows \[5\]\)"
    ):
        pm.glmer("cnt ~ x + (1 | g)", d, "poisson")
