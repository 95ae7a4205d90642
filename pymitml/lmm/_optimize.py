"""Bounded minimisation of the profiled criterion over theta (a handful of parameters).

Projected Newton with the analytic gradient (Bertsekas 1982): coordinates at their lower
bound with an outward gradient are held fixed; on the free ones the Hessian is the forward
difference of the analytic gradient, made positive definite by taking absolute eigenvalues
(so saddles are left, not approached), the step is capped and backtracked along the
projection path until the Armijo condition holds. Near the optimum the steps are exact
Newton steps, so the optimum is reached to near machine precision (parameters agree with any
other exact optimiser to ~1e-8); lme4's BOBYQA stops earlier.

The criterion depends on T only through T T', so at a diagonal element equal to 0 its
derivative can vanish although moving inward lowers the criterion; :func:`_escape` probes
such coordinates before the optimum is accepted.

Convergence is judged as lme4's ``checkConv`` does: max |H^{-1} g| (free coordinates) < 0.002.
Plain NumPy on purpose: scipy's L-BFGS-B calls a threaded BLAS for vectors of length 3, which
costs milliseconds per iteration on a busy machine.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.optimize import minimize_scalar

__all__ = ["OptimResult", "minimize_theta"]

GRAD_TOL = 2e-3  # lme4's checkConv tolerance on the scaled gradient


@dataclass
class OptimResult:
    theta: np.ndarray
    fun: float
    grad: np.ndarray
    hessian: np.ndarray | None
    free: np.ndarray
    n_evaluations: int
    converged: bool
    messages: list[str] = field(default_factory=list)


def _hessian(fg, x, free, g0, lower, central=False):
    """Finite-difference Hessian of the analytic gradient on the free coordinates.

    Forward differences step inward from a lower bound, so they are always feasible.
    """
    idx = np.flatnonzero(free)
    H = np.empty((idx.size, idx.size))
    for col, i in enumerate(idx):
        h = 1e-6 * max(abs(x[i]), 0.1)
        up = x.copy()
        up[i] += h
        if central and x[i] - h >= lower[i]:
            lo = x.copy()
            lo[i] -= h
            H[:, col] = (fg(up)[1][idx] - fg(lo)[1][idx]) / (2.0 * h)
        else:
            H[:, col] = (fg(up)[1][idx] - g0[idx]) / h
    return 0.5 * (H + H.T)


def _active(x, g, lower):
    return np.isfinite(lower) & (x <= lower) & (g > 0)


def _newton(fg, x, lower, max_iter):
    """Projected modified-Newton iterations from x; returns (x, f, g)."""
    x = np.maximum(np.asarray(x, dtype=float), lower)
    f, g = fg(x)
    for _ in range(max_iter):
        near = np.isfinite(lower) & (x <= lower + 1e-12) & (g > 0)
        x[near] = lower[near]
        free = ~near
        if not free.any():
            break
        H = _hessian(fg, x, free, g, lower)
        lam, V = np.linalg.eigh(H)
        lam_abs = np.maximum(np.abs(lam), 1e-8 * max(1.0, float(np.max(np.abs(lam)))))
        d = np.zeros_like(x)
        d[free] = -(V @ ((V.T @ g[free]) / lam_abs))
        cap = 1.0 + np.max(np.abs(x))
        big = np.max(np.abs(d))
        if big > cap:
            d *= cap / big
        alpha, accepted = 1.0, False
        while alpha > 1e-14:
            xn = np.maximum(x + alpha * d, lower)
            fn, gn = fg(xn)
            if np.isfinite(fn) and fn <= f + 1e-4 * float(g @ (xn - x)) + 1e-15 * abs(f):
                accepted = True
                break
            alpha *= 0.5
        if not accepted:
            break
        moved = np.max(np.abs(xn - x) / (1.0 + np.abs(x)))
        x, f, g = xn, fn, gn
        if moved < 1e-12:
            break
    return x, f, g


def _escape(fg, x, f, lower):
    """Move a coordinate off its bound when the criterion decreases inward; None if none does."""
    best = None
    for c in np.flatnonzero(np.isfinite(lower) & (x <= lower)):
        def along(t, c=c):
            z = x.copy()
            z[c] = lower[c] + t
            return fg(z)[0]

        grid = [1e-3, 1e-2, 1e-1, 0.3, 1.0, 3.0, 10.0, 100.0]
        vals = [along(t) for t in grid]
        k = int(np.argmin(vals))
        if not vals[k] < f - 1e-10 * abs(f):
            continue
        lo = grid[k - 1] if k > 0 else 0.0
        hi = grid[k + 1] if k + 1 < len(grid) else grid[k] * 10.0
        r = minimize_scalar(along, bounds=(lo, hi), method="bounded", options=dict(xatol=1e-8))
        t, ft = (r.x, r.fun) if r.fun < vals[k] else (grid[k], vals[k])
        if best is None or ft < best[1]:
            z = x.copy()
            z[c] = lower[c] + t
            best = (z, ft)
    return None if best is None else best[0]


def minimize_theta(fg: Callable, theta0: np.ndarray, lower: np.ndarray,
                   max_iter: int = 200) -> OptimResult:
    """Minimise ``fg`` (returns value and gradient) subject to ``theta >= lower``."""
    count = [0]

    def counted(t):
        count[0] += 1
        return fg(t)

    x = np.asarray(theta0, dtype=float)
    for _ in range(2 * x.size + 2):
        x, f, g = _newton(counted, x, lower, max_iter)
        moved = _escape(counted, x, f, lower)
        if moved is None:
            break
        x = moved
    messages: list[str] = []
    f, g = counted(x)
    free = ~_active(x, g, lower)
    converged, H = True, None
    if free.any():
        H = _hessian(counted, x, free, g, lower, central=True)
        try:
            L = np.linalg.cholesky(H)
            scaled = np.linalg.solve(L.T, np.linalg.solve(L, g[free]))
            crit = float(np.max(np.minimum(np.abs(scaled), np.abs(g[free]))))
            if crit > GRAD_TOL:
                converged = False
                messages.append(f"Model failed to converge with max|grad| = {crit:.6g} "
                                f"(tol = {GRAD_TOL:g})")
        except np.linalg.LinAlgError:
            converged = False
            messages.append("Hessian of the criterion is not positive definite at the optimum: "
                            "the model is nearly unidentifiable (rescale variables or simplify "
                            "the random part?)")
    if not np.isfinite(f):
        converged = False
        messages.append("the criterion is not finite at the optimum")
    return OptimResult(theta=x, fun=float(f), grad=g, hessian=H, free=free,
                       n_evaluations=count[0], converged=converged, messages=messages)
