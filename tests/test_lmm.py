"""pymitml.lmm: the native lmer against lme4 (committed references and live R), kernels
against plain NumPy, invariants, errors and printing."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pymitml import lmm
from pymitml.lmm import ConvergenceWarning, LmerFit, _kernels, lmer

REF_DIR = Path(__file__).resolve().parent.parent / "r_compat"
REF = json.loads((REF_DIR / "lmer_ref.json").read_text())
SIM = pd.read_csv(REF_DIR / "lmer_sim.csv")
SR = pd.read_csv(REF_DIR / "lmer_studentratings.csv")
DATA = {"sim": SIM, "studentratings": SR}
RTOL = 1e-5


def _close(ours, ref, rtol=RTOL, atol=0.0):
    ours, ref = np.asarray(ours, dtype=float), np.asarray(ref, dtype=float)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol)


def _listify(x):
    return [x] if not isinstance(x, list) else x


@pytest.fixture(scope="module")
def fits():
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        return {
            name: lmer(r["formula"], DATA[r["data"]], REML=r["REML"], na_action="omit")
            for name, r in REF.items()
        }


# ---------------------------------------------------------------- agreement with lme4 (refs)


@pytest.mark.parametrize("name", list(REF))
def test_matches_lme4_reference(fits, name):
    r, fit = REF[name], fits[name]
    assert fit.nobs == r["nobs"] and fit.ngroups == r["ngroups"]
    assert list(fit.fixef.index) == r["fixef_names"]
    assert fit.REML == r["REML"]
    _close(fit.fixef, r["fixef"])
    _close(np.sqrt(np.diag(fit.vcov)), r["se"])
    _close(fit.vcov, np.asarray(r["vcov"]).reshape(fit.vcov.shape), atol=1e-12)
    _close(fit.sigma, r["sigma"])
    vc = r["varcorr"]
    assert list(fit.varcorr["grp"]) == vc["grp"]
    assert [v or "" for v in fit.varcorr["var1"]] == _listify(vc["var1"])
    assert [v or "" for v in fit.varcorr["var2"]] == _listify(vc["var2"])
    scale = r["sigma"] ** 2
    _close(fit.varcorr["vcov"], vc["vcov"], atol=1e-10 * scale)
    is_corr = np.array([bool(v) for v in _listify(vc["var2"])])
    _close(fit.varcorr["sdcor"][~is_corr], np.asarray(vc["sdcor"])[~is_corr], atol=1e-10)
    _close(fit.varcorr["sdcor"][is_corr], np.asarray(vc["sdcor"])[is_corr], rtol=0, atol=1e-5)
    _close(fit.theta, _listify(r["theta"]), rtol=0, atol=1e-5)
    # at least as good an optimum as lme4 (tight tolerances and lme4's defaults)
    for ll in (r["loglik"], r["default"]["loglik"]):
        assert fit.loglik >= ll - 1e-8 * abs(ll)
    assert fit.loglik == pytest.approx(r["loglik"], rel=1e-8)
    _close(fit.deviance, r["deviance_ml"], rtol=1e-8)
    if r["REML"]:
        _close(fit.reml_criterion, r["reml_crit"], rtol=1e-8)
    else:
        assert fit.reml_criterion is None
    assert fit.singular == r["singular"]
    assert fit.converged
    ranef = np.asarray(r["ranef"], dtype=float).reshape(fit.ranef.shape)
    assert [str(v) for v in fit.ranef.index] == [str(v) for v in r["ranef_labels"]]
    _close(fit.ranef, ranef, atol=1e-5 * np.max(np.abs(ranef)) + 1e-12)


def test_lme4_default_optimizer_falls_short_where_pymitml_converges(fits):
    """studentratings random slope on an uncentred predictor: lme4 (default control) warns
    and stops 0.027 log-likelihood units short; pymitml reaches the tight-control optimum."""
    r = REF["sr_rs_ml"]
    assert any("failed to converge" in m for m in _listify(r["default"]["messages"]))
    assert fits["sr_rs_ml"].loglik - r["default"]["loglik"] > 0.02
    assert fits["sr_rs_ml"].converged and not fits["sr_rs_ml"].messages


def test_singular_fits_are_flagged(fits):
    for name in ("sim_singular_ri", "sim_singular_rs"):
        assert fits[name].singular
        assert any("singular" in m for m in fits[name].messages)
    assert fits["sim_singular_ri"].theta[0] == 0.0
    assert fits["sim_singular_ri"].varcorr["vcov"][0] == 0.0
    assert not fits["sim_rs_reml"].singular and not fits["sim_rs_reml"].messages


# ---------------------------------------------------------------- likelihood at parameters


@pytest.mark.parametrize("name", ["sr_ri_reml", "sim_rs_reml", "sim_q3_reml", "sim_singular_rs"])
def test_loglik_at_matches_dense_r_computation(fits, name):
    r, fit = REF[name], fits[name]
    _close(fit.loglik_at(r["fixef"], r["theta"], r["sigma"]), r["dense_loglik_at_fit"], rtol=1e-10)
    pt = r["loglik_at"]
    _close(fit.loglik_at(pt["beta"], pt["theta"], pt["sigma"]), pt["loglik"], rtol=1e-10)


def test_loglik_at_reproduces_the_fitted_criteria(fits):
    ml = fits["sim_rs_ml"]
    assert ml.loglik_at(ml.fixef, ml.theta, ml.sigma) == pytest.approx(ml.loglik, rel=1e-12)
    reml = fits["sim_rs_reml"]
    assert reml.loglik_at(reml.fixef, reml.theta, reml.sigma, REML=True) == pytest.approx(
        reml.loglik, rel=1e-12
    )
    # the ML optimum is a maximum of the non-profiled likelihood
    base = ml.loglik_at(ml.fixef, ml.theta, ml.sigma)
    for k in range(3):
        th = ml.theta.copy()
        th[k] += 1e-3
        assert ml.loglik_at(ml.fixef, th, ml.sigma) < base
    assert ml.loglik_at(ml.fixef + 0.01, ml.theta, ml.sigma) < base
    assert ml.loglik_at(ml.fixef, ml.theta, ml.sigma * 1.01) < base


def test_theta_from_cov_round_trip(fits):
    fit = fits["sim_q3_reml"]
    th = LmerFit.theta_from_cov(fit.cov_random.to_numpy(), fit.sigma)
    _close(th, fit.theta, rtol=1e-10, atol=1e-14)
    sing = fits["sim_singular_rs"]  # singular covariance: zero pivot allowed
    th = LmerFit.theta_from_cov(sing.cov_random.to_numpy(), sing.sigma)
    _close(th, sing.theta, rtol=1e-8, atol=1e-12)


def test_refit(fits):
    reml = fits["sim_rs_reml"]
    ml = reml.refit(REML=False)
    direct = lmer(REF["sim_rs_reml"]["formula"], SIM, REML=False)
    assert not ml.REML
    _close(ml.fixef, direct.fixef, rtol=1e-9)
    assert ml.loglik == pytest.approx(direct.loglik, rel=1e-12)
    y2 = reml.y * 2.0 + 1.0
    f2 = reml.refit(y=y2)
    assert f2.sigma == pytest.approx(2.0 * reml.sigma, rel=1e-7)
    _close(f2.theta, reml.theta, rtol=1e-6, atol=1e-9)
    with pytest.raises(ValueError, match="`y` must have 1211 values"):
        reml.refit(y=y2[:10])


def test_design_is_exposed(fits):
    fit = fits["sr_factor_reml"]
    assert fit.X.shape == (fit.nobs, fit.n_fixed)
    assert fit.Z.shape == (fit.nobs, 1)
    assert fit.y.shape == (fit.nobs,)
    assert fit.cluster_codes.max() == fit.ngroups - 1
    np.testing.assert_allclose(fit.y, SR["ReadAchiev"].to_numpy()[fit.rows])
    np.testing.assert_allclose(fit.fitted() + fit.residuals(), fit.y)
    assert fit.df == fit.n_fixed + 2
    assert fit.aic == pytest.approx(-2 * fit.loglik + 2 * fit.df)


def test_extra_pars_names(fits):
    ep = fits["sim_rs_reml"].extra_pars
    assert list(ep.index) == [
        "Intercept~~Intercept|g",
        "x~~x|g",
        "Intercept~~x|g",
        "Residual~~Residual",
        "ICC|g",
    ]
    cov = fits["sim_rs_reml"].cov_random.to_numpy()
    assert ep["ICC|g"] == pytest.approx(cov[0, 0] / (cov[0, 0] + fits["sim_rs_reml"].sigma ** 2))


# ---------------------------------------------------------------- invariants


def test_polars_and_row_order_give_the_same_fit():
    pl = pytest.importorskip("polars")
    f1 = lmer("y ~ x + grp + (1 + x | g)", SIM)
    f2 = lmer("y ~ x + grp + (1 + x | g)", pl.from_pandas(SIM))
    f3 = lmer("y ~ x + grp + (1 + x | g)", SIM.sample(frac=1.0, random_state=7))
    for f in (f2, f3):
        _close(f.fixef, f1.fixef, rtol=1e-9)
        _close(f.theta, f1.theta, rtol=1e-7, atol=1e-10)
        _close(f.ranef, f1.ranef, rtol=1e-7, atol=1e-10)
        assert list(f.ranef.index) == sorted(SIM["g"].unique())


def test_scale_invariance():
    """Rescaling a random-slope variable by 1000 changes nothing but the slope's units."""
    d = SIM.assign(x1000=SIM["x"] * 1000.0 + 5000.0)
    f1 = lmer("y ~ x + (1 + x | g)", SIM, REML=False)
    f2 = lmer("y ~ x1000 + (1 + x1000 | g)", d, REML=False)
    assert f2.loglik == pytest.approx(f1.loglik, rel=1e-10)
    assert f2.fixef.iloc[1] * 1000.0 == pytest.approx(f1.fixef.iloc[1], rel=1e-7)


