"""The methods the validity study compares, each a function (design, data, settings) -> fits.

A method returns the analysis model's fits (one per imputed data set; one for the complete data
before deletion and for listwise deletion),
or raises :class:`NotApplicable` when it cannot handle the design (pan-style imputation of a
categorical or level-2 variable, say), which the study records as such and does not count as a
failure. Every imputation runs on one thread (the study parallelises over replications).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ._designs import Design

__all__ = ["METHODS", "NotApplicable", "Settings", "method_names"]


class NotApplicable(Exception):
    """The method has no model for this design (recorded, not a failure)."""


@dataclass(frozen=True)
class Settings:
    """Imputation settings shared by every method of a study."""

    m: int = 20
    n_burn: int = 1000
    n_iter: int = 100
    maxit: int = 20


def _input(design: Design, data: pd.DataFrame) -> pd.DataFrame:
    """The data an imputation method sees: derived product columns removed."""
    return data.drop(columns=list(design.products))


def _fit_each(design: Design, implist: Any) -> Any:
    import pymitml as pm

    return implist.with_(lambda d: pm.lmer(design.analysis, design.derive(d), REML=True))


def complete(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
    """The data before deletion (the benchmark every method is compared with); one fit."""
    import pymitml as pm

    full = design.generate(int(data.attrs["seed"]), complete=True)
    return [pm.lmer(design.analysis, design.derive(full), REML=True)]


def listwise(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
    """Complete cases of the analysis model's variables; one fit."""
    import pymitml as pm

    d = design.derive(data).dropna()
    return [pm.lmer(design.analysis, d, REML=True)]


def _pan_formula(design: Design) -> str:
    preds = " + ".join(("1",) + design.aux)
    return f"{' + '.join(design.level1)} ~ {preds} + (1|g)"


def pan(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
    """pan-style joint model of the level-1 variables, random intercepts (mitml's panImpute)."""
    import pymitml as pm

    if design.level2 or design.categorical:
        raise NotApplicable("pan imputes continuous level-1 variables only")
    imp = pm.pan_impute(
        _input(design, data),
        _pan_formula(design),
        m=s.m,
        n_burn=s.n_burn,
        n_iter=s.n_iter,
        seed=seed,
        n_threads=1,
        progress=False,
    )
    return _fit_each(design, imp.complete())


def jomo(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
    """jomo-style joint model with cluster-specific covariance matrices (random_L1='full');
    categorical variables as latent normals, level-2 variables at level 2."""
    import pymitml as pm

    formula: Any = _pan_formula(design)
    if design.level2:
        formula = [formula, f"{' + '.join(design.level2)} ~ 1"]
    imp = pm.jomo_impute(
        _input(design, data),
        formula,
        random_L1="full",
        m=s.m,
        n_burn=s.n_burn,
        n_iter=s.n_iter,
        seed=seed,
        n_threads=1,
        progress=False,
    )
    return _fit_each(design, imp.complete())


def _fcs_setup(design: Design, data: pd.DataFrame, level1: str | None) -> tuple[dict, pd.DataFrame]:
    """mice-style methods and predictor matrix: every other analysis/auxiliary variable a fixed
    effect; two-level (``level1`` the continuous level-1 method): the cluster id -2 and the
    analysis model's random slopes reversed (code 2); ``level1=None``: single-level methods and
    the cluster ignored."""
    cols = [c for c in data.columns if c != "g"]
    cat = (
        {"binary": "2l.bin", "ordinal": "2l.polr"}
        if level1
        else {"binary": "logreg", "ordinal": "polr"}
    )
    method: dict[str, str] = {}
    for v in design.level1:
        method[v] = cat.get(design.categorical.get(v, ""), level1 or "norm")
    for v in design.level2:
        method[v] = "2lonly.norm" if level1 else "norm"
    for col, (a, b) in design.products.items():
        method[col] = f"~ I({a} * {b})"
    targets = list(design.incomplete)
    pred = pd.DataFrame(0, index=targets, columns=["g", *cols])
    for t in targets:
        pred.loc[t, "g"] = -2 if level1 else 0
        for c in cols:
            if c == t or c in design.products:
                continue
            pred.loc[t, c] = 2 if (level1 and t in design.slopes and c == "y") else 1
    return method, pred


def _run_fcs(design: Design, data: pd.DataFrame, s: Settings, seed: int, level1: str | None) -> Any:
    import pymitml as pm

    method, pred = _fcs_setup(design, data, level1)
    imp = pm.fcs_impute(
        data,
        cluster="g" if level1 else None,
        method=method,
        predictor_matrix=pred,
        m=s.m,
        maxit=s.maxit,
        seed=seed,
        n_threads=1,
        progress=False,
    )
    return _fit_each(design, imp.complete())


def _fcs(level1: str) -> Callable[[Design, pd.DataFrame, Settings, int], Any]:
    def run(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
        return _run_fcs(design, data, s, seed, level1)

    run.__doc__ = f"Chained equations, mice's {level1} for continuous level-1 variables."
    return run


def single(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
    """Single-level chained equations that ignore the clustering (the known failure)."""
    return _run_fcs(design, data, s, seed, None)


def model(design: Design, data: pd.DataFrame, s: Settings, seed: int) -> Any:
    """Model-based (substantive-model-compatible) imputation from the focal model, with the
    design's auxiliary variable(s) as auxiliary models and a selection model for MNAR designs."""
    import pymitml as pm

    if not hasattr(pm, "model_impute"):
        raise NotApplicable("this pymitml has no model_impute")
    kw: dict[str, Any] = {}
    if design.selection:
        kw["selection"] = dict(design.selection)
    # complete variables the imputation models use but the analysis does not: auxiliaries
    aux = [a for a in design.aux if not re.search(rf"\b{re.escape(a)}\b", design.focal)]
    if aux:
        kw["auxiliary"] = aux
    imp = pm.model_impute(
        _input(design, data),
        design.focal,
        m=s.m,
        n_burn=s.n_burn,
        n_iter=s.n_iter,
        seed=seed,
        n_threads=1,
        progress=False,
        verbose=False,
        **kw,
    )
    return _fit_each(design, imp.complete())


#: name -> method, in the order of the published table
METHODS: dict[str, Callable[[Design, pd.DataFrame, Settings, int], Any]] = {
    "complete": complete,
    "listwise": listwise,
    "single": single,
    "pan": pan,
    "jomo": jomo,
    "fcs_2l.pan": _fcs("2l.pan"),
    "fcs_2l.norm": _fcs("2l.norm"),
    "fcs_2l.pmm": _fcs("2l.pmm"),
    "model": model,
}


def method_names() -> list[str]:
    return list(METHODS)
