"""Satterthwaite's degrees of freedom for contrasts of an lmer fit, as lmerTest computes them.

Kuznetsova, Brockhoff & Christensen (2017), lmerTest, J. Stat. Softw. 82(13), section 3:
with the variance parameters varpar = (theta, sigma) at the estimate,

    A = 2 H^{-1},  H the Hessian of the deviance (REML, or ML for ML fits) in varpar
        (a Moore-Penrose inverse over the eigenvalues > 1e-8, as lmerTest),
    J_k = d Var(beta) / d varpar_k,  Var(beta) = sigma^2 (X'V^{-1}X)^{-1},

and a contrast l (p,) has  nu = 2 (l'Var(beta) l)^2 / (g'A g),  g_k = l'J_k l.
For a contrast matrix L (m, p) lmerTest's F approach: eigen-decompose L Var(beta) L' = P D P',
the rank-q part gives q independent t-statistics t_j = (P'L beta)_j / sqrt(d_j) with nu_j as
above, F = sum t_j^2 / q, and the denominator df from E = sum nu_j / (nu_j - 2):
2 E / (E - q) (2 if some nu_j <= 2; the mean of nu_j when all are equal).
The derivatives are numDeriv's (:mod:`.ddf_numderiv`), so the numbers match lmerTest's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..exceptions import ConvergenceWarning
from .ddf_design import DdfDesign
from .ddf_numderiv import hessian, jacobian

__all__ = ["SatterthwaiteParts", "satterthwaite_parts", "satterthwaite_1d", "satterthwaite_md"]

#: lmerTest's tolerance on the eigenvalues of the Hessian
EIG_TOL = 1e-8


@dataclass(frozen=True)
class SatterthwaiteParts:
    """Var(beta) (p, p), A = vcov(varpar) (k, k) and the Jacobians J (k, p, p) at the estimate."""

    vcov_beta: np.ndarray
    vcov_varpar: np.ndarray
    jac: np.ndarray


def satterthwaite_parts(design: DdfDesign, varpar: np.ndarray) -> SatterthwaiteParts:
    """lmerTest's ``as_lmerModLT``: the Hessian, its generalised inverse and the Jacobians."""
    varpar = np.asarray(varpar, dtype=float)
    H = hessian(design.deviance, varpar)
    vals, vecs = np.linalg.eigh(H)
    neg, zero = vals < -EIG_TOL, np.abs(vals) < EIG_TOL
    if neg.any():
        warnings.warn(
            f"Model failed to converge with {int(neg.sum())} negative eigenvalue(s) of the "
            f"Hessian of the deviance in (theta, sigma): {_fmt(vals[neg])}",
            ConvergenceWarning,
            stacklevel=4,
        )
    if zero.any():
        warnings.warn(
            f"Model may not have converged with {int(zero.sum())} eigenvalue(s) of the Hessian "
            f"close to zero: {_fmt(vals[zero])}",
            ConvergenceWarning,
            stacklevel=4,
        )
    pos = vals > EIG_TOL
    A = 2.0 * (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
    p = design.p
    J = jacobian(lambda v: design.vcov(v).ravel(), varpar)
    jac = np.moveaxis(J.reshape(p, p, varpar.size), 2, 0)
    return SatterthwaiteParts(design.vcov(varpar), A, jac)


def _fmt(values: np.ndarray) -> str:
    return " ".join(f"{v:.1e}" for v in values[::-1])


def satterthwaite_1d(parts: SatterthwaiteParts, c: np.ndarray) -> tuple[float, float]:
    """(Var(c'beta), nu) of one contrast c (p,)."""
    var = float(c @ parts.vcov_beta @ c)
    g = np.einsum("i,kij,j->k", c, parts.jac, c)
    return var, 2.0 * var**2 / float(g @ parts.vcov_varpar @ g)


def fstat_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """Denominator df of an F built from t-statistics with df ``nu`` (lmerTest's rule)."""
    nu = np.asarray(nu, dtype=float)
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2.0):
        return 2.0
    E = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * E / (E - nu.size)


def satterthwaite_md(
    parts: SatterthwaiteParts, L: np.ndarray, beta: np.ndarray, rhs: np.ndarray
) -> tuple[float, int, float]:
    """(F, numerator df, denominator df) of H0: L beta = rhs (lmerTest's ``contestMD``)."""
    eps = float(np.sqrt(np.finfo(float).eps))
    if np.any(rhs != 0.0):
        beta = beta - np.linalg.pinv(L) @ rhs
    if L.shape[0] == 1:
        var, nu = satterthwaite_1d(parts, L[0])
        return float(L[0] @ beta) ** 2 / var, 1, nu
    vals, vecs = np.linalg.eigh(L @ parts.vcov_beta @ L.T)
    vals, vecs = vals[::-1], vecs[:, ::-1]  # decreasing, as R's eigen
    pos = vals > max(eps * vals[0], 0.0)
    q = int(pos.sum())
    if q == 0:
        raise ValueError("the contrast matrix `L` has rank 0 under Var(beta); nothing to test.")
    PtL = vecs[:, pos].T @ L
    t2 = (PtL @ beta) ** 2 / vals[pos]
    nus = np.array([satterthwaite_1d(parts, row)[1] for row in PtL])
    return float(np.sum(t2) / q), q, fstat_ddf(nus)
