"""Coverage study: pan_impute + lmer + pool_estimates on simulated two-level data.

    python benchmarks/study_pan_coverage.py [--reps 200]

Each replication draws ``pm.datasets.random_intercept(50, 10)`` (MAR missingness in y and x),
imputes with ``y + x ~ 1 + z + w + (1|id)`` (m = 10), fits ``y ~ 1 + z + w + (1|id)`` to every
completed data set and pools with Rubin's rules. The table gives, per fixed effect, the mean
estimate, bias, the coverage of the 95% interval and the mean FMI. The truth is beta = (1.0, 0.5,
0.3). Slow test: tests/test_pan.py::test_coverage_study (marked ``slow``).
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

import pymitml as pm

TRUTH = pd.Series({"(Intercept)": 1.0, "z": 0.5, "w": 0.3})


def run(reps: int = 200, seed: int = 1) -> pd.DataFrame:
    rows = []
    for k in range(reps):
        df = pm.datasets.random_intercept(50, 10, seed=seed + k)
        imp = pm.pan_impute(
            df,
            "y + x ~ 1 + z + w + (1|id)",
            m=10,
            n_burn=500,
            n_iter=50,
            seed=seed + k,
            progress=False,
        )
        fits = imp.complete().with_(lambda d: pm.lmer("y ~ 1 + z + w + (1|id)", d, REML=True))
        est = pm.pool_estimates(fits)
        ci = est.confint(0.95)
        for name in TRUTH.index:
            lo, hi = ci.loc[name].iloc[0], ci.loc[name].iloc[1]
            rows.append(
                {
                    "parameter": name,
                    "estimate": est.table.loc[name, "Estimate"],
                    "covered": lo <= TRUTH[name] <= hi,
                    "FMI": est.table.loc[name, "FMI"],
                }
            )
    res = pd.DataFrame(rows)
    out = res.groupby("parameter", sort=False).agg(
        mean=("estimate", "mean"), coverage=("covered", "mean"), FMI=("FMI", "mean")
    )
    out.insert(1, "bias", out["mean"] - TRUTH[out.index].to_numpy())
    out.insert(0, "truth", TRUTH[out.index].to_numpy())
    out.attrs["reps"] = reps
    return out


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=200)
    args = ap.parse_args(argv)
    tab = run(args.reps)
    print(f"pan_impute + lmer + Rubin's rules, {args.reps} replications, 95% intervals")
    print(tab.round(4).to_string())
    se = np.sqrt(0.95 * 0.05 / args.reps)
    print(f"(Monte Carlo SE of a coverage rate near 0.95: {se:.4f})")


if __name__ == "__main__":
    main()
