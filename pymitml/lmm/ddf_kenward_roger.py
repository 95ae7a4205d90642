"""Kenward-Roger: adjusted Var(beta) and denominator df, as pbkrtest computes them.

Kenward & Roger (1997); Halekoh & Hojsgaard (2014), pbkrtest, J. Stat. Softw. 59(9), section 4.
The marginal covariance is linear in the variance parameters gamma (the elements of each
term's covariance matrix, lower triangle by columns, then sigma^2):

    Sigma = sum_r gamma_r G_r,  G_r = Z E_r Z' (E_r = I_levels (x) (e_i e_j' + e_j e_i') in the
    term's block, or e_i e_i' for a variance), G_residual = I.

With Phi = (X'Sigma^{-1}X)^{-1} (the REML Var(beta)):

    P_r = -X'Sigma^{-1} G_r Sigma^{-1} X,   Q_rs = X'Sigma^{-1} G_r Sigma^{-1} G_s Sigma^{-1} X,
    I_rs = tr(Sigma^{-1} G_r Sigma^{-1} G_s) - 2 tr(Phi Q_rs) + tr(Phi P_r Phi P_s),
    W = 2 I^{-1},  U = sum_rs W_rs (Q_rs - P_r Phi P_s),  Phi_A = Phi + 2 Phi U Phi.

For a contrast matrix L (q rows), Theta = L'(L Phi L')^{-1} L and
A1 = sum_rs W_rs tr(Theta Phi P_r Phi) tr(Theta Phi P_s Phi),
A2 = sum_rs W_rs tr(Theta Phi P_r Phi Theta Phi P_s Phi) give the denominator df m and the
F scaling lambda (pbkrtest's ``.KR_adjust``); F = lambda (L b)'(L Phi_A L')^{-1}(L b) / q.

pbkrtest builds the n x n matrices Sigma^{-1} G_r; here every n x n product is reduced through
Sigma^{-1} = sigma^{-2} (I - Z K Z'), K = Lambda A^{-1} Lambda', to q x q and q x p matrices
(q = number of random effects), so the cost is O(n p q + q^3) and n does not enter squared.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .ddf_design import DdfDesign

__all__ = ["KR_MAX_Q", "KenwardRoger", "kenward_roger", "kr_adjust"]

#: above this many random effects the dense q x q work of Kenward-Roger is refused
KR_MAX_Q = 4000


@dataclass(frozen=True)
class KenwardRoger:
    """Phi (REML Var(beta)), Phi_A (adjusted), the P_r matrices (k, p, p) and W (k, k)."""

    phi: np.ndarray
    phi_adj: np.ndarray
    P: np.ndarray
    W: np.ndarray


def _gamma_pairs(design: DdfDesign) -> list[tuple[np.ndarray, np.ndarray]]:
    """For each term parameter: the (row, col) index pairs of E_r in Z's column space."""
    pairs = []
    for t in design.terms:
        base = t.col_start + t.nc * np.arange(t.n_levels)
        for c in range(t.nc):
            for r in range(c, t.nc):
                if r == c:
                    a, b = base + r, base + r
                else:
                    a, b = np.r_[base + r, base + c], np.r_[base + c, base + r]
                pairs.append((a, b))
    return pairs


def _reduced(design: DdfDesign, theta: np.ndarray, sigma: float) -> dict[str, np.ndarray]:
    """Sigma^{-1} products reduced to q x q / q x p / p x p matrices (see module docstring)."""
    L, lu, _ = design.factor(theta)
    s2 = sigma * sigma
    Ld = L.toarray()
    K = Ld @ lu.solve(np.ascontiguousarray(Ld.T))  # Lambda A^{-1} Lambda'
    K = 0.5 * (K + K.T)
    Z, S, X = design.Z, design.S, design.X

    def sinv(B: np.ndarray) -> np.ndarray:  # Sigma^{-1} B for B (n, m)
        return (B - Z @ (K @ np.asarray(Z.T @ B))) / s2

    TT = sinv(X)  # Sigma^{-1} X
    T2 = sinv(TT)  # Sigma^{-2} X
    Sd = S.toarray()
    SK = Sd @ K
    N = Sd - SK @ Sd  # sigma^2 Z'Sigma^{-1}Z
    N = 0.5 * (N + N.T)
    M = N / s2
    M2 = (N - N @ SK.T) / s2**2  # Z'Sigma^{-2}Z (K S = (S K)')
    trV2 = (design.n - 2.0 * float(np.trace(SK)) + float(np.sum(SK * SK.T))) / s2**2
    return {
        "TT": TT,
        "F": np.asarray(Z.T @ TT),
        "F2": np.asarray(Z.T @ T2),
        "M": M,
        "M2": 0.5 * (M2 + M2.T),
        "XV2X": TT.T @ TT,
        "XV3X": TT.T @ T2,
        "trV2": np.array(trV2),
    }


