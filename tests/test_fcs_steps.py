"""NumPy reference tests of the two-level regression steps in pymitml/samplers/_ranef.py."""

from __future__ import annotations

import numpy as np
import pytest

from pymitml.samplers import _ranef as rf


def _problem(seed=0, J=12, n=8, p=3, q=2):
    rng = np.random.default_rng(seed)
    N = J * n
    X = np.column_stack([np.ones(N), rng.normal(size=(N, p - 1))])
    Z = np.ascontiguousarray(X[:, :q])
    clus = np.repeat(np.arange(J), n)
    b = rng.normal(size=(J, q)) * 0.7
    y = X @ np.array([1.0, 0.5, -0.3])[:p] + np.sum(Z * b[clus], axis=1) + rng.normal(size=N)
    start = np.arange(0, N + 1, n).astype(np.int64)
    return X, Z, y, clus, start


def _data(X, Z, y, start, mode=0):
    return rf.RcData(X, Z, y, start, np.array([2.0, 1.0, 1.0, 1.0]), mode)


def test_cluster_moments_match_numpy():
    X, Z, y, clus, start = _problem()
    J, p, q = 12, 3, 2
    par = rf.rc_params(p, q, J, 1.0)
    par.s2[:] = np.linspace(0.5, 2.0, J)
    w = rf.rc_work(p, q, J)
    rf.cluster_moments(_data(X, Z, y, start), par, w)
    wt = 1.0 / par.s2[clus]
    np.testing.assert_allclose(w.A, X.T @ (X * wt[:, None]), rtol=1e-12)
    np.testing.assert_allclose(w.c, X.T @ (y * wt), rtol=1e-12)
    for j in (0, 5, 11):
        r = clus == j
        np.testing.assert_allclose(w.ZtZ[j], Z[r].T @ Z[r], rtol=1e-12)
        np.testing.assert_allclose(w.ZtX[j], Z[r].T @ X[r], rtol=1e-12)
        np.testing.assert_allclose(w.Zty[j], Z[r].T @ y[r], rtol=1e-12)


def test_beta_b_block_draws_the_collapsed_posterior():
    X, Z, y, clus, start = _problem(1)
    J, p, q = 12, 3, 2
    par = rf.rc_params(p, q, J, 1.0)
    psi = np.array([[0.5, 0.1], [0.1, 0.3]])
    par.psi[:] = psi
    par.psi_inv[:] = np.linalg.inv(psi)
    par.s2[:] = 0.8
    w = rf.rc_work(p, q, J)
    d = _data(X, Z, y, start)
    # NumPy: V = s2 I + Z Psi Z' block diagonal; beta | y ~ N(A^-1 X'V^-1 y, A^-1)
    Vinv = np.zeros((len(y), len(y)))
    for j in range(J):
        r = np.flatnonzero(clus == j)
        Vinv[np.ix_(r, r)] = np.linalg.inv(0.8 * np.eye(len(r)) + Z[r] @ psi @ Z[r].T)
    A = X.T @ Vinv @ X
    mean = np.linalg.solve(A, X.T @ Vinv @ y)
    cov = np.linalg.inv(A)
    rng = np.random.default_rng(5)
    K = 4000
    betas = np.empty((K, p))
    b0 = np.empty((K, q))
    for k in range(K):
        assert rf.draw_beta_b(rng, d, par, w) == 0
        betas[k] = par.beta
        b0[k] = par.b[0]
    se = np.sqrt(np.diag(cov) / K)
    assert np.all(np.abs(betas.mean(0) - mean) < 4.5 * se)
    np.testing.assert_allclose(np.cov(betas.T), cov, rtol=0.1, atol=0.1 * np.abs(cov).max())
    # b_0 | y: E = Psi Z_0' V_0^-1 (y_0 - X_0 E[beta])
    r = clus == 0
    Eb = (
        psi
        @ Z[r].T
        @ np.linalg.solve(0.8 * np.eye(r.sum()) + Z[r] @ psi @ Z[r].T, y[r] - X[r] @ mean)
    )
    assert np.all(np.abs(b0.mean(0) - Eb) < 4.5 * b0.std(0) / np.sqrt(K))


