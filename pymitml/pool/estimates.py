"""Pooled parameter estimates from m imputed data sets (mitml's ``testEstimates``).

Rubin's (1987) rules with the Barnard & Rubin (1999) small-sample degrees of freedom. With estimates
Q_l (k-vector) and covariance matrices U_l of l = 1..m fits:

    q_bar = mean_l Q_l                          u_bar = mean_l U_l
    b     = sum_l (Q_l - q_bar)(Q_l - q_bar)' / (m - 1)
    t     = u_bar + (1 + 1/m) b                 (total covariance; se = sqrt(diag t))
    riv   = (1 + 1/m) b_jj / u_bar_jj           (relative increase in variance)
    v_m   = (m - 1) (1 + 1/riv)^2
    with df_com:  lambda = riv / (riv + 1),  v_obs = (1 - lambda) (df_com + 1) / (df_com + 3) df_com,
                  v = 1 / (1/v_m + 1/v_obs)     (otherwise v = v_m)
    fmi   = (riv + 2 / (v + 3)) / (riv + 1)     p = 2 P(T_v > |q_bar / se|)

``df_com="Satterthwaite"`` or ``"Kenward-Roger"`` (lmer fits): the complete-data df of
coefficient j is the mean over the m fits of that fit's df for j (lmerTest's / pbkrtest's
df, ``fit.coef_table(ddf=...)["df"]``), df_com_j = (1/m) sum_l nu_lj, used per coefficient in
Barnard & Rubin's v_obs above (the standard errors stay the fits' own ``vcov``, as mitml's
testEstimates with a vector ``df.com``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from .._validation import check_bool, check_df_com_method
from ..mitml_list import FailedFit
from ._extract import (
    _as_coef,
    _check_same_names,
    check_estimates,
    check_variances,
    stack_estimates,
    stack_variance_components,
)
from ._failures import FitReport, check_on_failure, screen_fits

__all__ = ["COLUMNS", "PooledEstimates", "pool_estimates"]

#: Column names of the pooled table, as mitml prints them.
COLUMNS = ("Estimate", "Std.Error", "t.value", "df", "P(>|t|)", "RIV", "FMI")


# --------------------------------------------------------------------------------------------
# the result record
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, repr=False, eq=False)
class PooledEstimates:
    """Pooled estimates and inferences (mitml's ``mitml.testEstimates``).

    Attributes
    ----------
    table : DataFrame (k, 7) indexed by parameter names, columns ``COLUMNS`` (only ``Estimate`` when
        no covariance matrices were given).
    extra : DataFrame (p, 1) with column ``Estimate`` (pooled variance components, residual variance,
        ICC) when ``extra_pars=True`` and the fits have them, else None.
    m : number of imputed data sets.
    df_com : complete-data degrees of freedom (None, a float or a per-parameter array).
    total_covariance : pooled total covariance matrix T (k, k) as a DataFrame, or None when only
        variances were given.
    fit_report : :class:`~pymitml.pool.FitReport`: how many analyses failed, warned or were
        dropped (None when ``qhat`` was given); the printout lists them when there are any.
    compatibility : the :func:`~pymitml.check_compatibility` report of the fits' formula
        against the imputation model, when both are known (fits from
        ``imp.complete().with_(...)``); the printout ends with its finding.
    """

    _table: pd.DataFrame
    _extra: pd.DataFrame | None
    m: int
    df_com: float | np.ndarray | None
    _total: pd.DataFrame | None = None
    call: str = field(default="pool_estimates(...)")
    fit_report: FitReport | None = None
    compatibility: Any = None

    # DataFrames are mutable: hand out copies so the record stays as it was computed
    @property
    def table(self) -> pd.DataFrame:
        return self._table.copy()

    @property
    def extra(self) -> pd.DataFrame | None:
        return None if self._extra is None else self._extra.copy()

    @property
    def total_covariance(self) -> pd.DataFrame | None:
        return None if self._total is None else self._total.copy()

    def confint(
        self, level: float = 0.95, parm: Sequence[str] | Sequence[int] | None = None
    ) -> pd.DataFrame:
        """Confidence intervals q_bar -/+ t_{df, 1-(1-level)/2} se (mitml's ``confint``).

        Columns are named like R's (``"2.5 %"``, ``"97.5 %"``).
        """
        if not (isinstance(level, (int, float)) and 0 < level < 1):
            raise ValueError(f"`level` must be a number between 0 and 1; got {level!r}.")
        if "Std.Error" not in self._table.columns:
            raise ValueError("confidence intervals need standard errors: pool with `uhat` given.")
        tab = self._table
        if parm is not None:
            sel = list(parm)
            tab = (
                tab.iloc[sel]
                if all(isinstance(p, (int, np.integer)) for p in sel)
                else tab.loc[sel]
            )
        a = (1.0 - level) / 2.0
        from scipy import stats  # lazy: scipy.stats is slow to import

        fac = stats.t.ppf(1.0 - a, tab["df"].to_numpy())
        est, se = tab["Estimate"].to_numpy(), tab["Std.Error"].to_numpy()
        lo, hi = _percent_labels(a)
        return pd.DataFrame({lo: est - se * fac, hi: est + se * fac}, index=tab.index)

    def tidy(self, conf_level: float | None = 0.95) -> pd.DataFrame:
        """A broom-style long table: term, estimate, std_error, statistic, df, p_value, riv, fmi,
        and conf_low/conf_high when ``conf_level`` is given."""
        tab = self._table
        out = pd.DataFrame({"term": tab.index.to_list()})
        rename = {
            "Estimate": "estimate",
            "Std.Error": "std_error",
            "t.value": "statistic",
            "df": "df",
            "P(>|t|)": "p_value",
            "RIV": "riv",
            "FMI": "fmi",
        }
        for c in tab.columns:
            out[rename[c]] = tab[c].to_numpy()
        if conf_level is not None and "Std.Error" in tab.columns:
            ci = self.confint(conf_level).to_numpy()
            out["conf_low"], out["conf_high"] = ci[:, 0], ci[:, 1]
        return out

    def to_string(self, digits: int = 3, sci_limit: int = 5) -> str:
        """The printout of mitml's ``print.mitml.testEstimates``."""
        lines = [
            "",
            "Call:",
            "",
            self.call,
            "",
            f"Final parameter estimates and inferences obtained from {self.m} imputed data sets.",
            "",
        ]
        if self.fit_report is not None and not self.fit_report.clean:
            lines += self.fit_report.lines() + [""]
        lines += format_table(self._table, digits, sci_limit)
        if self._extra is not None:
            lines += [""] + format_table(self._extra, digits, sci_limit)
        lines.append("")
        if self.df_com is None:
            lines.append("Unadjusted hypothesis test as appropriate in larger samples.")
        else:
            dfc = ",".join(_r_number(x) for x in np.atleast_1d(self.df_com))
            lines += [
                f"Hypothesis test adjusted for small samples with df=[{dfc}]",
                "complete-data degrees of freedom.",
            ]
        if self.compatibility is not None:
            lines += [""] + self.compatibility.lines()
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return self.to_string()


def _r_number(x: float) -> str:
    """R's as.character for a double (15 significant digits, no trailing zeros)."""
    x = float(x)
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return f"{x:.15g}"


def _percent_labels(a: float) -> tuple[str, str]:
    """R's format(100 * c(a, 1 - a), digits = 3) + " %": 3 significant digits, common decimals."""
    vals = [100 * a, 100 * (1 - a)]
    dec = 0
    for v in vals:
        s = f"{float(f'{v:.3g}'):f}".rstrip("0")
        dec = max(dec, len(s.split(".")[1]) if "." in s else 0)
    return tuple(f"{v:.{dec}f} %" for v in vals)  # type: ignore[return-value]


def _cell(x: float, fmt: str) -> str:
    if np.isnan(x):
        return "NaN"
    if np.isinf(x):
        return "Inf" if x > 0 else "-Inf"
    return fmt % (x + 0.0)


def format_table(tab: pd.DataFrame, digits: int = 3, sci_limit: int = 5) -> list[str]:
    """Rows of a numeric table laid out as mitml's ``.formatTable`` + ``cat`` print them.

    Every column is printed with ``digits`` decimals, or in e-notation if any value is at least
    10^``sci_limit``; all cells share one width; each line ends with a space.
    """
    cols = [str(c) for c in tab.columns]
    cells = []
    for c in tab.columns:
        z = tab[c].to_numpy(dtype=np.float64)
        large = bool(np.any(z[~np.isnan(z)] >= 10.0**sci_limit))
        fmt = f"%.{digits}{'e' if large else 'f'}"
        cells.append([_cell(v, fmt) for v in z])
    width = max(len(s) for s in cols + [s for col in cells for s in col])
    names = [""] + [str(i) for i in tab.index]
    nw = max(len(n) for n in names)
    lines = [" ".join([names[0].ljust(nw)] + [c.rjust(width) for c in cols]) + " "]
    for r in range(len(tab)):
        lines.append(
            " ".join([names[r + 1].ljust(nw)] + [col[r].rjust(width) for col in cells]) + " "
        )
    return lines


# --------------------------------------------------------------------------------------------
# Rubin's rules (arrays in, arrays out)
# --------------------------------------------------------------------------------------------
def _rubin(
    qhat: np.ndarray, uhat: np.ndarray, diagonal: bool, df_com: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Pool qhat (m, k) with uhat (m, k, k), or (m, k) variances when ``diagonal``.

    Returns the (k, 7) table in ``COLUMNS`` order and the total covariance t (None if diagonal).
    """
    from scipy import stats  # lazy: scipy.stats is slow to import

    m = qhat.shape[0]
    q_bar = qhat.mean(axis=0)
    dev = qhat - q_bar
    b = dev.T @ dev / (m - 1)
    if diagonal:
        u_bar_diag = uhat.mean(axis=0)
        t = None
        t_diag = u_bar_diag + (1.0 + 1.0 / m) * np.diag(b)
    else:
        u_bar = uhat.mean(axis=0)
        u_bar_diag = np.diag(u_bar)
        t = u_bar + (1.0 + 1.0 / m) * b
        t_diag = np.diag(t)
    with np.errstate(divide="ignore", invalid="ignore"):
        se = np.sqrt(t_diag)
        t_value = q_bar / se
        riv = (1.0 + 1.0 / m) * np.diag(b) / u_bar_diag
        v = v_m = (m - 1) * (1.0 + 1.0 / riv) ** 2
        if df_com is not None:
            lam = riv / (riv + 1.0)
            v_obs = (1.0 - lam) * ((df_com + 1.0) / (df_com + 3.0)) * df_com
            v = 1.0 / (1.0 / v_m + 1.0 / v_obs)
        fmi = (riv + 2.0 / (v + 3.0)) / (riv + 1.0)
        p = 2.0 * stats.t.sf(np.abs(t_value), v)
    return np.column_stack([q_bar, se, t_value, v, p, riv, fmi]), t


# --------------------------------------------------------------------------------------------
# input normalisation (the public boundary)
# --------------------------------------------------------------------------------------------
def _qhat_array(qhat: Any) -> tuple[list[str], np.ndarray]:
    """qhat as names and an (m, k) float array."""
    if isinstance(qhat, (str, bytes)) or not isinstance(qhat, (pd.DataFrame, np.ndarray, Sequence)):
        raise TypeError(
            "`qhat` must be an (m, k) array, a DataFrame with one row per imputation, or a list of "
            f"m Series/arrays; got {type(qhat).__name__}."
        )
    if isinstance(qhat, pd.DataFrame):
        names = [str(c) for c in qhat.columns]
        arr = qhat.to_numpy(dtype=np.float64)
    elif isinstance(qhat, np.ndarray) or all(np.isscalar(x) for x in qhat):
        arr = np.asarray(qhat, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[:, None]  # m scalar estimates: k = 1
        if arr.ndim != 2:
            raise ValueError(
                f"`qhat` must be an (m, k) array (one row per imputation); got shape {arr.shape}."
            )
        names = [f"Parameter.{i + 1}" for i in range(arr.shape[1])]
    else:
        rows = [_as_coef(q, "estimates in `qhat`") for q in qhat]
        names = _check_same_names([list(r.index) for r in rows], "estimates", "row")
        arr = np.stack([r.to_numpy() for r in rows])
    if arr.size == 0:
        raise ValueError("`qhat` is empty; give one row of estimates per imputed data set.")
    check_estimates(names, arr, "`qhat` row")
    return names, arr


def _uhat_array(
    uhat: Any, m: int, k: int, names: Sequence[str] | None = None
) -> tuple[np.ndarray, bool]:
    """uhat as (m, k, k) covariances (diagonal=False) or (m, k) variances (diagonal=True)."""
    if isinstance(uhat, pd.DataFrame):
        arr = uhat.to_numpy(dtype=np.float64)
    elif isinstance(uhat, np.ndarray):
        arr = np.asarray(uhat, dtype=np.float64)
    elif isinstance(uhat, Sequence) and not isinstance(uhat, (str, bytes)):
        arr = np.stack(
            [
                np.asarray(
                    u.to_numpy() if isinstance(u, (pd.DataFrame, pd.Series)) else u,
                    dtype=np.float64,
                )
                for u in uhat
            ]
        )
    else:
        raise TypeError(
            "`uhat` must be an (m, k, k) array of covariance matrices, an (m, k) array of variances, "
            f"or a list of m matrices; got {type(uhat).__name__}."
        )
    if arr.ndim == 1 and k == 1:
        arr = arr[:, None]
    if arr.ndim == 3 and arr.shape == (m, k, k):
        diagonal = False
    elif arr.ndim == 2 and arr.shape == (m, k):
        diagonal = True
    else:
        raise ValueError(
            f"`uhat` must have shape (m, k, k) = ({m}, {k}, {k}) or (m, k) = ({m}, {k}) to match "
            f"`qhat` (m = {m} imputations, k = {k} parameters); got shape {arr.shape}."
        )
    check_variances(
        [f"Parameter.{j + 1}" for j in range(k)] if names is None else names, arr, "`uhat` entry"
    )
    return arr, diagonal


def _df_com_array(df_com: Any, k: int) -> np.ndarray | None:
    if df_com is None:
        return None
    arr = np.atleast_1d(np.asarray(df_com, dtype=np.float64))
    if arr.ndim != 1 or arr.size not in (1, k) or np.any(np.isnan(arr)) or np.any(arr <= 0):
        raise ValueError(
            "`df_com` must be a positive number or one positive number per parameter "
            f"({k}); got {df_com!r}."
        )
    return np.broadcast_to(arr, (k,)).copy()


def _fitted_df_com(fits: Sequence[Any], method: str, names: list[str]) -> np.ndarray:
    """Per-coefficient complete-data df: the mean over the fits of each fit's ``method`` df."""
    rows = []
    for i, fit in enumerate(fits):
        table = getattr(fit, "coef_table", None)
        if not callable(table) or not hasattr(fit, "theta") or not hasattr(fit, "REML"):
            raise TypeError(
                f"`df_com={method!r}` needs linear mixed-model fits from pm.lmer (lmerTest / "
                f"pbkrtest df); fit {i + 1} is a {type(fit).__name__}, which has no such df: "
                "give a number for `df_com` or None."
            )
        rows.append(table(ddf=method)["df"].reindex(names).to_numpy(dtype=np.float64))
    return np.mean(np.stack(rows), axis=0)


def _call_string(
    fits: Any, qhat: Any, uhat: Any, extra_pars: bool, df_com: Any, on_failure: str = "error"
) -> str:
    args = (
        ["fits"]
        if fits is not None
        else ["qhat=qhat"] + (["uhat=uhat"] if uhat is not None else [])
    )
    if extra_pars:
        args.append("extra_pars=True")
    if isinstance(df_com, str):
        args.append(f"df_com={df_com!r}")
    elif df_com is not None:
        d = np.atleast_1d(np.asarray(df_com, dtype=np.float64))
        args.append(
            "df_com="
            + (_r_number(d[0]) if d.size == 1 else "[" + ", ".join(_r_number(x) for x in d) + "]")
        )
    if on_failure != "error":
        args.append(f"on_failure={on_failure!r}")
    return "pool_estimates(" + ", ".join(args) + ")"


# --------------------------------------------------------------------------------------------
# public entry point
# --------------------------------------------------------------------------------------------
def pool_estimates(
    fits: Sequence[Any] | None = None,
    *,
    qhat: Any = None,
    uhat: Any = None,
    extra_pars: bool = False,
    df_com: float | Sequence[float] | str | None = None,
    on_failure: str = "error",
) -> PooledEstimates:
    """Pool estimates across imputed data sets with Rubin's rules (mitml's ``testEstimates``).

    Parameters
    ----------
    fits : list of m fitted models (e.g. ``implist.with_(lambda d: pm.lmer(...))``): pymitml
        ``LmerFit``, statsmodels results, ``(estimates, covariance)`` tuples, or anything registered
        with :func:`pymitml.pool.extract_estimates`. Give either ``fits`` or ``qhat``.
    qhat : estimates, shape (m, k): array, DataFrame (columns = parameter names) or list of m
        Series. Unnamed parameters are called ``Parameter.1``, ``Parameter.2``, ... as in mitml.
    uhat : covariance matrices, shape (m, k, k) (array or list of m matrices), or variances, shape
        (m, k). Without ``uhat`` only the pooled estimates are returned.
    extra_pars : also pool (average) variance components, the residual variance and the ICC
        (``PooledEstimates.extra``); ignored, with a warning, when ``qhat`` is used.
    df_com : complete-data degrees of freedom, a number or one per parameter (k); switches on
        Barnard & Rubin's (1999) small-sample degrees of freedom. ``"Satterthwaite"`` or
        ``"Kenward-Roger"`` (``pm.lmer`` fits only): per coefficient, the mean over the m fits
        of lmerTest's / pbkrtest's df (see the module docstring); ``.df_com`` keeps them.
    on_failure : what to do when some imputations' analyses failed or warned (as recorded by
        :meth:`MitmlList.with_`, or flagged by the fits: singular, not converged).
        ``"error"`` (default): refuse to pool when any failed (:class:`FitFailureError` lists
        them), pool warned fits with a :class:`FitWarning`; ``"drop"``: pool the fits that
        did not fail; ``"drop_warned"``: pool only the clean fits. ``.fit_report`` and the
        printout give the counts.

    Returns
    -------
    PooledEstimates
        ``.table`` with columns Estimate, Std.Error, t.value, df, P(>|t|), RIV, FMI; ``.extra``;
        ``.confint(level)``; ``.tidy()``; printing imitates mitml.

    Notes
    -----
    p-values are computed from the t distribution's survival function, so p-values far below 1e-16
    stay accurate where R's ``2 * (1 - pt(|t|, df))`` rounds them to 0.

    Examples
    --------
    >>> import numpy as np, pymitml as pm
    >>> q = np.array([[1.0, 2.0], [1.2, 1.9], [0.9, 2.2]])
    >>> u = np.array([[0.04, 0.01]] * 3)  # variances
    >>> pm.pool_estimates(qhat=q, uhat=u).table["Estimate"].round(3).tolist()
    [1.033, 2.033]
    """
    if (fits is None) == (qhat is None):
        raise ValueError(
            "give either `fits` (fitted models) or `qhat` (estimates), not both or neither."
        )
    check_bool(extra_pars, "extra_pars")
    on_failure = check_on_failure(on_failure)
    call = _call_string(fits, qhat, uhat, bool(extra_pars), df_com, on_failure)
    extra = None
    report = None
    given = fits
    if fits is not None:
        if isinstance(fits, Sequence) and not isinstance(fits, (str, bytes)):
            fits, report = screen_fits(fits, on_failure)
        if uhat is not None:
            raise ValueError(
                "`uhat` goes with `qhat`; with `fits` the covariances come from the fits."
            )
        names, q, u = stack_estimates(fits)
        diagonal = False
        if extra_pars:
            comps = stack_variance_components(fits)
            if comps is not None and len(comps[0]):
                extra = pd.DataFrame({"Estimate": comps[1].mean(axis=0)}, index=comps[0])
    else:
        if extra_pars:
            warnings.warn("`extra_pars` is ignored when `qhat` is used.", UserWarning, stacklevel=2)
        names, q = _qhat_array(qhat)
        if q.shape[0] < 2:
            raise ValueError(
                f"pooling needs estimates from at least 2 imputed data sets; `qhat` has "
                f"{q.shape[0]} row(s). Rows are imputations: pass an (m, k) array."
            )
        if uhat is not None:
            u, diagonal = _uhat_array(uhat, q.shape[0], q.shape[1], names=names)
    k = len(names)
    method = check_df_com_method(df_com)
    if method is None:
        dfc = _df_com_array(df_com, k)
    elif fits is None:
        raise ValueError(
            f"`df_com={method!r}` computes the df from the fits; give `fits`, not `qhat`."
        )
    else:
        dfc = _fitted_df_com(fits, method, names)
    total = None
    if fits is None and uhat is None:
        table = pd.DataFrame({"Estimate": q.mean(axis=0)}, index=names)
    else:
        arr, t = _rubin(q, u, diagonal, dfc)
        table = pd.DataFrame(arr, index=names, columns=list(COLUMNS))
        if t is not None:
            total = pd.DataFrame(t, index=names, columns=names)
    df_store = (
        None
        if dfc is None
        else (float(dfc[0]) if np.size(cast(Any, df_com)) == 1 and method is None else dfc)
    )
    if isinstance(df_store, np.ndarray):
        df_store.setflags(write=False)
    compat = _compatibility(given) if fits is not None else None
    return PooledEstimates(table, extra, int(q.shape[0]), df_store, total, call, report, compat)


def _compatibility(fits: Any) -> Any:
    """The congeniality check of the fits' formula against the imputation model, when both are
    known (fits from ``imp.complete().with_(...)`` with a ``formula``); None otherwise."""
    imp = getattr(getattr(fits, "source", None), "imputation", None)
    first = next((f for f in fits if not isinstance(f, FailedFit)), None)
    formula = getattr(first, "formula", None)
    if imp is None or not isinstance(formula, str):
        return None
    from .compatibility import check_compatibility

    try:
        return check_compatibility(imp, formula)
    except Exception as exc:  # noqa: BLE001  (the check must never stop pooling)
        warnings.warn(
            f"the compatibility check of {formula!r} against the imputation model was skipped: "
            f"{type(exc).__name__}: {exc}",
            UserWarning,
            stacklevel=3,
        )
        return None
