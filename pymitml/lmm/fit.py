"""``lmer``: lme4's linear mixed model for one grouping factor, fitted natively.

The criterion is lme4's profiled deviance (Bates, Maechler, Bolker & Walker 2015, section 3):
for the relative covariance factor theta the penalised least-squares problem is solved by a
blocked Cholesky factorisation (one q x q block per cluster, see :mod:`._kernels`), beta and
sigma are profiled out, and only theta is optimised, under the box constraint diag(T) >= 0.
"""

from __future__ import annotations

import contextvars
import itertools
import math
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_bool
from ..exceptions import ConvergenceWarning
from . import _kernels
from ._design import CrossProducts, LmerDesign, build_design, cross_products
from ._optimize import minimize_theta
from ._summary import format_summary

__all__ = ["ConvergenceWarning", "LmerFit", "lmer"]

#: the arrays of an LmerDesign with one entry per analysed row (what a light fit drops)
ROW_ARRAYS = ("y", "X", "Z", "codes", "rows", "Q", "Zt")

#: lme4's ``isSingular`` tolerance on the diagonal of T
SINGULAR_TOL = 1e-4
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular') in lme4"


def _tri_index(q: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column of each theta element: lower triangle of T in column-major order (lme4)."""
    rows, cols = [], []
    for c in range(q):
        for r in range(c, q):
            rows.append(r)
            cols.append(c)
    return np.array(rows), np.array(cols)


class _Criterion:
    """Profiled ML/REML criterion with its buffers, in the orthogonalised parameterisation.

    Its argument is the factor of U D U' (see :mod:`._design`), not lme4's theta; use
    :meth:`from_lme4` / :meth:`to_lme4` to convert.
    """

    def __init__(self, design: LmerDesign, cp: CrossProducts, reml: bool):
        J, q, p = design.n_clusters, design.q, design.p
        self.cp, self.reml, self.q = cp, bool(reml), q
        self.n, self.p = float(design.n), float(p)
        self.rows, self.cols = _tri_index(q)
        self.P = np.empty((J, q, q))
        self.RZX = np.empty((J, q, p))
        self.cu = np.empty((J, q))
        self.LX = np.empty((p, p))
        self.gamma = np.empty(p)
        self.G = np.empty((q, q))
        self.U = design.U
        self.Uinv = np.linalg.inv(design.U)

    def T(self, theta: np.ndarray) -> np.ndarray:
        T = np.zeros((self.q, self.q))
        T[self.rows, self.cols] = theta
        return T

    def to_lme4(self, theta_t: np.ndarray) -> np.ndarray:
        """lme4's theta (lower Cholesky factor of D) from the working factor of U D U'."""
        M = self.Uinv @ self.T(theta_t)
        return _cov_factor(M @ M.T)[self.rows, self.cols]

    def from_lme4(self, theta: np.ndarray) -> np.ndarray:
        """The working factor of U D U' from lme4's theta."""
        M = self.U @ self.T(theta)
        return _cov_factor(M @ M.T)[self.rows, self.cols]

    def solve(self, theta: np.ndarray) -> tuple[float, float, float]:
        """PLS pieces (log|L|^2, log|L_X|^2, r^2) at theta; fills the buffers."""
        cp = self.cp
        pls = _kernels.pls_q1 if self.q == 1 else _kernels.pls
        return pls(
            self.T(theta),
            cp.ZtZ,
            cp.ZtX,
            cp.Zty,
            cp.XtX,
            cp.Xty,
            cp.yty,
            self.P,
            self.RZX,
            self.cu,
            self.LX,
            self.gamma,
        )

    def __call__(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        theta = np.asarray(theta, dtype=float)
        logdet, ldx, r2 = self.solve(theta)
        if not (np.isfinite(logdet) and r2 > 0.0):
            return np.inf, np.zeros_like(theta)
        f = _kernels.criterion(logdet, ldx, r2, self.n, self.p, self.reml)
        cp = self.cp
        gradient = _kernels.gradient_d_q1 if self.q == 1 else _kernels.gradient_d
        gradient(
            cp.ZtZ,
            cp.ZtX,
            cp.Zty,
            self.P,
            self.RZX,
            self.cu,
            self.LX,
            self.gamma,
            r2,
            self.n,
            self.reml,
            self.G,
        )
        gT = 2.0 * self.G @ self.T(theta)
        return f, gT[self.rows, self.cols]


def _cov_factor(tau: np.ndarray) -> np.ndarray:
    """Lower-triangular L with L L' = tau for a positive semidefinite tau (zero pivots allowed)."""
    tau = np.asarray(tau, dtype=float)
    q = tau.shape[0]
    L = np.zeros((q, q))
    scale = max(float(np.max(np.abs(np.diag(tau)))), 1e-300)
    for c in range(q):
        d = tau[c, c] - L[c, :c] @ L[c, :c]
        if d <= 1e-13 * scale:
            continue
        L[c, c] = math.sqrt(d)
        for r in range(c + 1, q):
            L[r, c] = (tau[r, c] - L[r, :c] @ L[c, :c]) / L[c, c]
    return L


class _DesignBuilt(BaseException):
    """Raised by :func:`lmer` under :func:`design_only`: the design, without fitting. A
    BaseException, so an analysis that catches ``Exception`` around lmer lets it through."""

    def __init__(self, design: Any):
        super().__init__("design built")
        self.design = design


_DESIGN_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("design_only", default=False)


class _LightDesign:
    """An :class:`LmerDesign` without its per-row arrays (``ROW_ARRAYS``: y, X, Z, cluster
    codes, rows, Q, Zt; the fit drops its per-cluster cross-products too), which a fit kept by ``MitmlList.with_`` would otherwise hold for
    every imputation (about 1.3 data sets each). Everything else (formula, names, cluster
    labels, R0, U, the formula specs, n, p, q) is kept; a per-row array is rebuilt when code
    asks for it: ``run()`` runs the analysis that made the fit again (on the data set built
    again) with :func:`lmer` stopping once its design is built (:func:`design_only`): the same
    arrays bit for bit. The last design rebuilt is cached (one at a time)."""

    _ids = itertools.count()
    _cache: tuple[int, Any] | None = None
    _cross: tuple[int, Any] | None = None
    _lock = threading.Lock()

    def __init__(self, design: Any, run: Callable[[], Any]):
        self.__dict__.update(
            {k: v for k, v in design.__dict__.items() if k not in ROW_ARRAYS},
            n=design.n,
            p=design.p,
            q=design.q,
            n_clusters=design.n_clusters,
            cluster=design.cluster,
            _run=run,
            _id=next(self._ids),
            _key=_design_key(design),
        )

    def full(self) -> Any:
        """The whole design (rebuilt, or the cached one)."""
        cls = _LightDesign
        with cls._lock:
            hit = cls._cache
            if hit is not None and hit[0] == self._id:
                return hit[1]
        design = design_only(self._run)
        if design is None or _design_key(design) != self._key:
            raise RuntimeError(
                "the design of this lmer fit could not be rebuilt: the analysis given to "
                "MitmlList.with_ gives another model when it runs again on the same data set "
                "(is it random?). Pass light=False to with_ to keep the designs."
            )
        with cls._lock:
            cls._cache = (self._id, design)
        return design

    def cross_products(self) -> CrossProducts:
        """The cross-products of the rebuilt design (cached with it)."""
        design = self.full()
        with _LightDesign._lock:
            hit = _LightDesign._cross
            if hit is not None and hit[0] == self._id:
                return hit[1]
        cp = cross_products(design)
        with _LightDesign._lock:
            _LightDesign._cross = (self._id, cp)
        return cp

    def __getattr__(self, name: str) -> Any:
        if name in ROW_ARRAYS:
            return getattr(self.full(), name)
        raise AttributeError(name)

    def __reduce__(self):  # a pickled fit holds its whole design (not the data source)
        return (_identity, (self.full(),))


def _identity(x: Any) -> Any:
    return x


def _design_key(design: Any) -> tuple:
    """What tells a rebuilt design from another: the model, its size and sums of its arrays."""
    sums = tuple(float(np.sum(a)) for a in (design.y, design.X, design.Z, design.codes))
    return (design.formula.text, design.n, design.fixed_names, design.random_names, sums)


def design_only(run: Callable[[], Any]) -> Any:
    """``run()`` with :func:`lmer` stopping once it built its design: the design of the first
    lmer fit ``run`` makes (or of the LmerFit it returns, if it made none)."""
    token = _DESIGN_ONLY.set(True)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # said when the analysis first ran
            out = run()
    except _DesignBuilt as built:
        return built.design
    finally:
        _DESIGN_ONLY.reset(token)
    design = getattr(out, "_design", None)
    return design.full() if isinstance(design, _LightDesign) else design


@dataclass(frozen=True, eq=False, repr=False)
class LmerFit:
    """A fitted linear mixed model (what lme4 calls an ``lmerMod``).

    Attributes
    ----------
    formula : the model formula.
    REML : True for a REML fit, False for maximum likelihood.
    fixef : pandas Series of the fixed effects, indexed by R's column names.
    vcov : DataFrame, sigma^2 (R_X'R_X)^{-1} (lme4's ``vcov``).
    varcorr : DataFrame laid out like R's ``as.data.frame(VarCorr(fit))``: columns grp, var1,
        var2, vcov, sdcor; variances, then covariances/correlations, then "Residual".
    sigma : residual standard deviation.
    theta : relative covariance factor (lower triangle of T, column-major; lme4's ``theta``).
    loglik : REML or ML log-likelihood at the optimum (lme4's ``logLik``).
    deviance : ML deviance -2 loglik_ML; for a REML fit it is evaluated at the REML estimates
        (lme4's ``deviance(fit, REML = FALSE)``).
    reml_criterion : REML criterion (-2 REML log-likelihood) of a REML fit, else None.
    ranef : DataFrame of conditional modes, one row per cluster (index = cluster labels).
    nobs, ngroups, n_fixed : rows analysed, clusters, fixed-effect columns.
    converged, singular : convergence (lme4's gradient check) and boundary fit flags.
    messages : optimiser and singularity messages.
    n_evaluations : criterion evaluations used by the optimiser.
    """

    formula: str
    REML: bool
    fixef: pd.Series
    vcov: pd.DataFrame
    varcorr: pd.DataFrame
    sigma: float
    theta: np.ndarray
    loglik: float
    deviance: float
    reml_criterion: float | None
    ranef: pd.DataFrame
    nobs: int
    ngroups: int
    n_fixed: int
    converged: bool
    singular: bool
    messages: tuple[str, ...]
    n_evaluations: int
    _design: LmerDesign = field(repr=False)
    _cp: CrossProducts = field(repr=False)

    # ----- the design, for code that re-evaluates the model -----
    @property
    def light(self) -> bool:
        """True when the per-row design arrays were dropped (a fit kept by
        ``MitmlList.with_``); they are rebuilt from the data set when used."""
        return isinstance(self._design, _LightDesign)

    def _lightened(self, run: Callable[[], Any]) -> LmerFit:
        """This fit without its per-row design arrays; ``run()`` repeats the analysis that made
        it (on the same data), from which the design is rebuilt when it is needed."""
        if type(self._design) is not LmerDesign:  # light already, or several terms
            return self
        light = _LightDesign(self._design, run)
        return replace(self, _design=light, _cp=None)  # type: ignore[arg-type]

    def _cross_products(self) -> CrossProducts:
        if self._cp is not None:
            return self._cp
        d = self._design  # a light fit (or one unpickled from it): rebuilt
        return d.cross_products() if isinstance(d, _LightDesign) else cross_products(d)

    def _full_design(self) -> LmerDesign:
        d = self._design
        return d.full() if isinstance(d, _LightDesign) else d

    @property
    def X(self) -> np.ndarray:
        """Fixed-effects design matrix (nobs, n_fixed)."""
        return self._design.X

    @property
    def Z(self) -> np.ndarray:
        """Random-effects design of each row (nobs, q); the full Z is block diagonal by cluster."""
        return self._design.Z

    @property
    def y(self) -> np.ndarray:
        """Response (nobs,)."""
        return self._design.y

    @property
    def cluster_codes(self) -> np.ndarray:
        """Cluster of each row as 0..ngroups-1, in the order of ``cluster_labels``."""
        return self._design.codes

    @property
    def cluster_labels(self) -> np.ndarray:
        return self._design.labels

    @property
    def rows(self) -> np.ndarray:
        """Positions (0-based) in the data of the rows analysed."""
        return self._design.rows

    @property
    def response(self) -> str:
        return self._design.response

    @property
    def cluster(self) -> str:
        return self._design.cluster

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return self._design.fixed_names

    @property
    def random_names(self) -> tuple[str, ...]:
        return self._design.random_names

    # ----- derived quantities -----
    @property
    def df(self) -> int:
        """Number of estimated parameters (fixed effects, theta, sigma), logLik's df."""
        return self.n_fixed + self.theta.size + 1

    @property
    def aic(self) -> float:
        return -2.0 * self.loglik + 2.0 * self.df

    @property
    def bic(self) -> float:
        return -2.0 * self.loglik + math.log(self.nobs) * self.df

    @property
    def T(self) -> np.ndarray:
        """The q x q lower-triangular relative covariance factor (Lambda's block)."""
        q = self._design.q
        T = np.zeros((q, q))
        r, c = _tri_index(q)
        T[r, c] = self.theta
        return T

    @property
    def cov_random(self) -> pd.DataFrame:
        """Covariance matrix of one cluster's random effects, sigma^2 T T'."""
        T = self.T
        names = list(self.random_names)
        return pd.DataFrame(self.sigma**2 * (T @ T.T), index=names, columns=names)

    def coef_table(self, ddf: str | None = None) -> pd.DataFrame:
        """The fixed-effects table of ``summary(fit)``.

        ``ddf=None``: Estimate, Std. Error and t value (lme4). ``ddf="Satterthwaite"`` or
        ``"Kenward-Roger"``: Estimate, Std. Error, df, t value and Pr(>|t|) as lmerTest's
        ``summary(fit, ddf = ...)`` prints them (see :func:`pymitml.lmm.ddf.coef_table_ddf`).
        """
        if ddf is not None:
            from .ddf import coef_table_ddf

            return coef_table_ddf(self, ddf)
        se = np.sqrt(np.diag(self.vcov.to_numpy()))
        return pd.DataFrame(
            {
                "Estimate": self.fixef.to_numpy(),
                "Std. Error": se,
                "t value": self.fixef.to_numpy() / se,
            },
            index=self.fixef.index,
        )

    @property
    def extra_pars(self) -> pd.Series:
        """Variance components named as mitml's ``testEstimates(extra.pars=TRUE)`` names them.

        ``"Intercept~~Intercept|g"``, covariances ``"a~~b|g"``, ``"Residual~~Residual"`` and
        ``"ICC|g"`` (when the random part has an intercept).
        """
        cov = self.cov_random.to_numpy()
        names = [("Intercept" if n == "(Intercept)" else n) for n in self.random_names]
        g = self.cluster
        keys = [f"{a}~~{a}|{g}" for a in names]
        vals = list(np.diag(cov))
        for b in range(len(names)):
            for a in range(b):
                keys.append(f"{names[a]}~~{names[b]}|{g}")
                vals.append(cov[a, b])
        keys.append("Residual~~Residual")
        vals.append(self.sigma**2)
        if "(Intercept)" in self.random_names:
            k = self.random_names.index("(Intercept)")
            keys.append(f"ICC|{g}")
            vals.append(cov[k, k] / (cov[k, k] + self.sigma**2))
        return pd.Series(vals, index=keys, dtype=float)

    def fitted(self) -> np.ndarray:
        """Conditional fitted values X beta + Z b (nobs,)."""
        d = self._full_design()
        out = np.empty(d.n)
        b = np.ascontiguousarray(self.ranef.to_numpy(dtype=float))
        _kernels.linear_predictor(d.X, self.fixef.to_numpy(dtype=float), d.Z, d.codes, b, out)
        return out

    def residuals(self) -> np.ndarray:
        """Conditional residuals y - X beta - Z b (nobs,)."""
        return self._full_design().y - self.fitted()

    def predict(
        self, newdata: Any = None, *, re_form: Any = None, allow_new_levels: bool = False
    ) -> np.ndarray:
        """lme4's ``predict(fit, newdata, re.form, allow.new.levels)``; see :func:`.predict.predict`."""
        from .predict import predict

        return predict(self, newdata, re_form=re_form, allow_new_levels=allow_new_levels)

    # ----- re-evaluation for pooled likelihood tests -----
    @staticmethod
    def theta_from_cov(tau: np.ndarray, sigma: float) -> np.ndarray:
        """theta of a random-effects covariance matrix ``tau`` (q x q) and residual SD ``sigma``.

        theta holds the lower triangle (column-major) of T with T T' = tau / sigma^2; tau may
        be singular (positive semidefinite).
        """
        tau = np.atleast_2d(np.asarray(tau, dtype=float))
        L = _cov_factor(tau / float(sigma) ** 2)
        r, c = _tri_index(tau.shape[0])
        return L[r, c]

    def loglik_at(self, beta: Any, theta: Any, sigma: float, *, REML: bool = False) -> float:
        """Log-likelihood of this model's data at given parameters (not profiled).

        ML (default): log N(y; X beta, sigma^2 (Z Lambda Lambda' Z' + I)), the quantity that
        mitml's D3 evaluates at pooled parameters. ``REML=True`` gives the restricted
        log-likelihood at (theta, sigma), which does not depend on ``beta``.

        Parameters
        ----------
        beta : fixed effects (n_fixed,), in the order of ``fixef``.
        theta : relative covariance factor (as ``theta``; see :meth:`theta_from_cov`).
        sigma : residual standard deviation (> 0).

        Examples
        --------
        >>> fit.loglik_at(fit.fixef, fit.theta, fit.sigma) == fit.refit(
        ...     REML=False
        ... ).loglik  # doctest: +SKIP
        """
        d = self._design
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
        cp = self._cross_products()
        crit = _Criterion(d, cp, reml=REML)
        logdet, ldx, r2 = crit.solve(crit.from_lme4(theta))
        if not np.isfinite(logdet):
            return -np.inf
        n, p = d.n, d.p
        s2 = sigma * sigma
        if REML:
            ld_r0 = 2.0 * np.sum(np.log(np.abs(np.diag(d.R0)))) if p else 0.0
            return -0.5 * ((n - p) * math.log(2.0 * math.pi * s2) + logdet + ldx + ld_r0 + r2 / s2)
        gamma = d.R0 @ beta - cp.qty if p else beta
        delta = crit.LX.T @ (gamma - crit.gamma)
        rss = r2 + float(delta @ delta)
        return -0.5 * (n * math.log(2.0 * math.pi * s2) + logdet + rss / s2)

    def refit(self, REML: bool | None = None, y: Any = None) -> LmerFit:
        """The same model refitted: with the other criterion (``REML``) and/or a new response."""
        reml = self.REML if REML is None else bool(REML)
        d = self._full_design()
        if y is None:
            return _fit(d, reml, self._cross_products())
        y = np.ascontiguousarray(np.asarray(y, dtype=float).reshape(-1))
        if y.shape[0] != d.n:
            raise ValueError(f"`y` must have {d.n} values (the rows of the fit); got {y.shape[0]}.")
        if not np.all(np.isfinite(y)):
            raise ValueError(
                "`y` has missing or infinite values; a refit needs a complete response."
            )
        d = replace(d, y=y)
        return _fit(d, reml)

    # ----- printing -----
    def summary(self) -> str:
        """lme4-style summary (``summary(fit)`` in R) as a string."""
        return format_summary(self)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        kind = "REML" if self.REML else "ML"
        return (
            f"<LmerFit {kind} {self.formula!r}: nobs={self.nobs}, groups={self.ngroups}, "
            f"loglik={self.loglik:.4f}{', singular' if self.singular else ''}"
            f"{'' if self.converged else ', NOT converged'}>"
        )


def _varcorr(design: LmerDesign, T: np.ndarray, sigma: float) -> pd.DataFrame:
    cov = sigma**2 * (T @ T.T)
    sd = np.sqrt(np.diag(cov))
    names = design.random_names
    g = design.cluster
    rows: list[tuple[str, str | None, str | None, float, float]] = [
        (g, names[a], None, cov[a, a], sd[a]) for a in range(len(names))
    ]
    for a in range(len(names)):
        for b in range(a + 1, len(names)):
            den = sd[a] * sd[b]
            rows.append((g, names[a], names[b], cov[a, b], cov[a, b] / den if den > 0 else np.nan))
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


def _restarts(rows: np.ndarray, cols: np.ndarray) -> list[np.ndarray]:
    """Alternative starting points for theta: scaled identities and +-0.5 correlations."""
    diag = (rows == cols).astype(float)
    off = (rows != cols).astype(float)
    return [0.3 * diag, 3.0 * diag, diag + 0.5 * off, diag - 0.5 * off, 0.3 * diag + 0.3 * off]


def _fit(design: LmerDesign, reml: bool, cp: CrossProducts | None = None) -> LmerFit:
    cp = cross_products(design) if cp is None else cp
    crit = _Criterion(design, cp, reml)
    q, p, n = design.q, design.p, design.n
    rows, cols = _tri_index(q)
    theta0 = (rows == cols).astype(float)
    lower = np.where(rows == cols, 0.0, -np.inf)
    opt = minimize_theta(crit, theta0, lower)
    if q > 1 and (not opt.converged or np.any(opt.theta[rows == cols] < SINGULAR_TOL)):
        # a boundary or unclean stop can be a local stationary point of the (non-convex)
        # criterion: restart from other relative scales and correlations, keep the best
        for start in _restarts(rows, cols):
            alt = minimize_theta(crit, start, lower)
            if alt.fun < opt.fun - 1e-10 * abs(opt.fun):
                opt = alt
    logdet, ldx, r2 = crit.solve(opt.theta)
    theta = crit.to_lme4(opt.theta)
    R0 = design.R0
    if p:
        beta = np.linalg.solve(R0, crit.gamma + cp.qty)
        Linv = np.linalg.inv(crit.LX)
        R0inv = np.linalg.inv(R0)
        unscaled = R0inv @ (Linv.T @ Linv) @ R0inv.T
        ld_r0 = 2.0 * float(np.sum(np.log(np.abs(np.diag(R0)))))
    else:
        beta, unscaled, ld_r0 = np.zeros(0), np.zeros((0, 0)), 0.0
    sigma2 = r2 / (n - p if reml else n)
    sigma = math.sqrt(sigma2)
    dev_ml = logdet + n * (1.0 + math.log(2.0 * math.pi * r2 / n))
    reml_crit = logdet + ldx + ld_r0 + (n - p) * (1.0 + math.log(2.0 * math.pi * r2 / (n - p)))
    B = np.empty((design.n_clusters, q))
    _kernels.random_effects(crit.P, crit.RZX, crit.cu, crit.gamma, B)
    B = B @ crit.Uinv.T
    fixed = list(design.fixed_names)
    T = crit.T(theta)
    singular = bool(np.any(theta[rows == cols] < SINGULAR_TOL))
    messages = list(opt.messages)
    if singular:
        messages.append(SINGULAR_MESSAGE)
    if not opt.converged:
        warnings.warn(
            f"lmer({design.formula.text!r}): " + "; ".join(opt.messages),
            ConvergenceWarning,
            stacklevel=3,
        )
    ranef = pd.DataFrame(
        B, index=pd.Index(design.labels, name=design.cluster), columns=list(design.random_names)
    )
    return LmerFit(
        formula=design.formula.text,
        REML=bool(reml),
        fixef=pd.Series(beta, index=fixed, dtype=float),
        vcov=pd.DataFrame(sigma2 * unscaled, index=fixed, columns=fixed),
        varcorr=_varcorr(design, T, sigma),
        sigma=sigma,
        theta=theta.copy(),
        loglik=-0.5 * (reml_crit if reml else dev_ml),
        deviance=dev_ml,
        reml_criterion=reml_crit if reml else None,
        ranef=ranef,
        nobs=n,
        ngroups=design.n_clusters,
        n_fixed=p,
        converged=opt.converged,
        singular=singular,
        messages=tuple(messages),
        n_evaluations=opt.n_evaluations,
        _design=design,
        _cp=cp,
    )


def lmer(
    formula: str,
    data: Any,
    REML: bool = True,
    *,
    na_action: str = "fail",
    weights: Any = None,
    offset: Any = None,
) -> LmerFit:
    """Fit a linear mixed model, as ``lme4::lmer`` does.

    Parameters
    ----------
    formula : lme4 formula. One grouping factor: ``"y ~ x + (1 | g)"``,
        ``"y ~ x * w + I(x^2) + sex + (1 + x | g)"``, ``"(0 + x | g)"``, ``"(x | g)"``. Several:
        nested ``"(1 | school/class)"`` (= ``(1 | school) + (1 | class:school)``), crossed
        ``"(1 | subject) + (1 | item)"``, interaction factors ``"(1 | a:b)"``, uncorrelated
        ``"(1 + x || g)"``, factors in random terms; ``offset(z)`` terms and transformed
        responses (``"log(y) ~ ..."``). Factors (pandas Categorical, strings, booleans) get R's
        treatment contrasts; rank-deficient fixed-effect columns are dropped with a warning
        (lme4's message).
    data : pandas or polars DataFrame.
    REML : restricted maximum likelihood (default, as lme4) or maximum likelihood.
    na_action : ``"fail"`` (default): a missing value in an analysed column is an error naming
        the column and the count; ``"omit"``: drop incomplete rows (lme4's default na.omit).
    weights : prior weights (one per row of ``data``): residual variance sigma^2 / w_i.
    offset : known component of the linear predictor (one per row), added to ``offset()``
        terms.

    Returns
    -------
    LmerFit (a ``MultiLmerFit`` when the model has several random-effect terms, weights or
    offsets: ``ranef`` is then a dict {grouping factor: DataFrame}, as lme4's list).

    Notes
    -----
    The criterion is lme4's profiled deviance. With one grouping factor theta is optimised by
    projected Newton steps with the analytic gradient (in a parameterisation orthogonalised
    against the scales of the random-effects columns), to near machine precision. With several
    terms the penalised system is factored blockwise (the largest term's diagonal blocks, a
    dense Schur complement for the rest, as MixedModels.jl) and theta is optimised by BOBYQA
    (lme4's optimiser) with tight tolerances, checked by lme4's derivative test. A fit whose
    check fails raises :class:`ConvergenceWarning`; a boundary (singular) fit is flagged in
    ``singular`` and ``messages`` (lme4 prints a message).

    Examples
    --------
    >>> import numpy as np, pandas as pd, pymitml as pm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 10)
    ... x = rng.normal(size=300)
    >>> y = 1 + 0.5 * x + rng.normal(size=30)[g] + rng.normal(size=300)
    >>> fit = pm.lmer("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    >>> fit.fixef.round(2).tolist()  # doctest: +SKIP
    [0.95, 0.52]
    """
    check_bool(REML, "REML")
    from ._terms import parse_lmer_formula

    parsed = parse_lmer_formula(formula)
    simple = (
        len(parsed.random) == 1
        and len(parsed.random[0].groups) == 1
        and not parsed.offsets
        and parsed.response_is_column
        and weights is None
        and offset is None
        and "||" not in formula
    )
    if not simple:
        from .multi_fit import fit_multi

        return fit_multi(
            formula, data, bool(REML), na_action=na_action, weights=weights, offset=offset
        )
    design = build_design(formula, data, na_action)
    if _DESIGN_ONLY.get():
        raise _DesignBuilt(design)
    if design.n <= design.p:  # no residual degrees of freedom (a saturated fixed part)
        raise ValueError(
            f"the fixed effects of {formula!r} have {design.p} columns for {design.n} "
            "observations, which leaves no residual degrees of freedom; use fewer predictors "
            "(is a numeric column stored as text, making it a factor?)."
        )
    return _fit(design, bool(REML))
