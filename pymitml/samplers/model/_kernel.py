"""The model-based sampler's kernel: a short composition of named steps over plain arrays.

State (rows sorted by cluster; cluster j is rows ``start[j]:start[j+1]``):

* ``V`` (n, K): the current value of every variable in every row (observed or imputed; a
  categorical variable holds its category code, a level-2 variable the same value in all rows of
  a cluster);
* models m = 0..M-1 (0 is the focal model, then the predictor models in factored order, then the
  selection models), each a regression of one response on design columns that are products of
  powers (or category indicators) of columns of V:

      kind 0 linear:    v_r = x_r' beta + z_r' b_j + e_r,     e_r ~ N(0, s2)
      kind 1 probit:    category of v_r from a latent N(x_r' beta + z_r' b_j, 1) and thresholds
      kind 2 selection: missingness indicator of v_r from a latent N(x_r' beta, 1) (Albert-Chib)
      kind 4 nominal:   one sub-model per category k = 1..K-1 of a nominal v_r: utilities
                        u_rk = x_r' beta_k + e_rk, e_r ~ N(0, Sigma) (unit variances, correlation
                        RHO); v_r = 0 when every u_rk < 0, else the k of the largest

  level-1 models have one row per data row and random effects b_j; level-2 models one row per
  cluster and none. Each model's parameters are drawn by the shared steps of :mod:`.._ranef`.

One iteration: (1) designs and responses refreshed from V; (2) ordinal thresholds (Cowles'
Metropolis-Hastings step) and latent normals of the probit models; (3) each model's (beta, b), residual variance and Psi; (4) each incomplete variable's
missing values from their full conditional, the product of the likelihoods of every model that
uses the variable (its own regression, the focal model, later factored regressions, selection
models): categorical values exactly over their categories, an outcome that only its own model
uses exactly from that model, every other continuous value by random-walk Metropolis
(:mod:`.._metropolis`) with its proposal scale adapted during burn-in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..._numba import njit
from .._metropolis import adapt_scales, mh_accept, rw_proposal
from .._ranef import RcData, draw_beta_b, draw_psi, draw_residual_variance, residual_ss
from .._truncnorm import norm_cdf, truncnorm_rng

__all__ = ["MbData", "MbModels", "MbPars", "MbTune", "iterate"]

_LOG_SQRT2PI = 0.5 * math.log(2.0 * math.pi)

#: correlation of a nominal variable's latent utilities (fixed for identification, as jomo's)
RHO = 0.5


class MbData(NamedTuple):
    """Variables and the design-column table (cluster-sorted rows)."""

    V: np.ndarray  # (n, K) current values (category codes for categorical variables)
    R: np.ndarray  # (n, K) int64 1 = missing in the data
    clus: np.ndarray  # (n,) int64 cluster of each row
    start: np.ndarray  # (J + 1,) int64 cluster starts
    rep: np.ndarray  # (J,) int64 first row of each cluster
    lev: np.ndarray  # (K, L) numeric value of each category (categorical variables)
    ncat: np.ndarray  # (K,) int64 categories (0: continuous)
    fvar: np.ndarray  # (C, F) int64 variable of each factor of each design column (-1: none)
    fpow: np.ndarray  # (C, F) int64 power (> 0) or -k: indicator of category k
    mis_idx: np.ndarray  # (T,) int64 missing rows (level 1) / clusters (level 2) per variable
    mis_start: np.ndarray  # (K + 1,) int64
    order: np.ndarray  # (Ki,) int64 the incomplete variables, in imputation order
    cen: np.ndarray  # (K,) int64 the cluster-mean variable of each variable (-1: none)
    U: np.ndarray  # (n, D) latent utilities of the nominal variables' categories 1..K-1


class MbModels(NamedTuple):
    """Which variable each model explains, how, and which variables it uses."""

    resp: np.ndarray  # (M,) int64 response variable
    kind: np.ndarray  # (M,) int64 0 linear, 1 probit, 2 selection probit
    level: np.ndarray  # (M,) int64 1 or 2
    xc: np.ndarray  # (M, 2) int64 fixed-effect columns [xc0, xc1) of the column table
    zc: np.ndarray  # (M, 2) int64 random-effect columns
    uses: np.ndarray  # (M, K) int64 1 when the model's likelihood depends on the variable
    thr: np.ndarray  # (M, L + 1) thresholds of probit models (-inf, 0, ..., inf)
    vlevel: np.ndarray  # (K,) int64 level of each variable
    own: np.ndarray  # (K,) int64 the model whose response the variable is (-1: none)
    direct: np.ndarray  # (K,) int64 1: drawn exactly from its own linear model
    off: np.ndarray  # (M,) int64 offset variable of a linear model's response (-1: none)
    obsm: np.ndarray  # (K,) int64 the observed-cluster-mean variable of an incomplete one (-1)
    dim: np.ndarray  # (M,) int64 kind 4 (nominal): the category 1..K-1 of this sub-model
    ucol: np.ndarray  # (M,) int64 kind 4: its column of U
    rrows: np.ndarray  # (T,) int64 rows of each model whose design or response can change
    rstart: np.ndarray  # (M + 1,) int64 model m's rows are rrows[rstart[m]:rstart[m + 1]]


class MbPars(NamedTuple):
    """Every model's current coefficients in plain arrays (copied from the shared steps'
    parameter bundles once per iteration) for the per-cell likelihoods."""

    beta: np.ndarray  # (M, pmax)
    b: np.ndarray  # (M, J, qmax)
    s2: np.ndarray  # (M,)


class MbTune(NamedTuple):
    """Metropolis multipliers and acceptance counts per variable; ``ctrl`` = [iterations done,
    adapting (1/0), adaptation window, target rate, gain]."""

    scale: np.ndarray  # (K,)
    win_acc: np.ndarray  # (K,)
    win_try: np.ndarray  # (K,)
    acc: np.ndarray  # (2, K) accepted proposals: burn-in, after burn-in
    tries: np.ndarray  # (2, K)
    ctrl: np.ndarray  # (5,)


@njit(nrt=False)
def factor_value(d, row, c, f):
    """Value of factor f of design column c at ``row``."""
    v = d.fvar[c, f]
    pw = d.fpow[c, f]
    x = d.V[row, v]
    if pw < 0:
        return 1.0 if int(x) == -pw else 0.0
    if pw > 100:  # centred at the cluster mean (latent or observed)
        x -= d.V[row, d.cen[v]]
        pw -= 100
        return x if pw == 1 else x**pw
    if d.ncat[v] > 0:
        x = d.lev[v, int(x)]
    return x if pw == 1 else x**pw


@njit(nrt=False)
def design_row(d, row, c0, c1, out):
    """out[:c1 - c0] <- design columns c0..c1-1 at ``row`` (products of their factors)."""
    for c in range(c0, c1):
        s = 1.0
        for f in range(d.fvar.shape[1]):
            if d.fvar[c, f] < 0:
                break
            s *= factor_value(d, row, c, f)
        out[c - c0] = s


@njit(nrt=False)
def log_ndtr(x):
    """log Phi(x), accurate far in the lower tail."""
    if x > -30.0:  # erfc keeps its relative accuracy in the lower tail
        return math.log(norm_cdf(x))
    # asymptotic series of the Mills ratio (relative error < 1e-9 below -30)
    x2 = x * x
    s = 1.0 - 1.0 / x2 + 3.0 / (x2 * x2) - 15.0 / (x2 * x2 * x2)
    return -0.5 * x2 - _LOG_SQRT2PI - math.log(-x) + math.log(s)


@njit(nrt=False)
def log_interval(lo, hi, eta):
    """log(Phi(hi - eta) - Phi(lo - eta)), computed on the side away from 1."""
    a, b = lo - eta, hi - eta
    if a > 0.0:  # both in the upper tail: use the mirror image
        a, b = -b, -a
    if b == math.inf:
        return log_ndtr(-a)
    if a == -math.inf:
        return log_ndtr(b)
    pa, pb = norm_cdf(a), norm_cdf(b)
    if pb - pa > 1e-300:
        return math.log(pb - pa)
    return log_ndtr(b) + math.log(max(-math.expm1(log_ndtr(a) - log_ndtr(b)), 1e-300))


@njit(nrt=False)
def eta_row(d, mo, pv, m, r, xr, zr):
    """Linear predictor of model m at its row r (a data row or, level 2, a cluster)."""
    row = r if mo.level[m] == 1 else d.rep[r]
    x0, x1 = mo.xc[m, 0], mo.xc[m, 1]
    z0, z1 = mo.zc[m, 0], mo.zc[m, 1]
    design_row(d, row, x0, x1, xr)
    e = 0.0
    for k in range(x1 - x0):
        e += xr[k] * pv.beta[m, k]
    if z1 > z0:
        design_row(d, row, z0, z1, zr)
        j = d.clus[row]
        for k in range(z1 - z0):
            e += zr[k] * pv.b[m, j, k]
    return e


@njit(nrt=False, inline="always")
def row_loglik(d, mo, pv, m, r, xr, zr):
    """log-likelihood of model m's response at its row r given the current V."""
    row = r if mo.level[m] == 1 else d.rep[r]
    eta = eta_row(d, mo, pv, m, r, xr, zr)
    v = mo.resp[m]
    if mo.kind[m] == 0:
        e = d.V[row, v] - eta
        if mo.off[m] >= 0:
            e -= d.V[row, mo.off[m]]
        return -0.5 * e * e / pv.s2[m]
    if mo.kind[m] == 1:
        k = int(d.V[row, v])
        return log_interval(mo.thr[m, k], mo.thr[m, k + 1], eta)
    if d.R[row, v] == 1:
        return log_ndtr(eta)
    return log_ndtr(-eta)


