"""Seed 004: WinMICE's multilevel chained-equations examples (IMPS 2005), in Python.

    python vignettes/seed004_winmice.py

The seed (Jacobusse's WinMICE talk) shows three simulation examples with 600 children in
classes and their final grade:

A. grade ~ teacher skills (class level) + random class intercept, 40% of grades missing;
   100 data sets imputed by a multilevel model and by single-level linear regression. Seed's
   findings: B0 and B1 unbiased both ways; single-level imputation gives too much child-level
   variance S and far too little class-level variance D0; multilevel imputation recovers all four.
B. gender and teacher relation added at the child level; 40% missing in relation and in grade,
   more often for boys (MAR on gender); seed: complete-case means of grade and relation are
   biased (upwards), the multilevel FCS means are not.
C. a random slope of gender whose size depends on teacher skills (cross-level interaction B3),
   40% of grades missing, 25 imputations of one data set; seed: pooled B3, D0, D1 near the
   complete-data values and the pooled interval for B3 covers the complete-data value; D01 is
   0 in truth and a little above 0 in the estimates (variances cannot be negative).

Here: pm.fcs_impute with mice's 2l.pan (WinMICE's multilevel linear model) against "norm"
(single-level Bayesian linear regression), pm.lmer for the analyses, pm.pool_estimates and
pm.pool_variance_components. Replications are fewer than the seed's 100 (40) to keep CI short;
Monte Carlo SEs of the averages are printed and used in the checks.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
from _agree import IMG, check, finish, show

import pymitml as pm

N_CLASS, N_CHILD = 30, 20
REPS = 40
TRUE_A = {"B0": 6.0, "B1": 0.5, "D0": 0.5, "S": 1.0}


def data_a(rng) -> pd.DataFrame:
    skills = rng.normal(0, 1, N_CLASS)
    u = rng.normal(0, np.sqrt(TRUE_A["D0"]), N_CLASS)
    cls = np.repeat(np.arange(N_CLASS), N_CHILD)
    grade = TRUE_A["B0"] + TRUE_A["B1"] * skills[cls] + u[cls]
    grade = grade + rng.normal(0, np.sqrt(TRUE_A["S"]), cls.size)
    return pd.DataFrame({"cls": cls + 1, "skills": skills[cls], "grade": grade})


def mar(rng, df: pd.DataFrame, col: str, rate: float, boys_factor: float = 1.0) -> pd.DataFrame:
    df = df.copy()
    p = np.full(len(df), rate)
    if "boy" in df:
        p = np.where(df["boy"] == 1, rate * boys_factor, rate * (2 - boys_factor))
    df.loc[rng.random(len(df)) < p, col] = np.nan
    return df


def vc_fit(d: pd.DataFrame, formula: str):
    f = pm.lmer(formula, d, REML=True)
    return f


def study_a(rng) -> pd.DataFrame:
    rows = []
    for _ in range(REPS):
        inc = mar(rng, data_a(rng), "grade", 0.4)
        for label, method in (
            ("multilevel (2l.pan)", "2l.pan"),
            ("linear regression (norm)", "norm"),
        ):
            imp = pm.fcs_impute(
                inc,
                cluster="cls" if method.startswith("2l") else None,
                method={"grade": method},
                predictor_matrix=None if method.startswith("2l") else _no_cluster(inc),
                m=5,
                maxit=1,
                seed=int(rng.integers(2**31)),
                progress=False,
            )
            fits = imp.complete().with_(lambda d: vc_fit(d, "grade ~ skills + (1|cls)"))
            est = pm.pool_estimates(fits, extra_pars=True)
            ex = est.extra.iloc[:, 0]
            rows.append(
                {
                    "method": label,
                    "B0": est.table.loc["(Intercept)", "Estimate"],
                    "B1": est.table.loc["skills", "Estimate"],
                    "D0": ex["Intercept~~Intercept|cls"],
                    "S": ex["Residual~~Residual"],
                }
            )
    return pd.DataFrame(rows)


def _no_cluster(df: pd.DataFrame) -> pd.DataFrame:
    """Single-level imputation: the class id is not a predictor at all."""
    p = pm.make_predictor_matrix(df)
    p.loc[:, "cls"] = 0
    p.loc["cls", :] = 0
    return p


def data_b(rng) -> pd.DataFrame:
    skills = rng.normal(0, 1, N_CLASS)
    u = rng.normal(0, np.sqrt(0.5), N_CLASS)
    v = rng.normal(0, np.sqrt(0.2), N_CLASS)  # class part of the teacher relation
    cls = np.repeat(np.arange(N_CLASS), N_CHILD)
    boy = rng.integers(0, 2, cls.size)
    relation = 3.0 - 0.6 * boy + v[cls] + rng.normal(0, 0.8, cls.size)
    grade = (
        5.0 + 0.5 * skills[cls] - 0.8 * boy + 0.4 * relation + u[cls] + rng.normal(0, 1, cls.size)
    )
    return pd.DataFrame(
        {"cls": cls + 1, "skills": skills[cls], "boy": boy, "relation": relation, "grade": grade}
    )


def study_b(rng) -> pd.DataFrame:
    rows = []
    for _ in range(REPS):
        full = data_b(rng)
        inc = mar(rng, mar(rng, full, "grade", 0.4, 1.6), "relation", 0.4, 1.6)
        # level-1 predictors with their class means (mice's code 3): without the means the
        # between-class part of grade would be forced onto relation's within-class slope
        pred = pm.make_predictor_matrix(inc, cluster="cls")
        pred.loc["grade", "relation"] = 3
        pred.loc["relation", "grade"] = 3
        imp = pm.fcs_impute(
            inc,
            cluster="cls",
            method={"grade": "2l.pan", "relation": "2l.pan"},
            predictor_matrix=pred,
            m=5,
            maxit=10,
            seed=int(rng.integers(2**31)),
            progress=False,
        )
        means = np.mean([[d["grade"].mean(), d["relation"].mean()] for d in imp.complete()], axis=0)
        rows.append(
            {
                "grade, complete data": full["grade"].mean(),
                "grade, complete cases": inc.dropna()["grade"].mean(),
                "grade, multilevel FCS": means[0],
                "relation, complete data": full["relation"].mean(),
                "relation, complete cases": inc.dropna()["relation"].mean(),
                "relation, multilevel FCS": means[1],
            }
        )
    return pd.DataFrame(rows)


def study_c(rng, m: int = 25):
    n_class, n_child = 50, 12  # 600 children
    skills = rng.normal(0, 1, n_class)
    u0 = rng.normal(0, np.sqrt(0.5), n_class)
    u1 = rng.normal(0, np.sqrt(0.3), n_class)  # no covariance in the truth (D01 = 0)
    cls = np.repeat(np.arange(n_class), n_child)
    boy = rng.integers(0, 2, cls.size)
    relation = 3.0 + rng.normal(0, 0.8, cls.size)
    grade = (
        5.0
        + 0.5 * skills[cls]
        + u0[cls]
        + (-0.8 + 0.4 * skills[cls] + u1[cls]) * boy
        + 0.4 * relation
        + rng.normal(0, 1, cls.size)
    )
    full = pd.DataFrame(
        {"cls": cls + 1, "skills": skills[cls], "boy": boy, "relation": relation, "grade": grade}
    )
    inc = mar(rng, full, "grade", 0.4)
    # the cross-level interaction enters the imputation model as a column (boy is complete),
    # gender with a random slope (mice's code 2)
    inc = inc.assign(boy_skills=inc["boy"] * inc["skills"])
    pred = pm.make_predictor_matrix(inc, cluster="cls")
    pred.loc["grade", "boy"] = 2
    imp = pm.fcs_impute(
        inc,
        cluster="cls",
        method={"grade": "2l.pan"},
        predictor_matrix=pred,
        m=m,
        maxit=10,
        seed=int(rng.integers(2**31)),
        progress=False,
    )
    model = "grade ~ skills + boy + relation + boy:skills + (1 + boy|cls)"
    fits = imp.complete().with_(lambda d: pm.lmer(model, d, REML=True))
    cd = pm.lmer(model, full, REML=True)
    return imp, fits, cd


def main() -> None:
    t0 = time.perf_counter()
    rng = np.random.default_rng(2005)

    # --- A: the simple multilevel model, multilevel vs single-level imputation
    a = study_a(rng)
    summ = a.groupby("method").agg(["mean", "sem"])
    rows = []
    for method in summ.index:
        for p, truth in TRUE_A.items():
            m_, se = summ.loc[method, (p, "mean")], summ.loc[method, (p, "sem")]
            rows.append((method, p, truth, m_, se, (m_ - truth) / se))
    tab_a = pd.DataFrame(
        rows, columns=["method", "parameter", "truth", "mean estimate", "MCSE", "z"]
    )
    show(
        f"A. {REPS} data sets, 40% of grades missing: average estimates after imputation",
        tab_a.set_index(["method", "parameter"]),
    )
    ml = tab_a[tab_a["method"].str.startswith("multilevel")]
    check(
        "seed004 A multilevel imputation: max |z| of average vs truth (B0, B1, D0, S)",
        ml["z"].abs().max(),
        4.0,
    )
    sl = tab_a[tab_a["method"].str.startswith("linear")].set_index("parameter")
    check(
        "seed004 A single-level imputation, B0/B1 unbiased: max |z|",
        sl.loc[["B0", "B1"], "z"].abs().max(),
        4.0,
    )
    print(
        "seed: single-level imputation puts all variance at the child level; here D0 is "
        f"{sl.loc['D0', 'mean estimate']:.3f} (truth {TRUE_A['D0']}), S {sl.loc['S', 'mean estimate']:.3f} "
        f"(truth {TRUE_A['S']})"
    )
    check(
        "seed004 A single-level D0 below truth by > 4 MCSE (0 = reproduced)",
        float(sl.loc["D0", "z"] > -4),
        0,
    )
    check(
        "seed004 A single-level S above truth by > 4 MCSE (0 = reproduced)",
        float(sl.loc["S", "z"] < 4),
        0,
    )

    # --- B: two incomplete variables, missingness depends on gender
    b = study_b(rng)
    mb = pd.DataFrame({"mean": b.mean(), "MCSE": b.sem()})
    show(f"B. {REPS} data sets, 40% missing in grade and relation (more for boys): means", mb)
    for v in ("grade", "relation"):
        diff = b[f"{v}, multilevel FCS"] - b[f"{v}, complete data"]
        check(
            f"seed004 B {v}: FCS mean minus complete-data mean, |z|", diff.mean() / diff.sem(), 4.0
        )
        cc = b[f"{v}, complete cases"] - b[f"{v}, complete data"]
        print(
            f"  {v}: complete cases biased by {cc.mean():+.3f} (MCSE {cc.sem():.3f}); FCS by {diff.mean():+.3f}"
        )
        check(
            f"seed004 B {v}: complete-case mean biased upwards by > 4 MCSE (0 = reproduced)",
            float(cc.mean() / cc.sem() < 4),
            0,
        )

    # --- C: random slope with a cross-level interaction, 25 imputations of one data set
    imp, fits, cd = study_c(rng)
    est = pm.pool_estimates(fits)
    # a singular fit (D01 at the boundary) has no finite log-SD / Fisher-z: left out, reported
    vc = pm.pool_variance_components(fits, on_failure="drop_warned")
    print(est)
    print(vc)
    lo, hi = est.confint().loc["skills:boy" if "skills:boy" in est.table.index else "boy:skills"]
    b3 = "skills:boy" if "skills:boy" in est.table.index else "boy:skills"
    cd_b3 = cd.fixef[b3]
    print(
        f"\nC. B3 (cross-level interaction): pooled {est.table.loc[b3, 'Estimate']:.3f} [{lo:.3f}, {hi:.3f}], complete data {cd_b3:.3f}"
    )
    check(
        "seed004 C pooled 95% interval for B3 covers the complete-data value (0 = yes)",
        float(not lo <= cd_b3 <= hi),
        0,
    )
    z = (est.table["Estimate"] - cd.fixef) / est.table["Std.Error"]
    check("seed004 C pooled fixed effects vs complete data, max |z|", z.abs().max(), 3.0)
    cd_vc = cd.extra_pars
    per = pd.DataFrame([f.extra_pars for f in fits])
    comp = pd.DataFrame(
        {"complete data": cd_vc, "mean of 25 imputations": per.mean(), "SD": per.std()}
    )
    show("C. variance components: D0, D1, D01 and S", comp)
    # one data set is one draw: D0 here sits below its complete-data value by about 3 SD of the
    # imputations. Over more data sets the averages agree (as the seed's D0 plot shows)
    more = []
    for _ in range(8):
        _, f8, cd8 = study_c(rng, m=10)
        mi = pd.DataFrame([f.extra_pars for f in f8]).mean()
        more.append(mi - cd8.extra_pars)
    more = pd.DataFrame(more).iloc[:, :4]
    zz = more.mean() / more.sem()
    show(
        "C over 8 more data sets: mean of (MI - complete data) per variance component",
        pd.DataFrame({"mean difference": more.mean(), "MCSE": more.sem(), "z": zz}),
    )
    check(
        "seed004 C variance components over 8 data sets, max |z| of MI - complete data",
        zz.abs().max(),
        4.0,
    )
    ax = per.iloc[:, :3].plot.box(figsize=(6, 3), title="C: 25 imputations vs complete data (x)")
    for i, name in enumerate(per.columns[:3]):
        ax.plot(i + 1, cd_vc[name], "rx", markersize=10)
    ax.figure.tight_layout()
    ax.figure.savefig(IMG / "seed004_variance_components.png", dpi=80)
    print(f"\nruntime {time.perf_counter() - t0:.1f} s")
    finish()


if __name__ == "__main__":
    main()
