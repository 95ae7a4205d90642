"""The pieces of an lmer fit that degrees-of-freedom methods re-evaluate.

A fit is reduced to its fixed-effects design X (n, p), response y (n,), the sparse
random-effects design Z (n, q) in lme4's column order (term by term; within a term level by
level, the term's columns inside each level) and the random-effect terms, each with its
number of columns ``nc``, levels, first column in Z and first element of theta. The relative
covariance factor is lme4's Lambda = blockdiag_t(I_levels (x) T_t), T_t lower triangular
holding the term's theta column by column.

At variance parameters varpar = (theta, sigma) (lmerTest's parameterisation) the penalised
least-squares system gives, with A = Lambda' Z'Z Lambda + I and V = I + Z Lambda Lambda' Z'
(so Var(y) = sigma^2 V):

    X'V^{-1}X = X'X - (Lambda'Z'X)' A^{-1} (Lambda'Z'X) = R_X'R_X,
    r^2(theta) = min_beta (y - X beta)' V^{-1} (y - X beta),
    ML deviance (beta profiled)  = log|A| + r^2 / sigma^2 + n log(2 pi sigma^2),
    REML deviance                = ML deviance + log|R_X'R_X| - p log(2 pi sigma^2),
    Var(beta_hat)                = sigma^2 (R_X'R_X)^{-1},

the quantities lmerTest's ``devfun_vp`` and ``get_covbeta`` return (Kuznetsova, Brockhoff &
Christensen 2017, section 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["DENSE_MAX_Q", "DdfDesign", "ReTerm", "design_of"]

#: up to this many random effects the criterion uses a dense Cholesky of A (else sparse LU)
DENSE_MAX_Q = 150


@dataclass(frozen=True)
class ReTerm:
    """One random-effect term: ``nc`` columns per level, ``n_levels`` levels, its first
    column in Z and its first element in theta (``nc (nc + 1) / 2`` elements)."""

    nc: int
    n_levels: int
    col_start: int
    theta_start: int

    @property
    def n_theta(self) -> int:
        return self.nc * (self.nc + 1) // 2

    @property
    def n_cols(self) -> int:
        return self.nc * self.n_levels


def _lambda_pattern(terms: list[ReTerm]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows, columns and theta index of the non-zeros of Lambda (lme4's ``Lind``)."""
    rows, cols, ind = [], [], []
    for t in terms:
        r, c = np.tril_indices(t.nc)
        order = np.lexsort((r, c))  # column-major lower triangle: theta's order
        r, c = r[order], c[order]
        base = t.col_start + t.nc * np.arange(t.n_levels)[:, None]
        rows.append((base + r[None, :]).ravel())
        cols.append((base + c[None, :]).ravel())
        ind.append(np.tile(t.theta_start + np.arange(r.size), t.n_levels))
    return np.concatenate(rows), np.concatenate(cols), np.concatenate(ind)


