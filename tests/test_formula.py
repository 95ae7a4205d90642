"""Formula parsing (mitml / lme4 grammar) and design matrices with R's names."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pymitml.formula import design_matrix, parse_formula


def test_parse_targets_fixed_random():
    f = parse_formula("y1 + y2 ~ 1 + x + I(x^2) + x:z + (1 + x | clus)")
    assert f.targets == ("y1", "y2")
    assert f.fixed == "1 + x + I(x**2) + x:z"
    assert f.random == "1 + x" and f.cluster == "clus"
    assert f.variables == ["y1", "y2", "x", "z", "clus"]


def test_parse_variants():
    assert parse_formula("y ~ (1|g) + x").fixed == "x"
    assert parse_formula("y ~ 0 + x + (0 + x | g)").random == "0 + x"
    assert parse_formula("y ~ x").cluster is None
    assert parse_formula("y ~ (1|g)").fixed == "1"


@pytest.mark.parametrize(
    "bad,msg",
    [
        ("y ~ x ~ z", "exactly one '~'"),
        ("~ x", "names no target"),
        ("log(y) ~ x", "raw column names"),
        ("y ~ x + (1|g) + (1|h)", "2 random-effects terms"),
        ("y ~ x + (1||g)", "'||' are not supported"),
    ],
)
def test_parse_errors(bad, msg):
    with pytest.raises(ValueError, match=msg):
        parse_formula(bad)


def test_design_matrix_r_names_and_contrasts():
    df = pd.DataFrame(
        {"x": [1.0, 2, 3, 4], "z": [1.0, 0, 1, 3], "g": pd.Categorical(["a", "b", "a", "c"])}
    )
    X, names = design_matrix("1 + x + I(x**2) + x:z + g", df)
    assert names == ["(Intercept)", "x", "I(x^2)", "gb", "gc", "x:z"]
    np.testing.assert_array_equal(X[:, 2], df.x**2)
    np.testing.assert_array_equal(X[:, 3], [0, 1, 0, 0])
    _, names0 = design_matrix("0 + x", df)
    assert names0 == ["x"]
    with pytest.raises(ValueError, match=r"\['nope'\] not found in the data"):
        design_matrix("1 + nope", df)


def test_logical_predictor_named_like_r():
    df = pd.DataFrame({"b": [True, False, True], "x": [1.0, 2.0, 3.0]})
    X, names = design_matrix("1 + x + b", df)
    assert names == ["(Intercept)", "x", "bTRUE"]
    np.testing.assert_array_equal(X[:, 2], [1, 0, 1])