# ---------------------------------------------------------------- errors and warnings


def test_rank_deficient_columns_dropped_as_lme4():
    d = SIM.assign(x2=2.0 * SIM["x"] + 1.0)
    with pytest.warns(UserWarning, match=r"rank deficient so dropping 1 column\(s\).*\['x2'\]"):
        fit = lmer("y ~ x + x2 + (1 | g)", d)
    ref = lmer("y ~ x + (1 | g)", d)
    assert list(fit.fixef.index) == ["(Intercept)", "x"]
    np.testing.assert_allclose(fit.fixef, ref.fixef, rtol=1e-12)
    assert fit.loglik == pytest.approx(ref.loglik, rel=1e-12)


def test_error_no_variation():
    with pytest.raises(ValueError, match="response 'c' has no variation"):
        lmer("c ~ x + (1 | g)", SIM.assign(c=3.0))


def test_error_too_few_clusters():
    d = SIM[SIM["g"].isin(["c01", "c02"])]
    with pytest.raises(
        ValueError, match="has 2 cluster\\(s\\) but the random part .* has 3 variance"
    ):
        lmer("y ~ x + (1 + x | g)", d)


def test_error_missing_term():
    with pytest.raises(ValueError, match=r"formula term\(s\) \['nope'\] not found in the data"):
        lmer("y ~ x + nope + (1 | g)", SIM)


