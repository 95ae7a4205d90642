"""Estimate extraction: one adapter per model class (mitml's ``.getCoef`` / ``.getVcov`` / ``.getMisc``).

:func:`estimates` returns a fit's coefficients and their covariance matrix; :func:`variance_components`
returns the extra parameters mitml pools with ``extra.pars=TRUE`` (variance components, residual
variance, ICC) under mitml's names (``"Intercept~~Intercept|ID"``, ``"Residual~~Residual"``,
``"ICC|ID"``). Both are :func:`functools.singledispatch` functions, so a user can teach pymitml a new
model class::

    from pymitml.pool import extract_estimates
    @extract_estimates.register(MyFit)
    def _(fit):
        return pd.Series(fit.b, index=fit.names), pd.DataFrame(fit.V, fit.names, fit.names)

Built in: pymitml's ``LmerFit`` (registered lazily, so this module never imports the mixed-model code
itself), statsmodels results (OLS/WLS/GLM: ``params`` and ``cov_params()``; ``MixedLMResults``: fixed
effects only), and plain ``(estimates, covariance)`` tuples or ``{"coef": ..., "vcov": ...}`` dicts.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Mapping, Sequence
from functools import singledispatch
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["estimates", "stack_estimates", "variance_components"]


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def _type_name(obj: Any) -> str:
    t = type(obj)
    return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _unknown_fit(fit: Any) -> TypeError:
    name = type(fit).__name__
    return TypeError(
        f"pool_estimates cannot extract estimates from a fit of type '{_type_name(fit)}'. "
        "Pass them directly instead: pool_estimates(qhat=..., uhat=...) with qhat an (m, k) array of "
        "estimates and uhat an (m, k, k) array of covariance matrices (or (m, k) variances); or "
        "register an adapter: @pymitml.pool.extract_estimates.register("
        f"{name}) def _(fit): return coef_series, vcov_frame."
    )


def _as_coef(values: Any, what: str = "estimates") -> pd.Series:
    """Coefficients as a float Series; unnamed values get mitml's names Parameter.1, Parameter.2, ..."""
    if isinstance(values, pd.Series):
        s = values.astype(np.float64)
        s.index = [str(i) for i in s.index]
        return s
    if isinstance(values, Mapping):
        return pd.Series({str(k): float(v) for k, v in values.items()}, dtype=np.float64)
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"the {what} of one fit must be one-dimensional; got shape {arr.shape}.")
    return pd.Series(arr, index=[f"Parameter.{i + 1}" for i in range(arr.size)])


def _as_vcov(values: Any, names: list[str]) -> pd.DataFrame:
    """A covariance matrix (k, k) labelled by ``names``; a 1-D input is taken as variances."""
    if isinstance(values, pd.DataFrame):
        arr = values.to_numpy(dtype=np.float64)
    else:
        arr = np.asarray(values, dtype=np.float64)
    k = len(names)
    if arr.ndim == 1:
        arr = np.diag(arr) if arr.size == k else arr
    if arr.ndim == 0 and k == 1:
        arr = arr.reshape(1, 1)
    if arr.shape != (k, k):
        raise ValueError(
            f"the covariance matrix of a fit must be ({k}, {k}) to match its {k} estimates; "
            f"got shape {arr.shape}."
        )
    return pd.DataFrame(arr, index=names, columns=names)


# --------------------------------------------------------------------------------------------
# estimates(fit) -> (coef, vcov)
# --------------------------------------------------------------------------------------------
@singledispatch
def estimates(fit: Any) -> tuple[pd.Series, pd.DataFrame]:
    """Coefficients and their covariance matrix of one fitted model.

    Parameters
    ----------
    fit : a fitted model: pymitml ``LmerFit``, a statsmodels results object, a tuple
        ``(estimates, covariance)`` or a dict ``{"coef": ..., "vcov": ...}``.

    Returns
    -------
    coef : pandas Series (k,), indexed by parameter names.
    vcov : pandas DataFrame (k, k), labelled by the same names.

    Raises
    ------
    TypeError
        For an unknown fit type (the message says how to pass ``qhat``/``uhat`` instead).
    """
    if _register_lazily():
        impl = estimates.dispatch(type(fit))
        if impl is not _estimates_default:
            return impl(fit)
    if _looks_like_lmer(fit):
        return _estimates_lmer(fit)
    if _looks_like_statsmodels(fit):
        return _estimates_statsmodels(fit)
    raise _unknown_fit(fit)


