"""pan_impute: agreement with R's panImpute, recovery of known parameters, invariants, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import pymitml as pm

from ._data import batch_means_mcse, r_array, r_dataframe

RI = "ReadDis + SES ~ 1 + CognAbility + (1|ID)"
# random slope on grand-mean-centred CognAbility: integrated autocorrelation times <= ~300
RS = "ReadDis + SES ~ 1 + CognC + (1 + CognC|ID)"
# the same model uncentred: the fixed slope mixes with tau ~ 2,700 in both samplers (slow test)
RS_RAW = "ReadDis + SES ~ 1 + CognAbility + (1 + CognAbility|ID)"


@pytest.fixture(scope="module")
def studentratings(R):
    # a copy with centred CognAbility; R's own `studentratings` stays untouched for other tests
    R(
        "data(studentratings, package='mitml'); sr_pan <- studentratings; "
        "sr_pan$CognC <- sr_pan$CognAbility - mean(sr_pan$CognAbility)"
    )
    return r_dataframe(R, "sr_pan")


def _compare_with_panImpute(R, data, formula, n):
    """Every element of beta, psi and sigma: |mean_py - mean_R| < 4 combined batch-means MCSE
    (20 batches, each much longer than the autocorrelation time)."""
    imp = pm.pan_impute(data, formula, m=1, n_burn=1000, n_iter=n, seed=11)
    R(
        f"imp <- mitml::panImpute(sr_pan, formula={formula}, n.burn=1000, "
        f"n.iter={n}, m=1, seed=12, silent=TRUE)"
    )
    worst = 0.0
    for block in ("beta", "psi", "sigma"):
        ours = imp.par_imputation[block][:, :, :, 0]
        theirs = r_array(R, f"imp$par.imputation${block}")[:, :, :, 0]
        assert ours.shape == theirs.shape
        for i, j in np.ndindex(ours.shape[:2]):
            a, b = ours[i, j], theirs[i, j]
            se = np.hypot(batch_means_mcse(a, 20), batch_means_mcse(b, 20))
            z = abs(a.mean() - b.mean()) / se
            worst = max(worst, z)
            assert z < 4, (
                f"{block}[{i},{j}]: pymitml {a.mean():.5g} vs panImpute {b.mean():.5g} (z={z:.2f})"
            )
    assert worst > 0  # the comparison really ran


@pytest.mark.parametrize(
    "formula,n", [(RI, 20000), (RS, 40000)], ids=["random-intercept", "random-slope"]
)
def test_posterior_means_agree_with_panImpute(R, studentratings, formula, n):
    _compare_with_panImpute(R, studentratings, formula, n)


def test_posterior_means_agree_with_stored_panImpute_reference():
    """The same comparison against posterior means stored by r_compat/pan_studentratings.R
    (runs without R: the data are r_compat's CSV copy of studentratings)."""
    import json
    import pathlib

    root = pathlib.Path(__file__).parents[1] / "r_compat"
    ref = json.loads((root / "pan_studentratings_ref.json").read_text())
    sr = pd.read_csv(root / "diag_studentratings.csv")
    sr["CognC"] = sr["CognAbility"] - sr["CognAbility"].mean()
    for key, formula in (("ri", RI), ("rs", RS)):
        n = ref[key]["n_iter"]
        imp = pm.pan_impute(sr, formula, m=1, n_burn=1000, n_iter=n, seed=21)
        for block in ("beta", "psi", "sigma"):
            ours = imp.par_imputation[block][:, :, :, 0]
            mean_r = np.asarray(ref[key][block]["mean"])
            mcse_r = np.asarray(ref[key][block]["mcse"])
            for i, j in np.ndindex(ours.shape[:2]):
                se = np.hypot(batch_means_mcse(ours[i, j], 20), mcse_r[i, j])
                z = abs(ours[i, j].mean() - mean_r[i, j]) / se
                assert z < 4, (
                    f"{key} {block}[{i},{j}]: {ours[i, j].mean():.5g} vs {mean_r[i, j]:.5g} (z={z:.2f})"
                )


@pytest.mark.slow
def test_posterior_means_agree_with_panImpute_uncentred_slope(R, studentratings):
    _compare_with_panImpute(R, studentratings, RS_RAW, 300000)


def test_known_parameters_are_covered():
    """Simulated data (200 clusters): 99% posterior intervals cover the true beta, psi, sigma."""
    df = pm.datasets.random_intercept(200, 20, seed=3)
    truth = df.attrs["truth"]
    imp = pm.pan_impute(df, "y + x ~ 1 + z + w + (1|id)", m=1, n_burn=500, n_iter=4000, seed=5)
    for block in ("beta", "psi", "sigma"):
        ch = imp.par_imputation[block][:, :, :, 0]
        lo, hi = np.quantile(ch, [0.005, 0.995], axis=2)
        t = np.asarray(truth[block])
        assert np.all((lo <= t) & (t <= hi)), f"{block}: truth {t} outside [{lo}, {hi}]"


@pytest.fixture(scope="module")
def small():
    df = pm.datasets.random_intercept(30, 10, seed=7)
    rng = np.random.default_rng(0)
    df = df.iloc[rng.permutation(len(df))]  # rows in any order
    df.index = pd.Index(rng.permutation(len(df)) * 3 + 100, name="case")
    df["id"] = df["id"].map(lambda k: f"c{k:02d}")  # string cluster ids
    df["x"] = df["x"].astype(np.float32)
    df["note"] = pd.Categorical(np.where(df["z"] > 0, "hi", "lo"))
    return df[["note", "y", "id", "x", "z", "w"]]


F = "y + x ~ 1 + z + w + (1|id)"


def test_observed_values_and_layout_survive_pandas(small):
    imp = pm.pan_impute(small, F, m=3, n_burn=50, n_iter=10, seed=1)
    implist = imp.complete()
    assert isinstance(implist, pm.MitmlList) and len(implist) == 3
    for d in implist:
        assert list(d.columns) == list(small.columns)
        assert d.index.equals(small.index)
        assert (d.dtypes == small.dtypes).all()
        for c in ("y", "x"):
            obs = small[c].notna()
            assert np.array_equal(d.loc[obs, c].to_numpy(), small.loc[obs, c].to_numpy())
            assert d[c].notna().all()
        pd.testing.assert_frame_equal(d[["note", "id", "z", "w"]], small[["note", "id", "z", "w"]])
    # imputations differ between data sets, and complete(0) is the incomplete data
    assert not np.array_equal(implist[0]["y"].to_numpy(), implist[1]["y"].to_numpy())
    pd.testing.assert_frame_equal(imp.complete(0), small)
    sub = imp.complete([1, 3])
    pd.testing.assert_frame_equal(sub[1], implist[2])


def test_polars_in_polars_out(small):
    pdf = small.reset_index(drop=True)
    pldf = pl.from_pandas(pdf)
    imp_pl = pm.pan_impute(pldf, F, m=2, n_burn=30, n_iter=5, seed=4)
    imp_pd = pm.pan_impute(pdf, F, m=2, n_burn=30, n_iter=5, seed=4)
    np.testing.assert_array_equal(imp_pl.replacement, imp_pd.replacement)
    out = imp_pl.complete(1)
    assert isinstance(out, pl.DataFrame)
    assert out.columns == pldf.columns and out.schema == pldf.schema
    obs = pldf["y"].is_not_null()
    assert out.filter(obs)["y"].equals(pldf.filter(obs)["y"])
    assert out["y"].null_count() == 0


def test_same_seed_same_draws_whatever_threads(small):
    kw = dict(m=4, n_burn=40, n_iter=5, seed=123, chains=2)
    a = pm.pan_impute(small, F, n_threads=1, **kw)
    b = pm.pan_impute(small, F, n_threads=2, **kw)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    for k in a.par_chains_imputation:
        np.testing.assert_array_equal(a.par_chains_imputation[k], b.par_chains_imputation[k])
    c = pm.pan_impute(small, F, m=4, n_burn=40, n_iter=5, seed=124, chains=2)
    assert not np.array_equal(a.replacement, c.replacement)


def test_chain_layout_and_replacement_matrix(small):
    imp = pm.pan_impute(
        small,
        "y + x ~ 1 + z + (1 + z|id)",
        m=4,
        n_burn=20,
        n_iter=5,
        seed=2,
        chains=2,
        keep_chains="full",
    )
    assert imp.par_burnin["beta"].shape == (2, 2, 20, 1)
    assert imp.par_imputation["psi"].shape == (4, 4, 10, 1)  # two chains x 2 imputations x 5
    assert imp.par_chains_imputation["sigma"].shape == (2, 2, 10, 1, 2)
    assert imp.param_names["psi"][0] == ["y:(Intercept)", "y:z", "x:(Intercept)", "x:z"]
    n_cells = int(small[["y", "x"]].isna().sum().sum())
    assert imp.replacement.shape == (n_cells, 4)
    pos = list(small.columns)
    assert set(imp.index[:, 1]) == {pos.index("y"), pos.index("x")}
    d = imp.complete(2)
    vals = d.to_numpy()[imp.index[:, 0], imp.index[:, 1]].astype(float)
    np.testing.assert_allclose(vals, imp.replacement[:, 1], rtol=1e-6)  # x is float32
    diag = pm.pan_impute(small, F, m=2, n_burn=5, n_iter=5, seed=2, keep_chains="diagonal")
    assert diag.par_imputation["psi"].shape == (2, 1, 10, 1)
    assert diag.par_imputation["sigma"].shape == (2, 1, 10, 1)


def test_type_codes_equal_formula(small):
    a = pm.pan_impute(small, "y + x ~ 1 + z + (1 + z|id)", m=2, n_burn=20, n_iter=5, seed=9)
    b = pm.pan_impute(
        small, type={"y": 1, "x": 1, "z": 3, "id": -2, "w": 0}, m=2, n_burn=20, n_iter=5, seed=9
    )
    np.testing.assert_array_equal(a.replacement, b.replacement)


def test_group_imputes_separately(small):
    df = small.assign(region=np.where(np.arange(len(small)) % 2 == 0, "north", "south"))
    # clusters must be nested in groups for a meaningful model: use id x region
    df["id"] = df["id"] + df["region"]
    imp = pm.pan_impute(df, F, group="region", m=2, n_burn=20, n_iter=5, seed=1)
    assert imp.group_labels == ["north", "south"]
    assert imp.par_imputation["beta"].shape[-1] == 2
    assert imp.complete(1)["y"].notna().all()


def test_missing_code(small):
    coded = small.copy()
    coded["y"] = coded["y"].fillna(-99.0)
    a = pm.pan_impute(coded, F, m=2, n_burn=20, n_iter=5, seed=3, missing_code=-99)
    b = pm.pan_impute(small, F, m=2, n_burn=20, n_iter=5, seed=3)
    np.testing.assert_array_equal(a.replacement, b.replacement)
    assert not (a.complete(1)["y"] == -99).any()


# ---- bad input: one clear error each ---------------------------------------------------------


def test_error_unknown_column(small):
    with pytest.raises(ValueError, match=r"predictor\(s\) \['zz'\] not found in the data"):
        pm.pan_impute(small, "y ~ 1 + zz + (1|id)")
    with pytest.raises(ValueError, match=r"target\(s\) \['yy'\] not found"):
        pm.pan_impute(small, "yy ~ 1 + (1|id)")


def test_error_non_numeric_target(small):
    with pytest.raises(ValueError, match="target 'note' is not numeric .*use jomo_impute"):
        pm.pan_impute(small, "note ~ 1 + (1|id)")


def test_error_cluster_id_missing(small):
    df = small.copy()
    df.iloc[3, df.columns.get_loc("id")] = None
    with pytest.raises(ValueError, match="cluster id 'id' is missing in 1 row"):
        pm.pan_impute(df, F)


def test_error_all_values_missing(small):
    df = small.assign(y=np.nan)
    with pytest.raises(ValueError, match="target 'y' has no observed value"):
        pm.pan_impute(df, F)


def test_error_incomplete_predictor(small):
    df = small.copy()
    df.iloc[0, df.columns.get_loc("z")] = np.nan
    with pytest.raises(ValueError, match="predictor 'z' has 1 missing value"):
        pm.pan_impute(df, F)


def test_error_singular_design(small):
    df = small.assign(z2=2 * small["z"])
    with pytest.raises(ValueError, match=r"singular design.*\['z2'\]"):
        pm.pan_impute(df, "y ~ 1 + z + z2 + (1|id)")


def test_error_no_cluster_term(small):
    with pytest.raises(ValueError, match="has no cluster term; pan_impute fits a two-level model"):
        pm.pan_impute(small, "y ~ 1 + z")


def test_error_empty_random_part(small):
    with pytest.raises(ValueError, match=r"has no terms; write '\(1\|id\)'"):
        pm.pan_impute(small, "y ~ 1 + z + (0|id)")


def test_integer_target_comes_back_as_float(small):
    df = small.assign(
        yi=pd.array(np.where(small.y.isna(), None, np.round(small.y * 10)), dtype="Int64")
    )
    out = pm.pan_impute(df, "yi ~ 1 + z + (1|id)", m=1, n_burn=5, n_iter=2, seed=1).complete(1)
    assert out["yi"].dtype == pd.Float64Dtype() and out["yi"].notna().all()
    obs = df["yi"].notna()
    assert (out.loc[obs, "yi"] == df.loc[obs, "yi"].astype("Float64")).all()


def test_error_arguments(small):
    with pytest.raises(ValueError, match=r"`n_burn` must be an integer >= 0; got -5"):
        pm.pan_impute(small, F, n_burn=-5)
    with pytest.raises(ValueError, match=r"`m` must be a positive integer; got 0"):
        pm.pan_impute(small, F, m=0)
    with pytest.raises(ValueError, match="`keep_chains` must be 'full' or 'diagonal'"):
        pm.pan_impute(small, F, keep_chains="all")
    with pytest.raises(ValueError, match=r"`m` \(5\) must be a multiple of `chains` \(2\)"):
        pm.pan_impute(small, F, m=5, chains=2)
    with pytest.raises(ValueError, match=r"`prior\['Binv'\]` must be a 2 x 2 matrix"):
        pm.pan_impute(small, F, prior={"Binv": np.eye(3)})
    with pytest.raises(TypeError, match="must be a pandas or polars DataFrame"):
        pm.pan_impute(small.to_numpy(), F)
    with pytest.raises(ValueError, match="exactly one of `formula` or `type`"):
        pm.pan_impute(small)


def test_progress_bar_on_request_and_silent_by_default(small, capsys):
    pm.pan_impute(small, F, m=2, n_burn=20, n_iter=5, seed=1, progress=True)
    assert "imputing" in capsys.readouterr().err
    pm.pan_impute(small, F, m=2, n_burn=20, n_iter=5, seed=1)  # stderr is not a terminal here
    assert capsys.readouterr().err == ""


@pytest.mark.slow
def test_coverage_study():
    """200 replications: 95% intervals of the pooled fixed effects cover the truth 91-99% of the
    time and the bias is small (table: benchmarks/study_pan_coverage.py)."""
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parents[1] / "benchmarks" / "study_pan_coverage.py"
    spec = importlib.util.spec_from_file_location("study_pan_coverage", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    tab = mod.run(200)
    assert tab["coverage"].between(0.91, 0.99).all(), tab
    assert (tab["bias"].abs() < 0.05).all(), tab


# --- the kernel's named steps against plain NumPy (issue 12) --------------------------------


def test_generic_covariance_steps_match_numpy():
    from pymitml.samplers import _gibbs as G

    rng = np.random.default_rng(5)
    v = rng.normal(size=(3, 11))
    S = np.empty((3, 3))
    G.sum_outer(v, S)
    assert np.allclose(S, v @ v.T)
    # E = (W - X beta)'(W - X beta) from cross-products
    X, W, beta = rng.normal(size=(40, 3)), rng.normal(size=(40, 2)), rng.normal(size=(3, 2))
    E = np.empty((2, 2))
    G.fixed_residual_crossproducts(W.T @ W, X.T @ W, X.T @ X, beta, E)
    res = W - X @ beta
    assert np.allclose(E, res.T @ res)
    # the conjugate IW step = draw_inv_wishart on prior + cross
    from pymitml.samplers._linalg import draw_inv_wishart

    chi, nrm = rng.chisquare(10, 3), rng.normal(size=3)
    prior, cross = np.eye(3), v @ v.T
    out1, out2, scale = np.empty((3, 3)), np.empty((3, 3)), np.empty((4, 4))
    w1, w2 = np.empty((4, 4)), np.empty((4, 4))
    assert G.draw_covariance_iw(chi, nrm, prior, cross, scale, out1, w1, w2)
    assert draw_inv_wishart(chi, nrm, prior + cross, out2, w1, w2, 3)
    assert np.array_equal(out1, out2)
    assert not G.draw_covariance_iw(chi, nrm, -prior, cross * 0, scale, out1, w1, w2)


def test_record_steps_and_total_crossproducts():
    from pymitml.samplers import _gibbs as G

    rng = np.random.default_rng(6)
    S = rng.normal(size=(3, 3))
    S = S @ S.T
    full, diag = np.zeros((3, 3, 4)), np.zeros((3, 1, 4))
    G.record_covariance(S, full, 2)
    G.record_covariance(S, diag, 1)
    assert np.array_equal(full[..., 2], S) and np.array_equal(diag[:, 0, 1], np.diag(S))
    assert not full[..., :2].any() and not diag[..., 0].any()
    a = [rng.normal(size=sh) for sh in ((2, 3), (1, 3, 5), (3, 3))]
    b = [rng.normal(size=x.shape) for x in a]
    out = [np.empty(x.shape) for x in a]
    G.total_crossproducts(*a, *b, *out)
    for x, y, o in zip(a, b, out):
        assert np.array_equal(o, x + y)


def test_fill_normals_draws_in_numpys_order():
    from pymitml.samplers import _gibbs as G

    z, chi, dfs = np.empty(5), np.empty(2), np.array([3.0, 7.5])
    G.fill_normals(np.random.default_rng(1), z, chi, dfs)
    ref = np.random.default_rng(1)
    zz = [ref.standard_normal() for _ in range(5)]
    cc = [ref.chisquare(d) for d in dfs]
    assert np.array_equal(z, zz) and np.array_equal(chi, cc)


def test_kernel_failure_names_the_step():
    """A covariance that is not positive definite stops the chain with the step's Status."""
    from pymitml.exceptions import Status
    from pymitml.samplers import _pan_kernel as K

    df = pm.datasets.random_intercept(5, 6, seed=2)
    imp = pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=1, n_burn=1, n_iter=1, seed=1)
    assert imp.m == 1
    r, p, q, J = 2, 2, 1, 3
    data = K.PanData(
        np.eye(p),
        np.ones((q, q, J)),
        np.zeros((q, p, J)),
        np.zeros((p, r)),
        np.zeros((q, r, J)),
        np.eye(r),
        np.zeros((p, 0)),
        np.zeros((q, 0)),
        np.zeros(0, np.int64),
        np.zeros(1, np.int64),
        np.zeros(1, np.int64),
        np.zeros((0, r), np.int64),
        np.zeros(0, np.int64),
        np.zeros((0, r), np.int64),
        np.zeros(0, np.int64),
        np.eye(r),
        np.eye(q * r),
        np.full(q * r + r, 10.0),
    )
    par = K.PanParams(
        np.zeros((p, r)),
        -np.eye(r),
        np.eye(q * r),
        np.zeros((q, r, J)),
        np.zeros((r, 0)),
        np.zeros((p, r)),
        np.zeros((q, r, J)),
        np.zeros((r, r)),
    )
    work = K.pan_work(data, r, 0)
    store = K.ChainStore(np.zeros((p, r, 1)), np.zeros((2, 2, 1)), np.zeros((r, r, 1)))
    code = K.pan_iterate(1, 0, np.random.default_rng(0), data, par, work, store)
    assert code == Status.SIGMA and work.failed_at[0] == 0
    with pytest.raises(pm.exceptions.NumericalFailureError, match="Sigma"):
        pm.exceptions.raise_for_status(code, sampler="pan_impute", iteration=0, chain=0)
