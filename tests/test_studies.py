"""The validity-study harness: designs, scoring, Monte Carlo errors, resuming, parallel runs;
and (slow) the reduced study reproducing what the literature establishes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml import studies

KINDS = ("ri", "l2", "rs", "int", "cat", "xlevel", "mnar")


@pytest.mark.parametrize("kind", KINDS)
def test_design_is_deterministic_and_has_its_holes(kind):
    (d,) = studies.design_grid((kind,), (200,), (10,), (0.3,), rate=0.25)
    a, b = d.generate(7), d.generate(7)
    pd.testing.assert_frame_equal(a, b)
    assert not a.equals(d.generate(8))
    for v in d.incomplete:
        share = a[v].isna().mean()
        assert 0.15 < share < 0.35, (v, share)
    complete = [c for c in a.columns if c not in d.incomplete and c not in d.products]
    assert not a[complete].isna().any().any()
    for v in d.level2:  # level-2 variables are constant within clusters
        assert (a.groupby("g")[v].nunique(dropna=False) == 1).all()


@pytest.mark.parametrize("kind", KINDS)
def test_complete_data_are_the_values_before_deletion(kind):
    (d,) = studies.design_grid((kind,), (30,), (5,), (0.3,))
    inc, full = d.generate(11), d.generate(11, complete=True)
    assert not full.drop(columns=list(d.products)).isna().any().any()
    obs = inc.notna()
    for c in inc.columns:
        assert (inc[c][obs[c]] == full[c][obs[c]]).all(), c


@pytest.mark.parametrize("kind", KINDS)
def test_truth_names_match_the_pooled_names(kind):
    """Every true parameter is found among the pooled estimates or variance components, and
    the complete data (before holes) estimate it well."""
    (d,) = studies.design_grid((kind,), (300,), (20,), (0.3,), rate=0.01)
    res = studies.run_replication(d, 1, ["complete", "listwise"], studies.Settings())
    assert (res["status"] == "ok").all(), res["message"].unique()
    assert list(res["parameter"]) == list(d.truth) * 2
    err = (res["estimate"] - res["truth"]).abs()
    assert (err < 0.08).all(), res[["parameter", "estimate", "truth"]]


def test_seeds_depend_on_design_name_and_rep_only():
    (a,) = studies.design_grid(("ri",), (50,), (5,), (0.1,))
    (b,) = studies.design_grid(("ri",), (50,), (5,), (0.3,))
    assert a.seed(1, 3) == a.seed(1, 3)
    assert len({a.seed(1, 1), a.seed(1, 2), b.seed(1, 1), a.seed(2, 1)}) == 4


def _fake(est, covered, truth=2.0, width=1.0, fmi=0.2):
    n = len(est)
    return pd.DataFrame(
        {
            "design": "d",
            "rep": np.arange(1, n + 1),
            "method": "m",
            "parameter": "p",
            "truth": truth,
            "estimate": est,
            "covered": covered,
            "width": width,
            "fmi": fmi,
            "status": "ok",
            "seconds": 1.0,
        }
    )


def test_summary_formulas():
    rng = np.random.default_rng(3)
    est = 2.0 + rng.normal(0.1, 0.5, 40)
    cov = rng.random(40) < 0.9
    res = pd.concat([_fake(est, cov), _fake([np.nan], [False]).assign(status="error", rep=41)])
    tab = studies.summarize(res)
    r = tab.iloc[0]
    d = est - 2.0
    assert r["reps"] == 40 and r["failed"] == 1
    assert r["bias"] == pytest.approx(d.mean(), rel=1e-12)
    assert r["bias_mcse"] == pytest.approx(d.std(ddof=1) / np.sqrt(40), rel=1e-12)
    assert r["rel_bias"] == pytest.approx(d.mean() / 2.0, rel=1e-12)
    rmse = np.sqrt(np.mean(d**2))
    assert r["rmse"] == pytest.approx(rmse, rel=1e-12)
    assert r["rmse_mcse"] == pytest.approx((d**2).std(ddof=1) / (2 * rmse * np.sqrt(40)))
    c = cov.mean()
    assert r["coverage"] == pytest.approx(c)
    assert r["coverage_mcse"] == pytest.approx(np.sqrt(c * (1 - c) / 40))
    assert r["width"] == 1.0 and r["width_mcse"] == 0.0


def test_summary_coverage_counts_only_replications_with_an_interval():
    est = np.array([2.0, 2.2, 1.8, 0.0])
    cov = pd.array([True, False, True, pd.NA], dtype="boolean")
    r = studies.summarize(_fake(est, cov).assign(width=[1.0, 3.0, 2.0, np.nan])).iloc[0]
    assert r["reps"] == 4 and r["intervals"] == 3
    assert r["bias"] == pytest.approx(-0.5)  # the boundary estimate counts in the bias
    assert r["coverage"] == pytest.approx(2 / 3)
    assert r["coverage_mcse"] == pytest.approx(np.sqrt(2 / 9 / 3))
    assert r["width"] == pytest.approx(2.0)


def test_boundary_fits_keep_their_replication():
    """A variance component estimated as zero (a singular fit) counts at zero in the bias and
    has no interval; the fixed effects of the replication are still scored."""
    (d,) = studies.design_grid(("ri",), (30,), (5,), (0.1,), rate=0.01)
    data = d.generate(5, complete=True)
    rng = np.random.default_rng(2)
    data["y"] = 1 + 0.5 * data["x"] + 0.3 * data["z"] + rng.normal(size=len(data))
    fit = pm.lmer(d.analysis, data)
    rows = {r["parameter"]: r for r in studies._runner._score(d, [fit], 0.95)}
    tau = rows["Intercept~~Intercept|g"]
    assert tau["estimate"] == pytest.approx(0.0, abs=1e-12)
    assert tau["covered"] is pd.NA and np.isnan(tau["width"])
    assert isinstance(rows["x"]["covered"], bool) and np.isfinite(rows["x"]["width"])


def test_summary_leaves_out_methods_that_do_not_apply():
    res = pd.concat(
        [
            _fake([2.0, 2.1], [True, True]),
            _fake([np.nan], [False]).assign(method="x", status="not applicable"),
        ]
    )
    tab = studies.summarize(res)
    assert list(tab["method"]) == ["m"]
    with pytest.raises(ValueError, match="no results to summarise"):
        studies.summarize(res[res["method"] == "x"])


def test_listwise_interval_is_the_fits_own_wald_interval():
    (d,) = studies.design_grid(("ri",), (40,), (10,), (0.3,))
    res = studies.run_replication(d, 1, ["listwise"], studies.Settings())
    data = d.derive(d.generate(d.seed(1, 1))).dropna()
    fit = pm.lmer(d.analysis, data, REML=True)
    se = np.sqrt(np.diag(fit.vcov))
    x = res.set_index("parameter").loc["x"]
    i = list(fit.fixef.index).index("x")
    assert x["estimate"] == pytest.approx(fit.fixef["x"], rel=1e-10)
    assert x["se"] == pytest.approx(se[i], rel=1e-10)
    assert x["fmi"] == pytest.approx(0.0, abs=1e-12)
    assert x["upper"] - x["estimate"] == pytest.approx(1.959964 * se[i], rel=1e-5)


def test_failures_and_inapplicable_methods_are_recorded(monkeypatch):
    (d,) = studies.design_grid(("cat",), (20,), (5,), (0.3,))

    def boom(*a, **k):
        raise np.linalg.LinAlgError("boom\nsecond line")

    monkeypatch.setitem(studies.METHODS, "listwise", boom)
    res = studies.run_replication(d, 1, ["listwise", "pan"], studies.Settings())
    st = res.groupby("method")["status"].first()
    assert st["listwise"] == "error" and st["pan"] == "not applicable"
    assert res.loc[res.method == "listwise", "message"].iloc[0] == "LinAlgError: boom"


def test_study_resumes_and_parallel_equals_serial(tmp_path):
    cells = studies.design_grid(("ri", "mnar"), (20,), (5,), (0.3,))
    kw = {"methods": ["listwise"], "progress": False}
    full = studies.run_study(cells, reps=3, out=tmp_path / "a", **kw)
    assert len(list((tmp_path / "a").glob("*/*/rep_*.csv"))) == 6
    # a study killed after one replication continues, with the same results
    studies.run_study(cells, reps=1, out=tmp_path / "b", **kw)
    (tmp_path / "b" / cells[0].name / "listwise" / "rep_00001.csv").unlink()
    resumed = studies.run_study(cells, reps=3, out=tmp_path / "b", **kw)
    cols = [c for c in full.columns if c != "seconds"]
    pd.testing.assert_frame_equal(full[cols], resumed[cols])
    par = studies.run_study(cells, reps=3, out=tmp_path / "c", n_jobs=2, **kw)
    pd.testing.assert_frame_equal(full[cols], par[cols])
    # a method added later runs on the same data sets; the earlier files are kept
    more = studies.run_study(
        cells, reps=3, out=tmp_path / "a", methods=["listwise", "single"], progress=False
    )
    assert list(pd.unique(more["method"])) == ["listwise", "single"]
    pd.testing.assert_frame_equal(
        more[more.method == "listwise"].reset_index(drop=True)[cols], full[cols]
    )


def test_packed_results_unpack_to_the_same_files_and_resume(tmp_path):
    cells = studies.design_grid(("ri",), (20,), (5,), (0.3,))
    kw = {"methods": ["listwise", "single"], "progress": False}
    studies.run_study(cells, reps=2, out=tmp_path / "a", **kw)
    (tmp_path / "a" / cells[0].name / "single" / "rep_00002.tmp99").write_text("unfinished")
    written = studies.pack_results(tmp_path / "a", tmp_path / "packed")
    assert [p.relative_to(tmp_path / "packed").as_posix() for p in written] == [
        f"{cells[0].name}/listwise.csv.gz",
        f"{cells[0].name}/single.csv.gz",
    ]
    # packing the same results again gives the same bytes (no spurious git change)
    first = {p: p.read_bytes() for p in written}
    studies.pack_results(tmp_path / "a", tmp_path / "packed")
    assert {p: p.read_bytes() for p in written} == first
    assert studies.unpack_results(tmp_path / "packed", tmp_path / "b") == 4
    a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").glob("*/*/rep_*.csv"))
    b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").glob("*/*/rep_*.csv"))
    assert a == b
    for rel in a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel
    # files already there are kept; the study resumes after the unpacked replications
    assert studies.unpack_results(tmp_path / "packed", tmp_path / "b") == 0
    res = studies.run_study(cells, reps=3, out=tmp_path / "b", **kw)
    assert sorted(res.groupby("method").rep.nunique().items()) == [("listwise", 3), ("single", 3)]


def test_run_study_bad_arguments(tmp_path):
    cells = studies.design_grid(("ri",), (20,), (5,), (0.3,))
    with pytest.raises(ValueError, match=r"unknown methods \['lw'\]"):
        studies.run_study(cells, reps=1, out=tmp_path, methods=["lw"])
    with pytest.raises(ValueError, match="`reps` must be a positive integer; got 0"):
        studies.run_study(cells, reps=0, out=tmp_path)
    with pytest.raises(ValueError, match="design names must be unique"):
        studies.run_study(cells + cells, reps=1, out=tmp_path)
    with pytest.raises(ValueError, match="unknown design kind 'xx'"):
        studies.design_grid(("xx",))


@pytest.mark.slow
def test_reduced_study_reproduces_the_literature(tmp_path):
    """30 replications: valid methods unbiased and covering, the known failures reproduced."""
    cells = studies.design_grid(("ri", "rs"), (50,), (20,), (0.3,), rate=0.3)
    s = studies.Settings(m=10, n_burn=500, n_iter=50, maxit=10)
    methods = ["listwise", "single", "pan", "fcs_2l.pan"]
    if hasattr(pm, "model_impute"):
        methods.append("model")
    res = studies.run_study(cells, reps=30, out=tmp_path, methods=methods, settings=s, n_jobs=2)
    tab = studies.summarize(res).set_index(["design", "method", "parameter"])
    ri, rs = (c.name for c in cells)
    for mth in ("pan", "fcs_2l.pan"):
        for par in ("(Intercept)", "x", "z", "Intercept~~Intercept|g"):
            r = tab.loc[(ri, mth, par)]
            assert abs(r["bias"]) < 3.5 * r["bias_mcse"] + 0.02, (mth, par, r["bias"])
            assert 0.85 <= r["coverage"] <= 1.0, (mth, par, r["coverage"])
    # listwise deletion under MAR on the auxiliary: the intercept is biased
    r = tab.loc[(ri, "listwise", "(Intercept)")]
    assert abs(r["bias"]) > 4 * r["bias_mcse"]
    # single-level imputation shrinks the intercept variance (the ICC)
    r = tab.loc[(ri, "single", "Intercept~~Intercept|g")]
    assert r["rel_bias"] < -0.1
    # random-intercept joint imputation biases the slope variance of an incomplete predictor
    r = tab.loc[(rs, "pan", "x~~x|g")]
    assert r["rel_bias"] < -0.2
    if "model" in methods:
        r = tab.loc[(rs, "model", "x~~x|g")]
        assert abs(r["rel_bias"]) < 0.1 + 2 * r["rel_bias_mcse"]


def test_markdown_table():
    res = pd.concat(
        [_fake([2.2, 2.0], [True, False]), _fake([2.0, 2.0], [True, True]).assign(method="k")]
    )
    md = studies.to_markdown(studies.summarize(res))
    assert "**d** (2 replications; relative bias % (coverage %))" in md
    assert "| m | 5.0 (50) |" in md and "| k | 0.0 (100) |" in md
