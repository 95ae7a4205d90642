"""Worked example: impute in Python, hand the data to Stata, SPSS, Mplus and Blimp colleagues.

    python vignettes/handoff_stata_spss_mplus.py [output-folder]

Daily-diary data (days in persons) with missing mood and stress are imputed with the two-level
joint model; the completed data sets are then written in each program's own multiple-imputation
layout, and the instructions each colleague needs are printed. Every file reads back into Python
unchanged (checked at the end).
"""

from __future__ import annotations

import pathlib
import sys
import tempfile

import pymitml as pm


def main(out: str | None = None) -> None:
    folder = pathlib.Path(out or tempfile.mkdtemp(prefix="pymitml_handoff_"))
    folder.mkdir(parents=True, exist_ok=True)
    df = pm.datasets.diary(n_persons=80, days=14, seed=5)
    imp = pm.pan_impute(
        df,
        "mood + stress ~ 1 + weekend + neuroticism + (1|person)",
        m=10,
        n_burn=1000,
        n_iter=100,
        seed=42,
        progress=False,
    )
    implist = imp.complete()

    written = {
        "Stata": implist.to_stata(folder / "diary.dta", overwrite=True),
        "SPSS": implist.to_spss(folder / "diary.sav", overwrite=True),
        # Mplus names have at most 8 characters: names="map" prints and stores a mapping
        "Mplus": implist.to_mplus(folder / "diary", names="map", overwrite=True),
        "Blimp": implist.to_blimp(folder / "diary_blimp.csv", overwrite=True),
        "long parquet": implist.to_file(folder / "diary_long.parquet", overwrite=True),
    }
    for program, files in written.items():
        names = ", ".join(
            pathlib.Path(f).name for f in (files if isinstance(files, list) else [files])
        )
        print(f"{program:>12}: {names}")

    print("\nStata: the .dta is already `mi set` (flong); in Stata:  use diary.dta  then")
    print("       mi estimate: mixed mood stress weekend neuroticism || person:")
    sps = folder / "diary.sps"
    if sps.exists():
        print("\nSPSS: run diary.sps (it sorts and splits by Imputation_ so SPSS pools):")
        print("   " + sps.read_text().strip().replace("\n", "\n   "))
    inp = folder / "diary.inp"
    if inp.exists():
        print("\nMplus: the input template diary.inp begins")
        print("   " + "\n   ".join(inp.read_text().splitlines()[:8]))

    # every format reads back to the same data
    back = {
        "Stata": pm.read_stata(folder / "diary.dta"),
        "SPSS": pm.read_spss(folder / "diary.sav"),
        "Mplus": pm.read_mplus(folder / "diarylist.dat"),
        "Blimp": pm.read_blimp(folder / "diary_blimp.csv"),
        "long parquet": pm.read_long(folder / "diary_long.parquet"),
    }
    for program, lst in back.items():
        same = all(
            a.reset_index(drop=True).equals(b.reset_index(drop=True)) for a, b in zip(lst, implist)
        )
        print(f"read back from {program:>12}: {len(lst)} data sets, identical: {same}")
    print(f"\nfiles are in {folder}")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
