"""mitml's vignette "Introduction", step by step in Python, with R's numbers beside pymitml's.

    python vignettes/mitml_introduction.py

mitml's Introduction imputes ReadAchiev, ReadDis and SchClimate in `studentratings` with the
two-level joint model (panImpute, n.burn = 5000, n.iter = 100, m = 100), checks convergence,
fits ReadAchiev ~ 1 + ReadDis + (1|ID) to every completed data set and pools with
testEstimates(extra.pars = TRUE). The same steps here use pm.pan_impute, pm.lmer and
pm.pool_estimates. R's numbers come from r_compat/vignette_mitml.R (run once, JSON committed).

Two runs of the same sampler with different random numbers differ by Monte Carlo error only, so
the comparison is a z-score per quantity: pooled estimates use the between-imputation variance
B of both runs (Var = B_py/m + B_R/m), posterior means of the chains the batch-means MCSE of both.
Where R is installed, lme4 + mitml::testEstimates are also run on pymitml's own completed data,
which must agree to fitting precision (1e-5 relative).
"""

from __future__ import annotations

import time

import pandas as pd
from _agree import (
    IMG,
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

ROOT_CSV = "r_compat/diag_studentratings.csv"


def studentratings() -> pd.DataFrame:
    """mitml's studentratings (written by r_compat/diag_summary.R), factors as in R."""
    from _agree import ROOT

    df = pd.read_csv(ROOT / ROOT_CSV)
    df["FedState"] = pd.Categorical(df["FedState"], categories=["B", "SH"])
    df["Sex"] = pd.Categorical(df["Sex"], categories=["Boy", "Girl"])
    return df


def main() -> None:
    t0 = time.perf_counter()
    ref = r_json("vignette_mitml_ref.json")["introduction"]
    sr = studentratings()
    print(pm.missing_pattern(sr[["ReadAchiev", "ReadDis", "SchClimate", "ID"]], cluster="ID"))

    # --- imputation, exactly as the vignette (panImpute(studentratings, fml, 5000, 100, m=100))
    fml = "ReadAchiev + ReadDis + SchClimate ~ 1 + (1|ID)"
    imp = pm.pan_impute(sr, fml, n_burn=5000, n_iter=100, m=100, seed=123, progress=False)
    summ = imp.summary()
    print(summ)
    imp.plot(IMG, blocks=["beta"], max_params=3, psr=False, prefix="mitml_introduction_")

    # --- chains: posterior means of beta, psi, sigma beside R's (z by both sides' batch MCSE)
    chains = chain_z(imp, ref["chains"], ("beta", "psi", "sigma"))
    show("Posterior means of the imputation model (pymitml vs R's panImpute)", chains)
    check(
        "introduction chains max |z| (posterior means, batch MCSE both sides)",
        chains["z"].abs().max(),
        4.0,
    )
    print(f"max Rhat: pymitml {float(summ.rhat['Rhat'].max()):.3f}, R {ref['rhat_max']:.3f}")

    # --- analysis and pooling: testEstimates(fit, extra.pars = TRUE)
    implist = imp.complete()
    model = "ReadAchiev ~ 1 + ReadDis + (1|ID)"
    fits = implist.with_(lambda d: pm.lmer(model, d, REML=True))
    ours = pm.pool_estimates(fits, extra_pars=True)
    print(ours)
    theirs = r_table(ref["estimates"])
    both = pd.concat({"pymitml": ours.table, "R mitml": theirs}, axis=1).swaplevel(axis=1)
    cols = ["Estimate", "Std.Error", "FMI"]
    show("Pooled estimates: pymitml beside R (independent imputations)", both[cols])
    z = mc_z(ours.table, 100, theirs, 100)
    show("z of the difference (Monte Carlo error of both runs)", z.to_frame("z"))
    check("introduction pooled estimates max |z|", z.abs().max(), 4.0)
    check("introduction pooled SE max |z|", se_z(ours.table, 100, theirs, 100).abs().max(), 4.0)
    vc = extra_z(fits, ref["extra_pars"], 100)
    show("Variance components and ICC (averaged over imputations, as mitml)", vc)
    check("introduction variance components max |z|", vc["z"].abs().max(), 4.0)

    # --- same completed data through lme4 + mitml (deterministic: fitting precision)
    if r_available():
        from pymitml import bridge

        same = bridge.r_pool_estimates(implist, model, REML=True, extra_pars=True)
        check(
            "introduction same data, pymitml vs lme4+mitml, max relative difference",
            rel_diff(ours.table[cols], same.table[cols] if hasattr(same, "table") else same[cols]),
            1e-5,
        )
    else:
        print("R not available here: the same-data comparison with lme4 + mitml is skipped")
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


if __name__ == "__main__":
    main()
