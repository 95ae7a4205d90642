"""The univariate imputation methods: one object per (target, chain) that keeps its state
between visits and, at each visit, draws the target's parameters and missing cells.

Two-level methods (``2l.pan``, ``2l.norm``, ``2l.pmm``, ``2l.bin``, and the continuation-ratio
steps of ``2l.polr`` / ``2l.polyreg``) share the random-coefficient sweep of
:mod:`pymitml.samplers._ranef`; their parameters are kept between visits, so each visit is one
Gibbs sweep from where the last one stopped (mice restarts pan for 500 iterations, or its own
2l.norm sampler for 100, at every visit). Single-level methods (``norm``, ``norm.nob``, ``pmm``,
``logreg``, ``polr``, ``polyreg``) are mice's draws; ``2lonly.*`` apply them to one row per
cluster.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit

from .._ranef import (
    RcData,
    linear_predictor,
    pmm_match,
    probit_latents,
    rc_params,
    rc_sweep,
    rc_work,
)
from ._categorical import (
    augment,
    draw_categories,
    fit_work,
    mlogit_fit,
    mlogit_probs,
    polr_fit,
    polr_probs,
    poly_contrasts,
)
from ._design import Design
from ._spec import FcsSpec

__all__ = ["make_method"]

#: donors of predictive mean matching (mice's default)
DONORS = 5
#: ridge of the single-level regressions (mice's default ``ridge``)
RIDGE = 1e-5
#: sweeps of a 2l model at its first visit in a chain (from crude start values to its posterior)
WARMUP = 10


def _ols(X: np.ndarray, y: np.ndarray):
    """(beta_hat, V = (X'X + ridge diag)^-1 factor L with V = L L', residual SS, df)."""
    XtX = X.T @ X
    XtX[np.diag_indices_from(XtX)] *= 1.0 + RIDGE
    XtX[np.diag_indices_from(XtX)] += 1e-12
    C = np.linalg.cholesky(XtX)
    beta = np.linalg.solve(XtX, X.T @ y)
    res = y - X @ beta
    Linv = np.linalg.inv(C)  # V = C^-T C^-1
    return beta, Linv.T, float(res @ res), max(len(y) - X.shape[1], 1)


def norm_draw(rng, X, y):
    """mice's ``.norm.draw``: (beta_hat, beta_draw, sigma_draw) of the Bayesian linear model."""
    beta, L, ss, df = _ols(X, y)
    sigma = np.sqrt(ss / rng.chisquare(df))
    return beta, beta + sigma * (L @ rng.standard_normal(len(beta))), sigma


def logreg_draw(rng, X, y, n_iter: int = 25):
    """The logistic regression's estimate and a draw from its normal approximation (mice's
    ``logreg``; a small ridge keeps separated data finite, where mice augments the data)."""
    p = X.shape[1]
    beta = np.zeros(p)
    pen = 1e-4 * np.eye(p)
    pen[0, 0] = 0.0
    for _ in range(n_iter):
        mu = expit(X @ beta)
        W = mu * (1 - mu)
        H = X.T @ (X * W[:, None]) + pen
        step = np.linalg.solve(H, X.T @ (y - mu) - pen @ beta)
        beta = beta + step
        if np.max(np.abs(step)) < 1e-8:
            break
    mu = expit(X @ beta)
    H = X.T @ (X * (mu * (1 - mu))[:, None]) + pen
    C = np.linalg.cholesky(H)
    return beta + np.linalg.solve(C.T, rng.standard_normal(p))


def pmm(rng, yhat_obs, y_obs, yhat_mis, donors=DONORS):
    o = np.argsort(yhat_obs, kind="stable")
    out = np.empty(len(yhat_mis))
    pmm_match(
        rng,
        np.ascontiguousarray(yhat_obs[o]),
        np.ascontiguousarray(y_obs[o]),
        np.ascontiguousarray(yhat_mis),
        donors,
        out,
    )
    return out


def single_level(rng, method: str, Xo, yo, Xm):
    """The imputations of the rows ``Xm`` by a single-level method fitted on (Xo, yo)."""
    if method == "logreg":
        b = logreg_draw(rng, Xo, yo)
        return (rng.random(len(Xm)) < expit(Xm @ b)).astype(np.float64)
    if method == "norm.nob":
        beta, _, ss, df = _ols(Xo, yo)
        return Xm @ beta + np.sqrt(ss / df) * rng.standard_normal(len(Xm))
    beta_hat, beta, sigma = norm_draw(rng, Xo, yo)
    if method == "pmm":
        return pmm(rng, Xo @ beta_hat, yo, Xm @ beta)
    return Xm @ beta + sigma * rng.standard_normal(len(Xm))


class Method:
    """One target's method in one chain: ``visit(cur, rng) -> status`` imputes its cells."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str) -> None:
        self.spec, self.t, self.design, self.method = spec, t, design, method
        col = spec.columns[t]
        self.miss = np.flatnonzero(spec.where[:, t])
        self.obs = np.flatnonzero(~spec.where[:, t] & ~np.isnan(col.values))

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        X, _ = self.design.build(cur, self.spec, False)
        t = self.t
        cur[self.miss, t] = single_level(
            rng, self.method, X[self.obs], cur[self.obs, t], X[self.miss]
        )
        return 0


class RcModel:
    """One two-level regression (the state of :func:`rc_sweep`) on a fixed set of rows.

    ``mode`` as in :mod:`pymitml.samplers._ranef`: 0 homoscedastic (pan's prior, as mice's
    2l.pan sets it: a = 1, Binv = 1, c = q, Dinv = I_q), 1 heteroscedastic (mice's 2l.norm:
    Psi^-1 ~ Wishart(J - q - 1, S^-1) with a tiny ridge), 2 probit (residual variance 1).
    """

    def __init__(self, rows, spec: FcsSpec, p: int, q: int, mode: int, s2: float, sweeps: int):
        J = len(spec.start) - 1
        self.rows, self.mode, self.sweeps = rows, mode, sweeps
        self.clus = spec.clus[rows]
        self.start = np.searchsorted(self.clus, np.arange(J + 1)).astype(np.int64)
        self.par = rc_params(p, q, J, 1.0 if mode == 2 else s2)
        self.work = rc_work(p, q, J)
        if mode == 1:
            self.prior = np.array([-q - 1.0, RIDGE * s2, 1.0, 1.0])
        else:
            self.prior = np.array([float(q), 1.0, 1.0, 1.0])
        self.latent = np.zeros(len(rows))
        self.started = False

    def _start_psi(self, Zo: np.ndarray) -> None:
        """Psi = diag(s2 / 2 / var(z_k)) (s2 / 2 for the intercept): every random effect starts
        explaining about half the residual variance, whatever its predictor's scale."""
        s2 = float(self.par.s2[0])
        v = Zo.var(axis=0) if len(Zo) > 1 else np.ones(Zo.shape[1])
        v[0] = 1.0
        v[v <= 0] = 1.0
        self.par.psi[:, :] = np.diag(0.5 * s2 / v)
        self.par.psi_inv[:, :] = np.diag(2.0 * v / s2)
        self.started = True

    def predict(self, X: np.ndarray, Z: np.ndarray, clus: np.ndarray) -> np.ndarray:
        out = np.empty(X.shape[0])
        linear_predictor(
            np.ascontiguousarray(X), np.ascontiguousarray(Z), clus, self.par.beta, self.par.b, out
        )
        return out

    def update(self, rng, X: np.ndarray, Z: np.ndarray, y: np.ndarray) -> int:
        """Sweeps given the full designs and the target on ``rows`` (0/1 codes in probit mode,
        whose latent normals are drawn first). Returns a Status code."""
        Xo, Zo = np.ascontiguousarray(X[self.rows]), np.ascontiguousarray(Z[self.rows])
        if self.mode == 2:
            eta = self.predict(Xo, Zo, self.clus)
            probit_latents(rng, eta, y.astype(np.int64), _LO, _HI, self.latent)
            y = self.latent
        d = RcData(Xo, Zo, np.ascontiguousarray(y), self.start, self.prior, self.mode)
        n = self.sweeps
        if not self.started:  # Psi on the scale of each random effect, then a short warm-up
            self._start_psi(Zo)
            n = max(n, WARMUP)
        return int(rc_sweep(rng, d, self.par, self.work, n))


_LO = np.array([-np.inf, 0.0])
_HI = np.array([0.0, np.inf])


class TwoLevel(Method):
    """``2l.pan`` / ``2l.norm`` / ``2l.pmm`` / ``2l.bin`` (see the module docstring)."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str, sweeps: int) -> None:
        super().__init__(spec, t, design, method)
        p, q = len(design.x_names), len(design.z_names)
        yo = spec.columns[t].values[self.obs]
        s2 = float(np.var(yo)) if len(yo) > 1 and np.var(yo) > 0 else 1.0
        mode = {"2l.norm": 1, "2l.bin": 2}.get(method, 0)
        self.model = RcModel(self.obs, spec, p, q, mode, s2, sweeps)

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        spec, t, mod, m = self.spec, self.t, self.model, self.miss
        X, Z = self.design.build(cur, spec, True)
        code = mod.update(rng, X, Z, cur[self.obs, t])
        if code:
            return code
        eta_m = mod.predict(X[m], Z[m], spec.clus[m])
        if self.method == "2l.bin":
            cur[m, t] = (eta_m + rng.standard_normal(len(m)) > 0.0).astype(np.float64)
        elif self.method == "2l.pmm":
            eta_o = mod.predict(X[self.obs], Z[self.obs], mod.clus)
            cur[m, t] = pmm(rng, eta_o, cur[self.obs, t], eta_m)
        else:
            sd = np.sqrt(mod.par.s2[spec.clus[m]])
            cur[m, t] = eta_m + sd * rng.standard_normal(len(m))
        return 0


class ContinuationRatio(Method):
    """``2l.polr`` / ``2l.polyreg`` (not in mice): K categories as K - 1 binary steps in category
    order, P(y = k | y >= k, x, b_k) (a continuation-ratio model), each a probit model with its
    own random effects drawn by latent normals; a missing cell is drawn step by step. The
    single-level ``polr`` / ``polyreg`` are mice's models (:class:`Categorical`)."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str, sweeps: int) -> None:
        super().__init__(spec, t, design, method)
        self.K = spec.columns[t].n_categories
        yo = spec.columns[t].values[self.obs]
        p, q = len(design.x_names), len(design.z_names)
        self.steps = [
            RcModel(self.obs[yo >= k], spec, p, q, 2, 1.0, sweeps) for k in range(self.K - 1)
        ]

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        spec, t, m = self.spec, self.t, self.miss
        X, Z = self.design.build(cur, spec, True)
        out = np.full(len(m), float(self.K - 1))
        todo = np.ones(len(m), bool)
        for k, st in enumerate(self.steps):
            code = st.update(rng, X, Z, (cur[st.rows, t] == k).astype(np.float64))
            if code:
                return code
            eta = st.predict(X[m], Z[m], spec.clus[m])
            hit = eta + rng.standard_normal(len(m)) > 0.0
            out[todo & hit] = k
            todo &= ~hit
        cur[m, t] = out
        return 0


def mice_coding(spec: FcsSpec, design: Design) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """R's model-matrix coding of the ordered-factor predictors of a design: for each, its
    column index, its columns in the design and R's ``contr.poly`` matrix (K x (K - 1)), whose
    row of a category replaces the category's indicators (R's default contrasts for ordered
    factors, which mice uses). The fits do not depend on the coding; mice's augmented rows do.
    A factor whose indicators were partly dropped for collinearity keeps them."""
    out, off = [], 1
    kept = {int(a): i for i, a in enumerate(design.keep)}
    for k, _code in design.terms:
        c = spec.columns[k]
        width = _width(spec, k)
        if c.kind == "categorical" and c.ordered and c.n_categories >= 2:
            cols = [kept.get(a) for a in range(off, off + width)]
            if all(i is not None for i in cols):
                out.append((k, np.asarray(cols, np.int64), poly_contrasts(c.n_categories)))
        off += width
    return out


def recode(X: np.ndarray, cur: np.ndarray, coding) -> None:
    """Overwrite the indicator columns of X with R's contrasts (:func:`mice_coding`)."""
    for k, cols, C in coding:
        v = cur[:, k]
        ok = ~np.isnan(v)
        X[:, cols] = C[np.where(ok, v, 0).astype(np.int64)]
        if not ok.all():
            X[np.ix_(np.flatnonzero(~ok), cols)] = np.nan


def _width(spec: FcsSpec, k: int) -> int:
    """The design columns of predictor k (K - 1 indicators of a factor with K > 2 levels)."""
    c = spec.columns[k]
    return c.n_categories - 1 if c.kind == "categorical" and c.n_categories > 2 else 1


class Categorical(Method):
    """``polr`` / ``polyreg``: mice's mice.impute.polr / mice.impute.polyreg, see
    :mod:`pymitml.samplers.fcs._categorical`. At each visit the proportional-odds (polr) or
    multinomial-logit (polyreg) model is fitted by maximum likelihood to the observed rows and
    mice's augmented rows, and every missing cell is drawn from its fitted category
    probabilities. As in mice, a polr fit that fails falls back to the multinomial logit, and a
    target with one category present imputes that category."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str) -> None:
        super().__init__(spec, t, design, method)
        self.ordinal = method == "polr"
        self.coding = mice_coding(spec, design)
        self.K = spec.columns[t].n_categories
        self.rows = np.concatenate([self.obs, self.miss])
        # the last fit of each model (a warm start for the next visit) and its categories
        self.last: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def fit_rows(self, cur: np.ndarray):
        """(X_fit, y_fit, w_fit, cats, X_miss): the model's rows (observed + augmented) with
        codes 0..k-1 of the categories ``cats`` present, and the design of the missing cells;
        X with its intercept first (mice's model matrix, polr drops the intercept)."""
        X, _ = self.design.build(cur, self.spec, False)
        recode(X, cur, self.coding)
        col = cur[:, self.t]
        cats = np.flatnonzero(np.bincount(col[self.rows].astype(np.int64), minlength=self.K))
        Xa, ya, wa = augment(X[:, 1:], cats, X.shape[0] - len(self.obs))
        Xf = np.empty((len(self.obs) + len(ya), X.shape[1]))
        Xf[: len(self.obs)] = X[self.obs]
        Xf[len(self.obs) :, 0] = 1.0
        Xf[len(self.obs) :, 1:] = Xa
        compact = np.zeros(self.K, np.int64)
        compact[cats] = np.arange(len(cats))
        code = compact[np.concatenate([col[self.obs].astype(np.int64), ya])]
        w = np.concatenate([np.ones(len(self.obs)), wa])
        return Xf, code, w, cats, X[self.miss]

    def _fit(self, kind: str, Xf, y, w, cats, Xm, P) -> bool:
        """One model's fit (warm-started from the last one with the same categories) and its
        probabilities at Xm into P; False when the fit fails."""
        k = len(cats)
        if kind == "polr":
            Xf, Xm = np.ascontiguousarray(Xf[:, 1:]), Xm[:, 1:]
            n_par = k - 1 + Xf.shape[1]
        else:
            n_par = (k - 1) * Xf.shape[1]
        prev = self.last.get(kind)
        warm = prev is not None and np.array_equal(prev[1], cats) and len(prev[0]) == n_par
        par = prev[0] if warm and prev is not None else np.zeros(n_par)
        if kind == "polr":
            code = polr_fit(Xf, y, w, k, par, fit_work(n_par), warm)
        else:
            code = mlogit_fit(Xf, y, w, k, par, fit_work(n_par), np.empty(k), warm)
        if code:
            self.last.pop(kind, None)
            return False
        self.last[kind] = (par, cats)
        Xm = np.ascontiguousarray(Xm)
        (polr_probs if kind == "polr" else mlogit_probs)(Xm, par, k, P)
        return True

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        Xf, y, w, cats, Xm = self.fit_rows(cur)
        m = self.miss
        u = rng.random(len(m))
        k = len(cats)
        if k == 1:
            cur[m, self.t] = float(cats[0])
            return 0
        P = np.empty((len(m), k))
        if not (self.ordinal and self._fit("polr", Xf, y, w, cats, Xm, P)):
            if not self._fit("mlogit", Xf, y, w, cats, Xm, P):
                return 3
        out = np.empty(len(m), np.int64)
        draw_categories(P, u, out)
        cur[m, self.t] = cats[out].astype(np.float64)
        return 0


class LevelTwo(Method):
    """``2lonly.norm`` / ``2lonly.pmm`` / ``2lonly.mean``: one value per cluster, from the
    clusters where the target is observed (predictors aggregated to cluster means)."""

    def __init__(self, spec: FcsSpec, t: int, design: Design, method: str) -> None:
        super().__init__(spec, t, design, method)
        J = len(spec.start) - 1
        vals = spec.columns[t].values
        seen = np.zeros(J, bool)
        seen[spec.clus[self.obs]] = True
        self.value = np.full(J, np.nan)  # observed cluster values (constant within clusters)
        # a level-2 variable is constant within clusters, so the observed value is also the
        # cluster's observed mean (2lonly.mean), exactly
        self.value[spec.clus[self.obs]] = vals[self.obs]
        self.seen = np.flatnonzero(seen)
        self.unseen = np.flatnonzero(~seen)

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        spec, t = self.spec, self.t
        v = self.value.copy()
        if len(self.unseen) and self.method != "2lonly.mean":
            X, _ = self.design.build(cur, spec, False)
            meth = "pmm" if self.method == "2lonly.pmm" else "norm"
            v[self.unseen] = single_level(rng, meth, X[self.seen], v[self.seen], X[self.unseen])
        cur[self.miss, t] = v[spec.clus[self.miss]]
        return 0


def make_method(spec: FcsSpec, t: int, design: Design, method: str, sweeps: int) -> Method:
    """The method object of target ``t`` for one chain."""
    if method.startswith("2lonly."):
        return LevelTwo(spec, t, design, method)
    if method in ("polr", "polyreg"):
        return Categorical(spec, t, design, method)
    if method in ("2l.polr", "2l.polyreg"):
        return ContinuationRatio(spec, t, design, method, sweeps)
    if method.startswith("2l."):
        return TwoLevel(spec, t, design, method, sweeps)
    return Method(spec, t, design, method)
