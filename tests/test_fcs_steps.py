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


# ------------------------------------------------ polr / polyreg steps (fcs/_categorical.py)

from pymitml.samplers.fcs import _categorical as cat  # noqa: E402


def _cat_problem(seed=3, n=400, p=3, K=4):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, p))
    lat = X @ np.linspace(1.0, -0.5, p) + rng.logistic(size=n)
    y = np.digitize(lat, np.linspace(-1.0, 1.0, K - 1)).astype(np.int64)
    return X, y, rng.uniform(0.5, 1.5, n), rng


def _np_polr_probs(X, par, K):
    theta, beta = par[: K - 1], par[K - 1 :]
    F = 1 / (1 + np.exp(-(theta[None, :] - (X @ beta)[:, None])))
    F = np.column_stack([np.zeros(len(X)), F, np.ones(len(X))])
    return np.diff(F, axis=1)


def _np_mlogit_probs(X, par, K):
    E = np.column_stack([np.zeros(len(X)), X @ par.reshape(K - 1, -1).T])
    E = np.exp(E - E.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def _np_loglik(P, y, w):
    return float(np.sum(w * np.log(P[np.arange(len(y)), y])))


def _fd_grad(f, par, eps=1e-5):
    """Central differences of the log-likelihood f."""
    m = len(par)
    E = np.eye(m) * eps
    g = np.array([(f(par + E[a]) - f(par - E[a])) / (2 * eps) for a in range(m)])
    return g


def test_polr_probabilities_loglik_and_derivatives_match_numpy():
    X, y, w, rng = _cat_problem()
    K = 4
    par = np.r_[-1.1, -0.1, 0.9, rng.normal(scale=0.5, size=3)]
    P = np.empty((len(X), K))
    cat.polr_probs(X, par, K, P)
    np.testing.assert_allclose(P, _np_polr_probs(X, par, K), rtol=1e-12, atol=1e-15)
    ll = cat.polr_loglik(X, y, w, par, K)
    assert ll == pytest.approx(_np_loglik(P, y, w), rel=1e-12)
    wk = cat.fit_work(len(par))
    cat.polr_derivatives(X, y, w, par, K, wk)

    def f(v):
        return _np_loglik(_np_polr_probs(X, v, K), y, w)

    np.testing.assert_allclose(wk.g, _fd_grad(f, par), rtol=1e-6, atol=1e-6)

    def grad(v):
        cat.polr_derivatives(X, y, w, v, K, wk)
        return wk.g.copy()

    cat.polr_derivatives(X, y, w, par, K, wk)
    H = wk.H.copy()
    fdH = np.array([(grad(par + e) - grad(par - e)) / 2e-6 for e in np.eye(len(par)) * 1e-6])
    np.testing.assert_allclose(H, -fdH, rtol=1e-5, atol=1e-5 * np.abs(H).max())
    np.testing.assert_array_equal(H, H.T)
    bad = par.copy()
    bad[1] = bad[0] - 0.1  # thresholds out of order: outside the domain
    assert cat.polr_loglik(X, y, w, bad, K) == -np.inf


def test_mlogit_probabilities_loglik_and_derivatives_match_numpy():
    X, y, w, rng = _cat_problem(seed=4, K=3)
    X = np.column_stack([np.ones(len(X)), X])
    K = 3
    par = rng.normal(scale=0.4, size=(K - 1) * X.shape[1])
    P = np.empty((len(X), K))
    cat.mlogit_probs(X, par, K, P)
    np.testing.assert_allclose(P, _np_mlogit_probs(X, par, K), rtol=1e-12)
    pr = np.empty(K)
    assert cat.mlogit_loglik(X, y, w, par, K, pr) == pytest.approx(_np_loglik(P, y, w), rel=1e-12)
    wk = cat.fit_work(len(par))
    cat.mlogit_derivatives(X, y, w, par, K, wk, pr)
    # gradient sum_i w_i (e_yi - p_i) x_i and information sum_i w_i (diag p - p p') (x) x x'
    R = (y[:, None] == np.arange(1, K)[None, :]) - P[:, 1:]
    np.testing.assert_allclose(wk.g, ((w[:, None] * R).T @ X).ravel(), rtol=1e-10, atol=1e-10)
    H = np.zeros_like(wk.H)
    for i in range(len(X)):
        pi = P[i, 1:]
        H += w[i] * np.kron(np.diag(pi) - np.outer(pi, pi), np.outer(X[i], X[i]))
    np.testing.assert_allclose(wk.H, H, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("kind", ["polr", "mlogit"])
def test_newton_fits_reach_the_maximum_of_the_likelihood(kind):
    """The fitted parameters zero the gradient, and no nearby point has a larger likelihood."""
    X, y, w, rng = _cat_problem(seed=5)
    K = 4
    if kind == "polr":
        par = np.zeros(K - 1 + X.shape[1])
        wk = cat.fit_work(len(par))
        assert cat.polr_fit(X, y, w, K, par, wk, False) == 0
        cat.polr_derivatives(X, y, w, par, K, wk)

        def ll(v):
            return cat.polr_loglik(X, y, w, v, K)
    else:
        X = np.column_stack([np.ones(len(X)), X])
        par = np.zeros((K - 1) * X.shape[1])
        wk = cat.fit_work(len(par))
        pr = np.empty(K)
        assert cat.mlogit_fit(X, y, w, K, par, wk, pr, False) == 0
        cat.mlogit_derivatives(X, y, w, par, K, wk, pr)

        def ll(v):
            return cat.mlogit_loglik(X, y, w, v, K, pr)

    assert np.max(np.abs(wk.g)) < 1e-8
    top = ll(par)
    for _ in range(20):
        assert ll(par + rng.normal(scale=1e-3, size=len(par))) < top
    # a warm start from a nearby point (the last visit's fit) reaches the same optimum
    warm = par + rng.normal(scale=0.05, size=len(par))
    if kind == "polr":
        warm[: K - 1] = np.sort(warm[: K - 1])
        assert cat.polr_fit(X, y, w, K, warm, wk, True) == 0
    else:
        assert cat.mlogit_fit(X, y, w, K, warm, wk, pr, True) == 0
    np.testing.assert_allclose(warm, par, rtol=1e-9, atol=1e-11)


def test_polr_with_two_categories_is_the_logistic_regression():
    X, y, w, _ = _cat_problem(seed=6, K=2)
    par = np.zeros(1 + X.shape[1])
    assert cat.polr_fit(X, y, w, 2, par, cat.fit_work(len(par)), False) == 0
    Xi = np.column_stack([np.ones(len(X)), X])
    b = np.zeros(Xi.shape[1])
    assert cat.mlogit_fit(Xi, y, w, 2, b, cat.fit_work(len(b)), np.empty(2), False) == 0
    # P(y <= 0) = F(theta - x'beta) = 1 - F(b0 + x'b): theta = -b0, beta = b
    np.testing.assert_allclose(par, np.r_[-b[0], b[1:]], rtol=1e-8, atol=1e-10)


def test_draw_categories_is_the_inverse_cdf_of_one_uniform():
    rng = np.random.default_rng(7)
    P = rng.dirichlet(np.ones(4), size=2000)
    u = rng.random(2000)
    out = np.empty(2000, np.int64)
    cat.draw_categories(P, u, out)
    np.testing.assert_array_equal(out, np.minimum((u[:, None] > P.cumsum(axis=1)).sum(axis=1), 3))
    u = rng.random(200000)
    out = np.empty(len(u), np.int64)
    Q = np.repeat(np.array([[0.1, 0.2, 0.3, 0.4]]), len(u), axis=0)
    cat.draw_categories(Q, u, out)
    np.testing.assert_allclose(np.bincount(out) / len(u), Q[0], atol=0.004)


def test_augment_builds_mices_rows():
    rng = np.random.default_rng(8)
    X = np.column_stack([rng.normal(size=50), rng.integers(0, 2, 50).astype(float)])
    X[3, 0] = np.nan  # left out of the column summaries
    cats = np.array([0, 2, 3])
    Xa, ya, wa = cat.augment(X, cats, n_not_fitted=10)
    p, k = 2, 3
    assert Xa.shape == (2 * p * k, p) and np.allclose(wa, (p + 1) / (2 * p * k))
    mean, sd = np.nanmean(X, 0), np.nanstd(X, 0, ddof=1)
    for r in range(2 * p * k):
        j = r // (2 * k)
        want = mean.copy()
        want[j] += (0.5 if r % 2 == 0 else -0.5) * sd[j]
        want = np.clip(want, np.nanmin(X, 0), np.nanmax(X, 0))
        np.testing.assert_allclose(Xa[r], want, rtol=1e-14)
        assert ya[r] == cats[(r % (2 * k)) // 2]
    # mice skips it with no predictor, or when exactly one row is outside the fit
    assert len(cat.augment(X, cats, n_not_fitted=1)[1]) == 0
    assert len(cat.augment(X[:, :0], cats, n_not_fitted=10)[1]) == 0


def test_poly_contrasts_are_rs_contr_poly():
    C = cat.poly_contrasts(4)
    np.testing.assert_allclose(C[:, 0], np.array([-3, -1, 1, 3]) / np.sqrt(20), rtol=1e-12)
    np.testing.assert_allclose(C[:, 1], np.array([1, -1, -1, 1]) / 2, rtol=1e-12)
    np.testing.assert_allclose(C[:, 2], np.array([-1, 3, -3, 1]) / np.sqrt(20), rtol=1e-12)
    np.testing.assert_allclose(cat.poly_contrasts(2), [[-np.sqrt(0.5)], [np.sqrt(0.5)]])


def test_column_summaries_skip_missing_cells():
    rng = np.random.default_rng(9)
    X = rng.normal(size=(40, 3))
    X[rng.random((40, 3)) < 0.2] = np.nan
    X[:, 2] = np.nan
    X[5, 2] = 1.5  # one cell: sd 0
    S = np.empty((4, 3))
    cat.column_summaries(X, S)
    np.testing.assert_allclose(S[0, :2], np.nanmean(X[:, :2], 0), rtol=1e-13)
    np.testing.assert_allclose(S[1, :2], np.nanstd(X[:, :2], 0, ddof=1), rtol=1e-13)
    np.testing.assert_array_equal(S[2:, :2], [np.nanmin(X[:, :2], 0), np.nanmax(X[:, :2], 0)])
    np.testing.assert_array_equal(S[:, 2], [1.5, 0.0, 1.5, 1.5])
