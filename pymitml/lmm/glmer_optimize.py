"""Optimisation of a glmer deviance as lme4 does it, with a polishing Newton stage.

Stage 1 (lme4's nAGQ = 0 step): theta only; beta and u are the joint conditional modes of the
penalised deviance (PIRLS over both), criterion  sum d + |u|^2 + log|L|^2.
With nAGQ = 0 the stage-1 optimum is the fit. Stage 2: (theta, beta) jointly, u from PIRLS at fixed beta, criterion the Laplace (nAGQ = 1) or
adaptive Gauss-Hermite (nAGQ > 1) deviance.

Both stages use scipy's COBYQA (Powell's derivative-free trust-region method for bound
constraints, the successor of BOBYQA, which lme4 uses); stage 2 ends with projected Newton
steps on finite-difference derivatives (lme4's ``deriv12`` scheme) so that the optimum is at
least as good as lme4's. The same finite differences at the optimum give lme4's Hessian, from
which ``vcov`` and the convergence check (max |H^{-1} g| < 0.002, lme4's ``checkConv``) follow.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._design import LmerDesign
from ._multi_design import MultiDesign
from ._pirls import GlmmData, OneFactorSystem, PirlsResult, lower_tri, pirls
from ._pirls_agq import agq_deviance
from .glmer_design import GlmerDesign

__all__ = ["GlmerObjective", "OptimumResult", "deriv12", "optimize_glmer"]

GRAD_TOL = 2e-3  # lme4's checkConv tolerance on the scaled gradient
BOUNDARY_TOL = 1e-5  # lme4's check.boundary tolerance
HESSIAN_DELTA = 1e-4  # lme4's deriv12 step


def _tri_diag(q: int) -> np.ndarray:
    """True where theta is a diagonal element of T (lme4's column-major lower triangle)."""
    return np.array([r == c for c in range(q) for r in range(c, q)])


class GlmerObjective:
    """The stage-1 and stage-2 deviances of one model, with warm-started PIRLS."""

    def __init__(self, design: GlmerDesign, nAGQ: int):
        d = design.lmer
        self.design, self.nAGQ = design, int(nAGQ)
        self.data = GlmmData(design.y, design.weights, design.offset, design.family)
        self.p = d.p
        self.system: Any
        if isinstance(d, MultiDesign):  # several terms: lmer's blocked factorisation
            from ._pirls_blocked import BlockedSystem

            self.qs = [t.q for t in d.terms]
            self.q = 0
            self.diag = np.concatenate([_tri_diag(q) for q in self.qs])
            self.system = BlockedSystem(d)
        else:
            self.qs = [d.q]
            self.q = d.q
            self.diag = _tri_diag(d.q)
            self.system = OneFactorSystem(d.X, d.Z, d.codes, d.n_clusters)
        self.n_theta = self.diag.size
        self.lower_theta = np.where(self.diag, 0.0, -np.inf)
        self.beta = _glm_start(design)
        self.u: np.ndarray | None = None
        self.n_evaluations = 0

    def _run(self, theta: np.ndarray, beta: np.ndarray, fixed: bool) -> PirlsResult | None:
        self.n_evaluations += 1
        res = pirls(self.system, self.data, theta, beta, self.u, fixed=fixed)
        if res is None or not res.converged:
            res = pirls(self.system, self.data, theta, beta, None, fixed=fixed)
        if res is not None:
            self.u = res.u
        return res

    def stage1(self, theta: np.ndarray) -> float:
        res = self._run(np.asarray(theta, dtype=float), self.beta, fixed=False)
        if res is None:
            return np.inf
        self.beta = res.beta
        return res.laplace

    def split(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.asarray(x, dtype=float)
        return x[: self.n_theta], x[self.n_theta :]

    def mode(self, x: np.ndarray) -> PirlsResult | None:
        theta, beta = self.split(x)
        return self._run(theta, beta, fixed=True)

    def deviance(self, res: PirlsResult, theta: np.ndarray) -> float:
        if self.nAGQ <= 1:
            return res.laplace
        d = self.design.lmer
        assert isinstance(d, LmerDesign)  # quadrature only for one scalar term
        return agq_deviance(res, self.data, d.Z, d.codes, float(theta[0]), self.nAGQ)

    def stage2(self, x: np.ndarray) -> float:
        res = self.mode(x)
        return np.inf if res is None else self.deviance(res, self.split(x)[0])

    @property
    def lower(self) -> np.ndarray:
        return np.r_[self.lower_theta, np.full(self.p, -np.inf)]

    def T(self, theta: np.ndarray) -> np.ndarray:
        return lower_tri(theta, self.q)

    def Ts(self, theta: np.ndarray) -> list[np.ndarray]:
        """Each term's relative covariance factor, in lme4's term order."""
        out, k = [], 0
        for q in self.qs:
            n = q * (q + 1) // 2
            out.append(lower_tri(theta[k : k + n], q))
            k += n
        return out


def _glm_start(design: GlmerDesign) -> np.ndarray:
    """beta of the GLM without random effects (IRLS from R's mustart), the stage-1 start."""
    X, y, w, off = design.lmer.X, design.y, design.weights, design.offset
    fam = design.family
    if fam.name == "binomial":
        mu = (w * y + 0.5) / (w + 1.0)
        eta = {"logit": np.log(mu / (1 - mu)), "log": np.log(mu)}.get(fam.link)
        if eta is None:
            from scipy.special import ndtri

            eta = ndtri(mu) if fam.link == "probit" else np.log(-np.log1p(-mu))
    else:
        eta = np.log(y + 0.1)
    beta = np.zeros(X.shape[1])
    from ._family import glm_rows

    n = y.shape[0]
    mu_, sw, wres, dr = (np.empty(n) for _ in range(4))
    for _ in range(8):
        glm_rows(fam.code, fam.link_code, np.ascontiguousarray(eta), y, w, mu_, sw, wres, dr)
        z = eta - off + wres
        beta, *_ = np.linalg.lstsq(X * sw[:, None], z * sw, rcond=None)
        eta = off + X @ beta
        beta = np.clip(beta, -30, 30)
    return beta


def deriv12(
    f: Callable[[np.ndarray], float], x: np.ndarray, fx: float, lower: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Central finite-difference gradient and Hessian as lme4's ``deriv12`` (step 1e-4; the
    backward step is shortened near a lower bound, as lme4 does)."""
    k = x.size
    delta = HESSIAN_DELTA
    up = x + delta
    lo = np.maximum(x - delta, np.where(np.isfinite(lower), lower, -np.inf))
    # on (or next to) a bound of a diagonal element of T step across it: the deviance depends
    # on T T' only, so it is defined (and even) there
    lo = np.where(x - lo < 0.5 * delta, x - delta, lo)
    ld = x - lo
    g, H = np.empty(k), np.empty((k, k))

    def at(pairs):
        z = x.copy()
        for i, v in pairs:
            z[i] = v[i]
        return f(z)

    for j in range(k):
        fa, fs = at([(j, up)]), at([(j, lo)])
        H[j, j] = fa / delta**2 - 2.0 * fx / (delta * ld[j]) + fs / ld[j] ** 2
        g[j] = (fa - fs) / (delta + ld[j])
        for i in range(j):
            H[i, j] = H[j, i] = (
                at([(i, up), (j, up)]) / (delta + delta) ** 2
                - at([(i, up), (j, lo)]) / (delta + ld[j]) ** 2
                - at([(i, lo), (j, up)]) / (ld[i] + delta) ** 2
                + at([(i, lo), (j, lo)]) / (ld[i] + ld[j]) ** 2
            )
    return g, H


@dataclass
class OptimumResult:
    x: np.ndarray
    fun: float
    gradient: np.ndarray | None
    hessian: np.ndarray | None
    converged: bool
    messages: list[str] = field(default_factory=list)
    n_evaluations: int = 0


def _cobyqa(f, x0, lower, radius, maxfev):
    """scipy's COBYQA (scipy >= 1.14; bounded Powell before that) from x0."""
    from scipy.optimize import Bounds, minimize  # lazy: scipy.optimize is slow to import

    finite = np.isfinite(lower)
    x0 = np.where(finite, np.maximum(x0, lower), x0)
    bounds = Bounds(lower, np.full_like(lower, np.inf))
    try:
        r = minimize(
            f,
            x0,
            method="COBYQA",
            bounds=bounds,
            options={"initial_tr_radius": radius, "final_tr_radius": 1e-9, "maxfev": maxfev},
        )
    except ValueError:  # an older scipy without COBYQA
        r = minimize(f, x0, method="Powell", bounds=bounds, options={"maxfev": maxfev})
    return np.asarray(r.x, dtype=float), float(r.fun)


def _newton_polish(f, x, fx, lower, iters=6):
    """Projected Newton steps on finite-difference derivatives; returns (x, f, g, H)."""
    g, H = deriv12(f, x, fx, lower)
    for _ in range(iters):
        free = ~(np.isfinite(lower) & (x <= lower + 1e-12) & (g > 0))
        lam, V = np.linalg.eigh(H[np.ix_(free, free)])
        if lam.size == 0:
            break
        lam = np.maximum(np.abs(lam), 1e-8 * max(1.0, float(np.max(np.abs(lam)))))
        d = np.zeros_like(x)
        d[free] = -(V @ ((V.T @ g[free]) / lam))
        step, improved = 1.0, False
        while step > 1e-6:
            xn = np.maximum(x + step * d, lower)
            fn = f(xn)
            if fn < fx:
                improved = True
                break
            step *= 0.5
        if not improved:
            break
        moved = float(np.max(np.abs(xn - x)))
        gain = fx - fn
        x, fx = xn, fn
        g, H = deriv12(f, x, fx, lower)
        if moved < 1e-7 or gain < 1e-12 * (1.0 + abs(fx)):
            break
    return x, fx, g, H


def _check_boundary(f, x, fx, obj: GlmerObjective):
    """lme4's check.boundary: theta diagonals below 1e-5 are tried at exactly 0."""
    small = np.flatnonzero(obj.diag & (x[: obj.n_theta] < BOUNDARY_TOL) & (x[: obj.n_theta] != 0))
    for i in small:
        z = x.copy()
        z[i] = 0.0
        fz = f(z)
        if fz <= fx:
            x, fx = z, fz
    return x, fx


def _convergence(g, H, x, lower) -> tuple[bool, list[str]]:
    free = ~(np.isfinite(lower) & (x <= lower))
    gf, Hf = g[free], H[np.ix_(free, free)]
    messages: list[str] = []
    try:
        L = np.linalg.cholesky(Hf)
        scaled = np.linalg.solve(L.T, np.linalg.solve(L, gf))
        crit = float(np.max(np.minimum(np.abs(scaled), np.abs(gf)), initial=0.0))
        pos_def = True
    except np.linalg.LinAlgError:
        crit, pos_def = float(np.max(np.abs(gf), initial=0.0)), False
    if crit > GRAD_TOL:
        messages.append(f"Model failed to converge with max|grad| = {crit:.6g} (tol = 0.002)")
    if not pos_def:
        messages.append(
            "Model is nearly unidentifiable: the Hessian of the deviance is not positive "
            "definite (rescale variables? perfect separation?)"
        )
    return not messages, messages


def _minimize(f, x0, lower, radius):
    """Projected Newton from x0; COBYQA first only if Newton alone does not converge."""
    x, fx, g, H = _newton_polish(f, np.maximum(x0, lower), f(np.maximum(x0, lower)), lower, 30)
    if not _convergence(g, H, x, lower)[0]:
        x, _ = _cobyqa(f, x, lower, radius, 5000 * x.size)
        x, fx, g, H = _newton_polish(f, x, f(x), lower, 30)
    return x, fx, g, H


def optimize_glmer(obj: GlmerObjective) -> OptimumResult:
    """Both stages, polishing, boundary check and the Hessian at the optimum."""
    theta0 = obj.diag.astype(float)
    th, _, _, _ = _minimize(obj.stage1, theta0, obj.lower_theta, 0.2)
    f1 = obj.stage1(th)  # the joint modes at the stage-1 optimum: beta's start
    lower = obj.lower
    if obj.nAGQ == 0:  # lme4's nAGQ = 0: the stage-1 optimum is the fit (no derivatives)
        return OptimumResult(np.r_[th, obj.beta], f1, None, None, True, [], obj.n_evaluations)
    x, fx, g, H = _minimize(obj.stage2, np.r_[th, obj.beta], lower, 0.05)
    xb, fb = _check_boundary(obj.stage2, x, fx, obj)
    if fb < fx or not np.array_equal(xb, x):
        x, fx = xb, fb
        g, H = deriv12(obj.stage2, x, fx, lower)
    converged, messages = _convergence(g, H, x, lower)
    return OptimumResult(x, fx, g, H, converged, messages, obj.n_evaluations)
