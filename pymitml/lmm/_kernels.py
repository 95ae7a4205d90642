"""numba kernels of the profiled deviance for one grouping factor.

Model (Bates, Maechler, Bolker & Walker 2015):  y = X beta + Z b + e,  b = Lambda u,
u ~ N(0, sigma^2 I),  e ~ N(0, sigma^2 I),  Lambda = blockdiag(T, ..., T) with T the q x q
lower-triangular relative covariance factor (the elements of T are ``theta``).

With one grouping factor Z'Z is block diagonal, so everything is built from per-cluster
cross-products ``A_j = Z_j'Z_j``, ``Z_j'X_j``, ``Z_j'y_j`` and the global ``X'X``, ``X'y``,
``y'y``; one evaluation costs O(J (q^3 + q^2 p + q p^2) + p^3) and never touches a row.

Per cluster:  M_j = T'A_j T + I = L_j L_j',  P_j = L_j^{-1} T',  R_ZX,j = P_j Z_j'X_j,
c_u,j = P_j Z_j'y_j.  Then  X'V^{-1}X = X'X - sum R_ZX,j'R_ZX,j = L_X L_X'  and
beta = (X'V^{-1}X)^{-1} (X'y - sum R_ZX,j'c_u,j),  r^2 = y'y - sum |c_u,j|^2 - |L_X^{-1}(...)|^2.

Profiled criteria:
    ML:   log|L|^2 + n (1 + log(2 pi r^2 / n))
    REML: log|L|^2 + log|L_X|^2 + (n-p) (1 + log(2 pi r^2 / (n-p)))

Gradient with respect to D = T T' (V_j = I + Z_j D Z_j', Woodbury: Z_j'V_j^{-1} = Z_j' - A_j P_j'P_j Z_j'):
    dML/dD   = sum_j Z_j'V_j^{-1}Z_j - (n/r^2) sum_j w_j w_j',   w_j = Z_j'V_j^{-1}(y_j - X_j beta)
    dREML/dD = sum_j [Z_j'V_j^{-1}Z_j - W_j C W_j'] - ((n-p)/r^2) sum_j w_j w_j',
               W_j = Z_j'V_j^{-1}X_j,  C = (X'V^{-1}X)^{-1};
and d/dT = 2 (dD) T.
"""

from __future__ import annotations

import math

import numpy as np

from .._numba import njit
from ..samplers._linalg import chol_inplace as _chol_lower

LOG_2PI = math.log(2.0 * math.pi)


@njit
def _qt_times(Q, v, out):
    """out = Q'v, each element summed over the rows in order (the same bits whatever the
    number of BLAS threads, unlike a threaded matrix-vector product)."""
    n, p = Q.shape
    for c in range(p):
        out[c] = 0.0
    for i in range(n):
        vi = v[i]
        for c in range(p):
            out[c] += Q[i, c] * vi


@njit
def _subtract_q_times(Q, c, v):
    """v -= Q c in place (row by row)."""
    n, p = Q.shape
    for i in range(n):
        s = 0.0
        for k in range(p):
            s += Q[i, k] * c[k]
        v[i] -= s


@njit
def project_out(Q, y, qty, yc):
    """Split y into its projection on the orthonormal columns of Q and the rest.

    Writes qty (p,) = Q'y and yc (n,) = y - Q Q'y, with one reorthogonalisation pass
    (classical Gram-Schmidt twice), so yc is orthogonal to Q to rounding level.
    """
    p = Q.shape[1]
    corr = np.empty(p)
    yc[:] = y
    _qt_times(Q, yc, qty)
    _subtract_q_times(Q, qty, yc)
    _qt_times(Q, yc, corr)
    _subtract_q_times(Q, corr, yc)
    for c in range(p):
        qty[c] += corr[c]


