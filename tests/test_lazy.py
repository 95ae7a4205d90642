"""Lazy completed data: ``imp.complete()`` holds the observed data once and the replacement
matrix and builds each data set on use; every operation gives what the materialised list gives."""

from __future__ import annotations

import numpy as np
import pandas as pd
import polars as pl
import pytest

import pymitml as pm
from pymitml import mitml_list as ml


def _data(polars: bool = False):
    df = pm.datasets.random_intercept(12, 6, seed=4)
    rng = np.random.default_rng(0)
    df["sex"] = pd.Categorical(rng.choice(["f", "m"], len(df)), categories=["m", "f"])
    df.loc[rng.random(len(df)) < 0.2, "sex"] = np.nan
    df["label"] = [f"r{i}" for i in range(len(df))]
    df.index = pd.Index(np.arange(len(df))[::-1] * 3 + 7, name="row")  # not a RangeIndex
    return pl.from_pandas(df) if polars else df


@pytest.fixture(scope="module", params=["pandas", "polars"])
def imp(request):
    df = _data(request.param == "polars")
    return pm.jomo_impute(df, "y + x + sex ~ 1 + z + (1|id)", m=4, n_burn=30, n_iter=5, seed=11)


def _equal(a, b):
    if isinstance(a, pd.DataFrame):
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    else:
        assert a.equals(b) and a.schema == b.schema


def _eager(imp):
    """The data sets as complete() built them before it became lazy."""
    lazy = imp.complete()
    src = lazy._src
    return [imp.codebook.complete(src.rows, src.cols, imp.replacement[:, j]) for j in range(imp.m)]


def test_complete_is_lazy_and_holds_observed_data_once_plus_replacement(imp):
    implist = imp.complete()
    assert implist.lazy and len(implist) == imp.m
    src = implist._src
    assert isinstance(src, ml._Imputed)
    assert src.codebook.incomplete is imp.codebook.incomplete  # not copied
    assert np.shares_memory(src.values, imp.replacement)  # not copied either
    assert implist.columns == list(imp.incomplete.columns)
    n = imp.incomplete.shape[0]
    assert repr(implist).endswith(f"{n} rows x {len(implist.columns)} columns>")


def test_each_data_set_is_the_materialised_one(imp):
    implist = imp.complete()
    eager = _eager(imp)
    for a, b in zip(implist, eager):  # iteration
        _equal(a, b)
    for i in range(-imp.m, imp.m):  # __getitem__, also negative
        _equal(implist[i], eager[i])
    _equal(imp.complete(2), eager[1])
    full = imp.complete(lazy=False)
    assert not full.lazy and full.original is not None
    for a, b in zip(full, eager):
        _equal(a, b)
    with pytest.raises(IndexError, match="data set 4 out of range; the list holds 4"):
        implist[4]
    with pytest.raises(TypeError, match="indices must be integers or slices; got str"):
        implist["a"]


def test_observed_values_index_dtypes_and_categories_survive(imp):
    inc = imp.incomplete
    for d in imp.complete():
        if isinstance(d, pd.DataFrame):
            assert d.index.equals(inc.index) and list(d.columns) == list(inc.columns)
            assert d["sex"].dtype == inc["sex"].dtype  # categories and their order
            obs = inc["y"].notna().to_numpy()
            assert np.array_equal(d["y"].to_numpy()[obs], inc["y"].to_numpy()[obs])
            assert not d[["y", "x", "sex"]].isna().any().any()
            assert d["label"].equals(inc["label"])
        else:
            assert d.schema["sex"] == inc.schema["sex"] and d.columns == inc.columns
            obs = inc["y"].is_not_null().to_numpy()
            assert np.array_equal(d["y"].to_numpy()[obs], inc["y"].to_numpy()[obs])
            assert d.null_count().select(["y", "x", "sex"]).sum_horizontal().item() == 0


def test_a_data_set_taken_is_a_new_frame_each_time(imp):
    implist = imp.complete()
    a = implist[0]
    if isinstance(a, pd.DataFrame):
        a["y"] = 0.0
    else:
        a = a.with_columns(pl.lit(0.0).alias("y"))
    assert not (implist[0]["y"] == 0.0).all()
    if isinstance(a, pd.DataFrame):  # writes into a column shared with the observed data
        b = implist[1]
        before = imp.incomplete["z"].copy()
        b.iloc[0, b.columns.get_loc("z")] = 99.0
        b["w"] *= 2
        pd.testing.assert_series_equal(imp.incomplete["z"], before)
        assert implist[1]["z"].iloc[0] == before.iloc[0] and b["z"].iloc[0] == 99.0


