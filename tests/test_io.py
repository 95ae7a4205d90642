"""Interchange writers and readers (pymitml.io): round trips, real readers (R's haven, mitml), bad input."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import polars.testing as plt
import pytest

import pymitml as pm
from pymitml.io import (
    read_blimp,
    read_long,
    read_mplus,
    read_spss,
    read_stata,
    read_stata_characteristics,
    write_blimp,
    write_long,
    write_mplus,
    write_spss,
    write_stata,
)

R_COMPAT = Path(__file__).resolve().parent.parent / "r_compat"
N, M = 12, 3


# --- data ----------------------------------------------------------------------------------
def _pandas_list(text: bool = True) -> pm.MitmlList:
    """Original with missing cells and M imputations; dtypes cover what the formats must carry."""
    rng = np.random.default_rng(7)
    y = rng.normal(size=N).round(6)
    y[[1, 4, 7]] = np.nan
    x = rng.normal(size=N).astype(np.float32)
    x[[2, 9]] = np.nan
    orig = pd.DataFrame(
        {
            "school": np.repeat(np.arange(1, 5), 3).astype(np.int64),
            "y": y,
            "x": x,
            "cnt": pd.array([3, None, 5, 1, 0, 2, None, 7, 8, 9, 1, 2], dtype="Int64"),
            "flag": pd.array(
                [True, False, None, True, True, False, False, True, None, False, True, True],
                dtype="boolean",
            ),
            "grp": pd.Categorical(
                ["a", "b", None, "a", "b", "a", "b", None, "a", "b", "a", "b"],
                categories=["b", "a", "z"],
            ),
            "lvl": pd.Categorical(
                [1, 2, 3, None, 1, 2, 3, 1, 2, 3, None, 1], categories=[3, 1, 2, 10], ordered=True
            ),
            "age": np.arange(20, 20 + N, dtype=np.int8),
        }
    )
    if text:
        orig["name"] = pd.array([f"n{i}é" for i in range(N)], dtype="str")
    frames = []
    for k in range(M):
        f = orig.copy()
        r = np.random.default_rng(100 + k)
        f["y"] = f["y"].fillna(pd.Series(r.normal(size=N)))
        f["x"] = f["x"].fillna(pd.Series(r.normal(size=N).astype(np.float32)))
        f["cnt"] = f["cnt"].fillna(int(r.integers(0, 9)))
        f["flag"] = f["flag"].fillna(bool(k % 2))
        f["grp"] = f["grp"].fillna(["a", "b", "z"][k])
        f["lvl"] = f["lvl"].fillna(10 if k == 0 else 2)
        frames.append(f)
    return pm.MitmlList(frames, orig)


def _polars_list(text: bool = True) -> pm.MitmlList:
    p = _pandas_list(text)

    def conv(d):
        out = pl.from_pandas(d.assign(grp=d["grp"].astype(object), lvl=d["lvl"].astype(object)))
        return out.with_columns(
            pl.col("grp").cast(pl.Enum(["b", "a", "z"])),
            pl.col("lvl").cast(pl.Int64).cast(pl.String).cast(pl.Categorical),
            pl.col("cnt").cast(pl.Int32),
        )

    return pm.MitmlList([conv(d) for d in p], conv(p.original))


def _same(a: pm.MitmlList, b: pm.MitmlList, original: bool = True) -> None:
    assert len(a) == len(b) and a.library == b.library
    pairs = list(zip(a, b)) + ([(a.original, b.original)] if original else [])
    for x, y in pairs:
        if a.library == "pandas":
            pd.testing.assert_frame_equal(x, y, check_exact=True)
            for c in x.columns:  # categories incl. unused levels and their order
                if isinstance(x[c].dtype, pd.CategoricalDtype):
                    assert list(x[c].cat.categories) == list(y[c].cat.categories)
                    assert x[c].cat.ordered == y[c].cat.ordered
        else:
            plt.assert_frame_equal(x, y, check_exact=True)
            assert x.schema == y.schema


LISTS = {"pandas": _pandas_list, "polars": _polars_list}


# --- round trips -------------------------------------------------------------------------------
@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_stata_round_trip(tmp_path, lib):
    ml = LISTS[lib]()
    write_stata(ml, tmp_path / "imp.dta", variable_labels={"y": "reading score"})
    back = read_stata(tmp_path / "imp.dta", library=lib)
    _same(ml, back)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_spss_round_trip(tmp_path, lib):
    ml = LISTS[lib]()
    write_spss(ml, tmp_path / "imp.sav", variable_labels={"y": "reading score"})
    _same(ml, read_spss(tmp_path / "imp.sav", library=lib))


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_mplus_round_trip(tmp_path, lib):
    ml = LISTS[lib](text=False)
    write_mplus(ml, tmp_path / "imp", cluster="school")
    back = read_mplus(tmp_path / "implist.dat", library=lib)
    assert back.original is None
    _same(ml, back, original=False)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
@pytest.mark.parametrize("layout", ["stacked", "separate"])
def test_blimp_round_trip(tmp_path, lib, layout):
    ml = LISTS[lib](text=False)
    target = tmp_path / ("imps.csv" if layout == "stacked" else "imp*.csv")
    write_blimp(ml, target, layout=layout, include_original=True)
    src = tmp_path / ("imps.csv" if layout == "stacked" else "implist.csv")
    _same(ml, read_blimp(src, library=lib))


@pytest.mark.parametrize("lib", ["pandas", "polars"])
@pytest.mark.parametrize("ext", ["csv", "parquet"])
def test_long_round_trip(tmp_path, lib, ext):
    ml = LISTS[lib]()
    write_long(ml, tmp_path / f"imp.{ext}")
    _same(ml, read_long(tmp_path / f"imp.{ext}", library=lib))


def test_mitml_list_methods_write_the_same_files(tmp_path):
    ml = _pandas_list(text=False)
    ml.to_stata(tmp_path / "a.dta")
    ml.to_spss(tmp_path / "a.sav")
    ml.to_mplus(tmp_path / "a")
    ml.to_blimp(tmp_path / "a.csv", include_original=True)
    ml.to_file(tmp_path / "a.parquet")
    for back in (
        read_stata(tmp_path / "a.dta"),
        read_spss(tmp_path / "a.sav"),
        read_blimp(tmp_path / "a.csv"),
        read_long(tmp_path / "a.parquet"),
    ):
        _same(ml, back)
    _same(ml, read_mplus(tmp_path / "alist.dat"), original=False)


def test_cross_library_reading(tmp_path):
    """Written from pandas, read as polars: categories become an Enum with every level in order."""
    ml = _pandas_list()
    write_stata(ml, tmp_path / "imp.dta")
    back = read_stata(tmp_path / "imp.dta", library="polars")
    assert back.library == "polars"
    assert back[0].schema["grp"] == pl.Enum(["b", "a", "z"])
    np.testing.assert_array_equal(back[1]["y"].to_numpy(), ml[1]["y"].to_numpy())


def _widening_list(lib: str) -> pm.MitmlList:
    """Imputations hold int64 where the original has float64 with missing values."""
    orig = pd.DataFrame(
        {"k": [1.0, np.nan, 3.0, np.nan], "g": pd.Categorical(["a", None, "b", "a"])}
    )
    imps = [
        orig.assign(k=np.array([1, v, 3, v + 1], dtype=np.int64), g=orig["g"].fillna("b"))
        for v in (2, 5)
    ]
    if lib == "polars":

        def conv(d):
            return pl.from_pandas(d).with_columns(pl.col("g").cast(pl.Enum(["a", "b"])))

        return pm.MitmlList([conv(d) for d in imps], conv(orig))
    return pm.MitmlList(imps, orig)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
@pytest.mark.parametrize("target", ["w.parquet", "w.csv", "w.dta", "w.sav"])
def test_round_trip_when_the_original_has_other_dtypes(tmp_path, lib, target):
    ml = _widening_list(lib)
    assert str(ml[0].schema["k"] if lib == "polars" else ml[0]["k"].dtype) in ("Int64", "int64")
    writer = {"parquet": write_long, "csv": write_long, "dta": write_stata, "sav": write_spss}[
        target[2:]
    ]
    reader = {"parquet": read_long, "csv": read_long, "dta": read_stata, "sav": read_spss}[
        target[2:]
    ]
    writer(ml, tmp_path / target)
    _same(ml, reader(tmp_path / target, library=lib))


# --- what the files hold -----------------------------------------------------------------
def test_stata_characteristics_are_exactly_the_mi_set(tmp_path):
    ml = _pandas_list()
    write_stata(ml, tmp_path / "imp.dta")
    chars = read_stata_characteristics(tmp_path / "imp.dta")
    assert set(chars) == {"_dta"}
    dta = chars["_dta"]
    assert set(dta) == {
        "_mi_marker",
        "_mi_style",
        "_mi_M",
        "_mi_N",
        "_mi_ivars",
        "_mi_rvars",
        "_mi_update",
    }
    assert dta["_mi_marker"] == "_mi_ds_1"
    assert dta["_mi_style"] == "flong"
    assert dta["_mi_M"] == str(M) and dta["_mi_N"] == str(N)
    assert dta["_mi_ivars"].split() == ["y", "x", "cnt", "flag", "grp", "lvl"]
    assert dta["_mi_rvars"].split() == ["school", "age", "name"]
    now = (pd.Timestamp.now() - pd.Timestamp("1960-01-01")).total_seconds()
    assert abs(int(dta["_mi_update"]) - now) < 120


def test_stata_characteristics_passive_and_explicit_imputed(tmp_path):
    ml = _pandas_list(text=False)
    write_stata(ml, tmp_path / "imp.dta", imputed=["y", "x"], schema=False, do_file=False)
    dta = read_stata_characteristics(tmp_path / "imp.dta")["_dta"]
    assert dta["_mi_ivars"] == "y x"
    assert dta["_mi_pvars"].split() == ["cnt", "flag", "grp", "lvl"]  # differ between imputations
    assert dta["_mi_rvars"].split() == ["school", "age"]


def _dta_raw_records(path: Path):
    """Independent look at the binary file: header numbers and the _mi_* columns via the map."""
    raw = path.read_bytes()
    assert raw[:28] == b"<stata_dta><header><release>" and raw[28:31] == b"118"
    k = struct.unpack("<H", raw[raw.index(b"<K>") + 3 : raw.index(b"<K>") + 5])[0]
    n = struct.unpack("<Q", raw[raw.index(b"<N>") + 3 : raw.index(b"<N>") + 11])[0]
    m0 = raw.index(b"<map>") + 5
    offs = struct.unpack("<14Q", raw[m0 : m0 + 112])
    tags = [
        b"<stata_dta>",
        b"<map>",
        b"<variable_types>",
        b"<varnames>",
        b"<sortlist>",
        b"<formats>",
        b"<value_label_names>",
        b"<variable_labels>",
        b"<characteristics>",
        b"<data>",
        b"<strls>",
        b"<value_labels>",
        b"</stata_dta>",
    ]
    for off, tag in zip(offs, tags):
        assert raw[off : off + len(tag)] == tag
    assert offs[13] == len(raw)
    return k, n


def test_stata_file_layout(tmp_path):
    ml = _pandas_list()
    write_stata(ml, tmp_path / "imp.dta")
    k, n = _dta_raw_records(tmp_path / "imp.dta")
    assert (k, n) == (len(ml.columns) + 3, (M + 1) * N)
    df = pd.read_stata(tmp_path / "imp.dta", convert_categoricals=False, convert_missing=True)
    assert list(df.columns[-3:]) == ["_mi_miss", "_mi_m", "_mi_id"]
    np.testing.assert_array_equal(df["_mi_m"], np.repeat(np.arange(M + 1), N))
    np.testing.assert_array_equal(df["_mi_id"], np.tile(np.arange(1, N + 1), M + 1))
    miss0 = (
        ml.original[["y", "x", "cnt", "flag", "grp", "lvl"]]
        .isna()
        .any(axis=1)
        .astype(int)
        .to_numpy()
    )
    np.testing.assert_array_equal(df["_mi_miss"][:N].astype(int), miss0)
    assert all(str(v) == "." for v in df["_mi_miss"][N:])  # Stata's system missing in m > 0
    with pd.io.stata.StataReader(tmp_path / "imp.dta") as rd:
        rd.read()  # pandas reads through the map offsets too
        assert rd.value_labels()["grp"] == {1: "b", 2: "a", 3: "z"}
        assert rd.value_labels()["lvl"] == {
            1: "1",
            2: "2",
            3: "3",
            10: "10",
        }  # integer categories keep values
        assert rd.variable_labels()["y"] == ""
        assert rd.data_label.startswith(f"{M} imputations")


def test_stata_do_file(tmp_path):
    ml = _pandas_list()
    write_stata(ml, tmp_path / "imp.dta")
    do = (tmp_path / "imp.do").read_text()
    assert 'use "imp.dta", clear' in do
    assert "mi import flong, m(pymitml_m) id(pymitml_id) imputed(y x cnt flag grp lvl) clear" in do
    assert "mi register regular school age name" in do


def test_stata_without_original_rebuilds_m0(tmp_path):
    ml = _pandas_list(text=False)
    bare = pm.MitmlList(list(ml))
    with pytest.warns(UserWarning, match="no original data"):
        write_stata(bare, tmp_path / "imp.dta")
    back = read_stata(tmp_path / "imp.dta")
    assert back.original is None
    _same(bare, back, original=False)
    raw = read_stata(tmp_path / "imp.dta", schema=False)
    # m = 0: the cells that differ between imputations are missing
    assert raw.original["y"].isna().sum() == 3 and raw.original["school"].notna().all()


def test_readers_without_sidecar_use_the_files_own_metadata(tmp_path):
    ml = _pandas_list()
    write_stata(ml, tmp_path / "imp.dta", schema=False)
    write_spss(ml, tmp_path / "imp.sav", schema=False)
    for back in (read_stata(tmp_path / "imp.dta"), read_spss(tmp_path / "imp.sav")):
        assert list(back[0]["grp"].cat.categories) == ["b", "a", "z"]
        assert list(back[0]["lvl"].cat.categories) == [
            "1",
            "2",
            "3",
            "10",
        ]  # in order of the values
        np.testing.assert_allclose(back[2]["y"].to_numpy(), ml[2]["y"].to_numpy())
        np.testing.assert_array_equal(back.original["y"].isna(), ml.original["y"].isna())
    sav = read_spss(tmp_path / "imp.sav")
    assert sav[0]["lvl"].cat.ordered  # measurement level ordinal
    assert not sav[0]["grp"].cat.ordered


def test_spss_file_layout(tmp_path):
    import pyreadstat

    ml = _pandas_list()
    write_spss(ml, tmp_path / "imp.sav", variable_labels={"y": "reading score"})
    df, meta = pyreadstat.read_sav(str(tmp_path / "imp.sav"), apply_value_formats=False)
    assert df.columns[0] == "Imputation_"
    np.testing.assert_array_equal(df["Imputation_"], np.repeat(np.arange(M + 1), N))
    assert meta.variable_measure["grp"] == "nominal" and meta.variable_measure["lvl"] == "ordinal"
    assert (
        meta.variable_measure["y"] == "scale" and meta.variable_measure["Imputation_"] == "nominal"
    )
    assert meta.variable_value_labels["grp"] == {1: "b", 2: "a", 3: "z"}
    assert meta.column_labels[list(df.columns).index("y")] == "reading score"
    sps = (tmp_path / "imp.sps").read_text()
    assert "SORT CASES BY Imputation_." in sps and "SPLIT FILE LAYERED BY Imputation_." in sps
    assert "GET FILE='imp.sav'." in sps


def test_mplus_files(tmp_path):
    ml = _pandas_list(text=False)
    paths = write_mplus(ml, tmp_path / "imp", cluster="school")
    names = {p.name for p in paths}
    assert {"imp1.dat", "imp2.dat", "imp3.dat", "implist.dat", "imp.inp", "imp.log"} <= names
    assert (tmp_path / "implist.dat").read_text().split() == ["imp1.dat", "imp2.dat", "imp3.dat"]
    first = (tmp_path / "imp1.dat").read_text().splitlines()[0].split("\t")
    assert len(first) == len(ml.columns) and all(_isnum(v) for v in first)
    inp = (tmp_path / "imp.inp").read_text()
    for line in (
        "FILE = implist.dat;",
        "TYPE = IMPUTATION;",
        "NAMES = school y x cnt flag grp lvl age;",
        "MISSING = ALL (-999);",
        "CLUSTER = school;",
        "!   grp: 1 = b, 2 = a, 3 = z",
    ):
        assert line in inp
    assert max(len(line) for line in inp.splitlines()) <= 90
    log = (tmp_path / "imp.log").read_text()
    assert "grp:\nb = 1\na = 2\nz = 3\n" in log and "lvl:\n3 = 3\n1 = 1\n2 = 2\n10 = 10\n" in log


def _isnum(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def test_mplus_missing_flag(tmp_path):
    ml = _pandas_list(text=False)
    ml2 = pm.MitmlList([f.assign(y=f["y"].where(f.index != 0)) for f in ml], ml.original)
    write_mplus(ml2, tmp_path / "imp", missing=-99)
    assert "-99" in (tmp_path / "imp1.dat").read_text().splitlines()[0].split("\t")
    assert "MISSING = ALL (-99);" in (tmp_path / "imp.inp").read_text()
    back = read_mplus(tmp_path / "implist.dat", schema=False)  # names and flag from the .inp
    assert np.isnan(back[0]["y"][0]) and back[0]["y"].notna().sum() == N - 1
    bad = pm.MitmlList([f.assign(y=-99.0) for f in ml], ml.original)
    with pytest.raises(ValueError, match="equals the missing flag -99"):
        write_mplus(bad, tmp_path / "bad", missing=-99)


def test_blimp_files(tmp_path):
    ml = _pandas_list(text=False)
    write_blimp(ml, tmp_path / "imps.csv", include_original=True)
    rows = (tmp_path / "imps.csv").read_text().splitlines()
    assert (
        len(rows) == (M + 1) * N
        and rows[0].split(",")[0] == "0"
        and rows[-1].split(",")[0] == str(M)
    )
    assert "-999" in rows[1].split(",")  # original data carry the missing code
    assert (tmp_path / "imps_names.txt").read_text().split() == ["imputation", *ml.columns]
    write_blimp(ml, tmp_path / "sep.csv", layout="separate")
    assert (tmp_path / "seplist.csv").read_text().split() == [
        f"sep{i}.csv" for i in range(1, M + 1)
    ]
    assert len((tmp_path / "sep2.csv").read_text().splitlines()) == N
    back = read_blimp(tmp_path / "imps.csv", schema=False)  # names file + -999
    np.testing.assert_array_equal(back.original["y"].isna(), ml.original["y"].isna())
    assert list(back[0].columns) == ml.columns


def test_long_files(tmp_path):
    ml = _pandas_list()
    write_long(ml, tmp_path / "imp.csv")
    df = pd.read_csv(tmp_path / "imp.csv")
    assert (
        list(df.columns[:2]) == [".imp", ".id"] and df[".imp"].max() == M and df[".imp"].min() == 0
    )
    assert set(df["grp"].dropna()) <= {"a", "b", "z"}
    write_long(ml, tmp_path / "imp.parquet", include_original=False, imputation="m", id="row")
    import pyarrow.parquet as pq

    t = pq.read_table(tmp_path / "imp.parquet")
    assert t.column_names[:2] == ["m", "row"] and t.num_rows == M * N
    back = read_long(tmp_path / "imp.parquet")
    assert back.original is None
    _same(ml, back, original=False)


# --- readers of files written by others -----------------------------------------------------
def test_read_mitml_mplus_output():
    """Files written by R's mitml::write.mitmlMplus (r_compat/io_mitml_files.R)."""
    ref = json.loads((R_COMPAT / "io_mitml_files_ref.json").read_text())
    back = read_mplus(R_COMPAT / "io_mitml_files" / "mplus_implist.dat")
    assert len(back) == ref["m"]
    assert list(back[0].columns) == ref["names"]
    for k, d in enumerate(back):
        np.testing.assert_allclose(d["y"].to_numpy(), ref["y"][k], rtol=1e-12)
        assert list(d["sex"].cat.categories) == ref["sex_levels"]
        assert d["sex"].astype(str).tolist() == ref["sex"][k]


