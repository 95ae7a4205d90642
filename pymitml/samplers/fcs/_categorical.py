"""mice's ``polr`` and ``polyreg``: ordered and unordered categories by maximum likelihood.

Models, for a target with K categories coded 0..K-1 and predictors x (no intercept column):

* ``polr`` (proportional odds, as MASS::polr with its logistic link)::

      P(y <= k | x) = F(theta_k - x'beta),   k = 0..K-2,   theta_0 < ... < theta_{K-2},

  F the logistic distribution function; parameters ``par = (theta_0..theta_{K-2}, beta)``.
* ``polyreg`` (multinomial logit, as nnet::multinom), with an intercept in x::

      P(y = k | x) = exp(x'b_k) / sum_l exp(x'b_l),   b_0 = 0;

  parameters ``par = (b_1, ..., b_{K-1})`` laid out category by category.

Both are fitted by Newton's method with step halving on the weighted log-likelihood (concave in
either parametrisation), to the rows where the target is observed plus mice's augmented rows
(:func:`augment`, against perfect prediction). As mice does, the imputations are drawn from the
fitted category probabilities with one uniform per cell (inverse distribution function, no draw of
the parameters). Every kernel has a NumPy reference test in tests/test_fcs_steps.py; the fits
match MASS::polr and nnet::multinom on the same data (tests/test_fcs_r.py).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..._numba import njit
from .._linalg import chol_inplace, solve_lower, solve_lower_t

__all__ = [
    "FitWork",
    "augment",
    "column_summaries",
    "draw_categories",
    "fit_work",
    "mlogit_fit",
    "mlogit_probs",
    "newton_fit",
    "poly_contrasts",
    "polr_fit",
    "polr_probs",
]

#: Newton steps at most, and the step size (max |change| of a parameter) taken as the last one
MAXIT = 100
LAST = 1e-6


class FitWork(NamedTuple):
    """Buffers of one Newton fit with ``n_par`` parameters."""

    g: np.ndarray  # (n_par,) gradient of the log-likelihood
    H: np.ndarray  # (n_par, n_par) minus its Hessian (the observed information)
    L: np.ndarray  # (n_par, n_par) Cholesky factor of H
    d: np.ndarray  # (n_par,) Newton direction
    trial: np.ndarray  # (n_par,) trial parameters of a step


def fit_work(n_par: int) -> FitWork:
    return FitWork(
        np.zeros(n_par),
        np.zeros((n_par, n_par)),
        np.zeros((n_par, n_par)),
        np.zeros(n_par),
        np.zeros(n_par),
    )


# ----------------------------------------------------------------------------- shared steps


@njit
def _expit(t):
    if t >= 0.0:
        return 1.0 / (1.0 + math.exp(-t))
    e = math.exp(t)
    return e / (1.0 + e)


@njit
def newton_direction(wk, n):
    """wk.d <- wk.H^-1 wk.g through the Cholesky factor of H (a relative ridge of 1e-10 on the
    diagonal if H is not numerically positive definite). False if even that fails."""
    for attempt in range(2):
        for a in range(n):
            for b in range(n):
                wk.L[a, b] = wk.H[a, b]
        if attempt == 1:
            for a in range(n):
                wk.L[a, a] += 1e-10 * max(abs(wk.H[a, a]), 1e-300)
        if chol_inplace(wk.L, n):
            for a in range(n):
                wk.d[a] = wk.g[a]
            solve_lower(wk.L, wk.d, n)
            solve_lower_t(wk.L, wk.d, n)
            return True
    return False


@njit
def _symmetrise(H, n):
    for a in range(n):
        for b in range(a):
            H[a, b] = H[b, a]


@njit
def _largest_step(d, t):
    s = 0.0
    for a in range(len(d)):
        s = max(s, abs(t * d[a]))
    return s


# ----------------------------------------------------------------------------- polr


@njit
def _polr_cell(par, K, eta, k):
    """(P(y = k), F'(upper), F'(lower), F''(upper), F''(lower)) at the linear predictor eta;
    the bounds of category k are theta_k (none for k = K - 1) and theta_{k-1} (none for 0)."""
    fa = fb = da = db = 0.0
    Fa, Fb = 1.0, 0.0
    up, lo = 0.0, 1.0  # 1 - F at the bounds: P(y > k), P(y > k - 1), accurate in the upper tail
    if k < K - 1:
        Fa = _expit(par[k] - eta)
        up = _expit(eta - par[k])
        fa = Fa * up
        da = fa * (up - Fa)
    if k > 0:
        Fb = _expit(par[k - 1] - eta)
        lo = _expit(eta - par[k - 1])
        fb = Fb * lo
        db = fb * (lo - Fb)
    pr = Fa - Fb if Fb < 0.5 else lo - up
    return pr, fa, fb, da, db


@njit
def _polr_eta(X, i, par, K):
    s = 0.0
    for j in range(X.shape[1]):
        s += X[i, j] * par[K - 1 + j]
    return s


@njit
def polr_loglik(X, y, w, par, K):
    """Weighted log-likelihood of the proportional-odds model (-inf outside its domain)."""
    for k in range(1, K - 1):
        if not par[k] > par[k - 1]:
            return -np.inf
    ll = 0.0
    for i in range(X.shape[0]):
        pr = _polr_cell(par, K, _polr_eta(X, i, par, K), y[i])[0]
        if not pr > 0.0:
            return -np.inf
        ll += w[i] * math.log(pr)
    return ll


@njit
def weighted_gram(X, c, H, r0, c0):
    """H[r0:r0+p, c0:c0+p] += X' diag(c) X (its upper triangle only when r0 == c0, a diagonal
    block of a symmetric H)."""
    n, p = X.shape
    G = np.zeros((p, p))
    diag = r0 == c0
    for i in range(n):
        ci = c[i]
        for j in range(p):
            v = ci * X[i, j]
            for h in range(j if diag else 0, p):
                G[j, h] += v * X[i, h]
    for j in range(p):
        for h in range(j if diag else 0, p):
            H[r0 + j, c0 + h] += G[j, h]


@njit
def polr_derivatives(X, y, w, par, K, wk):
    """wk.g <- gradient, wk.H <- minus Hessian of the weighted log-likelihood at ``par``;
    returns the log-likelihood (-inf outside the domain, g and H then undefined).

    For a row in category k with p = F(a) - F(b), a = theta_k - eta, b = theta_{k-1} - eta,
    s_a = F'(a) / p and s_b = F'(b) / p: d log p / d theta_k = s_a, / d theta_{k-1} = -s_b,
    / d beta = -x (s_a - s_b); minus the second derivatives are the products of these first
    derivatives less F''(.) / p in the entries where p's second derivative is not zero."""
    n, p = X.shape
    m = K - 1 + p
    wk.g[:m] = 0.0
    wk.H[:m, :m] = 0.0
    for k in range(1, K - 1):
        if not par[k] > par[k - 1]:
            return -np.inf
    cb = np.empty(n)  # beta-beta coefficient of x x' per row
    ll = 0.0
    for i in range(n):
        k = y[i]
        pr, fa, fb, da, db = _polr_cell(par, K, _polr_eta(X, i, par, K), k)
        if not pr > 0.0:
            return -np.inf
        sa, sb, wi = fa / pr, fb / pr, w[i]
        ll += wi * math.log(pr)
        sd = sa - sb
        cb[i] = wi * (sd * sd - (da - db) / pr)
        ca = wi * (da / pr - sa * sd)  # theta_k-beta coefficient of x
        cl = wi * (sb * sd - db / pr)  # theta_{k-1}-beta coefficient of x
        if k < K - 1:
            wk.g[k] += wi * sa
            wk.H[k, k] += wi * (sa * sa - da / pr)
        if k > 0:
            wk.g[k - 1] -= wi * sb
            wk.H[k - 1, k - 1] += wi * (sb * sb + db / pr)
        if 0 < k < K - 1:
            wk.H[k - 1, k] -= wi * sa * sb
        for j in range(p):
            xj = X[i, j]
            wk.g[K - 1 + j] -= wi * xj * sd
            if k < K - 1:
                wk.H[k, K - 1 + j] += ca * xj
            if k > 0:
                wk.H[k - 1, K - 1 + j] += cl * xj
    weighted_gram(X, cb, wk.H, K - 1, K - 1)
    _symmetrise(wk.H, m)
    return ll


