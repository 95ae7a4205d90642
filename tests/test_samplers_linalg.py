"""Numba kernels against plain NumPy references."""

from __future__ import annotations

import numpy as np

from pymitml.samplers._gibbs import (
    _draw_given_cholesky,
    _precision_cholesky,
    cluster_crossproducts,
    cluster_runs,
    pattern_factors,
    rows_crossproducts,
)
from pymitml.samplers._jomo_kernel import cluster_rows_crossproducts
from pymitml.samplers._linalg import chol_inplace, draw_inv_wishart, inv_lower, spd_inverse

rng = np.random.default_rng(42)


def _spd(n):
    a = rng.normal(size=(n, n))
    return a @ a.T + n * np.eye(n)


def test_cholesky_inverse_match_numpy():
    for n in (1, 2, 5):
        a = _spd(n)
        L = a.copy()
        assert chol_inplace(L, n)
        np.testing.assert_allclose(L, np.linalg.cholesky(a), rtol=1e-12, atol=1e-12)
        out, w = np.empty((n, n)), np.empty((n, n))
        assert spd_inverse(a, out, w, n)
        np.testing.assert_allclose(out, np.linalg.inv(a), rtol=1e-10, atol=1e-12)
        Li = np.empty((n, n))
        inv_lower(L, Li, n)
        np.testing.assert_allclose(Li, np.linalg.inv(L), rtol=1e-10, atol=1e-12)
    assert not chol_inplace(np.array([[1.0, 2.0], [2.0, 1.0]]), 2)


def test_inverse_wishart_mean():
    """E[IW(nu, S)] = S / (nu - n - 1), checked over 20,000 draws."""
    n, nu = 3, 12.0
    S = _spd(n)
    out, w1, w2 = np.empty((n, n)), np.empty((n, n)), np.empty((n, n))
    draws = np.empty((20000, n, n))
    for k in range(len(draws)):
        chi = rng.chisquare(nu - np.arange(n))
        assert draw_inv_wishart(chi, rng.standard_normal(n * (n - 1) // 2), S, out, w1, w2, n)
        draws[k] = out
    np.testing.assert_allclose(
        draws.mean(0), S / (nu - n - 1), rtol=0.03, atol=0.01 * np.abs(S).max()
    )


def test_random_effects_mean_and_crossproducts():
    q, r, J, p, n = 2, 2, 6, 3, 5
    d = q * r
    X = rng.normal(size=(J * n, p))
    Z = rng.normal(size=(J * n, q))
    Y = rng.normal(size=(J * n, r))
    clus = np.repeat(np.arange(J), n)
    ZtZ, ZtX = cluster_crossproducts(X, Z, clus, J)
    XtY, ZtY, YtY = np.zeros((p, r)), np.zeros((q, r, J)), np.zeros((r, r))
    # rows in an order where clusters come back in several runs, some of one row
    order = np.concatenate([np.arange(0, J * n, 2), np.arange(1, J * n, 2)])
    Xo, Zo, Yo, Co = X[order], Z[order], Y[order], clus[order]
    rows_crossproducts(Xo.T.copy(), Zo.T.copy(), Yo.T.copy(), Co, cluster_runs(Co), XtY, ZtY, YtY)
    np.testing.assert_allclose(XtY, X.T @ Y)
    np.testing.assert_allclose(YtY, Y.T @ Y)
    # rows grouped by cluster (runs of n rows: the per-run sums) give the same Z_j'Y_j
    ZtY_runs = np.zeros((q, r, J))
    rows_crossproducts(
        X.T.copy(), Z.T.copy(), Y.T.copy(), clus, cluster_runs(clus), XtY, ZtY_runs, YtY
    )
    np.testing.assert_allclose(ZtY_runs, ZtY)
    cX, cZ, cY = np.zeros((J, p, r)), np.zeros((J, q, r)), np.zeros((J, r, r))
    cluster_rows_crossproducts(Xo.T.copy(), Zo.T.copy(), Yo.T.copy(), Co, cX, cZ, cY)
    for j in range(J):
        s = clus == j
        np.testing.assert_allclose(ZtZ[:, :, j], Z[s].T @ Z[s])
        np.testing.assert_allclose(ZtX[:, :, j], Z[s].T @ X[s])
        np.testing.assert_allclose(ZtY[:, :, j], Z[s].T @ Y[s])
        np.testing.assert_allclose(cX[j], X[s].T @ Y[s])
        np.testing.assert_allclose(cZ[j], Z[s].T @ Y[s])
        np.testing.assert_allclose(np.tril(cY[j]), np.tril(Y[s].T @ Y[s]))
    beta = rng.normal(size=(p, r))
    Sigma, Psi = _spd(r), _spd(d)
    Sinv, Pinv = np.linalg.inv(Sigma), np.linalg.inv(Psi)
    B = np.zeros((q, r, J))
    work = (np.zeros((q, r, J)), np.zeros((d, d, J)), np.zeros((d, J)))
    noise = rng.standard_normal(d * J)
    R, P, v = work
    assert _precision_cholesky(ZtZ, Sinv, Pinv, P)
    _draw_given_cholesky(noise, ZtX, ZtY, beta, Sinv, B, R, P, v)
    for j in range(J):
        prec = Pinv + np.kron(Sinv, ZtZ[:, :, j])
        rhs = ((ZtY[:, :, j] - ZtX[:, :, j] @ beta) @ Sinv).T.reshape(-1)
        L = np.linalg.cholesky(prec)
        expect = np.linalg.solve(prec, rhs) + np.linalg.solve(L.T, noise[np.arange(d) * J + j])
        np.testing.assert_allclose(B[:, :, j].T.reshape(-1), expect, rtol=1e-9, atol=1e-12)


def test_conditional_normal_factors():
    r = 3
    S = _spd(r)
    obs = np.array([[0, 2, 0]])
    mis = np.array([[1, 0, 0]])
    K, C = np.zeros((1, r, r)), np.zeros((1, r, r))
    pattern_factors(
        S, obs, np.array([2]), mis, np.array([1]), K, C, np.zeros((r, r)), np.zeros((r, r))
    )
    o, m = [0, 2], [1]
    Kref = S[np.ix_(m, o)] @ np.linalg.inv(S[np.ix_(o, o)])
    Cref = S[np.ix_(m, m)] - Kref @ S[np.ix_(o, m)]
    np.testing.assert_allclose(K[0, :1, :2], Kref)
    np.testing.assert_allclose(C[0, 0, 0] ** 2, Cref[0, 0])