@njit(nrt=False, inline="always")
def cond_logpost(d, mo, pv, v, r, xr, zr):
    """Unnormalised log full conditional of variable v at r (a row, or a cluster at level 2):
    the sum of the log-likelihoods of every model that uses v."""
    s = 0.0
    km = mo.obsm[v]
    for m in range(len(mo.resp)):
        if km >= 0 and mo.uses[m, km] == 1:  # the cluster mean moves with v: the whole cluster
            j = d.clus[r]
            for i in range(d.start[j], d.start[j + 1]):
                s += row_loglik(d, mo, pv, m, i, xr, zr)
            continue
        if mo.uses[m, v] == 0:
            continue
        if mo.kind[m] == 4:  # a nominal variable's utilities: the whole group at its first model
            if mo.resp[m] != v and mo.dim[m] == 1:
                if mo.vlevel[v] == 1 or mo.level[m] == 2:
                    s += nominal_loglik(d, mo, pv, m, r, xr, zr)
                else:  # a level-2 v in a level-1 model: every row of cluster r
                    for i in range(d.start[r], d.start[r + 1]):
                        s += nominal_loglik(d, mo, pv, m, i, xr, zr)
            continue
        if mo.vlevel[v] == 1 or mo.level[m] == 2:
            s += row_loglik(d, mo, pv, m, r, xr, zr)
        else:
            for i in range(d.start[r], d.start[r + 1]):
                s += row_loglik(d, mo, pv, m, i, xr, zr)
    return s


