"""lmer for any random-effect structure: several grouping factors, nested, crossed, ``||``.

The criterion is lme4's profiled deviance (Bates, Maechler, Bolker & Walker 2015, section 3)
evaluated with the blocked Cholesky factorisation of :mod:`._multi_kernels`; theta is
minimised by BOBYQA (nlopt, the optimiser of lme4's default ``nloptwrap``) with much tighter
tolerances than lme4's; lme4's derivative check on central differences follows, with one Newton
step on those derivatives, and projected Newton polishing (:mod:`._optimize`) only when the
check fails, so the likelihood is at least as high as lme4's.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, cast

import numpy as np
import pandas as pd
from scipy.linalg import lapack, solve_triangular
from threadpoolctl import threadpool_limits

from ..exceptions import ConvergenceWarning
from . import _multi_kernels as mk
from ._multi_design import MultiDesign, MultiSystem, build_multi_design, multi_system
from ._optimize import minimize_theta
from .fit import SINGULAR_MESSAGE, SINGULAR_TOL, LmerFit, _tri_index

__all__ = ["MultiLmerFit", "ReTermInfo", "SeveralTerms", "fit_multi"]


@dataclass(frozen=True)
class ReTermInfo:
    """One random-effect term of a fit: lme4's ``reTrms`` pieces for it.

    group : grouping factor name (``"class:school"``); names : its columns (``cnms``);
    n_levels : levels; columns : its slice of Z's columns; theta : its slice of theta;
    label : its name in ``VarCorr`` (a factor used by two terms: ``"g"``, ``"g.1"``).
    """

    group: str
    names: tuple[str, ...]
    n_levels: int
    columns: slice
    theta: slice
    label: str = ""


def re_terms_of(design: MultiDesign) -> tuple[ReTermInfo, ...]:
    out = []
    col = th = 0
    for t, label in zip(design.terms, _group_labels(design)):
        out.append(
            ReTermInfo(
                t.group,
                t.names,
                t.n_levels,
                slice(col, col + t.q * t.n_levels),
                slice(th, th + t.n_theta),
                label,
            )
        )
        col += t.q * t.n_levels
        th += t.n_theta
    return tuple(out)


class _MultiCriterion:
    """Profiled ML/REML criterion of lme4's theta, with the buffers of the factorisation."""

    def __init__(self, design: MultiDesign, system: MultiSystem, reml: bool):
        self.d, self.s, self.reml = design, system, bool(reml)
        terms = design.terms
        self.qs = [t.q for t in terms]
        self.tri = [_tri_index(q) for q in self.qs]
        self.offsets = np.cumsum([0] + [t.n_theta for t in terms])
        qmax = max(self.qs)
        self.Tall = np.zeros((len(system.rest) + 1, qmax, qmax))
        self.Tall[-1, 0, 0] = 1.0
        t1 = terms[system.lead]
        self.T1 = np.zeros((t1.q, t1.q))
        m = system.C.shape[0]
        self.S = np.empty((m, m))
        self.W = np.empty((system.cols.size, t1.q))
        self.L1 = np.empty((t1.n_levels, t1.q, t1.q))
        self.n, self.p = float(design.n), float(design.p)
        self.U: np.ndarray | None = None
        self.lower = np.zeros(0)

    def T(self, theta: np.ndarray, k: int) -> np.ndarray:
        q = self.qs[k]
        T = np.zeros((q, q))
        r, c = self.tri[k]
        T[r, c] = theta[self.offsets[k] : self.offsets[k + 1]]
        return T

    def solve(self, theta: np.ndarray) -> tuple[float, float, float]:
        """(log|L|^2, log|L_X|^2, r^2) at theta; leaves the factor in self.U (upper, F order)."""
        s = self.s
        self.T1[:] = self.T(theta, s.lead)
        for i, k in enumerate(s.rest):
            q = self.qs[k]
            self.Tall[i, :q, :q] = self.T(theta, k)
        mk.rest_scaled(s.C, s.colinfo, self.Tall, s.n_re, self.S)
        ld1 = mk.lead_sweep(
            s.A1, self.T1, s.ptr, s.cols, s.Bv, s.colinfo, self.Tall, self.S, self.W, self.L1
        )
        if not np.isfinite(ld1):
            return -np.inf, 0.0, 0.0
        U, info = lapack.dpotrf(self.S.T, lower=0, clean=1, overwrite_a=0)
        if info != 0:
            return -np.inf, 0.0, 0.0
        self.U = U
        dg = np.log(np.diag(U))
        nr, p = s.n_re, self.d.p
        ld = ld1 + 2.0 * float(np.sum(dg[:nr]))
        ldx = 2.0 * float(np.sum(dg[nr : nr + p]))
        r2 = float(U[-1, -1]) ** 2
        return ld, ldx, r2

    def deviance(self, ld: float, ldx: float, r2: float) -> float:
        n, p = self.n, self.p
        lw = self.s.log_weights
        if self.reml:
            return ld + ldx - lw + (n - p) * (1.0 + math.log(2.0 * math.pi * r2 / (n - p)))
        return ld - lw + n * (1.0 + math.log(2.0 * math.pi * r2 / n))

    def __call__(self, theta: np.ndarray) -> float:
        ld, ldx, r2 = self.solve(np.asarray(theta, dtype=float))
        if not (np.isfinite(ld) and r2 > 0.0):
            return np.inf
        return self.deviance(ld, ldx, r2)

    def solution(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """beta, u of the rest and u of the leading term from the last factorisation."""
        U = self.U
        assert U is not None
        nr, p = self.s.n_re, self.d.p
        beta = (
            solve_triangular(U[nr : nr + p, nr : nr + p], U[nr : nr + p, -1]) if p else np.zeros(0)
        )
        rhs = U[:nr, -1] - U[:nr, nr : nr + p] @ beta
        u_rest = solve_triangular(U[:nr, :nr], rhs) if nr else np.zeros(0)
        x = np.concatenate([u_rest, beta, [-1.0]])
        return beta, u_rest, x


def _fg_fd(crit: _MultiCriterion):
    """f and a central-difference gradient (one-sided at a lower bound), for Newton polishing."""

    def fg(theta: np.ndarray) -> tuple[float, np.ndarray]:
        f0 = crit(theta)
        g = np.zeros_like(theta)
        if not np.isfinite(f0):
            return f0, g
        for i in range(theta.size):
            h = 1e-5 * max(abs(theta[i]), 0.1)
            up = theta.copy()
            up[i] += h
            lo = theta.copy()
            lo[i] -= h
            if crit.lower[i] > lo[i]:
                g[i] = (crit(up) - f0) / h
            else:
                g[i] = (crit(up) - crit(lo)) / (2.0 * h)
        return f0, g

    return fg


def _bobyqa(crit: _MultiCriterion, theta0: np.ndarray, lower: np.ndarray):
    import nlopt

    k = theta0.size
    opt = nlopt.opt(nlopt.LN_BOBYQA, k)
    opt.set_lower_bounds(np.where(np.isfinite(lower), lower, -1e10))
    opt.set_min_objective(lambda x, grad: float(crit(x)))
    opt.set_ftol_rel(1e-13)
    opt.set_xtol_abs(1e-9)
    opt.set_maxeval(20000)
    opt.set_initial_step(np.full(k, 0.2))
    x = opt.optimize(theta0)
    return (
        np.asarray(x, dtype=float),
        float(opt.last_optimum_value()),
        opt.get_numevals(),
        opt.last_optimize_result(),
    )


def _varcorr(design: MultiDesign, Ts: list[np.ndarray], sigma: float) -> pd.DataFrame:
    grp = _group_labels(design)
    rows: list[tuple[str, str | None, str | None, float, float]] = []
    for t, T, g in zip(design.terms, Ts, grp):
        cov = sigma**2 * (T @ T.T)
        sd = np.sqrt(np.diag(cov))
        names = t.names
        rows += [(g, names[a], None, cov[a, a], sd[a]) for a in range(t.q)]
        for a in range(t.q):
            for b in range(a + 1, t.q):
                den = sd[a] * sd[b]
                rows.append(
                    (g, names[a], names[b], cov[a, b], cov[a, b] / den if den > 0 else np.nan)
                )
    rows.append(("Residual", None, None, sigma**2, sigma))
    cols = list(zip(*rows))
    return pd.DataFrame(
        {
            "grp": pd.Series(cols[0], dtype=object),
            "var1": pd.Series(cols[1], dtype=object),
            "var2": pd.Series(cols[2], dtype=object),
            "vcov": np.array(cols[3], dtype=float),
            "sdcor": np.array(cols[4], dtype=float),
        }
    )


def _group_labels(design: MultiDesign) -> list[str]:
    """lme4's VarCorr names: a grouping factor used twice gets '.1', '.2' (make.unique)."""
    seen: dict[str, int] = {}
    out = []
    for t in design.terms:
        g = t.group
        if g in seen:
            seen[g] += 1
            out.append(f"{g}.{seen[g]}")
        else:
            seen[g] = 0
            out.append(g)
    return out


class SeveralTerms:
    """The one-factor accessors of a fit with several random-effect terms: each raises."""

    re_terms: tuple

    def _one_factor(self, what: str) -> Any:
        raise AttributeError(
            f"`{what}` describes one grouping factor; this fit has {len(self.re_terms)} "
            "random-effect terms: use `re_terms`, `Z_sparse()`, `ranef[group]` and `varcorr`."
        )

    @property
    def Z(self) -> np.ndarray:
        return self._one_factor("Z")

    @property
    def cluster_codes(self) -> np.ndarray:
        return self._one_factor("cluster_codes")

    @property
    def cluster_labels(self) -> np.ndarray:
        return self._one_factor("cluster_labels")

    @property
    def cluster(self) -> str:
        return self._one_factor("cluster")

    @property
    def random_names(self) -> tuple[str, ...]:
        return self._one_factor("random_names")

    @property
    def T(self) -> np.ndarray:
        return self._one_factor("T")

    @property
    def cov_random(self) -> pd.DataFrame:
        return self._one_factor("cov_random")


@dataclass(frozen=True, eq=False, repr=False)
class MultiLmerFit(SeveralTerms, LmerFit):
    """An lmer fit with several random-effect terms (or prior weights / offsets).

    As :class:`LmerFit`, except: ``ranef`` is a dict {grouping factor: DataFrame} (lme4's
    ``ranef`` list), ``re_terms`` describes the terms, ``Z_sparse()`` gives the full Z, and the
    one-factor accessors (``Z``, ``cluster_codes``, ``cov_random``, ``T``) raise.
    """

    re_terms: tuple[ReTermInfo, ...] = field(default=())
    _crit_b: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)

    @property
    def _md(self) -> MultiDesign:
        return cast(MultiDesign, self._design)

    @property
    def ngroups_by_term(self) -> dict[str, int]:
        return {g: t.n_levels for g, t in zip(_group_labels(self._md), self._md.terms)}

    def cov_random_terms(self) -> list[tuple[str, list[str], np.ndarray]]:
        """(group label, column names, sigma^2 T T') of each term, in lme4's order."""
        out = []
        for g, t, info in zip(_group_labels(self._md), self._md.terms, self.re_terms):
            T = np.zeros((t.q, t.q))
            r, c = _tri_index(t.q)
            T[r, c] = self.theta[info.theta]
            out.append((g, list(t.names), self.sigma**2 * (T @ T.T)))
        return out

    def Z_sparse(self) -> Any:
        """Z (nobs, number of random effects) as scipy CSC, in lme4's column order."""
        return self._md.Z_sparse()

    @property
    def extra_pars(self) -> pd.Series:
        """Variance components as mitml's ``.getMisc.merMod`` names them (ICC with one term)."""
        from ..pool._extract import _vc_lmer

        return _vc_lmer(self)

    def random_vector(self) -> np.ndarray:
        """All conditional modes b in lme4's order (``getME(fit, "b")``)."""
        return self._crit_b

    def fitted(self) -> np.ndarray:
        """Conditional fitted values X beta + Z b (+ offset) (nobs,)."""
        d = self._md
        out = d.X @ self.fixef.to_numpy(dtype=float) + self.Z_sparse() @ self._crit_b
        if d.offset is not None:
            out = out + d.offset
        return np.asarray(out)

    def residuals(self) -> np.ndarray:
        return self._md.y - self.fitted()

    def loglik_at(self, beta: Any, theta: Any, sigma: float, *, REML: bool = False) -> float:
        """Log-likelihood at given (beta, theta, sigma); see :meth:`LmerFit.loglik_at`."""
        d = self._md
        beta = np.asarray(beta, dtype=float).reshape(-1)
        theta = np.asarray(theta, dtype=float).reshape(-1)
        if beta.size != d.p:
            raise ValueError(
                f"`beta` must have {d.p} elements ({list(d.fixed_names)}); got {beta.size}."
            )
        if theta.size != self.theta.size:
            raise ValueError(f"`theta` must have {self.theta.size} elements; got {theta.size}.")
        sigma = float(sigma)
        if not sigma > 0.0:
            raise ValueError(f"`sigma` must be positive; got {sigma}.")
        crit = _MultiCriterion(d, self._cp, REML)  # type: ignore[arg-type]
        with threadpool_limits(1):
            ld, ldx, r2 = crit.solve(theta)
        if not np.isfinite(ld):
            return -np.inf
        n, p = d.n, d.p
        s2 = sigma * sigma
        lw = self._cp.log_weights  # type: ignore[attr-defined]
        if REML:
            return -0.5 * ((n - p) * math.log(2.0 * math.pi * s2) + ld + ldx - lw + r2 / s2)
        bhat, _, _ = crit.solution()
        assert crit.U is not None
        nr = crit.s.n_re
        delta = crit.U[nr : nr + p, nr : nr + p] @ (beta - bhat)
        rss = r2 + float(delta @ delta)
        return -0.5 * (n * math.log(2.0 * math.pi * s2) + ld - lw + rss / s2)

    def refit(self, REML: bool | None = None, y: Any = None) -> LmerFit:
        reml = self.REML if REML is None else bool(REML)
        d = self._md
        if y is None:
            return _fit_multi(d, reml, self._cp)  # type: ignore[arg-type]
        y = np.ascontiguousarray(np.asarray(y, dtype=float).reshape(-1))
        if y.shape[0] != d.n:
            raise ValueError(f"`y` must have {d.n} values (the rows of the fit); got {y.shape[0]}.")
        if not np.all(np.isfinite(y)):
            raise ValueError(
                "`y` has missing or infinite values; a refit needs a complete response."
            )
        return _fit_multi(replace(d, y=y), reml)

    def __repr__(self) -> str:
        kind = "REML" if self.REML else "ML"
        groups = ", ".join(f"{g}={k}" for g, k in self.ngroups_by_term.items())
        return (
            f"<LmerFit {kind} {self.formula!r}: nobs={self.nobs}, groups: {groups}, "
            f"loglik={self.loglik:.4f}{', singular' if self.singular else ''}"
            f"{'' if self.converged else ', NOT converged'}>"
        )