def test_residual_ss_and_linear_predictor_match_numpy():
    X, Z, y, clus, start = _problem(2)
    J, p, q = 12, 3, 2
    par = rf.rc_params(p, q, J, 1.0)
    par.beta[:] = [0.3, -0.2, 0.1]
    par.b[:] = np.random.default_rng(0).normal(size=(J, q))
    eta = X @ par.beta + np.sum(Z * par.b[clus], axis=1)
    ss = np.empty(J)
    rf.residual_ss(_data(X, Z, y, start), par, ss)
    np.testing.assert_allclose(ss, np.bincount(clus, (y - eta) ** 2), rtol=1e-12)
    out = np.empty(len(y))
    rf.linear_predictor(X, Z, clus, par.beta, par.b, out)
    np.testing.assert_allclose(out, eta, rtol=1e-12)


def test_psi_and_homoscedastic_variance_have_their_inverse_wishart_means():
    X, Z, y, clus, start = _problem(3)
    J, p, q = 12, 3, 2
    par = rf.rc_params(p, q, J, 1.0)
    par.b[:] = np.random.default_rng(1).normal(size=(J, q))
    w = rf.rc_work(p, q, J)
    d = _data(X, Z, y, start)
    rng = np.random.default_rng(2)
    K = 6000
    acc = np.zeros((q, q))
    s2 = np.empty(K)
    ss = np.full(J, 2.0)
    for k in range(K):
        assert rf.draw_psi(rng, d, par, w) == 0
        acc += par.psi
        rf.draw_residual_variance(rng, d, par, ss)
        s2[k] = par.s2[0]
        np.testing.assert_allclose(par.psi @ par.psi_inv, np.eye(q), atol=1e-9)
    S = np.eye(q) + par.b.T @ par.b
    nu = 2.0 + J
    np.testing.assert_allclose(acc / K, S / (nu - q - 1), rtol=0.05)
    tot = 1.0 + ss.sum()
    df = 1.0 + len(y)
    assert abs(s2.mean() - tot / (df - 2)) < 4 * s2.std() / np.sqrt(K)
    assert np.all(par.s2 == par.s2[0])


def test_heteroscedastic_variances_follow_cluster_residuals():
    X, Z, y, clus, start = _problem(4, J=30, n=40)
    J, p, q = 30, 3, 2
    par = rf.rc_params(p, q, J, 1.0)
    d = _data(X, Z, y, start, mode=1)
    ss = np.linspace(10.0, 160.0, J)  # residual SS over 40 rows: variances 0.25..4
    rng = np.random.default_rng(3)
    K = 2000
    acc = np.zeros(J)
    for _ in range(K):
        rf.draw_residual_variance(rng, d, par, ss)
        acc += par.s2
    est = acc / K
    raw = ss / 40
    assert np.corrcoef(est, raw)[0, 1] > 0.99
    assert np.all(np.diff(est) > 0)
    # partial pooling: each variance is pulled toward the middle, never past it
    mid = np.exp(np.log(raw).mean())
    assert np.all(np.abs(np.log(est / mid)) <= np.abs(np.log(raw / mid)) + 0.05)
    np.testing.assert_allclose(est, raw, rtol=0.5)


def test_fixed_unit_variance_mode_leaves_variance():
    X, Z, y, clus, start = _problem(5)
    par = rf.rc_params(3, 2, 12, 1.0)
    rf.draw_residual_variance(np.random.default_rng(0), _data(X, Z, y, start, 2), par, np.ones(12))
    assert np.all(par.s2 == 1.0)


def test_pmm_match_picks_among_nearest_donors():
    rng = np.random.default_rng(0)
    yhat = np.sort(rng.normal(size=50))
    yobs = np.arange(50.0)
    target = rng.normal(size=200)
    out = np.empty(200)
    rf.pmm_match(rng, yhat, yobs, target, 1, out)
    np.testing.assert_array_equal(out, np.abs(yhat[None, :] - target[:, None]).argmin(1))
    rf.pmm_match(rng, yhat, yobs, target, 3, out)
    ranks = np.argsort(np.argsort(np.abs(yhat[None, :] - target[:, None]), 1), 1)
    assert np.all(ranks[np.arange(200), out.astype(int)] < 3)
    assert len(np.unique(ranks[np.arange(200), out.astype(int)])) == 3


@pytest.mark.parametrize("code", [0, 1])
def test_probit_latents_respect_the_category(code):
    rng = np.random.default_rng(0)
    eta = rng.normal(size=500)
    out = np.empty(500)
    rf.probit_latents(
        rng, eta, np.full(500, code), np.array([-np.inf, 0.0]), np.array([0.0, np.inf]), out
    )
    assert np.all(out > 0) if code else np.all(out < 0)
