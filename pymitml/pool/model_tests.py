"""Pooled model comparisons over m imputations: the D1, D2, D3 and D4 statistics (mitml's testModels).

Notation (Rubin 1987; Li, Raghunathan & Rubin 1991; Li, Meng, Raghunathan & Rubin 1991; Meng &
Rubin 1992; Reiter 2007; Chan & Meng 2019): ``q_hat`` (m, k) estimates of the k tested parameters,
``u_hat`` (m, k, k) their covariances, ``q_bar``/``u_bar`` the means, ``b`` the between-imputation
covariance, ``r`` the average relative increase in variance (RIV), ``v`` the denominator degrees of
freedom of the F reference distribution ``F(k, v)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_df_com
from . import _likelihood as _ll
from ._failures import FitReport, check_no_failed, screen_fit_pair

__all__ = ["ModelTestResult", "compare_models"]

TEST_COLUMNS = ["F.value", "df1", "df2", "P(>F)", "RIV"]
_METHODS = ("D1", "D2", "D3", "D4")
_USES = ("wald", "likelihood")
_ARIVS = ("default", "positive", "robust")


# --------------------------------------------------------------------------------------------
# the statistics on arrays


def _v_li(t: float, k: int, r: float) -> float:
    """Denominator df of Li, Raghunathan & Rubin (1991) with ``t = k (m - 1)``."""
    r = np.float64(r)  # r = 0 gives v = inf, as in R
    with np.errstate(divide="ignore"):
        if t > 4:
            return 4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2
        return t * (1 + 1 / k) * (1 + 1 / r) ** 2 / 2


def _v_reiter(t: float, r: float, df_com: float) -> float:
    """Small-sample denominator df of Reiter (2007) for D1 with complete-data df ``df_com``."""
    a = r * t / (t - 2)
    vstar = (df_com + 1) / (df_com + 3) * df_com
    c0 = 1 / (t - 4)
    c1 = vstar - 2 * (1 + a)
    c2 = vstar - 4 * (1 + a)
    z = (
        1 / c2
        + c0 * (a**2 * c1 / ((1 + a) ** 2 * c2))
        + c0 * (8 * a**2 * c1 / ((1 + a) * c2**2) + 4 * a**2 / ((1 + a) * c2))
        + c0 * (4 * a**2 / (c2 * c1) + 16 * a**2 * c1 / c2**3)
        + c0 * (8 * a**2 / c2**2)
    )
    return 4 + 1 / z


def d1(
    q_hat: np.ndarray, u_hat: np.ndarray, df_com: float | None = None
) -> tuple[float, int, float, float]:
    """The D1 (pooled Wald) statistic.

    ``r = (1 + 1/m) tr(B U_bar^-1) / k``, ``F = q_bar' ((1 + r) U_bar)^-1 q_bar / k``, and ``v`` from
    Li, Raghunathan & Rubin (1991), or Reiter (2007) when ``df_com`` is given.

    Parameters
    ----------
    q_hat : (m, k) estimates; u_hat : (m, k, k) covariances; df_com : complete-data df or None.

    Returns
    -------
    (F, k, v, r)
    """
    m, k = q_hat.shape
    q_bar = q_hat.mean(axis=0)
    u_bar = u_hat.mean(axis=0)
    b = np.atleast_2d(np.cov(q_hat, rowvar=False, ddof=1))
    r = (1 + 1 / m) * np.trace(np.linalg.solve(u_bar, b)) / k
    f = q_bar @ np.linalg.solve((1 + r) * u_bar, q_bar) / k
    t = k * (m - 1)
    v = _v_li(t, k, r) if df_com is None else _v_reiter(t, r, df_com)
    return float(f), k, float(v), float(r)


def d2(d: np.ndarray, k: int) -> tuple[float, int, float, float]:
    """The D2 statistic from m per-imputation chi-square statistics ``d`` on ``k`` df.

    ``r = (1 + 1/m) var(sqrt(d))``, ``F = (mean(d)/k - (m+1)/(m-1) r) / (1 + r)``,
    ``v = k^(-3/m) (m - 1) (1 + 1/r)^2``.
    """
    m = d.shape[0]
    r = np.float64((1 + 1 / m) * np.var(np.sqrt(d), ddof=1))
    f = (d.mean() / k - (m + 1) / (m - 1) * r) / (1 + r)
    with np.errstate(divide="ignore"):
        v = k ** (-3 / m) * (m - 1) * (1 + 1 / r) ** 2
    return float(f), int(k), float(v), float(r)


def d3(
    ll: np.ndarray,
    ll_null: np.ndarray,
    ll_pooled: np.ndarray,
    ll_null_pooled: np.ndarray,
    k: int,
    positive: bool = False,
) -> tuple[float, int, float, float]:
    """The D3 statistic (Meng & Rubin 1992) from log-likelihoods.

    ``ll``/``ll_null`` are evaluated at each imputation's own estimates, ``*_pooled`` at the
    parameters averaged over imputations. ``r = (m+1)/(k(m-1)) (dL_bar - dL_tilde)``,
    ``F = dL_tilde / (k (1 + r))``, ``v`` as in D1.
    """
    m = ll.shape[0]
    dl_bar = np.mean(-2 * (ll_null - ll))
    dl_tilde = np.mean(-2 * (ll_null_pooled - ll_pooled))
    r = (m + 1) / (k * (m - 1)) * (dl_bar - dl_tilde)
    r = np.float64(max(0.0, r) if positive else r)
    f = dl_tilde / (k * (1 + r))
    return float(f), int(k), float(_v_li(k * (m - 1), k, r)), float(r)


def d4(
    ll: np.ndarray,
    ll_null: np.ndarray,
    ll_stacked: float,
    ll_null_stacked: float,
    k: int,
    h: int,
    ariv: str = "default",
) -> tuple[float, int, float, float]:
    """The D4 statistic (Chan & Meng 2019) from per-imputation and stacked log-likelihoods.

    ``ll_stacked`` is the log-likelihood of the model fitted to the m data sets stacked, divided
    by m. ``d_bar = mean(-2 (ll_null - ll))``, ``d_hat = -2 (ll_null_stacked - ll_stacked)``,
    ``r = (m+1)/(k(m-1)) (d_bar - d_hat)``, ``v = k (m-1) (1 + 1/r)^2``, ``F = d_hat/(k(1+r))``.
    ``ariv="robust"`` uses the larger model's own deviances and its number of parameters ``h``.
    """
    m = ll.shape[0]
    diff = ll_null - ll
    diff[[_all_equal(a, b) for a, b in zip(ll, ll_null)]] = 0.0
    stacked_diff = ll_null_stacked - ll_stacked
    if _all_equal(stacked_diff, 0.0):
        stacked_diff = 0.0
    d_bar = np.mean(-2 * diff)
    d_hat = -2 * stacked_diff
    if ariv == "robust":
        r = np.float64((m + 1) / (h * (m - 1)) * (2 * np.mean(ll) - 2 * ll_stacked))
        with np.errstate(divide="ignore"):
            v = h * (m - 1) * (1 + 1 / r) ** 2
    else:
        r = (m + 1) / (k * (m - 1)) * (d_bar - d_hat)
        r = np.float64(max(0.0, r) if ariv == "positive" else r)
        with np.errstate(divide="ignore"):
            v = k * (m - 1) * (1 + 1 / r) ** 2
    f = d_hat / (k * (1 + r))
    return float(f), int(k), float(v), float(r)


def _all_equal(target: float, current: float, tolerance: float = 1.5e-8) -> bool:
    """R's ``isTRUE(all.equal(target, current))`` for two numbers (relative unless tiny)."""
    diff = abs(target - current)
    scale = abs(target)
    if np.isfinite(scale) and scale > tolerance:
        diff /= scale
    return bool(diff <= tolerance)