_estimates_default = estimates.dispatch(object)


@estimates.register(tuple)
def _estimates_pair(fit: Sequence) -> tuple[pd.Series, pd.DataFrame]:
    if len(fit) != 2:
        raise ValueError(
            f"a fit given as a tuple must be a pair (estimates, covariance); got {len(fit)} items."
        )
    coef = _as_coef(fit[0])
    return coef, _as_vcov(fit[1], list(coef.index))


_COEF_KEYS = ("coef", "estimates", "qhat", "params")
_VCOV_KEYS = ("vcov", "covariance", "uhat", "cov_params")


@estimates.register(dict)
def _estimates_dict(fit: Mapping) -> tuple[pd.Series, pd.DataFrame]:
    ck = [k for k in _COEF_KEYS if k in fit]
    vk = [k for k in _VCOV_KEYS if k in fit]
    if not ck or not vk:
        raise ValueError(
            f"a fit given as a dict needs an estimates key (one of {list(_COEF_KEYS)}) and a "
            f"covariance key (one of {list(_VCOV_KEYS)}); got keys {list(fit)}."
        )
    coef = _as_coef(fit[ck[0]])
    return coef, _as_vcov(fit[vk[0]], list(coef.index))


def _looks_like_lmer(fit: Any) -> bool:
    return all(hasattr(fit, a) for a in ("fixef", "vcov", "varcorr"))


def _estimates_lmer(fit: Any) -> tuple[pd.Series, pd.DataFrame]:
    coef = _as_coef(fit.fixef)
    return coef, _as_vcov(fit.vcov, list(coef.index))


def _looks_like_statsmodels(fit: Any) -> bool:
    return type(fit).__module__.startswith("statsmodels") and hasattr(fit, "params") \
        and callable(getattr(fit, "cov_params", None))


def _is_mixedlm(fit: Any) -> bool:
    return type(getattr(fit, "model", None)).__name__ == "MixedLM"


def _statsmodels_names(fit: Any, k: int) -> list[str]:
    params = fit.params
    if isinstance(params, pd.Series):
        return [str(i) for i in params.index[:k]]
    names = getattr(getattr(fit, "model", None), "exog_names", None)
    if names is not None and len(names) >= k:
        return [str(n) for n in names[:k]]
    return [f"Parameter.{i + 1}" for i in range(k)]


def _estimates_statsmodels(fit: Any) -> tuple[pd.Series, pd.DataFrame]:
    params = np.asarray(fit.params, dtype=np.float64)
    cov = np.asarray(fit.cov_params(), dtype=np.float64)
    k = int(fit.k_fe) if _is_mixedlm(fit) else params.size   # MixedLM: fixed effects come first
    names = _statsmodels_names(fit, k)
    coef = pd.Series(params[:k], index=names)
    return coef, _as_vcov(cov[:k, :k], names)


# --------------------------------------------------------------------------------------------
# variance_components(fit) -> Series | None     (mitml's .getMisc)
# --------------------------------------------------------------------------------------------
@singledispatch
def variance_components(fit: Any) -> pd.Series | None:
    """The extra parameters mitml pools with ``extra.pars=TRUE``, or None if the class has none.

    For a linear mixed model, per grouping factor: the variances ``"a~~a|g"`` then the covariances
    ``"a~~b|g"`` (upper triangle, column by column, as mitml orders them; ``(Intercept)`` is written
    ``Intercept``), then ``"Residual~~Residual"`` (sigma^2) and, with one grouping factor whose terms
    include the intercept, ``"ICC|g"`` = tau_00 / (tau_00 + sigma^2). For a linear model the residual
    variance sum(e^2)/df_residual.
    """
    if _register_lazily():
        impl = variance_components.dispatch(type(fit))
        if impl is not _vc_default:
            return impl(fit)
    if _looks_like_lmer(fit):
        return _vc_lmer(fit)
    if _looks_like_statsmodels(fit):
        return _vc_statsmodels(fit)
    return None     # no extra parameters known for this class (mitml warns and pools none)


