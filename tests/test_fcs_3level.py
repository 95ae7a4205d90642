"""fcs_impute with several cluster variables (ml.lmer / ml.bin): observed cells, order and
types kept, imputations at each variable's level, random terms, reproducibility, bad input, and
the one-factor special case against R's mice 2l.pan / 2lonly.norm references (r_compat/
fcs_ref.json) within Monte Carlo error."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.pool.compatibility import CompatibilityWarning
from pymitml.samplers._ranef import RcData, draw_beta_b, group_means, rc_params, rc_work
from tests.test_fcs_r import REF, ROOT, Z_MAX, _quantities

REF_ML = json.loads((ROOT / "fcs_ref_ml.json").read_text())
#: the ml.pmm run compared with r_compat/fcs_ref_ml.json
PMM = {"y": "ml.pmm", "w": "ml.pmm"}


def three_level(K: int = 12, C: int = 4, n: int = 6, seed: int = 0) -> pd.DataFrame:
    """Pupils in classes in schools: y, x level 1, w class level, z school level, b binary."""
    rng = np.random.default_rng(seed)
    school = np.repeat(np.arange(K), C * n)
    klass = np.repeat(np.arange(K * C), n)
    N = K * C * n
    x = rng.normal(size=N)
    w = rng.normal(size=K * C)[klass]
    z = rng.normal(size=K)[school]
    y = 0.5 * x + 0.3 * w + 0.4 * z + rng.normal(0, 0.6, K)[school]
    y = y + rng.normal(0, 0.4, K * C)[klass] + rng.normal(size=N)
    b = (x + rng.normal(size=N) > 0).astype(float)
    df = pd.DataFrame({"school": school, "class": klass, "y": y, "x": x, "w": w, "z": z, "b": b})
    df.loc[rng.random(N) < 0.25, "y"] = np.nan
    df.loc[rng.random(K * C)[klass] < 0.25, "w"] = np.nan
    df.loc[rng.random(K)[school] < 0.25, "z"] = np.nan
    df.loc[rng.random(N) < 0.1, "b"] = np.nan
    return df.sample(frac=1.0, random_state=1).set_index(pd.Index(np.arange(N) * 3 + 7))


@pytest.fixture(scope="module")
def data() -> pd.DataFrame:
    return three_level()


@pytest.fixture(scope="module")
def imp(data):
    return pm.fcs_impute(data, cluster=["school", "class"], m=3, maxit=6, seed=11)


def test_observed_cells_order_and_types_are_kept(data, imp):
    assert imp.methods == {
        "school": "",
        "class": "",
        "y": "ml.lmer",
        "x": "",
        "w": "ml.lmer",
        "z": "ml.lmer",
        "b": "ml.bin",
    }
    for d in imp.complete():
        assert d.index.equals(data.index) and list(d.columns) == list(data.columns)
        assert (d.dtypes == data.dtypes).all()
        assert not d.isna().any().any()
        obs = data.notna()
        pd.testing.assert_frame_equal(d[obs].fillna(0), data[obs].fillna(0))
        assert set(np.unique(d["b"])) <= {0.0, 1.0}


def test_each_variable_is_imputed_at_its_level(data, imp):
    for d in imp.complete():
        assert (d.groupby("class")["w"].nunique() == 1).all()
        assert (d.groupby("school")["z"].nunique() == 1).all()
        # observed values of a level-2 unit fill its missing rows
        seen = data.groupby("class")["w"].first()
        np.testing.assert_allclose(d.groupby("class")["w"].first()[seen.notna()], seen.dropna())
    assert imp.extra["random"] == {
        "y": "(1|school) + (1|class)",
        "w": "(1|school)",
        "z": "",
        "b": "(1|school) + (1|class)",
    }
    des = imp.extra["designs"]
    assert des["y"].x_names == [
        "(Intercept)",
        "x",
        "w",
        "z",
        "b",
        "mean_school(x)",
        "mean_school(w)",
        "mean_school(b)",
        "mean_class(x)",
        "mean_class(b)",
    ]
    assert des["z"].x_names == ["(Intercept)", "y", "x", "w", "b"]  # school means
    assert des["w"].x_names[-3:] == ["mean_school(y)", "mean_school(x)", "mean_school(b)"]


def test_levels_are_in_the_printed_summary(imp):
    s = str(imp.summary(n_Rhat=2))
    assert (
        "Cluster variables (nested): school (level 3, 12 groups), class (level 2, 48 groups)\n"
        "  level 1: y x b\n  level 2 (class): w\n  level 3 (school): z\n" in s
    )


def test_same_seed_same_imputations_whatever_the_threads(data, imp):
    again = pm.fcs_impute(data, cluster=["school", "class"], m=3, maxit=6, seed=11, n_threads=2)
    np.testing.assert_array_equal(again.replacement, imp.replacement)
    other = pm.fcs_impute(data, cluster=["school", "class"], m=3, maxit=6, seed=12)
    assert not np.array_equal(other.replacement, imp.replacement)


@pytest.mark.filterwarnings("ignore:predictor")  # b not imputed; class means of z collinear
def test_random_slopes_crossed_terms_and_no_cluster_means(data):
    imp = pm.fcs_impute(
        data,
        cluster=["school", "class"],
        random={"y": "(1 + x|school) + (1|school:class)", "w": "(0 + z|school)"},
        method={"b": ""},
        cluster_means=False,
        m=2,
        maxit=3,
        seed=1,
    )
    assert imp.extra["random"]["y"] == "(1 + x|school) + (1|school:class)"
    assert imp.extra["random"]["w"] == "(0 + z|school)"
    assert imp.extra["designs"]["y"].x_names == ["(Intercept)", "x", "w", "z"]
    assert not imp.complete(1)[["y", "w", "z"]].isna().any().any()
    crossed = pm.fcs_impute(
        data, cluster=["school", "class"], crossed=True, method={"b": ""}, m=2, maxit=3, seed=1
    )
    # crossed: a factor-level variable is imputed once per group, without random terms
    assert crossed.extra["random"] == {"y": "(1|school) + (1|class)", "w": "", "z": ""}


def test_one_cluster_variable_as_a_list_runs_the_multilevel_methods(data):
    imp = pm.fcs_impute(data.drop(columns="school"), cluster=["class"], m=2, maxit=3, seed=1)
    assert imp.methods["y"] == "ml.lmer" and imp.methods["w"] == "ml.lmer"
    assert imp.extra["random"]["w"] == ""


@pytest.mark.parametrize(
    ("kwargs", "err", "msg"),
    [
        ({"method": {"y": "2l.pan"}}, ValueError, r"method '2l.pan' of 'y' is not available with"),
        ({"method": {"b": "ml.lmer"}}, ValueError, r"method 'ml.lmer' does not fit 'b' \(binary\)"),
        ({"method": {"school": "ml.lmer"}}, ValueError, r"`method` names \['school'\]"),
        ({"random": {"w": "(1|class)"}}, ValueError, r"of 'w' groups by 'class', but 'w' is a"),
        ({"random": {"y": "(1|room)"}}, ValueError, r"groups by 'room', which is not one of"),
        ({"random": {"y": "(1 + q|class)"}}, ValueError, r"\['q'\] in '\(1 \+ q\|class\)'"),
        ({"random": {"y": "1 + (1|class)"}}, ValueError, r"is not a sum of lme4 random terms"),
        ({"random": {"x": "(1|class)"}}, ValueError, r"`random` names \['x'\], which are not"),
        ({"levels": {"w": "school"}}, ValueError, r"'w' is declared a 'school'-level variable"),
        ({"random": {"y": "(1|class)"}, "cluster": None}, ValueError, r"need the cluster"),
        (
            {"method": {"y": "ml.polr"}},
            ValueError,
            r"method 'ml.polr' does not fit 'y' \(numeric\); use one of \['ml.lmer', 'ml.pmm'\]",
        ),
        ({"method": {"y": "ml.foo"}}, ValueError, r"'ml.foo' of 'y' is not available with sev"),
        (
            {"method": {"y": "2l.pmm"}},
            ValueError,
            r"'2l.pmm' takes one cluster variable, cluster='class'; its counterpart here is "
            r"'ml.pmm', which imputes 'y' at its own level",
        ),
        (
            {"method": {"z": "2lonly.norm"}},
            ValueError,
            r"its counterpart here is 'ml.lmer', which imputes 'z' at its own level",
        ),
    ],
)
def test_bad_input_is_named(data, kwargs, err, msg):
    kw = {"cluster": ["school", "class"], "m": 1, "maxit": 1} | kwargs
    with pytest.raises(err, match=msg):
        pm.fcs_impute(data, **kw)


def test_predictor_matrix_codes_of_2l_methods_are_refused(data):
    P = pm.make_predictor_matrix(data)
    P.loc["y", "x"] = 2
    with pytest.raises(ValueError, match=r"codes \[2\] are mice's 2l codes; with several"):
        pm.fcs_impute(data, cluster=["school", "class"], predictor_matrix=P, m=1, maxit=1)
    P.loc["y", "x"] = 0
    P.loc[:, "school"] = -2  # the cluster columns may be marked -2, as in mice
    imp = pm.fcs_impute(data, cluster=["school", "class"], predictor_matrix=P, m=1, maxit=1, seed=1)
    assert "x" not in imp.extra["designs"]["y"].x_names


@pytest.mark.filterwarnings("ignore:predictor")  # g3 not imputed, so not a predictor
def test_nominal_variable_with_three_categories_gets_ml_polyreg(data):
    d = data.assign(g3=pd.Categorical(np.resize(["a", "b", "c", None], len(data))))
    with pytest.raises(
        ValueError,
        match=r"method 'ml.lmer' does not fit 'g3' \(categorical with 3 categories\); use one "
        r"of \['ml.polr', 'ml.polyreg'\]",
    ):
        pm.fcs_impute(d, cluster=["school", "class"], method={"g3": "ml.lmer"}, m=1, maxit=1)
    imp = pm.fcs_impute(d, cluster=["school", "class"], method={"g3": ""}, m=1, maxit=1, seed=1)
    assert imp.complete(1)["g3"].isna().sum() == d["g3"].isna().sum()
    imp = pm.fcs_impute(d, cluster=["school", "class"], m=1, maxit=1, seed=1)
    assert imp.methods["g3"] == "ml.polyreg"
    assert not imp.complete(1)["g3"].isna().any()


def test_compatibility_knows_the_grouping_factors(data, imp):
    rep = pm.check_compatibility(imp, "y ~ x + w + z + (1|school) + (1|school:class)")
    assert not [i for i in rep.issues if i.kind == "grouping factor"]
    with pytest.warns(CompatibilityWarning, match="the analysis groups by 'b'"):
        rep = pm.check_compatibility(imp, "y ~ x + (1|b)")
    assert [i.term for i in rep.issues if i.kind == "grouping factor"] == ["| b"]


def test_draw_beta_b_without_fixed_effects_is_the_random_effects_step():
    """The shared step used for every term after the first: with p = 0 it draws
    b_j ~ N(P_j^-1 Z_j'r_j / s2, P_j^-1), P_j = Psi^-1 + Z_j'Z_j / s2 (NumPy reference)."""
    rng = np.random.default_rng(4)
    n, q, J = 60, 2, 5
    Z = np.column_stack([np.ones(n), rng.normal(size=n)])
    r = rng.normal(size=n)
    start = np.searchsorted(np.repeat(np.arange(J), n // J), np.arange(J + 1)).astype(np.int64)
    par, work = rc_params(0, q, J, 0.7), rc_work(0, q, J)
    par.psi_inv[:, :] = np.array([[2.0, 0.3], [0.3, 1.5]])
    d = RcData(np.zeros((n, 0)), Z, r, start, np.array([2.0, 1.0, 1.0, 1.0]), 0)
    draws = []
    for _ in range(4000):
        assert draw_beta_b(rng, d, par, work) == 0
        draws.append(par.b.copy())
    draws = np.asarray(draws)
    for j in range(J):
        Zj, rj = Z[start[j] : start[j + 1]], r[start[j] : start[j + 1]]
        P = par.psi_inv + Zj.T @ Zj / 0.7
        mean = np.linalg.solve(P, Zj.T @ rj / 0.7)
        cov = np.linalg.inv(P)
        se = np.sqrt(np.diag(cov) / len(draws))
        assert np.all(np.abs(draws[:, j].mean(0) - mean) < 4.5 * se)
        np.testing.assert_allclose(np.cov(draws[:, j].T), cov, rtol=0.12, atol=0.01)


#: mice's one-cluster methods -> the ml.* methods compared with them
ML_OF = {"2l.bin": "ml.bin", "2lonly.pmm": "ml.pmm"}


def _ml_run(
    name: str, csv: str, cluster: str, formula: str, m: int, seed: int, ours=None
) -> list[dict]:
    run = (REF["runs"] | REF_ML["runs"])[name]
    df = pd.read_csv(ROOT / csv)
    names = list(df.columns)
    pred = pd.DataFrame(np.asarray(run["pred"], dtype=np.int64), index=names, columns=names)
    method = {k: ML_OF.get(v, "ml.lmer") for k, v in run["method"].items() if v}
    method |= ours or {}
    imp = pm.fcs_impute(
        df,
        cluster=[cluster],
        method=method,
        predictor_matrix=pred,
        cluster_means=False,
        m=m,
        maxit=int(REF["maxit"]),
        seed=seed,
    )
    per = []
    for d in imp.complete():
        fit = pm.lmer(formula, d, REML=True)
        vc = fit.varcorr
        cells = {v: d[v].to_numpy()[df[v].isna().to_numpy()] for v in method}
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


@pytest.mark.parametrize(
    ("name", "csv", "cluster", "formula"),
    [
        ("brandsma_pan", "fcs_brandsma.csv", "sch", "lpo ~ iqv + ses + ssi + (1|sch)"),
        ("sim_2l", "fcs_sim.csv", "g", "y ~ x + b + w + (1|g)"),
    ],
)
def test_one_cluster_variable_agrees_with_mice_2l_pan_and_2lonly_norm(name, csv, cluster, formula):
    """ml.lmer with one factor and no cluster means is the model of mice's 2l.pan for level-1
    variables and of 2lonly.norm for level-2 ones (ml.bin: probit where mice's 2l.bin is
    logistic); pooled lmer estimates and the imputed cells' mean and variance agree with mice's
    stored runs (50 imputations) within Monte Carlo error."""
    r = _quantities(REF["runs"][name]["per"])
    p = _quantities(_ml_run(name, csv, cluster, formula, 20, 3))
    for k in r:
        a, b = r[k], p[k]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(b.mean() - a.mean()) <= Z_MAX * se, (k, a.mean(), b.mean(), se)


def test_one_cluster_ml_pmm_agrees_with_mice_2lonly_pmm_and_2l_pan():
    """ml.pmm with one factor, no cluster means: of the level-2 w, predictive mean matching on
    the cluster means (mice's 2lonly.pmm); of the level-1 y, matching on the multilevel linear
    predictor with the random intercepts, compared with mice's 2l.pan (y is normal given its
    predictors, so both give the same estimates). Stored mice run r_compat/fcs_ref_ml.R (50
    imputations, 2l.bin for b as ml.bin): pooled lmer estimates and the imputed cells' mean and
    variance within Monte Carlo error."""
    r = _quantities(REF_ML["runs"]["sim_2lonly_pmm"]["per"])
    p = _quantities(
        _ml_run("sim_2lonly_pmm", "fcs_sim.csv", "g", "y ~ x + b + w + (1|g)", 20, 5, PMM)
    )
    assert set(r) == set(p)
    for k in r:
        a, b = r[k], p[k]
        se = np.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        assert abs(b.mean() - a.mean()) <= Z_MAX * se, (k, a.mean(), b.mean(), se)


@pytest.mark.filterwarnings("ignore:predictor")  # b not imputed
def test_passive_post_and_long_chain_work_with_several_cluster_variables(data):
    d = data.assign(y2=data["y"] * 2.0)
    imp = pm.fcs_impute(
        d,
        cluster=["school", "class"],
        method={"y2": "~ I(y * 2)", "b": ""},
        predictor_matrix=pd.DataFrame(
            1 - np.eye(d.shape[1], dtype=int), index=d.columns, columns=d.columns
        ).assign(y2=0),
        post={"w": (-1.0, 1.0)},
        long_chain=True,
        m=2,
        maxit=3,
        thin=2,
        seed=5,
    )
    assert imp.settings["chains"] == 1
    for c in imp.complete():
        np.testing.assert_allclose(c["y2"], 2.0 * c["y"])
        assert c["w"][data["w"].isna()].between(-1.0, 1.0).all()


def test_group_means_step_against_numpy():
    rng = np.random.default_rng(8)
    v = rng.normal(size=(500, 3))
    codes = rng.integers(0, 40, 500)
    codes[codes == 7] = 8  # group 7 has no rows
    out = np.empty((40, 3))
    group_means(v, codes, out)
    for a in range(3):
        n = np.bincount(codes, minlength=40)
        ref = np.bincount(codes, weights=v[:, a], minlength=40) / np.maximum(n, 1)
        np.testing.assert_allclose(out[:, a], ref, rtol=1e-13, atol=1e-15)
    assert np.all(out[7] == 0.0)


def test_binary_class_level_variable_is_imputed_once_per_class(data):
    rng = np.random.default_rng(9)
    cls = data["class"].to_numpy()
    flag = (rng.random(48) < 0.5).astype(float)[cls]
    flag[np.isin(cls, [3, 10, 20, 33])] = np.nan
    d = data.assign(flag=flag)
    imp = pm.fcs_impute(d, cluster=["school", "class"], m=2, maxit=3, seed=2)
    assert imp.methods["flag"] == "ml.bin"
    assert imp.extra["random"]["flag"] == "(1|school)"
    for c in imp.complete():
        assert (c.groupby("class")["flag"].nunique() == 1).all()
        assert set(np.unique(c["flag"])) <= {0.0, 1.0}


# ----------------------------------------------------------------- ml.polr, ml.polyreg, ml.pmm


def categorical_data(seed: int = 3) -> pd.DataFrame:
    """Three-level data with an ordinal level-1 o (cumulative probit with school and class
    intercepts), a nominal class-level g and a numeric y on both."""
    rng = np.random.default_rng(seed)
    K, C, n = 12, 4, 8
    school = np.repeat(np.arange(K), C * n)
    klass = np.repeat(np.arange(K * C), n)
    N = K * C * n
    x = rng.normal(size=N)
    ostar = 0.8 * x + rng.normal(0, 0.6, K)[school] + rng.normal(0, 0.4, K * C)[klass]
    o = np.digitize(ostar + rng.normal(size=N), [-0.7, 0.3, 1.1])
    g = rng.integers(0, 3, K * C)[klass]
    y = x + 0.4 * o + np.array([0.0, 0.5, -0.5])[g] + rng.normal(size=N)
    df = pd.DataFrame(
        {
            "school": school,
            "class": klass,
            "y": y,
            "x": x,
            "o": pd.Categorical.from_codes(o, ["lo", "mid", "high", "top"], ordered=True),
            "g": pd.Categorical.from_codes(g, ["A", "B", "C"]),
        }
    )
    df.loc[rng.random(N) < 0.2, "y"] = np.nan
    df.loc[rng.random(N) < 0.25, "o"] = np.nan
    df.loc[(rng.random(K * C) < 0.25)[klass], "g"] = np.nan
    return df.sample(frac=1.0, random_state=2)


def test_ordered_and_unordered_categories_get_ml_polr_and_ml_polyreg():
    df = categorical_data()
    imp = pm.fcs_impute(df, cluster=["school", "class"], m=3, maxit=4, seed=5)
    assert imp.methods["o"] == "ml.polr" and imp.methods["g"] == "ml.polyreg"
    assert imp.extra["random"]["o"] == "(1|school) + (1|class)"
    assert imp.extra["random"]["g"] == "(1|school)"  # g is a class-level variable
    for d in imp.complete():
        assert d.index.equals(df.index) and (d.dtypes == df.dtypes).all()
        assert d["o"].cat.ordered and list(d["o"].cat.categories) == ["lo", "mid", "high", "top"]
        assert not d[["o", "g"]].isna().any().any()
        obs = df["o"].notna()
        assert (d.loc[obs, "o"] == df.loc[obs, "o"]).all()
        assert (d.groupby("class", observed=True)["g"].nunique() == 1).all()
        assert (d.loc[df["g"].notna(), "g"] == df["g"].dropna()).all()
    # every category is imputed somewhere, and the imputations follow the predictors: the
    # imputed o rises with x (the latent's slope is 0.8)
    o = np.concatenate([d["o"].cat.codes[df["o"].isna()] for d in imp.complete()])
    x = np.tile(df["x"][df["o"].isna()].to_numpy(), 3)
    assert set(o) == {0, 1, 2, 3}
    assert np.corrcoef(o, x)[0, 1] > 0.3
    again = pm.fcs_impute(df, cluster=["school", "class"], m=3, maxit=4, seed=5, n_threads=2)
    np.testing.assert_array_equal(again.replacement, imp.replacement)


def test_ml_pmm_imputes_observed_values_at_each_level(data):
    imp = pm.fcs_impute(
        data,
        cluster=["school", "class"],
        method={"y": "ml.pmm", "z": "ml.pmm", "w": "ml.pmm", "b": "ml.pmm"},
        m=2,
        maxit=3,
        seed=4,
    )
    assert imp.extra["random"]["y"] == "(1|school) + (1|class)"
    for d in imp.complete():
        for v in ("y", "z", "w", "b"):
            assert np.isin(d[v][data[v].isna()], data[v].dropna()).all(), v
        assert (d.groupby("school")["z"].nunique() == 1).all()
        assert (d.groupby("class")["w"].nunique() == 1).all()


def test_cumulative_probit_mixed_model_recovers_its_parameters():
    """The ml.polr model (thresholds by Metropolis-Hastings with the latents integrated out,
    truncated-normal latents, the mixed model on the latents) on complete data: the posterior
    means of the slope, the random-intercept variance and the thresholds lie within 4
    posterior SDs of the truth (a failed threshold or latent step moves them far away)."""
    from pymitml.samplers.fcs._mlcat import OrdinalLatents
    from pymitml.samplers.fcs._mlmodel import MlModel

    rng = np.random.default_rng(12)
    J, n = 80, 40
    g = np.repeat(np.arange(J), n)
    x = rng.normal(size=J * n)
    eta = 0.5 + 0.8 * x + rng.normal(0, np.sqrt(0.4), J)[g]
    cuts = np.array([0.0, 0.7, 1.5])  # gam_1 = 0: the intercept carries the location
    y = np.digitize(eta + rng.normal(size=J * n), cuts)
    X = np.column_stack([np.ones(J * n), x])
    Z = [np.ones((J * n, 1))]
    mod = MlModel(J * n, [g], [J], 2, [1], 2, 1.0, 1)
    mod.warmup = 50
    ordl = OrdinalLatents(y, 4)
    draws = []
    for it in range(1500):
        assert mod.update(rng, X, Z, y, ordl) == 0
        if it >= 300:
            draws.append([*mod.beta, mod.pars[0].psi[0, 0], *ordl.gam[2:4]])
    draws = np.asarray(draws)
    truth = np.array([0.5, 0.8, 0.4, 0.7, 1.5])
    mean, sd = draws.mean(0), draws.std(0)
    assert np.all(np.abs(mean - truth) < 4 * sd), (mean, sd)
    assert np.all(sd < np.array([0.15, 0.05, 0.15, 0.05, 0.08])), sd  # the chain moves and mixes
