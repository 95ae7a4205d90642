"""Peak memory of complete() + with_(lmer) + pooling on a large panel (issue 18).

Data: ``--rows`` rows x 13 columns (cluster id, 3 incomplete: y, x, v; 8 complete level-1
covariates; a level-2 covariate w), imputed by ``pan_impute`` with ``m`` imputations. The
imputation runs in a child process that pickles its result; the measurement runs in a fresh
child process: imports and a warm-up fit first (baseline), then the result is loaded, then
``imp.complete()`` -> ``with_(lmer)`` -> ``pool_estimates`` while a thread samples the resident
set size (/proc/self/statm) every 5 ms. Printed: the observed data, the replacement matrix, one
working copy (a completed data set), the peak over the baseline, and the ratio of that peak to
(observed + replacement + one working copy) -- the issue asks for at most 2. ``--eager``
measures the same with ``complete(lazy=False)`` (all m data sets held) for comparison. Each is
measured twice: the analysis keeping only what pooling reads (``(fit.fixef, fit.vcov)``, which
``pool_estimates`` accepts) and keeping the whole fits, which ``with_`` keeps light on a lazy
list (without their per-row design arrays, rebuilt from the data set when used); ``--keep
heavy`` keeps them with their designs (``light=False``: each LmerFit holds X, Z, y, about 1.3
data sets, so m fits dominate the memory).

``--writers`` measures, in the same way, the peak of writing the lazy list to each stacked
format (long parquet, long CSV, SPSS .sav, Stata .dta): the writers build one data set at a
time, so the peak is compared with one data set and with all m + 1 stacked (what the file
holds; the SPSS writer needs that whole, pyreadstat cannot append).

Measured (2 cores at load 9-13, 4 Dec 2026), 1M rows: m = 100 estimates kept 1.82x, light fits
kept 1.73x (heavy fits ~13 GB); m = 20 light fits 2.05x (before fits were made light one by one:
9.9x). Writers at 100k rows, m = 20, peak over the baseline before -> after streaming: parquet
373 -> 149 MiB (one row group of 2**20 rows), CSV 84 -> 43, SPSS 614 -> 298 (the stacked
columns pyreadstat needs whole), Stata 74 -> 74.

    python benchmarks/bench_memory.py --rows 200000 --m 20       # quick
    python benchmarks/bench_memory.py                              # 1M rows, m = 100
    python benchmarks/bench_memory.py --rows 200000 --m 20 --writers --keep none
"""

from __future__ import annotations

import argparse
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import pandas as pd

IMP_FORMULA = "y + x + v ~ 1 + z1 + w + (1|id)"
FIT_FORMULA = "y ~ x + v + z1 + z2 + w + (1|id)"


