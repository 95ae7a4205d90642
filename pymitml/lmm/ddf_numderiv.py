"""Richardson-extrapolated numerical derivatives with numDeriv's step scheme.

lmerTest differentiates its deviance and Var(beta) with the R package numDeriv (Gilbert &
Varadhan); using the same steps gives the same approximations, so degrees of freedom agree
with lmerTest to far better than the derivatives' own error.

Step: h_i = |d x_i| + eps [|x_i| < zero_tol], halved r - 1 times; the central differences at
the r step sizes are extrapolated (Richardson, error orders h^2, h^4, ...). The Hessian uses
d = 0.1 (numDeriv's ``hessian``: diagonal from second differences along x_i, off-diagonal from
second differences along x_i + x_j minus the two diagonal terms); the Jacobian d = 1e-4.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["hessian", "jacobian"]

EPS = 1e-4
ZERO_TOL = float(np.sqrt(np.finfo(float).eps / 7e-7))
R_STEPS = 4


def _steps(x: np.ndarray, d: float) -> np.ndarray:
    return np.abs(d * x) + EPS * (np.abs(x) < ZERO_TOL)


def _extrapolate(a: np.ndarray) -> np.ndarray:
    """Richardson extrapolation over the first axis (step sizes h, h/2, ...)."""
    for m in range(1, a.shape[0]):
        a = (a[1:] * 4.0**m - a[:-1]) / (4.0**m - 1.0)
    return a[0]


def hessian(func: Callable[[np.ndarray], float], x: np.ndarray, d: float = 0.1) -> np.ndarray:
    """numDeriv::hessian(func, x) (method "Richardson", its default arguments)."""
    x = np.asarray(x, dtype=float)
    k = x.size
    f0 = func(x)
    h0 = _steps(x, d)
    scale = 0.5 ** np.arange(R_STEPS)
    H = np.empty((k, k))
    unit = np.eye(k)
    for i in range(k):
        a = np.empty(R_STEPS)
        for s, c in enumerate(scale):
            h = h0 * c
            f1, f2 = func(x + unit[i] * h), func(x - unit[i] * h)
            a[s] = (f1 - 2.0 * f0 + f2) / h[i] ** 2
        H[i, i] = _extrapolate(a)
    for i in range(k):
        for j in range(i):
            a = np.empty(R_STEPS)
            for s, c in enumerate(scale):
                h = h0 * c
                step = unit[i] * h + unit[j] * h
                f1, f2 = func(x + step), func(x - step)
                num = f1 - 2.0 * f0 + f2 - H[i, i] * h[i] ** 2 - H[j, j] * h[j] ** 2
                a[s] = num / (2.0 * h[i] * h[j])
            H[i, j] = H[j, i] = _extrapolate(a)
    return H


def jacobian(
    func: Callable[[np.ndarray], np.ndarray], x: np.ndarray, d: float = 1e-4
) -> np.ndarray:
    """numDeriv::jacobian(func, x) (method "Richardson"): (len(func(x)), len(x))."""
    x = np.asarray(x, dtype=float)
    k = x.size
    h0 = _steps(x, d)
    unit = np.eye(k)
    cols = []
    for i in range(k):
        a = np.stack(
            [
                (func(x + unit[i] * h0 * c) - func(x - unit[i] * h0 * c)) / (2.0 * h0[i] * c)
                for c in 0.5 ** np.arange(R_STEPS)
            ]
        )
        cols.append(_extrapolate(a))
    return np.stack(cols, axis=1)
