"""The stacked SPSS and long parquet writers build one data set at a time and write the files
the writers wrote when they stacked all m data sets in memory (byte for byte)."""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import pymitml as pm
from pymitml import mitml_list as ml

from .test_io import _pandas_list, _polars_list

GOLDEN = Path(__file__).resolve().parent / "golden" / "io"
#: the versions the golden files were written with (the parquet metadata names pyarrow's and
#: pandas' versions, so other versions write other bytes)
GOLDEN_VERSIONS = {"pyarrow": "26.0.1", "pandas": "3.1.1"}
#: the creation date and time in a .sav header (bytes 92..108), which differ between runs
SAV_STAMP = slice(92, 109)


def _versions_match() -> bool:
    return (
        pa.__version__ == GOLDEN_VERSIONS["pyarrow"] and pd.__version__ == GOLDEN_VERSIONS["pandas"]
    )


def _sav_bytes(path: Path) -> bytes:
    b = bytearray(path.read_bytes())
    b[SAV_STAMP] = b"\0" * (SAV_STAMP.stop - SAV_STAMP.start)
    return bytes(b)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
@pytest.mark.parametrize("original", [True, False])
def test_files_are_the_ones_the_stacking_writers_wrote(tmp_path, lib, original):
    """Golden files written by write_spss / write_long before they streamed (commit 37d9603)."""
    mlist = (_pandas_list if lib == "pandas" else _polars_list)()
    stem = lib if original else f"{lib}_imputations"
    sav, parquet = tmp_path / "a.sav", tmp_path / "a.parquet"
    mlist.to_spss(sav, include_original=original, syntax=False, schema=False)
    mlist.to_file(parquet, include_original=original)
    assert _sav_bytes(sav) == _sav_bytes(GOLDEN / f"{stem}.sav")
    if _versions_match():
        assert parquet.read_bytes() == (GOLDEN / f"{stem}.parquet").read_bytes()
    else:  # other library versions: the same table and metadata
        assert pq.read_table(parquet).equals(pq.read_table(GOLDEN / f"{stem}.parquet"))


class _Counting(ml._Source):
    """A lazy source that records how many of the data sets it built are alive at once."""

    def __init__(self, parent: ml._Source):
        self.parent, self.alive, self.most = parent, 0, 0

    def __len__(self) -> int:
        return len(self.parent)

    def get(self, i: int):
        d = self.parent.get(i)
        self.alive += 1
        self.most = max(self.most, self.alive)
        weakref.finalize(d, self._gone)
        return d

    def _gone(self) -> None:
        self.alive -= 1

    @property
    def template(self):
        return self.parent.template


@pytest.fixture(scope="module")
def imp():
    df = pm.datasets.random_intercept(40, 10, seed=3)
    df["g"] = pd.Categorical(np.where(df["z"] > 0, "a", "b"), categories=["b", "a", "c"])
    df["t"] = pd.array([f"t{i % 7}" for i in range(len(df))], dtype="str")
    return pm.pan_impute(df, "y + x ~ 1 + z + (1|id)", m=8, n_burn=20, n_iter=2, seed=5)


def _write(mlist, path: Path) -> None:
    {".sav": mlist.to_spss, ".dta": mlist.to_stata, ".inp": mlist.to_mplus}.get(
        path.suffix, mlist.to_file
    )(path.with_suffix("") if path.suffix == ".inp" else path)


def _read(path: Path):
    if path.suffix == ".inp":
        return pm.read_mplus(path.with_name(path.stem + "list.dat"))
    return {".sav": pm.read_spss, ".dta": pm.read_stata}.get(path.suffix, pm.read_long)(path)


@pytest.mark.parametrize("target", ["w.sav", "w.parquet", "w.csv", "w.dta", "w.inp"])
def test_writers_hold_at_most_two_data_sets_and_match_the_materialised_list(imp, tmp_path, target):
    lazy = imp.complete()
    counting = _Counting(lazy._src)
    implist = ml.MitmlList._from_source(counting, lazy.original)
    full = imp.complete(lazy=False)
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a, b = tmp_path / "a" / target, tmp_path / "b" / target
    _write(implist, a)
    _write(full, b)
    assert counting.most <= 2, counting.most  # the stacking writers held all m at once
    if a.suffix == ".sav":
        assert _sav_bytes(a) == _sav_bytes(b)
    elif a.suffix in (".parquet", ".csv"):
        assert a.read_bytes() == b.read_bytes()
    back = _read(a)
    for x, y in zip(back, full):
        pd.testing.assert_frame_equal(x, y.reset_index(drop=True), check_exact=True)


def _whole_table_parquet(mlist, path: Path, meta: dict) -> None:
    """The parquet the writer wrote before streaming: the whole stacked table in one call."""
    parts = [mlist.original, *mlist]
    if mlist.library == "polars":
        long = pl.concat(
            [
                f.select(
                    pl.lit(k, dtype=pl.Int64).alias(".imp"),
                    pl.int_range(1, f.height + 1, dtype=pl.Int64).alias(".id"),
                    pl.all(),
                )
                for k, f in enumerate(parts)
            ],
            how="vertical_relaxed",
        )
        table = long.to_arrow()
    else:
        frames = []
        for k, f in enumerate(parts):
            p = f.reset_index(drop=True)
            p.insert(0, ".id", np.arange(1, len(f) + 1, dtype=np.int64))
            p.insert(0, ".imp", np.int64(k))
            frames.append(p)
        table = pa.Table.from_pandas(pd.concat(frames, ignore_index=True), preserve_index=False)
    md = dict(table.schema.metadata or {})
    md.update(meta)
    pq.write_table(table.replace_schema_metadata(md), path, write_page_checksum=True)


@pytest.mark.parametrize("lib", ["pandas", "polars"])
def test_row_groups_across_data_sets_are_the_whole_tables(tmp_path, lib):
    """1.2 million stacked rows: pyarrow's row groups of 2**20 rows end inside a data set."""
    n, m = 300_000, 3
    rng = np.random.default_rng(1)
    orig = pd.DataFrame(
        {
            "g": pd.Categorical(rng.choice(["a", "b"], n), categories=["b", "a"]),
            "k": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "y": rng.normal(size=n),
        }
    )
    orig.loc[rng.random(n) < 0.2, ["k", "y"]] = pd.NA
    frames = [orig.assign(k=orig["k"].fillna(j), y=orig["y"].fillna(float(j))) for j in range(m)]
    if lib == "polars":
        conv = lambda d: pl.from_pandas(d).with_columns(pl.col("g").cast(pl.Enum(["b", "a"])))  # noqa: E731
        frames, orig = [conv(f) for f in frames], conv(orig)
    mlist = pm.MitmlList(frames, orig)
    got = tmp_path / "got.parquet"
    mlist.to_file(got)
    assert pq.ParquetFile(got).metadata.num_row_groups == 2
    ref = tmp_path / "ref.parquet"
    key = b"pymitml_long"
    _whole_table_parquet(mlist, ref, {key: pq.read_schema(got).metadata[key]})
    assert got.read_bytes() == ref.read_bytes()
