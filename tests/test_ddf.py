"""pymitml.lmm.ddf: Satterthwaite (lmerTest) and Kenward-Roger (pbkrtest) degrees of freedom
against references made by r_compat/ddf_ref.R, multi-term designs at R's parameters, errors."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pymitml.lmm import lmer
from pymitml.lmm.ddf import contest, ddf_of
from pymitml.lmm.ddf_design import DdfDesign, ReTerm, design_of
from pymitml.lmm.ddf_kenward_roger import kenward_roger, kr_adjust
from pymitml.lmm.ddf_numderiv import hessian, jacobian
from pymitml.lmm.ddf_satterthwaite import fstat_ddf, satterthwaite_1d, satterthwaite_parts

REF_DIR = Path(__file__).resolve().parent.parent / "r_compat"
REF = json.loads((REF_DIR / "ddf_ref.json").read_text())
DATA = {
    "sleep": pd.read_csv(REF_DIR / "ddf_sleepstudy.csv"),
    "sr": pd.read_csv(REF_DIR / "lmer_studentratings.csv"),
    "sim": pd.read_csv(REF_DIR / "lmer_sim.csv"),
}
ONE_TERM = [k for k, r in REF.items() if k != "r_versions" and "X" not in r]
MULTI = [k for k, r in REF.items() if k != "r_versions" and "X" in r]
METHODS = {"Satterthwaite": "satterthwaite", "Kenward-Roger": "kenward_roger"}
RTOL = 1e-6  # R's optimum is accurate to ~1e-7; p-values of t ~ 30 amplify that
P_RTOL = 1e-4


@pytest.fixture(scope="module")
def fits():
    return {
        k: lmer(REF[k]["formula"], DATA[REF[k]["data"]], REML=REF[k]["REML"], na_action="omit")
        for k in ONE_TERM
    }


def _cases():
    for name in ONE_TERM:
        for meth, key in METHODS.items():
            if key in REF[name]:
                yield name, meth


@pytest.mark.parametrize(("name", "ddf"), list(_cases()))
def test_coef_table_matches_lmertest(fits, name, ddf):
    r, fit = REF[name][METHODS[ddf]], fits[name]
    tab = fit.coef_table(ddf=ddf)
    assert list(tab.columns) == ["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"]
    assert list(tab.index) == r["names"]
    for col in ("Estimate", "Std. Error", "df", "t value"):
        np.testing.assert_allclose(tab[col], r[col], rtol=RTOL, err_msg=col)
    np.testing.assert_allclose(tab["Pr(>|t|)"], r["Pr(>|t|)"], rtol=P_RTOL)


@pytest.mark.parametrize(("name", "ddf"), list(_cases()))
def test_contest_matches_lmertest(fits, name, ddf):
    for ct in REF[name]["contrasts"]:
        ref = ct[METHODS[ddf]]
        out = contest(fits[name], np.atleast_2d(np.asarray(ct["L"], dtype=float)), ddf)
        assert int(out["NumDF"][0]) == ref["NumDF"]
        for col in ("DenDF", "F value", "Mean Sq", "Sum Sq"):
            np.testing.assert_allclose(out[col][0], ref[col], rtol=RTOL, err_msg=col)
        np.testing.assert_allclose(out["Pr(>F)"][0], ref["Pr(>F)"], rtol=P_RTOL)


def test_ml_fit_varpar_covariance_matches_lmertest(fits):
    fit = fits["sim_rs_ml"]
    parts = satterthwaite_parts(design_of(fit), np.r_[fit.theta, fit.sigma])
    ref = np.asarray(REF["sim_rs_ml"]["vcov_varpar"])
    np.testing.assert_allclose(parts.vcov_varpar, ref, rtol=1e-5, atol=1e-7 * np.abs(ref).max())


def test_kenward_roger_adjusted_vcov_matches_pbkrtest(fits):
    for name in ("sleep_rs", "sr_factor"):
        fit = fits[name]
        kr = kenward_roger(design_of(fit), fit.theta, fit.sigma)
        np.testing.assert_allclose(kr.phi_adj, np.asarray(REF[name]["vcov_adj"]), rtol=1e-6)


def _multi_design(r):
    from scipy import sparse

    y = np.asarray(r["y"], dtype=float)
    X = np.asarray(r["X"], dtype=float).reshape(y.size, -1)
    Zr = r["Z"]
    Z = sparse.csc_matrix((Zr["x"], (Zr["i"], Zr["j"])), shape=tuple(Zr["dim"]))
    terms, col, th = [], 0, 0
    for nc, ncol in zip(np.atleast_1d(r["terms"]["nc"]), np.atleast_1d(r["terms"]["n_cols"])):
        terms.append(ReTerm(int(nc), int(ncol) // int(nc), col, th))
        col, th = col + int(ncol), th + int(nc) * (int(nc) + 1) // 2
    return DdfDesign(X, y, Z, terms, reml=True)


@pytest.mark.parametrize("name", MULTI)
def test_multi_term_designs_at_r_parameters(name):
    """(Days || Subject), Penicillin (crossed), Pastes (nested): both methods at lme4's estimates."""
    r = REF[name]
    design = _multi_design(r)
    varpar = np.r_[np.atleast_1d(r["theta"]), r["sigma"]]
    parts = satterthwaite_parts(design, varpar)
    kr = kenward_roger(design, varpar[:-1], varpar[-1])
    sat, krr = r["satterthwaite"], r["kenward_roger"]
    for i, c in enumerate(np.eye(design.p)):
        var, nu = satterthwaite_1d(parts, c)
        assert nu == pytest.approx(np.atleast_1d(sat["df"])[i], rel=1e-7)
        assert np.sqrt(var) == pytest.approx(np.atleast_1d(sat["Std. Error"])[i], rel=1e-9)
        assert np.sqrt(c @ kr.phi_adj @ c) == pytest.approx(
            np.atleast_1d(krr["Std. Error"])[i], rel=1e-9
        )
        assert kr_adjust(kr, c[None, :])[0] == pytest.approx(np.atleast_1d(krr["df"])[i], rel=1e-9)


