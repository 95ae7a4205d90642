"""The whole workflow beside R: panImpute (m = 20) -> lmer on every data set -> testEstimates.

R: ``mitml::panImpute`` + ``with(mitmlComplete(imp), lme4::lmer(...))`` + ``testEstimates``;
pymitml: ``pan_impute`` + ``complete().with_(pm.lmer)`` + ``pool_estimates``, on the same data
(``pm.datasets.random_intercept``, REFERENCE.md section 6 designs), timed step by step, with the
pooled estimates of both printed side by side (they agree within Monte Carlo error, not exactly:
the samplers' random streams differ). Also pan's per-iteration time (slope between two run
lengths, set-up excluded) against the ~1 ms floor of REFERENCE.md.

    python benchmarks/bench_workflow.py                     # 40k and 140k rows, 1000 + 20 x 100
    python benchmarks/bench_workflow.py --rows 40000 --burn 200 --iter 20   # shorter
    python benchmarks/bench_workflow.py --no-r              # pymitml only

The machine may be shared: each figure is one run (best of ``--repeat`` for pymitml).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _rscript import run_rscript

import pymitml as pm

IMP_FORMULA = "y + x ~ 1 + z + w + (1|id)"
FIT_FORMULA = "y ~ x + z + w + (1|id)"
DESIGNS = {4_000: (200, 20), 40_000: (2000, 20), 140_000: (20000, 7)}

R_CODE = r"""
suppressPackageStartupMessages({library(mitml); library(lme4)})
a <- commandArgs(TRUE)
d <- read.csv(a[1]); n.burn <- as.integer(a[2]); n.iter <- as.integer(a[3]); m <- as.integer(a[4])
t0 <- proc.time()[["elapsed"]]
imp <- panImpute(d, formula = y + x ~ 1 + z + w + (1|id), n.burn = n.burn, n.iter = n.iter,
                 m = m, seed = 1, silent = TRUE)
t1 <- proc.time()[["elapsed"]]
implist <- mitmlComplete(imp, "all")
fits <- with(implist, lmer(y ~ x + z + w + (1|id), REML = TRUE))
t2 <- proc.time()[["elapsed"]]
est <- testEstimates(fits, extra.pars = TRUE)
t3 <- proc.time()[["elapsed"]]
cat("TIMES", t1 - t0, t2 - t1, t3 - t2, "\n")
e <- est$estimates
for (i in seq_len(nrow(e))) cat("EST", rownames(e)[i], e[i, 1], e[i, 2], "\n")
"""


def _design(rows: int):
    if rows in DESIGNS:
        return DESIGNS[rows]
    return max(rows // 20, 2), 20


def time_python(df, n_burn, n_iter, m, n_jobs, backend):
    t0 = time.perf_counter()
    imp = pm.pan_impute(df, IMP_FORMULA, m=m, n_burn=n_burn, n_iter=n_iter, seed=1, n_threads=1)
    t1 = time.perf_counter()
    implist = imp.complete()
    fits = implist.with_(
        lambda d: pm.lmer(FIT_FORMULA, d, REML=True), n_jobs=n_jobs, backend=backend
    )
    t2 = time.perf_counter()
    est = pm.pool_estimates(fits)
    t3 = time.perf_counter()
    return (t1 - t0, t2 - t1, t3 - t2), est.table


def pan_per_iteration(df, n1=100, n2=400):
    """Seconds per pan iteration: slope between two burn-in lengths (set-up excluded)."""
    best = {}
    for n in (n1, n2):
        t = time.perf_counter()
        pm.pan_impute(df, IMP_FORMULA, m=1, n_burn=n, n_iter=1, seed=1, n_threads=1)
        best[n] = time.perf_counter() - t
    return (best[n2] - best[n1]) / (n2 - n1)


def time_r(df, n_burn, n_iter, m):
    with tempfile.TemporaryDirectory() as tmp:
        csv = os.path.join(tmp, "d.csv")
        df.to_csv(csv, index=False)
        out = run_rscript(R_CODE, csv, n_burn, n_iter, m)
    times, est = None, {}
    for line in out.splitlines():
        parts = line.split()
        if parts and parts[0] == "TIMES":
            times = tuple(float(x) for x in parts[1:4])
        elif parts and parts[0] == "EST":
            est[parts[1]] = (float(parts[2]), float(parts[3]))
    return times, est


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, nargs="*", default=[40_000, 140_000])
    ap.add_argument("--burn", type=int, default=1000)
    ap.add_argument("--iter", type=int, default=100)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1, help="pymitml runs (best is shown)")
    ap.add_argument("--n-jobs", type=int, default=1, help="with_(n_jobs=) for the fits")
    ap.add_argument("--backend", default="threads", choices=["threads", "processes"])
    ap.add_argument("--no-r", action="store_true")
    args = ap.parse_args(argv)
    print(
        f"workflow: panImpute({IMP_FORMULA}, n.burn={args.burn}, n.iter={args.iter}, m={args.m})"
        f" -> lmer({FIT_FORMULA}) on each -> testEstimates; pymitml fits: n_jobs={args.n_jobs}"
        f" ({args.backend}); {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    )
    warm = pm.datasets.random_intercept(50, 10, seed=1)  # compile / load the numba cache
    time_python(warm, 5, 2, 2, 1, "threads")
    for rows in args.rows:
        J, n = _design(rows)
        df = pm.datasets.random_intercept(J, n, seed=1)
        runs = [
            time_python(df, args.burn, args.iter, args.m, args.n_jobs, args.backend)
            for _ in range(args.repeat)
        ]
        (pi, pf, pp), table = min(runs, key=lambda r: sum(r[0]))
        per = pan_per_iteration(df)
        py_total = pi + pf + pp
        print(f"\n{len(df):,} rows ({J:,} clusters of {n}):")
        print(
            f"  pan per iteration: {per * 1e3:.2f} ms ({per / 1e-3:.1f}x the ~1 ms floor of REFERENCE.md at 140k rows)"
        )
        print(f"  {'step':<22}{'pymitml s':>11}{'R s':>9}{'R / py':>9}")
        if args.no_r:
            rt, rest = None, {}
        else:
            rt, rest = time_r(df, args.burn, args.iter, args.m)
        labels = ("impute", "complete + lmer fits", "pool")
        for k, (lab, t) in enumerate(zip(labels, (pi, pf, pp))):
            r = f"{rt[k]:>9.2f}{rt[k] / t:>9.1f}" if rt else ""
            print(f"  {lab:<22}{t:>11.2f}{r}")
        r = f"{sum(rt):>9.2f}{sum(rt) / py_total:>9.1f}" if rt else ""
        print(f"  {'whole workflow':<22}{py_total:>11.2f}{r}")
        if rest:
            print(f"  {'pooled estimate':<22}{'pymitml':>11}{'R':>11}{'SE py':>9}{'SE R':>9}")
            for name, row in table.iterrows():
                key = str(name)
                if key in rest:
                    e, s = rest[key]
                    print(
                        f"  {key:<22}{row['Estimate']:>11.4f}{e:>11.4f}"
                        f"{row['Std.Error']:>9.4f}{s:>9.4f}"
                    )
        sys.stdout.flush()


if __name__ == "__main__":
    main()