@njit(nrt=False)
def cond_logpost_call(d, mo, pv, v, r, xr, zr):
    """:func:`cond_logpost` as an ordinary call (one copy of its inlined code serves the
    categorical and nominal draws; the Metropolis step inlines its own)."""
    return cond_logpost(d, mo, pv, v, r, xr, zr)


@njit(nrt=False)
def nominal_consts(G):
    """(w, s): u_k | u_-k has mean eta_k + w sum_{l != k} (u_l - eta_l) and sd s for G
    utilities with unit variances and correlation RHO."""
    w = RHO / (1.0 + (G - 2) * RHO)
    return w, math.sqrt(1.0 - (G - 1) * RHO * w)


@njit(nrt=False)
def nominal_loglik(d, mo, pv, m0, i, xr, zr):
    """log N(u_i | eta_i, Sigma) (without constants) of the nominal model whose first
    sub-model is m0, at its row i (a data row, or a cluster at level 2);
    Sigma^-1 = (I - RHO / (1 + (G - 1) RHO) 11') / (1 - RHO)."""
    G = d.ncat[mo.resp[m0]] - 1
    c0 = mo.ucol[m0]
    row = i if mo.level[m0] == 1 else d.rep[i]
    ss = 0.0
    tot = 0.0
    for k in range(G):
        e = d.U[row, c0 + k] - eta_row(d, mo, pv, m0 + k, i, xr, zr)
        ss += e * e
        tot += e
    a = RHO / (1.0 + (G - 1) * RHO)
    return -0.5 * (ss - a * tot * tot) / (1.0 - RHO)