@njit
def cross_products(X, Z, y, codes, ZtZ, ZtX, Zty, XtX, Xty):
    """Fill zeroed buffers with per-cluster Z'Z, Z'X, Z'y and global X'X, X'y; return y'y.

    X (n, p), Z (n, q), y (n,), codes (n,) int in 0..J-1; ZtZ (J, q, q), ZtX (J, q, p),
    Zty (J, q), XtX (p, p), Xty (p,).
    """
    n, p = X.shape
    q = Z.shape[1]
    yty = 0.0
    for i in range(n):
        j = codes[i]
        yi = y[i]
        for a in range(q):
            za = Z[i, a]
            if za == 0.0:
                continue
            for b in range(q):
                ZtZ[j, a, b] += za * Z[i, b]
            for c in range(p):
                ZtX[j, a, c] += za * X[i, c]
            Zty[j, a] += za * yi
        for a in range(p):
            xa = X[i, a]
            for c in range(a, p):
                XtX[a, c] += xa * X[i, c]
            Xty[a] += xa * yi
        yty += yi * yi
    for a in range(p):
        for c in range(a):
            XtX[a, c] = XtX[c, a]
    return yty


@njit
def pls(T, ZtZ, ZtX, Zty, XtX, Xty, yty, P, RZX, cu, LX, beta):
    """Solve the penalised least-squares problem for one T.

    Writes P (J, q, q), RZX (J, q, p), cu (J, q), LX (p, p: lower Cholesky factor of
    X'V^{-1}X) and beta (p,). Returns (log|L|^2, log|L_X|^2, r^2); log|L|^2 is -inf when a
    factorisation fails (the caller treats that as an infeasible point).
    """
    J, q = Zty.shape
    p = XtX.shape[0]
    AT = np.empty((q, q))
    M = np.empty((q, q))
    for a in range(p):
        for c in range(p):
            LX[a, c] = XtX[a, c]
    xty = Xty.copy()
    logdet = 0.0
    cucu = 0.0
    for j in range(J):
        for a in range(q):
            for b in range(q):
                s = 0.0
                for k in range(q):
                    s += ZtZ[j, a, k] * T[k, b]
                AT[a, b] = s
        for a in range(q):
            for b in range(a + 1):
                s = 0.0
                for k in range(q):
                    s += T[k, a] * AT[k, b]
                M[a, b] = s
                M[b, a] = s
            M[a, a] += 1.0
        if not _chol_lower(M, q):
            return -np.inf, 0.0, 0.0
        for a in range(q):
            logdet += 2.0 * math.log(M[a, a])
        # P = L^{-1} T'  (forward substitution, column by column)
        for col in range(q):
            for a in range(q):
                s = T[col, a]
                for k in range(a):
                    s -= M[a, k] * P[j, k, col]
                P[j, a, col] = s / M[a, a]
        for a in range(q):
            for c in range(p):
                s = 0.0
                for k in range(q):
                    s += P[j, a, k] * ZtX[j, k, c]
                RZX[j, a, c] = s
            s = 0.0
            for k in range(q):
                s += P[j, a, k] * Zty[j, k]
            cu[j, a] = s
            cucu += s * s
        for a in range(p):
            for c in range(a + 1):
                s = 0.0
                for k in range(q):
                    s += RZX[j, k, a] * RZX[j, k, c]
                LX[a, c] -= s
            s = 0.0
            for k in range(q):
                s += RZX[j, k, a] * cu[j, k]
            xty[a] -= s
    for a in range(p):
        for c in range(a):
            LX[c, a] = LX[a, c]
    if not _chol_lower(LX, p):
        return -np.inf, 0.0, 0.0
    logdet_x = 0.0
    cb = np.empty(p)
    for a in range(p):
        logdet_x += 2.0 * math.log(LX[a, a])
        s = xty[a]
        for k in range(a):
            s -= LX[a, k] * cb[k]
        cb[a] = s / LX[a, a]
    r2 = yty - cucu
    for a in range(p):
        r2 -= cb[a] * cb[a]
    for a in range(p - 1, -1, -1):
        s = cb[a]
        for k in range(a + 1, p):
            s -= LX[k, a] * beta[k]
        beta[a] = s / LX[a, a]
    return logdet, logdet_x, r2


