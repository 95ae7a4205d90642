"""``ml.polr`` / ``ml.polyreg``: categorical variables with K > 2 categories and random terms
for several grouping factors, imputed at the variable's own level.

``ml.polr`` (ordered categories) is a cumulative probit mixed model over the target's units:

    y*_u = x_u' beta + sum_t z_tu' b_{t, g_t(u)} + e_u,   e_u ~ N(0, 1),
    y_u = k  <=>  gam_k < y*_u <= gam_{k+1},   gam_0 = -inf < gam_1 = 0 < ... < gam_K = inf

(Albert & Chib 1993 data augmentation). One sweep: the thresholds by random-walk
Metropolis-Hastings with the latents integrated out, one threshold at a time (Cowles 1996),
then every observed unit's latent from its normal truncated to its category's interval (both
the shared steps of :mod:`pymitml.samplers._latent`), then the linear mixed model of
:class:`~pymitml.samplers.fcs._mlmodel.MlModel` on the latents (residual variance 1). A missing
unit's category is the interval its draw of y* falls in. The proposal SDs are tuned towards an
acceptance of about 0.44 during the first :data:`ADAPT` sweeps of a chain, then held.

``ml.polyreg`` (unordered categories) is the baseline-category approximation of a multinomial
model (Begg & Gray 1984): for every category k other than the reference r (the most frequent
observed one), a binary probit mixed model of "k rather than r" on the units in k or r, with
its own coefficients, random effects and variances at every level (``ml.bin``'s model on those
units). A missing unit's category is drawn with probabilities proportional to the odds
Phi(eta_k) / (1 - Phi(eta_k)) of each model at its linear predictor (1 for r). With logistic
links this is the multinomial logit's pairwise decomposition; with probit links it is an
approximation, whose pairwise log-odds are monotone in each linear predictor, so a category in
the middle of a predictor's range is modelled as well as one at an end (a sequence of
"k versus all later categories" steps is not: it fitted such data badly in the simulation).
"""

from __future__ import annotations

import numpy as np
from scipy.special import log_ndtr, ndtri

from .._latent import CatSpec, Thresholds, latent_step, latent_work
from ._mlmodel import MlDesign, MlMethod, MlModel

__all__ = ["ADAPT", "MlPolr", "MlPolyreg", "OrdinalLatents"]

#: sweeps of a chain during which the threshold proposals are tuned (in batches of 10)
ADAPT = 200
#: sweeps at the first visit (the thresholds start from the marginal shares of the categories)
WARMUP = 50


class OrdinalLatents:
    """Thresholds and latent normals of one ordinal target on its observed units (codes
    0..k-1 of the categories present): :meth:`draw` is one thresholds-then-latents step
    given the linear predictor."""

    def __init__(self, y: np.ndarray, k: int) -> None:
        n = len(y)
        share = np.bincount(y, minlength=k) / max(n, 1)
        cum = np.clip(np.cumsum(share)[:-1], 1e-6, 1.0 - 1e-6)
        gam = np.empty(k + 1)
        gam[0], gam[k] = -np.inf, np.inf
        gam[1:k] = ndtri(cum) - ndtri(cum[0])
        for j in range(2, k):  # an empty category would tie two thresholds
            gam[j] = max(gam[j], gam[j - 1] + 1e-3)
        thr = Thresholds(gam[None, :].copy(), np.full((1, k + 1), 0.1), np.zeros((1, k + 1)))
        self.thr = thr
        self.cat = CatSpec(
            np.zeros(1, np.int64),
            np.ones(1, np.int64),
            np.asarray(y, np.int64)[None, :].copy(),
            np.array([k], np.int64),
            np.ones(1, np.int64),
            np.arange(n, dtype=np.int64)[None, :].copy() if n else np.zeros((1, 1), np.int64),
            np.array([n], np.int64),
            np.ones((1, 1), bool),
            False,
            None,
            -np.inf,
            np.inf,
            thr,
        )
        self.k, self.n_sweeps = k, 0
        self.Q = np.ones((1, 1, 1))
        self.Ci = np.zeros(max(n, 1), np.int64)
        self.work = latent_work(n)
        self.Y = np.zeros((1, n))

    @property
    def gam(self) -> np.ndarray:
        """(k + 1,) current thresholds (-inf, 0, ..., inf)."""
        return self.thr.gam[0]

    def draw(self, rng: np.random.Generator, eta: np.ndarray) -> np.ndarray:
        """Thresholds, then latents, given the linear predictor of the observed units."""
        n_thr = self.k - 2
        z, u = rng.standard_normal(n_thr), rng.random(n_thr)
        mu = np.ascontiguousarray(eta[None, :])
        latent_step(rng, self.Y, mu, self.Q, self.Ci, self.cat, z, u, self.work)
        self.n_sweeps += 1
        if n_thr and self.n_sweeps <= ADAPT and self.n_sweeps % 10 == 0:
            thr = self.thr
            rate = thr.acc[0, 2 : self.k] / 10.0
            thr.sd[0, 2 : self.k] *= np.exp(rate - 0.44)
            thr.acc[:, :] = 0.0
        return self.Y[0]

    def category(self, ystar: np.ndarray) -> np.ndarray:
        """The category (0..k-1) of latent values: the interval between thresholds."""
        return np.searchsorted(self.gam[1 : self.k], ystar, side="left").astype(np.int64)