@njit(nrt=False)
def draw_nominal(rng, d, mo, pv, m0, buf):
    """The utilities of a nominal variable, one at a time given the others (truncated to agree
    with its category); where the variable is missing, each utility jointly with the category:
    below the largest other utility (and 0) the category stays the others', above it becomes
    this one's, the two pieces weighted by their normal mass and the likelihood of every other
    model that uses the variable. A level-2 variable has one set of utilities per cluster (kept
    in the cluster's first row)."""
    v = mo.resp[m0]
    G = d.ncat[v] - 1
    c0 = mo.ucol[m0]
    w, sd = nominal_consts(G)
    eta = buf[3]
    lev2 = mo.level[m0] == 2
    n = len(d.rep) if lev2 else d.V.shape[0]
    for i in range(n):
        row = d.rep[i] if lev2 else i
        for k in range(G):
            eta[k] = eta_row(d, mo, pv, m0 + k, i, buf[0], buf[1])
        for k in range(G):
            mk = eta[k]
            for h in range(G):
                if h != k:
                    mk += w * (d.U[row, c0 + h] - eta[h])
            c, cstar = 0.0, 0
            for h in range(G):
                if h != k and d.U[row, c0 + h] > c:
                    c, cstar = d.U[row, c0 + h], h + 1
            if d.R[row, v] == 1:
                set_value(d, lev2, v, i, float(cstar))
                la = cond_logpost_call(d, mo, pv, v, i, buf[0], buf[1])
                set_value(d, lev2, v, i, float(k + 1))
                lb = cond_logpost_call(d, mo, pv, v, i, buf[0], buf[1])
                pa = norm_cdf((c - mk) / sd)
                wa = math.log(max(pa, 1e-300)) + la
                wb = math.log(max(1.0 - pa, 1e-300)) + lb
                top = max(wa, wb)
                above = rng.random() * (math.exp(wa - top) + math.exp(wb - top)) >= math.exp(
                    wa - top
                )
                set_value(d, lev2, v, i, float(k + 1) if above else float(cstar))
            else:
                above = int(d.V[row, v]) == k + 1
            if above:
                d.U[row, c0 + k] = truncnorm_rng(rng, mk, sd, c, math.inf)
            else:
                d.U[row, c0 + k] = truncnorm_rng(rng, mk, sd, -math.inf, c)


@njit(nrt=False)
def refresh_nominal(d, mo, pv, m, dm, buf):
    """Sub-model m of a nominal variable: design / s and response (u_k - w sum_{h != k}
    (u_l - eta_l)) / s, a regression with unit residual variance given the other utilities."""
    v = mo.resp[m]
    G = d.ncat[v] - 1
    k = mo.dim[m] - 1
    m0 = m - k
    c0 = mo.ucol[m0]
    w, sd = nominal_consts(G)
    q = dm.Z.shape[1]
    lev2 = mo.level[m] == 2
    for r in range(dm.X.shape[0]):
        row = d.rep[r] if lev2 else r
        design_row(d, row, mo.xc[m, 0], mo.xc[m, 1], dm.X[r])
        if q > 0:
            design_row(d, row, mo.zc[m, 0], mo.zc[m, 1], dm.Z[r])
            for a in range(q):
                dm.Z[r, a] /= sd
        y = d.U[row, c0 + k]
        for h in range(G):
            if h != k:
                y -= w * (d.U[row, c0 + h] - eta_row(d, mo, pv, m0 + h, r, buf[0], buf[1]))
        dm.y[r] = y / sd
        for a in range(dm.X.shape[1]):
            dm.X[r, a] /= sd