@njit
def pls_q1(T, ZtZ, ZtX, Zty, XtX, Xty, yty, P, RZX, cu, LX, beta):
    """:func:`pls` for a scalar random effect (q = 1): the same operations in the same order
    (so the same bits), without the loops over q, about twice as fast."""
    J = Zty.shape[0]
    p = XtX.shape[0]
    t = T[0, 0]
    for a in range(p):
        for c in range(p):
            LX[a, c] = XtX[a, c]
    xty = Xty.copy()
    logdet = 0.0
    cucu = 0.0
    for j in range(J):
        s = 0.0
        s += ZtZ[j, 0, 0] * t
        s2 = 0.0
        s2 += t * s
        m = s2 + 1.0
        if not m > 0.0:
            return -np.inf, 0.0, 0.0
        diag = np.sqrt(m)
        logdet += 2.0 * math.log(diag)
        pj = t / diag
        P[j, 0, 0] = pj
        for c in range(p):
            s = 0.0
            s += pj * ZtX[j, 0, c]
            RZX[j, 0, c] = s
        s = 0.0
        s += pj * Zty[j, 0]
        cu[j, 0] = s
        cuj = s
        cucu += s * s
        for a in range(p):
            ra = RZX[j, 0, a]
            for c in range(a + 1):
                s = 0.0
                s += ra * RZX[j, 0, c]
                LX[a, c] -= s
            s = 0.0
            s += ra * cuj
            xty[a] -= s
    for a in range(p):
        for c in range(a):
            LX[c, a] = LX[a, c]
    if not _chol_lower(LX, p):
        return -np.inf, 0.0, 0.0
    logdet_x = 0.0
    cb = np.empty(p)
    for a in range(p):
        logdet_x += 2.0 * math.log(LX[a, a])
        s = xty[a]
        for k in range(a):
            s -= LX[a, k] * cb[k]
        cb[a] = s / LX[a, a]
    r2 = yty - cucu
    for a in range(p):
        r2 -= cb[a] * cb[a]
    for a in range(p - 1, -1, -1):
        s = cb[a]
        for k in range(a + 1, p):
            s -= LX[k, a] * beta[k]
        beta[a] = s / LX[a, a]
    return logdet, logdet_x, r2


@njit
def criterion(logdet, logdet_x, r2, n, p, reml):
    """lme4's profiled deviance (ML) or REML criterion from the PLS pieces."""
    if reml:
        m = n - p
        return logdet + logdet_x + m * (1.0 + LOG_2PI + math.log(r2 / m))
    return logdet + n * (1.0 + LOG_2PI + math.log(r2 / n))


@njit
def gradient_d(ZtZ, ZtX, Zty, P, RZX, cu, LX, beta, r2, n, reml, G):
    """Gradient of the profiled criterion with respect to D = T T' (q x q, written into G).

    Needs the buffers ``pls`` filled for the same T.
    """
    J, q = Zty.shape
    p = LX.shape[0]
    # C = (L_X L_X')^{-1}
    Linv = np.zeros((p, p))
    for col in range(p):
        for a in range(col, p):
            s = 1.0 if a == col else 0.0
            for k in range(col, a):
                s -= LX[a, k] * Linv[k, col]
            Linv[a, col] = s / LX[a, a]
    C = np.zeros((p, p))
    for a in range(p):
        for b in range(p):
            s = 0.0
            for k in range(max(a, b), p):
                s += Linv[k, a] * Linv[k, b]
            C[a, b] = s
    scale = (n - p if reml else n) / r2
    for a in range(q):
        for b in range(q):
            G[a, b] = 0.0
    ucur = np.empty(q)
    tmp = np.empty(q)
    w = np.empty(q)
    PA = np.empty((q, q))
    PtR = np.empty((q, p))
    W = np.empty((q, p))
    WC = np.empty((q, p))
    for j in range(J):
        _cluster_mode(P, RZX, cu, beta, j, ucur, tmp)
        for a in range(q):
            s = Zty[j, a]
            for c in range(p):
                s -= ZtX[j, a, c] * beta[c]
            for k in range(q):
                s -= ZtZ[j, a, k] * tmp[k]
            w[a] = s
        for a in range(q):
            for b in range(q):
                s = 0.0
                for k in range(q):
                    s += P[j, a, k] * ZtZ[j, k, b]
                PA[a, b] = s
        for a in range(q):
            for b in range(a + 1):
                s = ZtZ[j, a, b] - scale * w[a] * w[b]
                for k in range(q):
                    s -= PA[k, a] * PA[k, b]
                G[a, b] += s
        if reml:
            for a in range(q):
                for c in range(p):
                    s = 0.0
                    for k in range(q):
                        s += P[j, k, a] * RZX[j, k, c]
                    PtR[a, c] = s
            for a in range(q):
                for c in range(p):
                    s = ZtX[j, a, c]
                    for k in range(q):
                        s -= ZtZ[j, a, k] * PtR[k, c]
                    W[a, c] = s
            for a in range(q):
                for c in range(p):
                    s = 0.0
                    for k in range(p):
                        s += W[a, k] * C[k, c]
                    WC[a, c] = s
            for a in range(q):
                for b in range(a + 1):
                    s = 0.0
                    for c in range(p):
                        s += WC[a, c] * W[b, c]
                    G[a, b] -= s
    for a in range(q):
        for b in range(a):
            G[b, a] = G[a, b]