def wald_statistics(q_hat: np.ndarray, u_hat: np.ndarray) -> np.ndarray:
    """Per-imputation Wald chi-squares ``q_l' U_l^-1 q_l`` (m,) from (m, k) and (m, k, k)."""
    return np.einsum("lj,lj->l", q_hat, np.linalg.solve(u_hat, q_hat[..., None])[..., 0])


def _table_row(f: float, k: int, v: float, r: float) -> list[float]:
    """One row of the test table: F, df1, df2, P(>F), RIV."""
    from scipy import stats  # lazy: scipy.stats is slow to import

    return [f, float(k), v, float(stats.f.sf(f, k, v)), r]


# --------------------------------------------------------------------------------------------
# printing like mitml


def _format_table(
    values: np.ndarray,
    columns: Sequence[str],
    rows: Sequence[str] | None = None,
    digits: Sequence[int] | int = 3,
    sci_limit: int = 5,
) -> list[str]:
    """mitml's ``.formatTable`` followed by its ``cat("  ", row, "\\n")``: lines of a table.

    Columns holding any value >= 10^sci_limit are printed in scientific notation.
    """
    values = np.atleast_2d(np.asarray(values, dtype=float))
    ncol = values.shape[1]
    digits = [digits] * ncol if isinstance(digits, int) else list(digits)
    cells = []
    for j in range(ncol):
        col = values[:, j]
        sci = bool(np.any(col[np.isfinite(col)] >= 10**sci_limit))
        fmt = f"%.{digits[j]}{'e' if sci else 'f'}"
        cells.append(["NA" if not np.isfinite(x) and np.isnan(x) else fmt % (x + 0.0) for x in col])
    width = max(len(s) for s in [*columns, *(c for col in cells for c in col)])
    labels = ["", *(rows if rows is not None else [""] * values.shape[0])]
    lw = max(len(s) for s in labels)
    lines = []
    header = [labels[0].ljust(lw), *(c.rjust(width) for c in columns)]
    lines.append(" ".join(["  ", *header, "\n"]).rstrip("\n"))
    for i in range(values.shape[0]):
        row = [labels[i + 1].ljust(lw), *(cells[j][i].rjust(width) for j in range(ncol))]
        lines.append(" ".join(["  ", *row, "\n"]).rstrip("\n"))
    return lines


