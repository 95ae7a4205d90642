"""Missing-data overview against mice::md.pattern; per-level rates; complete-case analysis."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pytest

from pymitml.missing import complete_case_analysis, missing_pattern

REF_DIR = Path(__file__).resolve().parents[1] / "r_compat"


@pytest.fixture(scope="module")
def ref():
    return json.loads((REF_DIR / "diag_summary_ref.json").read_text())


@pytest.fixture(scope="module")
def studentratings():
    return pd.read_csv(REF_DIR / "diag_studentratings.csv")


@pytest.fixture(scope="module")
def leadership():
    return pd.read_csv(REF_DIR / "diag_leadership.csv")


@pytest.mark.parametrize(
    "name,key", [("studentratings", "md_pattern"), ("leadership", "md_pattern_leadership")]
)
def test_table_equals_mice_md_pattern(request, ref, name, key):
    data = request.getfixturevalue(name)
    want = ref[key]
    tab = missing_pattern(data).table()
    np.testing.assert_array_equal(tab.to_numpy().astype(int), np.array(want["matrix"]))
    assert list(tab.columns) == want["colnames"]
    assert list(tab.index) == want["rownames"]
    # polars input gives the same table
    tab_pl = missing_pattern(pl.from_pandas(data)).table()
    np.testing.assert_array_equal(tab_pl.to_numpy(), tab.to_numpy())


@pytest.mark.r
def test_live_md_pattern(R):
    """Random data with ties in the missing counts, through mice in R."""
    import rpy2.robjects as ro
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    rng = np.random.default_rng(9)
    df = pd.DataFrame(rng.normal(size=(200, 5)), columns=list("abcde"))
    for c, p in zip("abcde", (0.1, 0.3, 0.1, 0.0, 0.45)):
        df.loc[rng.random(200) < p, c] = np.nan
    with localconverter(ro.default_converter + pandas2ri.converter):
        ro.globalenv["d"] = df
    mp = np.asarray(R("unname(mice::md.pattern(d, plot = FALSE))"))
    rn = list(R("rownames(mice::md.pattern(d, plot = FALSE))"))
    cn = list(R("colnames(mice::md.pattern(d, plot = FALSE))"))
    tab = missing_pattern(df).table()
    np.testing.assert_array_equal(tab.to_numpy().astype(int), mp.astype(int))
    assert list(tab.index) == rn and list(tab.columns) == cn


def test_levels_and_cluster_rates(leadership, studentratings):
    mp = missing_pattern(leadership, cluster="GRPID")
    r = mp.rates.set_index("variable")
    assert r["level"].to_dict() == {"JOBSAT": 1, "COHES": 2, "NEGLEAD": 1, "WLOAD": 1}
    assert r.loc["COHES", "n_missing"] == 30 and r.loc["COHES", "clusters_missing"] == 2
    assert r.loc["COHES", "pct_clusters_missing"] == pytest.approx(4.0)
    assert r.loc["JOBSAT", "pct_missing"] == pytest.approx(9.2)
    assert "GRPID" not in mp.patterns.columns and mp.n_clusters == 50
    assert mp.n_complete == 531 and mp.patterns["count"].sum() == 750
    text = str(mp)
    assert "Level 2:" in text and "COHES" in text.split("Level 2:")[1]
    sr = missing_pattern(studentratings, cluster="ID", columns=["FedState", "ReadDis", "SES"])
    assert sr.rates.set_index("variable")["level"].to_dict() == {
        "FedState": 2,
        "ReadDis": 1,
        "SES": 1,
    }
    forced = missing_pattern(studentratings, cluster="ID", columns=["ReadDis"], level2=["ReadDis"])
    assert forced.rates["level"].tolist() == [2]


def test_small_example_by_hand():
    df = pd.DataFrame(
        {
            "g": [1, 1, 2, 2, 3],
            "x": [1.0, None, 3, 4, None],
            "z": [5.0, 5, None, None, 7],
            "w": list("abcde"),
        }
    )
    mp = missing_pattern(df, cluster="g")
    p = mp.patterns
    assert list(p.columns) == ["w", "x", "z", "count", "n_missing"]
    assert p[["w", "x", "z"]].to_numpy().tolist() == [[1, 1, 1], [1, 1, 0], [1, 0, 1]]
    assert p["count"].tolist() == [1, 2, 2]
    r = mp.rates.set_index("variable")
    assert r["level"].to_dict() == {"x": 1, "z": 2, "w": 1}
    assert r["clusters_missing"].to_dict() == {"x": 1, "z": 1, "w": 0}  # cluster 3: x never seen


def test_validation(studentratings):
    with pytest.raises(ValueError, match=r"`cluster` column \['nope'\] not found"):
        missing_pattern(studentratings, cluster="nope")
    with pytest.raises(TypeError, match="`columns` must be a list of column names"):
        missing_pattern(studentratings, columns="SES")
    with pytest.raises(TypeError, match="`data` must be a pandas or polars DataFrame; got ndarray"):
        missing_pattern(np.zeros((3, 2)))
    bad = studentratings.assign(ID=studentratings["ID"].where(studentratings.index > 0))
    with pytest.raises(ValueError, match="the cluster column 'ID' has 1 missing values"):
        missing_pattern(bad, cluster="ID")


def test_complete_case_analysis(leadership):
    seen = []

    def fit(d):
        seen.append(d)
        return float(d["JOBSAT"].mean())

    cc = complete_case_analysis(leadership, fit, columns=["JOBSAT", "COHES"])
    assert cc.n_used == 658 and cc.n_dropped == 92
    assert not seen[0][["JOBSAT", "COHES"]].isna().any().any()
    assert cc.result == pytest.approx(
        leadership.dropna(subset=["JOBSAT", "COHES"])["JOBSAT"].mean()
    )
    cc_pl = complete_case_analysis(pl.from_pandas(leadership), lambda d: d.height)
    assert isinstance(seen[0], pd.DataFrame) and cc_pl.result == 531 == cc_pl.n_used
    with pytest.raises(TypeError, match="`func` must be callable"):
        complete_case_analysis(leadership, 3)