def test_error_missing_values_and_omit():
    d = SIM.copy()
    d.loc[[3, 10, 11], "x"] = np.nan
    with pytest.raises(
        ValueError, match=r"missing values in the analysis data: 'x' \(3 row\(s\)\)"
    ):
        lmer("y ~ x + (1 | g)", d)
    fit = lmer("y ~ x + (1 | g)", d, na_action="omit")
    assert fit.nobs == len(d) - 3
    assert 3 not in fit.rows and 4 in fit.rows
    with pytest.raises(ValueError, match="`na_action` must be 'fail' or 'omit'"):
        lmer("y ~ x + (1 | g)", d, na_action="drop")


def test_error_non_numeric_response():
    with pytest.raises(ValueError, match="response 'grp' must be numeric; got dtype "):
        lmer("grp ~ x + (1 | g)", SIM)


def test_error_no_random_term_and_bad_reml():
    with pytest.raises(ValueError, match="has no random-effects term"):
        lmer("y ~ x", SIM)
    with pytest.raises(TypeError, match="`REML` must be True or False"):
        lmer("y ~ x + (1 | g)", SIM, REML="yes")


def test_no_convergence_warning_at_interior_optima():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lmer("y ~ x * w + I(x^2) + grp + (1 + x | g)", SIM)
        lmer("y ~ x + (1 + x | g)", SIM, REML=False)


