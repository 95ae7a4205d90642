"""Worked example: seed 002's Blimp script, run as a Blimp user runs it (``pymitml run``).

    python vignettes/seed002_blimp_run.py

Seed 002 (Blimp's multilevel MNAR example) is a Blimp script. This vignette writes the example's
data (``pm.datasets.blimp_mnar``, the design of ``vignettes/blimp_mnar.py``) and the script to a
folder, runs ``pymitml run mnar.imp`` exactly as a command-line user would, and checks that

1. the stacked file the script's ``SAVE`` wrote holds the same imputations as the Python call the
   report prints (``pm.model_impute`` with the same arguments and seed): identical, to the last
   digit the file keeps;
2. the pooled analysis of the saved imputations recovers the complete-data estimates (within one
   pooled standard error), as the selection model does in ``vignettes/blimp_mnar.py``.

The script is the seed's, with the selection model on y alone (``y.missing ~ y``; the seed's
version with every focal predictor needs Blimp's 20,000 + 20,000 iterations, see
``vignettes/blimp_mnar.py --blimp``) and a run length that fits in CI.
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import warnings

import numpy as np

import pymitml as pm
from pymitml.cli import main as cli

try:
    from _agree import check, finish, show
except ImportError:  # run from elsewhere
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
    from _agree import check, finish, show

SCRIPT = """\
DATA: 04_multilevel.csv;
CLUSTERID: j;
FIXED: x3i;
MODEL:
focal:
y ~ x1i x2i x3i x2i*x3i | x1i;
auxiliary:
x1i x2i ~ x3i;
y.missing ~ y;
SEED: 123;
BURN: 5000;
ITERATIONS: 2000;
CHAINS: 2;
NIMPS: 20;
SAVE: stacked = imps.csv;
"""
FOCAL = "y ~ x1i + x2i + x3i + x2i:x3i + (1 + x1i | j)"


def main() -> None:
    df = pm.datasets.blimp_mnar(seed=2)
    full = pm.datasets.blimp_mnar(seed=2, missing=False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = pathlib.Path(tmp)
        df.to_csv(folder / "04_multilevel.csv", index=False)
        (folder / "mnar.imp").write_text(SCRIPT)
        print("$ pymitml run mnar.imp\n")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the PSR table is in the report
            rc = cli(["run", str(folder / "mnar.imp")])
        check("pymitml run exit code", rc, 0)
        saved = pm.read_blimp(folder / "imps.csv")

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            api = pm.model_impute(
                df,
                FOCAL,
                predictors=["x1i + x2i ~ x3i"],
                selection={"y": "~ y"},
                fixed=["x3i"],
                m=20,
                n_burn=5000,
                n_iter=200,
                chains=2,
                seed=123,
                verbose=False,
            ).complete()
        diff = max(
            float(np.max(np.abs(a[c].to_numpy(float) - b[c].to_numpy(float))))
            for a, b in zip(saved, api)
            for c in ("y", "x1i", "x2i")
        )
        check("saved imputations - Python API imputations (max abs)", diff, 1e-12)

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits = saved.with_(lambda d: pm.lmer(FOCAL, d))
            pooled = pm.pool_estimates(fits).table
            target = pm.lmer(FOCAL, full).fixef
        side = pooled[["Estimate", "Std.Error"]].assign(complete=target)
        show("Pooled focal model from the saved imputations, beside the complete data", side)
        z = (pooled["Estimate"] - target) / pooled["Std.Error"]
        check(
            "pooled estimates from the saved file: max |estimate - complete| / SE",
            z.abs().max(),
            1.0,
        )
    finish()


if __name__ == "__main__":
    main()
