"""From (data, formula | type, group) to validated arrays per group: the model specification.

Shared by every sampler: the frame boundary (:mod:`pymitml._frame`) turns the data into a
pandas working copy, :mod:`pymitml.formula` parses the formula, and this module checks the
model against the data and builds the design matrices.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ._frame import Codebook, ColumnCodec, check_columns, encode_clusters, numeric_values
from ._validation import check_positive_int
from .formula import design_matrix, parse_formula, term_variables

__all__ = ["GroupData", "ModelSpec", "check_positive_int", "formula_from_type", "prepare_model"]


def formula_from_type(type: Mapping[str, int]) -> tuple[str, str | None]:
    """mitml's ``type`` codes -> (formula, group column).

    Codes: 1 target, 2 fixed predictor, 3 fixed and random predictor, -1 group, -2 cluster id,
    0 unused. As in mitml, the intercept is in both the fixed and the random part.
    """
    if not isinstance(type, Mapping):
        raise TypeError(
            "`type` must be a mapping {column: code} with mitml's codes 1, 2, 3, -1, -2, 0."
        )
    bad = {k: v for k, v in type.items() if v not in (1, 2, 3, -1, -2, 0)}
    if bad:
        raise ValueError(f"`type` codes must be among 1, 2, 3, -1, -2, 0; got {bad}.")
    targets = [k for k, v in type.items() if v == 1]
    fixed = [k for k, v in type.items() if v in (2, 3)]
    random = [k for k, v in type.items() if v == 3]
    clus = [k for k, v in type.items() if v == -2]
    group = [k for k, v in type.items() if v == -1]
    if not targets:
        raise ValueError("`type` names no target (code 1).")
    if len(clus) > 1 or len(group) > 1:
        raise ValueError("`type` may name at most one cluster id (-2) and one group column (-1).")
    rhs = " + ".join(["1", *fixed])
    if clus:
        rhs += " + (" + " + ".join(["1", *random]) + " | " + clus[0] + ")"
    elif random:
        raise ValueError("`type` has random predictors (code 3) but no cluster id (code -2).")
    return " + ".join(targets) + " ~ " + rhs, (group[0] if group else None)


@dataclass
class GroupData:
    """Arrays of one imputation group (rows of the data in their original positions)."""

    label: Any
    rows: np.ndarray  # positions in the data (int64)
    X: np.ndarray  # (n, p) fixed design
    Z: np.ndarray  # (n, q) random design
    Y: np.ndarray  # (n, r) targets, NaN where missing
    clus: np.ndarray  # (n,) cluster codes 0..J-1
    cluster_labels: np.ndarray


@dataclass
class ModelSpec:
    """What a sampler needs to know about the model, with names for every parameter."""

    formula: str
    targets: list[str]
    x_names: list[str]
    z_names: list[str]
    cluster: str | None
    group: str | None
    groups: list[GroupData] = field(repr=False, default_factory=list)
    target_positions: list[int] = field(default_factory=list)  # column positions in the data


def _check_rank(X: np.ndarray, names: list[str], where: str) -> None:
    if X.shape[1] == 0:
        return
    if X.shape[0] < X.shape[1]:
        raise ValueError(
            f"the fixed-effects design {where}has {X.shape[1]} columns but only {X.shape[0]} rows; "
            "use fewer predictors."
        )
    # like R's lm: a column is aliased when it adds nothing to the columns before it
    Rm = np.linalg.qr(X, mode="r")
    norms = np.linalg.norm(X, axis=0)
    rel = np.abs(np.diag(Rm)) / np.where(norms > 0, norms, 1.0)
    bad = np.flatnonzero(rel < 1e-7)
    if bad.size:
        aliased = [names[k] for k in bad]
        raise ValueError(
            f"the fixed-effects design {where}is rank deficient (singular design): column(s) "
            f"{aliased} are linear combinations of the others; drop them from the formula."
        )


def prepare_model(
    data: Any,
    formula: str | None,
    type: Mapping[str, int] | None,
    group: str | None,
    missing_code=None,
    *,
    require_cluster: bool = True,
    method: str = "pan_impute",
    check_data: bool = True,
) -> tuple[ModelSpec, Codebook]:
    """Validate ``data`` against the model and build per-group arrays for continuous targets.

    The model's columns (targets, predictors, cluster id, group) are checked at the frame
    boundary (:meth:`Codebook.from_data`): ``missing_code`` applies to them only (unless it is
    a dict naming columns), infinite values and text mixed with numbers are errors, and a
    target on a tiny or huge scale is a :class:`~pymitml.exceptions.ScaleWarning`.
    ``check_data=False`` skips those checks (for callers that made them on the raw data).
    """
    if (formula is None) == (type is None):
        raise ValueError(f"{method} needs exactly one of `formula` or `type`.")
    if type is not None:
        formula, tgroup = formula_from_type(type)
        if group is not None and tgroup is not None and group != tgroup:
            raise ValueError("`group` and the group column in `type` (code -1) disagree.")
        group = group or tgroup
    assert formula is not None  # exactly one of formula / type was given
    f = parse_formula(formula)
    fixed_vars = term_variables(f.fixed)
    rand_vars = term_variables(f.random) if f.random else []
    model_cols = [*f.targets, *fixed_vars, *rand_vars]
    extra = [c for c in (f.cluster, group) if c is not None]
    codebook, pdf = Codebook.from_data(
        data,
        missing_code,
        model_cols + extra,
        targets=f.targets,
        method=method,
        check=check_data,
        checked=model_cols,
    )
    check_columns(pdf, f.targets, "target(s)")
    check_columns(pdf, [v for v in fixed_vars + rand_vars], "predictor(s)")
    if f.cluster is None:
        if require_cluster:
            raise ValueError(
                f"`formula` {formula!r} has no cluster term; {method} fits a two-level model: "
                "add the cluster id as '(1|cluster)'."
            )
    else:
        check_columns(pdf, [f.cluster], "cluster id")
    if group is not None:
        check_columns(pdf, [group], "`group` column")
        if pdf[group].isna().any():
            raise ValueError(
                f"`group` column '{group}' has missing values; every row needs a group."
            )
    both = set(f.targets) & set(fixed_vars + rand_vars)
    if both:
        raise ValueError(
            f"column(s) {sorted(both)} are both targets and predictors; use each once."
        )
    if f.cluster in f.targets:
        raise ValueError(f"the cluster id '{f.cluster}' cannot be a target.")
    for v in dict.fromkeys(fixed_vars + rand_vars):
        n_na = int(pdf[v].isna().sum())
        if n_na:
            raise ValueError(
                f"predictor '{v}' has {n_na} missing value(s); predictors must be complete. "
                "Impute it too by moving it to the left of '~', or drop those rows."
            )
    Y_all = np.column_stack([numeric_values(pdf, t, "target") for t in f.targets])
    X_all, x_names = design_matrix(f.fixed, pdf)
    if f.random is not None:
        Z_all, z_names = design_matrix(f.random, pdf)
        if not z_names:
            raise ValueError(
                f"the random-effects term '({f.random} | {f.cluster})' has no terms; write "
                f"'(1|{f.cluster})' for a random intercept."
            )
    else:
        Z_all, z_names = np.zeros((len(pdf), 0)), []
    if group is None:
        group_codes = np.zeros(len(pdf), dtype=np.int64)
        group_labels = [None]
    else:
        gc, gl = pd.factorize(pdf[group], sort=True)
        group_codes, group_labels = gc.astype(np.int64), list(gl)
    groups = []
    for g, label in enumerate(group_labels):
        rows = np.flatnonzero(group_codes == g)
        where = "" if label is None else f"in group {group}={label!r} "
        Y = np.ascontiguousarray(Y_all[rows])
        for t, name in enumerate(f.targets):
            if np.isnan(Y[:, t]).all():
                raise ValueError(
                    f"target '{name}' has no observed value {where}(all values missing); "
                    "drop it from the model or supply data."
                )
        X = np.ascontiguousarray(X_all[rows])
        _check_rank(X, x_names, where)
        if f.cluster is not None:
            clus, labels = encode_clusters(pdf.iloc[rows], f.cluster)
        else:
            clus, labels = np.zeros(len(rows), dtype=np.int64), np.array([None])
        groups.append(GroupData(label, rows, X, np.ascontiguousarray(Z_all[rows]), Y, clus, labels))
    codebook.targets = [ColumnCodec(t) for t in f.targets]
    spec = ModelSpec(
        formula=formula,
        targets=list(f.targets),
        x_names=x_names,
        z_names=z_names,
        cluster=f.cluster,
        group=group,
        groups=groups,
        target_positions=[list(pdf.columns).index(t) for t in f.targets],
    )
    return spec, codebook
