"""Seed 003: Stat-JR's 2LevelImpute super-template example (tutmiss), in Python and R.

    python vignettes/seed003_statjr.py            # reads r_compat/vignette_statjr_data.csv
    python vignettes/seed003_statjr.py --write-data   # regenerates that file (then rerun the R)

The seed (Stat-JR's documentation) imputes `tutmiss`, the MLwiN tutorial data on 4,059 pupils
in 65 schools with values deleted at random from four variables (about 10% each), with a joint
latent-normal model: at level 1 normexam (normal), standlrt (normal, with the verbal-reasoning
band vrband as predictor), girl (binary, probit); at level 2 the school gender schgend
(unordered, 3 categories: mixed, boys', girls'). Its model of interest is

    normexam ~ cons + standlrt + girl + schgend + (1 | school),

pooled by Rubin's rules (ResultsTable:Imputation) and beside a complete-case fit
(ResultsTable:CompleteCases). The seed reports no numbers, so the comparison here is with the
truth of generated data (the tutorial data's published fit), the complete data before
deletion, the complete-case fit, and R's jomoImpute on the same incomplete data
(r_compat/vignette_statjr.R, committed JSON): pymitml's jomo_impute and jomoImpute fit the same
model, so their pooled estimates must agree within Monte Carlo error.

Differences from Stat-JR: jomo gives every level-1 target the same predictors (vrband enters the
models of normexam and girl too; Stat-JR gives it to standlrt only); Stat-JR uses m = 4 and
1,000 + 50-iteration gaps -- we keep the gaps but use m = 20 so that the comparison with R is
sharp. Girls' and boys' schools hold only girls or boys; a joint normal model knows only
correlations, so this is near-separation for the latent normal of girl: its school variance is
large (glmer's probit ML fit of girl alone: about 5). pymitml draws exact truncated normals and
gets close to that, so almost no imputed pupil in a single-sex school gets the other sex;
jomoImpute keeps its latents inside (-3, 4), which shrinks that variance (to about 1.2) and gives
about 6% of them the other sex. pm.jomo_impute(..., latent_bounds="jomo") reproduces jomo's
numbers (checked below). The model of interest is hardly affected either way.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import pandas as pd
from _agree import ROOT, check, finish, mc_z, r_json, r_table, se_z, show

import pymitml as pm

DATA = ROOT / "r_compat" / "vignette_statjr_data.csv"
TRUTH = pd.Series(  # the tutorial data's 2-level fit (MLwiN user's guide), our true values
    {
        "(Intercept)": -0.10,
        "standlrt": 0.56,
        "girl1": 0.17,
        "schgendboys": 0.18,
        "schgendgirls": 0.17,
    }
)
MOI = "normexam ~ 1 + standlrt + girl + schgend + (1|school)"


def generate(seed: int = 2013) -> pd.DataFrame:
    """Complete data to tutmiss's design (columns as the seed's table), then the deletions."""
    rng = np.random.default_rng(seed)
    n_school = 65
    size = rng.multinomial(4059 - 2 * n_school, np.ones(n_school) / n_school) + 2
    gender = rng.choice(3, n_school, p=[0.6, 0.15, 0.25])  # 0 mixed, 1 boys, 2 girls
    u = rng.normal(0, np.sqrt(0.086), n_school)
    sch = np.repeat(np.arange(n_school), size)
    n = sch.size
    girl = np.where(gender[sch] == 1, 0, np.where(gender[sch] == 2, 1, rng.integers(0, 2, n)))
    avs = rng.normal(0, 0.3, n_school)
    standlrt = avs[sch] + rng.normal(0, 0.95, n)
    vr = np.digitize(standlrt + rng.normal(0, 0.6, n), np.quantile(standlrt, [0.25, 0.75]))
    vrband = 3 - vr  # 1 = top 25%, 3 = bottom 25% (as the seed's table)
    mu = (
        TRUTH["(Intercept)"]
        + TRUTH["standlrt"] * standlrt
        + TRUTH["girl1"] * girl
        + TRUTH["schgendboys"] * (gender[sch] == 1)
        + TRUTH["schgendgirls"] * (gender[sch] == 2)
        + u[sch]
    )
    df = pd.DataFrame(
        {
            "school": sch + 1,
            "student": np.concatenate([np.arange(1, k + 1) for k in size]),
            "normexam": (mu + rng.normal(0, np.sqrt(0.562), n)).round(6),
            "standlrt": standlrt.round(6),
            "girl": girl,
            "schgend": gender[sch],
            "vrband": vrband,
        }
    )
    # deletions "randomly introduced" as tutmiss: ~10% of pupils, ~10% of schools' schgend
    for col, k in (("standlrt", 400), ("girl", 435)):
        df[col + "miss"] = df[col].astype(float)
        df.loc[rng.choice(n, k, replace=False), col + "miss"] = np.nan
    gone = rng.choice(n_school, 7, replace=False) + 1
    df["schgendmiss"] = df["schgend"].astype(float).where(~df["school"].isin(gone))
    return df


def as_model_data(df: pd.DataFrame, suffix: str) -> pd.DataFrame:
    """The analysis columns, girl / schgend / vrband as factors (R's levels and names)."""
    out = pd.DataFrame(
        {
            "school": df["school"],
            "normexam": df["normexam"],
            "standlrt": df["standlrt" + suffix],
            "girl": pd.Categorical(
                df["girl" + suffix].map({0: "0", 1: "1"}), categories=["0", "1"]
            ),
            "schgend": pd.Categorical(
                df["schgend" + suffix].map({0: "mixed", 1: "boys", 2: "girls"}),
                categories=["mixed", "boys", "girls"],
            ),
            "vrband": pd.Categorical(df["vrband"].astype(str), categories=["1", "2", "3"]),
        }
    )
    return out


def main() -> None:
    if "--write-data" in sys.argv:
        generate().to_csv(DATA, index=False)
        print(f"wrote {DATA}; now run Rscript r_compat/vignette_statjr.R")
        return
    t0 = time.perf_counter()
    raw = pd.read_csv(DATA)
    check(
        "seed003 committed data equal the generator's, max |difference|",
        float(np.nanmax(np.abs(raw.to_numpy(float) - generate().to_numpy(float)))),
        1e-6,
    )
    full = as_model_data(raw, "")
    inc = as_model_data(raw, "miss")
    print(pm.missing_pattern(inc, cluster="school"))

    fml = ["normexam + standlrt + girl ~ 1 + vrband + (1|school)", "schgend ~ 1"]
    imp = pm.jomo_impute(inc, fml, m=20, n_burn=1000, n_iter=50, seed=4, progress=False)
    summ = imp.summary()
    print(summ)
    implist = imp.complete()
    fits = implist.with_(lambda d: pm.lmer(MOI, d, REML=False))
    ours = pm.pool_estimates(fits, extra_pars=True)
    print(ours)

    ref = r_json("vignette_statjr_ref.json")
    theirs = r_table(ref["estimates"])
    cc = pm.lmer(MOI, inc.dropna(), REML=False)
    comp = pd.DataFrame(
        {
            "truth": TRUTH,
            "complete data": pm.lmer(MOI, full, REML=False).fixef,
            "complete cases": cc.fixef,
            "cc SE": np.sqrt(np.diag(cc.vcov)),
            "pymitml MI": ours.table["Estimate"],
            "MI SE": ours.table["Std.Error"],
            "MI FMI": ours.table["FMI"],
            "R jomo MI": theirs["Estimate"],
            "R SE": theirs["Std.Error"],
            "R FMI": theirs["FMI"],
        }
    )
    show("Model of interest: truth, complete data, complete cases, MI (pymitml, R jomo)", comp)
    print(f"complete cases: {len(inc.dropna())} of {len(inc)} pupils")
    z = (ours.table["Estimate"] - comp["complete data"]) / ours.table["Std.Error"]
    check("seed003 MI vs complete-data estimates, max |z| (pooled SE)", z.abs().max(), 3.0)
    zr = mc_z(ours.table, 20, theirs, ref["m"])
    show("pymitml vs R's jomoImpute, z of the difference (Monte Carlo error)", zr.to_frame("z"))
    check("seed003 pymitml vs R jomo pooled estimates, max |z|", zr.abs().max(), 4.0)
    check(
        "seed003 pymitml vs R jomo pooled SEs, max |z|",
        se_z(ours.table, 20, theirs, ref["m"]).abs().max(),
        4.0,
    )
    ratio = ours.table["Std.Error"] / comp["cc SE"]
    show(
        "SE of MI relative to complete cases (the seed: complete-case SEs tend to be larger)",
        ratio.to_frame("MI/CC"),
    )

    # the limit of the joint model: imputed sex in single-sex schools
    def other_sex(result) -> float:
        """Share of imputed pupils in (truly and imputed) single-sex schools given the other sex."""
        single = inc["girl"].isna() & full["schgend"].isin(["boys", "girls"])
        return float(
            np.mean(
                [
                    ((d["girl"] == "1") != (d["schgend"] == "girls"))[
                        single & (d["schgend"] != "mixed")
                    ].mean()
                    for d in result.complete()
                ]
            )
        )

    wrong = other_sex(imp)
    single = inc["girl"].isna() & full["schgend"].isin(["boys", "girls"])
    print(
        f"\nimputed sex in single-sex schools: {100 * wrong:.1f}% of the {int(single.sum())} imputed "
        f"pupils there get the other sex (R jomo: {100 * ref['wrong_sex']:.1f}%)"
    )

    # why the share differs: jomo keeps its latent normals inside (-3, 4) (its rejection
    # sampler), which pulls the latent scale of girl, with its near-separated single-sex
    # schools, towards 0; pymitml draws the exact truncated normals. With latent_bounds="jomo"
    # pymitml reproduces jomoImpute. The ML fit of girl's probit random-intercept model alone
    # (glmer, 10-point AGQ, in the R script) is the reference for the exact model.
    gl = ref["girl_latent"]
    imp_j = pm.jomo_impute(
        inc, fml, m=20, n_burn=1000, n_iter=50, seed=4, progress=False, latent_bounds="jomo"
    )
    rows = {}
    for label, res in (("pymitml exact", imp), ('pymitml latent_bounds="jomo"', imp_j)):
        psi = np.asarray(res.par_imputation["psi"], dtype=float)[2, 2, :, 0]
        beta = np.asarray(res.par_imputation["beta"], dtype=float)[0, 2, :, 0]
        rows[label] = {
            "girl latent: random-intercept variance": psi.mean(),
            "MCSE var": float(pm.mcse(psi, batch_size=psi.size // 20)),
            "girl latent: intercept": beta.mean(),
            "MCSE int": float(pm.mcse(beta, batch_size=beta.size // 20)),
        }
    rows["R jomoImpute"] = {
        "girl latent: random-intercept variance": gl["psi"],
        "MCSE var": gl["psi_mcse"],
        "girl latent: intercept": gl["beta"],
        "MCSE int": gl["beta_mcse"],
    }
    rows["glmer probit ML (girl alone)"] = {
        "girl latent: random-intercept variance": gl["glmer_var"],
        "girl latent: intercept": gl["glmer_intercept"],
    }
    lat = pd.DataFrame(rows).T
    print(
        f'imputed pupils of single-sex schools given the other sex, latent_bounds="jomo": {100 * other_sex(imp_j):.1f}%'
    )
    show("The latent normal of girl: exact vs jomo's bounded latents", lat)
    jb, rr = lat.loc['pymitml latent_bounds="jomo"'], lat.loc["R jomoImpute"]
    for col, se in (
        ("girl latent: random-intercept variance", "MCSE var"),
        ("girl latent: intercept", "MCSE int"),
    ):
        zj = (jb[col] - rr[col]) / np.hypot(jb[se], rr[se])
        check(f"seed003 latent_bounds='jomo' vs R jomo, {col}, |z|", zj, 4.0)
    ex = lat.loc["pymitml exact", "girl latent: random-intercept variance"]
    check(
        "seed003 exact latent variance within 50% of glmer's ML (R's bounded jomo: "
        f"{gl['psi'] / gl['glmer_var'] - 1:+.0%})",
        np.log(ex / gl["glmer_var"]),
        np.log(1.5),
    )
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


if __name__ == "__main__":
    main()
