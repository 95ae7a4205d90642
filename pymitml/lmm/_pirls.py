"""Penalised iteratively reweighted least squares (PIRLS) and the Laplace deviance of a GLMM.

Model (Bates et al. 2015; lme4's glmer): eta = o + X beta + Z Lambda_theta u, u ~ N(0, I),
y_i | u ~ family(mu_i = g^{-1}(eta_i)) with prior weights a_i. For given theta (and beta)
PIRLS finds the conditional mode u~ of u by repeatedly solving the penalised weighted
least-squares problem

    min_{u (, beta)}  | W^{1/2} (z - X beta - Z Lambda u) |^2 + |u|^2,

with the working weights W and working response z of the current linear predictor, halving the
step whenever the penalised deviance  sum_i d(y_i, mu_i) + |u|^2  increases. At the mode the
Laplace approximation of -2 log-likelihood (up to the saturated model's constant) is

    sum_i d(y_i, mu_i) + |u~|^2 + log |L|^2,   L L' = Lambda' Z' W Z Lambda + I.

The weighted least-squares problem is a :class:`PenalisedSystem`: "set the weights, solve at
theta". :class:`OneFactorSystem` is that system for one grouping factor, built on lmer's kernels
(:mod:`._kernels`) applied to sqrt(W)-scaled X and Z: a weighted PLS is an unweighted PLS of
the scaled design. The spherical modes follow from the normal equations of the problem,
u = Lambda' Z' W (z - X beta - Z Lambda u), which holds at its exact solution for any theta
(also on the boundary, where Lambda is singular).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from . import _kernels
from ._family import Family, glm_rows

__all__ = ["GlmmData", "OneFactorSystem", "PenalisedSystem", "PirlsResult", "pirls"]

#: PIRLS stops when the penalised deviance changes by less than this (relative) ...
PIRLS_TOL = 1e-13
#: ... and the modes move by less than this
PIRLS_STEP_TOL = 1e-10
PIRLS_MAX_ITER = 60
MAX_HALVINGS = 30


@dataclass(frozen=True, eq=False)
class Solution:
    """One weighted PLS solution: log|L|^2, beta (p,) and the modes u and b = T u (J, q)."""

    logdet: float
    beta: np.ndarray
    u: np.ndarray
    b: np.ndarray


class PenalisedSystem(Protocol):
    """The penalised weighted least-squares system of a random-effects structure.

    ``set_weights(sqrtw)`` stores sqrt(W) (n,); ``solve(theta, z, fixed)`` solves the problem
    for working response ``z`` (n,) at ``theta``: with ``fixed=True`` for u only (z must then
    exclude X beta), else for (beta, u) jointly; ``linear_predictor(beta, b)`` gives
    X beta + Z b; ``lx()`` the lower Cholesky factor of X'WX - R_ZX'R_ZX of the last joint
    solve (lme4's R_X', for the RX-based covariance of beta).
    """

    n_modes: tuple[int, int]

    def set_weights(self, sqrtw: np.ndarray) -> None: ...

    def solve(self, theta: np.ndarray, z: np.ndarray, fixed: bool) -> Solution | None: ...

    def linear_predictor(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray: ...

    def modes_from_u(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray: ...

    def lx(self) -> np.ndarray: ...


def lower_tri(theta: np.ndarray, q: int) -> np.ndarray:
    """T (q, q) from theta: lower triangle, column-major (lme4's order)."""
    T = np.zeros((q, q))
    k = 0
    for c in range(q):
        for r in range(c, q):
            T[r, c] = theta[k]
            k += 1
    return T


class OneFactorSystem:
    """:class:`PenalisedSystem` of one grouping factor with q random effects per cluster."""

    def __init__(self, X: np.ndarray, Z: np.ndarray, codes: np.ndarray, n_clusters: int):
        self.X, self.Z, self.codes = X, Z, codes
        n, p = X.shape
        J, q = n_clusters, Z.shape[1]
        self.n_modes = (J, q)
        self.sqrtw = np.ones(n)
        self.Xw = np.empty((n, p))
        self.Zw = np.empty((n, q))
        self._X0 = np.zeros((n, 0))
        self._bufs = {True: self._buffers(J, q, 0), False: self._buffers(J, q, p)}
        self._lx = np.zeros((p, p))

    @staticmethod
    def _buffers(J: int, q: int, p: int) -> dict[str, np.ndarray]:
        return {
            "ZtZ": np.zeros((J, q, q)),
            "ZtX": np.zeros((J, q, p)),
            "Zty": np.zeros((J, q)),
            "XtX": np.zeros((p, p)),
            "Xty": np.zeros(p),
            "P": np.empty((J, q, q)),
            "RZX": np.empty((J, q, p)),
            "cu": np.empty((J, q)),
            "LX": np.empty((p, p)),
            "beta": np.empty(p),
        }

    def set_weights(self, sqrtw: np.ndarray) -> None:
        self.sqrtw = sqrtw
        np.multiply(self.X, sqrtw[:, None], out=self.Xw)
        np.multiply(self.Z, sqrtw[:, None], out=self.Zw)

    def solve(self, theta: np.ndarray, z: np.ndarray, fixed: bool) -> Solution | None:
        J, q = self.n_modes
        T = lower_tri(theta, q)
        buf = self._bufs[fixed]
        for key in ("ZtZ", "ZtX", "Zty", "XtX", "Xty"):
            buf[key].fill(0.0)
        X = self._X0 if fixed else self.Xw
        zw = np.ascontiguousarray(z * self.sqrtw)
        yty = _kernels.cross_products(
            X, self.Zw, zw, self.codes, buf["ZtZ"], buf["ZtX"], buf["Zty"], buf["XtX"], buf["Xty"]
        )
        logdet, _, _ = _kernels.pls(
            T, buf["ZtZ"], buf["ZtX"], buf["Zty"], buf["XtX"], buf["Xty"], yty,
            buf["P"], buf["RZX"], buf["cu"], buf["LX"], buf["beta"],
        )  # fmt: skip
        if not np.isfinite(logdet):
            return None
        beta = buf["beta"].copy()
        b = np.empty((J, q))
        _kernels.random_effects(buf["P"], buf["RZX"], buf["cu"], beta, b)
        if not fixed:
            self._lx = buf["LX"].copy()
        # u = T' Z'W (z - X beta - Z b), cluster by cluster
        resid = z - self._fit(X if fixed else self.X, beta, b)
        zr = self.Z * (resid * self.sqrtw * self.sqrtw)[:, None]
        ztr = np.empty((J, q))
        for a in range(q):
            ztr[:, a] = np.bincount(self.codes, weights=zr[:, a], minlength=J)
        return Solution(float(logdet), beta, ztr @ T, b)

    def _fit(self, X: np.ndarray, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape[0])
        _kernels.linear_predictor(X, beta, self.Z, self.codes, np.ascontiguousarray(b), out)
        return out

    def linear_predictor(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        return self._fit(self.X, beta, b)

    def modes_from_u(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        return u @ lower_tri(theta, self.n_modes[1]).T

    def lx(self) -> np.ndarray:
        return self._lx


@dataclass(frozen=True, eq=False)
class GlmmData:
    """Response side of a GLMM: y (n,), prior weights (n,), offset (n,) and the family."""

    y: np.ndarray
    weights: np.ndarray
    offset: np.ndarray
    family: Family


@dataclass(frozen=True, eq=False)
class PirlsResult:
    """State at the conditional mode: u, b (J, q), beta, eta, mu, sqrt(W), deviance residuals,
    log|L|^2 and the Laplace deviance ``sum(devres) + |u|^2 + log|L|^2``."""

    u: np.ndarray
    b: np.ndarray
    beta: np.ndarray
    eta: np.ndarray
    mu: np.ndarray
    sqrtw: np.ndarray
    devres: np.ndarray
    logdet: float
    converged: bool

    @property
    def laplace(self) -> float:
        return float(self.devres.sum() + np.sum(self.u * self.u) + self.logdet)


class _Rows:
    """Per-row buffers and the penalised deviance at a linear predictor."""

    def __init__(self, data: GlmmData):
        n = data.y.shape[0]
        self.data = data
        self.mu, self.sqrtw = np.empty(n), np.empty(n)
        self.wres, self.devres = np.empty(n), np.empty(n)

    def update(self, eta: np.ndarray) -> float:
        d = self.data
        f = d.family
        return float(
            glm_rows(
                f.code, f.link_code, eta, d.y, d.weights,
                self.mu, self.sqrtw, self.wres, self.devres,
            )
        )  # fmt: skip


def pirls(
    system: PenalisedSystem,
    data: GlmmData,
    theta: np.ndarray,
    beta: np.ndarray,
    u0: np.ndarray | None = None,
    fixed: bool = True,
) -> PirlsResult | None:
    """Conditional modes at ``theta`` (and ``beta`` if ``fixed``, else beta is updated too).

    Returns None when a factorisation fails (theta infeasible).
    """
    rows = _Rows(data)
    u = np.zeros(system.n_modes) if u0 is None else np.array(u0, dtype=float)
    beta = np.array(beta, dtype=float)

    def eta_of(beta_, u_):
        return data.offset + system.linear_predictor(beta_, system.modes_from_u(theta, u_))

    eta = eta_of(beta, u)
    obj = rows.update(eta) + float(np.sum(u * u))
    logdet, converged = np.nan, False
    for _ in range(PIRLS_MAX_ITER):
        system.set_weights(rows.sqrtw.copy())
        xb = system.linear_predictor(beta, np.zeros(system.n_modes))
        z = eta - data.offset + rows.wres - (xb if fixed else 0.0)
        sol = system.solve(theta, z, fixed)
        if sol is None:
            return None
        logdet = sol.logdet
        du = sol.u - u
        dbeta = np.zeros_like(beta) if fixed else sol.beta - beta
        step = 1.0
        for _ in range(MAX_HALVINGS):
            u_try, beta_try = u + step * du, beta + step * dbeta
            eta_try = eta_of(beta_try, u_try)
            obj_try = rows.update(eta_try) + float(np.sum(u_try * u_try))
            if obj_try <= obj + 1e-14 * abs(obj):
                break
            step *= 0.5
        else:
            rows.update(eta)
            break
        moved = step * max(
            float(np.max(np.abs(du), initial=0.0)), float(np.max(np.abs(dbeta), initial=0.0))
        )
        change = obj - obj_try
        u, beta, eta, obj = u_try, beta_try, eta_try, obj_try
        if change <= PIRLS_TOL * (abs(obj) + 0.1) and moved < PIRLS_STEP_TOL:
            converged = True
            break
    # log|L|^2 at the weights of the mode
    system.set_weights(rows.sqrtw.copy())
    sol = system.solve(theta, eta - data.offset + rows.wres, True)
    if sol is None:
        return None
    logdet = sol.logdet
    return PirlsResult(
        u=u,
        b=system.modes_from_u(theta, u),
        beta=beta,
        eta=eta,
        mu=rows.mu.copy(),
        sqrtw=rows.sqrtw.copy(),
        devres=rows.devres.copy(),
        logdet=float(logdet),
        converged=converged,
    )