@njit
def polr_start(y, w, K, par):
    """theta_k = logit of the weighted share of categories <= k, beta = 0 (the fit without
    predictors): a point inside the domain."""
    tot = np.zeros(K)
    for i in range(len(y)):
        tot[y[i]] += w[i]
    s, c = tot.sum(), 0.0
    for k in range(K - 1):
        c += tot[k]
        q = min(max(c / s, 1e-8), 1.0 - 1e-8)
        par[k] = math.log(q / (1.0 - q))
    for k in range(1, K - 1):  # an empty category would tie two thresholds
        if par[k] <= par[k - 1]:
            par[k] = par[k - 1] + 1e-3
    par[K - 1 :] = 0.0


@njit
def polr_fit(X, y, w, K, par, wk, warm):
    """Maximum likelihood of the proportional-odds model (:func:`newton_fit`), from ``par`` if
    ``warm``, else from :func:`polr_start`. Returns 0, or 3 when the fit fails."""
    return newton_fit(0, X, y, w, K, par, wk, np.empty(K), warm)


@njit
def polr_probs(X, par, K, P):
    """P[i, k] <- P(y_i = k) of the proportional-odds model."""
    for i in range(X.shape[0]):
        eta = _polr_eta(X, i, par, K)
        for k in range(K):
            P[i, k] = _polr_cell(par, K, eta, k)[0]


