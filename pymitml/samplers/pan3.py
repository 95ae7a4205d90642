"""pan_impute with two nested random terms: the three-level joint model (issue 19).

``pm.pan_impute(df, "y + x ~ 1 + w + (1 + z|school) + (1|school:class)")``: continuous
level-1 targets with random effects at two nested levels (see
:mod:`pymitml.samplers._pan3_kernel` for the model and the Gibbs steps). :func:`pan3_impute`
is reached through :func:`~pymitml.pan_impute` when its formula has two random-effects terms;
everything else (arguments, chains, result) is as in the two-level sampler.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from .._frame import as_pandas
from .._model import GroupData, prepare_model
from ..formula import _BAR, design_matrix, term_variables
from ..levels import Factor, Levels, _check_nested, detect_levels, factor_codes
from ..result import ImputationResult, RunSettings
from ._gibbs import cluster_runs, rows_crossproducts
from ._layout import design_crossproducts, row_blocks
from ._pan3_kernel import Pan3Data, Pan3Params, Pan3Store, pan3_iterate, pan3_work
from ._prior import check_prior
from .driver import Chain, assemble_result, run_chains

__all__ = ["ThreeLevelFormula", "pan3_impute", "random_terms"]


@dataclass(frozen=True)
class ThreeLevelFormula:
    """A pan formula with two random terms: ``lhs ~ fixed + (expr3 | outer) + (expr2 | inner)``."""

    lhs: str
    fixed: str
    terms: tuple[tuple[str, str], ...]  # (expression, factor) as written, in formula order


def random_terms(formula: str) -> ThreeLevelFormula | None:
    """The formula's parts when it has two or more random-effects terms, else None."""
    if not isinstance(formula, str) or formula.count("~") != 1:
        return None
    lhs, rhs = (s.strip() for s in formula.split("~"))
    bars = list(_BAR.finditer(rhs))
    if len(bars) < 2:
        return None
    terms = []
    for m in bars:
        if "||" in m.group(0):
            raise ValueError("uncorrelated random effects '||' are not supported; use '|'.")
        factor = ":".join(c.strip().strip("`") for c in m.group(2).split(":"))
        terms.append((m.group(1).strip() or "1", factor))
    fixed = rhs
    for m in reversed(bars):
        fixed = fixed[: m.start()] + fixed[m.end() :]
    fixed = re.sub(r"^\s*\+|\+\s*$", "", re.sub(r"(\+\s*)+\+", "+", fixed)).strip() or "1"
    return ThreeLevelFormula(lhs, fixed, tuple(terms))


def _nesting(formula: str, pdf: pd.DataFrame, tl: ThreeLevelFormula) -> tuple[int, int]:
    """(outer term, inner term) positions; errors for crossed or non-nested factors."""
    if len(tl.terms) != 2:
        raise ValueError(
            f"`formula` {formula!r} has {len(tl.terms)} random-effects terms; pan_impute takes "
            "one term (two levels) or two terms for nested factors (three levels), e.g. "
            "'(1|school) + (1|school:class)'. For more factors use pm.fcs_impute(df, "
            "cluster=[...])."
        )
    (_, g0), (_, g1) = tl.terms
    if g0 == g1:
        raise ValueError(
            f"`formula` {formula!r} has two random terms for '{g0}'; write the effects in one "
            f"term '(1 + x|{g0})'."
        )
    f0, f1 = factor_codes(pdf, g0), factor_codes(pdf, g1)

    def nested(fo: Factor, fi: Factor) -> bool:
        try:
            _check_nested(fo, fi)
        except ValueError:
            return False
        return True

    # the term whose groups contain the other's is the outer one; if neither, the first as written
    outer, inner = (1, 0) if nested(f1, f0) and not nested(f0, f1) else (0, 1)
    fo, fi = (f0, f1) if outer == 0 else (f1, f0)
    try:
        _check_nested(fo, fi)
    except ValueError as err:
        msg = str(err).replace(
            "if the factors are crossed, pass crossed=True.",
            "pan_impute's three-level model needs nested factors; for crossed factors use "
            f"pm.fcs_impute(df, cluster=['{fo.name}', '{fi.name}'], crossed=True).",
        )
        raise ValueError(msg) from None
    return outer, inner


