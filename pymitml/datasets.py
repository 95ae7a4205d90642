"""Seeded generators of example data with known parameters (the designs of the seed documents).

Every generator returns a pandas DataFrame (``polars=True`` for polars) and is reproducible from
``seed``; the true parameter values are in ``df.attrs["truth"]`` (pandas only).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["diary", "random_intercept", "schools"]


def _out(df: pd.DataFrame, polars: bool):
    if polars:
        import polars as pl

        return pl.from_pandas(df)
    return df


def random_intercept(
    n_clusters: int = 200,
    cluster_size: int = 20,
    seed: int = 1,
    missing: bool = True,
    polars: bool = False,
):
    """Two-level data ``y, x ~ z + w + (1|id)`` with MAR missingness in ``y`` and ``x``.

    The benchmark design of REFERENCE.md §6: ``id`` cluster, level-2 predictor ``w``, auxiliary
    level-1 ``z``; ``(y, x)`` bivariate with cluster effects (sd 0.7) and correlated residuals.
    ``y`` is missing more often where ``z`` is high, ``x`` where ``w`` is high (MAR given z, w).
    """
    rng = np.random.default_rng(seed)
    J, n = int(n_clusters), int(cluster_size)
    N = J * n
    idx = np.repeat(np.arange(J), n)
    w = rng.normal(size=J)[idx]
    z = rng.normal(size=N)
    u = rng.multivariate_normal([0, 0], [[0.49, 0.15], [0.15, 0.49]], size=J)[idx]
    e = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 1.0]], size=N)
    y = 1.0 + 0.5 * z + 0.3 * w + u[:, 0] + e[:, 0]
    x = -0.5 + 0.4 * z + 0.2 * w + u[:, 1] + e[:, 1]
    df = pd.DataFrame({"id": idx + 1, "y": y, "x": x, "z": z, "w": w})
    if missing:
        py = 1 / (1 + np.exp(-(-1.2 + 0.8 * z)))
        px = 1 / (1 + np.exp(-(-1.5 + 0.8 * w)))
        df.loc[rng.random(N) < py, "y"] = np.nan
        df.loc[rng.random(N) < px, "x"] = np.nan
    df.attrs["truth"] = {
        "beta": [[1.0, -0.5], [0.5, 0.4], [0.3, 0.2]],
        "psi": [[0.49, 0.15], [0.15, 0.49]],
        "sigma": [[1.0, 0.3], [0.3, 1.0]],
    }
    return _out(df, polars)


def schools(n_schools: int = 50, seed: int = 1, polars: bool = False):
    """Students in schools (the HLM/WinMICE setting), unbalanced, with a random slope.

    Columns: ``school`` (string id), ``student``, ``ses`` (level-1, 15% MAR missing), ``math``
    (outcome, 20% missing), ``sector`` (categorical level-2: "public"/"private"), ``size``
    (level-2 continuous). The math-on-ses slope varies across schools.
    """
    rng = np.random.default_rng(seed)
    sizes = rng.integers(8, 40, size=n_schools)
    N = int(sizes.sum())
    sch = np.repeat(np.arange(n_schools), sizes)
    sector = np.where(rng.random(n_schools) < 0.4, "private", "public")[sch]
    size = np.round(rng.normal(0, 1, n_schools), 3)[sch]
    u0 = rng.normal(0, 2.0, n_schools)[sch]
    u1 = rng.normal(0, 0.8, n_schools)[sch]
    ses = rng.normal(0, 1, N) + 0.3 * size
    math = (
        12
        + 2.5 * ses
        + 1.2 * (sector == "private")
        + 0.5 * size
        + u0
        + u1 * ses
        + rng.normal(0, 3, N)
    )
    df = pd.DataFrame(
        {
            "school": pd.Series([f"S{k:03d}" for k in sch]),
            "student": np.arange(1, N + 1),
            "ses": ses,
            "math": math,
            "sector": pd.Categorical(sector, categories=["public", "private"]),
            "size": size,
        }
    )
    pm_ = 1 / (1 + np.exp(-(-1.6 + 0.5 * df["ses"].to_numpy())))
    ps = 1 / (1 + np.exp(-(-1.9 + 0.6 * size)))
    df.loc[rng.random(N) < ps, "ses"] = np.nan
    df.loc[rng.random(N) < pm_, "math"] = np.nan
    return _out(df, polars)


def diary(n_persons: int = 100, days: int = 14, seed: int = 1, polars: bool = False):
    """Daily diary data: days in persons, with mood and stress (both incomplete) and weekday."""
    rng = np.random.default_rng(seed)
    N = n_persons * days
    pid = np.repeat(np.arange(1, n_persons + 1), days)
    day = np.tile(np.arange(1, days + 1), n_persons)
    neur = rng.normal(size=n_persons)[pid - 1]
    u = rng.multivariate_normal([0, 0], [[0.6, 0.2], [0.2, 0.5]], size=n_persons)[pid - 1]
    stress = 0.4 * neur + u[:, 1] + rng.normal(0, 0.8, N)
    mood = 5 - 0.5 * stress - 0.3 * neur + u[:, 0] + rng.normal(0, 1, N)
    df = pd.DataFrame(
        {
            "person": pid,
            "day": day,
            "weekend": (day % 7 >= 5).astype(float),
            "neuroticism": neur,
            "stress": stress,
            "mood": mood,
        }
    )
    for col, p in (("stress", 0.12), ("mood", 0.18)):
        df.loc[rng.random(N) < p, col] = np.nan
    return _out(df, polars)
