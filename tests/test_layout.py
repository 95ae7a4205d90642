"""The samplers' data layout (pymitml.samplers._layout): the NumPy set-up cross-products equal the
kernel's to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from pymitml.samplers._gibbs import cluster_runs, rows_crossproducts
from pymitml.samplers._layout import rows_crossproducts_np


def _bits(a):
    return np.ascontiguousarray(a).view(np.int64)


def _layouts():
    rng = np.random.default_rng(3)
    out = []
    for n, J, sort, p, q, r in [
        (203, 9, True, 3, 2, 3),  # long runs (one per cluster), odd run lengths
        (50, 40, False, 2, 1, 2),  # short runs: the row-by-row branch
        (7, 1, True, 1, 1, 1),  # one cluster, n not a multiple of 4
        (0, 3, True, 2, 1, 2),  # no rows
        (3, 2, True, 2, 0, 2),  # no random effects
    ]:
        C = rng.integers(0, J, n)
        if sort:
            C = np.sort(C)
        X = rng.normal(size=(n, p)) * 10.0 ** rng.integers(-8, 8, size=(n, p))
        X[rng.random((n, p)) < 0.2] = 0.0  # zeros times negatives: -0.0 products
        Z = rng.normal(size=(n, q))
        Y = rng.normal(size=(n, r)) * 1e3
        Y[rng.random((n, r)) < 0.1] = -0.0
        out.append((X, Z, Y, C, J))
    return out


@pytest.mark.parametrize("case", range(5))
def test_rows_crossproducts_np_is_bit_identical_to_the_kernel(case):
    X, Z, Y, C, J = _layouts()[case]
    p, q, r = X.shape[1], Z.shape[1], Y.shape[1]
    args = (
        np.ascontiguousarray(X.T),
        np.ascontiguousarray(Z.T),
        np.ascontiguousarray(Y.T),
        C.astype(np.int64),
        cluster_runs(C),
    )
    ref = [np.full((p, r), np.nan), np.full((q, r, J), np.nan), np.full((r, r), np.nan)]
    got = [np.full((p, r), np.nan), np.full((q, r, J), np.nan), np.full((r, r), np.nan)]
    rows_crossproducts(*args, *ref)
    rows_crossproducts_np(*args, *got)
    for a, b in zip(ref, got):
        assert np.array_equal(_bits(a), _bits(b))
    if len(C):  # and the sums are the cross-products
        np.testing.assert_allclose(got[0], X.T @ Y, rtol=1e-10, atol=1e-6 * np.abs(X).max())
        np.testing.assert_allclose(got[2], Y.T @ Y, rtol=1e-10)