def test_read_mitml_sav_output():
    """mitml::write.mitmlSAV numbers the first imputation 0: read it with original_code=None."""
    ref = json.loads((R_COMPAT / "io_mitml_files_ref.json").read_text())
    back = read_spss(R_COMPAT / "io_mitml_files" / "mitml.sav", original_code=None)
    assert len(back) == ref["m"] and back.original is None
    for k, d in enumerate(back):
        np.testing.assert_allclose(d["y"].to_numpy(), ref["y"][k], rtol=1e-12)
        assert d["sex"].astype(str).tolist() == ref["sex"][k]


@pytest.mark.r
def test_haven_reads_dta_and_sav(tmp_path, R):
    ml = _pandas_list()
    write_stata(ml, tmp_path / "imp.dta", variable_labels={"y": "reading score"})
    write_spss(ml, tmp_path / "imp.sav", variable_labels={"y": "reading score"})
    R("suppressPackageStartupMessages(library(haven))")
    stacked = pd.concat([ml.original, *ml], ignore_index=True)
    for f, imp in (("imp.dta", "_mi_m"), ("imp.sav", "Imputation_")):
        R(f'd <- haven::read_{f[-3:]}("{(tmp_path / f).as_posix()}")')
        assert int(R("nrow(d)")[0]) == (M + 1) * N
        np.testing.assert_array_equal(
            np.asarray(R(f"as.numeric(d$`{imp}`)")), np.repeat(np.arange(M + 1), N)
        )
        y = np.asarray(R("as.numeric(d$y)"))
        np.testing.assert_array_equal(np.isnan(y), stacked["y"].isna())
        np.testing.assert_allclose(y[~np.isnan(y)], stacked["y"].dropna(), rtol=0, atol=0)
        x = np.asarray(R("as.numeric(d$x)"))
        np.testing.assert_array_equal(x[~np.isnan(x)].astype(np.float32), stacked["x"].dropna())
        grp = list(
            R(
                "g <- as.character(haven::as_factor(d$grp, levels = 'labels')); ifelse(is.na(g), '<NA>', g)"
            )
        )
        assert grp == stacked["grp"].astype(object).where(stacked["grp"].notna(), "<NA>").tolist()
        labels = dict(
            zip(
                R("names(attr(d$grp, 'labels'))"),
                np.asarray(R("as.numeric(attr(d$grp, 'labels'))")),
            )
        )
        assert labels == {"b": 1.0, "a": 2.0, "z": 3.0}  # unused level z kept
        lvl = dict(
            zip(
                R("names(attr(d$lvl, 'labels'))"),
                np.asarray(R("as.numeric(attr(d$lvl, 'labels'))")),
            )
        )
        assert lvl == {
            "3": 3.0,
            "1": 1.0,
            "2": 2.0,
            "10": 10.0,
        }  # integer categories keep their values
        np.testing.assert_array_equal(
            np.asarray(R("as.numeric(d$lvl)")), stacked["lvl"].astype(float)
        )
        assert R("attr(d$y, 'label')")[0] == "reading score"
        assert list(R("as.character(d$name)")) == stacked["name"].tolist()


