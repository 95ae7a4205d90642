"""Worked example: mitml's introductory analysis of `studentratings`, in Python.

    python vignettes/studentratings.py          # needs R only for the data and the side-by-side

The data ship with R's mitml; this script fetches them through the bridge, imputes ReadDis and SES
with the two-level joint model, fits the analysis model of mitml's vignette to every imputed data
set with the native lmer, pools, and -- because R is there anyway -- runs the same analysis with
lme4 + mitml on the same completed data and prints the largest differences.
"""

from __future__ import annotations

import pymitml as pm
from pymitml import bridge


def main() -> None:
    sr = bridge.r_run("data(studentratings, package='mitml'); studentratings")
    print(pm.missing_pattern(sr[["ReadDis", "SES", "CognAbility", "ID"]], cluster="ID"))

    fml = "ReadDis + SES ~ 1 + CognAbility + (1|ID)"
    imp = pm.pan_impute(sr, fml, m=20, n_burn=5000, n_iter=200, seed=123)
    print(imp.summary())

    implist = imp.complete()
    model = "ReadAchiev ~ 1 + ReadDis + SES + (1|ID)"
    fits = implist.with_(lambda d: pm.lmer(model, d, REML=True))
    ours = pm.pool_estimates(fits, extra_pars=True)
    print(ours)

    theirs = bridge.r_pool_estimates(implist, model, REML=True, extra_pars=True)
    print("Same completed data, pooled by lme4 + mitml::testEstimates in R:")
    print(theirs)
    print("Largest differences per column:")
    print(bridge.compare_tables(ours.table, theirs.table))


if __name__ == "__main__":
    main()
