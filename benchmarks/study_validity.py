"""The validity study: bias and coverage of every imputation family across the designs.

    python benchmarks/study_validity.py --reps 500 --jobs 8 --out study_out [--designs ri rs]
        [--methods pan fcs_2l.pan model] [--m 20] [--burn 1000] [--iter 100] [--maxit 20]
    python benchmarks/study_validity.py --reps 500 --out study_out --report   # what is done
    python benchmarks/study_validity.py --out study_out --pack benchmarks/validity_runs
    python benchmarks/study_validity.py --out study_out --unpack benchmarks/validity_runs

``--pack`` gathers the per-replication files into one compressed CSV per design and method (how
the published run's results, finished or not, are kept in the repository); ``--unpack`` writes
them back under ``--out``, after which a run resumes where the packed one stopped.

Runs (or resumes: files already in --out are kept) the study of :mod:`pymitml.studies` and prints
its table (bias, relative bias, RMSE, coverage, width, FMI with Monte Carlo standard errors) per
design, method and parameter; writes the table as CSV and the figure of relative bias and
coverage beside the results (``<out>/table.csv``, ``<out>/table.md``, ``<out>/figure.png``), with
the commit it ran at.
"""

from __future__ import annotations

import argparse
import subprocess
import time
from pathlib import Path

import pandas as pd

from pymitml import studies


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: list[str] | None = None) -> pd.DataFrame:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="study_out")
    ap.add_argument("--designs", nargs="*", help="design kinds or cell names (default: all cells)")
    ap.add_argument("--methods", nargs="*", default=None)
    ap.add_argument("--m", type=int, default=20)
    ap.add_argument("--burn", type=int, default=1000)
    ap.add_argument("--iter", type=int, default=100)
    ap.add_argument("--maxit", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--report",
        action="store_true",
        help="run nothing: summarise the cells whose every listed method has --reps results",
    )
    ap.add_argument("--pack", metavar="DIR", help="run nothing: pack the results under --out")
    ap.add_argument("--unpack", metavar="DIR", help="run nothing: unpack DIR's results to --out")
    a = ap.parse_args(argv)
    if a.pack:
        files = studies.pack_results(a.out, a.pack)
        print(f"packed the results of {a.out} into {len(files)} files under {a.pack}")
        return pd.DataFrame()
    if a.unpack:
        n = studies.unpack_results(a.unpack, a.out)
        print(f"unpacked {n} replication files from {a.unpack} into {a.out}")
        return pd.DataFrame()
    cells = studies.DESIGNS
    if a.designs:
        cells = [d for d in cells if d.kind in a.designs or d.name in a.designs]
    s = studies.Settings(m=a.m, n_burn=a.burn, n_iter=a.iter, maxit=a.maxit)
    t0 = time.perf_counter()
    if a.report:
        res = studies.load_results(a.out, cells, a.reps, a.methods)
        n = res.groupby(["design", "method"]).rep.nunique()
        done = n[n == a.reps].reset_index()
        res = res.merge(done[["design", "method"]], on=["design", "method"])
        if res.empty:
            raise SystemExit(f"no design and method in {a.out} has {a.reps} replications yet.")
    else:
        res = studies.run_study(
            cells, reps=a.reps, out=a.out, methods=a.methods, settings=s, seed=a.seed, n_jobs=a.jobs
        )
    tab = studies.summarize(res)
    out = Path(a.out)
    tab.to_csv(out / "table.csv", index=False)
    (out / "table.md").write_text(
        f"Run at commit {_commit()} with {a.reps} replications per cell, m = {a.m}, "
        f"n_burn = {a.burn}, n_iter = {a.iter}, maxit = {a.maxit}.\n\n" + studies.to_markdown(tab)
    )
    studies.plot_summary(tab, str(out / "figure.png"))
    cols = ["truth", "reps", "failed", "mean", "rel_bias", "rel_bias_mcse", "rmse"]
    cols += ["coverage", "coverage_mcse", "width", "fmi"]
    pd.set_option("display.width", 200)
    print(
        f"validity study: {a.reps} replications per cell, m = {a.m}, n_burn = {a.burn}, "
        f"commit {_commit()}, {time.perf_counter() - t0:.0f} s"
    )
    for dn, sub in tab.groupby("design", sort=False, observed=True):
        print(f"\n## {dn}")
        print(sub.set_index(["method", "parameter"])[cols].round(3).to_string())
    return tab


if __name__ == "__main__":
    main()