@pytest.mark.r
def test_read_flong_dta_written_by_haven(tmp_path, R):
    """A flong layout saved by another program (no mi characteristics): value labels -> categories."""
    f = (tmp_path / "haven.dta").as_posix()
    R(f"""d <- data.frame(y = c(1.5, NA, 2, 1.5, 0.25, 2, 1.5, -1, 2),
                       sex = haven::labelled(c(1, 2, NA, 1, 2, 2, 1, 2, 1), c(male = 1, female = 2)),
                       `_mi_m` = rep(0:2, each = 3), `_mi_id` = rep(1:3, 3), check.names = FALSE)
          haven::write_dta(d, "{f}")""")
    back = read_stata(tmp_path / "haven.dta")
    assert len(back) == 2 and back.original["y"].isna().tolist() == [False, True, False]
    assert back[0]["y"].tolist() == [1.5, 0.25, 2.0] and back[1]["y"].tolist() == [1.5, -1.0, 2.0]
    assert list(back[0]["sex"].cat.categories) == ["male", "female"]
    assert back[1]["sex"].astype(str).tolist() == ["male", "female", "male"]
    assert read_stata_characteristics(tmp_path / "haven.dta") == {}


def test_stale_sidecar_is_ignored_with_a_warning(tmp_path):
    ml = _pandas_list(text=False)
    write_stata(ml, tmp_path / "a.dta")
    other = pm.MitmlList([f.drop(columns="age") for f in ml], ml.original.drop(columns="age"))
    write_stata(other, tmp_path / "b.dta")
    (tmp_path / "a.dta.schema.json").write_bytes((tmp_path / "b.dta.schema.json").read_bytes())
    with pytest.warns(UserWarning, match="ignoring the sidecar"):
        back = read_stata(tmp_path / "a.dta")
    assert list(back[0].columns) == ml.columns and back[0]["age"].dtype == np.int8