def test_slices_and_selected_imputations_stay_lazy(imp):
    implist = imp.complete()
    eager = _eager(imp)
    part = implist[1:4:2]
    assert part.lazy and len(part) == 2 and part.original is not None
    _equal(part[0], eager[1])
    _equal(part[1], eager[3])
    sel = imp.complete([3, 0], force_list=True)
    assert sel.lazy
    _equal(sel[0], eager[2])
    _equal(sel[1], imp.incomplete)


def _add_product(d):
    if isinstance(d, pd.DataFrame):
        d["yx"] = d["y"] * d["x"]
        d["z"] = d["z"] * 2
        return d
    return d.with_columns((pl.col("y") * pl.col("x")).alias("yx"), pl.col("z") * 2)


def test_within_keeps_only_the_changed_columns(imp):
    implist = imp.complete()
    w = implist.within(_add_product, ignore=["label"])
    ref = [_add_product(d.copy() if isinstance(d, pd.DataFrame) else d) for d in _eager(imp)]
    ref = [
        r.drop(columns=["label"]) if isinstance(r, pd.DataFrame) else r.drop("label") for r in ref
    ]
    assert w.lazy and w.columns == list(ref[0].columns)
    for a, b in zip(w, ref):
        _equal(a, b)
    for cols, changed in w._src.deltas:
        assert sorted(changed) == ["yx", "z"]  # y, x, sex, id, w are rebuilt, not stored
    # within on within, and a result with other rows (kept whole)
    w2 = w.within(lambda d: d.head(5))
    assert w2._src.deltas[0][0] is None
    _equal(w2[2], ref[2].head(5))
    with pytest.raises(ValueError, match="returned None"):
        implist.within(lambda d: None)


def test_subset_and_sort_match_the_materialised_list(imp):
    implist = imp.complete()
    full = imp.complete(lazy=False)
    for lazy_out, eager_out in [
        (implist.subset("z > 0"), full.subset("z > 0")),
        (implist.subset(lambda d: d["y"] > 1), full.subset(lambda d: d["y"] > 1)),
        (implist.sort(["sex", "y"], descending=True), full.sort(["sex", "y"], descending=True)),
        (implist.sort("z"), full.sort("z")),
    ]:
        assert lazy_out.lazy and not eager_out.lazy and len(lazy_out) == len(eager_out)
        for a, b in zip(lazy_out, eager_out):
            _equal(a, b)
    # rows that do not depend on the imputations are stored once
    s = implist.sort("z")._src
    assert all(p is s.positions[0] for p in s.positions)


def test_with_to_long_and_writers_give_the_same_as_the_materialised_list(imp, tmp_path):
    implist, full = imp.complete(), imp.complete(lazy=False)
    f = lambda d: float(d["y"].sum()) + float(d["x"].mean())  # noqa: E731
    assert list(implist.with_(f)) == list(full.with_(f))
    _equal(implist.to_long(include_original=True), full.to_long(include_original=True))
    implist.to_file(tmp_path / "a.csv")
    full.to_file(tmp_path / "b.csv")
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    implist.to_stata(tmp_path / "a.dta")
    back = pm.read_stata(tmp_path / "a.dta", library=implist.library)
    for a, b in zip(back, full):
        _equal(a, b.reset_index(drop=True) if isinstance(b, pd.DataFrame) else b)


def test_materialising_everything_warns_with_the_estimate(imp, monkeypatch):
    implist = imp.complete()
    monkeypatch.setattr(ml, "_available_memory", lambda: 1000)
    with pytest.warns(UserWarning, match=r"materialising all 4 data sets at once needs about "):
        full = implist.materialize()
    assert not full.lazy
    with pytest.warns(UserWarning, match="GiB is available; iterate over the MitmlList"):
        imp.complete(lazy=False)
    with pytest.warns(UserWarning, match="materialising all 5 data sets at once"):
        implist.to_long(include_original=True)
    monkeypatch.setattr(ml, "_available_memory", lambda: 2**50)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        implist.materialize()