def _derivative_check(
    crit: _MultiCriterion, x: np.ndarray, lower: np.ndarray
) -> tuple[bool, int, np.ndarray | None]:
    """lme4's ``checkConv`` on central finite differences: max |H^{-1} g| < 0.002 (free theta).

    Coordinates at their lower bound are left out (as lme4 does for boundary fits). Returns
    (passed, evaluations used, the Newton step from x on these derivatives or None).
    """
    free = np.flatnonzero(~(np.isfinite(lower) & (x <= lower + 1e-4)))
    if free.size == 0:
        return True, 0, None
    f0 = crit(x)
    k = free.size
    h = 1e-4 * np.maximum(np.abs(x[free]), 0.1)
    g = np.empty(k)
    H = np.empty((k, k))
    fp = np.empty(k)
    fm = np.empty(k)

    def at(*steps: tuple[int, float]) -> float:
        y = x.copy()
        for i, s in steps:
            y[free[i]] += s * h[i]
        return crit(y)

    for i in range(k):
        fp[i], fm[i] = at((i, 1.0)), at((i, -1.0))
        g[i] = (fp[i] - fm[i]) / (2.0 * h[i])
        H[i, i] = (fp[i] - 2.0 * f0 + fm[i]) / h[i] ** 2
    for i in range(k):
        for j in range(i):
            v = (
                at((i, 1), (j, 1))
                - at((i, 1), (j, -1))
                - at((i, -1), (j, 1))
                + at((i, -1), (j, -1))
            )
            H[i, j] = H[j, i] = v / (4.0 * h[i] * h[j])
    n_ev = 1 + 2 * k + 2 * k * (k - 1)
    try:
        np.linalg.cholesky(H)
        scaled = np.linalg.solve(H, g)
    except np.linalg.LinAlgError:
        return False, n_ev, None
    step = x.copy()
    step[free] -= scaled
    return bool(np.max(np.abs(scaled)) < 2e-3), n_ev, np.maximum(step, lower)


