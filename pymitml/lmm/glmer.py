"""``glmer``: lme4's generalised linear mixed model (binomial, Poisson), fitted natively.

The criterion is lme4's (Bates, Maechler, Bolker & Walker 2015; lme4's glmer): the Laplace
approximation of the deviance at the conditional modes found by PIRLS (:mod:`._pirls`), or
adaptive Gauss-Hermite quadrature for one scalar random effect (:mod:`._pirls_agq`), optimised
in lme4's two stages (:mod:`.glmer_optimize`).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import ConvergenceWarning
from ._family import make_family
from ._multi_design import MultiDesign
from .glmer_design import GlmerDesign, build_glmer_design
from .glmer_fit import GlmerFit, MultiGlmerFit, frame, varcorr_frame
from .glmer_optimize import GlmerObjective, OptimumResult, optimize_glmer
from .multi_fit import _varcorr as multi_varcorr
from .multi_fit import re_terms_of

__all__ = ["GlmerFit", "glmer"]

#: lme4's ``isSingular`` tolerance on the diagonal of T
SINGULAR_TOL = 1e-4
SINGULAR_MESSAGE = "boundary (singular) fit: see help('isSingular') in lme4"
AGQ_MESSAGE = "nAGQ > 1 is only available for models with a single, scalar random-effects term"
#: fitted probabilities this close to 0 or 1 count as separated
SEPARATION_EPS = 1e-8


def _check_nagq(nAGQ: Any) -> int:
    if isinstance(nAGQ, bool) or not isinstance(nAGQ, (int, np.integer)) or nAGQ < 0:
        raise ValueError(f"`nAGQ` must be a non-negative integer; got {nAGQ!r}.")
    return int(nAGQ)


def _check_scalar_term(nAGQ: int, q: int) -> None:
    if nAGQ > 1 and q != 1:
        raise ValueError(f"{AGQ_MESSAGE} (got nAGQ={nAGQ} with {q} random effects per cluster).")


def _vcov(obj: GlmerObjective, opt: OptimumResult, mode, messages: list[str]):
    """lme4's Hessian-based vcov of beta, and the RX-based one."""
    theta = opt.x[: obj.n_theta]
    system = obj.system
    system.set_weights(mode.sqrtw.copy())
    system.solve(theta, mode.eta - obj.data.offset, False)
    lx = system.lx()
    linv = np.linalg.inv(lx) if lx.size else lx
    v_rx = linv.T @ linv
    if opt.hessian is None:  # nAGQ = 0: lme4 computes no Hessian
        return v_rx, v_rx
    try:
        h = np.linalg.inv(opt.hessian)[obj.n_theta :, obj.n_theta :]
        v_hess = h + h.T
        ok = bool(np.all(np.isfinite(v_hess))) and (
            v_hess.size == 0 or float(np.min(np.linalg.eigvalsh(v_hess))) > 0.0
        )
    except np.linalg.LinAlgError:
        ok = False
    if not ok:
        messages.append(
            "variance-covariance matrix computed from finite-difference Hessian is not "
            "positive definite or contains NA values: falling back to var-cov estimated from RX"
        )
        v_hess = v_rx
    return v_hess, v_rx


def _separation(design: GlmerDesign, beta: np.ndarray, se: np.ndarray, mu: np.ndarray):
    """Fixed effects that look like perfect separation (binomial), or an empty list."""
    if design.family.name != "binomial":
        return []
    at_bound = (mu < SEPARATION_EPS) | (mu > 1.0 - SEPARATION_EPS)
    if not at_bound.any():
        return []
    names = design.lmer.fixed_names
    # the change of the linear predictor a term makes across the data: beyond the logistic
    # clamp (|eta| = 30) only for a term whose estimate ran off to infinity
    span = np.abs(beta) * np.ptp(design.lmer.X, axis=0)
    cut = max(30.0, 0.1 * float(np.max(span, initial=0.0)))
    bad = [names[k] for k in range(beta.size) if span[k] > cut]
    if not bad and beta.size:
        bad = [names[int(np.argmax(span if np.any(span > 0) else se))]]
    return bad


