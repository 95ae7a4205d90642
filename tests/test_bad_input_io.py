"""Bad files and bad targets for the readers and writers (pymitml.io), each with the exact message.

Two parts: a table of cases (a file or target that is wrong in one way -> the error type and
its whole message, so any change to a message shows up here), and fuzzing: valid files of every
format, randomly truncated or with random bytes changed, must end in FileFormatError or in data
equal to the original; the reader must never crash the process, hang, or raise another
library's error. The fuzzing runs in a child process (a crash or a hang is then a failure of
the test, not of the test run): a bounded, seeded number of cases normally, many more under
``-m slow``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.io import (
    read_blimp,
    read_long,
    read_mplus,
    read_spss,
    read_stata,
    write_blimp,
    write_long,
    write_mplus,
    write_spss,
    write_stata,
)
from tests.test_io import _pandas_list

ROOT = Path(__file__).resolve().parent.parent


def _ml() -> pm.MitmlList:
    return _pandas_list(text=False)


def _exact(exc_info, expected: str, tmp: Path) -> None:
    """The message, with the test's folder written as <tmp>, is exactly ``expected``."""
    got = str(exc_info.value).replace(str(tmp), "<tmp>")
    assert got == expected


# --- readers: one case per line ------------------------------------------------------------
def _written(tmp: Path, what: str) -> Path:
    ml = _ml()
    if what == "dta":
        write_stata(ml, tmp / "imp.dta")
        return tmp / "imp.dta"
    if what == "sav":
        write_spss(ml, tmp / "imp.sav")
        return tmp / "imp.sav"
    if what == "parquet":
        write_long(ml, tmp / "imp.parquet")
        return tmp / "imp.parquet"
    if what == "csv":
        write_long(ml, tmp / "imp.csv")
        return tmp / "imp.csv"
    if what == "mplus":
        write_mplus(ml, tmp / "m")
        return tmp / "mlist.dat"
    if what == "blimp":
        write_blimp(ml, tmp / "b.csv")
        return tmp / "b.csv"
    raise AssertionError(what)


READERS = {
    "dta": read_stata,
    "sav": read_spss,
    "parquet": read_long,
    "csv": read_long,
    "mplus": read_mplus,
    "blimp": read_blimp,
}

FMT = {
    "dta": "Stata .dta",
    "sav": "SPSS .sav",
    "parquet": "parquet",
    "csv": "CSV",
    "mplus": "Mplus list",
    "blimp": "Blimp data",
}
NAME = {
    "dta": "imp.dta",
    "sav": "imp.sav",
    "parquet": "imp.parquet",
    "csv": "imp.csv",
    "mplus": "mlist.dat",
    "blimp": "b.csv",
}


@pytest.mark.parametrize("what", list(READERS))
def test_missing_file(tmp_path, what):
    with pytest.raises(FileNotFoundError) as info:  # also a FileFormatError
        READERS[what](tmp_path / NAME[what])
    assert isinstance(info.value, pm.FileFormatError)
    the = "list file" if what == "mplus" else "file"
    _exact(
        info,
        f"cannot read '<tmp>/{NAME[what]}' as {FMT[what]}: there is no file of that name "
        f"(the {the} does not exist).",
        tmp_path,
    )


@pytest.mark.parametrize("what", [w for w in READERS if w != "mplus"])
def test_empty_file(tmp_path, what):
    (tmp_path / NAME[what]).write_bytes(b"")
    with pytest.raises(pm.FileFormatError) as info:
        READERS[what](tmp_path / NAME[what])
    _exact(
        info,
        f"cannot read '<tmp>/{NAME[what]}' as {FMT[what]}: the file is empty (0 bytes).",
        tmp_path,
    )


def test_empty_mplus_list_file(tmp_path):
    (tmp_path / "mlist.dat").write_bytes(b"")
    with pytest.raises(pm.FileFormatError) as info:
        read_mplus(tmp_path / "mlist.dat")
    _exact(info, "list file '<tmp>/mlist.dat' names no data files (it is empty).", tmp_path)


