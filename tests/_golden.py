"""Configurations whose exact draws are frozen in tests/golden/ (the restructure's safety net).

Each configuration is a small pan_impute / jomo_impute run on data generated here from a fixed
seed; together they touch every code path of the two samplers: random intercepts and slopes,
``group=``, single-level, binary, nominal and ordinal targets, level-2 targets (continuous and
categorical), random_L1 "mean" and "full" (with categorical and level-2 targets), several chains
on several threads and keep_chains="diagonal". ``python -m tests.make_golden`` writes the files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

import pymitml as pm

GOLDEN_DIR = Path(__file__).parent / "golden"


def _two_level(seed=3, J=30, n=8):
    rng = np.random.default_rng(seed)
    N = J * n
    idx = np.repeat(np.arange(J), n)
    x = rng.normal(size=N)
    w = rng.normal(size=J)[idx]
    u = rng.normal(0, 0.6, (J, 2))[idx]
    s = rng.normal(0, 0.3, J)[idx]
    y1 = 1 + 0.5 * x + 0.3 * w + u[:, 0] + s * x + rng.normal(size=N)
    y2 = -1 + 0.2 * x + u[:, 1] + 0.5 * rng.normal(size=N) + 0.3 * y1
    lat = 0.4 * y1[:, None] + rng.normal(size=(N, 2))
    lev = np.where(lat.max(axis=1) > 0.5, lat.argmax(axis=1), 2)
    o = np.digitize(0.7 * y1 + rng.normal(size=N), [-0.5, 0.8, 1.8])
    df = pd.DataFrame(
        {
            "id": idx,
            "y1": y1,
            "y2": y2,
            "x": x,
            "w": w,
            "g": np.where(idx % 2 == 0, "even", "odd"),
            "b": pd.Categorical(np.where(lat[:, 0] > 0.3, "yes", "no"), categories=["yes", "no"]),
            "nom": pd.Categorical(
                np.array(["hi", "lo", "mid"])[lev], categories=["mid", "hi", "lo"]
            ),
            "ord": pd.Categorical(
                np.array(["a", "b", "c", "d"])[o], categories=list("abcd"), ordered=True
            ),
        }
    )
    for c, frac in (("y1", 0.2), ("y2", 0.15), ("b", 0.2), ("nom", 0.2), ("ord", 0.2)):
        df.loc[rng.random(N) < frac, c] = None
    # level-2 targets: one continuous, one nominal, one binary; a few clusters missing each
    v = 0.5 * w + rng.normal(0, 0.5, N)[::n].repeat(n)
    kind = np.array(["c", "a", "b"])[rng.integers(0, 3, J)][idx]
    site = np.array(["north", "south"])[rng.integers(0, 2, J)][idx]
    df["v"] = v
    df["kind"] = pd.Categorical(kind, categories=["c", "a", "b"])
    df["site"] = pd.array(site, dtype=object)
    df.loc[df["id"].isin([2, 7, 19]), "v"] = np.nan
    df.loc[df["id"].isin([1, 7, 23]), "kind"] = np.nan
    df.loc[df["id"].isin([4, 11]), "site"] = None
    return df


RUN = dict(m=2, n_burn=40, n_iter=6, seed=20261202)


def _pan(formula, **kw):
    return lambda df: pm.pan_impute(df, formula, **{**RUN, **kw})


def _jomo(formula, **kw):
    return lambda df: pm.jomo_impute(df, formula, **{**RUN, **kw})


CONFIGS = {
    "pan_intercept": _pan("y1 + y2 ~ 1 + x + w + (1|id)"),
    "pan_slope_group": _pan("y1 + y2 ~ 1 + x + (1 + x|id)", group="g"),
    "pan_chains_diagonal": _pan(
        "y1 ~ 1 + x + (1 + x|id)", chains=2, m=4, n_threads=2, keep_chains="diagonal"
    ),
    "jomo_single_level": _jomo("y1 + y2 + b ~ 1 + x"),
    "jomo_binary_nominal": _jomo("y1 + b + nom ~ 1 + x + (1|id)"),
    "jomo_ordinal_slope": _jomo("y1 + ord ~ 1 + x + (1 + x|id)"),
    "jomo_level2": _jomo(["y1 + nom ~ 1 + x + (1|id)", "v + kind + site ~ 1 + w"]),
    "jomo_group_chains": _jomo(
        "y1 + y2 + b ~ 1 + x + (1|id)",
        group="g",
        chains=2,
        m=4,
        n_threads=2,
        keep_chains="diagonal",
    ),
    "jomo_hr_mean": _jomo("y1 + y2 ~ 1 + x + (1|id)", random_L1="mean"),
    "jomo_hr_full_binary": _jomo("y1 + b ~ 1 + x + (1|id)", random_L1="full"),
    "jomo_hr_categorical": _jomo("y1 + b + nom + ord ~ 1 + x + (1|id)", random_L1="mean"),
    "jomo_hr_level2": _jomo(["y1 + b ~ 1 + x + (1|id)", "v + site ~ 1"], random_L1="full"),
}


def arrays_of(imp) -> dict[str, np.ndarray]:
    """Every array an ImputationResult carries: imputed values, cell index, every stored chain."""
    out = {"replacement": imp.replacement, "index": imp.index}
    for phase in ("burnin", "imputation"):
        for block, arr in getattr(imp, f"par_chains_{phase}").items():
            out[f"{phase}.{block}"] = np.asarray(arr)
    for key, val in imp.extra.items():
        if isinstance(val, np.ndarray) and val.dtype.kind in "fiub":
            out[f"extra.{key}"] = val
        elif isinstance(val, dict):  # e.g. the threshold chains of ordinal targets
            for sub, arr in val.items():
                if isinstance(arr, np.ndarray):
                    out[f"extra.{key}.{sub}"] = arr
    return out


def run(name: str) -> dict[str, np.ndarray]:
    return arrays_of(CONFIGS[name](_two_level()))
