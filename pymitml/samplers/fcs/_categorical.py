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
    "draw_categories",
    "fit_work",
    "mlogit_fit",
    "mlogit_probs",
    "poly_contrasts",
    "polr_fit",
    "polr_probs",
]

#: Newton iterations at most, and the step size (max |change| of a parameter) that ends them
MAXIT = 100
TOL = 1e-10


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
def polr_derivatives(X, y, w, par, K, wk):
    """wk.g <- gradient, wk.H <- minus Hessian of the weighted log-likelihood at ``par``.

    For a row in category k with p = F(a) - F(b), a = theta_k - eta, b = theta_{k-1} - eta,
    s_a = F'(a) / p and s_b = F'(b) / p: d log p / d theta_k = s_a, / d theta_{k-1} = -s_b,
    / d beta = -x (s_a - s_b); minus the second derivatives are the products of these first
    derivatives less F''(.) / p in the entries where p's second derivative is not zero."""
    n, p = X.shape
    m = K - 1 + p
    wk.g[:m] = 0.0
    wk.H[:m, :m] = 0.0
    for i in range(n):
        k = y[i]
        pr, fa, fb, da, db = _polr_cell(par, K, _polr_eta(X, i, par, K), k)
        sa, sb, wi = fa / pr, fb / pr, w[i]
        sd = sa - sb
        cb = wi * (sd * sd - (da - db) / pr)  # beta-beta coefficient of x x'
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
            for h in range(j, p):
                wk.H[K - 1 + j, K - 1 + h] += cb * xj * X[i, h]
    _symmetrise(wk.H, m)


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
def polr_fit(X, y, w, K, par, wk):
    """Maximum likelihood of the proportional-odds model from :func:`polr_start` (par is
    overwritten). Returns 0, or 3 when the information matrix is singular."""
    m = K - 1 + X.shape[1]
    polr_start(y, w, K, par)
    ll = polr_loglik(X, y, w, par, K)
    for _ in range(MAXIT):
        polr_derivatives(X, y, w, par, K, wk)
        if not newton_direction(wk, m):
            return 3
        t = 1.0
        while True:
            for a in range(m):
                wk.trial[a] = par[a] + t * wk.d[a]
            ll_t = polr_loglik(X, y, w, wk.trial, K)
            if ll_t >= ll - 1e-12 * abs(ll) or t < 1e-12:
                break
            t *= 0.5
        if not ll_t > -np.inf:
            return 3
        par[:m] = wk.trial[:m]
        ll = ll_t
        if _largest_step(wk.d, t) < TOL:
            break
    return 0


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
def mlogit_derivatives(X, y, w, par, K, wk, pr):
    """wk.g <- sum_i w_i (e_{y_i} - p_i) (x) x_i, wk.H <- sum_i w_i (diag p_i - p_i p_i') (x) x_i
    x_i' (categories 1..K-1; the parameter of category k and predictor j is (k - 1) p + j)."""
    n, p = X.shape
    m = (K - 1) * p
    wk.g[:m] = 0.0
    wk.H[:m, :m] = 0.0
    for i in range(n):
        _mlogit_row(X, i, par, K, pr)
        wi = w[i]
        for k in range(1, K):
            r = (1.0 if y[i] == k else 0.0) - pr[k]
            for j in range(p):
                wk.g[(k - 1) * p + j] += wi * r * X[i, j]
            for c2 in range(k, K):
                c = wi * ((pr[k] if c2 == k else 0.0) - pr[k] * pr[c2])
                for j in range(p):
                    cj = c * X[i, j]
                    a = (k - 1) * p + j
                    b0 = (c2 - 1) * p
                    for h in range(j if c2 == k else 0, p):
                        wk.H[a, b0 + h] += cj * X[i, h]
    _symmetrise(wk.H, m)


@njit
def mlogit_fit(X, y, w, K, par, wk, pr):
    """Maximum likelihood of the multinomial logit from par = 0. Returns 0, or 3 when the
    information matrix is singular."""
    m = (K - 1) * X.shape[1]
    par[:m] = 0.0
    ll = mlogit_loglik(X, y, w, par, K, pr)
    for _ in range(MAXIT):
        mlogit_derivatives(X, y, w, par, K, wk, pr)
        if not newton_direction(wk, m):
            return 3
        t = 1.0
        while True:
            for a in range(m):
                wk.trial[a] = par[a] + t * wk.d[a]
            ll_t = mlogit_loglik(X, y, w, wk.trial, K, pr)
            if ll_t >= ll - 1e-12 * abs(ll) or t < 1e-12:
                break
            t *= 0.5
        if not ll_t > -np.inf:
            return 3
        par[:m] = wk.trial[:m]
        ll = ll_t
        if _largest_step(wk.d, t) < TOL:
            break
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
    mean = np.nanmean(X, axis=0)
    sd = np.nanstd(X, axis=0, ddof=1) if N > 1 else np.zeros(p)
    rows = np.arange(nr)
    col = rows // (2 * k)
    Xa = np.repeat(mean[None, :], nr, axis=0)
    Xa[rows, col] += np.where(rows % 2 == 0, 0.5, -0.5) * sd[col]
    Xa = np.clip(Xa, np.nanmin(X, axis=0), np.nanmax(X, axis=0))
    ya = np.tile(np.repeat(np.asarray(cats, np.int64), 2), p)
    return Xa, ya, np.full(nr, (p + 1.0) / nr)


def poly_contrasts(K: int) -> np.ndarray:
    """R's ``contr.poly(K)``: (K, K - 1) orthonormal polynomial contrasts of scores 1..K (the
    coding of an ordered factor in R's model matrices)."""
    s = np.arange(1.0, K + 1.0)
    V = (s - s.mean())[:, None] ** np.arange(K)[None, :]
    Q, R = np.linalg.qr(V)
    return (Q * np.sign(np.diag(R)))[:, 1:]