# --------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True, eq=False)
class ModelTestResult:
    """A pooled model comparison (mitml's ``mitml.testModels``).

    Attributes
    ----------
    table : one-row DataFrame with columns ``F.value, df1, df2, P(>F), RIV``.
    m : number of imputations; method : ``"D1".."D4"``; use : ``"wald"`` or ``"likelihood"``;
    ariv : ``"default"``, ``"positive"`` or ``"robust"``; df_com : complete-data df (D1) or None;
    reml : whether any fit used REML; refit : whether REML fits were refitted with ML.
    details : the ingredients: ``q_hat`` (m, k) and ``u_hat`` (m, k, k) of the tested parameters
        (Wald methods); ``statistics`` (m,) per-imputation chi-squares (D2); ``loglik`` and
        ``loglik_null`` (m,) of the ML fits; ``loglik_pooled``/``loglik_null_pooled`` (D3, at
        the averaged parameters); ``loglik_stacked``/``loglik_null_stacked`` (D4, divided by m).
    """

    table: pd.DataFrame
    m: int
    method: str
    use: str
    ariv: str
    df_com: float | None = None
    reml: bool = False
    refit: bool = False
    details: dict = field(default_factory=dict, repr=False)
    fit_report: FitReport | None = None

    @property
    def f_value(self) -> float:
        return float(self.table["F.value"].iloc[0])

    @property
    def p_value(self) -> float:
        return float(self.table["P(>F)"].iloc[0])

    def summary(self, digits: int = 3, sci_limit: int = 5) -> str:
        """The printout of mitml's ``print.mitml.testModels``."""
        out = [
            "",
            f"Model comparison calculated from {self.m} imputed data sets.",
            f"Combination method: {self.method}"
            + (f" ({self.use})" if self.method == "D2" else "")
            + (" (robust)" if self.method == "D4" and self.ariv == "robust" else ""),
            "",
        ]
        if self.fit_report is not None and not self.fit_report.clean:
            out += self.fit_report.lines() + [""]
        out += _format_table(
            self.table.to_numpy(), TEST_COLUMNS, None, [digits, 0] + [digits] * 3, sci_limit
        )
        out.append("")
        footer = False
        if self.method == "D1":
            footer = True
            out += _df_com_footer(self.df_com)
        if self.method == "D4":
            footer = True
            out.append("Data for stacking were automatically extracted from the fitted models.")
        if self.reml:
            footer = True
            out.append(
                "Models originally fitted with REML were refitted using ML."
                if self.refit
                else "Models fitted with REML were used as is."
            )
        if footer:
            out.append("")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<ModelTestResult {self.method}: F = {self.f_value:.4g}, p = {self.p_value:.4g}>"