def test_convergence_warning_when_the_optimiser_is_stopped(monkeypatch):
    from pymitml.lmm import _optimize
    from pymitml.lmm import fit as fitmod

    monkeypatch.setattr(
        fitmod,
        "minimize_theta",
        lambda fg, x0, lower: _optimize.minimize_theta(fg, x0, lower, max_iter=0),
    )
    with pytest.warns(ConvergenceWarning, match="failed to converge"):
        f = lmer("y ~ x + (1 + x | g)", SIM)
    assert not f.converged


# ---------------------------------------------------------------- printing


def test_summary_layout(fits):
    text = str(fits["sim_rs_reml"])
    for line in [
        "Linear mixed model fit by REML",
        "REML criterion at convergence: 3771.6",
        " Groups   Name        Variance Std.Dev. Corr",
        " g        (Intercept) 0.8839   0.9401",
        "          x           0.1265   0.3557   0.05",
        " Residual             1.0716   1.0352",
        "Number of obs: 1211, groups:  g, 60",
        "             Estimate Std. Error t value",
        "x:w          0.185812   0.063247   2.938",
        "       (Intr) x      w      I(x^2) grpb   grpc",
        "x:w     0.025 -0.214 -0.114 -0.042  0.040 -0.005",
        "-2.9367 -0.6516 -0.0303 0.6473 3.5342",
    ]:
        assert line in text, line
    ml = str(fits["sim_rs_ml"])
    assert (
        "fit by maximum likelihood" in ml and "     AIC      BIC   logLik deviance df.resid" in ml
    )
    assert "boundary (singular) fit" in str(fits["sim_singular_ri"])
    assert repr(fits["sim_rs_ml"]).startswith("<LmerFit ML 'y ~ x + w + (x | g)'")


# ---------------------------------------------------------------- kernels vs plain NumPy


def _small_problem(seed=0, J=7, q=2, p=3):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(2, 9, size=J)
    codes = np.repeat(np.arange(J), sizes)
    n = codes.size
    X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1))])
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, q - 1))])
    y = rng.normal(size=n) + rng.normal(size=J)[codes]
    T = np.tril(rng.uniform(0.2, 1.0, size=(q, q)))
    return X, Z, y, codes, J, T


def _dense(X, Z, y, codes, J, T):
    n, q = Z.shape
    Zfull = np.zeros((n, J * q))
    for i in range(n):
        Zfull[i, codes[i] * q : (codes[i] + 1) * q] = Z[i]
    Lam = np.kron(np.eye(J), T)
    ZL = Zfull @ Lam
    V = ZL @ ZL.T + np.eye(n)
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    beta = np.linalg.solve(XVX, X.T @ Vi @ y)
    e = y - X @ beta
    r2 = e @ Vi @ e
    logdet = np.linalg.slogdet(ZL.T @ ZL + np.eye(J * q))[1]
    u = np.linalg.solve(ZL.T @ ZL + np.eye(J * q), ZL.T @ e)
    b = (Lam @ u).reshape(J, q)
    return logdet, np.linalg.slogdet(XVX)[1], r2, beta, b


