"""mitml's vignette "Analysis" (analysis and pooling of imputed data), in Python, beside R.

    python vignettes/mitml_analysis.py

mitml's Analysis vignette imputes ReadDis and SES in `studentratings` (panImpute,
ReadDis + SES ~ 1 + Sex + (1|ID), n.burn = 5000, n.iter = 200, m = 20), adds the group means of
SES and the group-mean-centred SES with within() and clusterMeans(), fits
MathAchiev ~ 1 + Sex + I.SES + G.SES + (1|ID), and then shows every pooling tool:
testEstimates (also with df.com = 46 and extra.pars), testModels against the model without SES
(D1, D1 with df.com, D3) and testConstraints (both SES effects zero; G.SES - I.SES = 0).
Here: MitmlList.within, pm.cluster_means, pm.pool_estimates, pm.compare_models,
pm.pool_constraints. R's numbers from r_compat/vignette_mitml.R.

Independent imputations agree within Monte Carlo error (z-scores as in the other mitml vignettes;
the F statistics of the model tests vary more between runs, tolerances below say how much). On
the same completed data, lme4 + mitml and pymitml agree to fitting precision (checked live when R
is installed).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _agree import (
    check,
    extra_z,
    finish,
    mc_z,
    r_available,
    r_json,
    r_table,
    rel_diff,
    se_z,
    show,
)
from mitml_introduction import studentratings

import pymitml as pm


def add_group_means(d: pd.DataFrame) -> pd.DataFrame:
    d = d.copy()
    d["G.SES"] = pm.cluster_means("SES", "ID", data=d)
    d["I.SES"] = d["SES"] - d["G.SES"]
    return d


def test_row(res) -> pd.Series:
    t = res.table
    return t.iloc[0][["F.value", "df1", "df2", "P(>F)", "RIV"]].astype(float)


def main() -> None:
    t0 = time.perf_counter()
    ref = r_json("vignette_mitml_ref.json")["analysis"]
    sr = studentratings()
    fml = "ReadDis + SES ~ 1 + Sex + (1|ID)"
    imp = pm.pan_impute(sr, fml, n_burn=5000, n_iter=200, m=20, seed=123, progress=False)
    implist = imp.complete().within(add_group_means)

    full = "MathAchiev ~ 1 + Sex + I.SES + G.SES + (1|ID)"
    null = "MathAchiev ~ 1 + Sex + (1|ID)"
    # MathAchiev is incomplete and not imputed: lme4 drops those rows (na.omit), so does this
    fit = implist.with_(lambda d: pm.lmer(full, d, REML=True, na_action="omit"))
    fit_null = implist.with_(lambda d: pm.lmer(null, d, REML=True, na_action="omit"))

    results = {
        "estimates": pm.pool_estimates(fit),
        "estimates_dfcom": pm.pool_estimates(fit, extra_pars=True, df_com=46),
    }
    for key, est in results.items():
        print(est)
        theirs = r_table(ref[key])
        both = pd.concat({"pymitml": est.table, "R mitml": theirs}, axis=1).swaplevel(axis=1)
        show(f"{key}: pymitml beside R", both[["Estimate", "Std.Error", "df", "FMI"]])
        check(
            f"analysis {key} max |z| of estimates", mc_z(est.table, 20, theirs, 20).abs().max(), 4.0
        )
        check(f"analysis {key} max |z| of SEs", se_z(est.table, 20, theirs, 20).abs().max(), 4.0)
    vc = extra_z(fit, ref["extra_pars"], 20)
    show("Variance components and ICC", vc)
    check("analysis variance components max |z|", vc["z"].abs().max(), 4.0)

    tests = {
        "D1": pm.compare_models(fit, fit_null),
        "D1_dfcom": pm.compare_models(fit, fit_null, df_com=46),
        "D3": pm.compare_models(fit, fit_null, method="D3"),
        "constraints_both": pm.pool_constraints(fit, ["I.SES", "G.SES"]),
        "constraints_diff": pm.pool_constraints(fit, ["G.SES - I.SES"]),
    }
    rows = {}
    for key, res in tests.items():
        print(res)
        ours = test_row(res)
        r = pd.Series(ref[key]["statistic"], index=ref[key]["columns"], dtype=float)
        rows[key] = pd.concat({"pymitml": ours, "R": r}).unstack(0).stack()
    tab = pd.DataFrame(rows).T
    show("Model tests and constraints: pymitml beside R (independent imputations)", tab)
    # Between independent runs the F statistics move with the imputations (their pooled parts
    # and r, estimated on (m - 1) k degrees of freedom); this is a loose check only: the F values
    # within a factor 1.5 and the same conclusion at the 5% level. The exact check of the pooling
    # code is the same-data comparison with lme4 + mitml below.
    for key in tests:
        f_ours, f_r = tab.loc[key, ("F.value", "pymitml")], tab.loc[key, ("F.value", "R")]
        p_ours, p_r = tab.loc[key, ("P(>F)", "pymitml")], tab.loc[key, ("P(>F)", "R")]
        check(f"analysis {key} |log F ratio| (independent runs)", np.log(f_ours / f_r), np.log(1.5))
        check(
            f"analysis {key} same decision at 5% (0 = same)",
            float((p_ours < 0.05) != (p_r < 0.05)),
            0,
        )

    if r_available():
        from pymitml import bridge

        same = bridge.r_pool_estimates(implist, full, REML=True, extra_pars=False)
        cols = ["Estimate", "Std.Error", "df", "FMI"]
        check(
            "analysis same data, pymitml vs lme4+mitml, max relative difference",
            rel_diff(results["estimates"].table[cols], same.table[cols]),
            1e-5,
        )
    else:
        print("R not available here: the same-data comparison with lme4 + mitml is skipped")
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


if __name__ == "__main__":
    main()
