"""Rights & Sterba's (2019) R^2 decomposition of two-level lmer fits, per imputation and pooled.

The model-implied variance of the outcome is split into five sources (Rights & Sterba 2019,
Psychological Methods 24, 309-338, eqs. 9-12 and Table 1). With the fixed predictors split into
level-1 columns x_w (cluster-mean centred: every cluster mean 0) and level-2 columns x_b
(constant within clusters), fixed slopes gamma_w, gamma_b, the random-effect columns w (the
intercept and the random slopes) with covariance T and residual variance sigma^2:

    f1 = gamma_w' Phi_w gamma_w       fixed slopes of level-1 predictors     (within)
    f2 = gamma_b' Phi_b gamma_b       fixed slopes of level-2 predictors     (between)
    v  = tr(T Sigma_w)                random slope variation                  (within)
    m  = mu_w' T mu_w                 random intercept (mean) variation       (between)
    sigma^2                           level-1 residual                        (within)

Phi: the covariance of the columns over rows (divisor n - 1, as Nakagawa's var(X beta));
Sigma_w and mu_w: the covariance (divisor n) and means of the random-effect columns, so that
v + m is exactly Nakagawa & Schielzeth's (Johnson's) random-effect variance and the total
measures below equal ``performance::r2_nakagawa``: R2_t(f) is its marginal R^2 and R2_t(fvm)
its conditional R^2 (tested). Measures:

- total (denominator f1 + f2 + v + m + sigma^2): f1, f2, v, m, f = f1 + f2, fv, fvm;
- within (f1 + v + sigma^2): f1, v, f1v;
- between (f2 + m): f2, m.

When a fixed predictor varies both within and between clusters (not cluster-mean centred),
the within/between split of its part is not defined: then only the total measures f, v, m,
fv, fvm are given (r2mlm's "non-centred" output), and the result says which predictors.

Pooling: as for :func:`pymitml.pool_r2_nakagawa`, each measure is averaged over imputations on
the logit scale and back-transformed (plain mean, min and max beside), with an interval from
Rubin's rules on that scale; each fit's standard error of logit R^2 by the delta method in
(beta, log SDs / Fisher z / log sigma) with the observed information of the REML/ML criterion
(numerical derivatives), X held fixed. Measures that are zero by the model's structure (no
random slopes: v; no level-2 predictors: f2) are left out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from .estimates import format_table
from .r2_nakagawa import PooledR2, logit_pooled_table, screen_r2_fits

__all__ = ["PooledR2RightsSterba", "pool_r2_rights_sterba", "r2_rights_sterba"]

_CENTRED = (
    ("total", "f1"),
    ("total", "f2"),
    ("total", "v"),
    ("total", "m"),
    ("total", "f"),
    ("total", "fv"),
    ("total", "fvm"),
    ("within", "f1"),
    ("within", "v"),
    ("within", "f1v"),
    ("between", "f2"),
    ("between", "m"),
)
_TOTAL = (("total", "f"), ("total", "v"), ("total", "m"), ("total", "fv"), ("total", "fvm"))


@dataclass(frozen=True)
class _Layout:
    """Which fixed columns are level-1 (centred), level-2 or mixed, and the data moments."""

    within: np.ndarray  # indices into beta
    between: np.ndarray
    mixed: tuple[str, ...]
    Xc: np.ndarray  # X centred over rows (n, p)
    Wmean: np.ndarray  # means of the random-effect columns (q,)
    Wcov: np.ndarray  # their covariance, divisor n (q, q)


def _layout(fit: Any) -> _Layout:
    if hasattr(fit, "family") or not hasattr(fit, "fixef"):
        raise TypeError(
            "Rights & Sterba's R^2 needs linear mixed-model fits from pm.lmer; got a "
            f"{type(fit).__name__}."
        )
    if len(getattr(fit, "re_terms", ())) > 1:
        raise ValueError(
            "Rights & Sterba's R^2 is defined here for two-level models with one grouping "
            "factor; this fit has several random-effect terms, for grouping factors "
            f"({', '.join(t.label for t in fit.re_terms)})."
        )
    X = np.asarray(fit.X, dtype=float)
    W = np.asarray(fit.Z, dtype=float)
    g = np.asarray(fit.cluster_codes)
    J = int(g.max()) + 1
    cnt = np.bincount(g, minlength=J).astype(float)
    means = np.stack([np.bincount(g, X[:, k], minlength=J) / cnt for k in range(X.shape[1])], 1)
    scale = X.std(axis=0) + 1e-300
    const = np.all(np.abs(X - X[0]) <= 1e-10 * (np.abs(X).max(axis=0) + 1), axis=0)
    dev = np.abs(X - means[g]).max(axis=0) / scale
    cm = np.abs(means).max(axis=0) / scale
    between = [k for k in range(X.shape[1]) if not const[k] and dev[k] <= 1e-8]
    within = [k for k in range(X.shape[1]) if not const[k] and dev[k] > 1e-8 and cm[k] <= 1e-8]
    names = list(fit.fixed_names)
    mixed = tuple(names[k] for k in range(X.shape[1]) if not const[k] and k not in within + between)
    Wm = W.mean(axis=0)
    Wd = W - Wm
    return _Layout(
        np.array(within, int),
        np.array(between, int),
        mixed,
        X - X.mean(axis=0),
        Wm,
        Wd.T @ Wd / W.shape[0],
    )


def _quad(Xc: np.ndarray, beta: np.ndarray, idx: np.ndarray) -> float:
    if idx.size == 0:
        return 0.0
    eta = Xc[:, idx] @ beta[idx]
    return float(eta @ eta) / (Xc.shape[0] - 1)


def _measures(lay: _Layout, beta: np.ndarray, tau: np.ndarray, sigma2: float) -> pd.Series:
    """The decomposition's measures at given parameters (see the module docstring)."""
    f1 = _quad(lay.Xc, beta, lay.within)
    f2 = _quad(lay.Xc, beta, lay.between)
    f = _quad(lay.Xc, beta, np.arange(beta.size))
    v = float(np.sum(tau * lay.Wcov))
    mm = float(lay.Wmean @ tau @ lay.Wmean)
    tot = f + v + mm + sigma2
    if lay.mixed:
        vals = {"f": f, "v": v, "m": mm, "fv": f + v, "fvm": f + v + mm}
        return pd.Series({("total", k): x / tot for k, x in vals.items()})
    wd, bd = f1 + v + sigma2, f2 + mm
    out = {
        ("total", "f1"): f1 / tot,
        ("total", "f2"): f2 / tot,
        ("total", "v"): v / tot,
        ("total", "m"): mm / tot,
        ("total", "f"): (f1 + f2) / tot,
        ("total", "fv"): (f1 + f2 + v) / tot,
        ("total", "fvm"): (f1 + f2 + v + mm) / tot,
        ("within", "f1"): f1 / wd,
        ("within", "v"): v / wd,
        ("within", "f1v"): (f1 + v) / wd,
        ("between", "f2"): f2 / bd if bd > 0 else np.nan,
        ("between", "m"): mm / bd if bd > 0 else np.nan,
    }
    return pd.Series(out)


