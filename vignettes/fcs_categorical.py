"""Worked example: ordered and unordered categories by mice's polr and polyreg, in Python.

    python vignettes/fcs_categorical.py

mice's nhanes2 data (25 adults; copied to r_compat/fcs_cat_nhanes2.csv by r_compat/fcs_cat_ref.R)
have missing BMI, hypertension (hyp, a two-level factor) and cholesterol. The R script it
ports::

    imp <- mice(nhanes2, method = c("", "pmm", "polyreg", "pmm"), m = 20, seed = 1)
    fit <- with(imp, lm(chl ~ age + hyp + bmi))
    summary(pool(fit))

Then an ordered factor: the simulated data of r_compat/fcs_cat_sim.csv (800 rows; o ordered
with 4 levels, u unordered with 3, both missing at random), imputed by polr (o) and polyreg (u)
with mice's default predictor matrix. polr / polyreg fit the proportional-odds and multinomial
logit models of MASS::polr and nnet::multinom to the observed rows plus mice's augmented rows
and draw each cell from the fitted probabilities, as mice does (tests/test_fcs_r.py compares
them with mice).
"""

from __future__ import annotations

import pathlib

import pandas as pd
import statsmodels.formula.api as smf

import pymitml as pm

ROOT = pathlib.Path(__file__).resolve().parents[1] / "r_compat"


def nhanes2() -> pd.DataFrame:
    d = pd.read_csv(ROOT / "fcs_cat_nhanes2.csv")
    d["age"] = pd.Categorical(d["age"], ["20-39", "40-59", "60-99"])
    d["hyp"] = pd.Categorical(d["hyp"], ["no", "yes"])
    return d


def simulated() -> pd.DataFrame:
    d = pd.read_csv(ROOT / "fcs_cat_sim.csv")
    d["f"] = pd.Categorical(d["f"], ["lo", "mid", "hi"], ordered=True)
    d["o"] = pd.Categorical(d["o"], list("abcd"), ordered=True)
    d["u"] = pd.Categorical(d["u"], list("pqr"))
    return d


def main() -> None:
    d = nhanes2()
    imp = pm.fcs_impute(d, method={"bmi": "pmm", "hyp": "polyreg", "chl": "pmm"}, m=20, seed=1)
    print(imp)
    fits = imp.complete().with_(lambda x: smf.ols("chl ~ age + hyp + bmi", x).fit())
    print(pm.pool_estimates(fits, df_com=20))  # mice's pool: complete-data df n - 5 = 20

    s = simulated()
    imp = pm.fcs_impute(s, m=20, maxit=10, seed=1)
    print({v: imp.methods[v] for v in ("o", "u")})  # the defaults: polr and polyreg
    miss = s["o"].isna()
    shares = pd.concat(
        [c.loc[miss, "o"].value_counts(normalize=True, sort=False) for c in imp.complete()],
        axis=1,
    ).mean(axis=1)
    print("imputed shares of o:", shares.round(3).to_dict())
    obs = s["o"].value_counts(normalize=True, sort=False)
    print("observed shares of o:", obs.round(3).to_dict())


if __name__ == "__main__":
    main()
