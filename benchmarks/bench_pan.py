"""pm.pan_impute vs R's mitml::panImpute, per iteration, on the designs of REFERENCE.md §6.

Model ``y + x ~ 1 + z + w + (1|id)``; data from ``pm.datasets.random_intercept`` (MAR missingness
in y and x). The per-iteration cost is the slope between two run lengths, so fixed set-up cost
(reported separately) is excluded. Both sides run on the same data (written to CSV for R).
A second table compares mixing on the 4k design: integrated autocorrelation times and effective
samples per second of every fixed effect and random-effect variance.

    python benchmarks/bench_pan.py            # 4k, 40k and 140k rows
    python benchmarks/bench_pan.py --quick    # 4k rows only
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _rscript import run_rscript

import pymitml as pm

DESIGNS = [(200, 20), (2000, 20), (20000, 7)]
FORMULA = "y + x ~ 1 + z + w + (1|id)"

R_CODE = r"""
suppressPackageStartupMessages(library(mitml))
d <- read.csv(commandArgs(TRUE)[1])
n1 <- as.integer(commandArgs(TRUE)[2]); n2 <- as.integer(commandArgs(TRUE)[3])
f <- y + x ~ 1 + z + w + (1|id)
t1 <- system.time(panImpute(d, formula=f, n.burn=n1, n.iter=1, m=1, seed=1, silent=TRUE))[["elapsed"]]
t2 <- system.time(panImpute(d, formula=f, n.burn=n2, n.iter=1, m=1, seed=1, silent=TRUE))[["elapsed"]]
cat(t1, t2, "\n")
"""


def time_py(df, n1, n2, reps=3):
    pm.pan_impute(df, FORMULA, m=1, n_burn=5, n_iter=1, seed=1)  # compile / load cache
    best1 = best2 = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        pm.pan_impute(df, FORMULA, m=1, n_burn=n1, n_iter=1, seed=1, n_threads=1)
        best1 = min(best1, time.perf_counter() - t)
        t = time.perf_counter()
        pm.pan_impute(df, FORMULA, m=1, n_burn=n2, n_iter=1, seed=1, n_threads=1)
        best2 = min(best2, time.perf_counter() - t)
    per = (best2 - best1) / (n2 - n1)
    return per, best1 - n1 * per


def time_r(df, n1, n2):
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        df.to_csv(csv, index=False)
        out = run_rscript(R_CODE, csv, n1, n2).split()
    t1, t2 = float(out[0]), float(out[1])
    per = (t2 - t1) / (n2 - n1)
    return per, t1 - n1 * per


R_MIX = r"""
suppressPackageStartupMessages(library(mitml))
d <- read.csv(commandArgs(TRUE)[1]); n <- as.integer(commandArgs(TRUE)[2])
f <- y + x ~ 1 + z + w + (1|id)
t <- system.time(imp <- panImpute(d, formula=f, n.burn=500, n.iter=n, m=1, seed=1, silent=TRUE))[["elapsed"]]
b <- imp$par.imputation$beta[, , , 1]; p <- imp$par.imputation$psi[, , , 1]
write.csv(cbind(t(matrix(b, ncol=n)), t(matrix(p, ncol=n))), commandArgs(TRUE)[3], row.names=FALSE)
cat(t, "\n")
"""


def _tau(x, k=20):
    """Integrated autocorrelation time by batch means (k batches)."""

    b = len(x) // k
    m = x[: b * k].reshape(k, b).mean(1)
    return max(b * m.var(ddof=1) / x.var(), 1e-3)


def mixing(J=200, n=20, iters=40000):
    """Effective samples per second of beta and psi: pymitml's block (beta, b) draw vs pan."""
    import numpy as np
    import pandas as pd

    df = pm.datasets.random_intercept(J, n, seed=1)
    t = time.perf_counter()
    imp = pm.pan_impute(df, FORMULA, m=1, n_burn=500, n_iter=iters, seed=1, n_threads=1)
    t_py = time.perf_counter() - t
    ours = np.column_stack(
        [
            imp.par_imputation["beta"][..., 0].reshape(-1, iters, order="F").T,
            imp.par_imputation["psi"][..., 0].reshape(-1, iters, order="F").T,
        ]
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv, out = (os.path.join(tmp, f) for f in ("d.csv", "o.csv"))
        df.to_csv(csv, index=False)
        t_r = float(run_rscript(R_MIX, csv, iters, out).split()[0])
        theirs = pd.read_csv(out).to_numpy()
    names = [f"beta[{k},{t}]" for t in range(2) for k in range(3)] + [
        f"psi[{a},{b}]" for b in range(2) for a in range(2)
    ]
    print(
        f"\nMixing on {len(df)} rows, {iters} iterations each (tau = integrated autocorrelation time):"
    )
    print(
        f"{'parameter':>10} {'tau py':>7} {'tau R':>7} {'ESS/s py':>10} {'ESS/s R':>9} {'ratio':>7}"
    )
    for k, name in enumerate(names):
        if name in ("psi[1,0]",):
            continue
        tp, tr = _tau(ours[:, k]), _tau(theirs[:, k])
        ep, er = iters / tp / t_py, iters / tr / t_r
        print(f"{name:>10} {tp:>7.1f} {tr:>7.1f} {ep:>10.0f} {er:>9.0f} {ep / er:>7.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4k rows only")
    args = ap.parse_args(argv)
    designs = DESIGNS[:1] if args.quick else DESIGNS
    print(
        f"{'rows':>8} {'clusters':>8} {'pymitml ms/it':>14} {'R pan ms/it':>12} {'ratio R/py':>10} "
        f"{'py set-up s':>11} {'R set-up s':>10}"
    )
    for J, n in designs:
        df = pm.datasets.random_intercept(J, n, seed=1)
        n1, n2 = (200, 2200) if J <= 2000 else (100, 600)
        py, py_setup = time_py(df, n1, n2)
        r, r_setup = time_r(df, n1, n2)
        print(
            f"{len(df):>8} {J:>8} {py * 1e3:>14.3f} {r * 1e3:>12.3f} {r / py:>10.2f} "
            f"{py_setup:>11.3f} {r_setup:>10.3f}",
            flush=True,
        )
    mixing(iters=10000 if args.quick else 40000)


if __name__ == "__main__":
    sys.exit(main())
