"""Pooled estimated marginal means and pairwise contrasts (R's emmeans per imputation + Rubin).

For each fit l the reference grid is built as emmeans builds it: every level of each factor in
the fixed part, each numeric predictor at its mean over the rows the fit analysed (or at the
values given in ``at``). X_g is the fixed-effects design of the grid; the marginal mean of a
combination of the ``specs`` variables averages the grid rows with that combination with equal
weights (emmeans' default), so EMM = L beta with L the averaged rows of X_g:

    Q_l = L_l beta_l,   U_l = L_l V_l L_l'       (V_l = the fit's vcov)

Pairwise contrasts are D Q_l with D the differences i - j (i before j, emmeans' ``pairwise``).
``adjust="tukey"`` refers each pooled contrast to the studentized range distribution of k means
(k = the number of marginal means): p = P(Q_{k,v} > sqrt(2) |t|) and the interval
estimate -/+ q_{k,v}(level) / sqrt(2) SE, with v that contrast's pooled (Barnard-Rubin) df, as
emmeans' Tukey adjustment does row by row with the df of each row. The studentized range
assumes one df shared by all contrasts; pooled df differ between contrasts (their fractions of
missing information differ), so with finite df this per-row use is an approximation (exact
for large df). ``adjust="bonferroni"`` multiplies the p-values by the number of contrasts K
and widens the intervals to level 1 - (1 - level) / K, as emmeans does.
Population-level predictions for new data (:func:`pool_predictions`, R's
``predict(fit, newdata, re.form = NA)``) are the same with L = X_new. All are pooled by Rubin's
rules with Barnard & Rubin's df (:func:`pool_estimates`' formulas);
``df_com="Satterthwaite"`` / ``"Kenward-Roger"`` takes, per row, the mean over the fits of that
fit's lmerTest / pbkrtest df of the row (the standard errors stay from V_l).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._frame import as_pandas
from ..formula import design_matrix, parse_formula, term_variables
from ._failures import FitReport, check_on_failure, screen_fits
from .estimates import _percent_labels, _rubin, format_table

__all__ = ["PooledEmmeans", "pool_emmeans", "pool_predictions"]


def _is_factor(s: pd.Series) -> bool:
    return not pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)


def _levels(s: pd.Series) -> list[Any]:
    if isinstance(s.dtype, pd.CategoricalDtype):
        return list(s.cat.categories)
    if pd.api.types.is_bool_dtype(s):
        return [False, True]
    return sorted(pd.unique(s.dropna()))


def _fixed_part(formula: str) -> str:
    """The fixed part of an lme4 formula (any number of random-effect terms)."""
    try:
        from ..lmm._terms import parse_lmer_formula
    except ImportError:  # pragma: no cover - an older lmm without several terms
        return parse_formula(formula).fixed
    return parse_lmer_formula(formula).fixed


def _grid(
    fit: Any, data: Any, specs: list[str], at: Mapping[str, Any]
) -> tuple[pd.DataFrame, np.ndarray]:
    """The reference grid of one fit (a DataFrame of predictor values) and its X rows."""
    rhs = _fixed_part(fit.formula)
    variables = [v for v in term_variables(rhs)]
    df = as_pandas(data)
    missing = [v for v in variables if v not in df.columns]
    if missing:
        raise ValueError(
            f"the data given for the reference grid lack the predictor(s) {missing} of "
            f"{fit.formula!r}; pass the MitmlList the fits were made from as `data`."
        )
    rows = np.asarray(getattr(fit, "rows", np.arange(len(df))))
    sub = df.iloc[rows]
    bad = [s for s in specs if s not in variables]
    if bad:
        raise ValueError(
            f"`specs` names {bad}, which are not predictors in the fixed part of {fit.formula!r} "
            f"(predictors: {variables})."
        )
    values: dict[str, list[Any]] = {}
    kinds: dict[str, Any] = {}
    for v in variables:
        col = sub[v]
        if _is_factor(col):
            levels = _levels(col)
            kinds[v] = levels
            chosen = list(np.atleast_1d(at[v])) if v in at else levels
            unknown = [x for x in chosen if x not in levels]
            if unknown:
                raise ValueError(
                    f"`at[{v!r}]` has levels {unknown} that '{v}' does not have ({levels})."
                )
            values[v] = chosen
        else:
            values[v] = [float(x) for x in np.atleast_1d(at[v])] if v in at else [float(col.mean())]
    combos = list(itertools.product(*(values[v] for v in variables)))
    grid = pd.DataFrame(combos, columns=variables)
    for v, levels in kinds.items():
        if pd.api.types.is_bool_dtype(sub[v]):
            grid[v] = grid[v].astype(bool)
        else:
            grid[v] = pd.Categorical(grid[v], categories=levels)
    X, names = design_matrix(rhs, grid)
    if tuple(names) != tuple(fit.fixed_names):
        raise ValueError(
            f"the reference grid's design columns {names} differ from the fit's "
            f"{list(fit.fixed_names)}; check that the data are those the fits were made from."
        )
    return grid, X


def _emm_matrix(
    grid: pd.DataFrame, X: np.ndarray, specs: list[str]
) -> tuple[pd.DataFrame, np.ndarray]:
    """Equal-weight averages of grid rows per combination of the specs variables, ordered as
    emmeans orders them (the first specs variable varying fastest)."""
    keys = grid[specs].astype(object).apply(tuple, axis=1)
    order = [list(dict.fromkeys(grid[v].astype(object))) for v in specs]
    uniq = sorted(
        dict.fromkeys(keys),
        key=lambda k: tuple(order[i].index(k[i]) for i in reversed(range(len(k)))),
    )
    L = np.stack([X[(keys == k).to_numpy()].mean(axis=0) for k in uniq])
    labels = pd.DataFrame(uniq, columns=specs)
    return labels, L


def _row_names(labels: pd.DataFrame) -> list[str]:
    return [" ".join(str(x) for x in row) for row in labels.itertuples(index=False)]


@dataclass(frozen=True, repr=False, eq=False)
class PooledEmmeans:
    """Pooled marginal means (``emmeans``) and, with ``pairwise=True``, contrasts.

    ``emmeans`` / ``contrasts``: DataFrames with the specs columns (emmeans only), ``emmean``
    or ``estimate``, ``SE``, ``df``, the interval, ``t.ratio``, ``p.value``, ``RIV``, ``FMI``.
    ``L``: the (per-fit) linear combinations of the fixed effects, for the first fit.
    """

    _emmeans: pd.DataFrame
    _contrasts: pd.DataFrame | None
    m: int
    level: float
    fit_report: FitReport | None = None
    adjust: str = "none"

    @property
    def emmeans(self) -> pd.DataFrame:
        return self._emmeans.copy()

    @property
    def contrasts(self) -> pd.DataFrame | None:
        return None if self._contrasts is None else self._contrasts.copy()

    def to_string(self, digits: int = 3) -> str:
        lines = ["", f"Estimated marginal means pooled over {self.m} imputed data sets", ""]
        if self.fit_report is not None and not self.fit_report.clean:
            lines += self.fit_report.lines() + [""]
        num = self._emmeans.select_dtypes("number")
        lines += format_table(
            num.set_index(pd.Index(_row_names(self._emmeans.drop(columns=num.columns)))), digits, 5
        )
        if self._contrasts is not None:
            how = {
                "none": "unadjusted p-values and intervals",
                "bonferroni": "Bonferroni-adjusted p-values and intervals",
                "tukey": "Tukey-adjusted p-values and intervals, each contrast's pooled df",
            }[self.adjust]
            lines += ["", f"Pairwise contrasts ({how}):", ""]
            c = self._contrasts.set_index("contrast")
            lines += format_table(c, digits, 5)
        return "\n".join(lines) + "\n"

    def __str__(self) -> str:
        return self.to_string()

    def __repr__(self) -> str:
        return self.to_string()


def _pooled_table(
    q: np.ndarray, u: np.ndarray, dfc: np.ndarray | None, level: float
) -> pd.DataFrame:
    from scipy import stats

    arr, _ = _rubin(q, u, False, dfc)
    est, se, t, v, p, riv, fmi = arr.T
    a = (1.0 - level) / 2.0
    fac = stats.t.ppf(1.0 - a, v)
    lo, hi = _percent_labels(a)
    return pd.DataFrame(
        {
            "SE": se,
            "df": v,
            lo: est - fac * se,
            hi: est + fac * se,
            "t.ratio": t,
            "p.value": p,
            "RIV": riv,
            "FMI": fmi,
        }
    ).assign(_est=est)


def _tukey(ct: pd.DataFrame, k: int, level: float) -> None:
    """Tukey's adjustment of a pooled contrast table in place: p-values and intervals from the
    studentized range of ``k`` means with each row's df (see the module docstring)."""
    from scipy.stats import studentized_range

    t = ct["t.ratio"].to_numpy(dtype=float)
    v = ct["df"].to_numpy(dtype=float)
    se = ct["SE"].to_numpy(dtype=float)
    est = ct["_est"].to_numpy(dtype=float)
    ct["p.value"] = np.clip(studentized_range.sf(np.sqrt(2.0) * np.abs(t), k, v), 0.0, 1.0)
    crit = studentized_range.ppf(level, k, v) / np.sqrt(2.0)
    lo, hi = _percent_labels((1.0 - level) / 2.0)
    ct[lo], ct[hi] = est - crit * se, est + crit * se