@njit(nrt=False)
def set_value(d, lev2, v, r, x):
    """V[., v] <- x at row r, or in every row of cluster r for a level-2 variable."""
    if lev2:
        for i in range(d.start[r], d.start[r + 1]):
            d.V[i, v] = x
    else:
        d.V[r, v] = x


@njit(nrt=False)
def set_level1(d, mo, v, r, x):
    """V[r, v] <- x, and v's observed cluster mean (if the focal model uses one) moved along."""
    km = mo.obsm[v]
    if km >= 0:
        j = d.clus[r]
        shift = (x - d.V[r, v]) / (d.start[j + 1] - d.start[j])
        for i in range(d.start[j], d.start[j + 1]):
            d.V[i, km] += shift
    d.V[r, v] = x


@njit(nrt=False)
def draw_categorical(rng, d, mo, pv, v, r, buf):
    """A categorical value of v at r exactly from its full conditional over the categories."""
    K = d.ncat[v]
    lev2 = mo.vlevel[v] == 2
    lp = buf[2]
    top = -math.inf
    for k in range(K):
        set_value(d, lev2, v, r, float(k))
        lp[k] = cond_logpost_call(d, mo, pv, v, r, buf[0], buf[1])
        top = max(top, lp[k])
    tot = 0.0
    for k in range(K):
        lp[k] = math.exp(lp[k] - top)
        tot += lp[k]
    u = rng.random() * tot
    pick = K - 1
    acc = 0.0
    for k in range(K):
        acc += lp[k]
        if u < acc:
            pick = k
            break
    set_value(d, lev2, v, r, float(pick))


@njit(nrt=False, inline="always")
def draw_metropolis(rng, d, mo, pv, v, r, buf, tune, phase):
    """One random-walk Metropolis move of the continuous value of v at r."""
    lev2 = mo.vlevel[v] == 2
    row = d.rep[r] if lev2 else r
    own = mo.own[v]
    sd = tune.scale[v] * (math.sqrt(pv.s2[own]) if own >= 0 else 1.0)
    old = d.V[row, v]
    lp0 = 0.0
    lp1 = 0.0
    for s in range(2):  # current value, then the proposal (one inlined copy of the density)
        if s == 1:
            new = rw_proposal(rng, old, sd)
            if lev2:
                set_value(d, lev2, v, r, new)
            else:
                set_level1(d, mo, v, r, new)
        lp = cond_logpost(d, mo, pv, v, r, buf[0], buf[1])
        if s == 0:
            lp0 = lp
        else:
            lp1 = lp
    tune.win_try[v] += 1.0
    tune.tries[phase, v] += 1.0
    if mh_accept(rng, lp1 - lp0):
        tune.win_acc[v] += 1.0
        tune.acc[phase, v] += 1.0
    elif lev2:
        set_value(d, lev2, v, r, old)
    else:
        set_level1(d, mo, v, r, old)