def _run_pls(X, Z, y, codes, J, T):
    _n, p = X.shape
    q = Z.shape[1]
    ZtZ, ZtX, Zty = np.zeros((J, q, q)), np.zeros((J, q, p)), np.zeros((J, q))
    XtX, Xty = np.zeros((p, p)), np.zeros(p)
    yty = _kernels.cross_products(X, Z, y, codes, ZtZ, ZtX, Zty, XtX, Xty)
    bufs = {
        "P": np.empty((J, q, q)),
        "RZX": np.empty((J, q, p)),
        "cu": np.empty((J, q)),
        "LX": np.empty((p, p)),
        "beta": np.empty(p),
    }
    out = _kernels.pls(
        T,
        ZtZ,
        ZtX,
        Zty,
        XtX,
        Xty,
        yty,
        bufs["P"],
        bufs["RZX"],
        bufs["cu"],
        bufs["LX"],
        bufs["beta"],
    )
    return out, (ZtZ, ZtX, Zty, XtX, Xty, yty), bufs


def test_kernel_cross_products():
    X, Z, y, codes, J, T = _small_problem()
    _, (ZtZ, ZtX, Zty, XtX, Xty, yty), _ = _run_pls(X, Z, y, codes, J, T)
    for j in range(J):
        m = codes == j
        np.testing.assert_allclose(ZtZ[j], Z[m].T @ Z[m], rtol=1e-13)
        np.testing.assert_allclose(ZtX[j], Z[m].T @ X[m], rtol=1e-13, atol=1e-13)
        np.testing.assert_allclose(Zty[j], Z[m].T @ y[m], rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(XtX, X.T @ X, rtol=1e-13)
    np.testing.assert_allclose(Xty, X.T @ y, rtol=1e-13)
    assert yty == pytest.approx(y @ y, rel=1e-13)


@pytest.mark.parametrize("reml", [False, True])
def test_kernel_pls_criterion_gradient_and_modes(reml):
    X, Z, y, codes, J, T = _small_problem(seed=3)
    (logdet, ldx, r2), cps, bufs = _run_pls(X, Z, y, codes, J, T)
    d_logdet, d_ldx, d_r2, d_beta, d_b = _dense(X, Z, y, codes, J, T)
    assert logdet == pytest.approx(d_logdet, rel=1e-11)
    assert ldx == pytest.approx(d_ldx, rel=1e-11)
    assert r2 == pytest.approx(d_r2, rel=1e-11)
    np.testing.assert_allclose(bufs["beta"], d_beta, rtol=1e-10)
    n, p = X.shape
    dev = _kernels.criterion(logdet, ldx, r2, float(n), float(p), reml)
    m = n - p if reml else n
    expect = d_logdet + (d_ldx if reml else 0.0) + m * (1 + np.log(2 * np.pi * d_r2 / m))
    assert dev == pytest.approx(expect, rel=1e-12)
    B = np.empty((J, Z.shape[1]))
    _kernels.random_effects(bufs["P"], bufs["RZX"], bufs["cu"], bufs["beta"], B)
    np.testing.assert_allclose(B, d_b, rtol=1e-9, atol=1e-12)
    # analytic gradient in T vs central differences of the dense criterion
    ZtZ, ZtX, Zty, _XtX, _Xty, _yty = cps
    G = np.empty_like(T)
    _kernels.gradient_d(
        ZtZ,
        ZtX,
        Zty,
        bufs["P"],
        bufs["RZX"],
        bufs["cu"],
        bufs["LX"],
        bufs["beta"],
        r2,
        float(n),
        reml,
        G,
    )
    grad = 2.0 * G @ T

    def crit(Tm):
        a, b_, c, _, _ = _dense(X, Z, y, codes, J, Tm)
        return a + (b_ if reml else 0.0) + m * (1 + np.log(2 * np.pi * c / m))

    for r, c in [(0, 0), (1, 0), (1, 1)]:
        h = 1e-6
        Tp, Tm = T.copy(), T.copy()
        Tp[r, c] += h
        Tm[r, c] -= h
        assert grad[r, c] == pytest.approx((crit(Tp) - crit(Tm)) / (2 * h), rel=1e-5, abs=1e-7)
    fitted = np.empty(n)
    _kernels.linear_predictor(X, bufs["beta"], Z, codes, B, fitted)
    np.testing.assert_allclose(fitted, X @ bufs["beta"] + np.sum(Z * B[codes], axis=1), rtol=1e-12)


# ---------------------------------------------------------------- live R


def _sim_unbalanced(seed):
    rng = np.random.default_rng(seed)
    J = 45
    sizes = rng.integers(1, 25, size=J)
    g = np.repeat([f"s{j}" for j in range(J)], sizes)
    codes = np.repeat(np.arange(J), sizes)
    n = g.size
    x = rng.normal(2.0, 1.5, size=n)
    sex = rng.choice(["female", "male"], size=n)
    u = rng.normal(size=(J, 2)) @ np.array([[0.9, 0.0], [0.2, 0.35]]).T
    y = 0.5 + 0.8 * x + 0.3 * (sex == "male") + u[codes, 0] + u[codes, 1] * x + rng.normal(size=n)
    return pd.DataFrame({"y": y, "x": x, "sex": sex, "g": g})


R_TIGHT = (
    "lmerControl(optimizer='nloptwrap', optCtrl=list(xtol_abs=1e-14, ftol_abs=1e-15, "
    "xtol_rel=1e-14, ftol_rel=1e-15, maxeval=1e6))"
)


@pytest.mark.r
@pytest.mark.parametrize(
    "formula,reml", [("y ~ x * sex + I(x^2) + (1 + x | g)", True), ("y ~ x + sex + (1 | g)", False)]
)
def test_live_r_lmer(R, tmp_path, formula, reml):
    d = _sim_unbalanced(11)
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    R(
        f"d <- read.csv('{path}'); fit <- suppressWarnings(lmer({formula}, d, REML={str(reml).upper()},"
        f" control={R_TIGHT})); fit0 <- lmer({formula}, d, REML={str(reml).upper()})"
    )
    fit = lmer(formula, d, REML=reml)
    _close(fit.fixef, np.array(R("fixef(fit)")))
    _close(np.sqrt(np.diag(fit.vcov)), np.array(R("sqrt(diag(as.matrix(vcov(fit))))")))
    _close(fit.varcorr["vcov"], np.array(R("as.data.frame(VarCorr(fit))$vcov")))
    _close(fit.sigma, R("sigma(fit)")[0])
    for which in ("fit", "fit0"):
        ll = R(f"as.numeric(logLik({which}))")[0]
        assert fit.loglik >= ll - 1e-8 * abs(ll)
    assert list(fit.fixef.index) == list(R("names(fixef(fit))"))


@pytest.mark.r
def test_live_r_loglik_at_matches_mitml_d3_machinery(R, tmp_path):
    """mitml's D3 evaluates lme4's devfun2 at pooled (beta, Tau, sigma^2); loglik_at agrees."""
    d = _sim_unbalanced(5)
    path = tmp_path / "d.csv"
    d.to_csv(path, index=False)
    R(f"d <- read.csv('{path}'); fit <- lmer(y ~ x + sex + (1 + x | g), d, REML = FALSE)")
    R(
        "tau <- 0.8 * matrix(as.numeric(VarCorr(fit)[[1]]), 2, 2) + diag(c(0.05, 0.01));"
        "pars <- list(beta = fixef(fit) * 1.02, Tau1 = tau, sigma2 = sigma(fit)^2 * 1.1)"
    )
    r_ll = R("as.numeric(mitml:::.getUserLL.lmerMod(fit, pars))")[0]
    fit = lmer("y ~ x + sex + (1 + x | g)", d, REML=False)
    tau = np.array(R("tau")).reshape(2, 2, order="F")
    sigma = np.sqrt(R("pars$sigma2")[0])
    ours = fit.loglik_at(np.array(R("pars$beta")), LmerFit.theta_from_cov(tau, sigma), sigma)
    assert ours == pytest.approx(r_ll, rel=1e-9)
    r_misc = R("mitml:::.getMisc.merMod(fit)")
    _close(fit.extra_pars.to_numpy(), np.array(r_misc), rtol=1e-4)
    assert list(fit.extra_pars.index) == list(r_misc.names)


def test_public_names():
    assert set(lmm.__all__) == {
        "lmer",
        "LmerFit",
        "MultiLmerFit",
        "ConvergenceWarning",
        "anova",
        "contest",
    }
    assert not any(n.startswith("test") for n in dir(lmm))
