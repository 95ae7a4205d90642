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

Stopping: the iterations end when the next Newton step changes theta by less than
``STEP_TOL`` (relative), without evaluating it. Near the optimum the criterion carries rounding
noise of ~n eps (relative ~1e-14 for 1e5 rows), so a line search comparing values alone keeps
backtracking inside the noise: where two values agree within ``ROUND_F`` the projected gradient
decides, and the best point evaluated (lowest value, ties broken by the gradient) is returned.

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


#: a step whose largest relative change of theta is below this changes nothing that matters
STEP_TOL = 1e-10
#: relative rounding level of the criterion: sums over n rows carry errors of ~n eps, so two
#: values closer than this cannot be told apart and the gradient decides
ROUND_F = 1e-12


def _projected_gradient(x, g, lower):
    """max |g| over the coordinates that are free to move downhill."""
    pg = np.where(np.isfinite(lower) & (x <= lower) & (g > 0), 0.0, g)
    return float(np.max(np.abs(pg))) if pg.size else 0.0


def _rel_step(x, xn):
    return float(np.max(np.abs(xn - x) / (1.0 + np.abs(x))))


def _line_search(fg, x, f, g, d, lower, min_alpha=1e-14):
    """Backtrack along the projection path x(a) = max(x + a d, lower); None if no decrease.

    A trial is accepted on the Armijo condition, or, when its value equals f within the
    criterion's rounding level, when its projected gradient is smaller (a comparison of
    values alone is decided by rounding noise there). Backtracking stops once the step is
    at rounding level.
    """
    tol_f = ROUND_F * (1.0 + abs(f))
    pg = _projected_gradient(x, g, lower)
    alpha = 1.0
    while alpha > min_alpha:
        xn = np.maximum(x + alpha * d, lower)
        if _rel_step(x, xn) < 1e-2 * STEP_TOL:
            return None
        fn, gn = fg(xn)
        if np.isfinite(fn):
            if fn <= f + 1e-4 * min(float(g @ (xn - x)), 0.0) + 1e-15 * abs(f):
                return xn, fn, gn
            if fn <= f + tol_f and _projected_gradient(xn, gn, lower) < pg:
                return xn, fn, gn
        alpha *= 0.5
    return None


def _newton(fg, x, lower, max_iter):
    """Projected modified-Newton iterations from x; returns (x, f, g, hess).

    Where the Hessian has a negative eigenvalue the step first follows that direction of
    negative curvature (the better of both signs), else a Newton step with absolute
    eigenvalues. The iterations stop when the Newton step falls below ``STEP_TOL``
    (relative) without evaluating it; ``hess`` is then (H, free) at the returned x, else None.
    """
    x = np.maximum(np.asarray(x, dtype=float), lower)
    f, g = fg(x)
    hess = None
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
            if lam[0] > 0.0 and _rel_step(x, np.maximum(x + d, lower)) < STEP_TOL:
                hess = (H, free)  # converged: the next step is at rounding level
                break
            step = _line_search(fg, x, f, g, d, lower)
        if step is None:
            break
        xn, fn, gn = step
        moved = np.max(np.abs(xn - x) / (1.0 + np.abs(x)))
        x, f, g = xn, fn, gn
        if moved < 1e-12:
            break
    return x, f, g, hess


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


class _Memo:
    """The criterion, evaluated once per point (the last few points are remembered), and the
    best point evaluated: the lowest value, where values tie within rounding
    (``ROUND_F``) the one with the smallest projected gradient."""

    def __init__(self, fg: Callable, lower: np.ndarray, keep: int = 8):
        self.fg, self.lower, self.keep = fg, lower, keep
        self.count = 0
        self.seen: dict[bytes, tuple[float, np.ndarray]] = {}
        self.points: list[tuple[np.ndarray, float, float]] = []

    def __call__(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        key = np.asarray(x, dtype=float).tobytes()
        hit = self.seen.get(key)
        if hit is not None:
            return hit[0], hit[1].copy()
        self.count += 1
        f, g = self.fg(x)
        f, g = float(f), np.asarray(g, dtype=float)
        if len(self.seen) >= self.keep:
            self.seen.pop(next(iter(self.seen)))
        self.seen[key] = (f, g.copy())
        if np.isfinite(f):
            self.points.append((np.array(x, dtype=float), f, _projected_gradient(x, g, self.lower)))
        return f, g

    def best(self) -> np.ndarray | None:
        if not self.points:
            return None
        f_min = min(p[1] for p in self.points)
        tol = ROUND_F * (1.0 + abs(f_min))
        ties = [p for p in self.points if p[1] <= f_min + tol]
        return min(ties, key=lambda p: p[2])[0]


def minimize_theta(
    fg: Callable, theta0: np.ndarray, lower: np.ndarray, max_iter: int = 200
) -> OptimResult:
    """Minimise ``fg`` (returns value and gradient) subject to ``theta >= lower``."""
    memo = _Memo(fg, lower)
    x = np.asarray(theta0, dtype=float)
    hess = None
    for _ in range(2 * x.size + 2):
        x, f, g, hess = _newton(memo, x, lower, max_iter)
        moved = _escape(memo, x, f, lower)
        if moved is None:
            break
        x, hess = moved, None
    best = memo.best()
    if best is not None and not np.array_equal(best, x):
        x, hess = best, None
    messages: list[str] = []
    f, g = memo(x)
    free = ~_active(x, g, lower)
    converged, H = True, None
    if free.any():
        if hess is not None and np.array_equal(hess[1], free):
            H = hess[0]  # the forward-difference Hessian of the last Newton iteration, at x
        else:
            H = _hessian(memo, x, free, g, lower, central=True)
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
        n_evaluations=memo.count,
        converged=converged,
        messages=messages,
    )
