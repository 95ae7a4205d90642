"""Design matrices of one target's conditional model, rebuilt from the current imputations.

The predictor-matrix row of a target lists its predictors with mice's codes: 1 fixed effect,
2 fixed effect + random slope, 3 fixed effect + the predictor's cluster mean, 4 both. A numeric
or two-category predictor is one column (its value or 0/1 code), a predictor with K > 2
categories K - 1 indicator columns (the first category is the reference). Cluster means are
means over all rows of the cluster of the current (observed or imputed) values, recomputed at
every visit. The intercept is the first column of X and (for 2l methods) of Z.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ._spec import FcsSpec

__all__ = ["Design", "cluster_means", "target_design"]


@dataclass
class Design:
    """How to build one target's X and Z: predictor columns with their codes and names."""

    terms: list[tuple[int, int]]  # (column index, code)
    x_names: list[str]
    z_names: list[str]
    keep: np.ndarray  # columns of the full X kept after the collinearity check
    level2: bool = False  # cluster-level design (2lonly): rows are clusters

    def build(self, cur: np.ndarray, spec: FcsSpec, random: bool) -> tuple[np.ndarray, np.ndarray]:
        """(X, Z) over the sorted rows (or over clusters for a level-2 design)."""
        X, Z = _full_design(self, cur, spec, random)
        if len(self.keep) == X.shape[1]:  # nothing dropped: X is already a fresh array
            return X, Z
        return np.ascontiguousarray(X[:, self.keep]), Z


def cluster_means(v: np.ndarray, clus: np.ndarray, J: int) -> np.ndarray:
    """Per-cluster means of the columns of ``v`` (rows x k), as a (J, k) array."""
    n = np.bincount(clus, minlength=J).astype(np.float64)
    out = np.empty((J, v.shape[1]))
    for a in range(v.shape[1]):
        out[:, a] = np.bincount(clus, weights=v[:, a], minlength=J) / np.maximum(n, 1.0)
    return out


def _expand(spec: FcsSpec, cur: np.ndarray, k: int) -> np.ndarray:
    """The columns one predictor contributes (N x 1, or N x (K - 1) indicators)."""
    c = spec.columns[k]
    v = cur[:, k]
    if c.kind == "categorical" and c.n_categories > 2:
        return (v[:, None] == np.arange(1, c.n_categories)[None, :]).astype(np.float64)
    return v[:, None]


def _expand_names(spec: FcsSpec, k: int) -> list[str]:
    c = spec.columns[k]
    if c.kind == "categorical" and c.n_categories > 2:
        return [f"{c.name}{lev}" for lev in (c.categories or [])[1:]]
    return [c.name]


def _full_design(d: Design, cur: np.ndarray, spec: FcsSpec, random: bool):
    N = cur.shape[0]
    J = len(spec.start) - 1
    xs: list[np.ndarray] = [np.ones((N, 1))]
    zs: list[np.ndarray] = [np.ones((N, 1))]
    means: list[np.ndarray] = []
    for k, code in d.terms:
        e = _expand(spec, cur, k)
        xs.append(e)
        if random and code in (2, 4):
            zs.append(e)
        if code in (3, 4) or d.level2:
            means.append(e)
    if d.level2:  # cluster-level design: intercept + cluster means of every predictor
        cm = cluster_means(np.hstack(means), spec.clus, J) if means else np.zeros((J, 0))
        return np.hstack([np.ones((J, 1)), cm]), np.ones((J, 1))
    if means:
        xs.append(cluster_means(np.hstack(means), spec.clus, J)[spec.clus])
    return np.hstack(xs), np.ascontiguousarray(np.hstack(zs))


def target_design(spec: FcsSpec, t: int, cur: np.ndarray, level2: bool, random: bool) -> Design:
    """The design of target ``t`` with collinear or constant columns dropped (warning naming
    them), judged on the rows where ``t`` is observed and the start values ``cur``."""
    names = spec.names
    terms = [
        (k, int(code))
        for k, code in enumerate(spec.predictors[t])
        if code in (1, 2, 3, 4) and k != t and names[k] != spec.cluster
    ]
    if not terms:
        warnings.warn(
            f"'{names[t]}' has no predictors (an empty predictor-matrix row); it is imputed from "
            "an intercept-only model.",
            stacklevel=5,
        )
    x_names = ["(Intercept)"] + [n for k, _ in terms for n in _expand_names(spec, k)]
    if not level2:
        x_names += [f"mean({n})" for k, c in terms if c in (3, 4) for n in _expand_names(spec, k)]
    else:
        x_names = ["(Intercept)"] + [f"mean({n})" for k, _ in terms for n in _expand_names(spec, k)]
    z_names = (
        ["(Intercept)"] + [n for k, c in terms if c in (2, 4) for n in _expand_names(spec, k)]
        if random
        else ["(Intercept)"]
    )
    d = Design(terms, x_names, z_names, np.arange(len(x_names)), level2)
    X, _ = _full_design(d, cur, spec, random)
    if level2:
        obs = _observed_clusters(spec, t)
    else:
        obs = ~spec.where[:, t] & ~np.isnan(spec.columns[t].values)
    d.keep = _independent_columns(X[obs])
    dropped = [x_names[a] for a in range(len(x_names)) if a not in set(d.keep.tolist())]
    if dropped:
        warnings.warn(
            f"predictor column(s) {dropped} of '{names[t]}' are constant or collinear with the "
            "others where it is observed; they are dropped from its model.",
            stacklevel=5,
        )
        d.x_names = [x_names[a] for a in d.keep]
    return d


def _observed_clusters(spec: FcsSpec, t: int) -> np.ndarray:
    obs = ~spec.where[:, t] & ~np.isnan(spec.columns[t].values)
    return np.bincount(spec.clus[obs], minlength=len(spec.start) - 1) > 0


def _independent_columns(X: np.ndarray, tol: float = 1e-7) -> np.ndarray:
    """Columns kept by a greedy pass over the Gram matrix X'X: a column is dropped when its
    squared residual on the kept columns is below ``tol`` of its squared norm (so a constant
    column next to the intercept, or a linear combination of kept columns, goes)."""
    if X.shape[0] == 0:
        return np.arange(min(1, X.shape[1]))
    G = X.T @ X
    keep: list[int] = []
    for a in range(X.shape[1]):
        if G[a, a] <= 0.0:
            continue
        if keep:
            Gk = G[np.ix_(keep, keep)]
            g = G[keep, a]
            res = G[a, a] - g @ np.linalg.solve(Gk, g)
        else:
            res = G[a, a]
        if res > tol * G[a, a]:
            keep.append(a)
    return np.asarray(keep, dtype=np.int64)
