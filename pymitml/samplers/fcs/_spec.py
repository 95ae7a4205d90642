"""What a chained-equations run will do, checked once: columns, methods, predictor matrix,
visit sequence and the cells to impute (``where``).

mice's semantics: ``method`` names one univariate method per variable (``""`` = not imputed,
``"~ I(a / b)"`` = passive); the predictor matrix has one row per target and one column per
predictor with mice's codes (0 unused, 1 fixed effect, 2 fixed effect + random slope, 3 fixed
effect + cluster mean, 4 fixed + random slope + cluster mean, -2 the cluster id); variables are
visited in ``visit_sequence`` order in every iteration.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from ..._frame import Codebook, ColumnCodec, as_pandas, check_columns, encode_clusters
from ._columns import Column, default_method, encode_column, is_level2
from ._passive import PassiveFormula, parse_passive

__all__ = ["METHODS", "FcsSpec", "check_post", "make_predictor_matrix", "prepare_fcs"]

#: method -> (level: "2l" | "2lonly" | "1l", kinds it accepts: "n" numeric, "b" binary, "c" any
#: categorical with more than two categories)
METHODS: dict[str, tuple[str, str]] = {
    "2l.pan": ("2l", "n"),
    "2l.norm": ("2l", "n"),
    "2l.lmer": ("2l", "n"),
    "2l.pmm": ("2l", "nb"),
    "2l.bin": ("2l", "b"),
    "2l.polr": ("2l", "bc"),
    "2l.polyreg": ("2l", "bc"),
    "polr": ("1l", "bc"),
    "polyreg": ("1l", "bc"),
    "2lonly.norm": ("2lonly", "n"),
    "2lonly.pmm": ("2lonly", "nbc"),
    "2lonly.mean": ("2lonly", "n"),
    "norm": ("1l", "n"),
    "norm.nob": ("1l", "n"),
    "pmm": ("1l", "nb"),
    "logreg": ("1l", "b"),
}
_CODES = (0, 1, 2, 3, 4, -2)


@dataclass
class FcsSpec:
    """A checked chained-equations run (rows sorted by cluster; ``order[i]`` is the data row of
    sorted row i)."""

    columns: list[Column]
    methods: dict[str, str]
    predictors: np.ndarray  # (C, C) int codes, rows = targets, in column order
    visit: list[int]  # column indices, in visiting order
    where: np.ndarray  # (N, C) bool, cells to impute (sorted rows)
    cluster: str | None
    clus: np.ndarray  # (N,) cluster codes of the sorted rows
    start: np.ndarray  # (J + 1,) cluster segment starts
    order: np.ndarray  # (N,) data row of each sorted row
    passive: dict[int, PassiveFormula] = field(default_factory=dict)
    post: dict[int, Callable[[np.ndarray], np.ndarray]] = field(default_factory=dict)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def targets(self) -> list[int]:
        """Columns that get values (imputed or passive) in some cell, in column order."""
        return [
            k for k, c in enumerate(self.columns) if self.methods[c.name] and self.where[:, k].any()
        ]


def make_predictor_matrix(data: Any, cluster: str | None = None) -> pd.DataFrame:
    """The default predictor matrix (mice's ``make.predictorMatrix``), to edit.

    Every variable predicts every other (code 1); with ``cluster`` its column is -2 (the cluster
    id) and its row 0. Rows are targets, columns predictors, both in the data's column order.

    Examples
    --------
    >>> import pandas as pd, pymitml as pm
    >>> df = pd.DataFrame(
    ...     {"g": [1, 1, 2, 2], "y": [1.0, None, 2.0, 3.0], "x": [0.1, 0.2, 0.3, 0.4]}
    ... )
    >>> pm.make_predictor_matrix(df, cluster="g").loc["y"].tolist()
    [-2, 0, 1]
    """
    pdf = as_pandas(data)
    names = [str(c) for c in pdf.columns]
    if cluster is not None:
        check_columns(pdf, [cluster], "`cluster`")
    P = np.ones((len(names), len(names)), dtype=np.int64) - np.eye(len(names), dtype=np.int64)
    if cluster is not None:
        k = names.index(cluster)
        P[:, k] = -2
        P[k, :] = 0
    return pd.DataFrame(P, index=names, columns=names)


def _predictor_matrix(pred: Any, names: list[str], cluster: str | None) -> np.ndarray:
    """The user's matrix as (C, C) codes in column order (entries not given are 0)."""
    if isinstance(pred, np.ndarray):
        if pred.shape != (len(names), len(names)):
            raise ValueError(
                f"`predictor_matrix` as an array must be {len(names)} x {len(names)} (the data's "
                f"columns); got shape {pred.shape}. Pass a DataFrame to give a subset."
            )
        pred = pd.DataFrame(pred, index=names, columns=names)
    if not isinstance(pred, pd.DataFrame):
        if type(pred).__module__.startswith("polars"):
            raise TypeError(
                "`predictor_matrix` must be a pandas DataFrame with the targets as index (polars "
                "frames have no row names); use pm.make_predictor_matrix(df) and edit it."
            )
        raise TypeError(
            "`predictor_matrix` must be a pandas DataFrame (rows = targets, columns = predictors) "
            f"or a square array; got {type(pred).__name__}."
        )
    unknown = sorted({str(x) for x in list(pred.index) + list(pred.columns)} - set(names))
    if unknown:
        raise ValueError(
            f"`predictor_matrix` names {unknown}, which are not columns of the data; use the "
            "column names (pm.make_predictor_matrix(df) gives a template)."
        )
    P = np.zeros((len(names), len(names)), dtype=np.int64)
    vals = pred.to_numpy()
    bad = sorted({v for v in vals.ravel().tolist() if v not in _CODES})
    if bad:
        raise ValueError(f"`predictor_matrix` codes must be among {list(_CODES)}; got {bad}.")
    ri = [names.index(str(r)) for r in pred.index]
    ci = [names.index(str(c)) for c in pred.columns]
    P[np.ix_(ri, ci)] = vals.astype(np.int64)
    self_pred = [names[k] for k in range(len(names)) if P[k, k] != 0]
    if self_pred:
        raise ValueError(
            f"`predictor_matrix` has the target(s) {self_pred} predicting themselves (non-zero "
            "diagonal); set those entries to 0."
        )
    for k in range(len(names)):
        cl = [names[j] for j in np.flatnonzero(P[k] == -2)]
        if len(cl) > 1 or (cl and cluster is not None and cl[0] != cluster):
            raise ValueError(
                f"`predictor_matrix` row '{names[k]}' marks {cl} as cluster id (-2); exactly one "
                f"column may be -2, the cluster id{'' if cluster is None else f' {cluster!r}'}."
            )
    return P


def _methods(method: Any, cols: list[Column], clustered: bool, names: list[str]) -> dict:
    """The method of every column (defaults filled in), checked against type and level."""
    out = {c.name: default_method(c, clustered) for c in cols}
    if isinstance(method, str):
        method = {c.name: method for c in cols if c.n_missing}
    if method is not None:
        if not isinstance(method, Mapping):
            raise TypeError(
                f"`method` must be a dict {{column: method}} or one string; got {type(method).__name__}."
            )
        unknown = sorted(set(map(str, method)) - {c.name for c in cols})
        if unknown:
            raise ValueError(
                f"`method` names {unknown}, which are not columns of the data (the cluster id is "
                "never imputed)."
            )
        out.update({str(k): v for k, v in method.items()})
    for c in cols:
        _check_method(c, out[c.name], clustered)
    return out


def _check_method(c: Column, meth: Any, clustered: bool) -> None:
    if not isinstance(meth, str):
        raise TypeError(f"the method of '{c.name}' must be a string; got {meth!r}.")
    if meth == "" or meth.strip().startswith("~"):
        return
    if meth not in METHODS:
        raise ValueError(
            f"unknown method {meth!r} for '{c.name}'; choose one of {sorted(METHODS)}, '' (not "
            "imputed) or a passive formula such as '~ I(a / b)'."
        )
    level, kinds = METHODS[meth]
    if level != "1l" and not clustered:
        raise ValueError(
            f"method {meth!r} of '{c.name}' needs the cluster id: pass `cluster=` (or mark it -2 "
            "in the predictor matrix)."
        )
    if level == "2lonly" and c.level != 2:
        raise ValueError(
            f"method {meth!r} imputes a level-2 variable, but '{c.name}' varies within clusters; "
            "use a 2l.* method (e.g. '2l.pan') for it."
        )
    kind = "b" if c.binary else ("c" if c.kind == "categorical" else "n")
    if kind not in kinds:
        what = {"b": "binary", "c": f"categorical with {c.n_categories} categories", "n": "numeric"}
        fix = {
            "b": "'2l.bin' or 'logreg'",
            "c": "'2l.polyreg', '2l.polr', 'polyreg' or 'polr'",
            "n": "'2l.pan' or 'pmm'",
        }
        raise ValueError(
            f"method {meth!r} does not fit '{c.name}' ({what[kind]}); use {fix[kind]}."
        )


def _visit(seq: Any, cols: list[Column], methods: dict, where: np.ndarray) -> list[int]:
    names = [c.name for c in cols]
    active = [k for k, c in enumerate(cols) if methods[c.name] and where[:, k].any()]
    if seq is None or seq == "roman":
        return active
    if seq == "arabic":
        return active[::-1]
    if seq in ("monotone", "revmonotone"):
        frac = [int(where[:, k].sum()) for k in active]
        o = list(np.argsort(frac, kind="stable"))
        o = o if seq == "monotone" else o[::-1]
        return [active[i] for i in o]
    if isinstance(seq, str) or not isinstance(seq, Sequence):
        raise ValueError(
            f"`visit_sequence` must be a list of column names or one of 'roman', 'arabic', "
            f"'monotone', 'revmonotone'; got {seq!r}."
        )
    unknown = [s for s in seq if s not in names]
    if unknown:
        raise ValueError(f"`visit_sequence` names {unknown}, which are not columns of the data.")
    idle = [s for s in seq if names.index(s) not in active]
    if idle:
        raise ValueError(
            f"`visit_sequence` names {idle}, which have nothing to impute (method '' or no cell "
            "in `where`); drop them from the sequence."
        )
    return [names.index(s) for s in seq]


def _where(where: Any, pdf: pd.DataFrame, names: list[str], order: np.ndarray) -> np.ndarray | None:
    if where is None:
        return None
    if isinstance(where, np.ndarray):
        w = where
    else:
        w = as_pandas(where)
        if list(map(str, w.columns)) != names:
            raise ValueError(
                f"`where` must have the data's columns in the data's order; got {list(w.columns)}."
            )
        w = w.to_numpy()
    if w.shape != pdf.shape or w.dtype != bool:
        raise ValueError(
            f"`where` must be a boolean array or DataFrame of the data's shape {pdf.shape}; got "
            f"{w.dtype} of shape {w.shape}."
        )
    return np.asarray(w)[order]


def prepare_fcs(
    data: Any,
    *,
    cluster: str | None,
    method: Any,
    predictor_matrix: Any,
    visit_sequence: Any,
    where: Any,
) -> tuple[FcsSpec, Codebook]:
    """Check every argument of :func:`fcs_impute` that describes the model; build the spec."""
    codebook, pdf = Codebook.from_data(data)
    names = [str(c) for c in pdf.columns]
    if len(set(names)) != len(names):
        check_columns(pdf, names, "columns")
    P = None if predictor_matrix is None else _predictor_matrix(predictor_matrix, names, cluster)
    if cluster is None and P is not None and (P == -2).any():
        cluster = names[int(np.flatnonzero((P == -2).any(axis=0))[0])]
    if cluster is not None:
        check_columns(pdf, [cluster], "`cluster`")
        codes, _ = encode_clusters(pdf, cluster)
        order = np.argsort(codes, kind="stable")
        clus = codes[order]
        start = np.searchsorted(clus, np.arange(clus.max() + 2)).astype(np.int64)
    else:
        order = np.arange(len(pdf))
        clus = np.zeros(len(pdf), np.int64)
        start = np.array([0, len(pdf)], dtype=np.int64)
    cols = [encode_column(pdf.iloc[:, k], names[k], k, order) for k in range(len(names))]
    for c in cols:
        c.level = (
            2 if cluster is not None and c.name != cluster and is_level2(c.values, start) else 1
        )
    if P is None:
        P = make_predictor_matrix(pdf, cluster).to_numpy().copy()
    if cluster is not None:
        kc = names.index(cluster)
        cols[kc].level = 0
        P[kc, :] = 0
    meths = _methods(method, [c for c in cols if c.name != cluster], cluster is not None, names)
    if cluster is not None:
        meths[cluster] = ""
    w = _where(where, pdf, names, order)
    if w is None:
        w = np.column_stack([np.isnan(c.values) for c in cols])
    passive = {}
    for k, c in enumerate(cols):
        if w[:, k].any() and not meths[c.name]:
            if where is not None:
                raise ValueError(
                    f"`where` marks cells of '{c.name}', whose method is ''; give it a method or "
                    "clear its column of `where`."
                )
        if meths[c.name].strip().startswith("~"):
            passive[k] = parse_passive(meths[c.name], c.name, names)
    spec = FcsSpec(cols, meths, P, [], w, cluster, clus, start, order, passive)
    _check_cluster_means(spec)
    spec.visit = _visit(visit_sequence, cols, meths, w)
    _drop_incomplete_predictors(spec)
    codebook.targets = [_codec(cols[k]) for k in spec.targets]
    return spec, codebook


def _check_cluster_means(spec: FcsSpec) -> None:
    """2lonly.mean needs an observed value in every cluster it imputes."""
    J = len(spec.start) - 1
    for k, c in enumerate(spec.columns):
        if spec.methods[c.name] != "2lonly.mean":
            continue
        obs = ~spec.where[:, k] & ~np.isnan(c.values)
        seen = np.bincount(spec.clus[obs], minlength=J) > 0
        need = np.bincount(spec.clus[spec.where[:, k]], minlength=J) > 0
        bad = int((need & ~seen).sum())
        if bad:
            raise ValueError(
                f"method '2lonly.mean' of '{c.name}' has no observed value in {bad} cluster(s) "
                "to take the mean of; use '2lonly.norm' or '2lonly.pmm' for it."
            )


def check_post(post: Any, spec: FcsSpec) -> None:
    """``post``: {column: callable or (low, high)} -> spec.post (column index -> callable)."""
    if post is None:
        return
    if not isinstance(post, Mapping):
        raise TypeError(f"`post` must be a dict {{column: function or (low, high)}}; got {post!r}.")
    names = spec.names
    for k, f in post.items():
        if k not in names or spec.where[:, names.index(k)].sum() == 0:
            raise ValueError(
                f"`post` names {k!r}, which is not an imputed column; use one of "
                f"{[names[t] for t in spec.targets]}."
            )
        if isinstance(f, tuple) and len(f) == 2:
            spec.post[names.index(k)] = partial(np.clip, a_min=float(f[0]), a_max=float(f[1]))
        elif callable(f):
            spec.post[names.index(k)] = f
        else:
            raise TypeError(
                f"`post['{k}']` must be a function of the imputed values or a (low, high) range "
                f"to squeeze them into (mice's squeeze); got {f!r}."
            )


def _codec(c: Column) -> ColumnCodec:
    if c.kind == "categorical":
        return ColumnCodec(c.name, "categorical", list(c.categories or []), c.ordered)
    return ColumnCodec(c.name)


def _drop_incomplete_predictors(spec: FcsSpec) -> None:
    """A predictor with missing cells that nothing imputes cannot be used: drop it, warning."""
    names = spec.names
    left = [k for k, c in enumerate(spec.columns) if (np.isnan(c.values) & ~spec.where[:, k]).any()]
    for t in spec.visit:
        if spec.passive.get(t) is not None:
            continue
        drop = [names[k] for k in left if spec.predictors[t, k] not in (0, -2)]
        if drop:
            warnings.warn(
                f"predictor(s) {drop} of '{names[t]}' have missing values that are not imputed "
                "(method '' or outside `where`); they are not used for it.",
                stacklevel=4,
            )
            for k in left:
                if spec.predictors[t, k] != -2:
                    spec.predictors[t, k] = 0