def test_design_reproduces_the_fit(fits):
    for name in ("sleep_rs", "sim_rs_ml"):
        fit = fits[name]
        d = design_of(fit)
        vp = np.r_[fit.theta, fit.sigma]
        assert d.deviance(vp) == pytest.approx(-2.0 * fit.loglik, rel=1e-12)
        np.testing.assert_allclose(d.vcov(vp), fit.vcov.to_numpy(), rtol=1e-10)


def test_numderiv_on_a_polynomial():
    f = lambda x: x[0] ** 3 + 2.0 * x[0] * x[1] ** 2 + np.exp(x[1])  # noqa: E731
    x = np.array([1.3, -0.4])
    H = hessian(f, x)
    exact = np.array([[6 * x[0], 4 * x[1]], [4 * x[1], 4 * x[0] + np.exp(x[1])]])
    np.testing.assert_allclose(H, exact, rtol=1e-9)
    J = jacobian(lambda v: np.array([v[0] * v[1], v[1] ** 2]), x)
    np.testing.assert_allclose(J, [[x[1], x[0]], [0.0, 2 * x[1]]], rtol=1e-10, atol=1e-14)


def test_fstat_ddf_rule():
    assert fstat_ddf(np.array([7.0])) == 7.0
    assert fstat_ddf(np.array([5.0, 5.0])) == 5.0
    assert fstat_ddf(np.array([1.5, 9.0])) == 2.0
    E = 10 / 8 + 20 / 18
    assert fstat_ddf(np.array([10.0, 20.0])) == pytest.approx(2 * E / (E - 2))


def test_coef_table_without_ddf_is_lme4s(fits):
    tab = fits["sleep_rs"].coef_table()
    assert list(tab.columns) == ["Estimate", "Std. Error", "t value"]


def test_errors(fits):
    with pytest.raises(ValueError, match="`ddf` must be one of 'Satterthwaite', 'Kenward-Roger'"):
        fits["sleep_rs"].coef_table(ddf="satterthwaite")
    with pytest.raises(ValueError, match="only available for REML fits"):
        fits["sim_rs_ml"].coef_table(ddf="Kenward-Roger")
    with pytest.raises(ValueError, match="`L` must be a contrast vector of length 2"):
        contest(fits["sleep_rs"], [1.0, 0.0, 1.0])
    with pytest.raises(TypeError, match="`fit` must be an LmerFit"):
        ddf_of("fit", [1.0])