@pytest.mark.parametrize("what", list(READERS))
def test_folder_instead_of_file(tmp_path, what):
    (tmp_path / NAME[what]).mkdir()
    with pytest.raises(pm.FileFormatError) as info:
        READERS[what](tmp_path / NAME[what])
    _exact(
        info,
        f"cannot read '<tmp>/{NAME[what]}' as {FMT[what]}: it is a folder, not a file; name "
        "the file itself.",
        tmp_path,
    )


@pytest.mark.parametrize(
    ("what", "begins"),
    [
        ("dta", "b'PK\\x03\\x04junk'"),
        ("sav", "b'PK\\x03\\x04junk'"),
        ("parquet", "b'PK\\x03\\x04junk'"),
    ],
)
def test_not_this_format(tmp_path, what, begins):
    """A zip (e.g. an .xlsx renamed) given to a binary reader."""
    (tmp_path / NAME[what]).write_bytes(b"PK\x03\x04junk" * 20)
    with pytest.raises(pm.FileFormatError) as info:
        READERS[what](tmp_path / NAME[what])
    _exact(
        info,
        f"cannot read '<tmp>/{NAME[what]}' as {FMT[what]}: it is not a {FMT[what]} file (it "
        f"begins {begins}); check the file name and the reader used.",
        tmp_path,
    )


@pytest.mark.parametrize("what", ["csv", "blimp"])
def test_binary_data_given_to_a_text_reader(tmp_path, what):
    (tmp_path / NAME[what]).write_bytes(b"\x00\x01\x02binary" * 10)
    with pytest.raises(pm.FileFormatError) as info:
        READERS[what](tmp_path / NAME[what])
    _exact(
        info,
        f"cannot read '<tmp>/{NAME[what]}' as {FMT[what]}: it is binary data, not text (it "
        "begins b'\\x00\\x01\\x02binar'); check the file name and the reader used.",
        tmp_path,
    )


def test_truncated_parquet(tmp_path):
    path = _written(tmp_path, "parquet")
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(pm.FileFormatError) as info:
        read_long(path)
    _exact(
        info,
        "cannot read '<tmp>/imp.parquet' as parquet: the file is truncated (it does not end "
        "with parquet's footer); write it again.",
        tmp_path,
    )


@pytest.mark.parametrize("what", ["dta", "sav", "csv", "blimp"])
def test_truncated_file_with_sidecar(tmp_path, what):
    """Cut short: the sidecar's checksum tells (whatever the parser made of the rest)."""
    path = _written(tmp_path, what)
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) * 2 // 3])
    with pytest.raises(pm.FileFormatError) as info:
        READERS[what](path)
    assert isinstance(info.value.__cause__, (Exception, type(None)))
    _exact(
        info,
        f"cannot read '<tmp>/{NAME[what]}' as {FMT[what]}: the file has changed since pymitml "
        "wrote it (its SHA-256 does not match the one in the schema sidecar), so it is "
        "truncated, corrupted or was edited. If it was edited on purpose, read it with "
        "schema=False.",
        tmp_path,
    )


def test_truncated_dta_header(tmp_path):
    path = _written(tmp_path, "dta")
    path.write_bytes(path.read_bytes()[:900])
    with pytest.raises(pm.FileFormatError) as info:
        read_stata(path, schema=False)
    _exact(
        info,
        "cannot read '<tmp>/imp.dta' as Stata .dta: the map does not point at "
        "<characteristics>, so the file is corrupted.",
        tmp_path,
    )


def test_truncated_sav_dictionary(tmp_path):
    path = _written(tmp_path, "sav")
    path.write_bytes(path.read_bytes()[:700])
    with pytest.raises(pm.FileFormatError) as info:
        read_spss(path, schema=False)
    _exact(
        info,
        "cannot read '<tmp>/imp.sav' as SPSS .sav: a record runs past the end of the file at "
        "byte 708, so the file is corrupted or truncated.",
        tmp_path,
    )


