"""Seed 001: the Blimp -> R / SPSS / Stata / Mplus workflow of the probsolve growth model.

    python vignettes/seed001_workflow.py [output-folder]

The seed (a Blimp workshop handout) imputes a math problem-solving intervention study, 6,496
observations of 928 students on 7 occasions, with Blimp's random-slope model
(`student ~ probsolve:months efficacy stanmath condition months*condition frlunch`, NIMPS 20),
then analyses the 20 data sets in R (lme4 + mitml::testEstimates), SPSS (MIXED with split
files), Stata (mi estimate: mixed) and Mplus (TYPE = TWOLEVEL RANDOM with TYPE = IMPUTATION), and
reports the pooled growth model

    probsolve = (g0 + u0) + (g1 + u1) months + g2 efficacy + g3 stanmath + g4 condition
                + g5 months x condition + e.

The seed's data are not public, so this script generates data to the seed's design, with the
seed's pooled estimates as the true values: 928 students, 7 monthly waves, condition assigned by
school, stanmath and frlunch per student, efficacy (ordinal 1-6) per occasion; probsolve and
efficacy missing at random (more often for frlunch students and later waves). Then:

1. imputation with the two-level joint model with a random slope for months (pm.pan_impute;
   Blimp's model has the same random slope; Blimp imputes efficacy as ordinal, pan as
   continuous -- that, and the data, are why numbers differ from the seed's);
2. the seed's analysis, pooled (pm.lmer ML + pm.pool_estimates with extra_pars), printed beside
   the seed's R table and the true values;
3. hand-off: the seed's own file layouts -- Blimp's stacked imps.csv (imputation number first,
   no header), a Stata mi flong .dta, an SPSS .sav + .sps and Mplus .dat files + implist + .inp --
   each read back in Python (identical data) and, where R is installed, the seed's R analysis
   script run unchanged on imps.csv and R's haven reading the .dta/.sav (same values).
"""

from __future__ import annotations

import pathlib
import sys
import tempfile
import time

import numpy as np
import pandas as pd
from _agree import IMG, check, finish, r_available, rel_diff, show

import pymitml as pm

# the seed's pooled estimates (R: testEstimates, 20 imputations) = our true values
SEED_R = pd.DataFrame(
    {
        "Estimate": [73.423, 0.677, 0.720, 0.049, -0.406, 0.631],
        "Std.Error": [1.120, 0.090, 0.132, 0.002, 0.520, 0.112],
        "FMI": [0.123, 0.303, 0.501, 0.099, 0.157, 0.255],
    },
    index=["(Intercept)", "months", "efficacy", "stanmath", "condition", "conditionbytime"],
)
SEED_VC = {"u0 var": 18.075, "u1 var": 0.347, "u0,u1 cov": 0.496, "residual var": 62.549}
# the same 20 imputations analysed by each package in the seed (pooled estimate / SE)
SEED_PACKAGES = pd.DataFrame(
    {
        "R est": [73.423, 0.677, 0.720, 0.049, -0.406, 0.631],
        "SPSS est": [73.423899, 0.677472, 0.719974, 0.048831, -0.406429, 0.630883],
        "Stata est": [73.42347, 0.6774599, 0.7202682, 0.0488297, -0.4063836, 0.6308712],
        "Mplus est": [73.424, 0.677, 0.720, 0.049, -0.406, 0.631],
        "R SE": [1.120, 0.090, 0.132, 0.002, 0.520, 0.112],
        "SPSS SE": [1.121607, 0.090082, 0.132043, 0.002053, 0.520246, 0.111729],
        "Stata SE": [1.119879, 0.0900142, 0.1319383, 0.0020493, 0.5195661, 0.111636],
        "Mplus SE": [1.150, 0.088, 0.133, 0.002, 0.518, 0.111],
    },
    index=["(Intercept)", "months", "efficacy", "stanmath", "condition", "conditionbytime"],
)
COLUMNS = [
    "school condition esolpercent student abilitygrp female stanmath frlunch wave months "
    "probsolve efficacy"
][0].split()