def r2_rights_sterba(fit: Any) -> pd.Series:
    """Rights & Sterba's R^2 measures of one two-level lmer fit.

    Returns a Series indexed by (decomposition, measure): ``("total", "f1")`` ...
    ``("between", "m")`` for cluster-mean-centred level-1 predictors, or the total measures
    ``f, v, m, fv, fvm`` when a predictor varies at both levels (see the module docstring).
    ``.attrs["mixed"]`` names such predictors.
    """
    lay = _layout(fit)
    tau = fit.cov_random.to_numpy(dtype=float)
    out = _measures(lay, fit.fixef.to_numpy(dtype=float), tau, float(fit.sigma) ** 2)
    out.index = pd.MultiIndex.from_tuples(out.index, names=["decomposition", "measure"])
    out.attrs["mixed"] = lay.mixed
    return out


def _structural(lay: _Layout, fit: Any) -> list[tuple[str, str]]:
    """The measures this model does not fix at 0 or 1 by its structure."""
    slopes = any(n != "(Intercept)" for n in fit.random_names)
    drop: set[tuple[str, str]] = set()
    if not slopes:
        drop |= {("total", "v"), ("total", "fv"), ("within", "v"), ("within", "f1v")}
    if not lay.mixed and lay.between.size == 0:  # f2 = 0, between m = 1
        drop |= {("total", "f2"), ("between", "f2"), ("between", "m")}
    if not lay.mixed and lay.within.size == 0:
        drop |= {("total", "f1"), ("within", "f1"), ("within", "f1v")}
    return [k for k in (_TOTAL if lay.mixed else _CENTRED) if k not in drop]


