"""Time Satterthwaite and Kenward-Roger df (``fit.coef_table(ddf=...)``) beside lmerTest/pbkrtest.

The same REML fits on both sides: sleepstudy ``Reaction ~ Days + (Days | Subject)`` and
simulated two-level data (J clusters of n/J rows) with ``y ~ 1 + z + w + (1 + z | id)``.
pymitml is timed as ``coef_table(ddf=...)`` on a fitted model with its df cache cleared (the
Hessian, Jacobians or adjusted covariance are computed anew each time); R as
``summary(as_lmerModLmerTest(fit), ddf = "Satterthwaite")`` (lmerTest's Hessian and Jacobian
plus the table) and ``summary(fit, ddf = "Kenward-Roger")`` (pbkrtest's vcovAdj and Lb_ddf) on
an lme4 fit, in one Rscript process. Best of ``--repeat``; the largest df difference is printed.

Usage: python benchmarks/bench_ddf.py [--quick] [--repeat 3]
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
from bench_lmer import simulate  # the same two-level design

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)

SIZES = [(600, 60), (2_000, 100), (5_000, 250)]
SIM_FORMULA = "y ~ 1 + z + w + (1 + z | id)"
SLEEP_FORMULA = "Reaction ~ Days + (Days | Subject)"

R_CODE = r"""
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(pbkrtest)})
args <- commandArgs(trailingOnly = TRUE)
reps <- as.integer(args[1]); out <- list()
for (k in seq(2, length(args), by = 2)) {
  d <- read.csv(args[k]); f <- args[k + 1]
  fit <- lme4::lmer(as.formula(f), d, REML = TRUE)
  res <- list()
  for (ddf in c("Satterthwaite", "Kenward-Roger")) {
    ts <- numeric(reps)
    for (r in seq_len(reps)) ts[r] <- system.time({
      m <- if (ddf == "Satterthwaite") as_lmerModLmerTest(fit) else as_lmerModLmerTest(fit)
      tab <- if (ddf == "Satterthwaite") summary(m, ddf = ddf)$coefficients else
        suppressWarnings(summary(m, ddf = ddf)$coefficients)
    })[["elapsed"]]
    if (ddf == "Kenward-Roger") {  # KR alone (without lmerTest's Satterthwaite set-up)
      for (r in seq_len(reps)) ts[r] <- system.time({
        V <- vcovAdj(fit); dd <- sapply(seq_len(ncol(V)), function(i) Lb_ddf(diag(ncol(V))[i, ], vcov(fit), V))
      })[["elapsed"]]
    }
    res[[ddf]] <- list(time = min(ts), df = unname(tab[, "df"]))
  }
  out[[args[k]]] <- res
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def time_pymitml(fit, ddf: str, reps: int) -> tuple[float, np.ndarray]:
    from pymitml.lmm import ddf as ddf_mod

    best, tab = np.inf, None
    for _ in range(reps):
        ddf_mod._CACHE.clear()
        t0 = time.perf_counter()
        tab = fit.coef_table(ddf=ddf)
        best = min(best, time.perf_counter() - t0)
    return best, tab["df"].to_numpy()


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="sleepstudy and the smallest size only")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)
    import warnings

    from pymitml import lmm

    cases = [
        (
            "sleepstudy",
            pd.read_csv(os.path.join(ROOT, "r_compat", "ddf_sleepstudy.csv")),
            SLEEP_FORMULA,
        )
    ]
    for n, J in SIZES[:1] if args.quick else SIZES:
        cases.append((f"sim n={n} J={J}", simulate(n, J), SIM_FORMULA))
    paths, rargs = [], []
    for _, df, form in cases:
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
            df.to_csv(fh, index=False)
            paths.append(fh.name)
        rargs += [fh.name, form]
    try:
        rres = json.loads(run_rscript(R_CODE, args.repeat, *rargs))
    finally:
        for p in paths:
            os.unlink(p)
    head = f"{'model':<22} {'ddf':<14} {'pymitml s':>10} {'R s':>8} {'ratio':>6} {'max rel df diff':>16}"
    print(head)
    print("-" * len(head))
    for (label, df, form), path in zip(cases, paths):
        fit = lmm.lmer(form, df, REML=True)
        for ddf in ("Satterthwaite", "Kenward-Roger"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_py, d_py = time_pymitml(fit, ddf, args.repeat)
            r = rres[path][ddf]
            diff = np.max(np.abs(d_py / np.asarray(r["df"]) - 1.0))
            print(
                f"{label:<22} {ddf:<14} {t_py:>10.4f} {r['time']:>8.3f} "
                f"{r['time'] / t_py:>6.1f} {diff:>16.1e}"
            )
    print()
    print("ratio = R time / pymitml time (> 1: pymitml faster). R's KR row times vcovAdj + Lb_ddf;")
    print("df differences include lme4's default optimiser stop (theta to ~1e-6).")


if __name__ == "__main__":
    main()