def _df_com_footer(df_com) -> list[str]:
    if df_com is None:
        return ["Unadjusted hypothesis test as appropriate in larger samples."]
    return [
        f"Hypothesis test adjusted for small samples with df=[{_num(df_com)}]",
        "complete-data degrees of freedom.",
    ]


def _num(x) -> str:
    x = float(x)
    return str(int(x)) if x.is_integer() else repr(x)


# --------------------------------------------------------------------------------------------
# the public entry point


def compare_models(
    fits: Sequence[Any],
    null_fits: Sequence[Any],
    method: str = "D1",
    use: str = "wald",
    ariv: str = "default",
    df_com: float | None = None,
    on_failure: str = "error",
) -> ModelTestResult:
    """Compare two nested models fitted to each of m imputed data sets (mitml's ``testModels``).

    Parameters
    ----------
    fits : sequence of m fits of the larger model, one per imputation (e.g. from
        ``MitmlList.with_``): ``pymitml.lmer`` fits, statsmodels OLS results, or for the Wald
        methods anything the estimate adapter understands (``(estimate, covariance)`` pairs).
    null_fits : m fits of the smaller (null) model, nested in ``fits``, same data sets and order.
    method : ``"D1"`` (pooled Wald), ``"D2"`` (pooled chi-squares), ``"D3"`` (pooled likelihood
        ratio, Meng & Rubin 1992) or ``"D4"`` (likelihood ratio on stacked data, Chan & Meng 2019).
    use : for D2, ``"wald"`` or ``"likelihood"`` (likelihood-ratio statistics).
    ariv : ``"default"``; ``"positive"`` truncates a negative RIV at 0 (D2, D3, D4);
        ``"robust"`` is the robust RIV of D4.
    df_com : complete-data degrees of freedom for the small-sample D1 (Reiter 2007).
    on_failure : as in :func:`pool_estimates`, over both lists: an imputation where either
        model failed (warned) counts as failed (warned) and is dropped from both with
        ``"drop"`` (``"drop_warned"``).

    Returns
    -------
    ModelTestResult with ``.table`` (columns ``F.value, df1, df2, P(>F), RIV``); ``print`` it
    for mitml's layout.

    Notes
    -----
    As in mitml, D1 and D2 (Wald) test the parameters of ``fits`` that ``null_fits`` lacks; the
    likelihood methods refit REML mixed models by ML first (D2 likelihood, D3, D4). D3 evaluates
    both models' likelihood at the parameters averaged over imputations; D4 refits both models
    to the stacked data with the clusters relabelled per imputation.

    Examples
    --------
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ x + z + (1|g)", d))  # doctest: +SKIP
    >>> null = implist.with_(lambda d: pm.lmer("y ~ x + (1|g)", d))  # doctest: +SKIP
    >>> print(pm.compare_models(fits, null, method="D3"))  # doctest: +SKIP
    """
    method = check_choice(method, _METHODS, "method")
    use = check_choice(use, _USES, "use")
    ariv = check_choice(ariv, _ARIVS, "ariv")
    report = None
    if all(isinstance(x, Sequence) and not isinstance(x, (str, bytes)) for x in (fits, null_fits)):
        fits, null_fits, report = screen_fit_pair(fits, null_fits, on_failure)
    fits, null_fits = _check_fit_lists(fits, null_fits)
    df_com = check_df_com(df_com)
    _warn_ignored(method, use, ariv, df_com)
    out = _compare(fits, null_fits, method, use, ariv, df_com)
    return out if report is None else replace(out, fit_report=report)


