"""Every bad (non-file) input with the exact message pymitml gives: samplers, fitting, pooling.

The file cases (readers, writers) are in tests/test_bad_input_io.py. Each case is one row of a
table: a call, the exception type and the full message, so any change of wording or any case
that stops being caught shows up as a failure. Warnings (scale, missing codes) are listed the
same way. ``python tests/test_bad_input.py`` prints the messages the code gives now.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.exceptions import MissingCodeWarning, NumericalFailureError, ScaleWarning

RUN = {"m": 1, "n_burn": 1, "n_iter": 1, "seed": 1}
FCS = {"m": 1, "maxit": 1, "seed": 1}
N = 48


def base() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    d = pd.DataFrame(
        {
            "g": np.repeat(np.arange(8), 6),
            "x": np.round(rng.normal(size=N), 3),
            "y": np.round(rng.normal(size=N), 3),
            "w": np.round(rng.normal(size=N), 3),
        }
    )
    d.loc[[1, 5, 9], "y"] = np.nan
    return d


def edit(**changes: Callable[[pd.DataFrame], Any]) -> pd.DataFrame:
    d = base()
    for col, f in changes.items():
        d[col] = f(d)
    return d


def at(col: str, rows: list[int], value: Any) -> Callable[[pd.DataFrame], pd.Series]:
    def f(d: pd.DataFrame) -> pd.Series:
        s = d[col].astype(object) if isinstance(value, str) else d[col].copy()
        s.iloc[rows] = value
        return s

    return f


def mixed(d: pd.DataFrame) -> pd.Series:
    s = d["y"].astype(object)
    s.iloc[[0, 2]] = ["n/a", "."]
    return s


class Case(NamedTuple):
    call: Callable[[], Any]
    error: type | None  # None: a warning case
    message: str


def _fits(q: np.ndarray, u: np.ndarray, names=("a", "b")) -> list:
    return [
        (pd.Series(q[i], index=list(names)), pd.DataFrame(u[i], index=names, columns=names))
        for i in range(len(q))
    ]


Q = np.array([[1.0, 2.0], [1.1, 2.2], [0.9, 1.9]])
U = np.array([np.diag([0.04, 0.09])] * 3)


def _with(arr: np.ndarray, idx: tuple, value: float) -> np.ndarray:
    out = arr.copy()
    out[idx] = value
    return out


INF_Y = "column 'y' has 1 infinite value(s) (inf/-inf) at row positions [3]; infinite is not "
INF_TAIL = (
    "missing (only NaN/null is): correct them, or set them to missing (NaN/null) if they stand "
    "for unknown values."
)
MIXED_Y = (
    "column 'y' mixes text and numbers (2 text value(s) such as ['n/a', '.'], 43 number(s) such "
    "as [-1.199, 0.075, -0.189]); give it one type: pd.to_numeric(df['y'], errors='coerce') keeps "
    "the numbers (text becomes missing), df['y'].astype(str) makes every value a category."
)

CASES: dict[str, Case] = {
    # ---- samplers: values -------------------------------------------------------------------
    "pan_inf_target": Case(
        lambda: pm.pan_impute(edit(y=at("y", [3], np.inf)), "y ~ 1 + x + (1|g)", **RUN),
        ValueError,
        INF_Y + INF_TAIL,
    ),
    "jomo_inf_predictor": Case(
        lambda: pm.jomo_impute(edit(x=at("x", [4, 7], -np.inf)), "y ~ 1 + x + (1|g)", **RUN),
        ValueError,
        "column 'x' has 2 infinite value(s) (inf/-inf) at row positions [4, 7]; infinite is not "
        + INF_TAIL,
    ),
    "fcs_inf": Case(
        lambda: pm.fcs_impute(edit(y=at("y", [3], np.inf)), cluster="g", **FCS),
        ValueError,
        INF_Y + INF_TAIL,
    ),
    "pan_inf_index_labels": Case(
        lambda: pm.pan_impute(
            edit(y=at("y", [3], np.inf)).set_index(np.arange(100, 100 + N)),
            "y ~ 1 + x + (1|g)",
            **RUN,
        ),
        ValueError,
        "column 'y' has 1 infinite value(s) (inf/-inf) at row positions [3], index labels [103]; "
        "infinite is not " + INF_TAIL,
    ),
    "pan_inf_polars": Case(
        lambda: pm.pan_impute(
            __import__("polars").from_pandas(edit(y=at("y", [3], np.inf))),
            "y ~ 1 + x + (1|g)",
            **RUN,
        ),
        ValueError,
        INF_Y + INF_TAIL,
    ),
    "pan_mixed_target": Case(
        lambda: pm.pan_impute(edit(y=mixed), "y ~ 1 + x + (1|g)", **RUN), TypeError, MIXED_Y
    ),
    "jomo_mixed_target": Case(
        lambda: pm.jomo_impute(edit(y=mixed), "y ~ 1 + x + (1|g)", **RUN), TypeError, MIXED_Y
    ),
    "fcs_mixed": Case(lambda: pm.fcs_impute(edit(y=mixed), cluster="g", **FCS), TypeError, MIXED_Y),
    "pan_mixed_predictor": Case(
        lambda: pm.pan_impute(edit(x=at("x", [0], "abc")), "y ~ 1 + x + (1|g)", **RUN),
        TypeError,
        "column 'x' mixes text and numbers (1 text value(s) such as ['abc'], 47 number(s) such as "
        "[0.299, -0.274, -0.891]); give it one type: pd.to_numeric(df['x'], errors='coerce') keeps "
        "the numbers (text becomes missing), df['x'].astype(str) makes every value a category.",
    ),
    "pan_text_target": Case(
        lambda: pm.pan_impute(
            edit(y=lambda d: d["y"].astype(str).astype(object)), "y ~ 1 + x + (1|g)", **RUN
        ),
        ValueError,
        "target 'y' is not numeric (dtype object); pan_impute imputes continuous variables only: "
        "convert it with astype(float), or use jomo_impute for categorical targets.",
    ),
    "jomo_inf_level2_target": Case(
        lambda: pm.jomo_impute(
            edit(z=lambda d: np.where(d["g"] == 2, np.inf, d["g"] * 0.5)),
            ["y ~ 1 + x + (1|g)", "z ~ 1"],
            **RUN,
        ),
        ValueError,
        "column 'z' has 6 infinite value(s) (inf/-inf) at row positions [12, 13, 14, 15, 16]...; "
        "infinite is not " + INF_TAIL,
    ),
    # ---- samplers: missing codes ------------------------------------------------------------
    "missing_code_text": Case(
        lambda: pm.pan_impute(base(), "y ~ 1 + x + (1|g)", missing_code="-99", **RUN),
        ValueError,
        "`missing_code` must be a finite number (e.g. -99), a list of numbers, or a dict "
        "{column: number or list}; got '-99'.",
    ),
    "missing_code_nan": Case(
        lambda: pm.jomo_impute(base(), "y ~ 1 + x + (1|g)", missing_code=[-99, np.nan], **RUN),
        ValueError,
        "`missing_code` must be a finite number (e.g. -99), a list of numbers, or a dict "
        "{column: number or list}; got [-99, nan].",
    ),
    "missing_code_unknown_column": Case(
        lambda: pm.pan_impute(base(), "y ~ 1 + x + (1|g)", missing_code={"yy": -99}, **RUN),
        ValueError,
        "`missing_code` column(s) ['yy'] not found in the data; available columns: "
        "['g', 'x', 'y', 'w'].",
    ),
    "missing_code_is_a_category": Case(
        lambda: pm.jomo_impute(
            edit(c=lambda d: pd.Categorical(np.tile([-99, 1, 2], 16))),
            "c ~ 1 + x + (1|g)",
            missing_code=-99,
            **RUN,
        ),
        ValueError,
        "`missing_code` [-99] is a category of the categorical target 'c' (categories [-99, 1, 2]); "
        "a category code cannot also mean missing: recode that category or mark missing values as "
        "NaN/None instead.",
    ),
    "missing_code_counts": Case(
        lambda: pm.pan_impute(
            edit(y=at("y", [0, 2], -99.0), w=at("w", [0], -99.0)),
            "y ~ 1 + x + (1|g)",
            missing_code=-99,
            **RUN,
        ),
        None,
        "MissingCodeWarning: `missing_code` -99: 2 cell(s) set to missing ('y' 2); the counts are "
        "in `.codebook.missing_code_cells`. If some of them are real values, use a code no observed "
        "value takes.",
    ),
    "missing_code_dict_counts": Case(
        lambda: pm.pan_impute(
            edit(y=at("y", [0, 2], -99.0), w=at("w", [0], -9.0)),
            "y ~ 1 + x + (1|g)",
            missing_code={"y": -99, "w": [-9, -8]},
            **RUN,
        ),
        None,
        "MissingCodeWarning: `missing_code` {'y': -99, 'w': [-9, -8]}: 3 cell(s) set to missing "
        "('y' 2, 'w' 1); the counts are in `.codebook.missing_code_cells`. If some of them are real "
        "values, use a code no observed value takes.",
    ),
    # ---- samplers: scale --------------------------------------------------------------------
    "pan_tiny_scale": Case(
        lambda: pm.pan_impute(edit(y=lambda d: d["y"] * 1e-8), "y ~ 1 + x + (1|g)", **RUN),
        None,
        "ScaleWarning: pan_impute: target 'y' has a tiny standard deviation (7.83e-09); the "
        "default prior assumes a scale near 1, so it would dominate the imputed spread. "
        "Standardise it (subtract the mean, divide by the SD, transform the imputations back) or "
        "give an explicit `prior` on its scale.",
    ),
    "jomo_huge_scale": Case(
        lambda: pm.jomo_impute(edit(y=lambda d: d["y"] * 1e8), "y ~ 1 + x + (1|g)", **RUN),
        None,
        "ScaleWarning: jomo_impute: target 'y' has a huge standard deviation (7.83e+07); the "
        "default prior and start values assume a scale near 1 and the cross-products lose "
        "precision. Standardise it (subtract the mean, divide by the SD, transform the imputations "
        "back) or give an explicit `prior` on its scale.",
    ),
    "pan_constant_target": Case(
        lambda: pm.pan_impute(
            edit(y=lambda d: d["y"].where(d["y"].isna(), 2.0)), "y ~ 1 + x + (1|g)", **RUN
        ),
        None,
        "ScaleWarning: pan_impute: target 'y' is constant where observed (SD 0): its imputed "
        "values come from the prior alone. Standardise it (subtract the mean, divide by the SD, "
        "transform the imputations back) or give an explicit `prior` on its scale.",
    ),
    "fcs_tiny_scale": Case(
        lambda: pm.fcs_impute(edit(y=lambda d: d["y"] * 1e-8), cluster="g", **FCS),
        None,
        "ScaleWarning: target 'y' has a tiny standard deviation (7.83e-09); the default prior "
        "assumes a scale near 1, so it would dominate the imputed spread. Standardise it (subtract "
        "the mean, divide by the SD, transform the imputations back).",
    ),
    # ---- samplers: numerical failure inside a kernel (step, chain, iteration) ---------------
    "pan_degenerate_prior": Case(
        lambda: pm.pan_impute(
            base(),
            "y + w ~ 1 + x + (1|g)",
            prior={"a": 2, "Binv": np.eye(2), "c": 2, "Dinv": 1e300 * np.eye(2)},
            m=1,
            n_burn=20,
            n_iter=1,
            seed=1,
        ),
        NumericalFailureError,
        "the draw of the fixed effects beta (their posterior precision) failed: a matrix lost "
        "positive definiteness (pan_impute, chain 0, iteration 1). Rescale the variables (e.g. to "
        "unit variance), check for constant or collinear predictors, or use a more informative "
        "`prior`.",
    ),
    "jomo_overflow_group": Case(
        lambda: pm.jomo_impute(
            edit(
                y=lambda d: d["y"] * np.where(d["g"] >= 4, 1e160, 1.0),
                grp=lambda d: np.where(d["g"] >= 4, "B", "A"),
            ),
            "y ~ 1 + x + (1|g)",
            group="grp",
            **RUN,
        ),
        NumericalFailureError,
        "the draw of the random effects (a cluster's posterior precision) failed: a matrix lost"
        " positive definiteness (jomo_impute, group 'B', chain 0, iteration 0). Rescale the "
        "variables (e.g. to unit variance), check for constant or collinear predictors, or use "
        "a more informative `prior`.",
    ),
    "fcs_overflow": Case(
        lambda: pm.fcs_impute(edit(y=lambda d: d["y"] * 1e160), cluster="g", **FCS),
        NumericalFailureError,
        "the draw of the random effects (a cluster's posterior precision) failed: a matrix lost"
        " positive definiteness (fcs_impute, variable 'y', chain 0, iteration 0). Rescale the "
        "variables (e.g. to unit variance), check for constant or collinear predictors, or drop predictors "
        "from `predictor_matrix`.",
    ),
    # ---- fitting ----------------------------------------------------------------------------
    "lmer_inf": Case(
        lambda: pm.lmer("x ~ w + (1|g)", edit(w=at("w", [2], np.inf))),
        ValueError,
        "column 'w' has 1 infinite value(s) (rows [2]); a mixed model needs finite data: fix "
        "them, or set them to NaN and pass na_action='omit'.",
    ),
    "glmer_inf": Case(
        lambda: pm.glmer(
            "b ~ w + (1|g)", edit(w=at("w", [2], -np.inf), b=lambda d: (d["x"] > 0).astype(int))
        ),
        ValueError,
        "column 'w' has 1 infinite value(s) (rows [2]); a mixed model needs finite data: fix "
        "them, or set them to NaN and pass na_action='omit'.",
    ),
    "lmer_unknown_column": Case(
        lambda: pm.lmer("x ~ zz + (1|g)", base()),
        ValueError,
        ("formula term(s) ['zz'] not found in the data; available columns: ['g', 'x', 'y', 'w']."),
    ),
    "lmer_missing_response": Case(
        lambda: pm.lmer("y ~ x + (1|g)", base()),
        ValueError,
        (
            "missing values in the analysis data: 'y' (3 row(s)). lmer does not drop rows silently:"
            " pass na_action='omit' to analyse complete cases (lme4's default), or impute first."
        ),
    ),
    "lmer_mixed_predictor": Case(
        lambda: pm.lmer("y ~ x + (1|g)", edit(x=at("x", [0], "abc")), na_action="omit"),
        TypeError,
        "column 'x' mixes text and numbers (1 text value(s) such as ['abc'], 47 number(s) such as "
        "[0.299, -0.274, -0.891]); give it one type: pd.to_numeric(df['x'], errors='coerce') keeps "
        "the numbers (text becomes missing), df['x'].astype(str) makes every value a category.",
    ),
    "lmer_saturated": Case(
        lambda: pm.lmer("w ~ x + (1|g)", edit(x=lambda d: d["x"].astype(str))),
        ValueError,
        "the fixed effects of 'w ~ x + (1|g)' have 48 columns for 48 observations, which leaves "
        "no residual degrees of freedom; use fewer predictors (is a numeric column stored as "
        "text, making it a factor?).",
    ),
    # ---- pooling ----------------------------------------------------------------------------
    "pool_nonfinite_estimate_fits": Case(
        lambda: pm.pool_estimates(_fits(_with(Q, (1, 0), np.inf), U)),
        ValueError,
        (
            "the estimate of 'a' in imputation 2 (fit 2) is inf; every estimate must be finite. "
            "Look at that analysis (a fit that did not converge, separation in a logistic model) "
            "and refit it, or drop the imputation."
        ),
    ),
    "pool_nonfinite_estimate_qhat": Case(
        lambda: pm.pool_estimates(qhat=_with(Q, (2, 1), np.nan), uhat=U),
        ValueError,
        (
            "the estimate of 'Parameter.2' in imputation 3 (`qhat` row 3) is nan; every estimate "
            "must be finite. Look at that analysis (a fit that did not converge, separation in a "
            "logistic model) and refit it, or drop the imputation."
        ),
    ),
    "pool_negative_variance": Case(
        lambda: pm.pool_estimates(_fits(Q, _with(U, (2, 1, 1), -0.01))),
        ValueError,
        (
            "the variance of 'b' in imputation 3 (fit 3) is -0.01 (diagonal of its covariance "
            "matrix); variances must be finite and >= 0. A negative or NaN variance comes from a "
            "failed or singular fit: refit that analysis, or drop the imputation."
        ),
    ),
    "pool_nan_variance_qhat": Case(
        lambda: pm.pool_estimates(
            qhat=pd.DataFrame(Q, columns=["a", "b"]), uhat=_with(U, (0, 0, 0), np.nan)
        ),
        ValueError,
        "the variance of 'a' in imputation 1 (`uhat` entry 1) is nan (diagonal of its "
        "covariance matrix); variances must be finite and >= 0. A negative or NaN variance "
        "comes from a failed or singular fit: refit that analysis, or drop the imputation.",
    ),
    "pool_negative_variances_diagonal": Case(
        lambda: pm.pool_estimates(
            qhat=Q, uhat=np.array([[0.04, 0.09], [0.04, -1.0], [0.04, 0.09]])
        ),
        ValueError,
        "the variance of 'Parameter.2' in imputation 2 (`uhat` entry 2) is -1.0 (diagonal of "
        "its covariance matrix); variances must be finite and >= 0. A negative or NaN variance "
        "comes from a failed or singular fit: refit that analysis, or drop the imputation.",
    ),
    "pool_nonfinite_covariance": Case(
        lambda: pm.pool_estimates(_fits(Q, _with(U, (1, 0, 1), np.inf))),
        ValueError,
        (
            "the covariance of 'a' and 'b' in imputation 2 (fit 2) is inf; every covariance must be"
            " finite."
        ),
    ),
    "pool_names_differ": Case(
        lambda: pm.pool_estimates(_fits(Q[:2], U[:2]) + _fits(Q[2:], U[2:], ("a", "c"))),
        ValueError,
        "the estimates of fit 3 (imputation 3) are named ['a', 'c'], but those of fit 1 are "
        "['a', 'b'] (only in fit 3: ['c']; only in fit 1: ['b']). Every imputed data set must "
        "give the same parameters: check that factor levels and formula terms are the same in "
        "all data sets.",
    ),
    "pool_names_differ_qhat": Case(
        lambda: pm.pool_estimates(
            qhat=[pd.Series([1.0, 2.0], index=["a", "b"]), pd.Series([1.0, 2.0], index=["b", "a"])]
        ),
        ValueError,
        "the estimates of row 2 (imputation 2) are named ['b', 'a'], but those of row 1 are "
        "['a', 'b'] (same names in a different order). Every imputed data set must give the "
        "same parameters: check that factor levels and formula terms are the same in all data "
        "sets.",
    ),
    "pool_one_fit": Case(
        lambda: pm.pool_estimates(_fits(Q[:1], U[:1])),
        ValueError,
        ("pooling needs fits from at least 2 imputed data sets; got 1. Impute with m >= 2."),
    ),
    "pool_constraints_negative_variance": Case(
        lambda: pm.pool_constraints(qhat=Q, uhat=_with(U, (0, 1, 1), -1.0), constraints="a - b"),
        ValueError,
        "the variance of 'Parameter.2' in imputation 1 (`uhat` entry 1) is -1.0 (diagonal of "
        "its covariance matrix); variances must be finite and >= 0. A negative or NaN variance "
        "comes from a failed or singular fit: refit that analysis, or drop the imputation.",
    ),
    "pool_constraints_unknown_dotted": Case(
        lambda: pm.pool_constraints(_fits(Q, U, ("I.SES", "G.SES")), ["I.SE"]),
        ValueError,
        (
            "constraint 'I.SE' names `I.SE`, which is not a parameter; the parameters are ['I.SES',"
            " 'G.SES']."
        ),
    ),
    "compare_models_negative_variance": Case(
        lambda: pm.compare_models(
            _fits(Q, _with(U, (1, 0, 0), -0.5)), [(pd.Series({"a": q[0]}), np.eye(1)) for q in Q]
        ),
        ValueError,
        "the variance of 'a' in imputation 2 (fit 2) is -0.5 (diagonal of its covariance "
        "matrix); variances must be finite and >= 0. A negative or NaN variance comes from a "
        "failed or singular fit: refit that analysis, or drop the imputation.",
    ),
}


def _observe(case: Case) -> tuple[str, str]:
    """(exception or warning class name, message) of running the case."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        try:
            case.call()
        except Exception as exc:  # noqa: BLE001 - the table says which type is expected
            return type(exc).__name__, str(exc)
    ours = [w for w in seen if issubclass(w.category, (ScaleWarning, MissingCodeWarning))]
    if not ours:
        return "no error", ""
    return "warning", f"{ours[0].category.__name__}: {ours[0].message}"


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input(name):
    case = CASES[name]
    kind, message = _observe(case)
    if case.error is None:
        assert kind == "warning", (name, kind, message)
    else:
        assert kind == case.error.__name__, (name, kind, message)
    assert message == case.message