# --- bad input -----------------------------------------------------------------------------
def _named(cols: dict) -> pm.MitmlList:
    f = pd.DataFrame(cols)
    return pm.MitmlList([f, f.copy()], f.copy())


def test_long_names_are_reported_not_mangled(tmp_path):
    ml = _named({"a" * 33: [1.0, 2.0], "ok": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"'a{33}' is longer than 32 chars \(33\)"):
        write_stata(ml, tmp_path / "x.dta")
    assert not any(tmp_path.iterdir())  # nothing written
    spss = _named({"é" * 33: [1.0, 2.0]})  # 66 bytes in UTF-8
    with pytest.raises(ValueError, match="longer than 64 bytes"):
        write_spss(spss, tmp_path / "x.sav")
    with pytest.raises(ValueError, match="longer than 8 chars"):
        write_mplus(_named({"readingscore": [1.0, 2.0]}), tmp_path / "x")


def test_illegal_characters_and_reserved_words(tmp_path):
    with pytest.raises(ValueError, match="'my var' has characters Stata does not allow"):
        write_stata(_named({"my var": [1.0, 2.0]}), tmp_path / "x.dta")
    with pytest.raises(ValueError, match="'_mi_x' starts with '_mi_'"):
        write_stata(_named({"_mi_x": [1.0, 2.0]}), tmp_path / "x.dta")
    with pytest.raises(ValueError, match="'with' is a reserved word in SPSS"):
        write_spss(_named({"with": [1.0, 2.0]}), tmp_path / "x.sav")
    with pytest.raises(
        ValueError,
        match="'imputation_' differs only in case from 'Imputation_'|"
        "'imputation_' is the name of a column this writer adds",
    ):
        write_spss(_named({"imputation_": [1.0, 2.0]}), tmp_path / "x.sav")
    with pytest.raises(ValueError, match="'Y' differs only in case from 'y'"):
        write_mplus(_named({"y": [1.0, 2.0], "Y": [1.0, 2.0]}), tmp_path / "x")
    with pytest.raises(ValueError, match="'.imp' is the name of a column this writer adds"):
        write_long(_named({".imp": [1.0, 2.0]}), tmp_path / "x.csv")


def test_names_map_prints_and_round_trips(tmp_path, capsys):
    ml = _named(
        {"reading_score_t1": [1.0, 2.0], "reading_score_t2": [3.0, 4.0], "9lives": [1.0, 0.0]}
    )
    write_mplus(ml, tmp_path / "x", names="map")
    out = capsys.readouterr().out
    assert "reading_score_t1 -> reading_" in out and "reading_score_t2 -> readin_2" in out
    assert "9lives" in out and "-> v9lives" in out
    assert "NAMES = reading_ readin_2 v9lives;" in (tmp_path / "x.inp").read_text()
    back = read_mplus(tmp_path / "xlist.dat")
    assert back.columns == ml.columns  # the sidecar restores the original names
    _same(ml, back, original=False)
    write_stata(ml, tmp_path / "x.dta", names="map")
    assert "9lives -> v9lives" in capsys.readouterr().out
    _same(ml, read_stata(tmp_path / "x.dta"))


def test_rename_argument(tmp_path):
    ml = _named({"reading_score": [1.0, 2.0]})
    write_mplus(ml, tmp_path / "x", rename={"reading_score": "read"})
    assert "NAMES = read;" in (tmp_path / "x.inp").read_text()
    with pytest.raises(ValueError, match="`rename` gives names that Mplus cannot hold"):
        write_mplus(ml, tmp_path / "y", rename={"reading_score": "reading_sc"}, names="map")
    with pytest.raises(ValueError, match=r"`rename` names columns \['nope'\]"):
        write_mplus(ml, tmp_path / "z", rename={"nope": "a"})


def test_never_overwrites_unless_asked(tmp_path):
    ml = _pandas_list(text=False)
    (tmp_path / "imp.do").write_text("keep me")
    with pytest.raises(FileExistsError, match=r"imp\.do' already exists; nothing was written"):
        write_stata(ml, tmp_path / "imp.dta")
    assert not (tmp_path / "imp.dta").exists() and (tmp_path / "imp.do").read_text() == "keep me"
    write_stata(ml, tmp_path / "imp.dta", overwrite=True)
    assert (tmp_path / "imp.do").read_text() != "keep me"
    for fn, target in ((write_spss, "a.sav"), (write_blimp, "a.csv"), (write_long, "a.parquet")):
        fn(ml, tmp_path / target)
        with pytest.raises(FileExistsError, match="overwrite=True"):
            fn(ml, tmp_path / target)
    write_mplus(ml, tmp_path / "m")
    with pytest.raises(FileExistsError, match="m1.dat"):
        write_mplus(ml, tmp_path / "m")


def test_blimp_refuses_text(tmp_path):
    ml = _pandas_list(text=True)
    with pytest.raises(
        TypeError, match=r"columns \['name'\] hold text, but Blimp data are numeric only"
    ):
        write_blimp(ml, tmp_path / "x.csv")
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_mplus_codes_text_columns(tmp_path, lib):
    """Text goes to Mplus as integer codes 1..K of the sorted values (mitml's write.mitmlMplus),
    with the code table in <stem>_codes.csv and the .log; the sidecar gives the text back."""
    ml = LISTS[lib](text=True)
    paths = write_mplus(ml, tmp_path / "m")
    assert tmp_path / "m_codes.csv" in paths
    texts = sorted(set(ml[0]["name"]))
    dat = np.loadtxt(tmp_path / "m1.dat", delimiter="\t")
    name_col = ml.columns.index("name")
    first = list(ml[0]["name"])
    np.testing.assert_array_equal(dat[:, name_col], [texts.index(t) + 1 for t in first])
    table = pd.read_csv(tmp_path / "m_codes.csv")
    rows = table[table["variable"] == "name"]
    assert rows["code"].tolist() == list(range(1, len(texts) + 1))
    assert rows["value"].tolist() == texts
    _same(ml, read_mplus(tmp_path / "mlist.dat", library=lib), original=False)
    # without the sidecar the .log's code table makes the column a categorical of the texts
    back = read_mplus(tmp_path / "mlist.dat", schema=False)
    assert back[1]["name"].astype(str).tolist() == list(ml[1]["name"])


@pytest.mark.r
def test_mplus_text_codes_match_mitml(tmp_path, R):
    """The same imputations written by mitml::write.mitmlMplus and by write_mplus: identical
    numbers in every data file and the same code table in the .log."""
    rng = np.random.default_rng(3)
    base = pd.DataFrame(
        {
            "y": rng.normal(size=10).round(4),
            "town": np.array(["delta", "alpha", "charlie", "bravo", "alpha"] * 2, dtype=object),
        }
    )
    frames = []
    for k in range(3):
        f = base.copy()
        f["y"] = f["y"] + k
        frames.append(f)
    frames[1].loc[2, "y"] = np.nan  # a cell still missing: the flag in both
    write_mplus(pm.MitmlList(frames), tmp_path / "py")
    from pymitml import bridge

    bridge.r_run(
        "x <- lapply(1:3, function(k) data.frame(y = y + k - 1, town = town, stringsAsFactors = FALSE));"
        " x[[2]]$y[3] <- NA; x <- mitml::as.mitml.list(x);"
        " mitml::write.mitmlMplus(x, filename = stem, na.value = -999)",
        y=base["y"].to_numpy(),
        town=list(base["town"]),
        stem=str(tmp_path / "r"),
    )
    for k in (1, 2, 3):
        ours = np.loadtxt(tmp_path / f"py{k}.dat", delimiter="\t")
        theirs = np.loadtxt(tmp_path / f"r{k}.dat", delimiter="\t")
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    from pymitml.io.mplus import parse_log

    assert parse_log((tmp_path / "py.log").read_text()) == parse_log(
        (tmp_path / "r.log").read_text()
    )


def test_argument_errors(tmp_path):
    ml = _pandas_list(text=False)
    with pytest.raises(TypeError, match="needs a MitmlList"):
        write_stata([ml[0]], tmp_path / "x.dta")
    with pytest.raises(ValueError, match="`version` must be 117"):
        write_stata(ml, tmp_path / "x.dta", version=115)
    with pytest.raises(ValueError, match="`layout` must be 'stacked' or 'separate'; got 'wide'"):
        write_blimp(ml, tmp_path / "x.csv", layout="wide")
    with pytest.raises(
        ValueError, match="`include_original=True` but the MitmlList has no original"
    ):
        write_blimp(pm.MitmlList(list(ml)), tmp_path / "x.csv", include_original=True)
    with pytest.raises(ValueError, match="`cluster` 'nope' is not a column"):
        write_mplus(ml, tmp_path / "x", cluster="nope")
    with pytest.raises(ValueError, match="`library` must be 'pandas' or 'polars'"):
        read_stata(tmp_path / "x.dta", library="arrow")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_spss(tmp_path / "none.sav")
    with pytest.raises(ValueError, match="cannot tell the format"):
        write_long(ml, tmp_path / "x.xlsx")
    with pytest.raises(ValueError, match="longer than Stata's 80 characters"):
        write_stata(ml, tmp_path / "x.dta", variable_labels={"y": "z" * 81})
    with pytest.raises(FileNotFoundError, match="folder"):
        write_spss(ml, tmp_path / "no" / "x.sav")
    with pytest.raises(TypeError, match="datetime64"):
        write_spss(
            pm.MitmlList([pd.DataFrame({"t": pd.to_datetime(["2020-01-01"])})] * 2),
            tmp_path / "t.sav",
        )


def test_stata_117(tmp_path):
    ml = _pandas_list(text=False)
    write_stata(ml, tmp_path / "imp.dta", version=117)
    assert (tmp_path / "imp.dta").read_bytes()[28:31] == b"117"
    assert read_stata_characteristics(tmp_path / "imp.dta")["_dta"]["_mi_style"] == "flong"
    _same(ml, read_stata(tmp_path / "imp.dta"))
    with pytest.raises(ValueError, match="has characters Stata 13"):
        write_stata(_named({"café": [1.0, 2.0]}), tmp_path / "c.dta", version=117)
