"""lmer (one grouping factor): thread-independent cross-products and the optimiser's stopping
rule (issue 18).

* ``_kernels.project_out`` against a NumPy reference;
* fits bit-for-bit identical with 1 and 2 BLAS threads on data large enough that OpenBLAS
  splits a matrix-vector product between threads (140k rows: the NumPy products used before
  gave fixed effects differing by ~1e-8 between thread counts);
* ``minimize_theta`` on a criterion with rounding noise: it stops once the Newton step is at
  rounding level and returns the best point evaluated (lowest value, ties within rounding
  broken by the gradient), instead of backtracking inside the noise;
* a 140k-row random-intercept fit needs few criterion evaluations and ends at a gradient at
  rounding level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm
from pymitml.lmm import _kernels
from pymitml.lmm._optimize import ROUND_F, STEP_TOL, _Memo, minimize_theta

threadpoolctl = pytest.importorskip("threadpoolctl")


def _data(J: int, n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), n)
    z = rng.normal(size=J * n)
    w = rng.normal(size=J)[g]
    x = rng.normal(size=J * n) + 0.5 * w
    u0 = rng.normal(scale=0.7, size=J)[g]
    u1 = rng.normal(scale=0.3, size=J)[g]
    y = 1.0 + 0.4 * x + 0.5 * z + 0.3 * w + u0 + u1 * z + rng.normal(size=J * n)
    return pd.DataFrame({"g": g, "x": x, "z": z, "w": w, "y": y})


def test_project_out_matches_numpy():
    rng = np.random.default_rng(4)
    n, p = 500, 4
    Q, _ = np.linalg.qr(rng.normal(size=(n, p)) + 3.0)
    Q = np.ascontiguousarray(Q)
    y = rng.normal(size=n) * 10.0 + 5.0
    qty, yc = np.empty(p), np.empty(n)
    _kernels.project_out(Q, y, qty, yc)
    ref_qty = Q.T @ y
    ref_yc = y - Q @ ref_qty
    np.testing.assert_allclose(qty, ref_qty, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(yc, ref_yc, rtol=0, atol=1e-11)
    assert np.max(np.abs(Q.T @ yc)) < 1e-12  # orthogonal to Q after the second pass
    assert np.array_equal(y, y.copy())  # the response is not overwritten
    np.testing.assert_allclose(Q @ qty + yc, y, rtol=0, atol=1e-11)


@pytest.mark.parametrize("formula", ["y ~ x + z + w + (1 | g)", "y ~ x + z + w + (1 + z | g)"])
def test_fit_identical_whatever_the_number_of_blas_threads(formula):
    df = _data(20_000, 7, seed=11)  # 140k rows
    fits = {}
    for threads in (1, 2):
        with threadpoolctl.threadpool_limits(threads):
            fits[threads] = pm.lmer(formula, df, REML=True)
    a, b = fits[1], fits[2]
    np.testing.assert_array_equal(a.fixef.to_numpy(), b.fixef.to_numpy())
    np.testing.assert_array_equal(a.theta, b.theta)
    np.testing.assert_array_equal(a.vcov.to_numpy(), b.vcov.to_numpy())
    np.testing.assert_array_equal(a.ranef.to_numpy(), b.ranef.to_numpy())
    assert a.loglik == b.loglik and a.sigma == b.sigma


def _noisy_quadratic(count):
    """f(x) = 3e5 + 1e4 (x - 0.3)^2 plus deterministic noise of 1e-8 (relative 3e-14, the
    rounding level of a criterion summed over 1e5 rows); the gradient is exact."""

    def fg(x):
        count[0] += 1
        t = float(x[0])
        noise = 1e-8 * (np.sin(t * 1.7e9) + 0.5 * np.sin(t * 2.9e11))
        return 3e5 + 1e4 * (t - 0.3) ** 2 + noise, np.array([2e4 * (t - 0.3)])

    return fg


def test_optimizer_stops_at_rounding_level_and_returns_best_point():
    count = [0]
    opt = minimize_theta(_noisy_quadratic(count), np.array([1.0]), np.array([0.0]))
    assert opt.converged
    assert abs(opt.theta[0] - 0.3) < 2.0 * STEP_TOL  # the last step not taken
    assert abs(opt.grad[0]) <= 2e4 * 2.0 * STEP_TOL  # the gradient at that theta
    assert opt.n_evaluations == count[0]  # every evaluation counted once
    assert opt.n_evaluations <= 10


def test_memo_evaluates_a_point_once_and_breaks_ties_by_gradient():
    calls = []

    def fg(x):
        calls.append(float(x[0]))
        # two values equal within rounding: the second has the smaller gradient
        f = 100.0 if x[0] < 0.5 else 100.0 + 0.5 * ROUND_F * 100.0
        return f, np.array([1e-3 if x[0] < 0.5 else 1e-9])

    memo = _Memo(fg, np.array([-np.inf]))
    memo(np.array([0.4]))
    memo(np.array([0.6]))
    f, g = memo(np.array([0.4]))
    assert calls == [0.4, 0.6] and memo.count == 2 and f == 100.0
    assert memo.best()[0] == 0.6
    memo(np.array([0.7]))  # a clearly lower value wins whatever its gradient
    memo.fg = lambda x: (99.0, np.array([1.0]))
    memo(np.array([0.8]))
    assert memo.best()[0] == 0.8


def test_large_random_intercept_fit_is_quick_and_exact():
    df = _data(20_000, 7, seed=12)
    fit = pm.lmer("y ~ x + z + w + (1 | g)", df, REML=False)
    assert fit.converged
    assert fit.n_evaluations <= 14  # 33 to 44 before the stopping rule (backtracking in noise)
    # the gradient at the optimum, evaluated afresh, is at rounding level
    from pymitml.lmm.fit import _Criterion

    d = fit._full_design()
    crit = _Criterion(d, fit._cross_products(), reml=False)
    _, g = crit(crit.from_lme4(fit.theta))
    assert abs(g[0]) < 1e-5