def _compare(
    fits: list, null_fits: list, method: str, use: str, ariv: str, df_com: float | None
) -> ModelTestResult:
    """compare_models after validation (also used by anova)."""
    m = len(fits)
    if method == "D3" or method == "D4" or (method == "D2" and use == "likelihood"):
        use = "likelihood"
    reml = any(_ll.is_reml(f) for f in [*fits, *null_fits])
    refit = reml and use == "likelihood"
    details: dict = {}
    if method == "D1" or (method == "D2" and use == "wald"):
        q_hat, u_hat = _tested_parameters(fits, null_fits)
        _check_same_data(fits, null_fits)
        k = q_hat.shape[1]
        if method == "D1":
            f, k, v, r = d1(q_hat, u_hat, df_com)
        else:
            details["statistics"] = wald_statistics(q_hat, u_hat)
            f, k, v, r = d2(details["statistics"], k)
            r = max(0.0, r) if ariv == "positive" else r
        details.update(q_hat=q_hat, u_hat=u_hat)
    else:
        _check_same_data(fits, null_fits)
        ml = [_ll.ml_fit(f) for f in fits]
        ml_null = [_ll.ml_fit(f) for f in null_fits]
        ll, df = _ll.logliks(ml)
        ll_null, df_null = _ll.logliks(ml_null)
        k = df - df_null
        if k <= 0:
            raise ValueError(
                f"the models are not nested: the model has {df} parameters and the null model "
                f"{df_null}; pass the larger model as `fits` and the smaller one as `null_fits`."
            )
        details.update(loglik=ll, loglik_null=ll_null)
        if method == "D2":
            diff = ll_null - ll
            diff[[_all_equal(a, b) for a, b in zip(ll, ll_null)]] = 0.0
            details["statistics"] = -2 * diff
            f, k, v, r = d2(details["statistics"], k)
            r = max(0.0, r) if ariv == "positive" else r
        elif method == "D3":
            details["loglik_pooled"] = _ll.logliks_at_pooled(ml)
            details["loglik_null_pooled"] = _ll.logliks_at_pooled(ml_null)
            f, k, v, r = d3(
                ll,
                ll_null,
                details["loglik_pooled"],
                details["loglik_null_pooled"],
                k,
                positive=ariv == "positive",
            )
        else:
            details["loglik_stacked"] = _ll.stacked_loglik(ml) / m
            details["loglik_null_stacked"] = _ll.stacked_loglik(ml_null) / m
            f, k, v, r = d4(
                ll, ll_null, details["loglik_stacked"], details["loglik_null_stacked"], k, df, ariv
            )
    row = _table_row(f, k, v, r)
    table = pd.DataFrame([row], columns=TEST_COLUMNS)
    return ModelTestResult(
        table=table,
        m=m,
        method=method,
        use=use,
        ariv=ariv,
        df_com=df_com if method == "D1" else None,
        reml=reml,
        refit=refit,
        details=details,
    )


# --------------------------------------------------------------------------------------------
# validation


def _as_fit_list(fits: Any, name: str) -> list:
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence):
        raise TypeError(
            f"`{name}` must be a list of fitted models, one per imputed data set "
            f"(e.g. from MitmlList.with_); got {type(fits).__name__}."
        )
    fits = list(fits)
    check_no_failed(fits)
    if len(fits) < 2:
        raise ValueError(
            f"`{name}` must hold at least 2 fits (one per imputation); got {len(fits)}."
        )
    return fits


