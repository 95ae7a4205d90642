"""pymitml.bridge and pymitml.io.rds: data to and from R, the same analysis in R, .rds files."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

import pymitml as pm
from pymitml import bridge
from pymitml.io.rds import read_rds, write_rds
from pymitml.pool import pool_estimates

ROOT = Path(__file__).resolve().parents[1]
LM = "ReadAchiev ~ ReadDis + SES + CognAbility"


@pytest.fixture(scope="module")
def implist() -> pm.MitmlList:
    long = pd.read_csv(ROOT / "r_compat" / "pool_studentratings_m5.csv")
    long["FedState"] = pd.Categorical(long["FedState"], categories=["B", "SH"])
    return pm.long_to_mitml_list(long, split=".imp")


def mixed_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "x": [1.5, np.nan, 3.0, -0.25],
            "i": [1, 2, 3, 4],
            "grade": pd.Categorical(
                ["mid", None, "low", "high"], categories=["low", "mid", "high"], ordered=True
            ),
            "school": pd.Categorical(
                ["b", "a", "b", None], categories=["b", "a", "c"]
            ),  # unused level
            "s": ["a", None, "c", "d"],
            "flag": [True, False, True, True],
            "flag_na": pd.array([True, None, False, True], dtype="boolean"),
            "t": pd.to_datetime(["2020-01-01 00:00", "2021-06-01 12:30", None, "1999-12-31 23:59"]),
        }
    )


# ------------------------------------------------------------------------------------------
# without R
# ------------------------------------------------------------------------------------------
def test_importing_pymitml_does_not_need_rpy2():
    code = "import sys, pymitml, pymitml.bridge, pymitml.io.rds; print('rpy2' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        check=True,
    )
    assert out.stdout.strip() == "False"


def test_missing_rpy2_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "rpy2.robjects", None)  # import now fails
    with pytest.raises(ImportError, match=r"pip install pymitml\[r\].*apt-get install r-base-core"):
        bridge.to_r(pd.DataFrame({"x": [1.0]}))


def test_compare_tables_and_side_by_side():
    a = pd.DataFrame({"Estimate": [1.0, 2.0], "df": [np.inf, 10.0]}, index=["x", "z"])
    b = pd.DataFrame({"Estimate": [2.002, 1.0], "df": [10.5, np.inf]}, index=["z", "x"])
    d = bridge.compare_tables(a, b)  # rows matched by name
    assert d.loc["Estimate", "max_abs_diff"] == pytest.approx(0.002)
    assert d.loc["Estimate", "max_rel_diff"] == pytest.approx(0.002 / 2.002)
    assert d.loc["df", "max_abs_diff"] == pytest.approx(0.5)
    b2 = b.loc[["x", "z"]].set_axis(["(Intercept)", "z"])
    d2 = bridge.compare_tables(a, b2)  # names differ: by position
    assert d2.loc["Estimate", "max_abs_diff"] == pytest.approx(0.002)
    with pytest.raises(ValueError, match="different row names"):
        bridge.compare_tables(a, b2, by="name")
    sbs = bridge.side_by_side(a, b)
    assert list(sbs.columns) == [
        ("Estimate", "pymitml"),
        ("Estimate", "R"),
        ("df", "pymitml"),
        ("df", "R"),
    ]
    assert sbs.loc["z", ("Estimate", "R")] == 2.002


# ------------------------------------------------------------------------------------------
# data to R and back
# ------------------------------------------------------------------------------------------
def test_round_trip_preserves_values_na_and_categoricals(needs_r):
    df = mixed_frame()
    back = bridge.from_r(bridge.to_r(df))
    assert list(back.columns) == list(df.columns)
    np.testing.assert_array_equal(back["x"].to_numpy(), df["x"].to_numpy())  # NaN in place
    assert back["i"].dtype == np.int64 and back["i"].tolist() == [1, 2, 3, 4]
    for col in ("grade", "school"):
        assert isinstance(back[col].dtype, pd.CategoricalDtype)
        assert list(back[col].cat.categories) == list(df[col].cat.categories)  # order, unused
        assert back[col].cat.ordered == df[col].cat.ordered
        assert back[col].isna().tolist() == df[col].isna().tolist()
        assert (
            back[col].astype(object).where(back[col].notna(), None).tolist()
            == df[col].astype(object).where(df[col].notna(), None).tolist()
        )
    assert back["s"].isna().tolist() == [False, True, False, False]
    assert back["s"].dropna().tolist() == ["a", "c", "d"]
    assert back["flag"].dtype == bool and back["flag"].tolist() == df["flag"].tolist()
    assert back["flag_na"].isna().tolist() == [False, True, False, False]
    assert back["t"].isna().tolist() == df["t"].isna().tolist()
    assert (back["t"].dropna() == df["t"].dropna()).all()
    assert isinstance(back.index, pd.RangeIndex)


def test_R_sees_factors_and_NA(needs_r):
    out = bridge.r_run(
        "c(is.ordered(d$grade), identical(levels(d$grade), c('low','mid','high')), "
        "identical(levels(d$school), c('b','a','c')), is.na(d$x[2]), !is.nan(d$x[2]), "
        "is.na(d$s[2]), is.integer(d$i), is.logical(d$flag_na), inherits(d$t, 'POSIXct'), "
        "is.na(d$grade[2]))",
        d=mixed_frame(),
    )
    assert np.asarray(out).tolist() == [True] * 10


def test_polars_and_index_round_trip(needs_r):
    df = mixed_frame()[["x", "i", "school"]]
    pl_df = pl.from_pandas(df)
    back = bridge.from_r(bridge.to_r(pl_df), library="polars")
    assert isinstance(back, pl.DataFrame) and back.columns == ["x", "i", "school"]
    assert back["x"].null_count() + back["x"].is_nan().sum() == 1
    sub = df.iloc[[3, 0, 2]]  # non-default integer index
    back = bridge.from_r(bridge.to_r(sub))
    assert back.index.tolist() == [3, 0, 2]
    assert back["x"].tolist() == sub["x"].tolist()


def clean_env() -> dict:
    """os.environ without what starting R in this process added (conftest starts R via rpy2)."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_LIBRARY_PATH", "R_HOME")}


