"""jomo_impute: agreement with R's jomoImpute, truncated normals, categories, errors."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import special, stats

from pymitml.samplers._truncnorm import _cdf_fast, norm_cdf, norm_ppf, truncnorm_draw
from pymitml.samplers.jomo import jomo_impute

from ._data import batch_means_mcse

REF = pathlib.Path(__file__).resolve().parents[1] / "r_compat" / "jomo_ref.json"
MODELS = {
    "con2": "sat + jor ~ 1 + (1|id)",
    "cat2": "sat + jor + sex ~ 1 + (1|id)",
    "con1": "sat + jor ~ 1",
    "cat1": "sat + jor + sex ~ 1",
    "l2": ["sat + jor + sex ~ 1 + (1|id)", "jcl ~ 1"],
}


# ---- truncated normal kernels ------------------------------------------------------------


def test_norm_ppf_matches_scipy():
    p = np.concatenate(
        [np.logspace(-300, -1, 200), np.linspace(0.01, 0.99, 99), 1 - np.logspace(-15, -2, 30)]
    )
    ours = np.array([norm_ppf(x) for x in p])
    np.testing.assert_allclose(ours, special.ndtri(p), rtol=1e-12, atol=1e-12)
    x = np.linspace(-30, 8, 200)
    np.testing.assert_allclose([norm_cdf(v) for v in x], special.ndtr(x), rtol=1e-12, atol=0)


def test_fast_cdf_of_the_sampler_matches_scipy():
    """The tabulated CDF used by the truncated-normal draws: relative error < 1e-9 on both sides of
    every table node and into the erfc fallback (|x| > 8)."""
    x = np.concatenate(
        [
            np.linspace(-37, 9, 20001),
            np.arange(-512, 513) / 64 + 1 / 128 - 1e-12,
            [-8.0, 8.0, -np.inf, np.inf],
        ]
    )
    ours = np.array([_cdf_fast(v) for v in x])
    np.testing.assert_allclose(ours, special.ndtr(x), rtol=1e-9, atol=0)


@pytest.mark.parametrize(
    "lo,hi",
    [(-np.inf, 0.0), (0.3, np.inf), (-1.0, 2.0), (6.0, np.inf), (-np.inf, -9.0), (40.0, np.inf)],
)
def test_truncnorm_draw_matches_scipy(lo, hi):
    mean, sd = 0.2, 0.8
    u = (np.arange(4000) + 0.5) / 4000  # a uniform grid: draws are the exact quantiles
    x = np.array([truncnorm_draw(mean, sd, lo, hi, v) for v in u])
    assert np.all((x >= lo) & (x <= hi))
    a, b = (lo - mean) / sd, (hi - mean) / sd
    if a < 30:
        ref = stats.truncnorm.ppf(u, a, b, loc=mean, scale=sd)
        np.testing.assert_allclose(x, ref, rtol=1e-7, atol=1e-9)
    else:  # far tail: exponential approximation, mean ~ lo + sd^2 / (lo - mean)
        assert abs(x.mean() - (lo + sd**2 / (lo - mean))) < 1e-3


# ---- agreement with R's jomoImpute (reference chains in r_compat/jomo_ref.json) -----------


def _justice_data():
    path = pathlib.Path(__file__).resolve().parents[1] / "r_compat" / "jomo_justice.csv"
    df = pd.read_csv(path)
    df["sex"] = pd.Categorical(df["sex"], categories=["male", "female"])
    return df


def _assert_agrees_with_jomoImpute(imp, ref):
    """Every element of every block: |mean_py - mean_R| < 4 combined batch-means MCSE; elements
    R never moves (the fixed latent variances) are equal in every iteration."""
    assert set(imp.par_imputation) == set(ref) - {"seconds"}
    worst = 0.0
    for block, ch in imp.par_imputation.items():
        ch = ch[:, :, :, 0]
        mean_r, se_r = np.array(ref[block]["mean"]), np.array(ref[block]["mcse"])
        assert ch.shape[:2] == mean_r.shape
        for i, j in np.ndindex(ch.shape[:2]):
            if se_r[i, j] == 0:  # fixed elements (the latent variance)
                assert np.all(ch[i, j] == mean_r[i, j])
                continue
            se = np.hypot(batch_means_mcse(ch[i, j], 20), se_r[i, j])
            z = abs(ch[i, j].mean() - mean_r[i, j]) / se
            worst = max(worst, z)
            assert z < 4, (
                f"{block}[{i},{j}]: {ch[i, j].mean():.5g} vs jomoImpute {mean_r[i, j]:.5g} (z={z:.2f})"
            )
    assert worst > 0


@pytest.mark.parametrize("model", list(MODELS))
def test_posterior_means_agree_with_jomoImpute(model):
    """Every element of every block: |mean_py - mean_R| < 4 combined batch-means MCSE (20 batches
    of 1,500 iterations). jomo keeps latent normals inside (-3, 4) (its rejection sampler), so the
    models are run with latent_bounds="jomo" (no effect without categorical targets)."""
    ref = json.loads(REF.read_text())[model]
    imp = jomo_impute(
        _justice_data(), MODELS[model], m=1, n_burn=1000, n_iter=30000, seed=5, latent_bounds="jomo"
    )
    _assert_agrees_with_jomoImpute(imp, ref)


def test_pooled_lmer_estimates_agree_with_jomoImpute():
    """m = 50 imputations (level-2 jcl, binary sex), lmer pooled by Rubin's rules: every estimate
    within 0.2 pooled standard errors of R's (r_compat/jomo_pooled.R) and the standard errors
    within 10%. Two independent runs differ by about 0.13 SE for the worst term (jor, RIV 0.5)."""
    import pymitml as pm

    ref = json.loads((REF.parent / "jomo_pooled_ref.json").read_text())
    imp = jomo_impute(
        _justice_data(),
        ["sat + jor + sex ~ 1 + (1|id)", "jcl ~ 1"],
        m=50,
        n_burn=2000,
        n_iter=100,
        seed=1,
    )
    fits = imp.complete().with_(lambda d: pm.lmer("sat ~ jor + sex + jcl + (1|id)", d, REML=True))
    est = pm.pool_estimates(fits).table
    assert list(est.index) == ref["terms"]
    z = (est["Estimate"].to_numpy() - np.array(ref["estimate"])) / np.array(ref["se"])
    assert np.all(np.abs(z) < 0.2), z
    np.testing.assert_allclose(est["Std.Error"].to_numpy(), ref["se"], rtol=0.1)


# ---- recovery of known parameters (exact probit, no latent bounds) ------------------------


def _latent_data(K, n=3000, seed=1):
    """x continuous and a K-level categorical from latents (jomo's parametrisation)."""
    rng = np.random.default_rng(seed)
    k1 = K - 1
    S = np.eye(k1 + 1)
    S[1:, 1:] = 0.5 + 0.5 * np.eye(k1)
    S[0, 1:] = S[1:, 0] = 0.4
    S[0, 0] = 2.0
    mean = np.concatenate([[1.0], np.linspace(0.3, -0.2, k1)])
    L = rng.multivariate_normal(mean, S, size=n)
    top = L[:, 1:].max(axis=1)
    lev = np.where(top > 0, L[:, 1:].argmax(axis=1), k1)
    cats = [f"c{k}" for k in range(K)]
    df = pd.DataFrame({"x": L[:, 0], "g": pd.Categorical(np.array(cats)[lev], categories=cats)})
    df.loc[rng.random(n) < 0.2, "x"] = np.nan
    df.loc[rng.random(n) < 0.2, "g"] = np.nan
    return df, mean, S


@pytest.mark.parametrize("K", [2, 3])
def test_known_latent_parameters_are_calibrated(K):
    """Simulation-based calibration over 16 simulated data sets: for every mean and every free
    element of Sigma, z = (truth - posterior mean) / posterior SD has mean ~ 0 and SD ~ 1 when the
    sampler targets the right posterior. (A single data set is no test: on one of them the truth
    of Sigma[x, g.c0] lies 2.8 posterior SDs out, whatever the chain.)"""
    zs = []
    for ds in range(100, 116):
        df, mean, S = _latent_data(K, n=1500, seed=ds)
        imp = jomo_impute(df, "x + g ~ 1", m=1, n_burn=300, n_iter=2000, seed=1, progress=False)
        b = imp.par_imputation["beta"][0, :, :, 0]
        sg = imp.par_imputation["sigma"][0, :, :, 0]  # row of x: its variance and covariances
        zs.append(np.concatenate([(mean - b.mean(1)) / b.std(1), (S[0] - sg.mean(1)) / sg.std(1)]))
    Z = np.array(zs)
    assert np.all(np.abs(Z.mean(axis=0)) < 4 / np.sqrt(len(Z))), Z.mean(axis=0)
    assert np.all((Z.std(axis=0) > 0.55) & (Z.std(axis=0) < 1.6)), Z.std(axis=0)
    assert imp.param_names["beta"][1] == ["x"] + [f"g.c{k}" for k in range(K - 1)]


def test_ordinal_thresholds_and_parameters_are_recovered():
    """Ordered categoricals: one latent normal (variance 1) cut at thresholds (the first at 0)."""
    rng = np.random.default_rng(2)
    n = 3000
    S = np.array([[2.0, 0.6], [0.6, 1.0]])
    L = rng.multivariate_normal([1.0, 0.4], S, size=n)
    thr = np.array([0.0, 0.7, 1.5])
    cats = ["low", "mid", "high", "top"]
    df = pd.DataFrame(
        {
            "x": L[:, 0],
            "o": pd.Categorical(
                np.array(cats)[np.searchsorted(thr, L[:, 1])], categories=cats, ordered=True
            ),
        }
    )
    df.loc[rng.random(n) < 0.2, "x"] = np.nan
    df.loc[rng.random(n) < 0.2, "o"] = np.nan
    imp = jomo_impute(df, "x + o ~ 1", m=2, n_burn=1000, n_iter=3000, seed=3)
    assert imp.param_names["beta"][1] == ["x", "o"]
    checks = [
        (imp.par_imputation["beta"][:, :, :, 0], np.array([[1.0, 0.4]])),
        (imp.par_imputation["sigma"][:, :, :, 0], S),
        (imp.extra["thresholds"]["o"][:, :, 0], thr),
    ]
    for ch, truth in checks:
        lo, hi = np.quantile(ch, [0.0005, 0.9995], axis=-1)
        assert np.all((lo <= truth + 1e-12) & (truth - 1e-12 <= hi)), f"{truth} vs [{lo}, {hi}]"
    d = imp.complete(1)
    assert d["o"].dtype == df["o"].dtype and d["o"].notna().all()
    # imputed levels follow the latent model: all four levels occur among the imputations
    assert set(imp.replacement[imp.index[:, 1] == 1].ravel()) == {0.0, 1.0, 2.0, 3.0}


# ---- categories survive the round trip ----------------------------------------------------


@pytest.fixture(scope="module")
def mixed():
    rng = np.random.default_rng(4)
    J, n = 25, 8
    N = J * n
    idx = np.repeat(np.arange(J), n)
    u = rng.normal(0, 0.5, J)[idx]
    y = 1 + u + rng.normal(size=N)
    lat = 0.5 * y[:, None] + rng.normal(size=(N, 2))
    lev = np.where(lat.max(axis=1) > 0.6, lat.argmax(axis=1), 2)
    df = pd.DataFrame(
        {
            "id": idx,
            "y": y,
            "z": rng.normal(size=N),
            # unused level "none" and a custom order
            "grp": pd.Categorical(
                np.array(["hi", "lo", "mid"])[lev], categories=["mid", "hi", "none", "lo"]
            ),
            "flag": pd.array(lat[:, 0] > 0.5, dtype=object),
            "word": np.array(["b", "a"])[(lat[:, 1] > 0.7).astype(int)].astype(object),
        }
    )
    for c, frac in (("y", 0.15), ("grp", 0.2), ("flag", 0.2), ("word", 0.2)):
        df.loc[rng.random(N) < frac, c] = None
    return df


F_MIXED = "y + grp + flag + word ~ 1 + z + (1|id)"


def test_pandas_categories_round_trip(mixed):
    imp = jomo_impute(mixed, F_MIXED, m=3, n_burn=100, n_iter=10, seed=2)
    assert imp.method == "jomo" and imp.targets == ["y", "grp", "flag", "word"]
    assert imp.extra["target_positions"] == [list(mixed.columns).index(t) for t in imp.targets]
    for d in imp.complete():
        assert list(d.columns) == list(mixed.columns)
        assert d[["y", "grp", "flag", "word"]].notna().all().all()
        assert d["grp"].dtype == mixed["grp"].dtype  # order and the unused level survive
        assert set(d["grp"]) <= {"mid", "hi", "lo"}
        assert set(d["flag"]) <= {True, False} and set(d["word"]) <= {"a", "b"}
        for c in ("grp", "flag", "word", "y"):
            obs = mixed[c].notna()
            assert d.loc[obs, c].tolist() == mixed.loc[obs, c].tolist()
    # latent columns: non-reference observed levels in category order
    assert imp.param_names["beta"][1] == ["y", "grp.mid", "grp.hi", "flag.False", "word.a"]
    assert imp.par_imputation["psi"].shape == (5, 5, 30, 1)
    sig = imp.par_imputation["sigma"][:, :, :, 0]
    np.testing.assert_array_equal(
        sig[1:3, 1:3], np.broadcast_to([[1, 0.5], [0.5, 1]], (30, 2, 2)).transpose(1, 2, 0)
    )


def test_polars_categorical_and_enum_round_trip(mixed):
    pdf = mixed.assign(flag=mixed["flag"].astype("boolean"), word=mixed["word"].astype(object))
    pldf = pl.from_pandas(pdf).with_columns(
        pl.col("grp").cast(pl.Enum(["mid", "hi", "none", "lo"])),
        pl.col("word").cast(pl.Categorical),
    )
    imp = jomo_impute(pldf, F_MIXED, m=2, n_burn=50, n_iter=5, seed=2)
    out = imp.complete(1)
    assert isinstance(out, pl.DataFrame) and out.schema == pldf.schema
    for c in ("y", "grp", "flag", "word"):
        assert out[c].null_count() == 0
        obs = pldf[c].is_not_null()
        assert out.filter(obs)[c].to_list() == pldf.filter(obs)[c].to_list()
    assert set(out["grp"].to_list()) <= {"mid", "hi", "lo"}
    assert out["grp"].dtype == pl.Enum(["mid", "hi", "none", "lo"])


def test_same_seed_same_draws_whatever_threads(mixed):
    kw = {"m": 4, "n_burn": 30, "n_iter": 5, "seed": 11, "chains": 2}
    a = jomo_impute(mixed, F_MIXED, n_threads=1, **kw)
    b = jomo_impute(mixed, F_MIXED, n_threads=2, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    np.testing.assert_array_equal(
        a.par_chains_imputation["sigma"], b.par_chains_imputation["sigma"]
    )
    assert a.par_chains_imputation["beta"].shape[-1] == 2


# ---- bad input: one clear error each ------------------------------------------------------


def test_error_one_observed_level(mixed):
    df = mixed.copy()
    df["grp"] = pd.Categorical(
        np.where(df["grp"].isna(), None, "hi"), categories=["mid", "hi", "lo"]
    )
    with pytest.raises(
        ValueError, match=r"categorical target 'grp' has only one observed level \['hi'\]"
    ):
        jomo_impute(df, F_MIXED, m=1, n_burn=1, n_iter=1)


def test_error_missing_code_is_a_category(mixed):
    df = mixed.assign(word=mixed["word"].where(mixed["word"].notna(), "-99"))
    with pytest.raises(
        ValueError, match=r"`missing_code` \[-99\] is a category of the categorical target 'word'"
    ):
        jomo_impute(df, F_MIXED, m=1, n_burn=1, n_iter=1, missing_code=-99)


def test_error_mixed_value_types(mixed):
    df = mixed.copy()
    df["word"] = df["word"].astype(object)
    df.loc[df.index[df["word"].notna()][0], "word"] = 3
    with pytest.raises(TypeError, match="column 'word' mixes text and numbers"):
        jomo_impute(df, F_MIXED, m=1, n_burn=1, n_iter=1)


def test_error_random_L1_needs_clusters(mixed):
    with pytest.raises(ValueError, match="`random_L1` = 'mean' / 'full' needs a cluster term"):
        jomo_impute(mixed, "y ~ 1 + z", random_L1="mean")


def test_error_random_L1_value(mixed):
    with pytest.raises(
        ValueError, match="`random_L1` must be 'none', 'mean' or 'full'; got 'diag'"
    ):
        jomo_impute(mixed, F_MIXED, random_L1="diag")


# ---- level-2 targets ---------------------------------------------------------------------


def test_level2_target_layout_and_cluster_means(mixed):
    rng = np.random.default_rng(8)
    df = mixed.copy()
    w = rng.normal(size=df["id"].max() + 1)
    df["w"] = w[df["id"]]
    df.loc[df["id"].isin([1, 4, 9]), "w"] = np.nan  # three clusters miss w
    with pytest.warns(UserWarning, match=r"replaced with cluster means \(z\)"):
        imp = jomo_impute(
            df, ["y + grp ~ 1 + (1|id)", "w ~ 1 + z"], m=2, n_burn=50, n_iter=5, seed=1
        )
    assert imp.targets == ["y", "grp", "w"]
    assert imp.par_imputation["beta2"].shape == (2, 1, 10, 1)
    assert imp.param_names["beta2"] == (["(Intercept)", "z"], ["w"])
    assert imp.par_imputation["psi"].shape == (4, 4, 10, 1)
    assert imp.param_names["psi"][0] == [
        "y:(Intercept)",
        "grp.mid:(Intercept)",
        "grp.hi:(Intercept)",
        "w",
    ]
    for d in imp.complete():
        assert d["w"].notna().all()
        assert (d.groupby("id")["w"].nunique() == 1).all()  # one value per cluster
        obs = df["w"].notna()
        assert np.array_equal(d.loc[obs, "w"], df.loc[obs, "w"])


def _level2_categorical(mixed):
    """Level-2 nominal 'kind' (4 categories, one unused) and binary string 'site', some clusters missing."""
    rng = np.random.default_rng(9)
    J = mixed["id"].max() + 1
    kind = np.array(["b", "a", "c"])[rng.integers(0, 3, J)]
    site = np.array(["north", "south"])[rng.integers(0, 2, J)].astype(object)
    df = mixed.assign(
        kind=pd.Categorical(kind[mixed["id"]], categories=["c", "a", "zz", "b"]),
        site=site[mixed["id"]],
    )
    df.loc[df["id"].isin([2, 5, 11, 17]), "kind"] = np.nan
    df.loc[df["id"].isin([5, 8, 20]), "site"] = None
    return df


def test_categorical_level2_targets_round_trip(mixed):
    df = _level2_categorical(mixed)
    imp = jomo_impute(
        df, ["y + grp ~ 1 + (1|id)", "site + kind ~ 1"], m=3, n_burn=100, n_iter=10, seed=4
    )
    assert imp.targets == ["y", "grp", "site", "kind"]
    # latent columns of the level-2 targets: K - 1 per target, observed levels in category order
    assert imp.param_names["beta2"] == (["(Intercept)"], ["site.north", "kind.c", "kind.a"])
    assert imp.param_names["psi"][0][-3:] == ["site.north", "kind.c", "kind.a"]
    psi = imp.par_imputation["psi"][:, :, :, 0]
    assert psi.shape == (6, 6, 30)
    np.testing.assert_array_equal(
        psi[4:, 4:], np.broadcast_to([[1, 0.5], [0.5, 1]], (30, 2, 2)).transpose(1, 2, 0)
    )
    assert np.all(psi[3, 3] == 1.0) and len(np.unique(psi[0, 3])) > 1  # free covariances move
    seen = set()
    for d in imp.complete():
        assert d["kind"].dtype == df["kind"].dtype and d["kind"].notna().all()
        assert set(d["site"]) <= {"north", "south"}
        assert (d.groupby("id")["kind"].nunique() == 1).all() and (
            d.groupby("id")["site"].nunique() == 1
        ).all()
        obs = df["kind"].notna()
        assert d.loc[obs, "kind"].tolist() == df.loc[obs, "kind"].tolist()
        seen |= set(d.loc[~obs, "kind"])
    assert seen <= {"a", "b", "c"}
    # same seed, same draws whatever the threads (two chains)
    kw = {"m": 2, "n_burn": 30, "n_iter": 5, "seed": 12, "chains": 2}
    a = jomo_impute(df, ["y + grp ~ 1 + (1|id)", "site + kind ~ 1"], n_threads=1, **kw)
    b = jomo_impute(df, ["y + grp ~ 1 + (1|id)", "site + kind ~ 1"], n_threads=2, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    np.testing.assert_array_equal(a.par_chains_imputation["psi"], b.par_chains_imputation["psi"])


L2CAT = {
    "bin": ["sat + jor ~ 1 + (1|id)", "jclhi ~ 1"],
    "nom": ["sat + jor ~ 1 + (1|id)", "jcl3 ~ 1"],
}


@pytest.mark.parametrize("model", list(L2CAT))
def test_categorical_level2_posterior_means_agree_with_jomoImpute(model):
    """Binary and 3-level nominal level-2 targets (derived from jcl in r_compat/jomo_l2cat_ref.R):
    every free element of beta, beta2, psi and sigma within 4 combined batch-means MCSE of
    jomoImpute's (30,000 iterations each); the latent block of psi is fixed (1, 0.5) in both."""
    ref = json.loads((REF.parent / "jomo_l2cat_ref.json").read_text())[model]
    df = pd.read_csv(REF.parent / "jomo_justice_l2cat.csv")
    df["jclhi"] = pd.Categorical(df["jclhi"], categories=["low", "high"])
    df["jcl3"] = pd.Categorical(df["jcl3"], categories=["lo", "mid", "hi"])
    imp = jomo_impute(
        df, L2CAT[model], m=1, n_burn=1000, n_iter=30000, seed=6, latent_bounds="jomo"
    )
    _assert_agrees_with_jomoImpute(imp, ref)


def test_ordinal_level2_target_recovers_thresholds_and_psi():
    """An ordered level-2 target: one latent per cluster (variance 1 in Psi) cut at thresholds (the
    first at 0); its thresholds, intercept and covariance with the random intercept are recovered."""
    rng = np.random.default_rng(21)
    J, n = 1500, 4
    P = np.array([[0.5, 0.35], [0.35, 1.0]])
    U = rng.multivariate_normal([0, 0], P, size=J)
    idx = np.repeat(np.arange(J), n)
    y = 1.0 + U[idx, 0] + rng.normal(size=J * n)
    thr = np.array([0.0, 0.8, 1.6])
    cats = ["none", "some", "many", "all"]
    lev = np.searchsorted(thr, 0.3 + U[:, 1])
    o = pd.Categorical(np.array(cats)[lev], categories=cats, ordered=True)
    df = pd.DataFrame({"id": idx, "y": y, "o": o[idx]})
    df.loc[rng.random(J * n) < 0.2, "y"] = np.nan
    df.loc[df["id"].isin(np.flatnonzero(rng.random(J) < 0.2)), "o"] = np.nan
    imp = jomo_impute(df, ["y ~ 1 + (1|id)", "o ~ 1"], m=2, n_burn=1000, n_iter=1500, seed=2)
    assert imp.param_names["beta2"] == (["(Intercept)"], ["o"])
    checks = [
        (imp.par_imputation["beta2"][0, 0, :, 0], 0.3),
        (imp.par_imputation["psi"][0, 1, :, 0], 0.35),
        (imp.par_imputation["psi"][0, 0, :, 0], 0.5),
        (imp.extra["thresholds"]["o"][:, :, 0], thr),
    ]
    for ch, truth in checks:
        lo, hi = np.quantile(ch, [0.0005, 0.9995], axis=-1)
        assert np.all((lo < truth + 1e-12) & (truth - 1e-12 < hi)), f"{truth} vs [{lo}, {hi}]"
    assert np.all(imp.par_imputation["psi"][1, 1, :, 0] == 1.0)
    d = imp.complete(1)
    assert d["o"].dtype == df["o"].dtype and d["o"].notna().all()
    assert (d.groupby("id")["o"].nunique() == 1).all()
    assert set(d.loc[df["o"].isna(), "o"]) == set(cats)


def test_error_level2_target_varies_within_cluster(mixed):
    with pytest.raises(
        ValueError, match=r"level-2 target 'z' varies within cluster id=0 \(and 24 other"
    ):
        jomo_impute(mixed, ["y ~ 1 + (1|id)", "z ~ 1"], m=1, n_burn=1, n_iter=1)


# ---- random_L1: cluster-specific covariance matrices --------------------------------------


def _heteroscedastic(seed=5, J=100, n=30, a_true=8.0):
    from scipy.stats import invwishart

    rng = np.random.default_rng(seed)
    idx = np.repeat(np.arange(J), n)
    Lam = np.array([[1.0, 0.3], [0.3, 1.0]]) * (a_true - 3)  # E Sigma_j = [[1, .3], [.3, 1]]
    SJ = invwishart.rvs(df=a_true, scale=Lam, size=J, random_state=seed)
    u = rng.normal(0, 0.6, (J, 2))
    E = np.concatenate([rng.multivariate_normal([0, 0], SJ[j], size=n) for j in range(J)])
    z = rng.normal(size=J * n)
    df = pd.DataFrame(
        {"id": idx, "y": 1 + 0.5 * z + u[idx, 0] + E[:, 0], "x": -1 + u[idx, 1] + E[:, 1], "z": z}
    )
    df.loc[rng.random(J * n) < 0.2, "y"] = np.nan
    df.loc[rng.random(J * n) < 0.2, "x"] = np.nan
    return df, SJ, a_true


def test_random_L1_recovers_heteroscedastic_clusters():
    df, SJ, a_true = _heteroscedastic()
    imp = jomo_impute(
        df, "y + x ~ 1 + z + (1|id)", random_L1="full", m=2, n_burn=500, n_iter=1000, seed=1
    )
    J = len(SJ)
    assert imp.par_imputation["sigma"].shape == (2 * J, 2, 2000, 1)
    assert imp.param_names["sigma"][0][:3] == ["y[0]", "x[0]", "y[1]"]
    sj = imp.par_imputation["sigma"][:, :, :, 0].reshape(J, 2, 2, -1)
    a = imp.extra["random_L1_df"][:, 0]
    lo, hi = np.quantile(a, [0.0005, 0.9995])
    assert lo < a_true < hi
    # each cluster's posterior mean follows its own covariance matrix
    assert np.corrcoef(sj[:, 0, 0].mean(-1), SJ[:, 0, 0])[0, 1] > 0.85
    ch = imp.par_imputation["beta"][:, :, :, 0]
    lo, hi = np.quantile(ch, [0.0005, 0.9995], axis=-1)
    truth = np.array([[1.0, -1.0], [0.5, 0.0]])
    assert np.all((lo < truth) & (truth < hi))
    # "mean" stores the average of the cluster matrices: the same chain for the same seed
    imp_m = jomo_impute(
        df, "y + x ~ 1 + z + (1|id)", random_L1="mean", m=2, n_burn=500, n_iter=1000, seed=1
    )
    np.testing.assert_allclose(
        imp_m.par_imputation["sigma"][:, :, :, 0], sj.mean(axis=0), rtol=1e-10
    )
    np.testing.assert_array_equal(imp_m.replacement, imp.replacement)


def _heteroscedastic_binary(seed=7, J=120, n=30):
    """y continuous and a binary ``b`` = 1{latent > 0}; cluster j has residual covariance
    [[s_j, c_j], [c_j, 1]] (latent variance fixed at 1 as in the model) with s_j spread over 0.2-4."""
    rng = np.random.default_rng(seed)
    idx = np.repeat(np.arange(J), n)
    s = np.exp(rng.uniform(np.log(0.2), np.log(4.0), J))
    c = 0.5 * np.sqrt(s)
    z = rng.normal(size=J * n)
    u = rng.normal(0, 0.5, (J, 2))
    e1 = rng.normal(size=J * n)
    e2 = rng.normal(size=J * n)
    ey = np.sqrt(s[idx]) * e1
    el = (c[idx] / np.sqrt(s[idx])) * e1 + np.sqrt(1 - c[idx] ** 2 / s[idx]) * e2
    y = 1 + 0.5 * z + u[idx, 0] + ey
    lat = 0.3 - 0.4 * z + u[idx, 1] + el
    df = pd.DataFrame(
        {
            "id": idx,
            "y": y,
            "b": pd.Categorical(np.where(lat > 0, "yes", "no"), categories=["yes", "no"]),
            "z": z,
        }
    )
    df.loc[rng.random(J * n) < 0.2, "y"] = np.nan
    df.loc[rng.random(J * n) < 0.2, "b"] = np.nan
    return df, s


def test_random_L1_recovers_the_truth_where_jomo_does_not():
    """Data simulated from the random_L1 model itself (r_compat/jomo_hr_sim.R: 200 clusters of 5,
    Sigma_j ~ IW(8, Lambda), nothing missing). pymitml's posterior covers the realised mean of
    the Sigma_j, Psi and a; jomo's own sampler (jomo1ranconhr, stored output) puts the mean of
    the Sigma_j 23% above the truth, more than 3 posterior SDs (see the README)."""
    ref = json.loads((REF.parent / "jomo_hr_sim_ref.json").read_text())
    d = pd.read_csv(REF.parent / "jomo_hr_sim.csv")
    imp = jomo_impute(
        d, "y + x ~ 1 + (1|id)", random_L1="mean", m=1, n_burn=1000, n_iter=10000, seed=1
    )
    truth = ref["truth"]
    for block, t in (("sigma", truth["sigma_mean"]), ("psi", truth["psi"])):
        ch = imp.par_imputation[block][..., 0]
        z = (np.array(t) - ch.mean(-1)) / ch.std(-1)
        assert np.all(np.abs(z) < 3), (block, z)
    a = imp.extra["random_L1_df"][:, 0]
    assert abs(truth["a"] - a.mean()) < 3 * a.std()
    sd = imp.par_imputation["sigma"][..., 0].std(-1)
    z_jomo = (np.array(ref["jomo"]["sigma_mean"]["mean"]) - np.array(truth["sigma_mean"])) / sd
    assert np.all(np.diag(z_jomo) > 3), z_jomo


def test_random_L1_is_calibrated():
    """Simulation-based calibration over 12 data sets drawn from the random_L1 model (80 clusters
    of 6, Sigma_j ~ IW(8, Lambda), 20% of y missing): z-scores of the truth (the realised mean of
    the Sigma_j, Psi, a) against the posterior have mean ~ 0 and SD ~ 1."""
    from scipy.stats import invwishart

    zs = []
    J, n, a_true = 80, 6, 8.0
    idx = np.repeat(np.arange(J), n)
    for seed in range(12):
        rng = np.random.default_rng(100 + seed)
        SJ = invwishart.rvs(
            df=a_true,
            scale=np.array([[1.0, 0.3], [0.3, 1.0]]) * (a_true - 3),
            size=J,
            random_state=100 + seed,
        )
        u = rng.normal(0, 0.6, (J, 2))
        E = np.einsum("jab,jnb->jna", np.linalg.cholesky(SJ), rng.normal(size=(J, n, 2))).reshape(
            J * n, 2
        )
        df = pd.DataFrame({"id": idx, "y": 1 + u[idx, 0] + E[:, 0], "x": -1 + u[idx, 1] + E[:, 1]})
        df.loc[rng.random(J * n) < 0.2, "y"] = np.nan
        imp = jomo_impute(
            df,
            "y + x ~ 1 + (1|id)",
            random_L1="mean",
            m=1,
            n_burn=300,
            n_iter=2000,
            seed=seed,
            progress=False,
        )
        sm = imp.par_imputation["sigma"][..., 0]
        ps = imp.par_imputation["psi"][..., 0]
        a = imp.extra["random_L1_df"][:, 0]
        zs.append(
            np.concatenate(
                [
                    ((SJ.mean(0) - sm.mean(-1)) / sm.std(-1))[np.triu_indices(2)],
                    ((0.36 * np.eye(2) - ps.mean(-1)) / ps.std(-1))[np.triu_indices(2)],
                    [(a_true - a.mean()) / a.std()],
                ]
            )
        )
    Z = np.array(zs)
    assert np.all(np.abs(Z.mean(axis=0)) < 4 / np.sqrt(len(Z))), Z.mean(axis=0)
    assert np.all((Z.std(axis=0) > 0.5) & (Z.std(axis=0) < 1.7)), Z.std(axis=0)


def test_random_L1_with_a_binary_target_recovers_heteroscedastic_clusters():
    """random_L1 with a categorical target (jomo's jomo1rancathr): each cluster's latent variance
    stays fixed at 1, the cluster variances of y follow the truth, the fixed effects of y and of
    the latent are covered, and the imputed categories are valid with observed cells unchanged."""
    df, s = _heteroscedastic_binary()
    imp = jomo_impute(
        df, "y + b ~ 1 + z + (1|id)", random_L1="full", m=2, n_burn=500, n_iter=750, seed=2
    )
    J = len(s)
    sj = imp.par_imputation["sigma"][:, :, :, 0].reshape(J, 2, 2, -1)
    assert np.all(sj[:, 1, 1] == 1.0)
    assert np.corrcoef(np.log(sj[:, 0, 0].mean(-1)), np.log(s))[0, 1] > 0.85
    ch = imp.par_imputation["beta"][:, :, :, 0]
    lo, hi = np.quantile(ch, [0.0005, 0.9995], axis=-1)
    truth = np.array([[1.0, 0.3], [0.5, -0.4]])  # level "yes" is the latent's (reference: "no")
    assert np.all((lo < truth) & (truth < hi)), (lo, hi)
    assert imp.param_names["beta"][1] == ["y", "b.yes"]
    assert np.isnan(
        imp.extra["sigma_acceptance"][0, 0]
    )  # one categorical target: exact draws, no MH
    for d in imp.complete():
        assert d["b"].dtype == df["b"].dtype and d["b"].notna().all() and d["y"].notna().all()
        seen = df["b"].notna()
        assert (d["b"][seen] == df["b"][seen]).all()
        np.testing.assert_array_equal(d["y"][df["y"].notna()], df["y"][df["y"].notna()])


def test_random_L1_with_several_categorical_targets(mixed):
    """Several categorical targets under random_L1: each Sigma_j keeps every latent block fixed
    (Metropolis-Hastings on the free elements, with a sensible acceptance rate); the categories
    are valid and observed cells unchanged."""
    imp = jomo_impute(mixed, F_MIXED, random_L1="full", m=2, n_burn=200, n_iter=100, seed=4)
    r = len(imp.param_names["sigma"][1])
    sj = imp.par_imputation["sigma"][..., 0].reshape(-1, r, r, 200)
    names = imp.param_names["sigma"][1]
    g = [i for i, nm in enumerate(names) if nm.startswith("grp.")]
    np.testing.assert_array_equal(sj[:, g[0], g[0]], 1.0)
    np.testing.assert_array_equal(sj[:, g[0], g[1]], 0.5)
    assert 0.05 < imp.extra["sigma_acceptance"][0, 0] < 0.95
    for d in imp.complete():
        for c in ("grp", "flag", "word"):
            seen = mixed[c].notna()
            assert d[c].notna().all() and (d[c][seen] == mixed[c][seen]).all()
            assert set(d[c].astype(str)) <= set(mixed[c].dropna().astype(str))


def test_random_L1_with_an_ordinal_target_recovers_thresholds():
    """An ordered target under random_L1: thresholds from the latent cut points 0 and 0.8."""
    rng = np.random.default_rng(4)
    J, n = 80, 25
    idx = np.repeat(np.arange(J), n)
    u = rng.normal(0, 0.4, J)
    lat = 0.5 + u[idx] + rng.normal(size=J * n)
    y = 2 + u[idx] * 0.5 + 0.6 * lat + rng.normal(0, np.exp(rng.uniform(-1, 1, J))[idx])
    o = pd.Categorical(
        np.digitize(lat, [0.0, 0.8]).astype(str), categories=["0", "1", "2"], ordered=True
    )
    df = pd.DataFrame({"id": idx, "y": y, "o": o})
    df.loc[rng.random(J * n) < 0.15, "o"] = np.nan
    imp = jomo_impute(
        df, "y + o ~ 1 + (1|id)", random_L1="mean", m=2, n_burn=500, n_iter=500, seed=1
    )
    thr = imp.extra["thresholds"]["o"][:, :, 0]
    assert np.all(thr[0] == 0.0)
    lo, hi = np.quantile(thr[1], [0.0005, 0.9995])
    assert lo < 0.8 < hi
    assert set(imp.complete()[0]["o"].astype(str)) <= {"0", "1", "2"}


def test_random_L1_with_level2_targets_recovers_psi_and_clusters():
    """random_L1 with a level-2 target (jomo's jomo2hr): the joint Psi of (u_y, u_x, w) and beta2
    are covered, the cluster variances follow the truth, imputed w is constant within clusters."""
    from scipy.stats import invwishart

    rng = np.random.default_rng(5)
    J, n, a_true = 150, 20, 8.0
    idx = np.repeat(np.arange(J), n)
    SJ = invwishart.rvs(
        df=a_true, scale=np.array([[1.0, 0.3], [0.3, 1.0]]) * (a_true - 3), size=J, random_state=5
    )
    P = np.array([[0.4, 0.1, 0.2], [0.1, 0.3, -0.1], [0.2, -0.1, 0.5]])
    U = rng.multivariate_normal(np.zeros(3), P, size=J)
    E = np.concatenate([rng.multivariate_normal([0, 0], SJ[j], size=n) for j in range(J)])
    z = rng.normal(size=J * n)
    df = pd.DataFrame(
        {
            "id": idx,
            "y": 1 + 0.5 * z + U[idx, 0] + E[:, 0],
            "x": -1 + U[idx, 1] + E[:, 1],
            "z": z,
            "w": (0.5 + U[:, 2])[idx],
        }
    )
    df.loc[rng.random(J * n) < 0.2, "y"] = np.nan
    df.loc[rng.random(J * n) < 0.2, "x"] = np.nan
    df.loc[np.isin(idx, np.flatnonzero(rng.random(J) < 0.15)), "w"] = np.nan
    imp = jomo_impute(
        df,
        ["y + x ~ 1 + z + (1|id)", "w ~ 1"],
        random_L1="full",
        m=2,
        n_burn=500,
        n_iter=1000,
        seed=1,
    )
    ps = imp.par_imputation["psi"][..., 0]
    lo, hi = np.quantile(ps, [0.0005, 0.9995], axis=-1)
    assert np.all((lo < P) & (P < hi)), (lo, hi)
    lo, hi = np.quantile(imp.par_imputation["beta2"][0, 0, :, 0], [0.0005, 0.9995])
    assert lo < 0.5 < hi
    sj = imp.par_imputation["sigma"][..., 0].reshape(J, 2, 2, -1)
    assert np.corrcoef(sj[:, 0, 0].mean(-1), SJ[:, 0, 0])[0, 1] > 0.75
    assert imp.param_names["psi"][0] == ["y:(Intercept)", "x:(Intercept)", "w"]
    for d in imp.complete():
        assert d.groupby("id")["w"].nunique().max() == 1 and d["w"].notna().all()
        np.testing.assert_array_equal(d["w"][df["w"].notna()], df["w"][df["w"].notna()])


def test_random_L1_with_a_categorical_level2_target():
    """A binary level-2 target under random_L1: its latent variance in Psi stays 1, imputed
    categories are constant within clusters, valid and keep the dtype."""
    df, s = _heteroscedastic_binary(J=60, n=15)
    rng = np.random.default_rng(3)
    lev = np.where(rng.random(60) < 0.4, "A", "B").astype(object)
    lev[rng.random(60) < 0.2] = None
    df["k"] = pd.Categorical(lev[df["id"].to_numpy()], categories=["B", "A"])
    imp = jomo_impute(
        df,
        ["y + b ~ 1 + z + (1|id)", "k ~ 1"],
        random_L1="mean",
        m=2,
        n_burn=200,
        n_iter=200,
        seed=1,
    )
    assert np.all(imp.par_imputation["psi"][-1, -1, :, 0] == 1.0)
    for d in imp.complete():
        assert d["k"].dtype == df["k"].dtype and d["k"].notna().all()
        assert d.groupby("id", observed=True)["k"].nunique().max() == 1
        seen = df["k"].notna()
        assert (d["k"][seen] == df["k"][seen]).all()


# ---- latent_bounds -----------------------------------------------------------------------


def test_latent_bounds_keep_latents_in_the_box_and_jomo_alias(mixed):
    """The bounds reach the latent draws: with a narrow box every latent beta stays inside it; "jomo"
    is the same as (-3, 4); None is the exact model (different draws for the same seed)."""
    kw = {"m": 1, "n_burn": 20, "n_iter": 200, "seed": 3}
    a = jomo_impute(mixed, F_MIXED, latent_bounds="jomo", **kw)
    b = jomo_impute(mixed, F_MIXED, latent_bounds=(-3, 4.0), **kw)
    c = jomo_impute(mixed, F_MIXED, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    assert not np.array_equal(a.par_imputation["beta"], c.par_imputation["beta"])
    narrow = jomo_impute(mixed, F_MIXED, latent_bounds=(-0.1, 0.1), **kw)
    # posterior means of the latent intercepts: squeezed into the box's half-width 0.1 around 0
    # (exact model: up to -0.24)
    lat = narrow.par_imputation["beta"][0, 1:, :, 0].mean(axis=-1)
    assert np.abs(lat).max() < 0.1
    assert np.abs(c.par_imputation["beta"][0, 1:, :, 0].mean(axis=-1)).max() > 0.15


@pytest.mark.parametrize(
    "bad,err,msg",
    [
        (
            "exact",
            ValueError,
            r"`latent_bounds` must be None, 'jomo' or a pair \(lo, hi\); got 'exact'",
        ),
        ((1.0, 4.0), ValueError, r"`latent_bounds` = \(1.0, 4.0\) must satisfy lo < 0 < hi"),
        (3.0, TypeError, r"`latent_bounds` must be None, 'jomo' or a pair of numbers"),
        ((-1, 0, 1), TypeError, r"`latent_bounds` must be None, 'jomo' or a pair of numbers"),
    ],
)
def test_error_latent_bounds(mixed, bad, err, msg):
    with pytest.raises(err, match=msg):
        jomo_impute(mixed, F_MIXED, m=1, n_burn=1, n_iter=1, latent_bounds=bad)


# ---- mitml's type codes -------------------------------------------------------------------


def test_type_codes_give_the_same_draws_as_the_formula(mixed):
    kw = {"m": 2, "n_burn": 20, "n_iter": 5, "seed": 7}
    codes = {"id": -2, "y": 1, "z": 3, "grp": 1, "flag": 1, "word": 0}
    a = jomo_impute(mixed, type=codes, **kw)
    b = jomo_impute(mixed, "y + grp + flag ~ 1 + z + (1 + z|id)", **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    np.testing.assert_array_equal(a.index, b.index)
    assert a.param_names == b.param_names
    # single level: no cluster code
    a = jomo_impute(mixed, type={"y": 1, "grp": 1, "z": 2}, **kw)
    b = jomo_impute(mixed, "y + grp ~ 1 + z", **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    assert a.extra["single_level"]


def test_type_list_gives_level2_targets_and_group(mixed):
    df = mixed.assign(
        w=np.random.default_rng(3).normal(size=mixed["id"].max() + 1)[mixed["id"]],
        g=np.where(mixed["id"] < 12, "a", "b"),
    )
    df.loc[df["id"].isin([1, 4, 9, 15, 20]), "w"] = np.nan
    kw = {"m": 2, "n_burn": 20, "n_iter": 5, "seed": 7}
    with pytest.warns(UserWarning, match="replaced with cluster means"):
        a = jomo_impute(
            df, type=[{"id": -2, "y": 1, "grp": 1, "g": -1}, {"w": 1, "z": 2, "id": -2}], **kw
        )
    with pytest.warns(UserWarning, match="replaced with cluster means"):
        b = jomo_impute(df, ["y + grp ~ 1 + (1|id)", "w ~ 1 + z"], group="g", **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    assert a.targets == ["y", "grp", "w"] and a.settings["group"] == "g"


@pytest.mark.parametrize(
    "kw,err,msg",
    [
        (
            {"formula": "y ~ 1", "type": {"y": 1}},
            ValueError,
            "needs exactly one of `formula` or `type`",
        ),
        (
            {"type": {"y": 1, "z": 5}},
            ValueError,
            r"`type` codes must be among 1, 2, 3, -1, -2, 0; got \{'z': 5\}",
        ),
        ({"type": [{"y": 1, "id": -2}]}, TypeError, "`type` as a list must hold two mappings"),
        (
            {"type": [{"y": 1, "id": -2}, {"z": 2}]},
            ValueError,
            r"the level-2 `type` names no target \(code 1\)",
        ),
        ({"type": "y"}, TypeError, "`type` must be a mapping"),
        ({"formula": 5}, TypeError, "`formula` must be a string or a list of two strings; got int"),
        ({"type": {"y": 1, "id": -1}, "group": "z"}, ValueError, "disagree"),
    ],
)
def test_error_type_codes(mixed, kw, err, msg):
    with pytest.raises(err, match=msg):
        jomo_impute(mixed, m=1, n_burn=1, n_iter=1, **kw)


@pytest.mark.parametrize(
    "lo,hi",
    [
        (-np.inf, np.inf),
        (0.3, np.inf),
        (2.5, np.inf),
        (-np.inf, -1.7),
        (-1.0, 1.2),
        (0.2, 0.6),
        (1.0, 1.5),
    ],
)
def test_truncnorm_rng_matches_scipy(lo, hi):
    """The rejection samplers used for latent draws: KS test against scipy's truncated normal."""
    from scipy import stats

    from pymitml.samplers._truncnorm import truncnorm_rng

    rng = np.random.default_rng(11)
    mean, sd = 0.4, 1.3
    draws = np.array([truncnorm_rng(rng, mean, sd, lo, hi) for _ in range(20000)])
    a, b = (lo - mean) / sd, (hi - mean) / sd
    assert draws.min() >= lo and draws.max() <= hi
    assert stats.kstest(draws, stats.truncnorm(a, b, loc=mean, scale=sd).cdf).pvalue > 0.001


def test_truncnorm_batch_matches_scipy():
    """The batched sampler of the latent step: one batch mixing lower-, upper-, two-sided and
    unbounded draws with deep tails (both rejection lists and the direct draws), each kind KS-tested
    against scipy, every draw inside its bounds, the same seed giving the same draws."""
    from scipy import stats

    from pymitml.samplers._truncnorm import truncnorm_batch

    kinds = [
        (0.0, np.inf),
        (-np.inf, 0.0),
        (1.5, np.inf),
        (-np.inf, -2.0),
        (-np.inf, np.inf),
        (-0.3, 0.8),
        (3.0, np.inf),
        (-np.inf, -3.0),
        (5.0, np.inf),
    ]
    n = 9 * 6000
    kind = np.arange(n) % len(kinds)
    lo = np.array([kinds[k][0] for k in kind])
    hi = np.array([kinds[k][1] for k in kind])
    mean = np.where(np.arange(n) % 2 == 0, 0.7, -1.2)
    sd = 0.9

    def run(seed):
        out, wi, wt, ws = np.empty(n), np.empty(n, np.int64), np.empty(n), np.empty(n)
        truncnorm_batch(
            np.random.default_rng(seed), mean, np.full(n, sd), lo, hi, out, n, wi, wt, ws
        )
        return out

    out = run(5)
    np.testing.assert_array_equal(out, run(5))
    assert np.all((out >= lo) & (out <= hi))
    for k, (a0, b0) in enumerate(kinds):
        for m in (0.7, -1.2):
            x = out[(kind == k) & (mean == m)]
            dist = stats.truncnorm((a0 - m) / sd, (b0 - m) / sd, loc=m, scale=sd)
            assert stats.kstest(x, dist.cdf).pvalue > 1e-3, (a0, b0, m)


def test_inverse_wishart_draws_of_the_random_L1_sampler():
    """draw_inv_wishart_pair: Sigma ~ IW(nu, M) with its exact inverse and log-determinant (E Sigma =
    M / (nu - r - 1), E Sigma^-1 = nu M^-1). draw_iw_given_block: the conditional draw given a
    fixed principal block has the distribution of (Sigma_11.2, Sigma_22^-1 Sigma_21) under IW(nu, M)
    (both independent of Sigma_22): their means and SDs match unconstrained draws."""
    from pymitml.samplers._covariance import FixedBlock, draw_iw_given_block
    from pymitml.samplers._linalg import draw_inv_wishart_pair as _draw_iw_pair

    rng = np.random.default_rng(3)
    r, nu, K = 4, 12.0, 40000
    M = (
        np.array(
            [[3.0, 0.5, 0.4, 0.2], [0.5, 2.0, 0.3, 0.1], [0.4, 0.3, 1.5, 0.6], [0.2, 0.1, 0.6, 1.2]]
        )
        * 3
    )
    i1, i2 = np.array([0, 1]), np.array([2, 3])
    Cb = np.array([[1.0, 0.5], [0.5, 1.0]])
    S, Si, w = np.empty((r, r)), np.empty((r, r)), np.empty((20, r, r))
    blk = FixedBlock(i1, i2, Cb, np.linalg.inv(Cb), float(np.linalg.slogdet(Cb)[1]))

    def parts(S):
        B = np.linalg.solve(S[np.ix_(i2, i2)], S[np.ix_(i2, i1)])
        return np.concatenate([(S[np.ix_(i1, i1)] - S[np.ix_(i1, i2)] @ B).ravel(), B.ravel()])

    free, block, sums, sums_inv = [], [], np.zeros((r, r)), np.zeros((r, r))
    for _ in range(K):
        chi = np.array([rng.chisquare(nu - i) for i in range(r)])
        ld = _draw_iw_pair(M, chi, rng.standard_normal(6), S, Si, w[:5], r)
        np.testing.assert_allclose(S @ Si, np.eye(r), atol=1e-12)
        assert abs(ld - np.linalg.slogdet(S)[1]) < 1e-10
        sums += S
        sums_inv += Si
        free.append(parts(S))
        ld = draw_iw_given_block(rng, M, nu, blk, S, Si, w, r)
        np.testing.assert_array_equal(S[np.ix_(i2, i2)], Cb)
        np.testing.assert_allclose(S @ Si, np.eye(r), atol=1e-12)
        assert abs(ld - np.linalg.slogdet(S)[1]) < 1e-10
        block.append(parts(S))
    np.testing.assert_allclose(sums / K, M / (nu - r - 1), rtol=0.03, atol=0.01)
    np.testing.assert_allclose(sums_inv / K, nu * np.linalg.inv(M), rtol=0.03, atol=0.02)
    free, block = np.array(free), np.array(block)
    se = free.std(0) / np.sqrt(K)
    assert np.all(np.abs(free.mean(0) - block.mean(0)) < 5 * np.sqrt(2) * se)
    np.testing.assert_allclose(block.std(0), free.std(0), rtol=0.05)


def test_a_failing_kernel_step_is_reported_with_its_step_iteration_chain_and_group(monkeypatch):
    """The kernels return the Status of the failing step (and its iteration within the segment in
    work.fail_at); the chain hands both to the driver, which raises NumericalFailureError (a
    FloatingPointError) with the step, iteration, chain and group."""
    from pymitml.datasets import random_intercept
    from pymitml.exceptions import NumericalFailureError, Status
    from pymitml.samplers import _jomo_chain

    calls = []

    def kernel(k, rec0, *args):  # chain 1 of group "b" (the 4th task) fails in its 2nd segment
        calls.append((k, rec0))
        args[-1].fail_at[0] = 3
        return int(Status.PSI) if len(calls) == 3 * 4 + 2 else 0

    monkeypatch.setattr(_jomo_chain, "jomo_iterate", kernel)
    df = random_intercept(10, 5, seed=1)
    df["g"] = np.where(np.arange(len(df)) < 25, "a", "b")
    with pytest.raises(NumericalFailureError) as err:  # 4 calls a task: 250 + 250 + 100, then 1
        jomo_impute(
            df,
            "y ~ 1 + z + (1|id)",
            group="g",
            m=2,
            chains=2,
            n_burn=600,
            n_iter=1,
            seed=1,
            n_threads=1,
        )
    assert isinstance(err.value, FloatingPointError)
    assert err.value.status == Status.PSI and err.value.chain == 1 and err.value.group == "b"
    assert err.value.iteration == 250 + 3  # the second segment of 250, its 4th iteration
    assert calls[-2:] == [(250, 0), (250, 250)]
    assert "Psi" in str(err.value)