def test_truncated_dta_without_sidecar_is_chained_to_the_parser(tmp_path):
    path = _written(tmp_path, "dta")
    raw = path.read_bytes()
    path.write_bytes(raw[: raw.index(b"<data>") + 200])
    with pytest.raises(pm.FileFormatError) as info:
        read_stata(path, schema=False)
    msg = str(info.value).replace(str(tmp_path), "<tmp>")
    assert msg.startswith(
        "cannot read '<tmp>/imp.dta' as Stata .dta: the file is truncated or corrupted ("
    )
    assert info.value.__cause__ is not None  # the parser's own error, chained


def test_truncated_sav_data(tmp_path):
    path = _written(tmp_path, "sav")
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(pm.FileFormatError) as info:
        read_spss(path, schema=False)
    _exact(
        info,
        "cannot read '<tmp>/imp.sav' as SPSS .sav: the header claims 48 cases, more than the "
        "file can hold at byte 80, so the file is corrupted or truncated.",
        tmp_path,
    )


def test_pyreadstat_error_is_chained(tmp_path, monkeypatch):
    """Whatever pyreadstat itself refuses comes back as FileFormatError, chained to its error."""
    import pyreadstat

    path = _written(tmp_path, "sav")

    def refuse(*a, **k):
        raise pyreadstat.ReadstatError("Invalid file, or file has unsupported features")

    monkeypatch.setattr(pyreadstat, "read_sav", refuse)
    with pytest.raises(pm.FileFormatError) as info:
        read_spss(path, schema=False)
    assert isinstance(info.value.__cause__, pyreadstat.ReadstatError)
    _exact(
        info,
        "cannot read '<tmp>/imp.sav' as SPSS .sav: the file is truncated or corrupted "
        "(ReadstatError: Invalid file, or file has unsupported features).",
        tmp_path,
    )


def test_truncated_blimp_without_sidecar_has_unequal_blocks(tmp_path):
    path = _written(tmp_path, "blimp")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:-2]))
    with pytest.raises(pm.FileFormatError) as info:
        read_blimp(path, schema=False)
    _exact(
        info,
        "cannot read '<tmp>/b.csv' as Blimp data: the data sets have different numbers of rows "
        "(the imputation number = 3 has 10, expected 12); the file is truncated or its blocks "
        "are inconsistent.",
        tmp_path,
    )


def test_mplus_data_files_of_different_lengths(tmp_path):
    _written(tmp_path, "mplus")
    lines = (tmp_path / "m2.dat").read_text().splitlines(keepends=True)
    (tmp_path / "m2.dat").write_text("".join(lines[:-1]))
    with pytest.raises(pm.FileFormatError) as info:
        read_mplus(tmp_path / "mlist.dat", schema=False)
    _exact(
        info,
        "cannot read '<tmp>/mlist.dat' as Mplus data: the data sets have different numbers of "
        "rows (the imputation number = 2 has 11, expected 12); the file is truncated or its "
        "blocks are inconsistent.",
        tmp_path,
    )


def test_mplus_data_file_missing(tmp_path):
    _written(tmp_path, "mplus")
    (tmp_path / "m3.dat").unlink()
    with pytest.raises(FileNotFoundError) as info:
        read_mplus(tmp_path / "mlist.dat")
    _exact(
        info,
        "cannot read '<tmp>/m3.dat' as Mplus data: there is no file of that name (the data "
        "file does not exist).",
        tmp_path,
    )


def test_mplus_data_files_with_different_columns(tmp_path):
    _written(tmp_path, "mplus")
    lines = (tmp_path / "m2.dat").read_text().splitlines()
    (tmp_path / "m2.dat").write_text("".join(ln.rsplit("\t", 1)[0] + "\n" for ln in lines))
    with pytest.raises(pm.FileFormatError) as info:
        read_mplus(tmp_path / "mlist.dat", schema=False)
    _exact(
        info,
        "cannot read '<tmp>/m2.dat' as Mplus data: it has 7 columns but 8 names were given: "
        "['school', 'y', 'x', 'cnt', 'flag', 'grp', 'lvl', 'age'].",
        tmp_path,
    )


def test_stata_without_imputation_indicator(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0]}).to_stata(tmp_path / "plain.dta", write_index=False)
    with pytest.raises(pm.FileFormatError) as info:
        read_stata(tmp_path / "plain.dta")
    _exact(
        info,
        "'<tmp>/plain.dta' has no ['_mi_m', '_mi_id'] column(s), so it is not mi flong data (no "
        "imputation indicator); in Stata run `mi convert flong` (or `mi import`) and save it again.",
        tmp_path,
    )