def test_python_subprocesses_still_work_after_R_started(needs_r):
    # R started by the bridge must not leave LD_LIBRARY_PATH pointing a child Python at the
    # system's libpython (it then cannot import numpy)
    code = (
        "import subprocess, sys, pandas as pd; from pymitml import bridge; "
        "bridge.to_r(pd.DataFrame({'x': [1.0]})); "
        "r = subprocess.run([sys.executable, '-c', 'import numpy; print(1)'], capture_output=True,"
        " text=True); print(r.stdout.strip() or r.stderr)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=clean_env(),
        check=True,
    )
    assert out.stdout.strip() == "1", out.stdout + out.stderr


def test_unsupported_column_is_a_clear_error(needs_r):
    df = pd.DataFrame({"obj": [object(), object()]})
    with pytest.raises(TypeError, match="column 'obj' holds non-string objects"):
        bridge.to_r(df)


def test_to_r_mitml_list_is_a_mitml_list_that_testEstimates_accepts(needs_r, implist):
    smf = pytest.importorskip("statsmodels.formula.api")
    r_list = bridge.to_r(implist)
    assert list(r_list.rclass) == ["mitml.list", "list"]
    rtab = bridge.r_run(
        "est <- mitml::testEstimates(with(x, lm(ReadAchiev ~ ReadDis + SES + CognAbility)), df.com = 746)"
        "; unclass(est$estimates)[, 1:7]",
        x=r_list,
    )
    fits = implist.with_(lambda d: smf.ols(LM, d).fit())
    est = pool_estimates(fits, df_com=746)
    np.testing.assert_allclose(
        est.table.to_numpy()[:, [0, 1, 2, 3, 5, 6]],
        np.asarray(rtab)[:, [0, 1, 2, 3, 5, 6]],
        rtol=1e-10,
    )
    np.testing.assert_allclose(est.table["P(>|t|)"], np.asarray(rtab)[:, 4], rtol=1e-6, atol=1e-13)


def test_from_r_mitml_list_round_trip(needs_r, implist):
    back = bridge.from_r(bridge.to_r(implist))
    assert isinstance(back, pm.MitmlList) and len(back) == 5
    for a, b in zip(implist, back):
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    assert list(back[0]["FedState"].cat.categories) == ["B", "SH"]


# ------------------------------------------------------------------------------------------
# the same analysis in R
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "df_com, extra", [(None, True), (746, False), ([746, 600, 300, 50], False)]
)
def test_r_pool_estimates_equals_pool_estimates_for_lm(needs_r, implist, df_com, extra):
    smf = pytest.importorskip("statsmodels.formula.api")
    r_est = bridge.r_pool_estimates(implist, LM, extra_pars=extra, df_com=df_com)
    assert list(r_est.table.columns) == list(pm.pool.COLUMNS)
    assert list(r_est.table.index) == ["(Intercept)", "ReadDis", "SES", "CognAbility"]
    est = pool_estimates(
        implist.with_(lambda d: smf.ols(LM, d).fit()), extra_pars=extra, df_com=df_com
    )
    diff = bridge.compare_tables(est, r_est)  # Intercept vs (Intercept): by position
    for col in ("Estimate", "Std.Error", "t.value", "df", "RIV", "FMI"):
        assert diff.loc[col, "max_rel_diff"] < 1e-6, diff
    assert diff.loc["P(>|t|)", "max_abs_diff"] < 1e-13
    if extra:
        assert diff.loc["extra:Estimate", "max_rel_diff"] < 1e-6
    assert r_est.m == 5


