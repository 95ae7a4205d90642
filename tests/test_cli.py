"""The ``pymitml`` command line: each command end to end, exit codes and messages."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.cli import main


@pytest.fixture(scope="module")
def data_csv(tmp_path_factory):
    df = pm.datasets.schools(n_schools=20, seed=3)
    path = tmp_path_factory.mktemp("cli") / "pupils.csv"
    df.to_csv(path, index=False)
    return path, df


def _run(capsys, *args):
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_impute_analyze_convert_describe(tmp_path, capsys, data_csv):
    path, df = data_csv
    out = tmp_path / "imp.dta"
    formula = "math + ses ~ 1 + sector + size + (1|school)"
    code, text, _ = _run(
        capsys,
        "impute",
        path,
        "--formula",
        formula,
        "-m",
        3,
        "--seed",
        1,
        "--n-burn",
        200,
        "--n-iter",
        20,
        "-o",
        out,
        "--quiet",
    )
    assert code == 0 and out.exists() and text == ""
    back = pm.io.read_stata(out)
    assert len(back) == 3
    # the same as the Python API with the same seed on the same (CSV-read) data
    api = pm.pan_impute(
        pd.read_csv(path), formula, m=3, seed=1, n_burn=200, n_iter=20, progress=False
    )
    np.testing.assert_allclose(
        back[1]["math"].to_numpy(float), api.complete()[1]["math"].to_numpy(float), rtol=1e-12
    )
    code, text, _ = _run(capsys, "analyze", out, "--formula", "math ~ ses + (1|school)")
    assert code == 0
    fits = back.with_(lambda d: pm.lmer("math ~ ses + (1|school)", d))
    assert text.strip() == str(pm.pool_estimates(fits)).strip()
    sav = tmp_path / "imp.sav"
    code, text, _ = _run(capsys, "convert", out, sav)
    assert code == 0 and "wrote 3 imputed data sets" in text and sav.exists()
    code, text, _ = _run(capsys, "convert", out, sav)
    assert code == 1
    code, text, _ = _run(capsys, "describe", path, "--cluster", "school")
    assert code == 0 and text.strip() == str(pm.missing_pattern(df, cluster="school")).strip()


def test_fcs_and_missing_code(tmp_path, capsys, data_csv):
    path, df = data_csv
    coded = tmp_path / "coded.csv"
    df.fillna(-99).to_csv(coded, index=False)
    out = tmp_path / "imp.parquet"
    code, _, _ = _run(
        capsys,
        "impute",
        coded,
        "--method",
        "fcs",
        "--cluster",
        "school",
        "-m",
        2,
        "--maxit",
        2,
        "--seed",
        4,
        "--missing-code",
        -99,
        "-o",
        out,
        "--quiet",
    )
    assert code == 0
    back = pm.io.read_long(out)
    assert len(back) == 2 and not back[1].isna().any().any()
    observed = df["math"].notna().to_numpy()
    np.testing.assert_array_equal(back[1]["math"].to_numpy()[observed], df["math"][observed])


@pytest.mark.parametrize(
    "args, message",
    [
        (
            ["impute", "nope.csv", "--formula", "y ~ 1 + (1|g)", "-o", "x.dta"],
            "data file 'nope.csv' does not exist.",
        ),
        (["impute", "{csv}", "-o", "x.dta"], "--method pan needs --formula"),
        (["impute", "{csv}", "--method", "fcs", "-o", "x.dta"], "--method fcs needs --cluster"),
        (
            ["impute", "{csv}", "--formula", "math ~ 1 + (1|school)", "-o", "x.xyz"],
            "cannot tell the output format of 'x.xyz'",
        ),
        (["impute", "{csv}", "--formula", "nope ~ 1 + (1|school)", "-o", "x.dta"], "nope"),
        (
            ["analyze", "nope.dta", "--formula", "y ~ 1 + (1|g)"],
            "imputed-data file 'nope.dta' does not exist.",
        ),
        (["impute", "{csv}", "--method", "magic", "-o", "x.dta"], "Invalid value for '--method'"),
    ],
)
def test_user_errors_exit_1_with_one_line(capsys, data_csv, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = [a.replace("{csv}", str(data_csv[0])) for a in args]
    code, _, err = _run(capsys, *args)
    assert code == 1
    assert message in err


def test_help_lists_commands(capsys):
    code, text, _ = _run(capsys, "--help")
    assert code == 0
    for cmd in ("impute", "analyze", "convert", "describe", "demo"):
        assert cmd in text


def test_internal_error_exit_2(capsys, monkeypatch, data_csv):
    import pymitml.cli as cli

    def boom(*a, **k):
        raise RuntimeError("kaboom")

    monkeypatch.setattr(cli, "_read_data", boom)
    code, _, err = _run(capsys, "describe", data_csv[0])
    assert code == 2 and "internal error" in err and "kaboom" in err