# ----------------------------------------------------------------------------- multinom


@njit
def _mlogit_row(X, i, par, K, pr):
    """pr[k] <- P(y_i = k) of the multinomial logit (category 0 the baseline)."""
    p = X.shape[1]
    mx = 0.0
    pr[0] = 0.0
    for k in range(1, K):
        s = 0.0
        for j in range(p):
            s += X[i, j] * par[(k - 1) * p + j]
        pr[k] = s
        mx = max(mx, s)
    tot = 0.0
    for k in range(K):
        pr[k] = math.exp(pr[k] - mx)
        tot += pr[k]
    for k in range(K):
        pr[k] /= tot


@njit
def mlogit_loglik(X, y, w, par, K, pr):
    ll = 0.0
    for i in range(X.shape[0]):
        _mlogit_row(X, i, par, K, pr)
        if not pr[y[i]] > 0.0:
            return -np.inf
        ll += w[i] * math.log(pr[y[i]])
    return ll


@njit
def _row_products(X, i, xx):
    """xx <- the products x_ij x_ih, j <= h, of row i (the upper triangle of x_i x_i')."""
    p = X.shape[1]
    t = 0
    for j in range(p):
        xj = X[i, j]
        for h in range(j, p):
            xx[t] = xj * X[i, h]
            t += 1


@njit
def _scatter_blocks(acc, K, p, H):
    """H <- the symmetric matrix whose (k, l) block of order p (k <= l, categories 1..K-1) has
    the upper triangle acc[b] (b counting the pairs k <= l); every block is symmetric."""
    b = 0
    for k in range(K - 1):
        for c2 in range(k, K - 1):
            t = 0
            for j in range(p):
                for h in range(j, p):
                    v = acc[b, t]
                    H[k * p + j, c2 * p + h] = v
                    H[k * p + h, c2 * p + j] = v
                    t += 1
            b += 1
    _symmetrise(H, (K - 1) * p)