def test_r_pool_estimates_equals_native_lmer(needs_r, implist):
    from pymitml.lmm import lmer

    f = "ReadAchiev ~ 1 + ReadDis + SES + (1 | ID)"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est = pool_estimates(
            implist.with_(lambda d: lmer(f, d, REML=True)), extra_pars=True, df_com=47
        )
    r_est = bridge.r_pool_estimates(implist, f, REML=True, extra_pars=True, df_com=47)
    assert list(est.extra.index) == list(r_est.extra.index)
    diff = bridge.compare_tables(est, r_est, by="name")
    assert diff.drop(index="P(>|t|)")["max_rel_diff"].max() < 1e-6, diff
    assert "Hypothesis test adjusted for small samples with df=[47]" in str(r_est)


# ------------------------------------------------------------------------------------------
# mids / mitml objects and .rds files
# ------------------------------------------------------------------------------------------
def test_from_r_mids_and_mitml_objects(needs_r):
    mids = bridge.r_run(
        "suppressPackageStartupMessages(library(mice)); data(studentratings, package = 'mitml')"
        "; d <- studentratings[, c('ID', 'ReadDis', 'SES', 'ReadAchiev')]"
        "; mice(d, m = 2, maxit = 2, seed = 1, printFlag = FALSE)",
        convert=False,
    )
    ml = bridge.from_r(mids)
    assert isinstance(ml, pm.MitmlList) and len(ml) == 2
    assert ml[0].isna().sum().sum() == 0 and ml.original["SES"].isna().sum() == 281
    r_first = bridge.r_run("mice::complete(x, 1)", x=mids)
    pd.testing.assert_frame_equal(ml[0], r_first)
    imp = bridge.r_run(
        "data(studentratings, package = 'mitml')"
        "; mitml::panImpute(studentratings, formula = ReadDis ~ 1 + (1|ID), n.burn = 20,"
        " n.iter = 5, m = 2, seed = 3, silent = TRUE)",
        convert=False,
    )
    ml = bridge.from_r(imp)
    assert len(ml) == 2 and ml[1]["ReadDis"].isna().sum() == 0
    assert ml.original["ReadDis"].isna().sum() == 153
    assert list(ml[0]["FedState"].cat.categories) == ["B", "SH"]


def test_write_read_rds_round_trip_and_R_pools_it(needs_r, implist, tmp_path):
    path = tmp_path / "imps.rds"
    assert write_rds(implist, path) == path
    back = read_rds(path)
    assert len(back) == 5
    for a, b in zip(implist, back):
        pd.testing.assert_frame_equal(a, b, check_dtype=False)
    out = bridge.r_run(
        "x <- readRDS(p); est <- mitml::testEstimates(with(x, lm(ReadAchiev ~ ReadDis + SES + CognAbility)))"
        "; list(class(x), unclass(est$estimates)[, 1])",
        p=str(path),
    )
    assert list(out[0]) == ["mitml.list", "list"]
    r_direct = bridge.r_pool_estimates(implist, LM)
    np.testing.assert_allclose(np.asarray(out[1]), r_direct.table["Estimate"], rtol=1e-12)
    pl_back = read_rds(path, library="polars")
    assert isinstance(pl_back[0], pl.DataFrame)


def test_write_rds_refuses_to_overwrite(needs_r, implist, tmp_path):
    path = tmp_path / "imps.rds"
    path.write_text("keep me")
    with pytest.raises(FileExistsError, match=r"imps\.rds' already exists; pass overwrite=True"):
        write_rds(implist, path)
    assert path.read_text() == "keep me"
    write_rds(implist[:2], path, overwrite=True)
    assert len(read_rds(path)) == 2


def test_read_rds_mids_long_and_errors(needs_r, tmp_path):
    mids_path, long_path, df_path = (tmp_path / n for n in ("m.rds", "l.rds", "d.rds"))
    bridge.r_run(
        "suppressPackageStartupMessages(library(mice)); d <- data.frame(y = c(1, NA, 3, 4, NA, 6),"
        " x = c(1, 2, 3, 4, 5, 7)); imp <- mice(d, m = 3, maxit = 1, seed = 2, printFlag = FALSE)"
        "; saveRDS(imp, mp); saveRDS(complete(imp, 'long', include = TRUE), lp); saveRDS(d, dp)",
        mp=str(mids_path),
        lp=str(long_path),
        dp=str(df_path),
    )
    ml = read_rds(mids_path)
    assert len(ml) == 3 and ml.original["y"].isna().sum() == 2
    lo = read_rds(long_path)
    assert len(lo) == 3 and lo.original["y"].isna().sum() == 2
    np.testing.assert_array_equal(lo[2]["y"].to_numpy(), ml[2]["y"].to_numpy())
    with pytest.raises(ValueError, match="not imputed data sets"):
        read_rds(df_path)
    with pytest.raises(FileNotFoundError, match="no file"):
        read_rds(tmp_path / "nope.rds")