def make_data(rows: int, seed: int = 1) -> pd.DataFrame:
    """``rows`` rows in clusters of 20; 13 columns, 3 incomplete (MAR on z1, w)."""
    rng = np.random.default_rng(seed)
    J = max(rows // 20, 2)
    idx = np.repeat(np.arange(J), 20)[:rows]
    w = rng.normal(size=J)[idx]
    z = rng.normal(size=(rows, 8))
    u = rng.normal(scale=0.7, size=(J, 3))[idx]
    e = rng.multivariate_normal([0, 0, 0], [[1, 0.3, 0.2], [0.3, 1, 0.1], [0.2, 0.1, 1]], rows)
    y = 1 + 0.5 * z[:, 0] + 0.3 * w + u[:, 0] + e[:, 0]
    x = -0.5 + 0.4 * z[:, 0] + 0.2 * w + u[:, 1] + e[:, 1]
    v = 0.2 * z[:, 0] - 0.1 * w + u[:, 2] + e[:, 2]
    df = pd.DataFrame({"id": idx + 1, "y": y, "x": x, "v": v})
    for k in range(8):
        df[f"z{k + 1}"] = z[:, k]
    df["w"] = w
    for col, lin in (
        ("y", -1.2 + 0.8 * z[:, 0]),
        ("x", -1.5 + 0.8 * w),
        ("v", -1.4 + 0.5 * z[:, 1]),
    ):
        df.loc[rng.random(rows) < 1 / (1 + np.exp(-lin)), col] = np.nan
    return df


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """Highest resident set size seen between start() and stop()."""

    def __init__(self, every: float = 0.005):
        self.every, self.peak, self._go = every, 0, threading.Event()

    def _loop(self):
        while not self._go.is_set():
            self.peak = max(self.peak, _rss())
            time.sleep(self.every)

    def start(self):
        self.peak = _rss()
        self._t = threading.Thread(target=self._loop, daemon=True)
        self._t.start()

    def stop(self) -> int:
        self._go.set()
        self._t.join()
        return max(self.peak, _rss())


def impute(rows: int, m: int, path: str) -> None:
    import pymitml as pm

    df = make_data(rows)
    t = time.perf_counter()
    imp = pm.pan_impute(df, IMP_FORMULA, m=m, n_burn=50, n_iter=2, seed=1, n_threads=1)
    with open(path, "wb") as fh:
        pickle.dump(imp, fh, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"IMPUTE {time.perf_counter() - t:.1f}")


def _estimates(fit):
    """What pool_estimates reads, as the (estimates, covariance) pair it accepts."""
    return fit.fixef, fit.vcov


def measure(path: str, eager: bool, keep: str) -> None:
    import pymitml as pm

    warm = make_data(2000, seed=2).dropna()  # compile / load the numba cache
    pm.pool_estimates(pm.MitmlList([warm, warm]).with_(lambda d: pm.lmer(FIT_FORMULA, d)))
    base = _rss()
    with open(path, "rb") as fh:
        imp = pickle.load(fh)
    loaded = _rss()
    obs = int(imp.incomplete.memory_usage(index=True, deep=True).sum())
    repl = int(imp.replacement.nbytes + imp.index.nbytes)
    one = int(imp.complete(1).memory_usage(index=True, deep=True).sum())
    sampler = PeakSampler()
    t = time.perf_counter()
    sampler.start()
    implist = imp.complete(lazy=not eager)
    if keep == "fits":  # the whole fits, light (their per-row design arrays dropped)
        fits = implist.with_(lambda d: pm.lmer(FIT_FORMULA, d, REML=True))
    elif keep == "heavy":  # the whole fits, each holding its design (X, Z, y) as lme4's do
        fits = implist.with_(lambda d: pm.lmer(FIT_FORMULA, d, REML=True), light=False)
    else:  # only what pooling reads
        fits = implist.with_(lambda d: _estimates(pm.lmer(FIT_FORMULA, d, REML=True)))
    est = pm.pool_estimates(fits)
    peak = sampler.stop()
    secs = time.perf_counter() - t
    print(f"OBS {obs}\nREPL {repl}\nONE {one}\nBASE {base}\nLOADED {loaded}\nPEAK {peak}")
    print(f"SECS {secs:.1f}\nEST {est.table['Estimate'].iloc[1]:.6f}")


WRITERS = {
    "parquet": lambda il, d: il.to_file(os.path.join(d, "w.parquet")),
    "csv": lambda il, d: il.to_file(os.path.join(d, "w.csv")),
    "sav": lambda il, d: il.to_spss(os.path.join(d, "w.sav")),
    "dta": lambda il, d: il.to_stata(os.path.join(d, "w.dta")),
}


def measure_write(path: str, fmt: str) -> None:
    import pymitml as pm

    warm = pm.MitmlList([make_data(60, seed=2)] * 2, make_data(60, seed=2))
    with tempfile.TemporaryDirectory() as tmp:
        WRITERS[fmt](warm, tmp)
    base = _rss()
    with open(path, "rb") as fh:
        imp = pickle.load(fh)
    one = int(imp.complete(1).memory_usage(index=True, deep=True).sum())
    sampler = PeakSampler()
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        sampler.start()
        WRITERS[fmt](imp.complete(), tmp)
        peak = sampler.stop()
        secs = time.perf_counter() - t
        size = os.path.getsize(os.path.join(tmp, "w." + fmt))
    print(f"ONE {one}\nBASE {base}\nPEAK {peak}\nSECS {secs:.1f}\nSIZE {size}")


def _child(*args: str) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, check=False
    )
    if out.returncode:
        sys.exit(out.stderr)
    return {ln.split()[0]: float(ln.split()[1]) for ln in out.stdout.splitlines() if ln.strip()}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--m", type=int, default=100)
    ap.add_argument("--eager", action="store_true", help="also measure complete(lazy=False)")
    ap.add_argument(
        "--keep",
        default="both",
        choices=["both", "estimates", "fits", "heavy", "none"],
        help="what with_ keeps: estimates, light fits (default of a lazy list), heavy fits "
        "(light=False: each holds its design, 1M rows x m = 100 need ~13 GB)",
    )
    ap.add_argument("--writers", action="store_true", help="also measure the stacked writers")
    ap.add_argument("--_impute", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument("--_write", nargs=2, help=argparse.SUPPRESS)
    ap.add_argument("--_measure", nargs=3, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args._impute:
        return impute(int(args._impute[0]), int(args._impute[1]), args._impute[2])
    if args._write:
        return measure_write(args._write[0], args._write[1])
    if args._measure:
        return measure(args._measure[0], args._measure[1] == "eager", args._measure[2])
    mb = 2**20
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "imp.pkl")
        t = _child("--_impute", str(args.rows), str(args.m), path)
        print(
            f"{args.rows:,} rows x 13 columns (3 incomplete), m = {args.m}: pan_impute "
            f"{t['IMPUTE']:.0f} s; load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
        )
        keeps = {"both": ["estimates", "fits"], "none": []}.get(args.keep, [args.keep])
        modes = [(mode, k) for mode in ["lazy"] + (["eager"] if args.eager else []) for k in keeps]
        for mode, keep in modes:
            r = _child("--_measure", path, mode, keep)
            budget = r["OBS"] + r["REPL"] + r["ONE"]
            rise = r["PEAK"] - r["BASE"]
            print(
                f"\n{mode} complete(), with_ keeping {keep}: complete() + with_(lmer) + "
                f"pool_estimates in {r['SECS']:.0f} s\n"
                f"  observed data {r['OBS'] / mb:9.1f} MiB\n"
                f"  replacement   {r['REPL'] / mb:9.1f} MiB (missing cells x m, with its index)\n"
                f"  one data set  {r['ONE'] / mb:9.1f} MiB (working copy)\n"
                f"  budget        {budget / mb:9.1f} MiB (sum of the three)\n"
                f"  peak RSS over the baseline (imports + warm-up fit): {rise / mb:.1f} MiB "
                f"= {rise / budget:.2f} x budget (issue: at most 2x)\n"
                f"  resident after loading the result: {(r['LOADED'] - r['BASE']) / mb:.1f} MiB "
                f"over the baseline; baseline itself {r['BASE'] / mb:.0f} MiB"
            )
        if args.writers:
            print(f"\nwriters of the lazy list (m + 1 = {args.m + 1} blocks stacked):")
        for fmt in WRITERS if args.writers else []:
            r = _child("--_write", path, fmt)
            rise = r["PEAK"] - r["BASE"]
            stacked = (args.m + 1) * r["ONE"]
            print(
                f"  {fmt:8s} {r['SECS']:6.1f} s  peak over baseline {rise / mb:8.1f} MiB = "
                f"{rise / r['ONE']:5.2f} data sets ({rise / stacked:.2f} x all m + 1 stacked, "
                f"{stacked / mb:.0f} MiB); file {r['SIZE'] / mb:.0f} MiB"
            )


if __name__ == "__main__":
    main()