@njit
def gradient_d_q1(ZtZ, ZtX, Zty, P, RZX, cu, LX, beta, r2, n, reml, G):
    """:func:`gradient_d` for q = 1: the same operations in the same order (the same bits)."""
    J = Zty.shape[0]
    p = LX.shape[0]
    Linv = np.zeros((p, p))
    for col in range(p):
        for a in range(col, p):
            s = 1.0 if a == col else 0.0
            for k in range(col, a):
                s -= LX[a, k] * Linv[k, col]
            Linv[a, col] = s / LX[a, a]
    C = np.zeros((p, p))
    for a in range(p):
        for b in range(p):
            s = 0.0
            for k in range(max(a, b), p):
                s += Linv[k, a] * Linv[k, b]
            C[a, b] = s
    scale = (n - p if reml else n) / r2
    g = 0.0
    W = np.empty(p)
    for j in range(J):
        pj = P[j, 0, 0]
        zz = ZtZ[j, 0, 0]
        u = cu[j, 0]
        for c in range(p):
            u -= RZX[j, 0, c] * beta[c]
        t = 0.0
        t += pj * u
        w = Zty[j, 0]
        for c in range(p):
            w -= ZtX[j, 0, c] * beta[c]
        w -= zz * t
        pa = 0.0
        pa += pj * zz
        s = zz - scale * w * w
        s -= pa * pa
        g += s
        if reml:
            for c in range(p):
                s = 0.0
                s += pj * RZX[j, 0, c]
                W[c] = ZtX[j, 0, c] - zz * s
            tot = 0.0
            for c in range(p):
                s = 0.0
                for k in range(p):
                    s += W[k] * C[k, c]
                tot += s * W[c]
            g -= tot
    G[0, 0] = g


@njit
def _cluster_mode(P, RZX, cu, beta, j, ucur, out):
    """out = P_j'(c_u,j - R_ZX,j beta): cluster j's conditional mode (``ucur``: q work values)."""
    q = cu.shape[1]
    p = beta.shape[0]
    for a in range(q):
        s = cu[j, a]
        for c in range(p):
            s -= RZX[j, a, c] * beta[c]
        ucur[a] = s
    for a in range(q):
        s = 0.0
        for k in range(q):
            s += P[j, k, a] * ucur[k]
        out[a] = s


@njit
def random_effects(P, RZX, cu, beta, B):
    """Conditional modes b_j = T u_j = P_j'(c_u,j - R_ZX,j beta), written into B (J, q)."""
    J, q = cu.shape
    ucur = np.empty(q)
    for j in range(J):
        _cluster_mode(P, RZX, cu, beta, j, ucur, B[j])


@njit
def linear_predictor(X, beta, Z, codes, B, out):
    """out_i = x_i'beta + z_i'b_{g(i)} (the conditional fitted values)."""
    n, p = X.shape
    q = Z.shape[1]
    for i in range(n):
        s = 0.0
        for c in range(p):
            s += X[i, c] * beta[c]
        j = codes[i]
        for a in range(q):
            s += Z[i, a] * B[j, a]
        out[i] = s