def generate(seed: int = 90291) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Complete and incomplete data to the seed's design (truth = the seed's estimates)."""
    rng = np.random.default_rng(seed)
    n_school, n_student, waves = 29, 928, 7
    school_of = np.sort(rng.integers(0, n_school, n_student))
    cond_school = rng.permutation(np.arange(n_school) % 2)
    esol_school = rng.uniform(0, 60, n_school).round(1)
    condition = cond_school[school_of]
    stanmath = rng.normal(500, 90, n_student).round()
    frlunch = (rng.normal(size=n_student) - 0.01 * (stanmath - 500) > 0.3).astype(int)
    female = rng.integers(0, 2, n_student)
    ability = np.digitize(stanmath, [450, 550]) + 1
    g = SEED_R["Estimate"].to_numpy()
    tau = np.array(
        [[SEED_VC["u0 var"], SEED_VC["u0,u1 cov"]], [SEED_VC["u0,u1 cov"], SEED_VC["u1 var"]]]
    )
    u = rng.multivariate_normal([0, 0], tau, n_student)
    eff_student = rng.normal(0, 0.6, n_student)

    sid = np.repeat(np.arange(n_student), waves)
    months = np.tile(np.arange(waves), n_student).astype(float)
    eff = np.clip(np.round(3.5 + eff_student[sid] + rng.normal(0, 1.0, sid.size)), 1, 6)
    mu = (
        g[0]
        + u[sid, 0]
        + (g[1] + u[sid, 1]) * months
        + g[2] * eff
        + g[3] * stanmath[sid]
        + g[4] * condition[sid]
        + g[5] * months * condition[sid]
    )
    probsolve = (mu + rng.normal(0, np.sqrt(SEED_VC["residual var"]), sid.size)).round(2)
    full = pd.DataFrame(
        {
            "school": school_of[sid] + 1,
            "condition": condition[sid],
            "esolpercent": esol_school[school_of][sid],
            "student": sid + 1,
            "abilitygrp": ability[sid],
            "female": female[sid],
            "stanmath": stanmath[sid],
            "frlunch": frlunch[sid],
            "wave": months.astype(int) + 1,
            "months": months,
            "probsolve": probsolve,
            "efficacy": eff,
        }
    )
    inc = full.copy()
    lin = -1.6 + 0.6 * frlunch[sid] + 0.12 * months
    inc.loc[rng.random(sid.size) < 1 / (1 + np.exp(-lin)), "probsolve"] = np.nan
    lin_e = -2.0 + 0.5 * frlunch[sid] + 0.1 * months
    inc.loc[rng.random(sid.size) < 1 / (1 + np.exp(-lin_e)), "efficacy"] = np.nan
    return full, inc


def analyse(d: pd.DataFrame):
    d = d.assign(conditionbytime=d["months"] * d["condition"])
    return pm.lmer(
        "probsolve ~ months + efficacy + stanmath + condition + conditionbytime + (months|student)",
        d,
        REML=False,
    )


SEED_R_SCRIPT = """
impdata <- read.csv(filepath, header = F)
names(impdata) <- c("imputation", "school", "condition",
                  "esolpercent", "student", "abilitygrp", "female", "stanmath",
                  "frlunch", "wave", "months", "probsolve", "efficacy")
impdata$conditionbytime <- impdata$months * impdata$condition
implist <- as.mitml.list(split(impdata, impdata$imputation))
analysis <- with(implist, lmer(probsolve ~ months + efficacy +
                             stanmath + condition + conditionbytime + (months|student), REML = F))