def test_spss_without_imputation_indicator(tmp_path):
    import pyreadstat

    pyreadstat.write_sav(pd.DataFrame({"a": [1.0, 2.0]}), str(tmp_path / "plain.sav"))
    with pytest.raises(pm.FileFormatError) as info:
        read_spss(tmp_path / "plain.sav")
    _exact(
        info,
        "'<tmp>/plain.sav' has no 'Imputation_' column (no imputation indicator), so it is not "
        "SPSS's stacked multiple-imputation layout; its columns are ['a'].",
        tmp_path,
    )


def test_csv_without_imputation_indicator(tmp_path):
    pd.DataFrame({"a": [1.0, 2.0]}).to_csv(tmp_path / "plain.csv", index=False)
    with pytest.raises(pm.FileFormatError) as info:
        read_long(tmp_path / "plain.csv")
    _exact(
        info,
        "'<tmp>/plain.csv' has no imputation column '.imp'; its columns are ['a']. Pass "
        "`imputation=`.",
        tmp_path,
    )


def test_csv_header_only(tmp_path):
    (tmp_path / "h.csv").write_text(".imp,.id,y\n")
    with pytest.raises(pm.FileFormatError) as info:
        read_long(tmp_path / "h.csv")
    _exact(info, "cannot read '<tmp>/h.csv' as CSV: it has a header but no rows.", tmp_path)


def test_csv_imputation_number_missing(tmp_path):
    (tmp_path / "g.csv").write_text(".imp,.id,y\n1,1,2.0\n,2,3.0\n")
    with pytest.raises(pm.FileFormatError) as info:
        read_long(tmp_path / "g.csv")
    _exact(
        info,
        "cannot read '<tmp>/g.csv' as CSV: the imputation column '.imp' has missing values; "
        "every row needs an imputation number.",
        tmp_path,
    )


def test_inconsistent_m_across_variables(tmp_path):
    """Imputation 2 has fewer cases than imputation 1 (rows of some variables dropped)."""
    (tmp_path / "u.csv").write_text(".imp,.id,y,x\n1,1,2.0,1\n1,2,3.0,2\n2,1,2.5,1\n")
    with pytest.raises(pm.FileFormatError) as info:
        read_long(tmp_path / "u.csv")
    _exact(
        info,
        "cannot read '<tmp>/u.csv' as CSV: the data sets have different numbers of rows ('.imp' "
        "= 2 has 1, expected 2); the file is truncated or its blocks are inconsistent.",
        tmp_path,
    )


def test_stata_mi_settings_disagree_with_the_rows(tmp_path):
    """_mi_M says 3 but a block was removed (same columns, so the sidecar is not the judge)."""
    path = _written(tmp_path, "dta")
    df = pd.read_stata(path, convert_categoricals=False)
    from pymitml.io.stata import _check_mi_counts

    with pytest.raises(pm.FileFormatError) as info:
        _check_mi_counts(path, df[df["_mi_m"] < 3], {"_mi_M": "3", "_mi_N": str(12)})
    _exact(
        info,
        "cannot read '<tmp>/imp.dta' as Stata .dta: its settings say _mi_M = 3 but it holds 2 "
        "imputations; the file is truncated or inconsistent.",
        tmp_path,
    )


def test_edited_sidecar(tmp_path):
    """A sidecar whose contents changed (here a category renamed) is refused, not applied."""
    path = _written(tmp_path, "sav")
    side = tmp_path / "imp.sav.schema.json"
    side.write_text(side.read_text().replace('"b"', '"q"'))
    with pytest.raises(pm.FileFormatError) as info:
        read_spss(path)
    _exact(
        info,
        "cannot use the schema sidecar '<tmp>/imp.sav.schema.json': its checksum does not "
        "match its contents, so it is corrupted or was edited. Delete it, or read with "
        "schema=False.",
        tmp_path,
    )
    assert read_spss(path, schema=False)[0]["grp"].astype(str).iloc[0] == "a"