@njit(nrt=False)
def impute_variables(rng, d, mo, pv, buf, tune):
    """Every missing value of every incomplete variable, in order (see the module docstring)."""
    phase = 0 if tune.ctrl[1] > 0 else 1
    for t in range(len(d.order)):
        v = d.order[t]
        own = mo.own[v]
        if own >= 0 and mo.kind[own] == 4:
            continue  # drawn with its utilities (draw_nominal)
        for s in range(d.mis_start[v], d.mis_start[v + 1]):
            r = d.mis_idx[s]
            if d.ncat[v] > 0:
                draw_categorical(rng, d, mo, pv, v, r, buf)
            elif mo.direct[v] == 1:
                eta = eta_row(d, mo, pv, own, r, buf[0], buf[1])
                if mo.off[own] >= 0:
                    eta += d.V[r if mo.vlevel[v] == 1 else d.rep[r], mo.off[own]]
                x = eta + math.sqrt(pv.s2[own]) * rng.standard_normal()
                set_value(d, mo.vlevel[v] == 2, v, r, x)
            else:
                draw_metropolis(rng, d, mo, pv, v, r, buf, tune, phase)


@njit(nrt=False)
def refresh_model(d, mo, m, dm, changed=False):
    """Model m's design matrices (and the response of a linear model) from V: every row, or
    with ``changed`` only the rows whose values can change between iterations (``mo.rrows``;
    the others keep the values of the first iteration)."""
    n = mo.rstart[m + 1] - mo.rstart[m] if changed else dm.X.shape[0]
    for t in range(n):
        r = mo.rrows[mo.rstart[m] + t] if changed else t
        row = r if mo.level[m] == 1 else d.rep[r]
        design_row(d, row, mo.xc[m, 0], mo.xc[m, 1], dm.X[r])
        if mo.zc[m, 1] > mo.zc[m, 0]:
            design_row(d, row, mo.zc[m, 0], mo.zc[m, 1], dm.Z[r])
        if mo.kind[m] == 0:
            dm.y[r] = d.V[row, mo.resp[m]]
            if mo.off[m] >= 0:
                dm.y[r] -= d.V[row, mo.off[m]]


@njit(nrt=False)
def draw_latents(rng, d, mo, m, dm, pv, buf):
    """Latent normals of probit model m given its response (category or missingness)."""
    v = mo.resp[m]
    for r in range(dm.X.shape[0]):
        row = r if mo.level[m] == 1 else d.rep[r]
        eta = eta_row(d, mo, pv, m, r, buf[0], buf[1])
        if mo.kind[m] == 1:
            k = int(d.V[row, v])
            lo, hi = mo.thr[m, k], mo.thr[m, k + 1]
        elif d.R[row, v] == 1:
            lo, hi = 0.0, math.inf
        else:
            lo, hi = -math.inf, 0.0
        dm.y[r] = truncnorm_rng(rng, eta, 1.0, lo, hi)


@njit(nrt=False)
def _thresholds_loglik(d, mo, pv, m, n, buf):
    """sum over model m's rows of log P(category | eta, thresholds mo.thr[m])."""
    v = mo.resp[m]
    s = 0.0
    for r in range(n):
        row = r if mo.level[m] == 1 else d.rep[r]
        eta = eta_row(d, mo, pv, m, r, buf[0], buf[1])
        k = int(d.V[row, v])
        s += log_interval(mo.thr[m, k], mo.thr[m, k + 1], eta)
    return s


@njit(nrt=False)
def draw_thresholds(rng, d, mo, m, dm, pv, buf, tune, phase):
    """Free thresholds 2..K-1 of an ordinal probit model by Cowles' (1996) Metropolis-Hastings
    step, with the latent normals integrated out: each proposed from a normal around its
    current value truncated between its proposed lower and current upper neighbour; the
    proposal sd (0.1 times the variable's tuned multiplier) adapts like the other steps."""
    v = mo.resp[m]
    K = d.ncat[v]
    if K < 3:
        return
    n = dm.X.shape[0]
    sd = 0.1 * tune.scale[v]
    old = buf[2]
    for k in range(K + 1):
        old[k] = mo.thr[m, k]
    lp0 = _thresholds_loglik(d, mo, pv, m, n, buf)
    lq = 0.0
    for k in range(2, K):
        lo, hi = mo.thr[m, k - 1], old[k + 1]
        mo.thr[m, k] = truncnorm_rng(rng, old[k], sd, lo, hi)
        # log q(old | new) - log q(new | old): the truncation masses differ
        lq += math.log(
            max(norm_cdf((old[k + 1] - old[k]) / sd) - norm_cdf((lo - old[k]) / sd), 1e-300)
        )
        lq -= math.log(
            max(
                norm_cdf((mo.thr[m, k + 1] - mo.thr[m, k]) / sd)
                - norm_cdf((old[k - 1] - mo.thr[m, k]) / sd),
                1e-300,
            )
        )
    lp1 = _thresholds_loglik(d, mo, pv, m, n, buf)
    tune.win_try[v] += 1.0
    tune.tries[phase, v] += 1.0
    if mh_accept(rng, lp1 - lp0 + lq):
        tune.win_acc[v] += 1.0
        tune.acc[phase, v] += 1.0
    else:
        for k in range(K + 1):
            mo.thr[m, k] = old[k]