estimates <- testEstimates(analysis, var.comp = T, df.com = NULL)
print(estimates)
est <- estimates$estimates
"""


def main(out: str | None = None) -> None:
    t0 = time.perf_counter()
    folder = pathlib.Path(out or tempfile.mkdtemp(prefix="pymitml_seed001_"))
    folder.mkdir(parents=True, exist_ok=True)
    full, inc = generate()
    print(
        pm.missing_pattern(inc[["probsolve", "efficacy", "months", "student"]], cluster="student")
    )

    # 1. imputation: random slope for months, as Blimp's `probsolve:months`
    fml = (
        "probsolve + efficacy ~ 1 + months + stanmath + condition + I(months*condition) + frlunch"
        " + (1 + months|student)"
    )
    imp = pm.pan_impute(inc, fml, m=20, n_burn=5000, n_iter=250, seed=90291, progress=False)
    summ = imp.summary()
    print(summ)
    # the random-intercept variance of probsolve mixes slowly (Blimp's seed burns 5,000 and
    # thins by 2,500); 5,000 + 20 x 250 iterations take a few seconds here
    worst = summ.rhat.sort_values("Rhat").iloc[-3:]
    print("largest Rhat:\n" + worst[["parameter", "Rhat"]].to_string())
    check("seed001 largest Rhat - 1 (imputation phase, 3 segments)", worst["Rhat"].max() - 1, 0.1)
    imp.plot(IMG, blocks=["psi"], max_params=4, psr=False, prefix="seed001_")
    implist = imp.complete()

    # 2. the seed's analysis, pooled
    fits = implist.with_(analyse)
    ours = pm.pool_estimates(fits, extra_pars=True)
    print(ours)
    truth = SEED_R["Estimate"].copy()
    comp = pd.DataFrame(
        {
            "truth": truth,
            "complete data": analyse(full).fixef,
            "pymitml MI": ours.table["Estimate"],
            "pymitml SE": ours.table["Std.Error"],
            "pymitml FMI": ours.table["FMI"],
            "seed (Blimp+R) est": SEED_R["Estimate"],
            "seed SE": SEED_R["Std.Error"],
            "seed FMI": SEED_R["FMI"],
        }
    )
    show("Pooled growth model: truth, complete data, pymitml's MI, and the seed's numbers", comp)
    print(
        "Our data are generated to the seed's design with the seed's estimates as the truth, not "
        "the seed's data:\nestimates differ from the seed's by sampling error, SEs and FMIs by "
        "the design details we had to guess\n(stanmath's spread, missing rates) and by the "
        "imputation model (pan: efficacy continuous; Blimp: ordinal)."
    )
    z = (ours.table["Estimate"] - truth) / ours.table["Std.Error"]
    show("z = (pymitml MI - truth) / pooled SE", z.to_frame("z"))
    check("seed001 pooled estimates vs truth, max |z|", z.abs().max(), 4.0)
    zc = (ours.table["Estimate"] - comp["complete data"]) / ours.table["Std.Error"]
    check("seed001 pooled estimates vs complete-data fit, max |z|", zc.abs().max(), 3.0)
    se_ratio = ours.table["Std.Error"] / SEED_R["Std.Error"]
    show("pooled SE, pymitml / seed (same design, other data)", se_ratio.to_frame("ratio"))
    check(
        "seed001 SE ratio to the seed's, max |log ratio|", np.log(se_ratio).abs().max(), np.log(2)
    )
    vc = ours.extra
    vc_full = analyse(full).extra_pars
    print("\nvariance components (pymitml MI | complete data | seed = truth):")
    for (name, val), (sname, sval) in zip(vc.iloc[:4, 0].items(), SEED_VC.items(), strict=True):
        print(f"  {name:<28} {float(val):9.3f} | {vc_full[name]:9.3f} | {sname:<14} {sval:9.3f}")

    show(
        "The seed: one set of imputations, four packages (Mplus's SEs differ: its own ML "
        "estimator and pooling)",
        SEED_PACKAGES,
    )
    spread = SEED_PACKAGES.filter(like="est").max(axis=1) - SEED_PACKAGES.filter(like="est").min(
        axis=1
    )
    print(
        "largest spread between the seed's packages, in SEs: "
        f"{float((spread / SEED_PACKAGES['R SE']).max()):.3f}; pymitml reproduces R's (and so "
        "SPSS's and Stata's) pooling on the same files exactly (below)"
    )

    # 3. hand-off in the seed's layouts
    imps_csv = folder / "imps.csv"
    implist.to_blimp(imps_csv, overwrite=True)
    text = imps_csv.read_text().splitlines()
    print(f"\nBlimp stacked file {imps_csv.name}: {len(text)} lines, first: {text[0][:70]}")
    files = {
        "Stata": implist.to_stata(folder / "imps.dta", overwrite=True),
        "SPSS": implist.to_spss(folder / "imps.sav", overwrite=True),
        "Mplus": implist.to_mplus(
            # Mplus holds 8 characters (the seed's output prints PROBSOLV): made-up names,
            # the mapping is printed and stored for read_mplus
            folder / "imp",
            cluster="student",
            names="map",
            overwrite=True,
        ),
    }
    for prog, f in files.items():
        names = ", ".join(pathlib.Path(p).name for p in (f if isinstance(f, list) else [f])[:6])
        print(f"{prog:>6}: {names}")
    inp = folder / "imp.inp"
    if inp.exists():
        print("Mplus input template (the seed's Ex8.3 MODEL goes below it):")
        print("   " + "\n   ".join(inp.read_text().splitlines()[:12]))
    back = {
        "Blimp": pm.read_blimp(imps_csv),
        "Stata": pm.read_stata(folder / "imps.dta"),
        "SPSS": pm.read_spss(folder / "imps.sav"),
        "Mplus": pm.read_mplus(folder / "implist.dat"),
    }
    for prog, lst in back.items():
        worst = max(
            rel_diff(a[COLUMNS].to_numpy(float), b[COLUMNS].to_numpy(float))
            for a, b in zip(lst, implist, strict=True)
        )
        print(
            f"read back from {prog:>5}: {len(lst)} data sets, max relative difference {worst:.1e}"
        )
        check(f"seed001 {prog} file read back in Python, max relative difference", worst, 0.0)

    if r_available():
        from pymitml import bridge

        # the seed's R script, unchanged, on our imps.csv
        plain = folder / "imps_plain.csv"
        stacked = pd.concat([d[COLUMNS].assign(imputation=i + 1) for i, d in enumerate(implist)])[
            ["imputation", *COLUMNS]
        ]
        stacked.to_csv(plain, header=False, index=False)
        est = bridge.r_run(
            "suppressPackageStartupMessages({library(mitml); library(lme4)})\n"
            f"filepath <- '{plain}'\n" + SEED_R_SCRIPT + "as.data.frame(est)"
        )
        r_est = pd.DataFrame(est)
        r_est.index = ours.table.index
        cols = ["Estimate", "Std.Error", "df", "RIV", "FMI"]
        show("The seed's R script on the same data (lme4 + mitml)", r_est[cols])
        # lme4 stops its optimiser earlier than pymitml (it warns on the raw stanmath scale):
        # per fit the estimates differ by ~1e-6; RIV, df and FMI are built from B, the small
        # spread between imputations, which turns those into ~1e-4
        for group, tol in ((["Estimate", "Std.Error"], 2e-5), (["df", "RIV", "FMI"], 1e-3)):
            check(
                f"seed001 seed's R script vs pymitml, same imputations, {'/'.join(group)}",
                rel_diff(ours.table[group], r_est[group].to_numpy(float)),
                tol,
            )
        for prog, path, reader in (
            ("Stata", folder / "imps.dta", "haven::read_dta"),
            ("SPSS", folder / "imps.sav", "haven::read_sav"),
        ):
            r_df = pd.DataFrame(
                bridge.r_run(f"as.data.frame(haven::zap_labels({reader}('{path}')))")
            )
            mcol = "_mi_m" if prog == "Stata" else "Imputation_"
            r_df = r_df[r_df[mcol] > 0]
            ours_st = pd.concat([d[COLUMNS] for d in implist]).to_numpy(float)
            diff = rel_diff(r_df[COLUMNS].to_numpy(float), ours_st)
            print(
                f"R haven reads the {prog} file: {len(r_df)} rows, max relative difference {diff:.1e}"
            )
            check(f"seed001 {prog} file read by R haven, max relative difference", diff, 1e-12)
    else:
        print("R not available here: the seed's R script and haven's reading are skipped")
    print(f"\nfiles are in {folder}\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