def _bonferroni_intervals(ct: pd.DataFrame, n_contrasts: int, level: float) -> None:
    """Intervals at level 1 - (1 - level) / n_contrasts (emmeans' Bonferroni intervals)."""
    from scipy import stats

    a = (1.0 - level) / (2.0 * n_contrasts)
    crit = stats.t.ppf(1.0 - a, ct["df"].to_numpy(dtype=float))
    est, se = ct["_est"].to_numpy(dtype=float), ct["SE"].to_numpy(dtype=float)
    lo, hi = _percent_labels((1.0 - level) / 2.0)
    ct[lo], ct[hi] = est - crit * se, est + crit * se


def _df_rows(fits: list, Ls: list[np.ndarray], method: str) -> np.ndarray:
    from ..lmm.ddf import ddf_of

    return np.mean(np.stack([ddf_of(f, L, method)[1] for f, L in zip(fits, Ls)]), axis=0)


def pool_emmeans(
    fits: Sequence[Any],
    specs: str | Sequence[str],
    *,
    at: Mapping[str, Any] | None = None,
    data: Any = None,
    pairwise: bool = False,
    adjust: str = "none",
    level: float = 0.95,
    df_com: float | str | None = None,
    on_failure: str = "error",
) -> PooledEmmeans:
    """Estimated marginal means of m lmer fits (R's ``emmeans``), pooled by Rubin's rules.

    Parameters
    ----------
    fits : m ``pm.lmer`` fits, best straight from ``implist.with_(...)`` (which remembers the
        data sets the reference grids are built from).
    specs : the predictor(s) whose marginal means are wanted (factors, or numeric predictors
        with values in ``at``).
    at : values of predictors in the grid, e.g. ``{"ReadDis": [1, 2]}`` or factor levels;
        numeric predictors not named are held at their mean (per imputed data set).
    data : the MitmlList (or list of m DataFrames) the fits were made from; needed only when
        ``fits`` is a plain list.
    pairwise : also pool all pairwise differences of the means (earlier minus later).
    adjust : ``"none"``, ``"bonferroni"`` (the contrasts' p-values times the number of
        contrasts K, intervals at level 1 - (1 - level) / K) or ``"tukey"`` (p-values and intervals from the studentized range of the k
        means with each contrast's pooled df, as emmeans; see the module docstring).
    level : confidence level; df_com : None, a number, ``"Satterthwaite"`` or
        ``"Kenward-Roger"`` (per row, the mean of the fits' df; see the module docstring).
    on_failure : as in :func:`pool_estimates`.

    Examples
    --------
    >>> fits = implist.with_(lambda d: pm.lmer("y ~ group + x + (1 | g)", d))  # doctest: +SKIP
    >>> pm.pool_emmeans(fits, "group", pairwise=True).contrasts  # doctest: +SKIP
    """
    on_failure = check_on_failure(on_failure)
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence):
        raise TypeError(f"`fits` must be a list of pm.lmer fits; got {type(fits).__name__}.")
    spec_list = [specs] if isinstance(specs, str) else list(specs)
    if not spec_list or not all(isinstance(s, str) for s in spec_list):
        raise TypeError(f"`specs` must be a predictor name or a list of names; got {specs!r}.")
    if adjust not in ("none", "bonferroni", "tukey"):
        raise ValueError(f"`adjust` must be 'none', 'bonferroni' or 'tukey'; got {adjust!r}.")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"`level` must be a number between 0 and 1; got {level!r}.")
    frames = data if data is not None else getattr(fits, "source", None)
    if frames is None:
        raise ValueError(
            "pool_emmeans builds each fit's reference grid from its data: pass the MitmlList "
            "the fits were made from as `data=`, or use the result of implist.with_(...)."
        )
    frames = list(frames)
    if len(frames) != len(fits):
        raise ValueError(
            f"`data` holds {len(frames)} data sets but there are {len(fits)} fits; they must "
            "correspond one to one."
        )
    kept, report = screen_fits(fits, on_failure)
    kept_frames = [d for i, d in enumerate(frames) if i not in report.dropped]
    for f in kept:
        if not all(hasattr(f, a) for a in ("fixef", "vcov", "formula", "fixed_names")):
            raise TypeError(f"pool_emmeans needs pm.lmer fits; got a {type(f).__name__}.")
    at = {} if at is None else dict(at)
    Ls, qs, us, labels = [], [], [], None
    for f, d in zip(kept, kept_frames):
        grid, X = _grid(f, d, spec_list, at)
        lab, L = _emm_matrix(grid, X, spec_list)
        if labels is not None and not lab.equals(labels):
            raise ValueError("the reference grids differ between imputations (factor levels?).")
        labels = lab
        beta = f.fixef.to_numpy(dtype=float)
        V = f.vcov.to_numpy(dtype=float)
        Ls.append(L)
        qs.append(L @ beta)
        us.append(L @ V @ L.T)
    assert labels is not None
    q, u = np.stack(qs), np.stack(us)
    k = q.shape[1]
    method = df_com if isinstance(df_com, str) else None
    if method is not None and method not in ("Satterthwaite", "Kenward-Roger"):
        raise ValueError(
            f"`df_com` must be a number, None, 'Satterthwaite' or 'Kenward-Roger'; got {df_com!r}."
        )
    dfc = (
        _df_rows(kept, Ls, method)
        if method
        else (None if df_com is None else np.full(k, float(df_com)))
    )
    tab = _pooled_table(q, u, dfc, level)
    emm = pd.concat([labels, tab.drop(columns="_est")], axis=1)
    emm.insert(len(spec_list), "emmean", tab["_est"].to_numpy())
    contrasts = None
    if pairwise and k > 1:
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)]
        D = np.zeros((len(pairs), k))
        for r, (i, j) in enumerate(pairs):
            D[r, i], D[r, j] = 1.0, -1.0
        names = _row_names(labels)
        qc = q @ D.T
        uc = np.einsum("ri,lij,sj->lrs", D, u, D)
        dfcc = (
            _df_rows(kept, [D @ L for L in Ls], method)
            if method
            else (None if df_com is None else np.full(len(pairs), float(df_com)))
        )
        ct = _pooled_table(qc, uc, dfcc, level)
        if adjust == "bonferroni":
            ct["p.value"] = np.minimum(1.0, ct["p.value"] * len(pairs))
            _bonferroni_intervals(ct, len(pairs), level)
        elif adjust == "tukey":
            _tukey(ct, k, level)
        ct.insert(0, "estimate", ct.pop("_est"))
        ct.insert(0, "contrast", [f"{names[i]} - {names[j]}" for i, j in pairs])
        contrasts = ct
    return PooledEmmeans(emm, contrasts, len(kept), float(level), report, adjust)


