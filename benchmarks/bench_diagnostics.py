"""Time pymitml's convergence summary against mitml's summary on the same chains.

Chains: P parameters (a stacked ``sigma`` block of P/3 clusters x 3 targets, as jomoImpute's
random.L1 = "full" stores them, lower triangles only) of T imputation-phase iterations, AR(1)
draws with phi = 0.5. mitml is timed with ``system.time(summary(obj, autocorrelation=TRUE,
goodness.of.appr=TRUE))`` on a minimal object of class ``mitml`` built around the same array
(read from a binary file in one Rscript process); pymitml with
``pymitml.diagnostics.summarize(..., autocorrelation=True, goodness_of_appr=True)``.
Best of ``--repeat``. The largest difference between the two sets of statistics is printed too.

Usage: python benchmarks/bench_diagnostics.py [--quick] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from pymitml.diagnostics import summarize

SIZES = [(30, 1_000), (150, 5_000), (450, 10_000)]  # (rows of sigma, iterations)

R_CODE = r"""
suppressPackageStartupMessages(library(mitml))
args <- commandArgs(trailingOnly = TRUE)
rows <- as.integer(args[2]); iter <- as.integer(args[3]); reps <- as.integer(args[4])
x <- readBin(args[1], "double", n = rows * 3 * iter)
sig <- array(x, c(rows, 3, iter, 1))
obj <- list(data = data.frame(a = 1), par.imputation = list(beta = array(0, c(1, 3, iter, 1)),
            sigma = sig), iter = list(burn = 0, iter = 10, m = iter / 10),
            model = structure(list(), is.ML = FALSE, is.L2 = FALSE), keep.chains = "full")
attr(obj$data, "group") <- rep(1, nrow(obj$data))
class(obj) <- "mitml"
ts <- numeric(reps)
for (r in seq_len(reps)) ts[r] <- system.time(s <- summary(obj, autocorrelation = TRUE,
                                                           goodness.of.appr = TRUE))[["elapsed"]]
cat(jsonlite::toJSON(list(time = min(ts), conv = s$conv$sigma[, 4:8]), digits = NA, auto_unbox = TRUE))
"""


def _chains(rows: int, iters: int, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    e = rng.normal(size=(rows, 3, iters))
    x = np.empty_like(e)
    x[..., 0] = e[..., 0]
    for t in range(1, iters):
        x[..., t] = 0.5 * x[..., t - 1] + e[..., t]
    return x[..., None]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only (< 1 min)")
    ap.add_argument("--repeat", type=int, default=3)
    a = ap.parse_args()
    sizes = SIZES[:1] if a.quick else SIZES
    print(
        f"{'params':>7} {'iters':>6} {'pymitml s':>10} {'mitml s':>9} {'ratio':>7} {'max rel diff':>13}"
    )
    with tempfile.TemporaryDirectory() as tmp:
        rfile = os.path.join(tmp, "bench.R")
        with open(rfile, "w") as fh:
            fh.write(R_CODE)
        for rows, iters in sizes:
            sig = _chains(rows, iters)
            binf = os.path.join(tmp, "x.bin")
            sig.ravel(order="F").astype("<f8").tofile(binf)
            par = {"beta": np.zeros((1, 3, iters, 1)), "sigma": sig}
            summarize(par, 10, goodness_of_appr=True, autocorrelation=True)  # warm-up
            best = np.inf
            for _ in range(a.repeat):
                t0 = time.perf_counter()
                s = summarize(par, 10, goodness_of_appr=True, autocorrelation=True)
                best = min(best, time.perf_counter() - t0)
            r = subprocess.run(
                ["Rscript", rfile, binf, str(rows), str(iters), str(a.repeat)],
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(r.stdout)
            want = np.array(res["conv"], dtype=float)
            mine = s.table[s.table.block == "sigma"][["Rhat", "SDprop", "lag-1", "lag-k", "lag-2k"]]
            diff = np.max(np.abs(mine.to_numpy() - want) / np.maximum(np.abs(want), 1e-12))
            n_par = len(mine)
            print(
                f"{n_par:>7} {iters:>6} {best:>10.3f} {res['time']:>9.3f} "
                f"{res['time'] / best:>6.1f}x {diff:>13.1e}"
            )


if __name__ == "__main__":
    main()