def test_lists_made_from_frames_hold_them_as_given():
    frames = [pd.DataFrame({"a": [1.0, 2.0], "b": [i, i]}) for i in range(3)]
    implist = pm.MitmlList(frames)
    assert not implist.lazy and implist[1] is frames[1]
    assert implist.materialize() is implist
    assert implist[0:2][1] is frames[1]


def _add_and_drop(d):
    """within() that adds columns of several dtypes (a product of imputed values, an integer
    count, a category) and drops one."""
    if isinstance(d, pd.DataFrame):
        return d.assign(
            yx=d["y"] * d["x"],
            n=np.arange(len(d), dtype=np.int32),
            hi=pd.Categorical(np.where(d["y"] > 0, "hi", "lo"), categories=["lo", "hi", "none"]),
        ).drop(columns=["label", "w"])
    return d.with_columns(
        (pl.col("y") * pl.col("x")).alias("yx"),
        pl.int_range(0, d.height, dtype=pl.Int32).alias("n"),
        pl.when(pl.col("y") > 0)
        .then(pl.lit("hi"))
        .otherwise(pl.lit("lo"))
        .cast(pl.Enum(["lo", "hi", "none"]))
        .alias("hi"),
    ).drop(["label", "w"])


@pytest.mark.parametrize("fmt", ["dta", "sav", "csv", "parquet"])
def test_within_that_adds_and_drops_columns_round_trips_through_the_writers(imp, tmp_path, fmt):
    w = imp.complete().within(_add_and_drop)
    assert "yx" in w.columns and "label" not in w.columns and "w" not in w.columns
    # the original is transformed too (Stata's m = 0 of a passive variable: missing where its
    # inputs are missing)
    assert w.original is not None and list(w.original.columns) == w.columns
    orig_yx = np.asarray(pd.Series(w.original["yx"].to_numpy()), dtype=float)
    y0 = np.asarray(pd.Series(imp.incomplete["y"].to_numpy()), dtype=float)
    assert np.array_equal(
        np.isnan(orig_yx),
        np.isnan(y0) | np.isnan(np.asarray(pd.Series(imp.incomplete["x"].to_numpy()), dtype=float)),
    )
    path = tmp_path / f"w.{fmt}"
    if fmt == "dta":
        w.to_stata(path)
        back = pm.read_stata(path, library=w.library)
    elif fmt == "sav":
        w.to_spss(path)
        back = pm.read_spss(path, library=w.library)
    else:
        w.to_file(path, include_original=True)
        back = pm.read_long(path, library=w.library)
    assert len(back) == len(w) and back.columns == w.columns
    for a, b in zip(back, w):
        _equal(a, b.reset_index(drop=True) if isinstance(b, pd.DataFrame) else b)
    o = w.original
    _equal(back.original, o.reset_index(drop=True) if isinstance(o, pd.DataFrame) else o)


def test_within_whose_function_fails_on_the_original_conforms_it(imp, tmp_path):
    def f(d):  # raises on the incomplete data (pandas: NaN to int64; polars: told to)
        if isinstance(d, pd.DataFrame):
            return d.assign(k=d["y"].round().astype(np.int64)).drop(columns=["label"])
        if d["y"].null_count():
            raise ValueError("missing y")
        return d.with_columns(pl.col("y").round().cast(pl.Int64).alias("k")).drop("label")

    w = imp.complete().within(f)
    o = w.original
    _equal(imp.complete(lazy=False).within(f).original, o)  # a list of frames does the same
    assert list(o.columns) == w.columns
    assert o["k"].is_null().all() if isinstance(o, pl.DataFrame) else o["k"].isna().all()
    w.to_stata(tmp_path / "k.dta")
    back = pm.read_stata(tmp_path / "k.dta", library=w.library)
    for a, b in zip(back, w):
        _equal(a, b.reset_index(drop=True) if isinstance(b, pd.DataFrame) else b)


def test_writers_name_an_original_with_other_columns():
    frames = [pd.DataFrame({"a": [1.0, 2.0]}) for _ in range(2)]
    bad = pm.MitmlList(frames, pd.DataFrame({"b": [1.0, np.nan]}))
    with pytest.raises(
        ValueError, match=r"`original` has columns \['b'\] but the data sets have \['a'\]"
    ):
        bad.to_stata("never.dta")


