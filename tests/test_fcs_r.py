"""fcs_impute against R's mice (stored references of r_compat/fcs_ref.R and fcs_ref_l2.R,
made with many imputations): pooled lmer estimates (fixed effects, random-intercept SD, residual SD) and the
mean and variance of every variable's imputed cells agree within Monte Carlo error (both
sides' standard errors over imputations)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm

ROOT = Path(__file__).resolve().parents[1] / "r_compat"
REF = json.loads((ROOT / "fcs_ref.json").read_text())
REF_L2 = json.loads((ROOT / "fcs_ref_l2.json").read_text())
REF["runs"] |= REF_L2["runs"]
assert REF_L2["maxit"] == REF["maxit"]
#: z-score bound on |R - pymitml| / sqrt(se_R^2 + se_py^2) for every compared quantity
Z_MAX = 4.0
#: imputations on the Python side
M_PY = 20

RUNS = {
    "brandsma_pan": ("fcs_brandsma.csv", "sch", "lpo ~ iqv + ses + ssi + (1|sch)"),
    "brandsma_norm": ("fcs_brandsma.csv", "sch", "lpo ~ iqv + ses + ssi + (1|sch)"),
    "sim_2l": ("fcs_sim.csv", "g", "y ~ x + b + w + (1|g)"),
    "sim_1l": ("fcs_sim.csv", None, "y ~ x + b + w + (1|g)"),
    "sim_1l_pmm": ("fcs_sim.csv", None, "y ~ x + b + w + (1|g)"),
    "sim_2lonly": ("fcs_sim_l2.csv", "g", "y ~ x + b + w + w2 + (1|g)"),
}


def _quantities(per: list[dict]) -> dict[str, np.ndarray]:
    out: dict[str, list] = {}
    for p in per:
        row = {f"fixef:{k}": v for k, v in p["fixef"].items()}
        row |= {"sd_int": p["sd_int"], "sigma": p["sigma"]}
        row |= {f"mean:{k}": v for k, v in p["imp_mean"].items()}
        row |= {f"var:{k}": v for k, v in p["imp_var"].items()}
        for k, v in row.items():
            out.setdefault(k, []).append(v)
    return {k: np.asarray(v, dtype=float) for k, v in out.items()}


def _python_run(name: str, m: int, seed: int) -> list[dict]:
    csv, cluster, formula = RUNS[name]
    run = REF["runs"][name]
    df = pd.read_csv(ROOT / csv)
    names = list(df.columns)
    pred = pd.DataFrame(np.asarray(run["pred"], dtype=np.int64), index=names, columns=names)
    if cluster is None:
        pred = pred.replace(-2, 0)
    method = {k: v for k, v in run["method"].items() if k != cluster}
    imp = pm.fcs_impute(
        df,
        cluster=cluster,
        method=method,
        predictor_matrix=pred,
        m=m,
        maxit=int(REF["maxit"]),
        seed=seed,
    )
    per = []
    targets = [v for v in names if method.get(v)]
    for d in imp.complete():
        fit = pm.lmer(formula, d, REML=True)
        vc = fit.varcorr  # lme4's as.data.frame(VarCorr(fit)) layout
        cells = {v: d[v].to_numpy()[df[v].isna().to_numpy()] for v in targets}
        per.append(
            {
                "fixef": dict(zip(fit.fixef.index, fit.fixef.to_numpy())),
                "sd_int": float(vc[vc["grp"] != "Residual"]["sdcor"].iloc[0]),
                "sigma": float(fit.sigma),
                "imp_mean": {v: float(np.mean(c)) for v, c in cells.items()},
                "imp_var": {v: float(np.var(c, ddof=1)) for v, c in cells.items()},
            }
        )
    return per


def compare(name: str, m: int = M_PY, seed: int = 1) -> pd.DataFrame:
    """One row per quantity: R's and pymitml's means over imputations, their standard errors
    and z = difference / combined standard error."""
    r = _quantities(REF["runs"][name]["per"])
    p = _quantities(_python_run(name, m, seed))
    rows = []
    for k in r:
        a, b = r[k], p[k]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        rel = abs(b.mean() - a.mean()) / max(abs(a.mean()), 1e-12)
        if se <= 1e-9 * max(1.0, abs(a.mean())):  # deterministic (2lonly.mean): exact agreement
            z = 0.0 if rel < 1e-10 else np.inf
        else:
            z = (b.mean() - a.mean()) / se
        rows.append(
            {"quantity": k, "R": a.mean(), "pymitml": b.mean(), "se": se, "z": z, "rel": rel}
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", list(RUNS))
def test_fcs_agrees_with_mice_within_monte_carlo_error(name):
    tab = compare(name)
    bad = tab[np.abs(tab["z"]) > Z_MAX]
    assert bad.empty, f"{name}: outside {Z_MAX} combined standard errors:\n{bad.to_string()}"


if __name__ == "__main__":  # python tests/test_fcs_r.py: the table of every comparison
    for nm in RUNS:
        t = compare(nm)
        print(
            nm,
            "max |z| =",
            round(float(np.abs(t["z"]).max()), 2),
            "max rel diff =",
            round(float(t["rel"].max()), 4),
        )
        print(t.to_string(index=False))


@pytest.mark.r
@pytest.mark.filterwarnings("ignore:predictor column")  # o and u hold the same information
def test_default_predictor_matrix_and_single_level_methods_are_mices(R, tmp_path):
    """Live: mice's make.predictorMatrix and make.method on the same data."""
    df = pd.read_csv(ROOT / "fcs_sim.csv")
    df["f"] = pd.Categorical(np.where(df["x"] > 0, "a", "b"))
    df["o"] = pd.Categorical(np.digitize(df["x"], [-0.5, 0.5]).astype(str), ordered=True)
    df["u"] = pd.Categorical(np.digitize(df["x"], [-0.5, 0.5]).astype(str))
    df.loc[::9, ["f", "o", "u"]] = np.nan
    csv = tmp_path / "defaults.csv"
    df.to_csv(csv, index=False)
    R(f"""suppressPackageStartupMessages(library(mice))
    d <- read.csv("{csv}", na.strings = c("", "NA")); d$f <- factor(d$f); d$u <- factor(d$u)
    d$o <- factor(d$o, ordered = TRUE); d$b <- factor(d$b)
    P <- make.predictorMatrix(d); M <- make.method(d)""")
    P = np.asarray(R("P")).reshape(len(df.columns), -1, order="F")
    M = list(R("unname(M)"))
    ours = pm.make_predictor_matrix(df)
    np.testing.assert_array_equal(ours.to_numpy(), P)
    df["b"] = pd.Categorical(df["b"])
    imp = pm.fcs_impute(df.drop(columns="g"), m=1, maxit=1, seed=1)
    assert [imp.methods[c] for c in df.columns if c != "g"] == M[1:]