def _present(values: np.ndarray, K: int) -> tuple[np.ndarray, np.ndarray]:
    """(categories present, compact code 0..k-1 of each value)."""
    codes = values.astype(np.int64)
    cats = np.flatnonzero(np.bincount(codes, minlength=K))
    compact = np.zeros(K, np.int64)
    compact[cats] = np.arange(len(cats))
    return cats, compact[codes]


class MlPolr(MlMethod):
    """``ml.polr`` of one target in one chain (see the module docstring)."""

    def __init__(self, spec, t: int, design: MlDesign, method: str, sweeps: int) -> None:
        super().__init__(spec, t, design, "ml.bin", sweeps)
        self.method = method
        K = spec.columns[t].n_categories
        self.cats, y = _present(self.value[self.obs_units], K)
        self.y = y
        k = len(self.cats)
        self.ordinal = OrdinalLatents(y, k) if k > 2 else None
        self.model.warmup = WARMUP

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        d, mod, o, m = self.design, self.model, self.obs_units, self.mis_units
        k = len(self.cats)
        v = self.value.copy()
        if k == 1:
            v[m] = float(self.cats[0])
        else:
            X, Zs = d.build(cur)
            code = mod.update(rng, X[o], [Z[o] for Z in Zs], self.y, self.ordinal)
            if code:
                return code
            if len(m):
                ystar = mod.predict(X[m], [Z[m] for Z in Zs], self.mis_groups)
                ystar = ystar + rng.standard_normal(len(m))
                if self.ordinal is None:
                    got = (ystar > 0.0).astype(np.int64)
                else:
                    got = self.ordinal.category(ystar)
                v[m] = self.cats[got].astype(np.float64)
        cur[self.miss_rows, self.t] = v[d.codes[self.miss_rows]]
        return 0


class MlPolyreg(MlMethod):
    """``ml.polyreg`` of one target in one chain (see the module docstring)."""

    def __init__(self, spec, t: int, design: MlDesign, method: str, sweeps: int) -> None:
        super().__init__(spec, t, design, "ml.bin", sweeps)
        self.method = method
        K = spec.columns[t].n_categories
        self.cats, y = _present(self.value[self.obs_units], K)
        self.y = y
        k = len(self.cats)
        self.ref = int(np.argmax(np.bincount(y, minlength=k))) if k else 0
        p = len(design.x_names)
        q = [int(tm.intercept) + len(tm.slopes) for tm in design.terms]
        self.steps = []
        for c in range(k):
            if c == self.ref:
                continue
            sel = np.flatnonzero((y == c) | (y == self.ref))
            groups = [g[self.obs_units[sel]] for g in design.term_groups]
            st = MlModel(len(sel), groups, list(design.term_J), p, q, 2, 1.0, sweeps)
            self.steps.append((c, sel, (y[sel] == c).astype(np.float64), st))

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        d, o, m = self.design, self.obs_units, self.mis_units
        v = self.value.copy()
        X, Zs = d.build(cur)
        k = len(self.cats)
        odds = np.ones((len(m), k))  # the reference category's odds against itself: 1
        for c, sel, yc, st in self.steps:
            rows = o[sel]
            code = st.update(rng, X[rows], [Z[rows] for Z in Zs], yc)
            if code:
                return code
            if len(m):
                eta = st.predict(X[m], [Z[m] for Z in Zs], self.mis_groups)
                odds[:, c] = _probit_odds(eta)
        if len(m):
            P = odds / odds.sum(axis=1, keepdims=True)
            u = rng.random(len(m))
            got = np.minimum((u[:, None] > np.cumsum(P, axis=1)).sum(axis=1), k - 1)
            v[m] = self.cats[got].astype(np.float64)
        cur[self.miss_rows, self.t] = v[d.codes[self.miss_rows]]
        return 0


def _probit_odds(eta: np.ndarray) -> np.ndarray:
    """Phi(eta) / (1 - Phi(eta)), computed from the log-cdf in both tails."""
    return np.exp(log_ndtr(eta) - log_ndtr(-eta))
