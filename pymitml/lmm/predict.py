"""``predict`` and ``anova`` for lmer fits, as lme4's ``predict.merMod`` and ``anova.merMod``."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._frame import as_pandas
from ..formula import design_matrix_from_spec

__all__ = ["anova", "predict"]


def _terms(fit: Any) -> list[tuple[str, tuple[str, ...], str, Any, np.ndarray, np.ndarray]]:
    """(label, grouping columns, expr, model spec, level labels, modes (J, q)) of each term."""
    d = fit._design
    if hasattr(d, "terms"):
        out = []
        blocks = fit.ranef
        for (label, df), t in zip(blocks.items(), d.terms):
            out.append((label, t.term.groups, t.term.expr, t.spec, t.labels, df.to_numpy(float)))
        return out
    f = d.formula
    return [(f.cluster, (f.cluster,), f.random, d.z_spec, d.labels, fit.ranef.to_numpy(float))]


def _wanted(re_form: Any, terms: list) -> set[int]:
    if re_form is None:
        return set(range(len(terms)))
    if (isinstance(re_form, float) and math.isnan(re_form)) or (
        isinstance(re_form, str) and re_form.replace(" ", "") in ("~0", "NA", "0")
    ):
        return set()
    if not isinstance(re_form, str):
        raise TypeError("`re_form` must be None, '~0' (or NaN) or a formula such as '~ (1 | g)'.")
    from ._terms import parse_lmer_formula

    text = re_form.strip()
    if not text.startswith("~"):
        raise ValueError(f"`re_form` must start with '~'; got {re_form!r}.")
    wanted = parse_lmer_formula("y " + text).random
    names = {":".join(t.groups) for t in wanted}
    have = {":".join(t[1]) for t in terms}
    unknown = names - have
    if unknown:
        raise ValueError(
            f"`re_form` names grouping factor(s) {sorted(unknown)} that the model lacks; "
            f"its terms group by {sorted(have)}."
        )
    return {k for k, t in enumerate(terms) if ":".join(t[1]) in names}


def _level_index(newdata: pd.DataFrame, groups: tuple[str, ...], labels: np.ndarray, fit: Any):
    """Position of each new row's level among the fit's levels (-1: a new level)."""
    if not hasattr(fit._design, "terms"):  # one grouping factor: labels keep their type
        return pd.Index(labels).get_indexer(newdata[groups[0]].to_numpy())
    keys = [":".join(str(v) for v in r) for r in zip(*(newdata[g].tolist() for g in groups))]
    return pd.Index(labels).get_indexer(np.array(keys, dtype=object))


def predict(
    fit: Any, newdata: Any = None, *, re_form: Any = None, allow_new_levels: bool = False
) -> np.ndarray:
    """Predictions of an lmer fit (lme4's ``predict(fit, newdata, re.form, allow.new.levels)``).

    Parameters
    ----------
    newdata : DataFrame with the model's predictor and grouping columns (default: the data the
        model was fitted to, giving ``fitted()`` when ``re_form`` is None).
    re_form : None (all random effects, conditional predictions), ``"~0"`` or NaN (fixed
        effects only, population level) or a formula naming the terms to include,
        ``"~ (1 | school)"``.
    allow_new_levels : levels of a grouping factor not in the fit get random effects 0 (their
        population value); False (default, as lme4) makes them an error.
    """
    terms = _terms(fit)
    wanted = _wanted(re_form, terms)
    d = fit._design
    beta = fit.fixef.to_numpy(dtype=float)
    if newdata is None:
        if re_form is None:
            return fit.fitted()
        eta = d.X @ beta
        if getattr(d, "offset", None) is not None:
            eta = eta + d.offset
        Z = fit.Z_sparse() if hasattr(fit, "Z_sparse") else None
        if wanted:
            eta = eta + _random_part_train(fit, terms, wanted, Z)
        return np.asarray(eta)
    nd = as_pandas(newdata).reset_index(drop=True)
    rhs = d.formula.fixed
    X, names = design_matrix_from_spec(d.x_spec, rhs, nd)
    keep = list(d.x_keep) if d.x_keep is not None else list(range(X.shape[1]))
    X = X[:, keep]
    if [names[k] for k in keep] != list(fit.fixed_names):
        raise ValueError(
            f"`newdata` gives the fixed-effect columns {[names[k] for k in keep]}, the fit has "
            f"{list(fit.fixed_names)}: factor levels must be those of the fitted data."
        )
    if np.isnan(X).any():
        raise ValueError("`newdata` has missing values in the fixed-effect predictors.")
    eta = X @ beta
    for o in getattr(d.formula, "offsets", ()):
        from ._multi_design import _evaluate

        eta = eta + _evaluate(o, nd, "offset", d.formula.text)
    for k in sorted(wanted):
        label, groups, expr, spec, labels, B = terms[k]
        missing = [g for g in groups if g not in nd.columns]
        if missing:
            raise ValueError(f"`newdata` lacks the grouping column(s) {missing} of term '{label}'.")
        Zk, _ = design_matrix_from_spec(spec, expr, nd)
        idx = _level_index(nd, groups, labels, fit)
        new = idx < 0
        if new.any() and not allow_new_levels:
            shown = nd.loc[new, list(groups)].drop_duplicates().head(5).to_dict("records")
            raise ValueError(
                f"new levels of grouping factor '{label}' in `newdata` (e.g. {shown}); pass "
                "allow_new_levels=True to predict them at the population level (random effects 0)."
            )
        contrib = np.einsum("ij,ij->i", Zk, B[np.where(new, 0, idx)])
        eta = eta + np.where(new, 0.0, contrib)
    return np.asarray(eta)


def _random_part_train(fit: Any, terms: list, wanted: set[int], Z: Any) -> np.ndarray:
    d = fit._design
    if Z is None:  # one grouping factor
        B = terms[0][5]
        return np.einsum("ij,ij->i", d.Z, B[d.codes])
    out = np.zeros(d.n)
    col = 0
    b = fit.random_vector()
    for k, t in enumerate(d.terms):
        size = t.q * t.n_levels
        if k in wanted:
            out += Z[:, col : col + size] @ b[col : col + size]
        col += size
    return out


def anova(*fits: Any, refit: bool = True, names: list[str] | None = None) -> pd.DataFrame:
    """Likelihood-ratio tests of nested lmer fits, as lme4's ``anova(fit0, fit1, ...)``.

    REML fits are refitted by maximum likelihood first (lme4's ``refit = TRUE``; lme4 prints
    "refitting model(s) with ML (instead of REML)"). Models are sorted by their number of
    parameters; each row is tested against the row above.

    Returns a DataFrame with lme4's columns npar, AIC, BIC, logLik, deviance (``-2logLik`` in
    lme4 >= 1.1-31 prints as "deviance"), Chisq, Df, Pr(>Chisq).
    """
    if len(fits) < 2:
        raise ValueError("anova needs at least two fits to compare.")
    names = [f"fit{k}" for k in range(len(fits))] if names is None else list(names)
    if len(names) != len(fits):
        raise ValueError(f"`names` must have {len(fits)} entries; got {len(names)}.")
    nobs = {f.nobs for f in fits}
    if len(nobs) > 1:
        raise ValueError(
            f"models were not all fitted to the same size of dataset (nobs {sorted(nobs)})."
        )
    ml = [f.refit(REML=False) if (refit and f.REML) else f for f in fits]
    order = sorted(range(len(ml)), key=lambda k: ml[k].df)
    rows = []
    prev = None
    for k in order:
        f = ml[k]
        ll = f.loglik
        row = {
            "npar": f.df,
            "AIC": -2 * ll + 2 * f.df,
            "BIC": -2 * ll + math.log(f.nobs) * f.df,
            "logLik": ll,
            "deviance": -2 * ll,
            "Chisq": np.nan,
            "Df": np.nan,
            "Pr(>Chisq)": np.nan,
        }
        if prev is not None:
            chisq = max(2.0 * (ll - prev.loglik), 0.0)
            df = f.df - prev.df
            row["Chisq"], row["Df"] = chisq, df
            row["Pr(>Chisq)"] = float(stats.chi2.sf(chisq, df)) if df > 0 else np.nan
        rows.append(row)
        prev = f
    out = pd.DataFrame(rows, index=[names[k] for k in order])
    out.attrs["refitted"] = any(refit and f.REML for f in fits)
    return out
