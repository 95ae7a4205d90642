"""Estimate extraction: one adapter per model class (mitml's ``.getCoef`` / ``.getVcov`` / ``.getMisc``).

:func:`estimates` returns a fit's coefficients and their covariance matrix; :func:`variance_components`
returns the extra parameters mitml pools with ``extra.pars=TRUE`` (variance components, residual
variance, ICC) under mitml's names (``"Intercept~~Intercept|ID"``, ``"Residual~~Residual"``,
``"ICC|ID"``). Both look the fit's class up in the one model registry (:mod:`._registry`); a user
teaches pymitml a new class with :func:`pymitml.register_model`.

The adapters defined here (registered in :mod:`._builtin`): pymitml's ``LmerFit`` and any object
with lme4's ``fixef``, ``vcov`` and ``varcorr``, statsmodels results (OLS/WLS/GLM: ``params`` and
``cov_params()``; ``MixedLMResults``: fixed effects only), and plain ``(estimates, covariance)``
tuples or ``{"coef": ..., "vcov": ...}`` dicts.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._registry import adapter_for, register_model, update_model

__all__ = [
    "check_estimates",
    "check_variances",
    "estimates",
    "stack_estimates",
    "variance_components",
]


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
        f"register the class: pymitml.register_model({name}, lambda fit: (coef, vcov))."
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
    adapter = adapter_for(fit)
    if adapter is None:
        raise _unknown_fit(fit)
    coef, vcov = adapter.estimates(fit)
    if isinstance(coef, pd.Series) and isinstance(vcov, pd.DataFrame) and coef.dtype == np.float64:
        return coef, vcov
    coef = _as_coef(coef)
    return coef, _as_vcov(vcov, list(coef.index))


def _register_estimates(cls: type, func: Any = None) -> Any:
    """``extract_estimates.register(cls)``: the wave-1 spelling of :func:`register_model`."""
    return register_model(cls, func)


estimates.register = _register_estimates  # type: ignore[attr-defined]


def _estimates_pair(fit: Sequence) -> tuple[pd.Series, pd.DataFrame]:
    if len(fit) != 2:
        raise ValueError(
            f"a fit given as a tuple must be a pair (estimates, covariance); got {len(fit)} items."
        )
    coef = _as_coef(fit[0])
    return coef, _as_vcov(fit[1], list(coef.index))


_COEF_KEYS = ("coef", "estimates", "qhat", "params")
_VCOV_KEYS = ("vcov", "covariance", "uhat", "cov_params")


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
    k = int(fit.k_fe) if _is_mixedlm(fit) else params.size  # MixedLM: fixed effects come first
    names = _statsmodels_names(fit, k)
    coef = pd.Series(params[:k], index=names)
    return coef, _as_vcov(cov[:k, :k], names)


# --------------------------------------------------------------------------------------------
# variance_components(fit) -> Series | None     (mitml's .getMisc)
# --------------------------------------------------------------------------------------------
def variance_components(fit: Any) -> pd.Series | None:
    """The extra parameters mitml pools with ``extra.pars=TRUE``, or None if the class has none.

    For a linear mixed model, per grouping factor: the variances ``"a~~a|g"`` then the covariances
    ``"a~~b|g"`` (upper triangle, column by column, as mitml orders them; ``(Intercept)`` is written
    ``Intercept``), then ``"Residual~~Residual"`` (sigma^2) and, with one grouping factor whose terms
    include the intercept, ``"ICC|g"`` = tau_00 / (tau_00 + sigma^2). For a linear model the residual
    variance sum(e^2)/df_residual.
    """
    adapter = adapter_for(fit)
    if adapter is None or adapter.variance_components is None:
        return None  # no extra parameters known for this class (mitml warns and pools none)
    return adapter.variance_components(fit)


def _register_variance_components(cls: type, func: Any = None) -> Any:
    """``extract_variance_components.register(cls)``: extra parameters of a registered class."""
    if func is None:
        return lambda f: _register_variance_components(cls, f)
    update_model(cls, variance_components=func)
    return func


variance_components.register = _register_variance_components  # type: ignore[attr-defined]


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


def _vc_from_blocks(
    blocks: list[tuple[str, list[str], np.ndarray]], resid_var: float | None
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
                terms.append("(Intercept)")  # statsmodels names the intercept after the group
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
# m fits -> (names, qhat (m, k), uhat (m, k, k))
# --------------------------------------------------------------------------------------------
def _check_same_names(names: list[list[str]], what: str, unit: str = "fit") -> list[str]:
    first = names[0]
    for i, n in enumerate(names[1:], start=2):
        if n != first:
            extra = [x for x in n if x not in first]
            lost = [x for x in first if x not in n]
            detail = (
                f"only in {unit} {i}: {extra}; only in {unit} 1: {lost}"
                if extra or lost
                else "same names in a different order"
            )
            raise ValueError(
                f"the {what} of {unit} {i} (imputation {i}) are named {n}, but those of {unit} 1 "
                f"are {first} ({detail}). "
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
    from ._failures import check_no_failed  # here: _failures reads the MitmlList records

    check_no_failed(fits)
    if len(fits) < 2:
        raise ValueError(
            f"pooling needs fits from at least 2 imputed data sets; got {len(fits)}. "
            "Impute with m >= 2."
        )
    return fits


def check_estimates(names: Sequence[str], qhat: np.ndarray, where: str = "fit") -> None:
    """Every estimate finite, else a ValueError naming the imputation, the parameter, the value."""
    bad = np.argwhere(~np.isfinite(qhat))
    if bad.size:
        i, j = (int(x) for x in bad[0])
        more = f" ({len(bad) - 1} more non-finite estimate(s))" if len(bad) > 1 else ""
        raise ValueError(
            f"the estimate of '{names[j]}' in imputation {i + 1} ({where} {i + 1}) is "
            f"{float(qhat[i, j])!r}{more}; every estimate must be finite. Look at that analysis (a fit "
            "that did not converge, separation in a logistic model) and refit it, or drop the "
            "imputation."
        )


def check_variances(names: Sequence[str], uhat: np.ndarray, where: str = "fit") -> None:
    """Variances (the diagonal of each covariance, or (m, k) variances) finite and >= 0, and
    covariances finite; else a ValueError naming the imputation, the parameter and the value.

    With them, RIV and FMI cannot be negative or NaN (Rubin's rules divide by the mean variance).
    """
    var = uhat if uhat.ndim == 2 else np.diagonal(uhat, axis1=1, axis2=2)
    bad = np.argwhere(~np.isfinite(var) | (var < 0))
    if bad.size:
        i, j = (int(x) for x in bad[0])
        more = f" ({len(bad) - 1} more bad variance(s))" if len(bad) > 1 else ""
        raise ValueError(
            f"the variance of '{names[j]}' in imputation {i + 1} ({where} {i + 1}) is "
            f"{float(var[i, j])!r} (diagonal of its covariance matrix){more}; variances must be finite "
            "and >= 0. A negative or NaN variance comes from a failed or singular fit: refit "
            "that analysis, or drop the imputation."
        )
    if uhat.ndim == 3:
        off = np.argwhere(~np.isfinite(uhat))
        if off.size:
            i, j, k = (int(x) for x in off[0])
            raise ValueError(
                f"the covariance of '{names[j]}' and '{names[k]}' in imputation {i + 1} "
                f"({where} {i + 1}) is {float(uhat[i, j, k])!r}; every covariance must be finite."
            )


def stack_estimates(fits: Sequence[Any]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Estimates of m fits stacked: parameter names, qhat (m, k) and uhat (m, k, k).

    Checks that there are at least two fits, that all give the same parameter names, that the
    estimates and covariances are finite and the variances >= 0.
    """
    fits = _check_m(fits)
    pairs = [estimates(f) for f in fits]
    names = _check_same_names([list(c.index) for c, _ in pairs], "estimates")
    qhat = np.stack([c.to_numpy(dtype=np.float64) for c, _ in pairs])
    uhat = np.stack([v.to_numpy(dtype=np.float64) for _, v in pairs])
    check_estimates(names, qhat)
    check_variances(names, uhat)
    return names, qhat, uhat


def stack_variance_components(fits: Sequence[Any]) -> tuple[list[str], np.ndarray] | None:
    """Extra parameters of m fits stacked: names and an (m, p) array; None (with mitml's warning)
    when the fit class has none."""
    fits = _check_m(fits)
    comps = [variance_components(f) for f in fits]
    if any(c is None for c in comps):
        warnings.warn(
            "Computation of variance components not supported for objects of class "
            f"'{_type_name(fits[0])}'; extra_pars is ignored.",
            UserWarning,
            stacklevel=3,
        )
        return None
    series = [c for c in comps if c is not None]  # all of them (checked above)
    names = _check_same_names([list(c.index) for c in series], "variance components")
    return names, np.stack([c.to_numpy(dtype=np.float64) for c in series])