@pytest.fixture(scope="module")
def fits():
    df = pm.datasets.random_intercept(30, 8, seed=6)
    imp = pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=3, n_burn=20, n_iter=5, seed=2)
    implist = imp.complete()
    f = lambda d: pm.lmer("y ~ x + z + (1 + x|id)", d)  # noqa: E731
    return implist, implist.with_(f), implist.with_(f, light=False)


def test_fits_kept_by_with_drop_their_per_row_arrays(fits):
    from pymitml.lmm.fit import ROW_ARRAYS

    implist, light, full = fits
    n = implist[0].shape[0]
    for a, b in zip(light, full):
        assert a.light and not b.light
        held = [k for k, v in vars(a._design).items() if isinstance(v, np.ndarray) and n in v.shape]
        assert held == [] and a._cp is None  # nothing per row, no per-cluster cross-products
        for name in ROW_ARRAYS:  # rebuilt on use, bit for bit
            assert np.array_equal(getattr(a._design, name), getattr(b._design, name))
    # with frames given as they are, fits keep their designs unless asked
    eager = pm.MitmlList(list(implist)).with_(lambda d: pm.lmer("y ~ x + (1|id)", d))
    assert not eager[0].light


def test_light_fits_pool_summarise_test_and_predict_as_the_whole_fits(fits):
    implist, light, full = fits
    for kw in ({"extra_pars": True}, {"df_com": "Satterthwaite"}):
        pd.testing.assert_frame_equal(
            pm.pool_estimates(light, **kw).table, pm.pool_estimates(full, **kw).table
        )
    a, b = light[1], full[1]
    assert a.summary() == b.summary()
    assert np.array_equal(a.fitted(), b.fitted()) and np.array_equal(a.residuals(), b.residuals())
    new = implist[0].head(7)
    assert np.array_equal(a.predict(new), b.predict(new)) and np.array_equal(
        a.predict(), b.predict()
    )
    pd.testing.assert_frame_equal(
        a.coef_table(ddf="Kenward-Roger"), b.coef_table(ddf="Kenward-Roger")
    )
    assert a.refit(REML=False).loglik == b.refit(REML=False).loglik
    assert a.loglik_at(b.fixef, b.theta, b.sigma) == b.loglik_at(b.fixef, b.theta, b.sigma)
    f0 = implist.with_(lambda d: pm.lmer("y ~ z + (1 + x|id)", d))
    f0_full = implist.with_(lambda d: pm.lmer("y ~ z + (1 + x|id)", d), light=False)
    for method in ("D1", "D3", "D4"):
        pd.testing.assert_frame_equal(
            pm.compare_models(light, f0, method=method).table,
            pm.compare_models(full, f0_full, method=method).table,
        )
    import pickle

    back = pickle.loads(pickle.dumps(a))  # a pickled fit carries its whole design
    assert not back.light and np.array_equal(back.X, b.X)
    assert back.loglik_at(b.fixef, b.theta, b.sigma) == b.loglik_at(b.fixef, b.theta, b.sigma)


def test_a_light_fit_of_a_random_analysis_says_it_cannot_be_rebuilt(fits):
    implist = fits[0]
    rng = np.random.default_rng(0)

    def random_rows(d):
        return pm.lmer("y ~ x + (1|id)", d.sample(frac=0.5, random_state=rng))

    fit = implist.with_(random_rows)[0]
    with pytest.raises(RuntimeError, match="could not be rebuilt.*Pass light=False"):
        fit.fitted()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_each_fit_is_made_light_as_soon_as_it_is_there(fits, n_jobs):
    """m whole fits never exist at once (the peak is one or two designs, not m)."""
    import weakref

    implist = fits[0]
    alive, most = [0], [0]

    def gone():
        alive[0] -= 1

    def fit(d):
        f = pm.lmer("y ~ x + (1|id)", d)
        alive[0] += 1
        most[0] = max(most[0], alive[0])
        weakref.finalize(f._design, gone)
        return f

    res = implist.with_(fit, n_jobs=n_jobs, backend="threads")
    assert all(r.light for r in res) and alive[0] == 0
    assert most[0] <= n_jobs + 1, most[0]
