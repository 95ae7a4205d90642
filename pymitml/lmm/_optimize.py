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

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

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


def _line_search(fg, x, f, g, d, lower, min_alpha=1e-14):
    """Backtrack along the projection path x(a) = max(x + a d, lower); None if no decrease."""
    alpha = 1.0
    while alpha > min_alpha:
        xn = np.maximum(x + alpha * d, lower)
        fn, gn = fg(xn)
        if np.isfinite(fn) and fn <= f + 1e-4 * min(float(g @ (xn - x)), 0.0) + 1e-15 * abs(f):
            return xn, fn, gn
        alpha *= 0.5
    return None


def _newton(fg, x, lower, max_iter):
    """Projected modified-Newton iterations from x; returns (x, f, g).

    Where the Hessian has a negative eigenvalue the step first follows that direction of
    negative curvature (the better of both signs), else a Newton step with absolute
    eigenvalues.
    """
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
        top = max(1.0, float(np.max(np.abs(lam))))
        cap = 1.0 + np.max(np.abs(x))
        gf = g[free]
        step = None
        if lam[0] < -1e-6 * top:
            v = V[:, 0]
            first = -1.0 if float(gf @ v) > 0.0 else 1.0
            signs = [first]
            if np.any(np.isfinite(lower[free]) & (x[free] <= lower[free] + 1e-12)):
                # at a bound the criterion is even in a diagonal element, so the downhill
                # sign can point into the bound and stall: try both
                signs.append(-first)
            for sign in signs:
                d = np.zeros_like(x)
                d[free] = sign * cap * v
                cand = _line_search(fg, x, f, g, d, lower, min_alpha=1e-4)
                if cand is not None and (step is None or cand[1] < step[1]):
                    step = cand
        if step is None:
            lam_abs = np.maximum(np.abs(lam), 1e-8 * top)
            d = np.zeros_like(x)
            d[free] = -(V @ ((V.T @ gf) / lam_abs))
            big = np.max(np.abs(d))
            if big > cap:
                d *= cap / big
            step = _line_search(fg, x, f, g, d, lower)
        if step is None:
            break
        xn, fn, gn = step
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
        from scipy.optimize import minimize_scalar  # lazy: scipy.optimize is slow to import

        r = minimize_scalar(along, bounds=(lo, hi), method="bounded", options={"xatol": 1e-8})
        t, ft = (r.x, r.fun) if r.fun < vals[k] else (grid[k], vals[k])
        if best is None or ft < best[1]:
            z = x.copy()
            z[c] = lower[c] + t
            best = (z, ft)
    return None if best is None else best[0]


def minimize_theta(
    fg: Callable, theta0: np.ndarray, lower: np.ndarray, max_iter: int = 200
) -> OptimResult:
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
        gf = g[free]
        try:
            L = np.linalg.cholesky(H)
            scaled = np.linalg.solve(L.T, np.linalg.solve(L, gf))
            crit = float(np.max(np.minimum(np.abs(scaled), np.abs(gf))))
            pos_def = True
        except np.linalg.LinAlgError:
            crit = float(np.max(np.abs(gf)))
            pos_def = False
        if crit > GRAD_TOL:
            converged = False
            messages.append(
                f"Model failed to converge with max|grad| = {crit:.6g} (tol = {GRAD_TOL:g})"
            )
        elif not pos_def:
            converged = False
            messages.append(
                "Hessian of the criterion is not positive definite at the optimum: "
                "the model is nearly unidentifiable (rescale variables or simplify "
                "the random part?)"
            )
    if not np.isfinite(f):
        converged = False
        messages.append("the criterion is not finite at the optimum")
    return OptimResult(
        theta=x,
        fun=float(f),
        grad=g,
        hessian=H,
        free=free,
        n_evaluations=count[0],
        converged=converged,
        messages=messages,
    )