def _new_design(fit: Any, data: Any, newdata: pd.DataFrame) -> np.ndarray:
    """X of ``newdata`` coded as the fit's data were (factor levels of the analysed rows)."""
    rhs = _fixed_part(fit.formula)
    variables = term_variables(rhs)
    missing = [v for v in variables if v not in newdata.columns]
    if missing:
        raise ValueError(
            f"`newdata` lacks the predictor(s) {missing} of {fit.formula!r}; give a value for each."
        )
    sub = as_pandas(data).iloc[np.asarray(getattr(fit, "rows", slice(None)))]
    nd = newdata[variables].copy()
    for v in variables:
        if v in sub.columns and _is_factor(sub[v]):
            levels = _levels(sub[v])
            unknown = sorted({x for x in nd[v] if x not in levels}, key=str)
            if unknown:
                raise ValueError(
                    f"`newdata['{v}']` has level(s) {unknown} that the data do not have ({levels})."
                )
            nd[v] = (
                nd[v].astype(bool)
                if pd.api.types.is_bool_dtype(sub[v])
                else pd.Categorical(nd[v], categories=levels)
            )
    X, names = design_matrix(rhs, nd.reset_index(drop=True))
    if tuple(names) != tuple(fit.fixed_names):
        raise ValueError(
            f"the design of `newdata` has columns {names}, the fit {list(fit.fixed_names)}."
        )
    return X