def _logit_se(fit: Any, lay: _Layout, keys: list[tuple[str, str]]) -> np.ndarray:
    """Delta-method standard errors of logit R^2 for ``keys`` (NaN at boundary fits)."""
    from .variance_components import (
        _covs_of,
        _terms_and_values,
        transformed_covariance_parameters,
    )

    try:
        phi_s, cov = transformed_covariance_parameters(fit)
    except ValueError:
        return np.full(len(keys), np.nan)
    terms = _terms_and_values(fit)[0]
    beta = fit.fixef.to_numpy(dtype=float)
    phi = phi_s.to_numpy()

    def logit_at(b: np.ndarray, p: np.ndarray) -> np.ndarray:
        covs, sig = _covs_of(p, terms)
        r = _measures(lay, b, covs[0], sig**2)[keys].to_numpy(dtype=float)
        return np.log(r / (1.0 - r))

    h = 1e-6
    gb = np.stack(
        [
            (logit_at(beta + h * e, phi) - logit_at(beta - h * e, phi)) / (2 * h)
            for e in np.eye(beta.size)
        ],
        1,
    )
    gp = np.stack(
        [
            (logit_at(beta, phi + h * e) - logit_at(beta, phi - h * e)) / (2 * h)
            for e in np.eye(phi.size)
        ],
        1,
    )
    Vb, Vp = fit.vcov.to_numpy(dtype=float), cov.to_numpy()
    return np.sqrt(np.einsum("ij,jk,ik->i", gb, Vb, gb) + np.einsum("ij,jk,ik->i", gp, Vp, gp))


@dataclass(frozen=True, repr=False, eq=False)
class PooledR2RightsSterba(PooledR2):
    """Pooled Rights & Sterba R^2: ``table`` indexed by (decomposition, measure) with
    ``Estimate`` (logit-scale pooled), ``Mean``, ``Min``, ``Max``, the interval and on the logit
    scale ``Std.Error``, ``df``, ``FMI``; ``per_imputation``; ``mixed`` (predictors that vary at
    both levels, for which only the total decomposition is defined)."""

    mixed: tuple[str, ...] = ()

    def to_string(self, digits: int = 3) -> str:
        lines = ["", f"Rights & Sterba R2 pooled over {self.m} imputed data sets", ""]
        if self.fit_report is not None and not self.fit_report.clean:
            lines += self.fit_report.lines() + [""]
        tab = self._table.copy()
        tab.index = [f"{d}:{m}" for d, m in tab.index]
        lines += format_table(tab, digits, 5)
        lines += [
            "",
            "f1/f2: fixed slopes of level-1/level-2 predictors; v: random slope variation;",
            "m: random intercept variation. Estimate: mean of logit(R2), back-transformed.",
        ]
        if self.mixed:
            lines.append(
                "Predictors varying at both levels (" + ", ".join(self.mixed) + "): only the "
                "total decomposition is defined; centre them within clusters for the rest."
            )
        return "\n".join(lines) + "\n"

    __str__ = __repr__ = to_string


def pool_r2_rights_sterba(
    fits: Sequence[Any], *, level: float = 0.95, on_failure: str = "error"
) -> PooledR2RightsSterba:
    """Rights & Sterba's (2019) R^2 decomposition of m two-level lmer fits, pooled.

    Parameters
    ----------
    fits : m ``pm.lmer`` fits with one grouping factor.
    level : confidence level of the intervals.
    on_failure : ``"error"`` | ``"drop"`` | ``"drop_warned"`` as in :func:`pool_estimates`.

    Examples
    --------
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ xc + xm + (1 + xc | g)", d))  # doctest: +SKIP
    >>> pm.pool_r2_rights_sterba(fits).table  # doctest: +SKIP
    """
    kept, report = screen_r2_fits(fits, level, on_failure)
    lays = [_layout(f) for f in kept]
    mixed = tuple(sorted({n for lay in lays for n in lay.mixed}))
    if mixed:  # one decomposition for every imputation
        lays = [replace(lay, mixed=mixed) for lay in lays]
    keys = _structural(lays[0], kept[0])
    tau = [f.cov_random.to_numpy(dtype=float) for f in kept]
    per = pd.DataFrame(
        [
            _measures(lay, f.fixef.to_numpy(dtype=float), t, float(f.sigma) ** 2)[keys]
            for lay, f, t in zip(lays, kept, tau)
        ]
    )
    per.columns = pd.MultiIndex.from_tuples(keys, names=["decomposition", "measure"])
    per.index = pd.RangeIndex(1, len(kept) + 1, name="fit")
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.stack([_logit_se(f, lay, keys) ** 2 for f, lay in zip(kept, lays)])
    table = logit_pooled_table(per, u, level)
    return PooledR2RightsSterba(table, per, len(kept), report, mixed=mixed)
