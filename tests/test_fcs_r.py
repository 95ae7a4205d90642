"""fcs_impute against R's mice (stored references of r_compat/fcs_ref.R and fcs_ref_l2.R,
made with many imputations): pooled lmer estimates (fixed effects, random-intercept SD, residual SD) and the
mean and variance of every variable's imputed cells agree within Monte Carlo error (both
sides' standard errors over imputations).

polr / polyreg (r_compat/fcs_cat_ref.R, m = 200 on both sides): imputed category shares,
overall and given a predictor, and completed-data regression coefficients within Monte Carlo
error; mice's augmented rows and the MASS::polr / nnet::multinom fits on them to 1e-6."""

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


# ---------------------------------------------------------------- polr / polyreg (fcs_cat_ref.R)

REF_CAT = json.loads((ROOT / "fcs_cat_ref.json").read_text())
#: imputations on the Python side of the categorical runs
M_CAT = 200


def cat_data(name: str) -> pd.DataFrame:
    """fcs_cat_sim.csv / fcs_cat_nhanes2.csv / fcs_cat_sep.csv with R's factor types."""
    df = pd.read_csv(ROOT / f"fcs_cat_{name}.csv")
    levels = {
        "f": (["lo", "mid", "hi"], True),
        "o": (["a", "b", "c", "d"] if name == "sim" else ["a", "b", "c"], True),
        "u": (["p", "q", "r"], False),
        "age": (["20-39", "40-59", "60-99"], False),
        "hyp": (["no", "yes"], False),
    }
    for c, (lev, ordered) in levels.items():
        if c in df:
            df[c] = pd.Categorical(df[c], lev, ordered=ordered)
    return df


def _shares(v: pd.Series, sel: np.ndarray, tag: str) -> dict:
    lev = list(v.cat.categories)
    vals = v.to_numpy()[sel]
    return {f"{tag}:{k}": float(np.mean(vals == k)) if sel.any() else np.nan for k in lev}


def _ols(d: pd.DataFrame, y: str, terms: list[str], names: list[str]) -> dict:
    cols = [np.ones(len(d))]
    for t in terms:
        if isinstance(d[t].dtype, pd.CategoricalDtype):
            cols += [(d[t] == k).to_numpy(float) for k in d[t].cat.categories[1:]]
        else:
            cols.append(d[t].to_numpy(float))
    b = np.linalg.lstsq(np.column_stack(cols), d[y].to_numpy(float), rcond=None)[0]
    return {f"coef:{n}": float(v) for n, v in zip(names, b)}


def _cat_quantities(name: str, d: pd.DataFrame, data: pd.DataFrame) -> dict:
    """The quantities of fcs_cat_ref.R's quant_sim / quant_nh for one completed data set."""
    if name == "sim":
        mo, mu = data["o"].isna().to_numpy(), data["u"].isna().to_numpy()
        xp, zp = d["x"].to_numpy() > 0, d["z"].to_numpy() > 0
        high = d["o"].isin(["c", "d"]).to_numpy()
        coef = ["(Intercept)", "x", "z", "o:b", "o:c", "o:d", "u:q", "u:r"]
        return (
            _shares(d["o"], mo, "o")
            | _shares(d["o"], mo & xp, "o|x>0")
            | _shares(d["u"], mu, "u")
            | _shares(d["u"], mu & zp, "u|z>0")
            | _shares(d["u"], mu & high, "u|o>b")
            | _ols(d, "y", ["x", "z", "o", "u"], coef)
        )
    mh = data["hyp"].isna().to_numpy()
    out = _shares(d["hyp"], mh, "hyp")
    out |= {
        f"mean:{v}": float(d[v].to_numpy()[data[v].isna().to_numpy()].mean())
        for v in ("bmi", "chl")
    }
    coef = ["(Intercept)", "age:40-59", "age:60-99", "hyp:yes", "bmi"]
    return out | _ols(d, "chl", ["age", "hyp", "bmi"], coef)