@njit(nrt=False)
def sync_params(m, par, pv):
    """pv's row m <- the model's current beta, b and s2."""
    for k in range(len(par.beta)):
        pv.beta[m, k] = par.beta[k]
    for j in range(par.b.shape[0]):
        for k in range(par.b.shape[1]):
            pv.b[m, j, k] = par.b[j, k]
    pv.s2[m] = par.s2[0]


@njit
def draw_parameters(rng, dm, par, w):
    """(beta, b), residual variance and Psi of one model (the shared steps); a Status code."""
    code = draw_beta_b(rng, dm, par, w)
    if code != 0:
        return code
    residual_ss(dm, par, w.ss)
    draw_residual_variance(rng, dm, par, w.ss)
    if par.b.shape[1] > 0:
        return draw_psi(rng, dm, par, w)
    return 0


@njit
def record(d, mo, pars, theta, o):
    """theta[:, o] <- every model's beta, Psi (lower triangle), s2 (linear), thresholds."""
    k = 0
    for m in range(len(mo.resp)):
        par = pars[m]
        for a in range(len(par.beta)):
            theta[k, o] = par.beta[a]
            k += 1
        q = par.b.shape[1]
        for a in range(q):
            for c in range(a + 1):
                theta[k, o] = par.psi[a, c]
                k += 1
        if mo.kind[m] == 0:
            theta[k, o] = par.s2[0]
            k += 1
    for m in range(len(mo.resp)):
        if mo.kind[m] == 1:
            for c in range(2, d.ncat[mo.resp[m]]):
                theta[k, o] = mo.thr[m, c]
                k += 1
    return k


@njit(nrt=False)
def record_r2(dm, par, theta, k, o):
    """Variance shares of the focal model (Rights & Sterba 2019) at this iteration:
    theta[k] <- var(x'beta) / total, theta[k + 1] <- mean(z' Psi z) / total, with total =
    var(x'beta) + mean(z' Psi z) + s2 (s2 = 1 for a probit model's latent response)."""
    n, p = dm.X.shape
    q = dm.Z.shape[1]
    s1 = 0.0
    s2 = 0.0
    vr = 0.0
    for i in range(n):
        f = 0.0
        for a in range(p):
            f += dm.X[i, a] * par.beta[a]
        s1 += f
        s2 += f * f
        for a in range(q):
            for c in range(q):
                vr += dm.Z[i, a] * par.psi[a, c] * dm.Z[i, c]
    vf = max(s2 / n - (s1 / n) ** 2, 0.0)
    vr /= n
    tot = vf + vr + par.s2[0]
    theta[k, o] = vf / tot
    theta[k + 1, o] = vr / tot


@njit(nrt=False)
def level1_residuals(dm, par, clus, E, a):
    """E[r, a] <- y_r - x_r'beta - z_r'b_j of one level-1 model at every row r."""
    for r in range(dm.X.shape[0]):
        j = clus[r]
        v = dm.y[r]
        for c in range(dm.X.shape[1]):
            v -= dm.X[r, c] * par.beta[c]
        for c in range(dm.Z.shape[1]):
            v -= dm.Z[r, c] * par.b[j, c]
        E[r, a] = v


