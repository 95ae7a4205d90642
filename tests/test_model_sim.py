"""Simulation checks of pm.model_impute against the truth (no R reference exists for these
designs' bias): a random slope of an incomplete predictor and an interaction of two incomplete
predictors, each missing at random, where joint-model (pan) and chained-equations (fcs)
imputation are biased. The study itself is benchmarks/study_model_based.py (same designs and
code); the ``slow`` tests run it with 40 replications, the fast ones one large data set each,
compared with the analysis of the same data before deletion.

Measured by the slow tests (40 replications, m = 10): model-based relative bias at most 4% for
every fixed effect and variance component of both designs (slope variance -2.9%, MCSE 4.8%
of the truth; product term +0.7%); pan's slope variance -54%; pan's and fcs' product term -36%
and -38% with 0% coverage. Details in benchmarks/study_model_based.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

STUDY = Path(__file__).resolve().parent.parent / "benchmarks" / "study_model_based.py"


def _study():
    spec = importlib.util.spec_from_file_location("study_model_based", STUDY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


S = _study()


def _one(design_name: str, data, methods, m: int = 10, seed: int = 11):
    design = S.DESIGNS[design_name]
    out = {"complete": S.analyse_complete(data(seed, missing=False), design)}
    df = data(seed)
    for meth in methods:
        out[meth] = S.analyse(S.impute(meth, df, design, m, seed + 7), design)
    return {k: {p: v[0] for p, v in d.items()} for k, d in out.items()}


def test_random_slope_one_large_data_set():
    """150 clusters of 20, x (carrying the random slope) 35% MAR: model-based imputation keeps
    the slope variance of the complete data, pan's random-intercept joint model shrinks it."""
    import pymitml as pm

    def data(seed, missing=True):
        return pm.datasets.random_slope_mar(150, 20, seed=seed, p_missing=0.35, missing=missing)

    r = _one("slope", data, ["model", "pan"])
    comp, model, pan = r["complete"], r["model"], r["pan"]
    assert abs(model["tau11"] / comp["tau11"] - 1) < 0.15, (model, comp)
    assert pan["tau11"] / comp["tau11"] < 0.6, (pan, comp)
    for p in ("(Intercept)", "x", "tau00", "sigma2"):
        assert abs(model[p] / comp[p] - 1) < 0.1, (p, model, comp)


def test_interaction_one_large_data_set():
    """100 clusters of 20, x1 30% MAR and x2 15% MCAR: the product term is kept by model-based
    imputation and attenuated by pan's and fcs' linear imputation models."""
    import pymitml as pm

    def data(seed, missing=True):
        return pm.datasets.interaction_mar(100, 20, seed=seed, p_missing=0.3, missing=missing)

    r = _one("interaction", data, ["model", "pan", "fcs"])
    comp = r["complete"]
    for p in ("(Intercept)", "x1", "x2", "x1:x2"):
        assert abs(r["model"][p] / comp[p] - 1) < 0.1, (p, r["model"], comp)
    for meth in ("pan", "fcs"):
        assert r[meth]["x1:x2"] / comp["x1:x2"] < 0.85, (meth, r[meth], comp)


@pytest.mark.slow
def test_random_slope_study():
    tab = S.study("slope", reps=40, m=10)
    print(tab.round(3).to_string())
    model = tab.loc["model"]
    for p in ("(Intercept)", "x", "tau00", "tau11", "sigma2"):
        assert abs(model.loc[p, "rel_bias"]) < 0.10, (p, model)
    assert tab.loc[("pan", "tau11"), "rel_bias"] < -0.3
    cov = model["coverage"].dropna()
    assert np.all(cov >= 0.85), cov


@pytest.mark.slow
def test_interaction_study():
    tab = S.study("interaction", reps=40, m=10)
    print(tab.round(3).to_string())
    model = tab.loc["model"]
    for p in ("(Intercept)", "x1", "x2", "x1:x2", "tau00", "sigma2"):
        assert abs(model.loc[p, "rel_bias"]) < 0.10, (p, model)
    for meth in ("pan", "fcs"):
        assert tab.loc[(meth, "x1:x2"), "rel_bias"] < -0.2, meth
    cov = model["coverage"].dropna()
    assert np.all(cov >= 0.85), cov
