"""The scalar-random-effect kernels (q = 1) give the generic kernels' results bit for bit."""

from __future__ import annotations

import numpy as np
import pytest

from pymitml.lmm import _kernels as K


def _problem(J: int, p: int, seed: int):
    rng = np.random.default_rng(seed)
    ZtZ = rng.uniform(0.5, 12.0, (J, 1, 1))
    ZtX = rng.normal(size=(J, 1, p))
    Zty = rng.normal(size=(J, 1))
    A = rng.normal(size=(10 * p + 5, p))
    XtX = A.T @ A * J
    return ZtZ, ZtX, Zty, XtX, rng.normal(size=p), float(10 * J)


def _buffers(J: int, p: int):
    return [
        np.empty((J, 1, 1)),
        np.empty((J, 1, p)),
        np.empty((J, 1)),
        np.empty((p, p)),
        np.empty(p),
    ]


@pytest.mark.parametrize("p", [0, 1, 4])
@pytest.mark.parametrize("t", [0.0, 0.37, 1.0, 4.2])
def test_pls_and_gradient_of_q1_equal_the_generic_kernels_bit_for_bit(p, t):
    J = 57
    ZtZ, ZtX, Zty, XtX, Xty, yty = _problem(J, p, seed=int(10 * t) + p)
    T = np.array([[t]])
    a, b = _buffers(J, p), _buffers(J, p)
    ra = K.pls(T, ZtZ, ZtX, Zty, XtX, Xty, yty, *a)
    rb = K.pls_q1(T, ZtZ, ZtX, Zty, XtX, Xty, yty, *b)
    assert ra == rb
    for x, y in zip(a, b):
        assert np.array_equal(x, y)
    for reml in (True, False):
        ga, gb = np.empty((1, 1)), np.empty((1, 1))
        K.gradient_d(ZtZ, ZtX, Zty, *a, ra[2], 700.0, reml, ga)
        K.gradient_d_q1(ZtZ, ZtX, Zty, *b, rb[2], 700.0, reml, gb)
        assert np.array_equal(ga, gb)


def test_pls_q1_reports_a_failed_factorisation_as_the_generic_kernel():
    ZtZ, ZtX, Zty, XtX, Xty, yty = _problem(5, 2, seed=1)
    XtX[:] = 0.0  # X'V^-1 X not positive definite
    T = np.array([[0.5]])
    assert K.pls(T, ZtZ, ZtX, Zty, XtX, Xty, yty, *_buffers(5, 2))[0] == -np.inf
    assert K.pls_q1(T, ZtZ, ZtX, Zty, XtX, Xty, yty, *_buffers(5, 2))[0] == -np.inf
