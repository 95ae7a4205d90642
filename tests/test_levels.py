"""pymitml.levels: the level of every variable given several cluster variables, and the
errors for factors that are not nested and for declared levels the data contradict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.levels import factor_codes, is_constant_within


def three_level(seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(4), 6)
    klass = np.repeat(np.arange(8), 3)
    df = pd.DataFrame(
        {
            "school": school,
            "class": klass,
            "y": rng.normal(size=24),
            "w": rng.normal(size=8)[klass],
            "z": rng.normal(size=4)[school],
            "sex": rng.choice(["f", "m"], 24),
            "size": pd.Categorical(np.array(["s", "l", "m", "s"])[school]),
        }
    )
    df.loc[[0, 5], "y"] = np.nan
    df.loc[[3, 4, 5], "w"] = np.nan  # class 1 entirely missing
    df.loc[[6], "z"] = np.nan
    return df


def test_each_variable_gets_the_highest_level_at_which_it_is_constant():
    lv = pm.detect_levels(three_level(), ["school", "class"])
    assert lv.nested
    assert lv.level_of == {"y": None, "w": "class", "z": "school", "sex": None, "size": "school"}
    assert [lv.number(f) for f in (None, "class", "school")] == [1, 2, 3]
    assert [f.n_groups for f in lv.factors] == [4, 8]
    assert lv.lines() == [
        "Cluster variables (nested): school (level 3, 4 groups), class (level 2, 8 groups)",
        "  level 1: y sex",
        "  level 2 (class): w",
        "  level 3 (school): z size",
    ]


def test_a_constant_column_with_one_row_per_group_is_level_one():
    df = pd.DataFrame({"g": [1, 2, 3], "v": [1.0, 2.0, 3.0]})
    assert pm.detect_levels(df, ["g"]).level_of == {"v": None}


def test_class_ids_reused_across_schools_are_an_error_naming_the_fix():
    df = three_level()
    df["class"] = np.tile(np.repeat([1, 2], 3), 4)  # each school numbers its classes 1, 2
    with pytest.raises(ValueError) as e:
        pm.detect_levels(df, ["school", "class"])
    assert str(e.value) == (
        "cluster variable 'class' is not nested in 'school': class 1 occurs in 4 school groups "
        "(0, 1, 2), and 2 of the 2 class ids are shared across school groups. If each school "
        "numbers its class groups from 1, write the inner factor as 'school:class' (cluster="
        "[..., 'school:class'] and '(1|school:class)' in random terms) or give the groups "
        "unique ids; if the factors are crossed, pass crossed=True."
    )
    lv = pm.detect_levels(df, ["school", "school:class"])
    assert lv.factors[1].n_groups == 8
    assert lv.level_of["w"] == "school:class"
    assert pm.detect_levels(df, ["school", "class"], crossed=True).level_of["w"] is None


def test_factors_listed_inner_first_get_the_order_hint():
    with pytest.raises(ValueError, match=r"list the outermost variable first, cluster=\['school'"):
        pm.detect_levels(three_level(), ["class", "school"])


def test_declared_level_contradicted_by_the_data_is_an_error():
    with pytest.raises(ValueError) as e:
        pm.detect_levels(three_level(), ["school", "class"], levels={"w": "school"})
    msg = str(e.value)
    assert msg.startswith(
        "'w' is declared a 'school'-level variable (level 3, one value per school) but varies "
        "within 3 of the 4 school groups (school 1 has "  # class 1 (school 0) is all missing
    )
    assert msg.endswith(
        "declare a lower level for it (or drop it from `levels` to have it detected), or "
        "correct the data."
    )
    with pytest.raises(ValueError, match=r"'y' is declared a 'class'-level variable"):
        pm.detect_levels(three_level(), ["school", "class"], levels={"y": 2})


def test_declared_levels_may_be_lower_and_are_marked():
    lv = pm.detect_levels(three_level(), ["school", "class"], levels={"z": "class", "w": 1})
    assert lv.level_of["z"] == "class" and lv.level_of["w"] is None
    assert "  level 2 (class): z*" in lv.lines()
    assert lv.lines()[-1] == "  (* declared with levels=; the others detected)"


@pytest.mark.parametrize(
    ("levels", "msg"),
    [
        ({"nope": 2}, r"`levels` names \['nope'\], which are not columns"),
        ({"w": 4}, r"`levels\['w'\]` = 4 is not a level of these data \(1 .. 3\)"),
        ({"w": "district"}, r"`levels\['w'\]` = 'district' is not one of the cluster variables"),
    ],
)
def test_bad_levels_argument(levels, msg):
    with pytest.raises(ValueError, match=msg):
        pm.detect_levels(three_level(), ["school", "class"], levels=levels)


def test_bad_cluster_arguments():
    df = three_level()
    with pytest.raises(ValueError, match=r"cluster variable\(s\) \['room'\] not found"):
        pm.detect_levels(df, ["school", "room"])
    with pytest.raises(ValueError, match="lists a variable twice"):
        pm.detect_levels(df, ["school", "school"])
    with pytest.raises(TypeError, match="`cluster` must be a column name or a list"):
        pm.detect_levels(df, [1, 2])
    d2 = df.astype({"class": float})
    d2.loc[2, "class"] = np.nan
    with pytest.raises(ValueError, match=r"cluster variable 'class' is missing in 1 row\(s\)"):
        pm.detect_levels(d2, ["school", "class"])


def test_crossed_factors_level_is_the_coarsest_factor_of_constancy():
    rng = np.random.default_rng(3)
    s = rng.integers(0, 5, 200)
    n = rng.integers(0, 7, 200)
    df = pd.DataFrame(
        {"s": s, "n": n, "a": rng.normal(size=5)[s], "b": rng.normal(size=7)[n], "y": 1.0 * s + n}
    )
    with pytest.raises(ValueError, match="'n' is not nested in 's'"):
        pm.detect_levels(df, ["s", "n"])
    lv = pm.detect_levels(df, ["s", "n"], crossed=True)
    assert lv.level_of == {"a": "s", "b": "n", "y": None}
    assert lv.number("s") == lv.number("n") == 2
    assert (
        lv.lines()[0] == "Cluster variables (crossed): s (level 2, 5 groups), n (level 2, 7 groups)"
    )


def test_factor_codes_and_constancy_against_pandas():
    df = three_level()
    df["class"] = np.tile(np.repeat([1, 2], 3), 4)
    f = factor_codes(df, "school:class")
    ref = df.groupby(["school", "class"]).ngroup().to_numpy()
    np.testing.assert_array_equal(f.codes, ref)
    assert f.labels[:2] == [(0, 1), (0, 2)]
    v = df["y"].to_numpy()
    got = is_constant_within(v, f.codes, f.n_groups)
    want = df.groupby(f.codes)["y"].nunique().to_numpy() <= 1
    np.testing.assert_array_equal(got, want)