def _assemble(design: GlmerDesign, obj: GlmerObjective, opt: OptimumResult) -> GlmerFit:
    d = design.lmer
    mode = obj.mode(opt.x)
    assert mode is not None  # the optimum is a feasible point
    theta, beta = obj.split(opt.x)
    messages = list(opt.messages)
    v_hess, v_rx = _vcov(obj, opt, mode, messages)
    fixed = list(d.fixed_names)
    several = isinstance(d, MultiDesign)
    diag = theta[obj.diag]
    singular = bool(np.any(diag < SINGULAR_TOL))
    if singular:
        messages.append(SINGULAR_MESSAGE)
    se = np.sqrt(np.abs(np.diag(v_hess)))
    separated = _separation(design, beta, se, mode.mu)
    if separated:
        est = np.round(beta[[fixed.index(s) for s in separated]], 3).tolist()
        messages.append(
            "fitted probabilities numerically 0 or 1 occurred: perfect or quasi-complete "
            f"separation by {separated} (estimates {est} with huge standard errors); the "
            "estimates of these terms are not finite: drop or recode them, or use a penalised "
            "(bias-reduced) model"
        )
    aic_part = design.family.aic(design.y, mode.mu, design.weights)
    uu = float(np.sum(mode.u * mode.u))
    loglik = -0.5 * opt.fun if obj.nAGQ > 1 else -0.5 * (aic_part + uu + mode.logdet)
    converged = opt.converged and not separated
    if not converged:
        warnings.warn(
            f"glmer({design.formula!r}): "
            + "; ".join(m for m in messages if m != SINGULAR_MESSAGE),
            ConvergenceWarning,
            stacklevel=3,
        )
    if isinstance(d, MultiDesign):
        Ts = obj.Ts(theta)
        table = multi_varcorr(d, Ts, 1.0)
        vc = table.loc[table["grp"] != "Residual"].reset_index(drop=True)
        b = np.asarray(mode.b).ravel()
        ranef: Any = {}
        for info, t in zip(re_terms_of(d), d.terms):
            ranef[info.label] = pd.DataFrame(
                b[info.columns].reshape(t.n_levels, t.q),
                index=pd.Index(t.labels, name=t.group),
                columns=list(t.names),
            )
        ngroups = d.terms[0].n_levels
    else:
        vc = varcorr_frame(d, obj.T(theta))
        ranef = pd.DataFrame(
            mode.b, index=pd.Index(d.labels, name=d.cluster), columns=list(d.random_names)
        )
        ngroups = d.n_clusters
    cls: Any = MultiGlmerFit if several else GlmerFit
    extra = {"re_terms": re_terms_of(d)} if isinstance(d, MultiDesign) else {}
    return cls(
        formula=design.formula,
        family=design.family.name,
        link=design.family.link,
        nAGQ=obj.nAGQ,
        fixef=pd.Series(beta, index=fixed, dtype=float),
        vcov=frame(v_hess, fixed),
        vcov_rx=frame(v_rx, fixed),
        varcorr=vc,
        theta=theta.copy(),
        objective=float(opt.fun),
        loglik=float(loglik),
        deviance=float(np.sum(mode.devres)),
        ranef=ranef,
        nobs=d.n,
        ngroups=ngroups,
        n_fixed=d.p,
        converged=converged,
        singular=singular,
        messages=tuple(messages),
        n_evaluations=opt.n_evaluations,
        hessian=opt.hessian,
        _design=design,
        _mode=mode,
        **extra,
    )


def glmer(
    formula: str,
    data: Any,
    family: str = "binomial",
    *,
    link: str | None = None,
    nAGQ: int = 1,
    weights: Any = None,
    offset: Any = None,
    na_action: str = "fail",
) -> GlmerFit:
    """Fit a generalised linear mixed model with one grouping factor, as ``lme4::glmer``.

    Parameters
    ----------
    formula : lme4 formula with one random-effects term. Binomial responses: a 0/1 column
        (numeric, bool, or a two-level factor whose first level is the failure), a proportion
        with ``weights=`` the numbers of trials, or ``cbind(successes, failures)``; Poisson:
        counts. ``offset(expr)`` terms are added to the linear predictor.
    data : pandas or polars DataFrame.
    family : ``"binomial"`` (default) or ``"poisson"``.
    link : ``"logit"`` (binomial default), ``"probit"``, ``"cloglog"``; ``"log"`` (Poisson).
    nAGQ : 1 (default): Laplace approximation; > 1: adaptive Gauss-Hermite quadrature with
        that many points (only for one scalar random effect, as lme4); 0: lme4's fast
        approximation (beta from PIRLS, only theta optimised; RX-based ``vcov``).
    weights : prior weights (binomial: numbers of trials of a proportion), a column name or
        an array with one value per row of ``data``.
    offset : a column name or array added to the linear predictor (with any ``offset()``).
    na_action : ``"fail"`` (default; missing values are an error) or ``"omit"`` (lme4's
        default na.omit).

    Returns
    -------
    GlmerFit

    Notes
    -----
    lme4's criterion and stages (see :mod:`.glmer_optimize`); the optimum is polished by
    Newton steps, so its deviance is at most lme4's. ``vcov`` is lme4's default, from the
    finite-difference Hessian over (theta, beta). Convergence problems, perfect separation and
    non-finite estimates warn with :class:`~pymitml.exceptions.ConvergenceWarning`; a singular
    fit is flagged in ``singular`` and ``messages``.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pymitml as pm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 20)
    >>> x = rng.normal(size=600)
    >>> eta = -0.5 + 0.8 * x + rng.normal(size=30)[g]
    >>> y = rng.binomial(1, 1 / (1 + np.exp(-eta)))
    >>> fit = pm.glmer("y ~ x + (1 | g)", pd.DataFrame({"y": y, "x": x, "g": g}))
    >>> fit.coef_table().round(2)  # doctest: +SKIP
    """
    fam = make_family(family, link)
    k = _check_nagq(nAGQ)
    design = build_glmer_design(formula, data, fam, weights, offset, na_action)
    if isinstance(design.lmer, MultiDesign):
        if k > 1:
            raise ValueError(
                f"{AGQ_MESSAGE} (got nAGQ={k} with {len(design.lmer.terms)} random-effect terms)."
            )
    else:
        _check_scalar_term(k, design.lmer.q)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # small dense factorisations: one BLAS thread, same result anywhere
        obj = GlmerObjective(design, k)
        opt = optimize_glmer(obj)
        return _assemble(design, obj, opt)