@njit
def record_residual_cor(d, mo, datas, pars, theta, k, o):
    """Correlations among the level-1 residuals of the linear and probit models (Blimp's
    "correlations among residuals"): e_m = y_m - x'beta_m - z'b_m,j (latent responses for probit
    models), each model at its own draw of this iteration; theta[k, o], ... for the pairs
    (a < b) in model order. Near zero when the factorisation fits the data."""
    M = len(mo.resp)
    idx = np.empty(M, np.int64)
    L = 0
    for m in range(M):
        if mo.level[m] == 1 and (mo.kind[m] == 0 or mo.kind[m] == 1 or mo.kind[m] == 2):
            idx[L] = m
            L += 1
    if L < 2:
        return
    n = datas[idx[0]].X.shape[0]
    E = np.empty((n, L))
    for a in range(L):  # one model at a time: its bundle is fetched once, not once per row
        level1_residuals(datas[idx[a]], pars[idx[a]], d.clus, E, a)
    s1 = np.zeros(L)
    cp = np.zeros((L, L))
    for r in range(n):
        for a in range(L):
            s1[a] += E[r, a]
        for a in range(L):
            for b in range(a + 1):
                cp[a, b] += E[r, a] * E[r, b]
    t = k
    for a in range(L):
        for b in range(a + 1, L):
            cab = cp[b, a] / n - s1[a] * s1[b] / (n * n)
            va = cp[a, a] / n - s1[a] * s1[a] / (n * n)
            vb = cp[b, b] / n - s1[b] * s1[b] / (n * n)
            theta[t, o] = cab / np.sqrt(va * vb) if va > 0 and vb > 0 else 0.0
            t += 1


@njit
def iterate(n, rec0, rng, d, mo, lists, pv, buf, tune, theta):
    """``n`` iterations in place; iteration s stored at ``theta[:, rec0 + s]``. ``lists`` =
    (data, parameter, work bundles of the shared steps, one per model). Returns (status,
    iteration) as the driver expects."""
    datas, pars, works = lists
    M = len(mo.resp)
    every = int(tune.ctrl[2])
    phase = 0 if tune.ctrl[1] > 0 else 1
    for s in range(n):
        for m in range(M):
            dm = datas[m]
            if mo.kind[m] == 4:
                if mo.dim[m] == 1:
                    draw_nominal(rng, d, mo, pv, m, buf)
                refresh_nominal(d, mo, pv, m, dm, buf)
            else:  # every row at the first iteration, then the rows that can change
                refresh_model(d, mo, m, dm, tune.ctrl[0] > 0.0)
            if mo.kind[m] == 1:
                draw_thresholds(rng, d, mo, m, dm, pv, buf, tune, phase)
            if mo.kind[m] == 1 or mo.kind[m] == 2:
                draw_latents(rng, d, mo, m, dm, pv, buf)
            par = pars[m]
            code = draw_parameters(rng, dm, par, works[m])
            if code != 0:
                return code, s
            sync_params(m, par, pv)
        impute_variables(rng, d, mo, pv, buf, tune)
        k = record(d, mo, pars, theta, rec0 + s)
        record_r2(datas[0], pars[0], theta, k, rec0 + s)
        record_residual_cor(d, mo, datas, pars, theta, k + 2, rec0 + s)
        tune.ctrl[0] += 1.0
        if tune.ctrl[1] > 0 and int(tune.ctrl[0]) % every == 0:
            adapt_scales(tune.scale, tune.win_acc, tune.win_try, tune.ctrl[3], tune.ctrl[4])
    return 0, 0


def rc_data(X, Z, y, start, prior, mode) -> RcData:
    """RcData of one model (contiguous arrays)."""
    return RcData(
        np.ascontiguousarray(X, dtype=np.float64),
        np.ascontiguousarray(Z, dtype=np.float64),
        np.ascontiguousarray(y, dtype=np.float64),
        np.ascontiguousarray(start, dtype=np.int64),
        np.ascontiguousarray(prior, dtype=np.float64),
        int(mode),
    )