def _optimise(crit: _MultiCriterion, lower: np.ndarray, theta0: np.ndarray):
    """BOBYQA, lme4's derivative check, Newton polishing when the check fails."""
    theta, fval, nev, status = _bobyqa(crit, theta0, lower)
    ok, k, newton = _derivative_check(crit, theta, lower)
    nev += k
    if newton is not None:  # one Newton step on the check's derivatives: BOBYQA's last digits
        f_new = crit(newton)
        nev += 1
        if f_new < fval:
            theta, fval = newton, f_new
    messages: list[str] = []
    if not ok or status < 0:
        polish = minimize_theta(_fg_fd(crit), theta, lower, max_iter=50)
        nev += polish.n_evaluations * (1 + 2 * theta.size)
        if polish.fun <= fval:
            theta, fval = polish.theta, polish.fun
        ok = bool(polish.converged)
        if not ok:
            messages += list(polish.messages) or [f"nlopt BOBYQA stopped with status {status}"]
    return theta, fval, int(nev), ok, messages


def _fit_multi(design: MultiDesign, reml: bool, system: MultiSystem | None = None) -> MultiLmerFit:
    with threadpool_limits(1):  # LAPACK on one thread: faster here, identical on any machine
        return _fit_multi_body(design, reml, system)


def _fit_multi_body(design: MultiDesign, reml: bool, system: MultiSystem | None) -> MultiLmerFit:
    system = multi_system(design) if system is None else system
    crit = _MultiCriterion(design, system, reml)
    diag = np.concatenate([(r == c) for r, c in crit.tri])
    theta0 = diag.astype(float)
    lower = np.where(diag, 0.0, -np.inf)
    crit.lower = lower
    theta, fval, nev, converged, messages = _optimise(crit, lower, theta0)
    ld, ldx, r2 = crit.solve(theta)
    n, p = design.n, design.p
    beta, u_rest, x = crit.solution()
    lead = design.terms[system.lead]
    B1 = np.empty((lead.n_levels, lead.q))
    U1 = np.empty((lead.n_levels, lead.q))
    mk.lead_modes(crit.L1, crit.T1, system.ptr, system.cols, crit.W, x, U1, B1)
    Ts = [crit.T(theta, k) for k in range(len(design.terms))]
    b_parts: list[np.ndarray] = [np.zeros(0)] * len(design.terms)
    b_parts[system.lead] = B1.ravel()
    for i, k in enumerate(system.rest):
        t = design.terms[k]
        u = u_rest[system.rest_start[i] : system.rest_start[i] + t.q * t.n_levels].reshape(
            t.n_levels, t.q
        )
        b_parts[k] = (u @ Ts[k].T).ravel()
    b = np.concatenate(b_parts)
    U = crit.U
    assert U is not None
    nr = system.n_re
    if p:
        Rinv = solve_triangular(U[nr : nr + p, nr : nr + p], np.eye(p))
        unscaled = Rinv @ Rinv.T
    else:
        unscaled = np.zeros((0, 0))
    sigma2 = r2 / (n - p if reml else n)
    sigma = math.sqrt(sigma2)
    lw = system.log_weights
    dev_ml = ld - lw + n * (1.0 + math.log(2.0 * math.pi * r2 / n))
    reml_crit = ld + ldx - lw + (n - p) * (1.0 + math.log(2.0 * math.pi * r2 / (n - p)))
    singular = bool(np.any(theta[diag] < SINGULAR_TOL))
    if singular:
        messages.append(SINGULAR_MESSAGE)
    if not converged:
        warnings.warn(
            f"lmer({design.formula.text!r}): " + "; ".join(messages),
            ConvergenceWarning,
            stacklevel=3,
        )
    ranef = {}
    col = 0
    for g, t in zip(_group_labels(design), design.terms):
        k = t.q * t.n_levels
        ranef[g] = pd.DataFrame(
            b[col : col + k].reshape(t.n_levels, t.q),
            index=pd.Index(t.labels, name=t.group),
            columns=list(t.names),
        )
        col += k
    fixed = list(design.fixed_names)
    return MultiLmerFit(
        formula=design.formula.text,
        REML=bool(reml),
        fixef=pd.Series(beta, index=fixed, dtype=float),
        vcov=pd.DataFrame(sigma2 * unscaled, index=fixed, columns=fixed),
        varcorr=_varcorr(design, Ts, sigma),
        sigma=sigma,
        theta=theta.copy(),
        loglik=-0.5 * (reml_crit if reml else dev_ml),
        deviance=dev_ml,
        reml_criterion=reml_crit if reml else None,
        ranef=ranef,
        nobs=n,
        ngroups=design.terms[0].n_levels,
        n_fixed=p,
        converged=converged,
        singular=singular,
        messages=tuple(messages),
        n_evaluations=int(nev),
        _design=design,  # type: ignore[arg-type]
        _cp=system,  # type: ignore[arg-type]
        re_terms=re_terms_of(design),
        _crit_b=b,
    )


def fit_multi(
    formula: str,
    data: Any,
    REML: bool = True,
    *,
    na_action: str = "fail",
    weights: Any = None,
    offset: Any = None,
) -> MultiLmerFit:
    """Build the design and fit (see :func:`pymitml.lmm.lmer`)."""
    design = build_multi_design(formula, data, na_action, weights, offset)
    return _fit_multi(design, bool(REML))
