"""pm.jomo_impute vs R's mitml::jomoImpute, per iteration, on the designs of REFERENCE.md §6.

Models on ``pm.datasets.random_intercept`` data (MAR missingness in y and x):

* ``continuous``: ``y + x ~ 1 + z + w + (1|id)``;
* ``binary``: ``y + xb ~ 1 + z + w + (1|id)`` with ``xb`` = a two-level factor (x > 0);
* ``level-2``: ``[y + x ~ 1 + z + (1|id), v ~ 1 + w]`` with ``v`` a level-2 variable missing in
  15% of the clusters;
* ``cat-L2``: ``[y + x ~ 1 + z + (1|id), vb ~ 1 + w]`` with ``vb`` = a two-level factor (v > 0.3);
* ``random-L1``: the continuous model with cluster-specific covariance matrices (random_L1="mean");
* ``binary-L1``: the binary model with cluster-specific covariance matrices (random_L1="mean").

The per-iteration cost is the slope between two run lengths (fixed set-up cost excluded and
reported separately). R's jomoImpute is not run at 140k rows (several seconds per iteration);
there pymitml alone is timed, with the projected time of mitml's defaults (5,000 + 10 x 100).

Then, for the binary model on 4k rows, effective samples per second of every free element of
beta, psi and sigma from one long chain of each (pymitml draws (beta, u) as a block and the free
elements of sigma exactly; jomo uses u | beta, beta | u and Metropolis-Hastings steps).

    python benchmarks/bench_jomo.py            # 4k, 40k (R and pymitml) and 140k (pymitml), mixing
    python benchmarks/bench_jomo.py --quick    # 4k rows only, shorter mixing run
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from _rscript import run_rscript

import pymitml as pm
from pymitml.samplers.jomo import jomo_impute

DESIGNS = [(200, 20), (2000, 20), (20000, 7)]
MODELS = {  # name: (pymitml formula, R formula, random_L1)
    "continuous": ("y + x ~ 1 + z + w + (1|id)", "y + x ~ 1 + z + w + (1|id)", "none"),
    "binary": ("y + xb ~ 1 + z + w + (1|id)", "y + xb ~ 1 + z + w + (1|id)", "none"),
    "level-2": (
        ["y + x ~ 1 + z + (1|id)", "v ~ 1 + w"],
        "list(y + x ~ 1 + z + (1|id), v ~ 1 + w)",
        "none",
    ),
    "cat-L2": (
        ["y + x ~ 1 + z + (1|id)", "vb ~ 1 + w"],
        "list(y + x ~ 1 + z + (1|id), vb ~ 1 + w)",
        "none",
    ),
    "random-L1": ("y + x ~ 1 + z + w + (1|id)", "y + x ~ 1 + z + w + (1|id)", "mean"),
    "binary-L1": ("y + xb ~ 1 + z + w + (1|id)", "y + xb ~ 1 + z + w + (1|id)", "mean"),
}

R_CODE = r"""
suppressPackageStartupMessages(library(mitml))
a <- commandArgs(TRUE)
d <- read.csv(a[1]); d$xb <- factor(d$xb, levels = c("low", "high")); d$vb <- factor(d$vb, levels = c("low", "high"))
n1 <- as.integer(a[2]); n2 <- as.integer(a[3]); f <- eval(parse(text = a[4])); hr <- a[5]
t1 <- system.time(jomoImpute(d, formula=f, random.L1=hr, n.burn=n1, n.iter=1, m=1, seed=1, silent=TRUE))[["elapsed"]]
t2 <- system.time(jomoImpute(d, formula=f, random.L1=hr, n.burn=n2, n.iter=1, m=1, seed=1, silent=TRUE))[["elapsed"]]
cat(t1, t2, "\n")
"""


def make_data(J, n):
    df = pm.datasets.random_intercept(J, n, seed=1)
    df["xb"] = pd.Categorical(
        np.where(df["x"].isna(), None, np.where(df["x"] > 0, "high", "low")),
        categories=["low", "high"],
    )
    rng = np.random.default_rng(2)
    v = 0.5 * rng.normal(size=J) + 0.3
    v[rng.random(J) < 0.15] = np.nan
    df["v"] = v[df["id"].to_numpy() - 1] + 0.4 * df["w"]
    df["vb"] = pd.Categorical(
        np.where(df["v"].isna(), None, np.where(df["v"] > 0.3, "high", "low")),
        categories=["low", "high"],
    )
    return df


def time_py(df, formula, n1, n2, reps=2, random_L1="none"):
    jomo_impute(
        df, formula, random_L1=random_L1, m=1, n_burn=5, n_iter=1, seed=1
    )  # compile / load cache
    best1 = best2 = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        jomo_impute(df, formula, random_L1=random_L1, m=1, n_burn=n1, n_iter=1, seed=1, n_threads=1)
        best1 = min(best1, time.perf_counter() - t)
        t = time.perf_counter()
        jomo_impute(df, formula, random_L1=random_L1, m=1, n_burn=n2, n_iter=1, seed=1, n_threads=1)
        best2 = min(best2, time.perf_counter() - t)
    per = (best2 - best1) / (n2 - n1)
    return per, best1 - n1 * per


def time_r(df, formula, n1, n2, random_L1="none"):
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        script = os.path.join(tmp, "b.R")
        df.to_csv(csv, index=False)
        with open(script, "w") as fh:
            fh.write(R_CODE)
        out = subprocess.run(
            ["Rscript", script, csv, str(n1), str(n2), formula, random_L1],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
    t1, t2 = float(out[0]), float(out[1])
    per = (t2 - t1) / (n2 - n1)
    return per, t1 - n1 * per


R_MIX = r"""
suppressPackageStartupMessages(library(mitml))
a <- commandArgs(TRUE)
d <- read.csv(a[1]); d$xb <- factor(d$xb, levels = c("low", "high")); n <- as.integer(a[2])
t <- system.time(imp <- jomoImpute(d, formula = y + xb ~ 1 + z + w + (1|id), n.burn = 500, n.iter = n,
                                   m = 1, seed = 1, silent = TRUE))[["elapsed"]]