def compare_cat(name: str, m: int = M_CAT, seed: int = 1) -> pd.DataFrame:
    """As :func:`compare` for a polr / polyreg run of fcs_cat_ref.R."""
    run = REF_CAT["runs"][name]
    data = cat_data(name)
    names = list(data.columns)
    pred = pd.DataFrame(np.asarray(run["pred"], dtype=np.int64), index=names, columns=names)
    imp = pm.fcs_impute(
        data,
        method=dict(run["method"]),
        predictor_matrix=pred,
        m=m,
        maxit=int(run["maxit"]),
        seed=seed,
    )
    per = [_cat_quantities(name, d, data) for d in imp.complete()]
    rows = []
    for k in run["per"][0]:
        a = np.array([p[k] for p in run["per"]], dtype=float)
        b = np.array([p[k] for p in per], dtype=float)
        a, b = a[~np.isnan(a)], b[~np.isnan(b)]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        rows.append(
            {
                "quantity": k,
                "R": a.mean(),
                "pymitml": b.mean(),
                "se": se,
                "z": (b.mean() - a.mean()) / se,
            }
        )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("name", list(REF_CAT["runs"]))
def test_polr_polyreg_agree_with_mice_within_monte_carlo_error(name):
    """Imputed category shares (overall and given a predictor) and the completed-data regression
    coefficients: mice's polr / polyreg and pymitml's within Z_MAX combined standard errors."""
    tab = compare_cat(name)
    assert tab["se"].gt(0).all()
    bad = tab[np.abs(tab["z"]) > Z_MAX]
    assert bad.empty, f"{name}: outside {Z_MAX} combined standard errors:\n{bad.to_string()}"


def _fit_inputs(df: pd.DataFrame, target: str, rhs: list[str]):
    """The polr / polyreg method of ``target`` (predictors ``rhs``) and its model rows."""
    from pymitml.samplers.fcs._chain import start_values
    from pymitml.samplers.fcs._design import target_design
    from pymitml.samplers.fcs._methods import make_method
    from pymitml.samplers.fcs._spec import prepare_fcs

    P = pd.DataFrame(0, index=df.columns, columns=df.columns)
    P.loc[target, rhs] = 1
    meth = {c: "" for c in df.columns} | {target: "polr" if df[target].cat.ordered else "polyreg"}
    spec, _ = prepare_fcs(
        df, cluster=None, method=meth, predictor_matrix=P, visit_sequence=None, where=None
    )
    cur = start_values(spec, np.random.default_rng(0))
    t = spec.names.index(target)
    method = make_method(spec, t, target_design(spec, t, cur, False, False), meth[target], 1)
    return method, method.fit_rows(cur)


def _our_fits(Xf, y, w, k, Xm):
    from pymitml.samplers.fcs import _categorical as C

    Xp = np.ascontiguousarray(Xf[:, 1:])
    polr = np.zeros(k - 1 + Xp.shape[1])
    assert C.polr_fit(Xp, y, w, k, polr, C.fit_work(len(polr)), False) == 0
    P1 = np.empty((len(Xm), k))
    C.polr_probs(np.ascontiguousarray(Xm[:, 1:]), polr, k, P1)
    mn = np.zeros((k - 1) * Xf.shape[1])
    assert C.mlogit_fit(Xf, y, w, k, mn, C.fit_work(len(mn)), np.empty(k), False) == 0
    P2 = np.empty((len(Xm), k))
    C.mlogit_probs(np.ascontiguousarray(Xm), mn, k, P2)
    return polr, P1, mn.reshape(k - 1, -1), P2


def _rel(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-8)))


