"""Convergence diagnostics and plots against mitml's summary/plot on the same chains.

Reference numbers: r_compat/diag_summary.R -> r_compat/diag_summary_ref.json (panImpute and
jomoImpute chains on mitml's studentratings / leadership, mitml's summary() on them).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from pymitml import diagnostics as D
from pymitml import plots as P

REF_DIR = Path(__file__).resolve().parents[1] / "r_compat"
TOL = 1e-8


def _fix(v):
    if isinstance(v, str):
        return {"Inf": np.inf, "-Inf": -np.inf, "NaN": np.nan, "NA": np.nan}[v]
    return v


def _arr(d) -> np.ndarray:
    return np.array([_fix(v) for v in d["values"]], dtype=float).reshape(d["dim"], order="F")


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF_DIR / "diag_summary_ref.json").read_text())


def _par(case, phase="par_imputation"):
    return {b: _arr(v) for b, v in case[phase].items()}


def _close(a, b, tol=TOL):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    same_inf = np.isinf(a) & (a == b)
    fin = ~same_inf
    np.testing.assert_allclose(a[fin], b[fin], rtol=tol, atol=1e-12)


# ------------------------------------------------------------------------------------------------
# 1. summary numbers equal mitml's on the same chains
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["pan", "pan_group", "jomo_full"])
def test_summary_equals_mitml(ref, case):
    c = ref[case]
    s = D.summarize(
        _par(c), c["n_iter"], n_Rhat=c["n_Rhat"], goodness_of_appr=True, autocorrelation=True
    )
    for block, rows in c["conv"].items():
        r = pd.DataFrame(rows).map(_fix)
        mine = s.table[s.table.block == block]
        assert len(mine) == len(r), block
        np.testing.assert_array_equal(mine["row"].to_numpy() + 1, r["i1"].to_numpy())
        np.testing.assert_array_equal(mine["col"].to_numpy() + 1, r["i2"].to_numpy())
        np.testing.assert_array_equal(mine["group"].to_numpy() + 1, r["grp"].to_numpy())
        for col in ("Rhat", "SDprop", "lag-1", "lag-k", "lag-2k"):
            _close(mine[col], r[col])


def _section(lines, header):
    """Non-blank lines after ``header`` up to the next blank line, right-stripped."""
    k = next(i for i, ln in enumerate(lines) if ln.strip() == header.strip())
    out, started = [], False
    for ln in lines[k + 1 :]:
        if ln.strip():
            out.append(ln.rstrip())
            started = True
        elif started:
            break
    return out


@pytest.mark.parametrize("case", ["pan", "pan_group", "jomo_full"])
def test_printout_tables_equal_mitml(ref, case):
    """The printed tables (quantiles incl. Inf, worst elements, ACF means/maxima) equal R's."""
    c = ref[case]
    s = D.summarize(
        _par(c), c["n_iter"], n_Rhat=c["n_Rhat"], goodness_of_appr=True, autocorrelation=True
    )
    mine, theirs = str(s).split("\n"), c["printout"]
    for h in (
        "Potential scale reduction (Rhat, imputation phase):",
        "Largest potential scale reduction:",
        "Goodness of approximation (imputation phase):",
        "Poorest approximation:",
        "Largest autocorrelation at lag k:",
    ):
        assert _section(mine, h) == _section(theirs, h), h
    acf_mine = [
        re.sub(r"\s+", " ", x) for x in _section(mine, "Autocorrelation (ACF, imputation phase):")
    ]
    acf_r = [
        re.sub(r"\s+", " ", x) for x in _section(theirs, "Autocorrelation (ACF, imputation phase):")
    ]
    assert acf_mine == acf_r


def test_rhat_between_chains_equals_mitml_formula(ref):
    tc = ref["three_chains"]
    chains = [{b: _arr(v) for b, v in ch_.items()} for ch_ in tc["chains"]]
    stacked = {b: np.stack([ch[b] for ch in chains], axis=-1) for b in chains[0]}
    for b, v in tc["rhat"].items():
        want = _arr(v)  # (rows, cols, groups)
        got = D.gelman_rubin(np.moveaxis(stacked[b], 2, -1), 1, chains_axis=-2)  # (r, c, g)
        _close(got, want)
    s = D.summarize(stacked, 10)
    psi = s.rhat[s.rhat.block == "psi"]
    want_psi = _arr(tc["rhat"]["psi"])
    _close(psi["Rhat_chains"], [want_psi[i, j, 0] for i, j in zip(psi.row, psi.col)])
    # within-chain Rhat pools the split segments of all three chains (one chain = mitml's)
    one = D.summarize({b: v[..., :1] for b, v in stacked.items()}, 10)
    _close(one.rhat["Rhat"], D.summarize(chains[0], 10).rhat["Rhat"])
    assert "Rhat_chains" not in one.rhat


