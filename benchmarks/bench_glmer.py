"""Time pymitml's native glmer against lme4::glmer on the same data.

Models: lme4's ``cbpp`` (``cbind(incidence, size - incidence) ~ period + (1 | herd)``, Laplace
and nAGQ = 25), lme4's ``grouseticks`` (Poisson, three grouping factors: BROOD, INDEX,
LOCATION) and simulated data of 20,000 rows in 1,000 clusters of 20: a 0/1 response
``y ~ x + w + (1 | id)`` (logit) and Poisson counts ``k ~ x + w + (1 | id)``, with cluster
effects of SD 0.7, x a level-1 and w a level-2 covariate.

pymitml is timed as the whole ``pm.glmer`` call after a warm-up fit (numba kernels compiled or
loaded once per process; the first call is reported separately). lme4 is timed in one Rscript
process with ``system.time(glmer(...))`` (default control) after reading the same CSV. Best of
``--repeat``. The "objective diff" column is pymitml's optimised deviance minus lme4's (<= 0:
pymitml's optimum is at least as good).

Usage: python benchmarks/bench_glmer.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from _rscript import run_rscript

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

R_CODE = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
cases <- jsonlite::fromJSON(args[1], simplifyVector = FALSE); reps <- as.integer(args[2])
out <- list()
for (cs in cases) {
  d <- read.csv(cs$path)
  if (!is.null(d$period)) d$period <- factor(d$period)
  for (v in intersect(c("INDEX", "BROOD", "LOCATION", "YEAR"), names(d))) d[[v]] <- factor(d[[v]])
  ts <- numeric(reps); w <- ""
  for (r in seq_len(reps)) {
    ts[r] <- system.time(fit <- withCallingHandlers(
      glmer(as.formula(cs$formula), d, family = cs$family, nAGQ = cs$nAGQ),
      warning = function(cnd) { w <<- conditionMessage(cnd); invokeRestart("muffleWarning") },
      message = function(cnd) { w <<- trimws(conditionMessage(cnd)); invokeRestart("muffleMessage") }
    ))[["elapsed"]]
  }
  out[[cs$name]] <- list(time = min(ts), objective = fit@optinfo$val, note = w,
                         fval = unname(fit@devcomp$cmp[["dev"]]),
                         drsum = unname(fit@devcomp$cmp[["drsum"]]),
                         ussq = unname(fit@devcomp$cmp[["ussq"]]),
                         ldL2 = unname(fit@devcomp$cmp[["ldL2"]]))
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""

CBPP = "cbind(incidence, size - incidence) ~ period + (1 | herd)"


def simulate(n: int, J: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    id_ = np.repeat(np.arange(1, J + 1), n // J)
    x = rng.normal(size=n)
    w = rng.normal(size=J)[id_ - 1]
    u = rng.normal(scale=0.7, size=J)[id_ - 1]
    eta = -0.3 + 0.5 * x + 0.3 * w + u
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    k = rng.poisson(np.exp(0.2 + 0.3 * x - 0.2 * w + u))
    return pd.DataFrame({"id": id_, "x": x, "w": w, "y": y, "k": k})


def cbpp_frame() -> pd.DataFrame:
    here = os.path.dirname(os.path.abspath(__file__))
    df = pd.read_csv(os.path.join(here, "..", "r_compat", "glmer_cbpp.csv"))
    df["period"] = df["period"].astype(str)
    return df


def grouseticks_frame() -> pd.DataFrame:
    here = os.path.dirname(os.path.abspath(__file__))
    df = pd.read_csv(os.path.join(here, "..", "r_compat", "glmer_grouseticks.csv"))
    df["YEAR"] = df["YEAR"].astype(str)
    return df


GROUSE = "TICKS ~ YEAR + HEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"


def time_pymitml(df, formula, family, nAGQ, reps):
    import pymitml as pm

    best, fit = np.inf, None
    for _ in range(reps):
        t0 = time.perf_counter()
        fit = pm.glmer(formula, df, family, nAGQ=nAGQ)
        best = min(best, time.perf_counter() - t0)
    return best, fit


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="cbpp and a 4,000-row model only")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)
    import pymitml as pm

    t0 = time.perf_counter()
    pm.glmer(CBPP, cbpp_frame())  # compile or load the kernels
    print(
        f"pymitml first call (numba compile or cache load + imports): "
        f"{time.perf_counter() - t0:.2f} s\n"
    )
    n, J = (4_000, 200) if args.quick else (20_000, 1_000)
    sim = simulate(n, J)
    frames = {"cbpp": cbpp_frame(), "sim": sim, "grouse": grouseticks_frame()}
    cases = [
        ("cbpp Laplace", "cbpp", CBPP, "binomial", 1),
        ("cbpp nAGQ=25", "cbpp", CBPP, "binomial", 25),
        (f"binary {n // 1000}k", "sim", "y ~ x + w + (1 | id)", "binomial", 1),
        (f"Poisson {n // 1000}k", "sim", "k ~ x + w + (1 | id)", "poisson", 1),
        ("grouseticks", "grouse", GROUSE, "poisson", 1),
    ]
    tmp = tempfile.mkdtemp()
    paths = {}
    for key, df in frames.items():
        paths[key] = os.path.join(tmp, f"{key}.csv")
        df.to_csv(paths[key], index=False)
    spec = [
        {"name": c[0], "path": paths[c[1]], "formula": c[2], "family": c[3], "nAGQ": c[4]}
        for c in cases
    ]
    spec_path = os.path.join(tmp, "cases.json")
    with open(spec_path, "w") as fh:
        json.dump(spec, fh)
    rres = json.loads(run_rscript(R_CODE, spec_path, args.repeat))
    head = (
        f"{'model':>14} {'rows':>7} {'pymitml s':>10} {'lme4 s':>8} {'ratio':>6} {'evals':>5} "
        f"{'objective diff':>15}  notes"
    )
    print(head)
    print("-" * len(head))
    for name, key, formula, family, nagq in cases:
        t_py, fit = time_pymitml(frames[key], formula, family, nagq, args.repeat)
        r = rres[name]
        r_obj = r["fval"] if nagq > 1 else r["drsum"] + r["ussq"] + r["ldL2"]
        note = ("lme4: " + r["note"].splitlines()[0][:60]) if r["note"] else ""
        print(
            f"{name:>14} {fit.nobs:>7} {t_py:>10.3f} {r['time']:>8.3f} "
            f"{r['time'] / t_py:>6.1f} {fit.n_evaluations:>5} {fit.objective - r_obj:>15.2e}  "
            f"{note}"
        )
    print()
    print("ratio = lme4 time / pymitml time (> 1: pymitml faster)")


if __name__ == "__main__":
    main()