def _check_fit_lists(fits: Any, null_fits: Any, names=("fits", "null_fits")) -> tuple[list, list]:
    fits = _as_fit_list(fits, names[0])
    null_fits = _as_fit_list(null_fits, names[1])
    if len(fits) != len(null_fits):
        raise ValueError(
            f"`{names[1]}` holds {len(null_fits)} fits but `{names[0]}` holds {len(fits)}: the "
            "numbers of imputations differ; fit both models to the same MitmlList."
        )
    kinds = {type(f).__name__ for f in [*fits, *null_fits]}
    if len({type(f) for f in fits}) > 1 or len({type(f) for f in null_fits}) > 1:
        raise TypeError(f"all fits in a list must be of one class; got {sorted(kinds)}.")
    if type(fits[0]) is not type(null_fits[0]):
        warnings.warn(
            f"`{names[0]}` and `{names[1]}` hold fits of different classes "
            f"({type(fits[0]).__name__}, {type(null_fits[0]).__name__}); results may "
            "not be trustworthy.",
            UserWarning,
            stacklevel=3,
        )
    return fits, null_fits


def _warn_ignored(method: str, use: str, ariv: str, df_com) -> None:
    msgs = []
    if df_com is not None and method != "D1":
        msgs.append(f"`df_com` is only used with method 'D1' and was ignored with '{method}'.")
    if use == "likelihood" and method != "D2":
        msgs.append(
            f"`use='likelihood'` only applies to method 'D2' and was ignored with '{method}'."
        )
    if ariv == "positive" and method == "D1":
        msgs.append("`ariv='positive'` is not available with method 'D1' and was ignored.")
    if ariv == "robust" and method != "D4":
        msgs.append(
            f"`ariv='robust'` is only available with method 'D4' and was ignored with '{method}'."
        )
    for msg in msgs:
        warnings.warn(msg, UserWarning, stacklevel=3)


def _tested_parameters(fits: list, null_fits: list) -> tuple[np.ndarray, np.ndarray]:
    """(m, k) estimates and (m, k, k) covariances of the parameters ``null_fits`` lacks."""
    names, q_hat, u_hat = _ll.parameter_arrays(fits, "fits")
    null_names, _, _ = _ll.parameter_arrays(null_fits, "null_fits")
    extra = [n for n in null_names if n not in names]
    if extra:
        raise ValueError(
            f"the models are not nested: the null model has parameters {extra} that the model "
            f"lacks; pass the larger model as `fits` and the smaller one as `null_fits`."
        )
    idx = [i for i, n in enumerate(names) if n not in set(null_names)]
    if not idx:
        raise ValueError(
            "the models are not nested or have the same parameters: `fits` has no "
            "parameter that `null_fits` lacks; pass the larger model as `fits`."
        )
    return q_hat[:, idx], u_hat[:, idx][:, :, idx]


def _check_same_data(fits: list, null_fits: list) -> None:
    """Raise if fit l and null fit l were not fitted to the same data set (when checkable)."""
    for i, (a, b) in enumerate(zip(fits, null_fits)):
        da, db = _ll.data_signature(a), _ll.data_signature(b)
        if da is None or db is None:
            continue
        ya, cols_a = da
        yb, cols_b = db
        same = ya.shape == yb.shape and np.allclose(ya, yb, rtol=1e-12, atol=0)
        if same:
            for name in set(cols_a) & set(cols_b):
                if not np.allclose(cols_a[name], cols_b[name], rtol=1e-12, atol=0):
                    same = False
                    break
        if not same:
            raise ValueError(
                f"fit {i + 1} of the model and of the null model were fitted to different data "
                "(their responses or shared predictors differ): the fits come from different "
                "data lists or a different order; fit both models to the same MitmlList."
            )