def test_sidecar_that_is_not_json(tmp_path):
    path = _written(tmp_path, "dta")
    (tmp_path / "imp.dta.schema.json").write_text("{not json")
    with pytest.raises(pm.FileFormatError) as info:
        read_stata(path)
    _exact(
        info,
        "cannot use the schema sidecar '<tmp>/imp.dta.schema.json': JSONDecodeError: "
        "Expecting property name enclosed in double quotes: line 1 column 2 (char 1). Delete "
        "it, or read with schema=False.",
        tmp_path,
    )


def test_explicit_schema_file_missing_is_an_argument_error(tmp_path):
    path = _written(tmp_path, "sav")
    with pytest.raises(FileNotFoundError) as info:
        read_spss(path, schema=tmp_path / "none.json")
    assert not isinstance(info.value, pm.FileFormatError)  # the argument, not the file, is wrong
    _exact(info, "`schema` file '<tmp>/none.json' does not exist.", tmp_path)


# --- writers -------------------------------------------------------------------------------
WRITERS = {
    "dta": write_stata,
    "sav": write_spss,
    "parquet": write_long,
    "csv": write_long,
    "blimp": write_blimp,
}


@pytest.mark.parametrize("what", list(WRITERS))
def test_write_to_a_folder(tmp_path, what):
    (tmp_path / NAME[what]).mkdir()
    with pytest.raises(pm.FileFormatError) as info:
        WRITERS[what](_ml(), tmp_path / NAME[what])
    _exact(
        info,
        f"cannot write '<tmp>/{NAME[what]}': it is a folder; give a file name inside it, e.g. "
        f"'<tmp>/{NAME[what]}/imputed' with the format's extension.",
        tmp_path,
    )


@pytest.mark.parametrize("what", list(WRITERS))
def test_write_into_a_missing_folder(tmp_path, what):
    with pytest.raises(FileNotFoundError) as info:
        WRITERS[what](_ml(), tmp_path / "no" / NAME[what])
    assert isinstance(info.value, pm.FileFormatError)
    _exact(
        info,
        f"cannot write '<tmp>/no/{NAME[what]}': the folder '<tmp>/no' does not exist; create "
        "it first.",
        tmp_path,
    )


