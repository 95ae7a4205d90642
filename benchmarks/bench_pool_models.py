"""Time pooled model tests: pymitml's compare_models / anova / multilevel_r2 against mitml.

m simulated "imputed" data sets (a random-slope design: J clusters of n_j rows; the imputations
differ by noise in the covariate) are analysed with ``y ~ x + z + (1 + x | g)`` (REML), the
nested ``y ~ x + (1 + x | g)`` (D1-D4: is z needed?) and ``y ~ x + z + (1 | g)`` (anova: is the
random slope needed?). The fits are made once on each side (not timed); timed is each
pooling call, including the ML refits and stacked fits that mitml makes internally: testModels
with D1, D2 (likelihood), D3 and D4, anova (D3) and multilevelR2. mitml is timed in one Rscript
process with ``system.time`` after reading the same CSV; both sides report the F statistics so the
table also shows their agreement. Best of ``--repeat``.

Usage: python benchmarks/bench_pool_models.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import warnings

import numpy as np
import pandas as pd
from _rscript import run_rscript

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SIZES = [(100, 10, 5), (400, 20, 20), (1000, 20, 20)]  # clusters, rows per cluster, m

R_CODE = r"""
suppressPackageStartupMessages({library(lme4); library(mitml)})
args <- commandArgs(trailingOnly = TRUE)
long <- read.csv(args[1]); reps <- as.integer(args[2])
implist <- lapply(split(long, long$imp), function(d) { d$imp <- NULL; d })
each <- function(fml) {
  out <- lapply(implist, function(d) do.call(lmer, list(formula = fml, data = d)))
  class(out) <- c("mitml.result", "list"); out }
s <- each(y ~ x + z + (1 + x | g)); s0 <- each(y ~ x + (1 + x | g)); r <- each(y ~ x + z + (1 | g))
best <- function(expr) {
  ts <- numeric(reps)
  for (i in seq_len(reps)) ts[i] <- system.time(val <- suppressWarnings(suppressMessages(eval.parent(substitute(expr)))))[["elapsed"]]
  list(time = min(ts), value = val)
}
F1 <- function(x) x$test[1, 1]
res <- list(
  D1 = best(F1(testModels(s, s0, method = "D1"))),
  D2 = best(F1(testModels(s, s0, method = "D2", use = "likelihood"))),
  D3 = best(F1(testModels(s, s0, method = "D3"))),
  D4 = best(F1(testModels(s, s0, method = "D4"))),
  anova = best(anova(s, r)$test[[1]]$test[1, 1]),
  R2 = best(unname(multilevelR2(s)["SB"])))
cat(jsonlite::toJSON(res, auto_unbox = TRUE, digits = NA))
"""


def simulate(J: int, nj: int, m: int, seed: int = 1) -> list[pd.DataFrame]:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(1, J + 1), nj)
    n = J * nj
    x, z = rng.normal(size=n), rng.normal(size=n)
    u0, u1 = rng.normal(0, 0.7, J)[g - 1], rng.normal(0, 0.4, J)[g - 1]
    y = 1 + 0.4 * x + 0.2 * z + u0 + u1 * x + rng.normal(size=n)
    return [
        pd.DataFrame({"g": g, "y": y, "x": x + rng.normal(0, 0.3, n), "z": z}) for _ in range(m)
    ]


def time_pymitml(data: list[pd.DataFrame], reps: int) -> dict:
    import pymitml.pool.model_tests as pt
    import pymitml.pool.r2 as pr
    from pymitml.lmm import lmer
    from pymitml.pool import anova as pooled_anova

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        s = [lmer("y ~ x + z + (1 + x | g)", d) for d in data]
        s0 = [lmer("y ~ x + (1 + x | g)", d) for d in data]
        r = [lmer("y ~ x + z + (1 | g)", d) for d in data]
    calls = {
        "D1": lambda: pt.compare_models(s, s0, method="D1").f_value,
        "D2": lambda: pt.compare_models(s, s0, method="D2", use="likelihood").f_value,
        "D3": lambda: pt.compare_models(s, s0, method="D3").f_value,
        "D4": lambda: pt.compare_models(s, s0, method="D4").f_value,
        "anova": lambda: float(pooled_anova(s, r).table["F.value"].iloc[0]),
        "R2": lambda: float(pr.multilevel_r2(s)["SB"]),
    }
    out = {}
    for key, call in calls.items():
        best, val = np.inf, None
        for _ in range(reps):
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                val = call()
            best = min(best, time.perf_counter() - t0)
        out[key] = {"time": best, "value": val}
    return out


def time_r(path: str, reps: int) -> dict:
    return json.loads(run_rscript(R_CODE, path, reps))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smallest size only (< 1 min)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)
    sizes = SIZES[:1] if args.quick else SIZES
    time_pymitml(simulate(20, 5, 2, seed=9), 1)  # warm up numba kernels
    head = (
        f"{'clusters':>8} {'n_j':>4} {'m':>3} {'test':>6} {'pymitml s':>10} {'mitml s':>8} "
        f"{'ratio':>7} {'rel. diff':>10}"
    )
    print(head)
    print("-" * len(head))
    for J, nj, m in sizes:
        data = simulate(J, nj, m)
        long = pd.concat([d.assign(imp=i + 1) for i, d in enumerate(data)], ignore_index=True)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
            long.to_csv(fh, index=False, float_format="%.17g")
            path = fh.name
        try:
            rres = time_r(path, args.repeat)
        finally:
            os.unlink(path)
        pres = time_pymitml(data, args.repeat)
        for key, p in pres.items():
            r = rres[key]
            rel = abs(p["value"] - r["value"]) / abs(r["value"])
            print(
                f"{J:>8} {nj:>4} {m:>3} {key:>6} {p['time']:>10.4f} {r['time']:>8.3f} "
                f"{r['time'] / max(p['time'], 1e-9):>7.1f} {rel:>10.1e}"
            )
    print()
    print(
        "ratio = mitml time / pymitml time (> 1: pymitml faster); rel. diff of the F value "
        "(SB for R2)\nbetween the two (lme4's default optimiser tolerance limits D3 and R2 "
        "agreement to ~1e-5)."
    )


if __name__ == "__main__":
    main()
