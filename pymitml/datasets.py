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


# ---- designs for model-based (substantive-model-compatible) imputation ---------------------


def random_slope_mar(
    n_clusters: int = 50,
    cluster_size: int = 30,
    seed: int = 1,
    p_missing: float = 0.35,
    with_z: bool = False,
    y_mcar: float = 0.0,
    missing: bool = True,
    polars: bool = False,
):
    """``y ~ x (+ z) + (1 + x | j)`` with the randomly-sloped predictor ``x`` missing at random.

    ``x = 0.5 + a_j + e`` (cluster effect var 0.25, residual var 1); optionally ``z ~ N(0, 1)``, a
    complete level-1 covariate without a cluster effect; ``y = 1 + 0.5 x (+ 0.5 z) + u0_j + u1_j x
    + r`` with ``Var(u0) = 0.5``, ``Var(u1) = 0.25``, ``Cov = 0.1``, residual variance 1.
    ``x`` is missing with probability ``logistic(c + 1.2 y_std)`` (MAR given ``y``), ``c``
    chosen so that about ``p_missing`` of ``x`` is missing; ``y`` is missing completely at random
    with probability ``y_mcar`` (only where ``x`` is observed, so no row loses both).
    ``missing=False`` returns the same data before the deletion. Imputing ``x`` from a random-intercept joint model ignores the slope and shrinks ``Var(u1)``.
    """
    rng = np.random.default_rng(seed)
    J, n = int(n_clusters), int(cluster_size)
    N = J * n
    idx = np.repeat(np.arange(J), n)
    x = 0.5 + rng.normal(0, 0.5, J)[idx] + rng.normal(size=N)
    tau = np.array([[0.5, 0.1], [0.1, 0.25]])
    u = rng.multivariate_normal([0.0, 0.0], tau, size=J)[idx]
    beta = {"(Intercept)": 1.0, "x": 0.5}
    y = 1.0 + 0.5 * x + u[:, 0] + u[:, 1] * x + rng.normal(size=N)
    cols = {"j": idx + 1, "y": y, "x": x}
    if with_z:
        z = rng.normal(size=N)
        y = y + 0.5 * z
        cols.update(y=y, z=z)
        beta["z"] = 0.5
    df = pd.DataFrame(cols)
    ys = (y - y.mean()) / y.std()
    c = np.log(p_missing / (1 - p_missing))
    miss_x = rng.random(N) < 1 / (1 + np.exp(-(c + 1.2 * ys)))
    miss_y = (rng.random(N) < y_mcar) & ~miss_x
    if missing:
        df.loc[miss_x, "x"] = np.nan
        df.loc[miss_y, "y"] = np.nan
    df.attrs["truth"] = {
        "beta": beta,
        "tau": tau.tolist(),
        "sigma2": 1.0,
        "x_mean": 0.5,
        "x_between_var": 0.25,
        "x_within_var": 1.0,
    }
    return _out(df, polars)