class DdfDesign:
    """X, y, sparse Z and the terms of a fit, with the cross-products the criterion needs.

    The response is centred on its least-squares fit on X (y - X b_ols), which changes
    neither r^2 nor X'V^{-1}X but keeps the cross-products small.
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, Z: Any, terms: list[ReTerm], reml: bool):
        from scipy import sparse

        self.X = np.ascontiguousarray(X, dtype=float)
        y = np.asarray(y, dtype=float)
        self.n, self.p = self.X.shape
        if self.p:
            y = y - self.X @ np.linalg.lstsq(self.X, y, rcond=None)[0]
        self.y = y
        self.Z = sparse.csc_matrix(Z, dtype=float)
        self.q = self.Z.shape[1]
        self.terms = terms
        self.reml = bool(reml)
        self.n_theta = sum(t.n_theta for t in terms)
        self._lrows, self._lcols, self._lind = _lambda_pattern(terms)
        self.S = (self.Z.T @ self.Z).tocsc()
        self.ZtX = np.asarray(self.Z.T @ self.X)
        self.Zty = np.asarray(self.Z.T @ self.y)
        self.XtX = self.X.T @ self.X
        self.Xty = self.X.T @ self.y
        self.yty = float(self.y @ self.y)
        self._ZtXy = np.column_stack([self.ZtX, self.Zty])
        self._S_dense = self.S.toarray() if self.q <= DENSE_MAX_Q else None
        if len(terms) == 1:  # per-level blocks of Z'Z and Z'[X, y] (levels x nc x ...)
            t = terms[0]
            base = t.col_start + t.nc * np.arange(t.n_levels)
            idx = base[:, None] + np.arange(t.nc)[None, :]
            rows = np.repeat(idx, t.nc, axis=1).ravel()
            cols = np.tile(idx, (1, t.nc)).ravel()
            blocks = np.asarray(self.S.tocsr()[rows, cols]).reshape(t.n_levels, t.nc, t.nc)
            self._S_blocks = np.ascontiguousarray(blocks)
            self._ZtXy_blocks = self._ZtXy[idx.ravel()].reshape(t.n_levels, t.nc, -1)
        self._memo: dict[bytes, tuple[float, np.ndarray, float]] = {}

    def lam(self, theta: np.ndarray) -> Any:
        """Lambda (q, q) at theta, sparse."""
        from scipy import sparse

        th = np.asarray(theta, dtype=float)[self._lind]
        return sparse.csc_matrix((th, (self._lrows, self._lcols)), shape=(self.q, self.q))

    def factor(self, theta: np.ndarray) -> tuple[Any, Any, float]:
        """Lambda, the sparse LU of A = Lambda'Z'Z Lambda + I and log|A| at theta."""
        from scipy import sparse
        from scipy.sparse.linalg import splu

        L = self.lam(theta)
        A = (L.T @ self.S @ L + sparse.identity(self.q, format="csc")).tocsc()
        # A is symmetric positive definite: a symmetric ordering without pivoting
        lu = splu(A, permc_spec="MMD_AT_PLUS_A", diag_pivot_thresh=0.0)
        return L, lu, float(np.sum(np.log(np.abs(lu.U.diagonal()))))

    def _solve_dense(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """Lambda'[Z'X, Z'y], log|A| and A^{-1} Lambda'[Z'X, Z'y] by a dense Cholesky (small q)."""
        from scipy.linalg import cho_solve

        Ld = np.zeros((self.q, self.q))
        Ld[self._lrows, self._lcols] = np.asarray(theta, dtype=float)[self._lind]
        A = Ld.T @ self._S_dense @ Ld
        A[np.diag_indices(self.q)] += 1.0
        C = np.linalg.cholesky(A)
        rhs = Ld.T @ self._ZtXy
        return rhs, 2.0 * float(np.sum(np.log(np.diag(C)))), cho_solve((C, True), rhs)

    def _solve_blocks(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        """As :meth:`_solve_dense` for one term: A is block diagonal, one nc x nc block a level."""
        t = self.terms[0]
        T = np.zeros((t.nc, t.nc))
        r, c = self._lrows[: t.n_theta] - t.col_start, self._lcols[: t.n_theta] - t.col_start
        T[r, c] = np.asarray(theta, dtype=float)[self._lind[: t.n_theta]]
        A = np.einsum("ba,lbc,cd->lad", T, self._S_blocks, T)
        A[:, np.arange(t.nc), np.arange(t.nc)] += 1.0
        C = np.linalg.cholesky(A)
        rhs = np.einsum("ba,lbk->lak", T, self._ZtXy_blocks)
        sol = np.linalg.solve(A, rhs)
        logdet = 2.0 * float(np.sum(np.log(np.diagonal(C, axis1=1, axis2=2))))
        return rhs.reshape(self.q, -1), logdet, sol.reshape(self.q, -1)

    def _solve_sparse(self, theta: np.ndarray) -> tuple[np.ndarray, float, np.ndarray]:
        L, lu, logdet = self.factor(theta)
        rhs = np.asarray(L.T @ self._ZtXy)
        return rhs, logdet, lu.solve(rhs)

    def profiled(self, theta: np.ndarray) -> tuple[float, np.ndarray, float]:
        """(log|A|, X'V^{-1}X, r^2) at theta (remembered: numerical derivatives in sigma
        revisit the same theta)."""
        key = np.asarray(theta, dtype=float).tobytes()
        if key not in self._memo:
            if len(self._memo) > 256:
                self._memo.clear()
            self._memo[key] = self._profiled(theta)
        return self._memo[key]

    def _profiled(self, theta: np.ndarray) -> tuple[float, np.ndarray, float]:
        if len(self.terms) == 1:
            solve = self._solve_blocks
        else:
            solve = self._solve_dense if self.q <= DENSE_MAX_Q else self._solve_sparse
        rhs, logdet, sol = solve(theta)
        LZX, LZy = rhs[:, : self.p], rhs[:, self.p]
        AX, Ay = sol[:, : self.p], sol[:, self.p]
        xvx = self.XtX - LZX.T @ AX
        xvx = 0.5 * (xvx + xvx.T)
        xvy = self.Xty - LZX.T @ Ay
        r2 = self.yty - float(LZy @ Ay)
        if self.p:
            r2 -= float(xvy @ np.linalg.solve(xvx, xvy))
        return logdet, xvx, r2

    def deviance(self, varpar: np.ndarray) -> float:
        """lmerTest's ``devfun_vp``: REML (or ML, beta profiled) deviance at (theta, sigma)."""
        varpar = np.asarray(varpar, dtype=float)
        s2 = varpar[-1] ** 2
        logdet, xvx, r2 = self.profiled(varpar[:-1])
        dev = logdet + r2 / s2 + self.n * np.log(2.0 * np.pi * s2)
        if self.reml and self.p:
            dev += np.linalg.slogdet(xvx)[1] - self.p * np.log(2.0 * np.pi * s2)
        return float(dev)

    def vcov(self, varpar: np.ndarray) -> np.ndarray:
        """lmerTest's ``get_covbeta``: sigma^2 (X'V^{-1}X)^{-1} at (theta, sigma), (p, p)."""
        varpar = np.asarray(varpar, dtype=float)
        _, xvx, _ = self.profiled(varpar[:-1])
        return varpar[-1] ** 2 * np.linalg.inv(xvx)