def test_kernel_failure_attributes():
    """The NumericalFailureError of a kernel carries the step, the chain and the iteration."""
    with pytest.raises(NumericalFailureError) as info:
        CASES["pan_degenerate_prior"].call()
    err = info.value
    assert (err.status.name, err.chain, err.iteration, err.group) == ("BETA", 0, 1, None)
    with pytest.raises(NumericalFailureError) as info:
        CASES["jomo_overflow_group"].call()
    assert info.value.group == "B"
    with pytest.raises(NumericalFailureError) as info:
        CASES["fcs_overflow"].call()
    err = info.value
    assert (err.status.name, err.chain, err.iteration) == ("RANDOM_EFFECTS", 0, 0)


def test_columns_outside_the_model_are_not_checked():
    """Infinite values or mixed types in a column the model does not use are left alone."""
    d = edit(w=at("w", [0], np.inf), t=lambda d: pd.Series(["a", 1] * 24, dtype=object))
    out = pm.pan_impute(d, "y ~ 1 + x + (1|g)", **RUN).complete(1)
    assert np.isinf(out["w"].iloc[0]) and out["t"].tolist() == d["t"].tolist()


def test_cluster_ids_of_mixed_types_are_labels():
    """A cluster id mixing numbers and text is a label like any other (not checked as data)."""
    d = base()
    d["g"] = d["g"].astype(object).where(d["g"] != 1, "one")
    out = pm.pan_impute(d, "y ~ 1 + x + (1|g)", **RUN).complete(1)
    assert out["g"].tolist() == d["g"].tolist() and out["y"].notna().all()


