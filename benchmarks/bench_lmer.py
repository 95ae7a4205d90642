"""Time pymitml's native lmer against lme4::lmer on the same data (ML fits).

Design of REFERENCE.md section 6: J clusters of n/J rows, a level-1 covariate z, a level-2
covariate w, cluster effects with SD 0.7 (intercept) and 0.3 (slope of z), unit residual SD.
Models: ``y ~ 1 + z + w + (1 | id)`` (random intercept, RI) and ``y ~ 1 + z + w + (1 + z | id)``
(random slope, RS), both by maximum likelihood.

pymitml is timed as the whole ``pm.lmer`` call (formula, design matrices, fit, results) after a
warm-up fit (numba kernels are compiled or loaded from the cache once per process; the time of
the first call is reported separately). lme4 is timed in one Rscript process with
``system.time(lmer(...))`` around the same call after reading the same CSV. Best of ``--repeat``.

Usage: python benchmarks/bench_lmer.py [--quick] [--repeat 3]
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

SIZES = [(4_000, 200), (40_000, 2_000), (140_000, 20_000)]
MODELS = {"RI": "y ~ 1 + z + w + (1 | id)", "RS": "y ~ 1 + z + w + (1 + z | id)"}

R_CODE = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); reps <- as.integer(args[2]); forms <- strsplit(args[3], ";")[[1]]
out <- list()
for (f in forms) {
  ts <- numeric(reps); ll <- NA; w <- ""
  for (r in seq_len(reps)) {
    ts[r] <- system.time(fit <- withCallingHandlers(lmer(as.formula(f), d, REML = FALSE),
      warning = function(cnd) { w <<- conditionMessage(cnd); invokeRestart("muffleWarning") },
      message = function(cnd) { w <<- trimws(conditionMessage(cnd)); invokeRestart("muffleMessage") }
    ))[["elapsed"]]
    ll <- as.numeric(logLik(fit))
  }
  out[[f]] <- list(time = min(ts), loglik = ll, note = w)
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def simulate(n: int, J: int, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    id_ = np.repeat(np.arange(1, J + 1), n // J)
    z = rng.normal(size=n)
    w = rng.normal(size=J)[id_ - 1]
    u0 = rng.normal(scale=0.7, size=J)[id_ - 1]
    u1 = rng.normal(scale=0.3, size=J)[id_ - 1]
    y = 1.0 + 0.5 * z + 0.3 * w + u0 + u1 * z + rng.normal(size=n)
    return pd.DataFrame({"id": id_, "z": z, "w": w, "y": y})


def time_pymitml(df: pd.DataFrame, formula: str, reps: int):
    from pymitml import lmm

    best, fit = np.inf, None
    for _ in range(reps):
        t0 = time.perf_counter()
        fit = lmm.lmer(formula, df, REML=False)
        best = min(best, time.perf_counter() - t0)
    return best, fit


def time_r(path: str, reps: int) -> dict:
    return json.loads(run_rscript(R_CODE, path, reps, ";".join(MODELS.values())))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smallest size only (< 1 min)")
    ap.add_argument("--repeat", type=int, default=3, help="best of this many runs (default 3)")
    args = ap.parse_args(argv)
    sizes = SIZES[:1] if args.quick else SIZES

    from pymitml import lmm

    t0 = time.perf_counter()
    lmm.lmer(MODELS["RS"], simulate(400, 40, seed=99), REML=False)  # compile or load kernels
    first = time.perf_counter() - t0
    print(f"pymitml first call (numba compile or cache load + imports): {first:.2f} s")
    print()
    head = (
        f"{'rows':>8} {'clusters':>8} {'model':>5} {'pymitml s':>10} {'lme4 s':>8} "
        f"{'ratio':>6} {'evals':>5} {'logLik diff':>12}  notes"
    )
    print(head)
    print("-" * len(head))
    for n, J in sizes:
        df = simulate(n, J)
        with tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False) as fh:
            df.to_csv(fh, index=False)
            path = fh.name
        try:
            rres = time_r(path, args.repeat)
        finally:
            os.unlink(path)
        for key, form in MODELS.items():
            t_py, fit = time_pymitml(df, form, args.repeat)
            r = rres[form]
            notes = []
            if fit.singular:
                notes.append("pymitml singular")
            if r["note"]:
                notes.append("lme4: " + r["note"].splitlines()[0][:60])
            print(
                f"{n:>8} {J:>8} {key:>5} {t_py:>10.3f} {r['time']:>8.3f} "
                f"{r['time'] / t_py:>6.1f} {fit.n_evaluations:>5} "
                f"{fit.loglik - r['loglik']:>12.2e}  {'; '.join(notes)}"
            )
    print()
    print("ratio = lme4 time / pymitml time (> 1: pymitml faster); logLik diff = pymitml - lme4")


if __name__ == "__main__":
    main()