def _terms_of(fit: Any) -> list[ReTerm]:
    """The random-effect terms of a fit (``fit.re_terms``, or the one term of a one-factor fit)."""
    records = getattr(fit, "re_terms", None)
    if records is None:
        q = fit.Z.shape[1]
        return [ReTerm(nc=q, n_levels=int(fit.ngroups), col_start=0, theta_start=0)]
    terms = []
    for rec in records:
        cols, th = _field(rec, "columns", "col_slice", "cols"), _field(rec, "theta", "theta_slice")
        nc = len(_field(rec, "names", "column_names", "cnms"))
        terms.append(ReTerm(nc, int(_field(rec, "n_levels")), int(cols.start), int(th.start)))
    return terms


def _field(rec: Any, *names: str) -> Any:
    for name in names:
        if isinstance(rec, dict) and name in rec:
            return rec[name]
        if hasattr(rec, name):
            return getattr(rec, name)
    raise AttributeError(f"random-effect term record {rec!r} has none of {names}")


def _z_sparse(fit: Any) -> Any:
    """Z (n, q) in lme4's column order: ``fit.Z_sparse()``, or built from a one-factor fit."""
    from scipy import sparse

    if hasattr(fit, "Z_sparse"):
        return fit.Z_sparse()
    Zr = np.asarray(fit.Z, dtype=float)
    n, q = Zr.shape
    codes = np.asarray(fit.cluster_codes, dtype=np.int64)
    cols = (codes[:, None] * q + np.arange(q)[None, :]).ravel()
    rows = np.repeat(np.arange(n), q)
    return sparse.csc_matrix((Zr.ravel(), (rows, cols)), shape=(n, q * int(fit.ngroups)))


def design_of(fit: Any, reml: bool | None = None) -> DdfDesign:
    """The :class:`DdfDesign` of an lmer fit (its own criterion unless ``reml`` is given)."""
    reml = fit.REML if reml is None else reml
    Z = _z_sparse(fit)
    try:
        terms = _terms_of(fit)
    except AttributeError:
        if getattr(fit, "re_terms", None) is None or np.ndim(getattr(fit, "Z", 0.0)) != 2:
            raise
        terms = [ReTerm(nc=fit.Z.shape[1], n_levels=int(fit.ngroups), col_start=0, theta_start=0)]
    n_theta = sum(t.n_theta for t in terms)
    n_cols = sum(t.n_cols for t in terms)
    if n_theta != np.size(fit.theta) or n_cols != Z.shape[1]:
        raise ValueError(
            f"the random-effect terms of the fit ({n_theta} theta, {n_cols} columns) do not match "
            f"its theta ({np.size(fit.theta)}) and Z ({Z.shape[1]} columns)."
        )
    return DdfDesign(fit.X, fit.y, Z, terms, reml)