def test_write_refuses_to_overwrite(tmp_path):
    write_spss(_ml(), tmp_path / "a.sav")
    with pytest.raises(FileExistsError) as info:
        write_spss(_ml(), tmp_path / "a.sav")
    _exact(
        info,
        "'<tmp>/a.sav' already exists; nothing was written. Pass overwrite=True to replace it, "
        "or choose another name.",
        tmp_path,
    )
    with pytest.raises(TypeError) as info:
        write_spss(_ml(), tmp_path / "b.sav", overwrite="yes")
    assert str(info.value) == "`overwrite` must be True or False; got 'yes'."


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """An error in the middle of writing (here: after the data file, while writing the .do)
    leaves neither the data file nor temporary files; an existing file stays as it was."""
    import pymitml.io.stata as stata

    def boom(*a, **k):
        raise KeyboardInterrupt

    (tmp_path / "imp.dta").write_bytes(b"old")
    monkeypatch.setattr(stata, "_do_text", boom)
    with pytest.raises(KeyboardInterrupt):
        write_stata(_ml(), tmp_path / "imp.dta", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["imp.dta"]
    assert (tmp_path / "imp.dta").read_bytes() == b"old"


def test_failed_mplus_write_leaves_nothing(tmp_path):
    """The missing flag met in imputation 3: no data file of imputations 1-2 is left behind."""
    ml = _ml()
    frames = [f.copy() for f in ml]
    frames[2].loc[0, "y"] = -999.0
    with pytest.raises(ValueError) as info:
        write_mplus(pm.MitmlList(frames, ml.original), tmp_path / "m")
    assert str(info.value) == (
        "a value in column 2 of 'm3.dat' equals the missing flag -999; choose another "
        "`missing` value."
    )
    assert list(tmp_path.iterdir()) == []


def test_overwrite_replaces_every_file(tmp_path):
    ml = _ml()
    write_mplus(ml, tmp_path / "m")
    before = (tmp_path / "m1.dat").read_text()
    frames = [f.assign(y=f["y"] + 1) for f in ml]
    write_mplus(pm.MitmlList(frames, ml.original), tmp_path / "m", overwrite=True)
    assert (tmp_path / "m1.dat").read_text() != before
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    back = read_mplus(tmp_path / "mlist.dat")
    np.testing.assert_allclose(back[0]["y"], frames[0]["y"])


# --- fuzzing -------------------------------------------------------------------------------
FUZZ = ["dta", "sav", "parquet", "csv", "csv.gz", "mplus", "blimp", "blimp-separate"]


def _fuzz_targets(folder: Path, what: str) -> tuple[Path, list[Path], object]:
    """Write a valid file set for ``what``; return (file to read, files to damage, reader)."""
    ml = _pandas_list(text=what not in ("mplus", "blimp", "blimp-separate"))
    if what == "mplus":
        ml = _pandas_list(text=True)
        write_mplus(ml, folder / "m")
        return folder / "mlist.dat", [folder / f"m{k}.dat" for k in (1, 2, 3)], read_mplus
    if what == "blimp":
        write_blimp(ml, folder / "b.csv", include_original=True)
        return folder / "b.csv", [folder / "b.csv"], read_blimp
    if what == "blimp-separate":
        write_blimp(ml, folder / "s.csv", layout="separate")
        return folder / "slist.csv", [folder / f"s{k}.csv" for k in (1, 2, 3)], read_blimp
    if what == "rds":
        from pymitml.io import read_rds, write_rds

        write_rds(pm.MitmlList(list(ml)), folder / "x.rds")
        return folder / "x.rds", [folder / "x.rds"], read_rds
    ext = {"dta": ".dta", "sav": ".sav", "parquet": ".parquet", "csv": ".csv", "csv.gz": ".csv.gz"}
    target = folder / f"imp{ext[what]}"
    {"dta": write_stata, "sav": write_spss}.get(what, write_long)(ml, target)
    reader = {"dta": read_stata, "sav": read_spss}.get(what, read_long)
    return target, [target], reader


def _equal(a: pm.MitmlList, b) -> bool:
    if not isinstance(b, pm.MitmlList) or len(a) != len(b):
        return False
    pairs = list(zip(a, b))
    if (a.original is None) != (b.original is None):
        return False
    if a.original is not None:
        pairs.append((a.original, b.original))
    try:
        for x, y in pairs:
            pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError:
        return False
    return True


def _fuzz_worker(what: str, n: int, seed: int, folder: str, sidecar: bool = True) -> None:
    """Run ``n`` truncations and ``n`` corruptions of a valid ``what`` file set; print a JSON
    summary (outcome counts and any case that ended otherwise) on the last line of stdout.

    Without the schema sidecar (``sidecar=False``) a changed number in a text or Stata/SPSS
    file cannot be told from a real one (those formats carry no checksum), so there a read
    that gives other data is counted ("differ"), not a finding; every other outcome must still
    be a FileFormatError or equal data."""
    import resource
    import warnings

    # a reader that believes a damaged size field must fail here, not exhaust the machine
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))
    warnings.simplefilter("ignore")
    base = Path(folder) / "base"
    base.mkdir()
    entry, victims, reader = _fuzz_targets(base, what)
    sides = sorted(base.glob("*.schema.json"))
    if not sidecar:
        for side in sides:
            side.unlink()
    else:
        victims = victims + sides  # the sidecar is damaged too, now and then
    original = reader(entry)
    rng = np.random.default_rng(seed)
    counts = {"error": 0, "equal": 0, "differ": 0}
    bad: list[str] = []
    for case in range(2 * n):
        work = Path(folder) / f"case{case}"
        shutil.copytree(base, work)
        victim = work / victims[int(rng.integers(len(victims)))].name
        raw = bytearray(victim.read_bytes())
        if case < n:
            kind = f"truncated to {int(rng.integers(0, len(raw)))} of {len(raw)} bytes"
            cut = int(kind.split()[2])
            victim.write_bytes(bytes(raw[:cut]))
        else:
            spots = rng.integers(0, len(raw), size=int(rng.integers(1, 5)))
            for s in spots:
                raw[s] = (raw[s] + int(rng.integers(1, 256))) % 256
            kind = f"bytes {sorted(int(s) for s in spots)} changed"
            victim.write_bytes(bytes(raw))
        print(f"case {case}: {victim.name} {kind}", file=sys.stderr, flush=True)
        try:
            out = reader(work / entry.name)
        except pm.FileFormatError:
            counts["error"] += 1
        except Exception as exc:  # another error type: a finding
            bad.append(f"{victim.name} {kind}: {type(exc).__module__}.{type(exc).__name__}: {exc}")
        else:
            if _equal(original, out):
                counts["equal"] += 1
            elif not sidecar and isinstance(out, pm.MitmlList):
                counts["differ"] += 1
            else:
                bad.append(f"{victim.name} {kind}: read without error but the data differ")
        shutil.rmtree(work)
    print(json.dumps({"counts": counts, "bad": bad}))


