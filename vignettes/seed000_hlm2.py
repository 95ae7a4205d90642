"""Seed 000: HLM2's bivariate growth model with a missing level-2 covariate, in Python.

    python vignettes/seed000_hlm2.py

The seed (HLM's manual) analyses reading and mathematics scores of ECLS-K children (148,470
occasions of 21,210 children) with a bivariate two-level model,

    READING_ti = pi0_i + pi1_i GRADE_ti + e_ti,   MATH_ti = pi2_i + pi3_i GRADE_ti + e_ti,
    pi0_i = b00 + b01 SQRTINC_i + r0_i,           pi2_i = b20 + b21 SQRTINC_i + r2_i,

where the level-2 covariate SQRTINC (square root of family income) is often missing. HLM fits
the joint model of READING, MATH, SQRTINC and the auxiliary PARSCR given the complete GRADE
and BLACK by ML, draws 10 imputations from it and pools the analysis model.

pymitml does the same with the two-level joint model with level-2 targets (pm.jomo_impute,
READING + MATH at level 1, SQRTINC + PARSCR at level 2, all on GRADE and BLACK, random
intercepts correlated across all four: HLM's Tau* and Sigma*). Data are generated to the
seed's design with HLM's imputation-model estimates as the true values, with 4,000 children
(the seed's 21,210 would take longer in CI; SEs scale by about sqrt(21210 / 4000) = 2.3).

Printed: HLM's imputation-model estimates beside pymitml's posterior means (they are the truth
here), the pooled analysis model beside HLM's pooled table (HLM's SEs rescaled to our sample
size) and beside the complete-data fit, and the fraction of missing information. Differences:
HLM fits the two outcomes jointly (one bivariate model); lmer fits them one at a time, which
gives the same fixed effects for complete, balanced designs and nearly the same here; HLM's
imputation draws from the ML estimates ("improper" imputation, no parameter uncertainty), pymitml
from the posterior, so pymitml's between-imputation variance (and FMI) is a little larger.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _agree import check, finish, r_available, rel_diff, show

import pymitml as pm

# HLM's imputation model (the seed's "Imputation Model Results"): our true values
SIGMA = np.array([[384.59710, 212.27386], [212.27386, 218.08554]])
TAU = np.array(
    [
        [219.61749, 162.47932, 18.88858, 89.97725],
        [162.47932, 172.81037, 15.57391, 72.71537],
        [18.88858, 15.57391, 8.49343, 24.58023],
        [89.97725, 72.71537, 24.58023, 271.33135],
    ]
)
FIXED = {  # intercept, BLACK, GRADE
    "READING": (105.186989, -8.957698, 17.364407),
    "MATH": (85.276019, -9.810738, 14.585079),
    "SQRTINC": (7.892670, -2.151829, 0.0),
    "PARSCR": (42.878649, -9.272788, 0.0),
}
# HLM's pooled analysis model (10 imputations): coefficient, SE, df
SEED_POOLED = pd.DataFrame(
    {
        "Estimate": [86.624227, 2.229091, 17.371634, 69.271059, 1.882094, 14.593083],
        "Std.Error": [0.293843, 0.036345, 0.081062, 0.581186, 0.081095, 0.056957],
        "df": [4814, 12, 9, 14, 12, 10],
    },
    index=pd.MultiIndex.from_product(
        [["READING", "MATH"], ["(Intercept)", "SQRTINC", "GRADE"]], names=["outcome", "term"]
    ),
)
N_SEED, N_OURS = 21210, 4000
GRADES = np.array([0.0, 0.5, 1.0, 1.5, 3.0, 5.0, 8.0])  # ECLS-K's seven waves, K to grade 8


def generate(seed: int = 1563333359) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    n, t = N_OURS, GRADES.size
    black = (rng.random(n) < 0.15).astype(float)
    u = rng.multivariate_normal(np.zeros(4), TAU, n)
    l2 = {k: FIXED[k][0] + FIXED[k][1] * black + u[:, i] for i, k in enumerate(FIXED)}
    cid = np.repeat(np.arange(n), t)
    grade = np.tile(GRADES, n)
    e = rng.multivariate_normal(np.zeros(2), SIGMA, cid.size)
    full = pd.DataFrame(
        {
            "CHILDID": cid + 1,
            "GRADE": grade,
            "BLACK": black[cid],
            "READING": l2["READING"][cid] + FIXED["READING"][2] * grade + e[:, 0],
            "MATH": l2["MATH"][cid] + FIXED["MATH"][2] * grade + e[:, 1],
            "SQRTINC": l2["SQRTINC"][cid],
            "PARSCR": l2["PARSCR"][cid],
        }
    )
    inc = full.copy()
    # occasions missed more often later and by black children; income often not reported
    p1 = 1 / (1 + np.exp(-(-2.2 + 0.15 * grade + 0.4 * black[cid])))
    inc.loc[rng.random(cid.size) < p1, "READING"] = np.nan
    inc.loc[rng.random(cid.size) < p1, "MATH"] = np.nan
    miss_inc = rng.random(n) < 1 / (1 + np.exp(-(-0.6 + 0.5 * black)))
    miss_par = rng.random(n) < 0.2
    inc.loc[miss_inc[cid], "SQRTINC"] = np.nan
    inc.loc[miss_par[cid], "PARSCR"] = np.nan
    return full, inc


def analyse(d: pd.DataFrame) -> dict:
    return {
        y: pm.lmer(f"{y} ~ 1 + SQRTINC + GRADE + (1|CHILDID)", d, REML=False)
        for y in ("READING", "MATH")
    }


def main() -> None:
    t0 = time.perf_counter()
    full, inc = generate()
    print(pm.missing_pattern(inc, cluster="CHILDID"))

    fml = ["READING + MATH ~ 1 + GRADE + BLACK + (1|CHILDID)", "SQRTINC + PARSCR ~ 1 + BLACK"]
    imp = pm.jomo_impute(inc, fml, m=10, n_burn=1000, n_iter=100, seed=1563333359, progress=False)
    summ = imp.summary()
    print(summ)
    check("seed000 largest Rhat - 1", float(summ.rhat["Rhat"].max()) - 1, 0.1)

    # the imputation model: pymitml's posterior means beside HLM's ML estimates (= the truth)
    par = {k: np.asarray(v, dtype=float)[..., 0] for k, v in imp.par_imputation.items()}
    rows = []
    for i, y in enumerate(("READING", "MATH")):
        for j, term in enumerate(("(Intercept)", "GRADE", "BLACK")):
            truth = FIXED[y][{0: 0, 1: 2, 2: 1}[j]]
            rows.append((f"{y} {term}", truth, par["beta"][j, i]))
    for i, y in enumerate(("SQRTINC", "PARSCR")):
        for j, term in enumerate(("(Intercept)", "BLACK")):
            rows.append((f"{y} {term}", FIXED[y][j], par["beta2"][j, i]))
    names = ["READING", "MATH", "SQRTINC", "PARSCR"]
    for a in range(4):
        for b in range(a, 4):
            rows.append((f"Tau {names[a]},{names[b]}", TAU[a, b], par["psi"][a, b]))
    for a in range(2):
        for b in range(a, 2):
            rows.append((f"Sigma {names[a]},{names[b]}", SIGMA[a, b], par["sigma"][a, b]))
    idx = [r[0] for r in rows]
    draws = []
    for r in rows:
        name = r[0]
        if name.startswith("Tau"):
            a, b = (names.index(s) for s in name[4:].split(","))
            draws.append(par["psi"][a, b])
        elif name.startswith("Sigma"):
            a, b = (names.index(s) for s in name[6:].split(","))
            draws.append(par["sigma"][a, b])
        else:
            y, term = name.split(" ")
            if y in ("READING", "MATH"):
                draws.append(
                    par["beta"][("(Intercept)", "GRADE", "BLACK").index(term), names.index(y)]
                )
            else:
                draws.append(par["beta2"][("(Intercept)", "BLACK").index(term), names.index(y) - 2])
    post_mean = np.array([d.mean() for d in draws])
    post_sd = np.array([d.std(ddof=1) for d in draws])
    imp_tab = pd.DataFrame(
        {
            "HLM (truth)": [r[1] for r in rows],
            "pymitml posterior mean": post_mean,
            "posterior SD": post_sd,
        },
        index=idx,
    )
    imp_tab["z"] = (imp_tab["pymitml posterior mean"] - imp_tab["HLM (truth)"]) / imp_tab[
        "posterior SD"
    ]
    show("Imputation model: HLM's ML estimates (our truth) beside pymitml's posterior", imp_tab)
    check(
        "seed000 imputation model, max |z| of posterior mean vs truth",
        imp_tab["z"].abs().max(),
        4.0,
    )

    # the analysis model, pooled
    implist = imp.complete()
    fits = {y: implist.with_(lambda d, y=y: analyse_one(d, y)) for y in ("READING", "MATH")}
    pooled = {y: pm.pool_estimates(f) for y, f in fits.items()}
    complete = analyse(full)
    parts = []
    for y in ("READING", "MATH"):
        t = pooled[y].table
        seed = SEED_POOLED.loc[y]
        parts.append(
            pd.DataFrame(
                {
                    "complete data": complete[y].fixef,
                    "pymitml": t["Estimate"],
                    "SE": t["Std.Error"],
                    "df": t["df"],
                    "FMI": t["FMI"],
                    "HLM": seed["Estimate"],
                    "HLM SE (rescaled)": seed["Std.Error"] * np.sqrt(N_SEED / N_OURS),
                    "HLM df": seed["df"],
                }
            ).assign(outcome=y)
        )
    tab = pd.concat(parts).set_index("outcome", append=True).swaplevel()
    show("Pooled analysis model (10 imputations) beside HLM's pooled table", tab)
    z = (tab["pymitml"] - tab["complete data"]) / tab["SE"]
    check("seed000 pooled vs complete-data estimates, max |z|", z.abs().max(), 3.0)
    zh = (tab["pymitml"] - tab["HLM"]) / np.hypot(tab["SE"], tab["HLM SE (rescaled)"])
    show("z of pymitml's pooled estimate vs HLM's (different data, same design)", zh.to_frame("z"))
    check(
        "seed000 pooled estimates vs HLM's, max |z| (sampling error of both)", zh.abs().max(), 4.0
    )
    print(
        "HLM's pooled SQRTINC and GRADE rows have df 9-14 (FMI > 0.5 with 10 imputations from ML\n"
        "estimates); ours have the FMI of our missing rates. HLM's SEs are rescaled by "
        f"sqrt({N_SEED}/{N_OURS})."
    )

    cross_level(inc, full)

    if r_available():
        from pymitml import bridge

        for y in ("READING", "MATH"):
            same = bridge.r_pool_estimates(
                implist, f"{y} ~ 1 + SQRTINC + GRADE + (1|CHILDID)", REML=False
            )
            cols = ["Estimate", "Std.Error"]
            check(
                f"seed000 {y}: same imputations, pymitml vs lme4+mitml (Estimate, SE)",
                rel_diff(pooled[y].table[cols], same.table[cols]),
                1e-5,
            )
    else:
        print("R not available here: the same-data comparison with lme4 + mitml is skipped")
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


SEED_CROSS = pd.DataFrame(  # the seed's cross-level example (robust SEs), 10 imputations
    {
        "Estimate": [84.780324, 2.475539, 15.345154, 0.249093],
        "Std.Error": [0.381040, 0.047462, 0.098909, 0.012099],
        "FMI": [0.282, 0.301, 0.470, 0.483],
    },
    index=["(Intercept)", "SQRTINC", "GRADE", "CPROD1"],
)


def cross_level(inc: pd.DataFrame, full: pd.DataFrame) -> None:
    """The seed's cross-level interaction: CPROD1 = GRADE x SQRTINC (centred) is missing where
    SQRTINC is, so HLM puts it on the left of the imputation model; so does this (a level-1
    target of jomo, "just another variable"). Our data have no interaction (truth 0); the seed's
    0.249 is ECLS-K's."""
    g_mean, s_mean = full["GRADE"].mean(), full["SQRTINC"].mean()

    def cprod(d: pd.DataFrame) -> pd.DataFrame:
        return d.assign(CPROD1=(d["GRADE"] - g_mean) * (d["SQRTINC"] - s_mean))

    fml = ["READING + CPROD1 ~ 1 + GRADE + BLACK + (1|CHILDID)", "SQRTINC + PARSCR ~ 1 + BLACK"]
    imp = pm.jomo_impute(
        cprod(inc.drop(columns="MATH")), fml, m=10, n_burn=1000, n_iter=100, seed=7, progress=False
    )
    model = "READING ~ 1 + SQRTINC + GRADE + CPROD1 + (1|CHILDID)"
    est = pm.pool_estimates(imp.complete().with_(lambda d: pm.lmer(model, d, REML=False)))
    cd = pm.lmer(model, cprod(full), REML=False)
    tab = pd.DataFrame(
        {
            "complete data": cd.fixef,
            "pymitml": est.table["Estimate"],
            "SE": est.table["Std.Error"],
            "FMI": est.table["FMI"],
            "HLM": SEED_CROSS["Estimate"],
            "HLM SE (rescaled)": SEED_CROSS["Std.Error"] * np.sqrt(N_SEED / N_OURS),
            "HLM FMI": SEED_CROSS["FMI"],
        }
    )
    show("Cross-level interaction (CPROD1 imputed as a variable of its own)", tab)
    z = (tab["pymitml"] - tab["complete data"]) / tab["SE"]
    check("seed000 cross-level model, MI vs complete data, max |z|", z.abs().max(), 3.0)
    print(
        "HLM's FMI for CPROD1 (0.48) is high because CPROD1 is missing with SQRTINC; ours too "
        f"({tab.loc['CPROD1', 'FMI']:.2f}).\nHLM's GRADE row (FMI 0.47) shares it through its "
        "model; in ours GRADE is complete and its FMI lower.\nThe seed's CPROD1 of 0.249 is "
        "ECLS-K's; our data have none (complete data: "
        f"{tab.loc['CPROD1', 'complete data']:.3f})."
    )


def analyse_one(d: pd.DataFrame, y: str):
    return pm.lmer(f"{y} ~ 1 + SQRTINC + GRADE + (1|CHILDID)", d, REML=False)


if __name__ == "__main__":
    main()