def test_missing_code_only_model_columns():
    """A number as missing_code leaves columns outside the model as they are; a dict reaches
    any column it names; the counts are recorded; polars works the same way."""
    import polars as pl

    d = edit(y=at("y", [0, 2], -99.0), w=at("w", [0], -99.0))
    with pytest.warns(MissingCodeWarning):
        imp = pm.pan_impute(d, "y ~ 1 + x + (1|g)", missing_code=-99, **RUN)
    assert imp.codebook.missing_code_cells == {"y": 2}
    assert imp.complete(1)["w"].iloc[0] == -99.0 and imp.complete(1)["w"].dtype == d["w"].dtype
    with pytest.warns(MissingCodeWarning):
        imp = pm.pan_impute(d, "y ~ 1 + x + (1|g)", missing_code={"y": -99, "w": -99}, **RUN)
    assert imp.codebook.missing_code_cells == {"y": 2, "w": 1}
    assert np.isnan(imp.complete(1)["w"].iloc[0])
    with pytest.warns(MissingCodeWarning):
        impl = pm.pan_impute(pl.from_pandas(d), "y ~ 1 + x + (1|g)", missing_code=-99, **RUN)
    assert impl.codebook.missing_code_cells == {"y": 2}
    out = impl.complete(1)
    assert isinstance(out, pl.DataFrame) and out["w"][0] == -99.0
    np.testing.assert_array_equal(out["y"].to_numpy(), imp.complete(1)["y"].to_numpy())