def _run_fuzz(
    what: str, n: int, seed: int, tmp: Path, timeout: float, sidecar: bool = True
) -> dict:
    env = dict(os.environ, PYTHONHASHSEED="0")
    code = (
        "from tests.test_bad_input_io import _fuzz_worker; "
        f"_fuzz_worker({what!r}, {n}, {seed}, {str(tmp)!r}, {sidecar!r})"
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"fuzzing {what}: the reader hung (no answer within {timeout:.0f} s)")
    assert proc.returncode == 0, (
        f"fuzzing {what}: the process died (return code {proc.returncode}):\n{proc.stderr[-3000:]}"
    )
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _check_fuzz(
    what: str, n: int, seed: int, tmp: Path, timeout: float, sidecar: bool = True
) -> None:
    res = _run_fuzz(what, n, seed, tmp, timeout, sidecar)
    assert not res["bad"], f"fuzzing {what}: " + "\n".join(res["bad"])
    assert sum(res["counts"].values()) == 2 * n
    assert res["counts"]["error"] > 0  # damage was seen, not silently accepted every time
    if sidecar:
        assert res["counts"]["differ"] == 0


@pytest.mark.parametrize("what", FUZZ)
def test_fuzz_readers(tmp_path, what):
    """10 truncations and 10 corruptions per format (seeded)."""
    _check_fuzz(what, 10, 20261203 + FUZZ.index(what), tmp_path, timeout=300)


@pytest.mark.parametrize("what", [w for w in FUZZ if w != "parquet"])
def test_fuzz_readers_without_sidecar(tmp_path, what):
    """The parsers themselves (no checksum to lean on): FileFormatError or a MitmlList, never
    another error, a crash or a hang."""
    _check_fuzz(what, 10, 3 + FUZZ.index(what), tmp_path, timeout=300, sidecar=False)


@pytest.mark.r
def test_fuzz_rds(needs_r, tmp_path):
    _check_fuzz("rds", 10, 20261299, tmp_path, timeout=300)


@pytest.mark.slow
@pytest.mark.parametrize("what", FUZZ)
def test_fuzz_readers_at_length(tmp_path, what):
    """250 truncations and 250 corruptions per format."""
    _check_fuzz(what, 250, 77 + FUZZ.index(what), tmp_path, timeout=3600)


@pytest.mark.slow
@pytest.mark.parametrize("what", [w for w in FUZZ if w != "parquet"])
def test_fuzz_readers_without_sidecar_at_length(tmp_path, what):
    _check_fuzz(what, 250, 99 + FUZZ.index(what), tmp_path, timeout=3600, sidecar=False)


@pytest.mark.slow
@pytest.mark.r
def test_fuzz_rds_at_length(needs_r, tmp_path):
    _check_fuzz("rds", 100, 78, tmp_path, timeout=3600)


def test_message_placeholders_are_filled():
    """No message in the io package is left with an unfilled {placeholder}."""
    src = "\n".join(p.read_text() for p in (ROOT / "pymitml" / "io").glob("*.py"))
    assert not re.search(r'[^f]"cannot (read|write) [^"]*\{', src)