def test_plot_statistics_equal_mitml(ref):
    ps = ref["plot_stats"]
    drw = np.array(ps["draws"])
    st = P.parameter_statistics(drw, n_iter=10, n_Rhat=3)
    for k, rk in [
        ("EAP", "EAP"),
        ("SD", "SD"),
        ("2.5%", "q025"),
        ("97.5%", "q975"),
        ("Rhat", "Rhat"),
        ("ACF-k", "ACFk"),
    ]:
        assert st[k] == pytest.approx(ps[rk], rel=TOL), k
    assert P._bw_nrd0(drw) == pytest.approx(ps["bw"], rel=1e-12)
    # R's density() bins the draws; the mode agrees within a fraction of the bandwidth
    assert abs(st["MAP"] - ps["MAP"]) < 0.25 * ps["bw"]
    _close(D.acf(drw, 12), ps["acf"])
    _close(D.moving_average(drw, 3), ps["moving_average"])
    _close(D.moving_average(_all_trace(ref), 3), ps["moving_average_all"])
    sp0 = D._ar_spectrum0(drw[None, :])[0]
    assert sp0 == pytest.approx(ps["ar_var_pred"] / (1 - sum(ps["ar_coef"])) ** 2, rel=TOL)


def _all_trace(ref):
    b = _arr(ref["pan"]["par_burnin"]["beta"])[0, 0, :, 0]
    return np.concatenate([b, np.array(ref["plot_stats"]["draws"])])


# ------------------------------------------------------------------------------------------------
# live check through R (mitml's internal helpers on chains made here, edge cases included)
# ------------------------------------------------------------------------------------------------


def _ar1(rng, n, phi, shift=0.0):
    e = rng.normal(size=n)
    x = np.empty(n)
    x[0] = e[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x + shift * np.linspace(0, 1, n)


@pytest.mark.r
def test_live_helpers_against_mitml(R):
    import rpy2.robjects as ro

    rng = np.random.default_rng(11)
    series = [
        _ar1(rng, 61, 0.6),
        _ar1(rng, 100, 0.9, shift=3.0),
        rng.normal(size=47),
        np.r_[np.full(30, 2.0), np.full(30, 2.0)],
        _ar1(rng, 33, -0.4),
    ]
    for x in series:
        rx = ro.FloatVector(x)
        for nseg in (2, 3, 4):
            want = R("mitml:::.GelmanRubin")(rx, nseg)[0]
            assert D.gelman_rubin(x, nseg) == pytest.approx(want, rel=TOL)
        for lag, sm in ((1, 0), (5, 2), (10, 2)):
            want = R("mitml:::.reducedACF")(rx, lag=lag, smooth=sm, sd=0.5)[0]
            assert D.lag_autocorrelation(x, lag, smooth=sm) == pytest.approx(
                want, rel=TOL, abs=1e-14
            )
        want = R("mitml:::.SDprop")(rx)[0]
        assert D.goodness_of_approximation(x)[0] == pytest.approx(want, rel=TOL, abs=1e-14)


@pytest.mark.r
def test_live_pan_summary_against_mitml(R):
    """A fresh panImpute run in R, summarised by both."""
    R(
        "imp <- panImpute(studentratings, formula = MathAchiev + SchClimate ~ 1 + Sex + (1|ID), "
        "n.burn = 150, n.iter = 6, m = 4, seed = 2024, silent = TRUE);"
        "s <- summary(imp, autocorrelation = TRUE, goodness.of.appr = TRUE)"
    )
    par = {b: np.asarray(R(f"imp$par.imputation${b}")) for b in ("beta", "psi", "sigma")}
    s = D.summarize(par, 6, goodness_of_appr=True, autocorrelation=True)
    for b in par:
        want = np.asarray(R(f"s$conv${b}"))
        mine = s.table[s.table.block == b]
        np.testing.assert_array_equal(mine["row"] + 1, want[:, 0])
        for k, col in enumerate(("Rhat", "SDprop", "lag-1", "lag-k", "lag-2k")):
            _close(mine[col], want[:, 3 + k])
    mr = dict(zip(R("names(s$missing.rates)"), R("s$missing.rates")))
    inc = SimpleNamespace(
        par_imputation=par,
        settings={"n_iter": 6, "n_burn": 150, "m": 4, "chains": 1},
        incomplete=pd.read_csv(REF_DIR / "diag_studentratings.csv"),
    )
    text = str(D.imputation_summary(inc))
    names = re.findall(r"\n\s+(ID .*)\nMD%", text)[0].split()
    got = re.findall(r"MD%\s+(.*)", text)[0].split()
    assert dict(zip(names, got)) == mr


# ------------------------------------------------------------------------------------------------
# invariants, other helpers, validation
# ------------------------------------------------------------------------------------------------


def test_gelman_rubin_constant_and_vectorised():
    assert D.gelman_rubin(np.full(30, 4.2)) == 1.0
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 90))
    v = D.gelman_rubin(x, 3)
    assert v.shape == (3, 4)
    assert v[1, 2] == D.gelman_rubin(x[1, 2], 3)
    # the remainder of a length not divisible by n_segments is ignored, as in mitml
    assert D.gelman_rubin(np.r_[x[0, 0], 1e6], 3) == pytest.approx(v[0, 0], rel=1e-14)
    # a chain drifting far from its start is flagged
    assert D.gelman_rubin(np.linspace(0, 10, 90) + x[0, 0], 3) > 1.5