def pool_predictions(
    fits: Sequence[Any],
    newdata: Any,
    *,
    data: Any = None,
    level: float = 0.95,
    df_com: float | str | None = None,
    on_failure: str = "error",
) -> pd.DataFrame:
    """Population-level predictions X_new beta of m lmer fits for new data, pooled by Rubin's
    rules (R's ``predict(fit, newdata, re.form = NA)`` per imputation, standard errors from
    X_new V X_new').

    Parameters
    ----------
    fits : m ``pm.lmer`` fits, best from ``implist.with_(...)`` (``data`` otherwise).
    newdata : DataFrame (pandas or polars) with a value for every fixed-effect predictor.
    data, level, df_com, on_failure : as in :func:`pool_emmeans`.

    Returns
    -------
    DataFrame: the rows of ``newdata`` with ``fit``, ``SE``, ``df``, the interval, ``RIV``,
    ``FMI``.
    """
    on_failure = check_on_failure(on_failure)
    if isinstance(fits, (str, bytes)) or not isinstance(fits, Sequence):
        raise TypeError(f"`fits` must be a list of pm.lmer fits; got {type(fits).__name__}.")
    if not (isinstance(level, (int, float)) and 0 < level < 1):
        raise ValueError(f"`level` must be a number between 0 and 1; got {level!r}.")
    nd = as_pandas(newdata)
    frames = data if data is not None else getattr(fits, "source", None)
    if frames is None:
        raise ValueError(
            "pool_predictions codes `newdata` as the fits' data were: pass the MitmlList the "
            "fits were made from as `data=`, or use the result of implist.with_(...)."
        )
    frames = list(frames)
    if len(frames) != len(fits):
        raise ValueError(f"`data` holds {len(frames)} data sets but there are {len(fits)} fits.")
    kept, report = screen_fits(fits, on_failure)
    kept_frames = [d for i, d in enumerate(frames) if i not in report.dropped]
    Ls = [_new_design(f, d, nd) for f, d in zip(kept, kept_frames)]
    q = np.stack([L @ f.fixef.to_numpy(dtype=float) for f, L in zip(kept, Ls)])
    u = np.stack([L @ f.vcov.to_numpy(dtype=float) @ L.T for f, L in zip(kept, Ls)])
    method = df_com if isinstance(df_com, str) else None
    k = q.shape[1]
    dfc = (
        _df_rows(kept, Ls, method)
        if method
        else (None if df_com is None else np.full(k, float(df_com)))
    )
    tab = _pooled_table(q, u, dfc, level).drop(columns=["t.ratio", "p.value"])
    out = nd.reset_index(drop=True).copy()
    out["fit"] = tab.pop("_est").to_numpy()
    return pd.concat([out, tab], axis=1)