_vc_default = variance_components.dispatch(object)


def _mitml_term(name: str) -> str:
    return "Intercept" if name == "(Intercept)" else name


def _vc_block_names(terms: list[str], group: str, mat: np.ndarray) -> tuple[list[str], list[float]]:
    """mitml's order: diagonal first, then the upper triangle column by column."""
    t = [_mitml_term(n) for n in terms]
    names = [f"{a}~~{a}|{group}" for a in t]
    values = list(np.diag(mat))
    for j in range(len(t)):
        for i in range(j):
            names.append(f"{t[i]}~~{t[j]}|{group}")
            values.append(mat[i, j])
    return names, values


def _vc_from_blocks(blocks: list[tuple[str, list[str], np.ndarray]], resid_var: float | None
                    ) -> pd.Series:
    names: list[str] = []
    values: list[float] = []
    for group, terms, mat in blocks:
        n, v = _vc_block_names(terms, group, mat)
        names += n
        values += v
    if resid_var is not None:
        names.append("Residual~~Residual")
        values.append(resid_var)
        if len(blocks) == 1:
            group, terms, mat = blocks[0]
            if "(Intercept)" in terms:
                tau = mat[terms.index("(Intercept)"), terms.index("(Intercept)")]
                names.append(f"ICC|{group}")
                values.append(tau / (tau + resid_var))
    return pd.Series(np.asarray(values, dtype=np.float64), index=names)


def _vc_lmer(fit: Any) -> pd.Series:
    """From an lme4-style ``as.data.frame(VarCorr(fit))`` table: grp, var1, var2, vcov."""
    vc = fit.varcorr
    if not isinstance(vc, pd.DataFrame) or not {"grp", "var1", "var2", "vcov"} <= set(vc.columns):
        raise TypeError(
            "the fit's `varcorr` must be a DataFrame with columns grp, var1, var2, vcov (like R's "
            f"as.data.frame(VarCorr(fit))); got {type(vc).__name__}."
        )
    resid = vc["grp"].astype(str) == "Residual"
    blocks = []
    rows = vc.loc[~resid]
    for group in pd.unique(rows["grp"].astype(str)):
        g = rows.loc[rows["grp"].astype(str) == group]
        is_var = g["var2"].isna()
        terms = [str(v) for v in g.loc[is_var, "var1"]]
        mat = np.diag(g.loc[is_var, "vcov"].to_numpy(dtype=np.float64))
        pos = {t: i for i, t in enumerate(terms)}
        for a, b, c in g.loc[~is_var, ["var1", "var2", "vcov"]].itertuples(index=False):
            i, j = pos[str(a)], pos[str(b)]
            mat[i, j] = mat[j, i] = c
        blocks.append((group, terms, mat))
    sigma = getattr(fit, "sigma", None)
    if sigma is not None and np.isfinite(sigma):
        rv = float(sigma) ** 2
    elif resid.any():
        rv = float(vc.loc[resid, "vcov"].iloc[0])
    else:
        rv = None
    return _vc_from_blocks(blocks, rv)


def _vc_statsmodels(fit: Any) -> pd.Series | None:
    if _is_mixedlm(fit):
        cov_re = np.atleast_2d(np.asarray(fit.cov_re, dtype=np.float64))
        raw = [str(n) for n in getattr(fit.cov_re, "index", range(cov_re.shape[0]))]
        exog_re = getattr(fit.model, "exog_re", None)
        terms, group = [], "Group"
        for i, n in enumerate(raw):
            if exog_re is not None and np.all(np.asarray(exog_re)[:, i] == 1.0):
                terms.append("(Intercept)")   # statsmodels names the intercept after the group
                group = n
            else:
                terms.append(n)
        blocks = [(group, terms, cov_re)] if cov_re.size else []
        vcomp = np.atleast_1d(np.asarray(getattr(fit, "vcomp", []), dtype=np.float64))
        vc_names = getattr(getattr(fit.model, "exog_vc", None), "names", []) or []
        for name, v in zip(vc_names, vcomp):
            blocks.append((group, [str(name)], np.array([[v]])))
        return _vc_from_blocks(blocks, float(fit.scale))
    model = type(getattr(fit, "model", None)).__name__
    if model in ("OLS", "WLS", "GLS") or (
        model == "GLM" and type(fit.model.family).__name__ == "Gaussian"
    ):
        resid = np.asarray(fit.resid_response if model == "GLM" else fit.resid, dtype=np.float64)
        return pd.Series([float(resid @ resid) / float(fit.df_resid)], index=["Residual~~Residual"])
    return None