def test_gelman_rubin_rejects_too_short():
    with pytest.raises(ValueError, match=r"`x` has 5 iterations .*n_segments=3"):
        D.gelman_rubin(np.arange(5.0), 3)
    with pytest.raises(ValueError, match="`n_segments` must be a positive integer; got 0"):
        D.gelman_rubin(np.arange(50.0), 0)


def test_acf_and_smoothing():
    x = np.array([1.0, 2, 3, 4])
    assert D.lag_autocorrelation(x, 1) == 0.25
    assert D.lag_autocorrelation(np.ones(10), 3) == 0.0
    assert np.isnan(D.lag_autocorrelation(x, 4))
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    w = np.exp(-0.5 * (np.arange(-2, 3) / 0.5) ** 2)
    want = sum(wi * D.lag_autocorrelation(y, 7 + d) for wi, d in zip(w / w.sum(), range(-2, 3)))
    assert D.lag_autocorrelation(y, 7, smooth=2) == pytest.approx(want, rel=1e-14)
    # lag below the smoothing width uses rho(-l) = rho(l)
    assert D.lag_autocorrelation(y, 1, smooth=2) == pytest.approx(
        sum(wi * D.lag_autocorrelation(y, abs(1 + d)) for wi, d in zip(w / w.sum(), range(-2, 3)))
    )