def kenward_roger(design: DdfDesign, theta: np.ndarray, sigma: float) -> KenwardRoger:
    """pbkrtest's ``vcovAdj`` at the REML estimates (theta, sigma)."""
    if not design.reml:
        raise ValueError("Kenward-Roger needs a REML fit; refit with `fit.refit(REML=True)`.")
    if design.q > KR_MAX_Q:
        raise ValueError(
            f"Kenward-Roger works with dense q x q matrices and this model has q = {design.q} "
            f"random effects (limit {KR_MAX_Q}); use ddf='Satterthwaite'."
        )
    red = _reduced(design, np.asarray(theta, dtype=float), float(sigma))
    F, F2, M, M2 = red["F"], red["F2"], red["M"], red["M2"]
    pairs = _gamma_pairs(design)
    k = len(pairs) + 1
    p = design.p
    phi = np.linalg.inv(design.X.T @ red["TT"])
    phi = 0.5 * (phi + phi.T)
    P = np.empty((k, p, p))
    for r, (a, b) in enumerate(pairs):
        P[r] = -F[a].T @ F[b]
    P[-1] = -red["XV2X"]
    P = 0.5 * (P + np.transpose(P, (0, 2, 1)))
    Q = np.empty((k, k, p, p))
    Kt = np.empty((k, k))
    for r, (a, b) in enumerate(pairs):
        for s, (c, d) in enumerate(pairs):
            Mbc = M[np.ix_(b, c)]
            Q[r, s] = F[a].T @ Mbc @ F[d]
            Kt[r, s] = float(np.sum(Mbc * M[np.ix_(d, a)].T))
        Q[r, -1] = F[a].T @ F2[b]
        Q[-1, r] = Q[r, -1].T
        Kt[r, -1] = Kt[-1, r] = float(np.sum(M2[b, a]))
    Q[-1, -1] = red["XV3X"]
    Kt[-1, -1] = float(red["trV2"])
    PhiP = np.einsum("ij,rjk->rik", phi, P)  # Phi P_r
    IE2 = Kt - 2.0 * np.einsum("ij,rsji->rs", phi, Q) + np.einsum("rij,sji->rs", PhiP, PhiP)
    IE2 = 0.5 * (IE2 + IE2.T)
    ev = np.linalg.eigvalsh(IE2)
    W = 2.0 * (np.linalg.inv(IE2) if np.min(np.abs(ev)) > 1e-10 else np.linalg.pinv(IE2))
    W = 0.5 * (W + W.T)
    PPhiP = np.einsum("rij,sjk->rsik", P, PhiP)  # P_r Phi P_s
    U = np.einsum("rs,rsij->ij", W, Q - PPhiP)
    U = 0.5 * (U + U.T)
    phi_adj = phi + 2.0 * phi @ U @ phi
    return KenwardRoger(phi, 0.5 * (phi_adj + phi_adj.T), P, W)


def kr_adjust(kr: KenwardRoger, L: np.ndarray) -> tuple[float, float, float, float]:
    """(ddf, F scaling, A1, A2) of the contrast matrix L (q, p): pbkrtest's ``.KR_adjust``."""
    phi = kr.phi
    q = int(np.linalg.matrix_rank(L))
    Theta = L.T @ np.linalg.solve(L @ phi @ L.T, L)
    TP = Theta @ phi
    u = np.einsum("ij,rjk,kl->ril", TP, kr.P, phi)  # Theta Phi P_r Phi
    tr = np.einsum("rii->r", u)
    A1 = float(tr @ kr.W @ tr)
    A2 = float(np.einsum("rs,rij,sji->", kr.W, u, u))
    B = (A1 + 6.0 * A2) / (2.0 * q)
    g = ((q + 1) * A1 - (q + 4) * A2) / ((q + 2) * A2)
    den = 3.0 * q + 2.0 * (1.0 - g)
    c1, c2, c3 = g / den, (q - g) / den, (q + 2 - g) / den
    V0 = 1.0 + c1 * B
    V0 = 0.0 if abs(V0) < 1e-10 else V0
    V1, V2 = 1.0 - c2 * B, 1.0 - c3 * B
    x, y = 1.0 - A2 / q, V1
    ratio = 1.0 if (abs(x) < 1e-14 and abs(y) < 1e-14) else x / y
    rho = ratio**2 * V0 / V2 / q
    ddf = 4.0 + (q + 2) / (q * rho - 1.0)
    scaling = 1.0 if abs(ddf - 2.0) < 0.01 else ddf * (1.0 - A2 / q) / (ddf - 2.0)
    return ddf, scaling, A1, A2
