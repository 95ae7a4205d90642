"""``pymitml run``: Blimp scripts parsed, translated to model_impute, run and reported."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.blimp_script import BlimpScriptError, parse_blimp_script, plan, run_blimp_script
from pymitml.cli import main

SEED002 = """\
DATA: 04_multilevel.csv;
CLUSTERID: j;
FIXED: x3i;
MODEL:
focal:
y ~ x1i x2i x3i x2i*x3i | x1i;   # random slope of x1i
auxiliary:
x1i x2i ~ x3i;
y.missing ~ y x1i x2i x3i x2i*x3i;
SEED: 123;
BURN: 300;
ITERATIONS: 200;
NIMPS: 4;
SAVE: stacked = imps.csv;
"""


@pytest.fixture()
def folder(tmp_path):
    pm.datasets.blimp_mnar(seed=1).to_csv(tmp_path / "04_multilevel.csv", index=False)
    (tmp_path / "mnar.imp").write_text(SEED002)
    return tmp_path


def test_seed002_script_translates_to_model_impute(folder):
    p = plan(parse_blimp_script(SEED002, folder))
    assert p.formula == "y ~ x1i + x2i + x3i + x2i:x3i + (1 + x1i | j)"
    assert p.kwargs["predictors"] == ["x1i + x2i ~ x3i"]
    assert p.kwargs["selection"] == {"y": "~ y + x1i + x2i + x3i + x2i:x3i"}
    assert p.kwargs["fixed"] == ["x3i"]
    # 200 iterations per chain spread over 4 / 2 imputations per chain
    assert (p.kwargs["m"], p.kwargs["n_burn"], p.kwargs["n_iter"], p.kwargs["chains"]) == (
        4,
        300,
        100,
        2,
    )
    assert p.kwargs["seed"] == 123
    assert p.save == ("stacked", folder / "imps.csv")


def test_run_writes_blimp_files_and_reports(folder, capsys):
    assert main(["run", str(folder / "mnar.imp"), "--quiet"]) == 0
    first = (folder / "imps.csv").read_bytes()
    back = pm.read_blimp(folder / "imps.csv")
    assert len(back) == 4
    obs = pm.datasets.blimp_mnar(seed=1)
    for d in back:
        m = obs.notna()
        for c in obs.columns:
            np.testing.assert_array_equal(d[c][m[c]].to_numpy(), obs[c][m[c]].to_numpy())
        assert not d.isna().any().any()
    # same seed: the same file; without --overwrite an existing file is an error
    assert main(["run", str(folder / "mnar.imp")]) == 1
    assert "exists" in capsys.readouterr().err
    text, _ = run_blimp_script(folder / "mnar.imp", overwrite=True)
    assert (folder / "imps.csv").read_bytes() == first
    for section in (
        "ALGORITHMIC OPTIONS SPECIFIED:",
        "DATA INFORMATION:",
        "Level-2 Clusters:         30",
        "MODEL INFORMATION:",
        "[3]  y.missing ~ y + x1i + x2i + x3i + x2i:x3i",
        "Potential scale reduction (PSR) over the burn-in:",
        "Metropolis acceptance rates:",
        "Python equivalent:",
    ):
        assert section in text, section
    assert "y = 23" in text.replace("  ", " ") or "y = 2" in text


def test_headerless_dat_with_variables_missing_code_ranges_and_centering(tmp_path):
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(1, 21), 10)
    x1 = rng.normal(size=200)
    x2 = rng.normal(size=200)
    y = x1 + x2 + rng.normal(size=20)[g - 1] + rng.normal(size=200)
    x1[rng.random(200) < 0.2] = 999
    np.savetxt(tmp_path / "d.dat", np.column_stack([g, y, x1, x2]), fmt="%.6f")
    script = textwrap.dedent(
        """\
        # a headerless file
        DATA: d.dat;
        VARIABLES: id y x1:x2;
        MISSING: 999;
        CLUSTERID: id;
        CENTER: groupmean = x1; grandmean = x2;
        MODEL: y ~ x1:x2;
        BURN: 50; ITERATIONS: 20; NIMPS: 2; SEED: 1;
        OPTIONS: tuneinfo;
        """
    )
    p = plan(parse_blimp_script(script, tmp_path))
    assert list(p.data.columns) == ["id", "y", "x1", "x2"]
    assert p.data["x1"].isna().sum() == (x1 == 999).sum()
    assert p.formula == "y ~ cwc(x1) + x2 + (1 | id)"
    assert abs(p.data["x2"].mean()) < 1e-12
    assert any("OPTIONS (tuneinfo) changes nothing" in n for n in p.notes)
    assert any("x2 grand-mean centred" in n for n in p.notes)


@pytest.mark.parametrize(
    "script, message",
    [
        ("DATA: a.csv;\nMODEL: y ~ x;\nFOO: 1;", "line 3: unknown command 'FOO'"),
        (
            "DATA: a.csv;\nMODEL: y ~ x;\nTRANSFORM: z = x*2;",
            "line 3: Blimp's TRANSFORM command is not supported",
        ),
        ("DATA: a.csv;\nMODEL:\ny ~ x;\ny ~~ x;", "line 4: covariances ('~~') are not supported"),
        ("DATA: a.csv;\nMODEL:\nF -> a b c;", "line 3: latent variables ('->') are not supported"),
        ("DATA: a.csv;\nMODEL: y ~ x", "line 2: statement without a closing ';'"),
        (
            "DATA: a.csv;\nMODEL: y ~ x;\nSEED: 1;\nSEED: 2;",
            "line 4: SEED is given twice (first on line 3)",
        ),
        ("MODEL: y ~ x;", "the script has no DATA command"),
        ("DATA: a.csv;", "the script has no MODEL command"),
        ("y ~ x;\nDATA: a.csv;", "line 1: text before the first command"),
        ("DATA: a.csv;\nMODEL: y ~ x ~ z;", "line 2: a model line needs one '~'"),
    ],
)
def test_syntax_errors_name_the_line(script, message):
    with pytest.raises(BlimpScriptError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_blimp_script(script)


@pytest.mark.parametrize(
    "model, extra, message",
    [
        ("y ~ x1i q;", "", "line 3: variable 'q' is not in the data"),
        ("y ~ x1i | x1i;", "", "line 3: random slopes ('| x1i') need CLUSTERID"),
        (
            "y ~ x1i;\nx3i x2i ~ x1i;",
            "CLUSTERID: j;\n",
            "line 4: x3i complete and x2i incomplete on one line",
        ),
        ("y ~ x1i;", "CLUSTERID: j;\nNIMPS: 3;\n", "NIMPS (3) must be a multiple of CHAINS (2)"),
        ("y ~ x1i;", "SAVE: estimates = e.csv;\n", "SAVE supports 'stacked = file;'"),
        ("y ~ x1i;", "BURN: lots;\n", "BURN needs a whole number; got 'lots'"),
    ],
)
def test_model_errors_name_the_line_and_fix(folder, model, extra, message):
    script = f"DATA: 04_multilevel.csv;\nMODEL:\n{model}\n{extra}"
    with pytest.raises(
        BlimpScriptError, match=message.replace("(", r"\(").replace(")", r"\)").replace("|", r"\|")
    ):
        plan(parse_blimp_script(script, folder))


def test_missing_files_are_user_errors(tmp_path, capsys):
    assert main(["run", str(tmp_path / "none.imp")]) == 1
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "s.imp").write_text("DATA: nothere.csv;\nMODEL: y ~ x;\n")
    assert main(["run", str(tmp_path / "s.imp")]) == 1
    assert "line 1: data file" in capsys.readouterr().err


def test_impute_method_model_on_the_command_line(folder, capsys):
    out = folder / "out.csv"
    rc = main(
        [
            "impute",
            str(folder / "04_multilevel.csv"),
            "--method",
            "model",
            "--formula",
            "y ~ x1i + x2i + (1 | j)",
            "-m",
            "2",
            "--n-burn",
            "50",
            "--n-iter",
            "10",
            "--seed",
            "1",
            "-o",
            str(out),
            "--quiet",
        ]
    )
    assert rc == 0
    got = pd.read_csv(out)
    # the long format: the original data (.imp 0) and the two imputations
    assert sorted(got[".imp"].unique()) == [0, 1, 2] and len(got) == 3 * 600
    assert not got.loc[got[".imp"] > 0, ["y", "x1i", "x2i"]].isna().any().any()
    assert (
        main(["impute", str(folder / "04_multilevel.csv"), "--method", "model", "-o", str(out)])
        == 1
    )
    assert "--method model needs one --formula" in capsys.readouterr().err


def test_complete_variable_models_become_auxiliary_models(folder):
    df = pm.datasets.blimp_mnar(seed=1)
    df.assign(v=df["x3i"] + 1).fillna(-999).to_csv(folder / "aux.csv", index=False)
    script = SEED002.replace("04_multilevel.csv", "aux.csv").replace(
        "FIXED: x3i;", "MISSING: -999;"
    )
    script = script.replace("x1i x2i ~ x3i;", "x1i x2i ~ x3i;\nv ~ y x1i;").replace(
        "BURN: 300", "BURN: 20"
    )
    p = plan(parse_blimp_script(script, folder))
    assert p.kwargs["auxiliary"] == ["v ~ y + x1i"]
    assert "v ~ y + x1i" in p.models
    (folder / "aux.imp").write_text(script.replace("SAVE: stacked = imps.csv;\n", ""))
    text, imp = run_blimp_script(folder / "aux.imp")
    assert "v ~ y + x1i" in imp.models and ("v", "y") in imp.estimates.index
