"""pool_constraints with R names that contain dots (mitml's Analysis vignette: I.SES, G.SES),
checked against mitml::testConstraints on the same per-imputation estimates
(r_compat/constraints_dotted.R -> constraints_dotted_ref.json)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm

REF = json.loads(
    (Path(__file__).parents[1] / "r_compat" / "constraints_dotted_ref.json").read_text()
)
Q = pd.DataFrame(REF["qhat"])[REF["names"]]
U = np.array(REF["uhat"])


@pytest.mark.parametrize(
    ("key", "constraints", "method"),
    [
        ("both", ["I.SES", "G.SES"], "D1"),
        ("difference", ["I.SES - G.SES"], "D1"),
        ("nonlinear_D2", ["I.SES * G.SES", "exp(G.SES) - 1"], "D2"),
    ],
)
def test_dotted_names_match_mitml(key, constraints, method):
    res = pm.pool_constraints(qhat=Q, uhat=U, constraints=constraints, method=method)
    ref = REF[key]
    row = res.table.iloc[0]
    # mitml differentiates with forward differences (pymitml's default): agreement 1e-6
    for ours, theirs in [("F.value", "F"), ("df2", "df2"), ("P(>F)", "p"), ("RIV", "RIV")]:
        assert row[ours] == pytest.approx(ref[theirs], rel=1e-6)
    assert row["df1"] == ref["df1"]
    np.testing.assert_allclose(res.estimates["Estimate"], ref["Qbar"], rtol=1e-9)
    np.testing.assert_allclose(res.total_covariance.to_numpy(), ref["T"], rtol=1e-6, atol=1e-15)


def test_dotted_names_same_as_backticks():
    a = pm.pool_constraints(qhat=Q, uhat=U, constraints=["I.SES - 2.5 * G.SES"])
    b = pm.pool_constraints(qhat=Q, uhat=U, constraints=["`I.SES` - 2.5 * `G.SES`"])
    pd.testing.assert_frame_equal(a.table, b.table)


def test_dotted_name_not_a_parameter():
    with pytest.raises(ValueError, match=r"names `I.SE`, which is not a parameter"):
        pm.pool_constraints(qhat=Q, uhat=U, constraints=["I.SE"])


def test_dotted_names_through_fits():
    fits = [(Q.iloc[i], pd.DataFrame(U[i], index=Q.columns, columns=Q.columns)) for i in range(5)]
    res = pm.pool_constraints(fits, ["I.SES", "G.SES"])
    assert res.table.iloc[0]["F.value"] == pytest.approx(REF["both"]["F"], rel=1e-6)
