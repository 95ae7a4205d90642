"""Time pymitml's lmer against lme4::lmer on models with several grouping factors.

Cases: lme4's InstEval (73,421 rows; students s 2972 crossed with lecturers d 1128, and dept
14; ``y ~ 1 + service + (1|s) + (1|d) + (1|dept)``, ML), Penicillin (crossed, REML), Pastes
(nested, REML) and a simulated nested design (pupils in 2,000 classes in 200 schools, 40k
rows, random slope at the class level, ML). Both sides read the same data (R's own data sets
exported by R to CSV); lme4 runs with its default control, timed by ``system.time`` in one
Rscript process; pymitml is the whole ``pm.lmer`` call after a warm-up fit. Best of
``--repeat``. The log-likelihood difference (pymitml - lme4) shows the optimum is as good.

Usage: python benchmarks/bench_lmer_multi.py [--quick] [--repeat 2]
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

CASES = {
    "InstEval": ("y ~ 1 + service + (1 | s) + (1 | d) + (1 | dept)", "InstEval", False),
    "Penicillin": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", True),
    "Pastes": ("strength ~ 1 + (1 | batch/cask)", "Pastes", True),
    "nested 40k": ("y ~ x + w + (1 + x | school:class) + (1 | school)", "nested", False),
}

R_CODE = r"""
suppressPackageStartupMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; reps <- as.integer(args[2]); which <- strsplit(args[3], ";")[[1]]
forms <- strsplit(args[4], ";")[[1]]; remls <- as.logical(strsplit(args[5], ";")[[1]])
for (nm in c("InstEval", "Penicillin", "Pastes")) write.csv(get(nm), file.path(dir, paste0(nm, ".csv")), row.names = FALSE)
out <- list()
for (k in seq_along(which)) {
  d <- read.csv(file.path(dir, paste0(which[k], ".csv")), stringsAsFactors = TRUE)
  for (v in intersect(c("s", "d", "dept", "school", "class"), names(d))) d[[v]] <- factor(d[[v]])
  ts <- numeric(reps)
  for (r in seq_len(reps)) ts[r] <- system.time(fit <- suppressMessages(lmer(as.formula(forms[k]), d, REML = remls[k])))[["elapsed"]]
  out[[forms[k]]] <- list(time = min(ts), loglik = as.numeric(logLik(fit)))
}
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def nested(seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n, n_class, n_school = 40_000, 2_000, 200
    cls = rng.integers(0, n_class, n)
    school = cls // (n_class // n_school)
    x = rng.normal(size=n)
    w = rng.normal(size=n_school)[school]
    y = (
        1
        + 0.5 * x
        + 0.3 * w
        + rng.normal(scale=0.6, size=n_school)[school]
        + rng.normal(scale=0.5, size=n_class)[cls]
        + rng.normal(scale=0.2, size=n_class)[cls] * x
        + rng.normal(size=n)
    )
    return pd.DataFrame({"y": y, "x": x, "w": w, "school": school, "class": cls % 10})


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="Penicillin and Pastes only")
    ap.add_argument("--repeat", type=int, default=2, help="best of this many runs (default 2)")
    args = ap.parse_args(argv)
    names = ["Penicillin", "Pastes"] if args.quick else list(CASES)
    from pymitml import lmm

    with tempfile.TemporaryDirectory() as tmp:
        nested().to_csv(os.path.join(tmp, "nested.csv"), index=False)
        forms = [CASES[k][0] for k in names]
        rres = json.loads(
            run_rscript(
                R_CODE,
                tmp,
                args.repeat,
                ";".join(CASES[k][1] for k in names),
                ";".join(forms),
                ";".join("TRUE" if CASES[k][2] else "FALSE" for k in names),
            )
        )
        data = {
            k: pd.read_csv(os.path.join(tmp, f"{CASES[k][1]}.csv"), dtype={"s": str, "d": str})
            for k in names
        }
        warm = pd.read_csv(os.path.join(tmp, "Pastes.csv"))
    t0 = time.perf_counter()
    lmm.lmer(CASES["Pastes"][0], warm, REML=True)  # compile or load the kernels
    print(f"pymitml first call (numba compile or cache load): {time.perf_counter() - t0:.2f} s\n")
    head = f"{'case':>12} {'pymitml s':>10} {'lme4 s':>8} {'ratio':>6} {'evals':>5} {'logLik diff':>12}"
    print(head)
    print("-" * len(head))
    for k in names:
        form, _, reml = CASES[k]
        best, fit = np.inf, None
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            fit = lmm.lmer(form, data[k], REML=reml)
            best = min(best, time.perf_counter() - t0)
        r = rres[form]
        print(
            f"{k:>12} {best:>10.3f} {r['time']:>8.3f} {r['time'] / best:>6.1f} "
            f"{fit.n_evaluations:>5} {fit.loglik - r['loglik']:>12.2e}"
        )
    print("\nratio = lme4 time / pymitml time (> 1: pymitml faster); logLik diff = pymitml - lme4")


if __name__ == "__main__":
    main()
