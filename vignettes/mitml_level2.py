"""mitml's vignette "Level-2" (imputation of missing data at level 2), in Python, beside R.

    python vignettes/mitml_level2.py

mitml's Level-2 vignette imputes the `leadership` data (job satisfaction, negative leadership and
a binary workload factor at level 1; group cohesion COHES at level 2, missing for whole groups)
with jomoImpute and the two-part formula

    list(JOBSAT + NEGLEAD + WLOAD ~ 1 + (1|GRPID), COHES ~ 1)

(n.burn = 5000, n.iter = 250, m = 20). pm.jomo_impute takes the same list. The vignette stops at
the completed data; to have pooled numbers to compare, this script (and r_compat/vignette_mitml.R)
also fits JOBSAT ~ 1 + NEGLEAD + WLOAD + COHES + (1|GRPID) and pools with testEstimates.

Compared: posterior means of every imputation-model parameter (beta, beta2, psi, sigma; WLOAD
enters as one latent normal column, jomo's parametrisation), the pooled estimates and SEs, and
the level-2 imputations themselves (COHES is constant within each group in every data set).
"""

from __future__ import annotations

import time

import pandas as pd
from _agree import (
    ROOT,
    chain_z,
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

import pymitml as pm


def leadership() -> pd.DataFrame:
    """mitml's leadership (written by r_compat/diag_summary.R); WLOAD a factor low < high."""
    df = pd.read_csv(ROOT / "r_compat" / "diag_leadership.csv")
    df["WLOAD"] = pd.Categorical(df["WLOAD"], categories=["low", "high"])
    return df


def main() -> None:
    t0 = time.perf_counter()
    ref = r_json("vignette_mitml_ref.json")["level2"]
    ld = leadership()
    print(pm.missing_pattern(ld, cluster="GRPID"))

    fml = ["JOBSAT + NEGLEAD + WLOAD ~ 1 + (1|GRPID)", "COHES ~ 1"]
    imp = pm.jomo_impute(ld, fml, n_burn=5000, n_iter=250, m=20, seed=123, progress=False)
    print(imp.summary())

    # the latent variance of WLOAD (psi[2,2]) mixes slowly, with rare excursions that batch means
    # of one chain do not see: both sides run three more chains and take the Monte Carlo error
    # from the spread between chains (sigma[2,2] is fixed at 1 by jomo's parametrisation)
    more = [
        pm.jomo_impute(ld, fml, n_burn=5000, n_iter=250, m=20, seed=s, progress=False)
        for s in (1, 2, 3)
    ]
    chains = chain_z([imp, *more], [ref["chains"], *ref["more_chains"]])
    show("Posterior means over 4 chains (pymitml vs R's jomoImpute)", chains)
    check(
        "level2 chains max |z| (posterior means of 4 chains a side)",
        chains["z"].abs().max(),
        4.0,
    )

    implist = imp.complete()
    print("\nrows 73-78 of the first completed data set (as the vignette shows):")
    print(implist[0].iloc[72:78].to_string())
    miss = ld["COHES"].isna()
    const = all(d.groupby("GRPID")["COHES"].nunique().max() == 1 for d in implist)
    print(f"COHES constant within every group in all 20 data sets: {const}")
    check("level2 COHES varies within a group (count of data sets)", 0 if const else 1, 0)
    print(
        f"mean imputed COHES: pymitml {sum(d['COHES'][miss].mean() for d in implist) / 20:.3f}, "
        f"R {ref['cohes_imputed_mean']:.3f}"
    )

    model = "JOBSAT ~ 1 + NEGLEAD + WLOAD + COHES + (1|GRPID)"
    fits = implist.with_(lambda d: pm.lmer(model, d, REML=True))
    ours = pm.pool_estimates(fits, extra_pars=True)
    print(ours)
    theirs = r_table(ref["estimates"])
    both = pd.concat({"pymitml": ours.table, "R mitml": theirs}, axis=1).swaplevel(axis=1)
    show(
        "Pooled estimates: pymitml beside R (independent imputations)",
        both[["Estimate", "Std.Error", "FMI"]],
    )
    z = mc_z(ours.table, 20, theirs, 20)
    show("z of the difference (Monte Carlo error of both runs)", z.to_frame("z"))
    check("level2 pooled estimates max |z|", z.abs().max(), 4.0)
    check("level2 pooled SE max |z|", se_z(ours.table, 20, theirs, 20).abs().max(), 4.0)
    vc = extra_z(fits, ref["extra_pars"], 20)
    show("Variance components and ICC (averaged over imputations)", vc)
    check("level2 variance components max |z|", vc["z"].abs().max(), 4.0)

    if r_available():
        from pymitml import bridge

        same = bridge.r_pool_estimates(implist, model, REML=True, extra_pars=True)
        cols = ["Estimate", "Std.Error", "FMI"]
        check(
            "level2 same data, pymitml vs lme4+mitml, max relative difference",
            rel_diff(ours.table[cols], same.table[cols]),
            1e-5,
        )
    else:
        print("R not available here: the same-data comparison with lme4 + mitml is skipped")
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


if __name__ == "__main__":
    main()