@njit
def mlogit_derivatives(X, y, w, par, K, wk, pr):
    """wk.g <- sum_i w_i (e_{y_i} - p_i) (x) x_i, wk.H <- sum_i w_i (diag p_i - p_i p_i') (x) x_i
    x_i' (categories 1..K-1; the parameter of category k and predictor j is (k - 1) p + j);
    returns the log-likelihood. One pass over the rows: each row's products x_i x_i' are formed
    once and added to every block with its weight w_i (p_ik [k = l] - p_ik p_il)."""
    n, p = X.shape
    m = (K - 1) * p
    wk.g[:m] = 0.0
    nb = (K - 1) * K // 2
    acc = np.zeros((nb, p * (p + 1) // 2))
    xx = np.empty(p * (p + 1) // 2)
    cc = np.empty(nb)
    ll = 0.0
    for i in range(n):
        _mlogit_row(X, i, par, K, pr)
        wi = w[i]
        if not pr[y[i]] > 0.0:
            return -np.inf
        ll += wi * math.log(pr[y[i]])
        b = 0
        for k in range(1, K):
            r = wi * ((1.0 if y[i] == k else 0.0) - pr[k])
            for j in range(p):
                wk.g[(k - 1) * p + j] += r * X[i, j]
            for c2 in range(k, K):
                cc[b] = wi * ((pr[k] if c2 == k else 0.0) - pr[k] * pr[c2])
                b += 1
        _row_products(X, i, xx)
        for b in range(nb):
            cb = cc[b]
            for t in range(len(xx)):
                acc[b, t] += cb * xx[t]
    _scatter_blocks(acc, K, p, wk.H)
    return ll


@njit
def mlogit_fit(X, y, w, K, par, wk, pr, warm):
    """Maximum likelihood of the multinomial logit (:func:`newton_fit`), from ``par`` if
    ``warm``, else from par = 0. Returns 0, or 3 when the fit fails."""
    return newton_fit(1, X, y, w, K, par, wk, pr, warm)


@njit
def _derivatives(kind, X, y, w, par, K, wk, pr):
    if kind == 0:
        return polr_derivatives(X, y, w, par, K, wk)
    return mlogit_derivatives(X, y, w, par, K, wk, pr)


@njit
def _start(kind, y, w, K, par, m):
    if kind == 0:
        polr_start(y, w, K, par)
    else:
        par[:m] = 0.0


@njit
def newton_fit(kind, X, y, w, K, par, wk, pr, warm):
    """Newton's method with step halving for the proportional-odds (kind 0) or multinomial
    (kind 1) log-likelihood, from ``par`` if ``warm`` (a previous fit: the optimum is unique,
    so only the number of steps changes) else from the model's start. One pass over the rows
    per step: the derivatives at a trial point give its log-likelihood too. A step shorter than
    ``LAST`` is taken unchecked and ends the fit (the next would be ~ its square); a fit stops
    also when a step halved to 1e-12 cannot raise the likelihood (it is at the optimum to
    rounding). Returns 0, or 3 when the information matrix is singular."""
    m = K - 1 + X.shape[1] if kind == 0 else (K - 1) * X.shape[1]
    if not warm:
        _start(kind, y, w, K, par, m)
    ll = _derivatives(kind, X, y, w, par, K, wk, pr)
    if not ll > -np.inf:
        _start(kind, y, w, K, par, m)
        ll = _derivatives(kind, X, y, w, par, K, wk, pr)
        if not ll > -np.inf:
            return 3
    for _ in range(MAXIT):
        if not newton_direction(wk, m):
            return 3
        if _largest_step(wk.d, 1.0) < LAST:
            for a in range(m):
                par[a] += wk.d[a]
            return 0
        t = 1.0
        while True:
            for a in range(m):
                wk.trial[a] = par[a] + t * wk.d[a]
            ll_t = _derivatives(kind, X, y, w, wk.trial, K, wk, pr)
            if ll_t >= ll - 1e-12 * abs(ll):
                break
            t *= 0.5
            if t < 1e-12:
                return 0
        par[:m] = wk.trial[:m]
        ll = ll_t
    return 0


@njit
def mlogit_probs(X, par, K, P):
    """P[i, :] <- the category probabilities of the multinomial logit."""
    pr = np.empty(K)
    for i in range(X.shape[0]):
        _mlogit_row(X, i, par, K, pr)
        for k in range(K):
            P[i, k] = pr[k]


# ----------------------------------------------------------------------------- draws, data


@njit
def draw_categories(P, u, out):
    """out[i] <- the number of k with u[i] > P[i, 0] + ... + P[i, k] (mice's inverse-cdf draw
    with one uniform per cell), at most K - 1."""
    K = P.shape[1]
    for i in range(P.shape[0]):
        c, idx = 0.0, 0
        for k in range(K):
            c += P[i, k]
            if u[i] > c:
                idx += 1
        out[i] = min(idx, K - 1)


@njit
def column_summaries(X, S):
    """S[:, j] <- mean, standard deviation (n - 1), minimum and maximum of the non-NaN cells
    of column j (NaN for a column without cells; standard deviation 0 with one)."""
    n, p = X.shape
    for j in range(p):
        cnt, tot, lo, hi = 0, 0.0, np.inf, -np.inf
        for i in range(n):
            v = X[i, j]
            if not np.isnan(v):
                cnt += 1
                tot += v
                lo, hi = min(lo, v), max(hi, v)
        mean = tot / cnt if cnt else np.nan
        ss = 0.0
        for i in range(n):
            v = X[i, j]
            if not np.isnan(v):
                ss += (v - mean) * (v - mean)
        S[0, j] = mean
        S[1, j] = math.sqrt(ss / (cnt - 1)) if cnt > 1 else (0.0 if cnt else np.nan)
        S[2, j] = lo if cnt else np.nan
        S[3, j] = hi if cnt else np.nan


def augment(X: np.ndarray, cats: np.ndarray, n_not_fitted: int):
    """mice's augmentation against perfect prediction: for every predictor column j and every
    category c present, two rows with x_j at its mean +- half its standard deviation (clipped to
    its range) and the other columns at their means, weight (p + 1) / (2 p k) each, where p is
    the number of columns and k of categories.

    ``X`` (N, p): the predictors of every row (observed or not; NaN cells are left out of the
    column summaries, as mice's ``na.rm``); ``cats``: the categories present
    (sorted codes); ``n_not_fitted``: rows outside the fit (mice skips the augmentation when there
    is exactly one, or no predictor). Returns (X_aug, y_aug, w_aug)."""
    N, p = X.shape
    k = len(cats)
    if p == 0 or n_not_fitted == 1:
        return np.zeros((0, p)), np.zeros(0, np.int64), np.zeros(0)
    nr = 2 * p * k
    S = np.empty((4, p))
    column_summaries(X, S)
    mean, sd, lo, hi = S
    rows = np.arange(nr)
    col = rows // (2 * k)
    Xa = np.repeat(mean[None, :], nr, axis=0)
    Xa[rows, col] += np.where(rows % 2 == 0, 0.5, -0.5) * sd[col]
    Xa = np.clip(Xa, lo, hi)
    ya = np.tile(np.repeat(np.asarray(cats, np.int64), 2), p)
    return Xa, ya, np.full(nr, (p + 1.0) / nr)


def poly_contrasts(K: int) -> np.ndarray:
    """R's ``contr.poly(K)``: (K, K - 1) orthonormal polynomial contrasts of scores 1..K (the
    coding of an ordered factor in R's model matrices)."""
    s = np.arange(1.0, K + 1.0)
    V = (s - s.mean())[:, None] ** np.arange(K)[None, :]
    Q, R = np.linalg.qr(V)
    return (Q * np.sign(np.diag(R)))[:, 1:]