def _default_prior(r: int, q2: int, q3: int) -> dict:
    return {
        "a": float(r),
        "Binv": np.eye(r),
        "c": float(r * q2),
        "Dinv": np.eye(r * q2),
        "c3": float(r * q3),
        "Dinv3": np.eye(r * q3),
    }


def _check_prior(prior: Mapping | None, r: int, q2: int, q3: int) -> dict:
    d2, d3 = r * q2, r * q3
    return check_prior(
        prior,
        _default_prior(r, q2, q3),
        {"Binv": r, "Dinv": d2, "Dinv3": d3},
        {
            "a": (r - 1, "degrees of freedom"),
            "c": (d2 - 1, "degrees of freedom"),
            "c3": (d3 - 1, "degrees of freedom"),
        },
    )


@dataclass
class _Group3:
    """One imputation group's three-level arrays (classes numbered school by school)."""

    gd: GroupData
    Z2: np.ndarray
    Z3: np.ndarray
    cls: np.ndarray  # (n,) class codes 0..C-1
    sch: np.ndarray  # (n,) school codes 0..S-1
    school_of: np.ndarray  # (C,)


def _group_codes(gd: GroupData, fo: Factor, fi: Factor, Z2, Z3, where: str) -> _Group3:
    so = pd.factorize(fo.codes[gd.rows], sort=True)[0].astype(np.int64)
    ci = pd.factorize(fi.codes[gd.rows], sort=True)[0].astype(np.int64)
    S, C = int(so.max()) + 1, int(ci.max()) + 1
    for name, k in ((fo.name, S), (fi.name, C)):
        if k < 2:
            raise ValueError(
                f"the cluster variable '{name}' has a single group{where}; a three-level model "
                "needs at least two groups at each level."
            )
    raw = np.zeros(C, np.int64)
    raw[ci] = so
    perm = np.argsort(raw, kind="stable")  # classes school by school
    rank = np.empty(C, np.int64)
    rank[perm] = np.arange(C)
    return _Group3(gd, Z2[gd.rows], Z3[gd.rows], rank[ci], so, raw[perm])