def interaction_mar(
    n_clusters: int = 50,
    cluster_size: int = 20,
    seed: int = 1,
    p_missing: float = 0.3,
    multilevel: bool = True,
    missing: bool = True,
    polars: bool = False,
):
    """``y ~ x1 + x2 + x1:x2 (+ (1 | j))`` with both predictors of the interaction incomplete.

    ``(x1, x2)`` bivariate normal (means 0, variances 1, correlation 0.3); ``y = 1 + 0.5 x1 + 0.5
    x2 + 0.5 x1 x2 (+ u_j) + e`` with ``Var(u) = 0.3`` (when ``multilevel``) and residual variance
    1. ``x1`` is missing with probability ``logistic(c + 1.2 y_std)`` (MAR given ``y``) and ``x2``
    completely at random with probability ``p_missing / 2``; ``c`` gives about ``p_missing`` of
    ``x1`` missing. A joint normal (or chained linear) imputation of ``x1, x2`` ignores the product
    and shrinks its coefficient toward zero. ``multilevel=False`` gives single-level data without
    the column ``j`` (the smcfcs comparison); ``missing=False`` the data before the deletion.
    """
    rng = np.random.default_rng(seed)
    J, n = int(n_clusters), int(cluster_size)
    N = J * n
    idx = np.repeat(np.arange(J), n)
    X = rng.multivariate_normal([0.0, 0.0], [[1.0, 0.3], [0.3, 1.0]], size=N)
    x1, x2 = X[:, 0], X[:, 1]
    y = 1.0 + 0.5 * x1 + 0.5 * x2 + 0.5 * x1 * x2 + rng.normal(size=N)
    if multilevel:
        y = y + rng.normal(0, np.sqrt(0.3), J)[idx]
    df = pd.DataFrame({"j": idx + 1, "y": y, "x1": x1, "x2": x2})
    if not multilevel:
        df = df.drop(columns="j")
    ys = (y - y.mean()) / y.std()
    c = np.log(p_missing / (1 - p_missing))
    m1 = rng.random(N) < 1 / (1 + np.exp(-(c + 1.2 * ys)))
    m2 = rng.random(N) < p_missing / 2
    if missing:
        df.loc[m1, "x1"] = np.nan
        df.loc[m2, "x2"] = np.nan
    truth: dict = {
        "beta": {"(Intercept)": 1.0, "x1": 0.5, "x2": 0.5, "x1:x2": 0.5},
        "sigma2": 1.0,
    }
    if multilevel:
        truth["tau00"] = 0.3
    df.attrs["truth"] = truth
    return _out(df, polars)


def blimp_mnar(
    n_clusters: int = 30,
    cluster_size: int = 20,
    seed: int = 1,
    missing: bool = True,
    polars: bool = False,
):
    """Seed 002's multilevel MNAR example: ``y ~ x1i + x2i + x3i + x2i:x3i + (1 + x1i | j)``.

    30 clusters of 20 (600 rows). ``x3i ~ N(0, 1)`` complete; ``x2i = 0.34 x3i + e`` (residual
    var 0.87); ``x1i = 0.33 x2i + 0.29 x3i + e`` (residual var 0.78); all fixed effects 1 and the
    intercept 0; random intercept var 0.2, slope var 0.18, correlation 0.59; residual var 0.95.
    Missingness: ``y`` MNAR on itself (probit ``Phi(-1.2 + 0.45 y)``, about 23% missing), ``x1i``
    MAR on ``x2i`` (probit ``Phi(-1.2 + 0.5 x2i)``, about 13%) and ``x2i`` MCAR (8.5%).
    ``missing=False`` returns the same data before the values are deleted (same seed, same
    draws).
    """
    rng = np.random.default_rng(seed)
    from scipy.stats import norm

    J, n = int(n_clusters), int(cluster_size)
    N = J * n
    idx = np.repeat(np.arange(J), n)
    x3 = rng.normal(size=N)
    x2 = 0.34 * x3 + rng.normal(0, np.sqrt(0.87), N)
    x1 = 0.33 * x2 + 0.29 * x3 + rng.normal(0, np.sqrt(0.78), N)
    c01 = 0.59 * np.sqrt(0.2 * 0.18)
    tau = np.array([[0.2, c01], [c01, 0.18]])
    u = rng.multivariate_normal([0.0, 0.0], tau, size=J)[idx]
    y = x1 + x2 + x3 + x2 * x3 + u[:, 0] + u[:, 1] * x1 + rng.normal(0, np.sqrt(0.95), N)
    df = pd.DataFrame({"j": idx + 1, "y": y, "x1i": x1, "x2i": x2, "x3i": x3})
    my = rng.random(N) < norm.cdf(-1.2 + 0.45 * y)
    m1 = rng.random(N) < norm.cdf(-1.2 + 0.5 * x2)
    m2 = rng.random(N) < 0.085
    if missing:
        df.loc[my, "y"] = np.nan
        df.loc[m1, "x1i"] = np.nan
        df.loc[m2, "x2i"] = np.nan
    df.attrs["truth"] = {
        "beta": {"(Intercept)": 0.0, "x1i": 1.0, "x2i": 1.0, "x3i": 1.0, "x2i:x3i": 1.0},
        "tau": tau.tolist(),
        "sigma2": 0.95,
    }
    return _out(df, polars)


__all__ += ["blimp_mnar", "interaction_mar", "random_slope_mar"]