pi <- imp$par.imputation
flat <- function(x) t(matrix(x[, , , 1], ncol = n))
write.csv(cbind(flat(pi$beta), flat(pi$psi), flat(pi$sigma)), a[3], row.names = FALSE)
cat(t, "\n")
"""


def mixing(iters=20000):
    """tau and effective samples per second, binary model on 4k rows, pymitml vs jomoImpute."""
    from bench_pan import _tau

    df = make_data(200, 20)
    f = MODELS["binary"][0]
    jomo_impute(df, f, m=1, n_burn=5, n_iter=1, seed=1)  # compile / load cache
    t = time.perf_counter()
    imp = jomo_impute(df, f, m=1, n_burn=500, n_iter=iters, seed=1, n_threads=1)
    t_py = time.perf_counter() - t
    pi = imp.par_imputation
    ours = np.column_stack(
        [pi[b][..., 0].reshape(-1, iters, order="F").T for b in ("beta", "psi", "sigma")]
    )
    with tempfile.TemporaryDirectory() as tmp:
        csv, out = os.path.join(tmp, "d.csv"), os.path.join(tmp, "o.csv")
        df.to_csv(csv, index=False)
        t_r = float(run_rscript(R_MIX, csv, iters, out).split()[0])
        theirs = pd.read_csv(out).to_numpy()
    names = (
        [f"beta[{k},{t}]" for t in range(2) for k in range(3)]
        + [f"psi[{a},{b}]" for b in range(2) for a in range(2)]
        + [f"sigma[{a},{b}]" for b in range(2) for a in range(2)]
    )
    print(
        f"\nMixing, binary model on {len(df)} rows, {iters} iterations each "
        f"(tau = integrated autocorrelation time; seconds: pymitml {t_py:.1f}, R {t_r:.1f}):"
    )
    print(
        f"{'parameter':>11} {'tau py':>7} {'tau R':>7} {'ESS/s py':>10} {'ESS/s R':>9} {'ratio':>7}"
    )
    for k, name in enumerate(names):
        if name in ("psi[1,0]", "sigma[1,0]", "sigma[1,1]"):  # symmetric or fixed (latent variance)
            continue
        tp, tr = _tau(ours[:, k]), _tau(theirs[:, k])
        ep, er = iters / tp / t_py, iters / tr / t_r
        print(f"{name:>11} {tp:>7.1f} {tr:>7.1f} {ep:>10.0f} {er:>9.0f} {ep / er:>7.1f}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4k rows only")
    ap.add_argument("--models", nargs="*", choices=list(MODELS), help="only these models")
    args = ap.parse_args(argv)
    designs = DESIGNS[:1] if args.quick else DESIGNS
    print(
        f"{'model':>10} {'rows':>7} {'clusters':>8} {'pymitml ms/it':>13} {'R jomo ms/it':>12} "
        f"{'ratio R/py':>10} {'py set-up s':>11} {'R set-up s':>10} {'py defaults s':>13}"
    )
    for J, n in designs:
        df = make_data(J, n)
        for name, (f_py, f_r, hr) in MODELS.items():
            if args.models and name not in args.models:
                continue
            n1, n2 = {200: (200, 2200), 2000: (100, 1100), 20000: (50, 300)}[J]
            py, py_setup = time_py(df, f_py, n1, n2, random_L1=hr)
            if J <= 2000:
                rn1, rn2 = (200, 1000) if J == 200 else (10, 40)
                if hr != "none":  # jomo's random.L1 sampler is several times slower per iteration
                    rn1, rn2 = (rn1 // 4, rn2 // 4)
                r, r_setup = time_r(df, f_r, rn1, rn2, random_L1=hr)
                rs, ratio, rsu = f"{r * 1e3:12.3f}", f"{r / py:10.1f}", f"{r_setup:10.2f}"
            else:
                rs, ratio, rsu = f"{'-':>12}", f"{'-':>10}", f"{'-':>10}"
            defaults = py_setup + 6000 * py
            print(
                f"{name:>10} {len(df):>7} {J:>8} {py * 1e3:>13.3f} {rs} {ratio} {py_setup:>11.3f} "
                f"{rsu} {defaults:>13.1f}",
                flush=True,
            )
    if not args.models:
        mixing(iters=5000 if args.quick else 20000)


if __name__ == "__main__":
    sys.exit(main())
