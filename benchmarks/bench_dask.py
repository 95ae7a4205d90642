"""The imputation workflow on a Dask LocalCluster vs one process: wall time and identical results.

pan_impute (``--chains`` chains, m imputations) -> complete() -> with_(lmer) -> pool_estimates,
once in this process (threads=1) and once with ``client=`` for the chains and the fits on a
LocalCluster of ``--workers`` worker processes (one thread each). The cluster's start-up is
timed separately. Printed: the times, their ratio, and whether the imputations and the pooled
estimates are bit-identical. On a machine with fewer cores than workers the cluster cannot be
faster (the workers share the cores): say how many cores there were when quoting the ratio.
BLAS runs with one thread on both sides (Dask's workers do by default), so the fits add up in the
same order and the pooled tables are identical too.

    python benchmarks/bench_dask.py --rows 1000000 --workers 4     # the issue's run
    python benchmarks/bench_dask.py --rows 100000 --workers 2 --m 8 # quick
"""

from __future__ import annotations

import argparse
import os
import time

# Dask's nanny starts workers with one BLAS thread; the process run gets the same, so that BLAS
# reductions (lmer's dense products) add up in the same order on both sides
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import numpy as np  # noqa: E402

import pymitml as pm  # noqa: E402

IMP_FORMULA = "y + x ~ 1 + z + w + (1|id)"
FIT_FORMULA = "y ~ x + z + w + (1|id)"


def workflow(df, args, client=None):
    t0 = time.perf_counter()
    imp = pm.pan_impute(
        df,
        IMP_FORMULA,
        m=args.m,
        n_burn=args.burn,
        n_iter=args.iter,
        chains=args.chains,
        seed=1,
        n_threads=1,
        client=client,
    )
    t1 = time.perf_counter()
    fits = imp.complete().with_(
        lambda d: (lambda f: (f.fixef, f.vcov))(pm.lmer(FIT_FORMULA, d, REML=True)),
        client=client,
    )
    est = pm.pool_estimates(fits)
    t2 = time.perf_counter()
    return imp, est.table, (t1 - t0, t2 - t1)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--burn", type=int, default=200)
    ap.add_argument("--iter", type=int, default=20)
    args = ap.parse_args(argv)
    from distributed import Client, LocalCluster

    df = pm.datasets.random_intercept(max(args.rows // 20, 2), 20, seed=1)
    warm = pm.datasets.random_intercept(40, 10, seed=2)
    workflow(warm, argparse.Namespace(m=2, burn=5, iter=2, chains=2))  # compile / load cache
    imp0, tab0, (ti0, tf0) = workflow(df, args)
    t = time.perf_counter()
    with (
        LocalCluster(
            n_workers=args.workers, processes=True, threads_per_worker=1, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        start = time.perf_counter() - t
        workflow(warm, argparse.Namespace(m=2, burn=5, iter=2, chains=2), client)  # warm workers
        imp1, tab1, (ti1, tf1) = workflow(df, args, client)
    same_imp = np.array_equal(imp0.replacement, imp1.replacement)
    same_est = tab0.equals(tab1)
    num = tab0.select_dtypes("number")
    rel = float(((num - tab1[num.columns]).abs() / num.abs().clip(lower=1e-300)).max().max())
    print(
        f"{len(df):,} rows, pan m={args.m} ({args.chains} chains, n_burn={args.burn}, "
        f"n_iter={args.iter}) -> lmer on each -> pool; {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}"
    )
    print(f"{'':<26}{'impute s':>10}{'fits+pool s':>13}{'total s':>9}")
    print(f"{'one process':<26}{ti0:>10.1f}{tf0:>13.1f}{ti0 + tf0:>9.1f}")
    lab = f"Dask, {args.workers} workers"
    print(f"{lab:<26}{ti1:>10.1f}{tf1:>13.1f}{ti1 + tf1:>9.1f}")
    print(
        f"ratio one process / Dask: {(ti0 + tf0) / (ti1 + tf1):.2f} (cluster start-up "
        f"{start:.1f} s not included); imputations identical: {same_imp}; pooled table "
        f"identical: {same_est} (max relative difference {rel:.1e})"
    )


if __name__ == "__main__":
    main()