def test_rhs_shifts_the_hypothesis(fits):
    fit = fits["sleep_rs"]
    b = fit.fixef.to_numpy()
    for ddf in ("Satterthwaite", "Kenward-Roger"):
        out = contest(fit, np.eye(2), ddf, rhs=b)
        assert out["F value"][0] == pytest.approx(0.0, abs=1e-12)
        one = contest(fit, [0.0, 1.0], ddf, rhs=10.0)
        t = fit.coef_table(ddf=ddf).loc["Days"]
        assert one["F value"][0] == pytest.approx(((b[1] - 10.0) / t["Std. Error"]) ** 2)


def test_singular_fit_warns():
    """A boundary fit: lmerTest warns about a near-zero Hessian eigenvalue; so do we."""
    from pymitml.exceptions import ConvergenceWarning

    sim = DATA["sim"]
    fit = lmer("y0 ~ x + (1 | g)", sim)
    assert fit.singular
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        tab = fit.coef_table(ddf="Satterthwaite")
    assert np.all(np.isfinite(tab["df"]))
    assert any(issubclass(x.category, ConvergenceWarning) for x in w) or tab["df"].min() > 0


def test_dense_sparse_and_block_solvers_agree(fits):
    """The three factorisations of A (dense, sparse LU, per-level blocks) give one criterion."""
    d1 = design_of(fits["sleep_rs"])
    d2 = _multi_design(REF["penicillin"])
    for d in (d1, d2):
        th = np.full(d.n_theta, 0.7)
        ref = d._solve_sparse(th)
        others = [d._solve_dense(th)] + ([d._solve_blocks(th)] if len(d.terms) == 1 else [])
        for got in others:
            assert got[1] == pytest.approx(ref[1], rel=1e-12)
            np.testing.assert_allclose(got[2], ref[2], rtol=1e-10, atol=1e-12)


@pytest.mark.r
def test_live_lmertest_and_pbkrtest(R):
    """Live R: lmerTest / pbkrtest df on a random-slope model of the simulated data."""
    R("suppressPackageStartupMessages({library(lmerTest); library(pbkrtest)})")
    path = (REF_DIR / "lmer_sim.csv").as_posix()
    form = "y1 ~ x + z + (1 + z | g)"
    got = np.asarray(
        R(
            f'd <- read.csv("{path}"); f <- lmerTest::lmer({form}, d, control = lmerControl('
            'optimizer = "nloptwrap", optCtrl = list(xtol_abs = 1e-14, ftol_abs = 1e-15, '
            "xtol_rel = 1e-14, ftol_rel = 1e-15, maxeval = 1e6)));"
            'c(summary(f)$coefficients[, "df"], summary(f, ddf = "Kenward-Roger")$coefficients[, "df"])'
        )
    )
    fit = lmer(form, DATA["sim"])
    ours = np.r_[
        fit.coef_table(ddf="Satterthwaite")["df"], fit.coef_table(ddf="Kenward-Roger")["df"]
    ]
    np.testing.assert_allclose(ours, got, rtol=1e-5)


def test_kenward_roger_size_limit(fits, monkeypatch):
    from pymitml.lmm import ddf_kenward_roger

    monkeypatch.setattr(ddf_kenward_roger, "KR_MAX_Q", 10)
    fit = fits["sleep_rs"]
    with pytest.raises(ValueError, match="q = 36 random effects \\(limit 10\\)"):
        kenward_roger(design_of(fit), fit.theta, fit.sigma)


def test_re_terms_records_define_the_terms(fits):
    """A fit that lists its terms (``re_terms``, ``Z_sparse()``) gives the same design."""
    from types import SimpleNamespace

    fit = fits["sleep_rs"]
    base = design_of(fit)
    fake = SimpleNamespace(
        REML=True,
        X=fit.X,
        y=fit.y,
        theta=fit.theta,
        Z_sparse=lambda: base.Z,
        re_terms=[
            {
                "names": ["(Intercept)", "Days"],
                "n_levels": 18,
                "columns": slice(0, 36),
                "theta": slice(0, 3),
            }
        ],
    )
    d = design_of(fake)
    vp = np.r_[fit.theta, fit.sigma]
    assert d.terms == base.terms
    assert d.deviance(vp) == pytest.approx(base.deviance(vp), rel=1e-13)
