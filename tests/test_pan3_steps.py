"""NumPy reference tests of the shared steps of the three-level pan sampler (samplers/_gibbs.py)."""

from __future__ import annotations

import numpy as np

from pymitml.samplers import _gibbs as G


def _setup(seed=0, q2=2, q3=2, r=2, S=3, per=(2, 3, 1), n=4):
    """Random nested design: S schools with per[s] classes of n rows each."""
    rng = np.random.default_rng(seed)
    school_of = np.repeat(np.arange(S), per)
    C = len(school_of)
    cls = np.repeat(np.arange(C), n)
    sch = school_of[cls]
    N = len(cls)
    Z2 = np.column_stack([np.ones(N), rng.normal(size=(N, q2 - 1))])
    Z3 = np.column_stack([np.ones(N), rng.normal(size=(N, q3 - 1))])
    R = rng.normal(size=(N, r))
    A = rng.normal(size=(r, r))
    Sigma = A @ A.T + r * np.eye(r)
    B = rng.normal(size=(q2 * r, q2 * r))
    Psi2 = B @ B.T + np.eye(q2 * r)
    B = rng.normal(size=(q3 * r, q3 * r))
    Psi3 = B @ B.T + np.eye(q3 * r)
    return rng, school_of, cls, sch, Z2, Z3, R, Sigma, Psi2, Psi3


def _per_group(Za, Zb, codes, J):
    return np.stack([Za[codes == j].T @ Zb[codes == j] for j in range(J)], axis=-1)


def test_subtract_outer_effects_and_cluster_residuals_match_numpy():
    rng, school_of, cls, sch, Z2, Z3, Y, *_ = _setup(1)
    C, S = len(school_of), school_of.max() + 1
    q2, q3, r = Z2.shape[1], Z3.shape[1], Y.shape[1]
    U = rng.normal(size=(q3, r, S))
    ZtY = _per_group(Z2, Y, cls, C)
    ZtZo = _per_group(Z2, Z3, cls, C)
    out = np.empty_like(ZtY)
    G.subtract_outer_effects(ZtY, ZtZo, U, school_of, out)
    W = Y - np.einsum("ia,ati->it", Z3, U[:, :, sch])
    np.testing.assert_allclose(out, _per_group(Z2, W, cls, C), rtol=1e-12, atol=1e-12)
    X = rng.normal(size=(len(cls), 3))
    beta = rng.normal(size=(3, r))
    R = np.empty((q2, r, C))
    G.cluster_residual_crossproducts(ZtY, _per_group(Z2, X, cls, C), beta, R)
    np.testing.assert_allclose(R, _per_group(Z2, Y - X @ beta, cls, C), rtol=1e-12, atol=1e-12)


def test_outer_collapsed_precision_is_the_marginal_posterior_of_the_school_effects():
    """A_s and c_s against the dense formula: with the class effects integrated out, the rows of
    class c have covariance M_c = (I (x) Z2_c) Psi2 (I (x) Z2_c)' + Sigma (x) I, and
    A_s = Psi3^-1 + sum_c (I (x) Z3_c)' M_c^-1 (I (x) Z3_c), c_s = sum_c (I (x) Z3_c)' M_c^-1 y_c
    (y_c = vec(R_c), target-major)."""
    rng, school_of, cls, sch, Z2, Z3, R, Sigma, Psi2, Psi3 = _setup(2)
    C, S = len(school_of), school_of.max() + 1
    q2, q3, r = Z2.shape[1], Z3.shape[1], R.shape[1]
    d2, d3 = q2 * r, q3 * r
    Sinv, Pinv2, Pinv3 = (np.linalg.inv(M) for M in (Sigma, Psi2, Psi3))
    P = np.empty((d2, d2, C))
    assert G._precision_cholesky(_per_group(Z2, Z2, cls, C), Sinv, Pinv2, P)
    A = np.empty((d3, d3, S))
    c = np.empty((d3, S))
    G.outer_collapsed_precision(
        _per_group(Z3, Z3, sch, S),
        _per_group(Z2, Z3, cls, C),
        _per_group(Z3, R, sch, S),
        _per_group(Z2, R, cls, C),
        school_of,
        Sinv,
        Pinv3,
        P,
        np.empty((d2, d3, C)),
        np.empty((d2, C)),
        A,
        c,
    )
    for s in range(S):
        A_ref = Pinv3.copy()
        c_ref = np.zeros(d3)
        for k in np.flatnonzero(school_of == s):
            rows = cls == k
            n = rows.sum()
            W2 = np.kron(np.eye(r), Z2[rows])
            W3 = np.kron(np.eye(r), Z3[rows])
            M = W2 @ Psi2 @ W2.T + np.kron(Sigma, np.eye(n))
            Minv = np.linalg.inv(M)
            A_ref += W3.T @ Minv @ W3
            c_ref += W3.T @ Minv @ R[rows].T.reshape(-1)
        np.testing.assert_allclose(A[:, :, s], A_ref, rtol=1e-9)
        np.testing.assert_allclose(c[:, s], c_ref, rtol=1e-9, atol=1e-12)


def test_draw_from_precisions_and_batched_cholesky_match_numpy():
    rng = np.random.default_rng(3)
    q, r, J = 2, 2, 4
    d = q * r
    A = np.empty((d, d, J))
    for j in range(J):
        M = rng.normal(size=(d, d))
        A[:, :, j] = M @ M.T + d * np.eye(d)
    c = rng.normal(size=(d, J))
    z = rng.normal(size=d * J)
    L = A.copy()
    assert G.batched_cholesky(L)
    for j in range(J):
        np.testing.assert_allclose(np.tril(L[:, :, j]), np.linalg.cholesky(A[:, :, j]))
    B = np.empty((q, r, J))
    A2, c2 = A.copy(), c.copy()
    assert G.draw_from_precisions(z, A2, c2, B)
    for j in range(J):
        Lj = np.linalg.cholesky(A[:, :, j])
        ref = np.linalg.solve(A[:, :, j], c[:, j]) + np.linalg.solve(Lj.T, z[j::J])
        np.testing.assert_allclose(c2[:, j], ref, rtol=1e-10)
        np.testing.assert_allclose(B[:, :, j], ref.reshape(r, q).T, rtol=1e-10)
    bad = -np.ones((1, 1, 2))
    assert not G.batched_cholesky(bad)


def test_add_row_effects_matches_numpy():
    rng = np.random.default_rng(4)
    q, r, J, n = 2, 3, 5, 11
    Zi = rng.normal(size=(q, n))
    Ci = rng.integers(0, J, n)
    B = rng.normal(size=(q, r, J))
    mu = rng.normal(size=(r, n))
    ref = mu + np.einsum("ai,ati->ti", Zi, B[:, :, Ci])
    G.add_row_effects(Zi, Ci, B, mu)
    np.testing.assert_allclose(mu, ref, rtol=1e-12)