def _make_chain(g3: _Group3, seed: int, *, prior: dict, diag_only: bool, intercept: bool) -> Chain:
    """One chain of one group: start values (as pan's), data layout, kernel state."""
    gd = g3.gd
    X, Z2, Z3, cls, sch = gd.X, g3.Z2, g3.Z3, g3.cls, g3.sch
    N, p = X.shape
    q2, q3, r = Z2.shape[1], Z3.shape[1], gd.Y.shape[1]
    d2, d3 = q2 * r, q3 * r
    C, S = len(g3.school_of), int(sch.max()) + 1
    miss = np.isnan(gd.Y)
    obs_mean = np.array([np.nanmean(gd.Y[:, t]) for t in range(r)])
    shift = obs_mean if intercept else np.zeros(r)
    with np.errstate(invalid="ignore"):
        Y = gd.Y - shift
    Y[miss] = np.broadcast_to(obs_mean - shift, Y.shape)[miss]
    XtX = np.ascontiguousarray(X.T @ X)
    Z2tZ2, Z2tX = design_crossproducts(X, Z2, cls, C)
    Z3tZ3, Z3tX = design_crossproducts(X, Z3, sch, S)
    _, Z2tZ3 = design_crossproducts(Z3, Z2, cls, C)
    lay = row_blocks(X, Z2, Y, cls, C, miss)
    rows, comp = lay["rows"], lay["comp"]
    Z3tYc, Z3tYi = np.zeros((q3, r, S)), np.zeros((q3, r, S))
    scratch = (np.zeros((0, r)), np.zeros((r, r)))
    rows_crossproducts(
        np.zeros((0, len(comp))),
        np.ascontiguousarray(Z3[comp].T),
        np.ascontiguousarray(Y[comp].T),
        sch[comp],
        cluster_runs(sch[comp]),
        scratch[0],
        Z3tYc,
        scratch[1],
    )
    Z3i, Si = np.ascontiguousarray(Z3[rows].T), np.ascontiguousarray(sch[rows])
    SegS = cluster_runs(Si)
    X0 = np.zeros((0, len(rows)))
    rows_crossproducts(X0, Z3i, lay["Yi"], Si, SegS, scratch[0], Z3tYi, scratch[1])
    beta = np.linalg.solve(XtX, X.T @ Y)
    res = Y - X @ beta
    Sigma = np.cov(res, rowvar=False).reshape(r, r) + 1e-8 * np.eye(r)
    dg = np.diag(Sigma).copy()
    dg[dg <= 0] = 1.0
    Sigma = np.diag(dg) if np.linalg.eigvalsh(Sigma).min() <= 0 else Sigma
    Psi2 = np.kron(np.diag(0.5 * dg), np.eye(q2))
    Psi3 = np.kron(np.diag(0.5 * dg), np.eye(q3))
    pos_of_row = np.full(N, -1, dtype=np.int64)
    pos_of_row[rows] = np.arange(len(rows))
    cells = np.argwhere(miss.T)
    ct, cr = cells[:, 0], cells[:, 1]
    cpos = pos_of_row[cr]
    rng = np.random.default_rng(seed)
    dfs = np.concatenate(
        [
            prior["c"] + C - np.arange(d2),
            prior["c3"] + S - np.arange(d3),
            prior["a"] + N - np.arange(r),
        ]
    )
    data = Pan3Data(
        XtX,
        Z2tZ2,
        Z2tX,
        Z2tZ3,
        Z3tZ3,
        Z3tX,
        g3.school_of,
        lay["XtYc"],
        lay["ZtYc"],
        Z3tYc,
        lay["YtYc"],
        lay["Xi"],
        lay["Zi"],
        Z3i,
        lay["Ci"],
        Si,
        lay["Seg"],
        SegS,
        X0,
        lay["pat_start"],
        lay["pat_obs"],
        lay["pat_nobs"],
        lay["pat_mis"],
        lay["pat_nmis"],
        np.ascontiguousarray(prior["Binv"]),
        np.ascontiguousarray(prior["Dinv"]),
        np.ascontiguousarray(prior["Dinv3"]),
        dfs,
    )
    Yi = lay["Yi"]
    par = Pan3Params(
        beta,
        Sigma,
        Psi2,
        Psi3,
        np.zeros((q2, r, C)),
        np.zeros((q3, r, S)),
        Yi,
        lay["XtYi"],
        lay["ZtYi"],
        Z3tYi,
        lay["YtYi"],
    )
    work = pan3_work(data, r, len(ct))

    def advance(n, rec0, store):
        code = pan3_iterate(n, rec0, rng, data, par, work, Pan3Store(**store))
        return code, int(work.failed_at[0])

    def finish(burn, imp):
        if intercept:
            for ch in (burn, imp):
                ch["beta"][0] += shift[:, None]

    return Chain(
        advance=advance,
        shapes=dict(
            beta=(p, r),
            psi=(d2, 1 if diag_only else d2),
            psi3=(d3, 1 if diag_only else d3),
            sigma=(r, 1 if diag_only else r),
        ),
        current=lambda: Yi[ct, cpos] + shift[ct],
        cells=(ct, cr),
        finish=finish,
    )


