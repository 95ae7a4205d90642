"""Data generators of the validity study: the two-level designs the methods literature uses.

Every design draws clusters ``g = 1..J`` of ``n`` rows, a complete auxiliary ``v`` correlated with
the outcome (so that MAR missingness depending on ``v`` biases listwise deletion while every
imputation model that includes ``v`` is valid), holes by a logistic model, and knows its truth:
the fixed effects and the variance components of its analysis model, named as
:func:`pymitml.pool_estimates` and :func:`pymitml.pool_variance_components` name them.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Design", "design_grid", "DESIGNS"]


@dataclass(frozen=True)
class Design:
    """One cell of the study: a data generator, its analysis model and its truth.

    Attributes
    ----------
    name : unique label of the cell (used for seeds and result folders).
    kind : the generator (a key of :data:`DESIGNS`).
    J, n, icc : clusters, rows per cluster, intraclass correlation of the outcome.
    rate : target share of missing values per incomplete variable.
    analysis : lme4 formula fitted to every completed data set.
    focal : the model-based imputation's focal model (lme4 grammar).
    truth : parameter -> true value (fixed effects by coefficient name, variance components by
        the row names of ``pool_variance_components``).
    level1, level2 : incomplete level-1 / level-2 variables.
    categorical : incomplete categorical variable -> ``"binary"`` | ``"ordinal"``.
    aux : complete variables every imputation model uses (predictors and the auxiliary).
    slopes : incomplete variables that carry a random slope in the analysis model.
    products : derived column -> the two variables it is the product of (recomputed in every
        completed data set: impute-then-transform for methods that do not model it).
    selection : MNAR selection models for :func:`pymitml.model_impute` (variable -> formula).
    """

    name: str
    kind: str
    J: int
    n: int
    icc: float
    rate: float
    analysis: str
    focal: str
    truth: dict[str, float]
    level1: tuple[str, ...]
    level2: tuple[str, ...] = ()
    categorical: dict[str, str] = field(default_factory=dict)
    aux: tuple[str, ...] = ()
    slopes: tuple[str, ...] = ()
    products: dict[str, tuple[str, str]] = field(default_factory=dict)
    selection: dict[str, str] = field(default_factory=dict)

    @property
    def incomplete(self) -> tuple[str, ...]:
        return self.level1 + self.level2

    def seed(self, base: int, rep: int) -> int:
        """The replication's seed: a function of the study seed, the cell's name and ``rep``."""
        ss = np.random.SeedSequence([int(base), zlib.crc32(self.name.encode()), int(rep)])
        return int(ss.generate_state(1, dtype=np.uint32)[0])

    def generate(self, seed: int, complete: bool = False) -> pd.DataFrame:
        """One data set of this design, deterministic in ``seed``: with its holes, or
        (``complete=True``) the same values before deletion."""
        return _GENERATORS[self.kind](self, np.random.default_rng(seed), complete)

    def derive(self, d: pd.DataFrame) -> pd.DataFrame:
        """The analysis data: derived products recomputed (NaN where a factor is missing) and
        ordinal factors as unordered categories (treatment contrasts, as the truth is given)."""
        if not self.products and not self.categorical:
            return d
        d = d.copy()
        for col, (a, b) in self.products.items():
            d[col] = d[a].astype(float) * d[b].astype(float)
        for col, kind in self.categorical.items():
            if kind == "ordinal":
                d[col] = d[col].cat.as_unordered()
        return d


def _logit_holes(rng: np.random.Generator, score: np.ndarray, rate: float) -> np.ndarray:
    """Holes with P(missing) = expit(a + score), a set so that the share is about ``rate``."""
    s = (score - score.mean()) / (score.std() + 1e-12)
    a = np.log(rate / (1 - rate)) * 1.15  # a standardised score of slope 1 flattens the rate
    return rng.random(s.size) < 1.0 / (1.0 + np.exp(-(a + s)))


def _punch(x: np.ndarray, mask: np.ndarray, complete: bool) -> None:
    """Make the holes (the random draws are made either way, so the complete data of a seed
    are its incomplete data's values before deletion)."""
    if not complete:
        x[mask] = np.nan


def _clusters(d: Design, rng: np.random.Generator) -> tuple[np.ndarray, int]:
    return np.repeat(np.arange(1, d.J + 1), d.n), d.J * d.n


def _aux(rng: np.random.Generator, y: np.ndarray) -> np.ndarray:
    """A complete auxiliary with correlation about 0.6 with y (MAR on v is MAR given v)."""
    ys = (y - y.mean()) / y.std()
    return 0.6 * ys + 0.8 * rng.standard_normal(y.size)


def _frame(g: np.ndarray, **cols: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame({"g": g, **cols})


def _ri(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """Random intercept: y = 1 + 0.5 x + 0.3 z + u_j + e, x with the same ICC; y and x MAR on v
    (both more often missing where v is high, so complete cases under-represent high y)."""
    g, N = _clusters(d, rng)
    x = np.sqrt(d.icc) * rng.standard_normal(d.J)[g - 1] + np.sqrt(1 - d.icc) * rng.standard_normal(
        N
    )
    z = rng.standard_normal(N)
    u = np.sqrt(d.icc) * rng.standard_normal(d.J)[g - 1]
    y = 1.0 + 0.5 * x + 0.3 * z + u + np.sqrt(1 - d.icc) * rng.standard_normal(N)
    v = _aux(rng, y)
    _punch(y, _logit_holes(rng, v, d.rate), complete)
    _punch(x, _logit_holes(rng, v, d.rate), complete)
    return _frame(g, y=y, x=x, z=z, v=v)


def _l2(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """Incomplete level-2 predictor w (MAR on the cluster mean of v); y MAR on v."""
    g, N = _clusters(d, rng)
    x = rng.standard_normal(N)
    w = rng.standard_normal(d.J)
    u = np.sqrt(d.icc) * rng.standard_normal(d.J)
    y = 1.0 + 0.5 * x + 0.5 * w[g - 1] + u[g - 1] + np.sqrt(1 - d.icc) * rng.standard_normal(N)
    v = _aux(rng, y)
    vbar = np.bincount(g - 1, v) / d.n
    _punch(w, _logit_holes(rng, vbar, d.rate), complete)
    _punch(y, _logit_holes(rng, v, d.rate), complete)
    return _frame(g, y=y, x=x, w=w[g - 1], v=v)


def _rs(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """Random slope of the incomplete predictor x: y = 1 + 0.5 x + u0 + u1 x + e; x MAR on v."""
    g, N = _clusters(d, rng)
    x = rng.standard_normal(N)
    u0 = np.sqrt(d.icc) * rng.standard_normal(d.J)
    u1 = np.sqrt(0.1) * rng.standard_normal(d.J)
    e = np.sqrt(1 - d.icc) * rng.standard_normal(N)
    y = 1.0 + 0.5 * x + u0[g - 1] + u1[g - 1] * x + e
    v = _aux(rng, y)
    _punch(x, _logit_holes(rng, v, d.rate), complete)
    return _frame(g, y=y, x=x, v=v)


def _int(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """Interaction of incomplete predictors: y = 1 + 0.5 x1 + 0.5 x2 + 0.3 x1 x2 + u + e."""
    g, N = _clusters(d, rng)
    x1 = rng.standard_normal(N)
    x2 = 0.3 * x1 + np.sqrt(1 - 0.09) * rng.standard_normal(N)
    u = np.sqrt(d.icc) * rng.standard_normal(d.J)
    e = np.sqrt(1 - d.icc) * rng.standard_normal(N)
    y = 1.0 + 0.5 * x1 + 0.5 * x2 + 0.3 * x1 * x2 + u[g - 1] + e
    v = _aux(rng, y)
    _punch(x1, _logit_holes(rng, v, d.rate), complete)
    _punch(x2, _logit_holes(rng, -v, d.rate), complete)
    return _frame(g, y=y, x1=x1, x2=x2, x1x2=x1 * x2, v=v)


def _cat(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """Binary b and ordinal o (3 levels) predictors from clustered latent normals, both MAR."""
    g, N = _clusters(d, rng)
    lat_b = np.sqrt(0.2) * rng.standard_normal(d.J)[g - 1] + np.sqrt(0.8) * rng.standard_normal(N)
    lat_o = 0.3 * lat_b + np.sqrt(0.2) * rng.standard_normal(d.J)[g - 1]
    lat_o = lat_o + np.sqrt(0.71) * rng.standard_normal(N)
    b = (lat_b > 0).astype(float)
    o = np.digitize(lat_o, [-0.5, 0.5]).astype(float)
    u = np.sqrt(d.icc) * rng.standard_normal(d.J)
    y = 1.0 + 0.5 * b + 0.3 * (o == 1) + 0.6 * (o == 2) + u[g - 1]
    y = y + np.sqrt(1 - d.icc) * rng.standard_normal(N)
    v = _aux(rng, y)
    _punch(b, _logit_holes(rng, v, d.rate), complete)
    _punch(o, _logit_holes(rng, -v, d.rate), complete)
    out = _frame(g, y=y, b=b, o=o, v=v)
    out["b"] = pd.Categorical(out["b"].map({0.0: "no", 1.0: "yes"}), categories=["no", "yes"])
    out["o"] = pd.Categorical(
        out["o"].map({0.0: "low", 1.0: "mid", 2.0: "high"}),
        categories=["low", "mid", "high"],
        ordered=True,
    )
    return out


def _xlevel(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """Cross-level interaction: y = 1 + 0.5 x + 0.5 w + 0.3 x w + u0 + u1 x + e; x MAR on v."""
    g, N = _clusters(d, rng)
    x = rng.standard_normal(N)
    w = rng.standard_normal(d.J)
    u0 = np.sqrt(d.icc) * rng.standard_normal(d.J)
    u1 = np.sqrt(0.1) * rng.standard_normal(d.J)
    wg = w[g - 1]
    y = 1.0 + 0.5 * x + 0.5 * wg + 0.3 * x * wg + u0[g - 1] + u1[g - 1] * x
    y = y + np.sqrt(1 - d.icc) * rng.standard_normal(N)
    v = _aux(rng, y)
    _punch(x, _logit_holes(rng, v, d.rate), complete)
    return _frame(g, y=y, x=x, w=wg, xw=x * wg, v=v)


def _mnar(d: Design, rng: np.random.Generator, complete: bool) -> pd.DataFrame:
    """MNAR outcome: y = 1 + 0.5 x + u + e, P(y missing) rising with y itself; x complete."""
    g, N = _clusters(d, rng)
    x = rng.standard_normal(N)
    u = np.sqrt(d.icc) * rng.standard_normal(d.J)
    y = 1.0 + 0.5 * x + u[g - 1] + np.sqrt(1 - d.icc) * rng.standard_normal(N)
    v = _aux(rng, y)
    _punch(y, _logit_holes(rng, y, d.rate), complete)
    return _frame(g, y=y, x=x, v=v)


_GENERATORS: dict[str, Callable[[Design, np.random.Generator, bool], pd.DataFrame]] = {
    "ri": _ri,
    "l2": _l2,
    "rs": _rs,
    "int": _int,
    "cat": _cat,
    "xlevel": _xlevel,
    "mnar": _mnar,
}


def _vc(icc: float, slope: float | None = None) -> dict[str, float]:
    out = {"Intercept~~Intercept|g": icc, "Residual~~Residual": 1 - icc}
    if slope is not None:
        out["x~~x|g"] = slope
    return out


def _make(kind: str, J: int, n: int, icc: float, rate: float) -> Design:
    name = f"{kind}_J{J}_n{n}_icc{icc:g}"
    common: dict[str, Any] = {"name": name, "kind": kind, "J": J, "n": n, "icc": icc, "rate": rate}
    if kind == "ri":
        return Design(
            **common,
            analysis="y ~ 1 + x + z + (1|g)",
            focal="y ~ 1 + x + z + (1|g)",
            truth={"(Intercept)": 1.0, "x": 0.5, "z": 0.3, **_vc(icc)},
            level1=("y", "x"),
            aux=("z", "v"),
        )
    if kind == "l2":
        return Design(
            **common,
            analysis="y ~ 1 + x + w + (1|g)",
            focal="y ~ 1 + x + w + (1|g)",
            truth={"(Intercept)": 1.0, "x": 0.5, "w": 0.5, **_vc(icc)},
            level1=("y",),
            level2=("w",),
            aux=("x", "v"),
        )
    if kind == "rs":
        return Design(
            **common,
            analysis="y ~ 1 + x + (1 + x|g)",
            focal="y ~ 1 + x + (1 + x|g)",
            truth={"(Intercept)": 1.0, "x": 0.5, **_vc(icc, 0.1)},
            level1=("x",),
            aux=("y", "v"),
            slopes=("x",),
        )
    if kind == "int":
        return Design(
            **common,
            analysis="y ~ 1 + x1 + x2 + x1x2 + (1|g)",
            focal="y ~ 1 + x1 + x2 + x1:x2 + (1|g)",
            truth={"(Intercept)": 1.0, "x1": 0.5, "x2": 0.5, "x1x2": 0.3, **_vc(icc)},
            level1=("x1", "x2"),
            aux=("y", "v"),
            products={"x1x2": ("x1", "x2")},
        )
    if kind == "cat":
        return Design(
            **common,
            analysis="y ~ 1 + b + o + (1|g)",
            focal="y ~ 1 + b + o + (1|g)",
            truth={"(Intercept)": 1.0, "byes": 0.5, "omid": 0.3, "ohigh": 0.6, **_vc(icc)},
            level1=("b", "o"),
            categorical={"b": "binary", "o": "ordinal"},
            aux=("y", "v"),
        )
    if kind == "xlevel":
        return Design(
            **common,
            analysis="y ~ 1 + x + w + xw + (1 + x|g)",
            focal="y ~ 1 + x + w + x:w + (1 + x|g)",
            truth={"(Intercept)": 1.0, "x": 0.5, "w": 0.5, "xw": 0.3, **_vc(icc, 0.1)},
            level1=("x",),
            aux=("y", "w", "v"),
            slopes=("x",),
            products={"xw": ("x", "w")},
        )
    if kind == "mnar":
        return Design(
            **common,
            analysis="y ~ 1 + x + (1|g)",
            focal="y ~ 1 + x + (1|g)",
            truth={"(Intercept)": 1.0, "x": 0.5, **_vc(icc)},
            level1=("y",),
            aux=("x", "v"),
            selection={"y": "~ y + x"},
        )
    raise ValueError(f"unknown design kind {kind!r}; choose one of {sorted(_GENERATORS)}.")


def design_grid(
    kinds: tuple[str, ...] = ("ri",),
    J: tuple[int, ...] = (50,),
    n: tuple[int, ...] = (5,),
    icc: tuple[float, ...] = (0.1,),
    rate: float = 0.25,
) -> list[Design]:
    """Every combination of the given design kinds, cluster counts, sizes and ICCs."""
    return [_make(k, j, s, c, rate) for k in kinds for j in J for s in n for c in icc]


#: the published study's cells: the random-intercept design over J x n x ICC, the others at
#: J = 50, n = 20, ICC = 0.3 (the literature's middle cell)
DESIGNS: list[Design] = design_grid(("ri",), (50, 150), (5, 20), (0.1, 0.3)) + design_grid(
    ("l2", "rs", "int", "cat", "xlevel", "mnar"), (50,), (20,), (0.3,)
)
