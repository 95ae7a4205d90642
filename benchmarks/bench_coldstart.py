"""Cold start: the cost of ``import pymitml`` and of the first call of each sampler.

Every figure is measured in a fresh Python process, so nothing is shared with this one:

* import: ``import pymitml`` alone;
* first-ever: the first call with an empty numba cache (``NUMBA_CACHE_DIR`` set to a fresh
  temporary directory), i.e. everything the call needs is compiled;
* warm: the first call of a second process using the cache the first one wrote (only loading).

The first-ever and warm calls' CPU times are printed too: on a shared machine they are less noisy
than the wall times (compilation is single-threaded, so on an idle machine the two agree).

Targets (issue 12): import < 1 s, first-ever <= 10 s, warm <= 2 s. The data set is small
(``pm.datasets.random_intercept(n_clusters=20, cluster_size=10)``) so the run itself is negligible.

    python benchmarks/bench_coldstart.py                 # pan_impute, jomo_impute, lmer
    python benchmarks/bench_coldstart.py pan_impute      # one entry point
    python benchmarks/bench_coldstart.py --profile pan_impute   # also the compile time per function
    python benchmarks/bench_coldstart.py --repeat 3      # each measurement three times, then min/median

The load average is printed before and after (on a loaded machine wall times grow; CPU times less).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

TARGETS = {"import": 1.0, "first-ever": 10.0, "warm": 2.0}

CALLS = {
    "pan_impute": 'pm.pan_impute(df, "y + x ~ 1 + z + w + (1|id)", m=2, n_burn=20, n_iter=5, seed=1)',
    "jomo_impute": 'pm.jomo_impute(df, "y + x ~ 1 + z + w + (1|id)", m=2, n_burn=20, n_iter=5, seed=1)',
    "lmer": 'pm.lmer("y ~ 1 + z + w + (1|id)", df.dropna(), REML=True)',
}

# Runs in the child: times the import and the call, optionally records numba's compile events.
CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import pymitml as pm
t_import = time.perf_counter() - t0
what, profile = sys.argv[1], sys.argv[2] == "1"
events = []
if profile:
    from numba.core import event as ev

    class _Timer(ev.Listener):
        # wall time of every numba compilation: inclusive, and exclusive of the compilations it
        # triggered (callees are compiled inside their caller's type inference)

        def __init__(self):
            self.stack = []

        def on_start(self, e):
            self.stack.append([time.perf_counter(), 0.0])

        def on_end(self, e):
            t0, inner = self.stack.pop()
            t = time.perf_counter() - t0
            if self.stack:
                self.stack[-1][1] += t
            d = e.data or {}
            disp = d.get("dispatcher")
            name = getattr(getattr(disp, "py_func", None), "__qualname__", str(disp))
            events.append([name, str(d.get("args")), t, t - inner])

    ev.register("numba:compile", _Timer())
df = pm.datasets.random_intercept(n_clusters=20, cluster_size=10, seed=1)
t0, c0 = time.perf_counter(), time.process_time()
CALL
t_call, c_call = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"import": t_import, "call": t_call, "cpu": c_call, "events": events}))
"""


def _child(what: str, cache_dir: str, profile: bool = False) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    code = CHILD.replace("CALL", CALLS[what])
    out = subprocess.run(
        [sys.executable, "-c", code, what, "1" if profile else "0"],
        env=env,
        capture_output=True,
        text=True,
    )
    if out.returncode:
        raise RuntimeError(f"the child process for {what} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(what: str, profile: bool = False) -> dict:
    """Import time, first-ever call (empty cache) and warm first call (second process)."""
    with tempfile.TemporaryDirectory(prefix="pymitml_nbc_") as cache:
        cold = _child(what, cache, profile)
        warm = _child(what, cache)
    return {
        "import": warm["import"],
        "first-ever": cold["call"],
        "warm": warm["call"],
        "cpu": cold["cpu"],
        "warm cpu": warm["cpu"],
        "events": cold["events"],
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("which", nargs="*", choices=[*CALLS, []], help="default: all")
    ap.add_argument(
        "--profile",
        action="store_true",
        help="list the functions compiled by the first-ever call and their compile times",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="measure each entry point this many times (one row each)",
    )
    args = ap.parse_args(argv)
    print(f"load average at the start: {_load()}")
    print(
        f"{'entry point':>12} {'import s':>9} {'first-ever s':>13} {'(CPU s)':>8} {'warm s':>7} "
        f"{'(CPU s)':>8}   "
        f"(targets: import < {TARGETS['import']:g} s, first-ever <= {TARGETS['first-ever']:g} s, "
        f"warm <= {TARGETS['warm']:g} s)"
    )
    rows: dict[str, list[dict]] = {}
    for what in [w for w in args.which or list(CALLS) for _ in range(max(args.repeat, 1))]:
        res = measure(what, args.profile)
        rows.setdefault(what, []).append(res)
        _row(what, res)
        if args.profile:
            ev = sorted(res["events"], key=lambda e: -e[3])
            print(
                f"    {len(ev)} compilations, {sum(e[3] for e in ev):.2f} s in all; exclusive "
                "(and inclusive) seconds:"
            )
            for name, sig, t, t_own in ev[:25]:
                print(f"    {t_own:6.2f} ({t:6.2f})  {name}  {sig[:100]}")
    if args.repeat > 1:
        for how, fn in (("min", min), ("median", statistics.median)):
            for what, rs in rows.items():
                _row(f"{how} {what}", {k: fn(r[k] for r in rs) for k in COLUMNS})
    print(f"load average at the end: {_load()}")
    return 0


COLUMNS = ("import", "first-ever", "cpu", "warm", "warm cpu")


def _row(label: str, res: dict) -> None:
    flags = " ".join(f"{k} over target" for k in TARGETS if res[k] > TARGETS[k])
    print(
        f"{label:>12} {res['import']:>9.2f} {res['first-ever']:>13.2f} {res['cpu']:>8.2f} "
        f"{res['warm']:>7.2f} {res['warm cpu']:>8.2f}   {flags}",
        flush=True,
    )


def _load() -> str:
    """1, 5 and 15 minute load averages (the machine may be shared: wall times are then longer)."""
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