def pan3_impute(
    data: Any,
    formula: str,
    tl: ThreeLevelFormula,
    *,
    m: int,
    n_burn: int,
    n_iter: int,
    chains: int,
    per_chain: list[int],
    group: str | None,
    prior: Mapping | None,
    seed,
    keep_chains: str,
    n_threads: int | None,
    missing_code,
    progress: bool | None,
    client: Any,
) -> ImputationResult:
    """The three-level run of :func:`~pymitml.pan_impute` (its arguments already checked).

    Prior: mitml's ``a``, ``Binv`` (Sigma), ``c``, ``Dinv`` (Psi2, the inner level) and ``c3``,
    ``Dinv3`` (Psi3, the outer level); defaults a = r, Binv = I, c = r q2, Dinv = I,
    c3 = r q3, Dinv3 = I (pan's choice at each level). Chains: ``beta``, ``psi`` (inner level),
    ``psi3`` (outer level), ``sigma``.
    """
    pdf = as_pandas(data)
    outer, inner = _nesting(formula, pdf, tl)
    (e3, g3), (e2, g2) = tl.terms[outer], tl.terms[inner]
    fo, fi = factor_codes(pdf, g3), factor_codes(pdf, g2)
    rand_vars = term_variables(e3) + term_variables(e2)
    proxy = (
        f"{tl.lhs} ~ {tl.fixed} + ({' + '.join(['1', *dict.fromkeys(rand_vars)])} | "
        f"{fo.columns[0]})"
    )
    spec, codebook = prepare_model(data, proxy, None, group, missing_code, method="pan_impute")
    work_df = as_pandas(codebook.incomplete)
    Z3_all, z3_names = design_matrix(e3, work_df)
    Z2_all, z2_names = design_matrix(e2, work_df)
    for e, g, names in ((e3, g3, z3_names), (e2, g2, z2_names)):
        if not names:
            raise ValueError(
                f"the random-effects term '({e} | {g})' has no terms; write '(1|{g})' for a "
                "random intercept."
            )
    groups = [
        _group_codes(
            gd,
            fo,
            fi,
            Z2_all,
            Z3_all,
            "" if gd.label is None else f" in group {spec.group}={gd.label!r}",
        )
        for gd in spec.groups
    ]
    r, q2, q3 = len(spec.targets), len(z2_names), len(z3_names)
    prior_ = _check_prior(prior, r, q2, q3)
    intercept = bool(spec.x_names) and spec.x_names[0] == "(Intercept)"
    make = partial(
        _make_chain, prior=prior_, diag_only=keep_chains == "diagonal", intercept=intercept
    )
    labels = [gd.label for gd in spec.groups]
    out = run_chains(
        lambda g, c, s: make(groups[g], s),
        labels,
        n_burn=n_burn,
        n_iter=n_iter,
        per_chain=per_chain,
        seed=seed,
        n_threads=n_threads,
        progress=progress,
        client=client,
        sampler="pan_impute",
    )
    q2n = [f"{t}:{z}|{g2}" for t in spec.targets for z in z2_names]
    q3n = [f"{t}:{z}|{g3}" for t in spec.targets for z in z3_names]
    full = keep_chains == "full"
    param_names = {
        "beta": (spec.x_names, spec.targets),
        "psi": (q2n, q2n if full else ["var"]),
        "psi3": (q3n, q3n if full else ["var"]),
        "sigma": (spec.targets, spec.targets if full else ["var"]),
    }
    settings = RunSettings(
        n_burn=n_burn,
        n_iter=n_iter,
        m=m,
        chains=chains,
        keep_chains=keep_chains,
        group=spec.group,
        cluster=g2,
        seed=seed if isinstance(seed, int) else None,
    )
    used = [*spec.targets, *term_variables(tl.fixed), *rand_vars]
    cols = [c for c in dict.fromkeys(used) if c in work_df.columns]
    cluster_cols = [c for f in (fo, fi) for c in f.columns]
    lv: Levels = detect_levels(
        work_df[list(dict.fromkeys(cluster_cols + cols))], [fo.name, fi.name]
    )
    return assemble_result(
        out,
        blocks=("beta", "psi", "psi3", "sigma"),
        group_rows=[gd.rows for gd in spec.groups],
        target_columns=spec.target_positions,
        method="pan",
        formula=formula,
        targets=spec.targets,
        prior=[prior_] * len(labels),
        settings=settings,
        codebook=codebook,
        param_names=param_names,
        group_labels=labels,
        extra={
            "target_positions": spec.target_positions,
            "x_names": spec.x_names,
            "z_names": z2_names,
            "z3_names": z3_names,
            "factors": (fo.name, fi.name),
            "levels": lv,
        },
    )