def test_nullable_dtypes_kept():
    """pandas' nullable Int64 / Float64 / boolean columns are accepted and come back nullable:
    Float64 and boolean as they are, Int64 targets as Float64 (continuous draws; documented)."""
    d = base()
    d["y"] = d["y"].astype("Float64")
    d["k"] = pd.array(np.arange(N) % 5, dtype="Int64")
    d["b"] = pd.array([True, False, None, True] * 12, dtype="boolean")
    imp = pm.jomo_impute(d, "y + b ~ 1 + x + k + (1|g)", **RUN)
    out = imp.complete(1)
    assert out.dtypes.to_dict() == d.dtypes.to_dict()
    assert out["y"].notna().all() and out["b"].notna().all()
    d["k"] = d["k"].astype("Float64").where(np.arange(N) % 7 != 0).round().astype("Int64")
    out = pm.fcs_impute(d, cluster="g", **FCS).complete(1)
    assert out["k"].dtype == pd.Float64Dtype() and out["b"].dtype == pd.BooleanDtype()
    assert out["y"].dtype == pd.Float64Dtype()


if __name__ == "__main__":  # print what the code says now (to review a changed message)
    for key, c in CASES.items():
        print(f"{key}: {_observe(c)}")
        if c.message and re.escape(c.message) and _observe(c)[1] != c.message:
            print("   (differs from the table)")
