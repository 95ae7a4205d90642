"""Time per iteration of three-level imputation: 100,000 pupils in 2,000 classes in 200 schools.

    python benchmarks/bench_3level.py [--rows 100000] [--no-r] [--only-pan]

Data: y (30% missing, MAR on x) and x2 (10% MCAR) at level 1, x complete, w at the class level
(20% of classes missing), z at the school level (20% of schools missing). Per-iteration cost
is the slope between two run lengths (m = 1, maxit a and b, after a warm-up call that loads the
compiled kernels), single-threaded, so set-up is excluded. Rows:

- fcs ml.lmer: ``fcs_impute(cluster=["school", "class"])`` (every variable at its level,
  random intercepts for school and class);
- fcs 2l.pan (class only): the naive two-level run that ignores schools, for comparison;
- model-based: ``model_impute`` with both random terms, if the installed pymitml has it for
  several grouping factors (it is built separately); otherwise the row says why;
- pan three-level: ``pan_impute(df, "y + x2 ~ 1 + x + (1|school) + (1|school:class)")``, the
  joint model with random intercepts for school and class (level-1 targets y and x2; w and z
  are incomplete, so they are not in this model);
- pan (class only): the same targets with the class as the only cluster, for scale;
- R mice 2l.pan (class only): R's nearest tool (mice's 2l methods take one cluster variable;
  miceadds' ml.lmer is not installed here), m = 1, maxit = 1.

The machine is shared: ratios are indicative.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from _rscript import run_rscript

import pymitml as pm

R_CODE = r"""
suppressPackageStartupMessages(library(mice))
a <- commandArgs(TRUE)
d <- read.csv(a[1]); maxit <- as.integer(a[2])
d$school <- NULL
pred <- make.predictorMatrix(d); pred[, "class"] <- -2; pred["class", ] <- 0
method <- make.method(d); method[c("y", "x2")] <- "2l.pan"
method[c("w", "z")] <- "2lonly.norm"
t <- system.time(mice(d, method = method, predictorMatrix = pred, m = 1, maxit = maxit,
                      seed = 1, printFlag = FALSE))[["elapsed"]]
cat(t, "\n")
"""


def simulate(rows: int = 100_000, schools: int = 200, classes: int = 2000, seed: int = 1):
    rng = np.random.default_rng(seed)
    per = rows // classes
    school = np.repeat(np.arange(schools), rows // schools)
    klass = np.repeat(np.arange(classes), per)
    x = rng.normal(size=rows)
    w = rng.normal(size=classes)[klass]
    z = rng.normal(size=schools)[school]
    y = 0.5 * x + 0.3 * w + 0.4 * z + rng.normal(0, 0.5, schools)[school]
    y = y + rng.normal(0, 0.4, classes)[klass] + rng.normal(size=rows)
    x2 = 0.3 * y + rng.normal(size=rows)
    df = pd.DataFrame({"school": school, "class": klass, "y": y, "x": x, "x2": x2, "w": w, "z": z})
    df.loc[rng.random(rows) < 1 / (1 + np.exp(-(x - 0.85))), "y"] = np.nan
    df.loc[rng.random(rows) < 0.1, "x2"] = np.nan
    df.loc[(rng.random(classes) < 0.2)[klass], "w"] = np.nan
    df.loc[(rng.random(schools) < 0.2)[school], "z"] = np.nan
    return df


def per_iteration(run, a: int = 3, b: int = 15) -> float:
    run(1)  # warm-up: compiled kernels loaded
    t0 = time.perf_counter()
    run(a)
    ta = time.perf_counter() - t0
    t0 = time.perf_counter()
    run(b)
    tb = time.perf_counter() - t0
    return (tb - ta) / (b - a)


def _pan_rows(df: pd.DataFrame, res: dict) -> None:
    res["pan three-level (school + class)"] = per_iteration(
        lambda k: pm.pan_impute(
            df, "y + x2 ~ 1 + x + (1|school) + (1|school:class)", m=1, n_burn=k, n_iter=1, seed=1
        ),
        50,
        250,
    )
    d2 = df.drop(columns="school")
    res["pan (class only)"] = per_iteration(
        lambda k: pm.pan_impute(d2, "y + x2 ~ 1 + x + (1|class)", m=1, n_burn=k, n_iter=1, seed=1),
        50,
        250,
    )


def _fcs_and_model_rows(df: pd.DataFrame, res: dict) -> None:
    kw = dict(m=1, seed=1, n_threads=1)
    res["fcs ml.lmer (school + class)"] = per_iteration(
        lambda k: pm.fcs_impute(df, cluster=["school", "class"], maxit=k, **kw)
    )
    P = pm.make_predictor_matrix(df, cluster="class")
    P.loc[:, "school"] = 0
    res["fcs 2l.pan (class only)"] = per_iteration(
        lambda k: pm.fcs_impute(df, cluster="class", predictor_matrix=P, maxit=k, **kw)
    )
    formula = "y ~ x + x2 + w + z + (1|school) + (1|school:class)"
    try:
        model_impute = pm.model_impute  # type: ignore[attr-defined]
        res["model-based (school + class)"] = per_iteration(
            lambda k: model_impute(
                df, formula, m=1, chains=1, n_burn=k, n_iter=1, seed=1, verbose=False
            )
        )
    except Exception as e:  # built by another session; may not take two terms yet
        res["model-based (school + class)"] = f"not run: {type(e).__name__}: {str(e)[:90]}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--no-r", action="store_true")
    ap.add_argument("--only-pan", action="store_true", help="only the two pan rows")
    a = ap.parse_args()
    df = simulate(a.rows)
    print(f"{len(df)} rows, {df['class'].nunique()} classes, {df['school'].nunique()} schools")
    print("missing:", df.isna().mean().round(3).to_dict())
    res: dict[str, float | str] = {}
    warnings.simplefilter("ignore")
    _pan_rows(df, res)
    if not a.only_pan:
        _fcs_and_model_rows(df, res)
    if not (a.no_r or a.only_pan):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "d.csv")
            df.to_csv(path, index=False, na_rep="NA")
            try:
                t1 = float(run_rscript(R_CODE, path, "1").split()[0])
                t2 = float(run_rscript(R_CODE, path, "2").split()[0])
                res["R mice 2l.pan (class only)"] = t2 - t1
            except Exception as e:
                res["R mice 2l.pan (class only)"] = f"not run: {e}"
    print(f"\n{'method':<34} {'s / iteration':>14}")
    for k, v in res.items():
        print(f"{k:<34} {v:>14.4f}" if isinstance(v, float) else f"{k:<34} {v}")
    r = res.get("R mice 2l.pan (class only)")
    if isinstance(r, float):
        mine = res["fcs 2l.pan (class only)"]
        assert isinstance(mine, float)
        print(f"\nmice 2l.pan / pymitml 2l.pan (class only): {r / mine:.1f}x")
    print("(shared machine: timings indicative)", file=sys.stderr)


if __name__ == "__main__":
    main()
