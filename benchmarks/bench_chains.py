"""Several chains on several threads: wall time of 1 vs 2 chains (same total imputations).

    python benchmarks/bench_chains.py [--quick]

Prints the wall time of chains=1 and chains=2 with n_threads=1 and 2, and checks that the draws
do not depend on the number of threads (identical replacement matrices).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pymitml as pm


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    J, n = (200, 20) if args.quick else (2000, 20)
    df = pm.datasets.random_intercept(J, n, seed=1)
    f = "y + x ~ 1 + z + w + (1|id)"
    kw = dict(m=10, n_burn=1000 if args.quick else 3000, n_iter=100, seed=1, progress=False)
    pm.pan_impute(df, f, m=2, n_burn=2, n_iter=1, seed=1, chains=2)  # warm up
    rows = []
    for chains, threads in ((1, 1), (2, 1), (2, 2)):
        t = time.perf_counter()
        imp = pm.pan_impute(df, f, chains=chains, n_threads=threads, **kw)
        rows.append((chains, threads, time.perf_counter() - t, imp))
    print(f"{len(df)} rows, {J} clusters, m=10, n_burn={kw['n_burn']}, n_iter=100")
    print(f"{'chains':>6} {'threads':>7} {'seconds':>8}")
    for c, th, sec, _ in rows:
        print(f"{c:>6} {th:>7} {sec:>8.3f}")
    same = np.array_equal(rows[1][3].replacement, rows[2][3].replacement)
    print(
        f"2 chains: 2 threads / 1 thread time = {rows[2][2] / rows[1][2]:.2f}; "
        f"identical draws: {same}"
    )


if __name__ == "__main__":
    main()
