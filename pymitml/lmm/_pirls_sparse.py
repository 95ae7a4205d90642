"""The penalised weighted least-squares system for any random-effects structure (sparse Z).

:class:`SparseSystem` implements :class:`._pirls.PenalisedSystem` for a random-effects design
Z (n, Q) of any number of terms and a relative covariance factor Lambda_theta (Q, Q) given by a
function of theta, so PIRLS and the Laplace deviance work unchanged for nested and crossed
grouping factors. For weights W and working response z:

    A = Lambda' Z' W Z Lambda + I   (sparse, positive definite; log|L|^2 = log det A),
    fixed beta:  u = A^{-1} Lambda' Z' W z,
    joint:       S = X'WX - C' A^{-1} C  with C = Lambda' Z' W X  (S = R_X' R_X),
                 beta = S^{-1} (X'Wz - C' A^{-1} Lambda' Z' W z),  u = A^{-1} (Lambda'Z'Wz - C beta).

A is factorised by a sparse LU with a symmetric fill-reducing ordering and no off-diagonal
pivoting (so its diagonal gives det A), which stays cheap for crossed designs with thousands of
levels. The modes are returned as (Q, 1) arrays.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ._pirls import Solution

__all__ = ["SparseSystem"]


class SparseSystem:
    """:class:`._pirls.PenalisedSystem` for a sparse Z (n, Q) and ``lam(theta)`` (Q, Q)."""

    def __init__(self, X: np.ndarray, Z, lam: Callable[[np.ndarray], object]):
        from scipy import sparse  # lazy: scipy.sparse is slow to import

        self.X = np.ascontiguousarray(X, dtype=float)
        self.Z = sparse.csc_matrix(Z, dtype=float)
        self.lam = lam
        self.n_modes = (self.Z.shape[1], 1)
        self.sqrtw = np.ones(self.X.shape[0])
        self._lx = np.zeros((self.X.shape[1], self.X.shape[1]))

    def set_weights(self, sqrtw: np.ndarray) -> None:
        self.sqrtw = sqrtw

    def solve(self, theta: np.ndarray, z: np.ndarray, fixed: bool) -> Solution | None:
        from scipy import sparse
        from scipy.sparse.linalg import splu

        L = sparse.csc_matrix(self.lam(theta))
        W = sparse.diags(self.sqrtw)
        ZL = W @ (self.Z @ L)  # sqrt(W) Z Lambda
        Q = ZL.shape[1]
        A = (ZL.T @ ZL + sparse.identity(Q, format="csc")).tocsc()
        try:
            lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
        except RuntimeError:
            return None
        diag = lu.U.diagonal()
        if not np.all(diag > 0.0):
            return None
        logdet = float(np.sum(np.log(diag)))
        zw = z * self.sqrtw
        rhs = ZL.T @ zw
        p = self.X.shape[1]
        if fixed or p == 0:
            beta = np.zeros(0 if fixed else p)
            u = lu.solve(rhs)
        else:
            Xw = self.X * self.sqrtw[:, None]
            C = np.asarray(ZL.T @ Xw)
            AiC = lu.solve(C)
            S = Xw.T @ Xw - C.T @ AiC
            S = 0.5 * (S + S.T)
            try:
                self._lx = np.linalg.cholesky(S)
            except np.linalg.LinAlgError:
                return None
            Air = lu.solve(rhs)
            beta = np.linalg.solve(S, Xw.T @ zw - C.T @ Air)
            u = Air - AiC @ beta
        u = u.reshape(Q, 1)
        return Solution(logdet, beta, u, self.modes_from_u(theta, u))

    def linear_predictor(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = self.Z @ b[:, 0]
        if beta.size:
            out = out + self.X @ beta
        return np.asarray(out)

    def modes_from_u(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        return np.asarray(self.lam(theta) @ u[:, 0]).reshape(-1, 1)

    def lx(self) -> np.ndarray:
        return self._lx