@pytest.mark.parametrize("case", list(REF_CAT["fits"]))
def test_augmented_rows_and_fits_match_mice_mass_and_nnet(case):
    """mice:::augment's rows (ordered predictors coded by contr.poly, as in mice's design), and
    the maximum-likelihood fits on them: MASS::polr (thresholds zeta, coefficients beta) and
    nnet::multinom (coefficients per category), both run to tight tolerances in R, and the
    fitted probabilities of the cells to impute, to 1e-6 relative."""
    f = REF_CAT["fits"][case]
    df = cat_data("sep" if case.startswith("sep") else "sim")
    method, (Xf, y, w, cats, Xm) = _fit_inputs(
        df, f["target"], [v.strip() for v in f["rhs"].split("+")]
    )
    n = len(method.obs)
    np.testing.assert_allclose(Xf[n:, 1:], np.asarray(f["x_aug"]), rtol=0, atol=1e-12)
    np.testing.assert_array_equal(y[n:], f["y_aug"])
    np.testing.assert_allclose(w[n:], f["w_aug"], rtol=1e-14)
    polr, P1, mn, P2 = _our_fits(Xf, y, w, len(cats), Xm)
    if "polr" in f:
        assert _rel(polr, np.r_[f["polr"]["zeta"], f["polr"]["beta"]]) < 1e-6
        np.testing.assert_allclose(P1, f["polr"]["probs"], rtol=1e-6, atol=1e-9)
        # mice's own call (optim's default tolerance) is further from the optimum than we are
        assert _rel(polr, np.r_[f["polr"]["zeta_default"], f["polr"]["beta_default"]]) > 1e-7
    assert _rel(mn, np.reshape(f["multinom"]["coef"], mn.shape)) < 1e-6
    np.testing.assert_allclose(P2, f["multinom"]["probs"], rtol=1e-6, atol=1e-9)


@pytest.mark.r
def test_polr_and_multinom_fits_live_on_fresh_data(R, tmp_path):
    """Live: fresh simulated data with an unordered and an ordered predictor, augmented by
    mice:::augment and fitted by MASS::polr / nnet::multinom in R; ours from the same CSV."""
    rng = np.random.default_rng(5)
    N = 300
    x = rng.normal(size=N)
    g = pd.Categorical(rng.choice(["k", "l", "m"], N))
    h = pd.Categorical(rng.choice(["s", "t", "v", "w"], N), ordered=True)
    lat = 1.2 * x + 0.8 * (g == "m") - 0.3 * h.codes + rng.logistic(size=N)
    o = pd.Categorical.from_codes(
        np.digitize(lat, [-1.5, -0.3, 0.6, 1.8]), list("abcde"), ordered=True
    )
    df = pd.DataFrame({"x": x, "g": g, "h": h, "o": o})
    df.loc[rng.random(N) < 0.25, "o"] = np.nan
    csv = tmp_path / "cat.csv"
    df.to_csv(csv, index=False)
    R(f"""suppressPackageStartupMessages({{library(mice); library(MASS); library(nnet)}})
    d <- read.csv("{csv}", na.strings = c("", "NA")); d$g <- factor(d$g)
    d$h <- factor(d$h, levels = c("s", "t", "v", "w"), ordered = TRUE)
    d$o <- factor(d$o, levels = letters[1:5], ordered = TRUE)
    ry <- !is.na(d$o); x <- model.matrix(~ x + g + h, d)[, -1]
    a <- mice:::augment(d$o, ry, x, !ry); xy <- cbind.data.frame(y = a$y, x = as.matrix(a$x))
    p <- polr(formula(xy), data = xy[a$ry, ], weights = a$w[a$ry], control = list(reltol = 1e-15, maxit = 10000))
    mn <- multinom(formula(xy), data = xy[a$ry, ], weights = a$w[a$ry], maxit = 100000, trace = FALSE, reltol = 1e-15, abstol = 1e-300)""")
    _, (Xf, y, w, cats, Xm) = _fit_inputs(df, "o", ["x", "g", "h"])
    polr, _, mn, _ = _our_fits(Xf, y, w, len(cats), Xm)
    assert _rel(polr, np.r_[np.asarray(R("p$zeta")), np.asarray(R("coef(p)"))]) < 1e-6
    r_mn = np.asarray(R("coef(mn)")).reshape(len(cats) - 1, -1, order="F")
    assert _rel(mn, r_mn) < 1e-6
    n_aug = int(R("sum(a$ry) - sum(ry)")[0])
    assert n_aug == len(y) - int(df["o"].notna().sum()) == 2 * 6 * 5


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
    for nm in REF_CAT["runs"]:
        t = compare_cat(nm)
        print(nm, "max |z| =", round(float(np.abs(t["z"]).max()), 2))
        print(t.to_string(index=False))