# --------------------------------------------------------------------------------------------
# lazy registration (pymitml.lmm and statsmodels are imported only if the user already did)
# --------------------------------------------------------------------------------------------
_REGISTERED: set[str] = set()


def _register_lazily() -> bool:
    """Register adapters for classes whose modules are loaded; True if anything new was added."""
    added = False
    if "lmer" not in _REGISTERED and "pymitml.lmm" in sys.modules:
        LmerFit = getattr(sys.modules["pymitml.lmm"], "LmerFit", None)
        if isinstance(LmerFit, type):
            estimates.register(LmerFit, _estimates_lmer)
            variance_components.register(LmerFit, _vc_lmer)
            _REGISTERED.add("lmer")
            added = True
    if "statsmodels" not in _REGISTERED and "statsmodels.base.wrapper" in sys.modules:
        wrapper = sys.modules["statsmodels.base.wrapper"].ResultsWrapper
        estimates.register(wrapper, _estimates_statsmodels)
        variance_components.register(wrapper, _vc_statsmodels)
        _REGISTERED.add("statsmodels")
        added = True
    return added


# --------------------------------------------------------------------------------------------
# m fits -> (names, qhat (m, k), uhat (m, k, k))
# --------------------------------------------------------------------------------------------
def _check_same_names(names: list[list[str]], what: str) -> list[str]:
    first = names[0]
    for i, n in enumerate(names[1:], start=2):
        if n != first:
            extra = [x for x in n if x not in first]
            lost = [x for x in first if x not in n]
            detail = (f"only in fit {i}: {extra}; only in fit 1: {lost}" if extra or lost
                      else "same names in a different order")
            raise ValueError(
                f"the {what} of fit {i} are named {n}, but those of fit 1 are {first} ({detail}). "
                "Every imputed data set must give the same parameters: check that factor levels "
                "and formula terms are the same in all data sets."
            )
    return first


def _check_m(fits: Any) -> list:
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence):
        raise TypeError(
            "`fits` must be a list of fitted models, one per imputed data set (e.g. "
            f"implist.with_(...)); got {type(fits).__name__}."
        )
    fits = list(fits)
    if len(fits) < 2:
        raise ValueError(
            f"pooling needs fits from at least 2 imputed data sets; got {len(fits)}. "
            "Impute with m >= 2."
        )
    return fits


def stack_estimates(fits: Sequence[Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Estimates of m fits stacked: parameter names, qhat (m, k) and uhat (m, k, k).

    Checks that there are at least two fits and that all give the same parameter names.
    """
    fits = _check_m(fits)
    pairs = [estimates(f) for f in fits]
    names = _check_same_names([list(c.index) for c, _ in pairs], "estimates")
    qhat = np.stack([c.to_numpy(dtype=np.float64) for c, _ in pairs])
    uhat = np.stack([v.to_numpy(dtype=np.float64) for _, v in pairs])
    return names, qhat, uhat


def stack_variance_components(fits: Sequence[Any]) -> tuple[list[str], np.ndarray] | None:
    """Extra parameters of m fits stacked: names and an (m, p) array; None (with mitml's warning)
    when the fit class has none."""
    fits = _check_m(fits)
    comps = [variance_components(f) for f in fits]
    if any(c is None for c in comps):
        warnings.warn(
            "Computation of variance components not supported for objects of class "
            f"'{_type_name(fits[0])}'; extra_pars is ignored.", UserWarning, stacklevel=3,
        )
        return None
    names = _check_same_names([list(c.index) for c in comps], "variance components")
    return names, np.stack([c.to_numpy(dtype=np.float64) for c in comps])