def test_mcse_batch_means_against_loop_and_theory():
    rng = np.random.default_rng(5)
    x = _ar1(rng, 40_000, 0.5)
    b = 200
    means = [x[k * b : (k + 1) * b].mean() for k in range(len(x) // b)]
    want = math.sqrt(b * np.var(means, ddof=1) / (len(means) * b))
    assert D.mcse(x, batch_size=b) == pytest.approx(want, rel=1e-12)
    # AR(1), phi = .5, unit innovations: long-run variance 1 / (1 - phi)^2 = 4
    theory = math.sqrt(4 / len(x))
    assert D.mcse(x) == pytest.approx(theory, rel=0.15)
    assert D.mcse(x, method="ar") == pytest.approx(theory, rel=0.1)
    sdp, neff = D.goodness_of_approximation(x)
    assert D.mcse(x, method="ar") == pytest.approx(sdp * x.std(ddof=1), rel=1e-12)
    assert neff == pytest.approx(len(x) / 3, rel=0.15)  # n (1 - phi) / (1 + phi)
    with pytest.raises(ValueError, match="`method` must be 'batch' or 'ar'; got 'x'"):
        D.mcse(x, method="x")
    with pytest.raises(ValueError, match="`batch_size` must be a positive integer"):
        D.mcse(x[:10], batch_size=6)


def test_goodness_constant_chain():
    sdp, neff = D.goodness_of_approximation(np.full((2, 40), 1.5))
    np.testing.assert_array_equal(sdp, [0, 0])
    np.testing.assert_array_equal(neff, [40, 40])


def test_summary_validation_and_triangles():
    rng = np.random.default_rng(2)
    par = {"psi": rng.normal(size=(3, 3, 60, 2)), "sigma": rng.normal(size=(6, 2, 60, 1))}
    s = D.summarize(par, 5)
    assert len(s.rhat[s.rhat.block == "psi"]) == 2 * 6  # lower triangle, two groups
    sig = s.rhat[s.rhat.block == "sigma"]  # three stacked 2x2 matrices
    assert list(zip(sig.row, sig.col)) == [
        (0, 0),
        (1, 0),
        (2, 0),
        (3, 0),
        (4, 0),
        (5, 0),
        (1, 1),
        (3, 1),
        (5, 1),
    ]
    assert s.goodness is None and s.autocorrelation is None
    assert D.summarize(par, 5, n_Rhat=None).rhat is None
    with pytest.raises(ValueError, match="`n_iter` must be a positive integer; got 0"):
        D.summarize(par, 0)
    with pytest.raises(
        ValueError, match=r"`par\['psi'\]` must be \(rows, cols, iterations, groups\)"
    ):
        D.summarize({"psi": np.zeros((3, 60))}, 5)
    with pytest.raises(TypeError, match="`par` must be a dict"):
        D.summarize([1, 2], 5)


def _fake_imp(ref, chains=1):
    c = ref["pan"]
    imp_ = {b: np.repeat(v[..., None], chains, -1) for b, v in _par(c).items()}
    burn = {b: np.repeat(v[..., None], chains, -1) for b, v in _par(c, "par_burnin").items()}
    if chains > 1:
        rng = np.random.default_rng(0)
        imp_ = {b: v + rng.normal(scale=1e-3, size=v.shape) for b, v in imp_.items()}
    names = {
        "beta": (["(Intercept)", "CognAbility"], ["ReadDis", "SES"]),
        "psi": (["ReadDis:(Intercept)", "SES:(Intercept)"],) * 2,
        "sigma": (["ReadDis", "SES"],) * 2,
    }
    return SimpleNamespace(
        par_imputation={b: v[..., 0] for b, v in imp_.items()},
        par_burnin={b: v[..., 0] for b, v in burn.items()},
        par_chains_imputation=imp_,
        par_chains_burnin=burn,
        method="pan",
        formula="ReadDis + SES ~ 1 + CognAbility + (1|ID)",
        targets=["ReadDis", "SES"],
        settings={"n_burn": 200, "n_iter": 10, "m": 5, "chains": chains, "cluster": "ID"},
        group_labels=[None],
        param_names=names,
        incomplete=pd.read_csv(REF_DIR / "diag_studentratings.csv"),
    )


def test_imputation_summary_printout_and_flags(ref):
    s = D.imputation_summary(_fake_imp(ref), autocorrelation=True)
    text = str(s)
    assert "Performed 200 burn-in iterations, and generated 5 imputed data sets" in text
    assert "Parameters with Rhat > 1.05 (10 of 10)" in text
    assert "Psi [2,2]: SES:(Intercept) WITH SES:(Intercept): Rhat 3.323" in text
    assert s.flagged.iloc[0]["parameter"].startswith("Psi [2,2]")
    got = dict(zip(s.missing_rates.columns, s.missing_rates.iloc[0].round(1)))
    want = {k: float(v) for k, v in ref["pan"]["missing_rates"].items()}
    assert got == want
    two = D.imputation_summary(_fake_imp(ref, chains=2))
    assert "Rhat_chains" in two.rhat and "between the 2 chains" in str(two)


def test_psr_by_iteration_against_loop():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(1, 1, 120, 1, 2))
    x[..., :40, :, 1] += 5.0  # chain 2 starts far away
    tab = D.psr_by_iteration({"beta": x}, checkpoints=[40, 80, 120])
    t = 80
    w = x[0, 0, t // 2 : t, 0, :]  # (40, 2)
    seqs = [w[:20, 0], w[20:, 0], w[:20, 1], w[20:, 1]]
    n = 20
    W = np.mean([np.var(s_, ddof=1) for s_ in seqs])
    B_n = np.var([s_.mean() for s_ in seqs], ddof=1)
    assert tab.loc[1, "max_psr"] == pytest.approx(math.sqrt(((n - 1) / n * W + B_n) / W), rel=1e-12)
    assert tab.loc[0, "max_psr"] > 2 and tab.loc[2, "max_psr"] < 1.2
    assert list(tab["from"]) == [21, 41, 61]
    with pytest.raises(
        ValueError, match=r"`checkpoints` must lie between 8 and the 120 iterations"
    ):
        D.psr_by_iteration({"beta": x}, checkpoints=[500])


# ------------------------------------------------------------------------------------------------
# 2. plots: made, with the expected axes and lines; files written
# ------------------------------------------------------------------------------------------------


def test_block_figure_axes_and_lines(ref):
    imp = _fake_imp(ref)
    fig = P.block_figure(imp, "beta")
    axes = fig.get_axes()
    assert len(axes) == 4 * 4  # 4 beta parameters x 4 panels
    trace, acf_ax, dens, txt = axes[:4]
    # end-of-burn-in line, burn-in and imputation traces, moving average
    assert len(trace.get_lines()) == 4 and len(trace.patches) == 1  # + shaded burn-in
    assert trace.get_lines()[0].get_xdata()[0] == 200.5
    assert (
        len(trace.get_lines()[1].get_xdata()) == 200 and trace.get_lines()[2].get_xdata()[0] == 201
    )
    assert trace.get_title(loc="left") == "Beta [1,1]: ReadDis ON (Intercept)"
    assert len(acf_ax.collections[0].get_segments()) == 10  # lags 1..n_iter
    assert len(dens.get_lines()) == 1 and len(dens.get_lines()[0].get_xdata()) == 512
    text = txt.texts[0].get_text()
    assert re.search(r"Rhat:\s+1\.058", text) and "EAP:" in text and "97.5%:" in text
    figs = P.plot_chains(imp, None, trace="imputation", smooth=0)
    assert set(figs) == {"beta", "psi", "sigma", "psr"}
    assert len(figs["psi"].get_axes()) == 3 * 4  # lower triangle of 2x2
    assert len(figs["psi"].get_axes()[0].get_lines()) == 1  # trace only
    multi = P.block_figure(_fake_imp(ref, chains=2), "sigma", trace="imputation", smooth=0)
    assert len(multi.get_axes()[0].get_lines()) == 2  # one trace per chain
    assert "Rhat-c:" in multi.get_axes()[3].texts[0].get_text()
    psr = figs["psr"].get_axes()[0]
    assert [ln.get_label() for ln in psr.get_lines()][:3] == ["beta", "psi", "sigma"]


def test_plot_chains_writes_png_and_pdf(ref, tmp_path):
    imp = _fake_imp(ref)
    out = P.plot_chains(imp, tmp_path / "png", blocks=["beta", "sigma"])
    assert set(out) == {"beta", "sigma", "psr"}
    for fn in out.values():
        data = Path(fn).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    out = P.plot_chains(imp, tmp_path / "pdf", format="pdf", psr=False)
    pdf = Path(out["psi"]).read_bytes()
    assert pdf[:5] == b"%PDF-" and len(re.findall(rb"/Type /Page\b", pdf)) == 3
    with pytest.raises(ValueError, match="`format` must be 'png' or 'pdf'; got 'svg'"):
        P.plot_chains(imp, tmp_path, format="svg")
    with pytest.raises(ValueError, match=r"`blocks` \['beta2'\] not in this run"):
        P.plot_chains(imp, tmp_path, blocks=["beta2"])
    with pytest.raises(ValueError, match="`n_iter` is required"):
        P.plot_chains({"beta": _par(ref["pan"])["beta"]}, None)


def test_png_cap_warns(ref):
    c = ref["jomo_full"]
    with pytest.warns(UserWarning, match="block 'sigma' has 300 parameters; drawing the first 2"):
        fig = P.block_figure(_par(c), "sigma", n_iter=5, max_params=2)
    assert len(fig.get_axes()) == 8


def test_imputation_result_entry_points():
    """ImputationResult.summary()/plot() route here (skipped while the sampler is not there)."""
    import pymitml as pm

    if not hasattr(pm, "pan_impute"):
        pytest.skip("pan_impute not available yet")
    df = pd.read_csv(REF_DIR / "diag_studentratings.csv")
    imp = pm.pan_impute(
        df,
        "ReadDis + SES ~ 1 + CognAbility + (1|ID)",
        m=4,
        n_burn=40,
        n_iter=5,
        chains=2,
        seed=3,
        progress=False,
    )
    s = imp.summary(autocorrelation=True)
    assert {"Rhat", "Rhat_chains"} <= set(s.rhat.columns) and len(s.rhat) == 10
    figs = imp.plot(None, blocks=["sigma"])
    assert len(figs["sigma"].get_axes()) == 12
