"""The univariate imputation methods: one object per (target, chain) that keeps its state
between visits and, at each visit, draws the target's parameters and missing cells.

Two-level methods (``2l.pan``, ``2l.norm``, ``2l.pmm``, ``2l.bin``) share the random-coefficient
sweep of :mod:`pymitml.samplers._ranef`; their parameters are kept between visits, so each visit
is one Gibbs sweep from where the last one stopped (mice restarts pan for 500 iterations, or its
own 2l.norm sampler for 100, at every visit). Single-level methods (``norm``, ``norm.nob``,
``pmm``, ``logreg``) are mice's draws; ``2lonly.*`` apply them to one row per cluster.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._ranef import (
    RcData,
    linear_predictor,
    pmm_match,
    probit_latents,
    rc_params,
    rc_sweep,
    rc_work,
)
from ._design import Design
from ._spec import FcsSpec

__all__ = ["make_method"]

#: donors of predictive mean matching (mice's default)
DONORS = 5
#: ridge of the single-level regressions (mice's default ``ridge``)
RIDGE = 1e-5


def _ols(X: np.ndarray, y: np.ndarray):
    """(beta_hat, V = (X'X + ridge diag)^-1 factor L with V = L L', residual SS, df)."""
    XtX = X.T @ X
    XtX[np.diag_indices_from(XtX)] *= 1.0 + RIDGE
    XtX[np.diag_indices_from(XtX)] += 1e-12
    C = np.linalg.cholesky(XtX)
    beta = np.linalg.solve(XtX, X.T @ y)
    res = y - X @ beta
    Linv = np.linalg.inv(C)  # V = C^-T C^-1
    return beta, Linv.T, float(res @ res), max(len(y) - X.shape[1], 1)


def norm_draw(rng, X, y):
    """mice's ``.norm.draw``: (beta_hat, beta_draw, sigma_draw) of the Bayesian linear model."""
    beta, L, ss, df = _ols(X, y)
    sigma = np.sqrt(ss / rng.chisquare(df))
    return beta, beta + sigma * (L @ rng.standard_normal(len(beta))), sigma


def logreg_draw(rng, X, y, n_iter: int = 25):
    """The logistic regression's estimate and a draw from its normal approximation (mice's
    ``logreg``; a small ridge keeps separated data finite, where mice augments the data)."""
    p = X.shape[1]
    beta = np.zeros(p)
    pen = 1e-4 * np.eye(p)
    pen[0, 0] = 0.0
    for _ in range(n_iter):
        mu = expit(X @ beta)
        W = mu * (1 - mu)
        H = X.T @ (X * W[:, None]) + pen
        step = np.linalg.solve(H, X.T @ (y - mu) - pen @ beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    mu = expit(X @ beta)
    H = X.T @ (X * (mu * (1 - mu))[:, None]) + pen
    C = np.linalg.cholesky(H)
    return beta + np.linalg.solve(C.T, rng.standard_normal(p))


def pmm(rng, yhat_obs, y_obs, yhat_mis, donors=DONORS):
    o = np.argsort(yhat_obs, kind="stable")
    out = np.empty(len(yhat_mis))
    pmm_match(
        rng,
        np.ascontiguousarray(yhat_obs[o]),
        np.ascontiguousarray(y_obs[o]),
        np.ascontiguousarray(yhat_mis),
        donors,
        out,
    )
    return out


def single_level(rng, method: str, Xo, yo, Xm):
    """The imputations of the rows ``Xm`` by a single-level method fitted on (Xo, yo)."""
    if method == "logreg":
        b = logreg_draw(rng, Xo, yo)
        return (rng.random(len(Xm)) < expit(Xm @ b)).astype(np.float64)
    if method == "norm.nob":
        beta, _, ss, df = _ols(Xo, yo)
        return Xm @ beta + np.sqrt(ss / df) * rng.standard_normal(len(Xm))
    beta_hat, beta, sigma = norm_draw(rng, Xo, yo)
    if method == "pmm":
        return pmm(rng, Xo @ beta_hat, yo, Xm @ beta)
    return Xm @ beta + sigma * rng.standard_normal(len(Xm))


class Method:
    """One target's method in one chain: ``visit(cur, rng) -> status`` imputes its cells."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str) -> None:
        self.spec, self.t, self.design, self.method = spec, t, design, method
        col = spec.columns[t]
        self.miss = np.flatnonzero(spec.where[:, t])
        self.obs = np.flatnonzero(~spec.where[:, t] & ~np.isnan(col.values))

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        X, _ = self.design.build(cur, self.spec, False)
        t = self.t
        cur[self.miss, t] = single_level(
            rng, self.method, X[self.obs], cur[self.obs, t], X[self.miss]
        )
        return 0


class TwoLevel(Method):
    """``2l.pan`` / ``2l.norm`` / ``2l.pmm`` / ``2l.bin`` (see the module docstring)."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str, sweeps: int) -> None:
        super().__init__(spec, t, design, method)
        J = len(spec.start) - 1
        p, q = len(design.x_names), len(design.z_names)
        yo = spec.columns[t].values[self.obs]
        s2 = float(np.var(yo)) if len(yo) > 1 and np.var(yo) > 0 else 1.0
        self.mode = {"2l.norm": 1, "2l.bin": 2}.get(method, 0)
        self.par = rc_params(p, q, J, 1.0 if self.mode == 2 else s2)
        self.work = rc_work(p, q, J)
        self.clus_obs = spec.clus[self.obs]
        self.start_obs = np.searchsorted(self.clus_obs, np.arange(J + 1)).astype(np.int64)
        if self.mode == 1:  # mice's 2l.norm: Psi^-1 ~ Wishart(J - q - 1, S^-1), tiny ridge
            self.prior = np.array([-q - 1.0, RIDGE * s2, 1.0, 1.0])
        else:  # pan's prior as mice's 2l.pan sets it: a = 1, Binv = 1, c = q, Dinv = I_q
            self.prior = np.array([float(q), 1.0, 1.0, 1.0])
        self.sweeps = sweeps
        self.latent = np.zeros(len(self.obs))
        self.eta = np.zeros(spec.where.shape[0])

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        spec, t = self.spec, self.t
        X, Z = self.design.build(cur, spec, True)
        Xo, Zo = np.ascontiguousarray(X[self.obs]), np.ascontiguousarray(Z[self.obs])
        yo = cur[self.obs, t]
        if self.mode == 2:
            eta_o = np.empty(len(self.obs))
            linear_predictor(Xo, Zo, self.clus_obs, self.par.beta, self.par.b, eta_o)
            probit_latents(rng, eta_o, yo.astype(np.int64), _LO, _HI, self.latent)
            yo = self.latent
        d = RcData(Xo, Zo, np.ascontiguousarray(yo), self.start_obs, self.prior, self.mode)
        code = rc_sweep(rng, d, self.par, self.work, self.sweeps)
        if code:
            return int(code)
        m = self.miss
        Xm, Zm = np.ascontiguousarray(X[m]), np.ascontiguousarray(Z[m])
        eta_m = np.empty(len(m))
        linear_predictor(Xm, Zm, spec.clus[m], self.par.beta, self.par.b, eta_m)
        if self.method == "2l.bin":
            cur[m, t] = (eta_m + rng.standard_normal(len(m)) > 0.0).astype(np.float64)
        elif self.method == "2l.pmm":
            eta_o = np.empty(len(self.obs))
            linear_predictor(Xo, Zo, self.clus_obs, self.par.beta, self.par.b, eta_o)
            cur[m, t] = pmm(rng, eta_o, cur[self.obs, t], eta_m)
        else:
            sd = np.sqrt(self.par.s2[spec.clus[m]])
            cur[m, t] = eta_m + sd * rng.standard_normal(len(m))
        return 0


_LO = np.array([-np.inf, 0.0])
_HI = np.array([0.0, np.inf])


class LevelTwo(Method):
    """``2lonly.norm`` / ``2lonly.pmm`` / ``2lonly.mean``: one value per cluster, from the
    clusters where the target is observed (predictors aggregated to cluster means)."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str) -> None:
        super().__init__(spec, t, design, method)
        J = len(spec.start) - 1
        vals = spec.columns[t].values
        seen = np.zeros(J, bool)
        seen[spec.clus[self.obs]] = True
        self.value = np.full(J, np.nan)  # observed cluster values (constant within clusters)
        # a level-2 variable is constant within clusters, so the observed value is also the
        # cluster's observed mean (2lonly.mean), exactly
        self.value[spec.clus[self.obs]] = vals[self.obs]
        self.seen = np.flatnonzero(seen)
        self.unseen = np.flatnonzero(~seen)

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        spec, t = self.spec, self.t
        v = self.value.copy()
        if len(self.unseen) and self.method != "2lonly.mean":
            X, _ = self.design.build(cur, spec, False)
            meth = "pmm" if self.method == "2lonly.pmm" else "norm"
            v[self.unseen] = single_level(rng, meth, X[self.seen], v[self.seen], X[self.unseen])
        cur[self.miss, t] = v[spec.clus[self.miss]]
        return 0


def make_method(spec: FcsSpec, t: int, design: Design, method: str, sweeps: int) -> Method:
    """The method object of target ``t`` for one chain."""
    if method.startswith("2lonly."):
        return LevelTwo(spec, t, design, method)
    if method.startswith("2l."):
        return TwoLevel(spec, t, design, method, sweeps)
    return Method(spec, t, design, method)
