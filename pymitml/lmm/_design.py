"""Design of a linear mixed model with one grouping factor: validated arrays + cross-products.

``FeMat``/``ReTerm`` of MixedModels.jl in one record: the response y (n,), the fixed-effects
design X (n, p) with R's column names, the random-effects design Z (n, q) of one cluster's
rows, and integer cluster codes (n,) in 0..J-1 (clusters in sorted label order, as R's
``factor`` orders them).

For numerical accuracy the optimiser works with orthogonalised designs:

* X = Q R0 (thin QR), gamma = R0 beta - Q'y and y_c = y - Q Q'y. The likelihood is unchanged
  (ML) or shifted by the constant 2 log|det R0| (REML), which the fit adds back.
* Z = Zt U with Zt = sqrt(n) Q_Z (columns of unit mean square, orthogonal) and U upper
  triangular, so Z b = Zt (U b): the relative covariance D = T T' of b becomes U D U'. The
  optimum is the same positive semidefinite D, but the criterion is far better conditioned
  when random-slope variables are uncentred or on large scales (lme4's "rescale variables?").
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pandas as pd

from .._frame import as_pandas, check_columns, encode_clusters
from ..formula import ModelFormula, design_matrix_spec, parse_formula
from . import _kernels

__all__ = ["CrossProducts", "LmerDesign", "build_design", "cross_products"]

#: relative tolerance of the rank check (R's ``qr`` default used by lme4)
RANK_TOL = 1e-7


@dataclass(frozen=True, eq=False)
class LmerDesign:
    """Arrays of one lmer model (see module docstring)."""

    formula: ModelFormula
    response: str
    y: np.ndarray
    X: np.ndarray
    Z: np.ndarray
    codes: np.ndarray
    labels: np.ndarray
    fixed_names: tuple[str, ...]
    random_names: tuple[str, ...]
    rows: np.ndarray
    Q: np.ndarray
    R0: np.ndarray
    Zt: np.ndarray
    U: np.ndarray
    x_spec: Any = None
    z_spec: Any = None
    x_keep: tuple[int, ...] | None = None

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def n_clusters(self) -> int:
        return self.labels.shape[0]

    @property
    def cluster(self) -> str:
        return cast(str, self.formula.cluster)  # lmer's formulas always have one


@dataclass(frozen=True, eq=False)
class CrossProducts:
    """Per-cluster and global cross-products of (Q, Z, y_c); ``qty`` maps gamma back to beta."""

    ZtZ: np.ndarray
    ZtX: np.ndarray
    Zty: np.ndarray
    XtX: np.ndarray
    Xty: np.ndarray
    yty: float
    qty: np.ndarray


def cross_products(design: LmerDesign, y: np.ndarray | None = None) -> CrossProducts:
    """Cross-products of the orthonormalised design for response ``y`` (default: design.y)."""
    y = design.y if y is None else y
    J, q, p = design.n_clusters, design.q, design.p
    # in a numba kernel, not NumPy's threaded matrix-vector products: those sum in an order
    # that depends on the number of BLAS threads (different bits), and cost far more than the
    # O(n p) work on a busy machine
    qty = np.empty(p)
    yc = np.empty(design.n)
    _kernels.project_out(design.Q, np.ascontiguousarray(y, dtype=np.float64), qty, yc)
    ZtZ = np.zeros((J, q, q))
    ZtX = np.zeros((J, q, p))
    Zty = np.zeros((J, q))
    XtX = np.zeros((p, p))
    Xty = np.zeros(p)
    yty = _kernels.cross_products(design.Q, design.Zt, yc, design.codes, ZtZ, ZtX, Zty, XtX, Xty)
    return CrossProducts(ZtZ, ZtX, Zty, XtX, Xty, float(yty), qty)


def _aliased(R0: np.ndarray, names: list[str]) -> list[str]:
    """Columns that are linear combinations of earlier ones (order-preserving, like R's qr).

    Works on R0 of X = Q R0: its columns have the lengths and angles of X's columns.
    """
    basis: list[np.ndarray] = []
    out = []
    for k in range(R0.shape[1]):
        v = R0[:, k].copy()
        norm = np.linalg.norm(v)
        for _ in range(2):
            for b in basis:
                v -= (b @ v) * b
        res = np.linalg.norm(v)
        if norm == 0.0 or res <= RANK_TOL * norm:
            out.append(names[k])
        else:
            basis.append(v / res)
    return out


def _sorted_codes(codes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Renumber cluster codes so that clusters come in sorted label order (R's factor levels)."""
    try:
        order = np.argsort(labels, kind="stable")
    except TypeError:  # labels of mixed types: keep the order of first appearance
        return codes, labels
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[codes], labels[order]


def _numeric_response(df: pd.DataFrame, name: str) -> np.ndarray:
    s = df[name]
    if (
        isinstance(s.dtype, pd.CategoricalDtype)
        or pd.api.types.is_bool_dtype(s)
        or not pd.api.types.is_numeric_dtype(s)
    ):
        raise ValueError(
            f"response '{name}' must be numeric; got dtype {s.dtype}. lmer fits a linear mixed "
            "model for a continuous response: convert the column with astype(float)."
        )
    return np.ascontiguousarray(s.to_numpy(dtype=np.float64, na_value=np.nan))


def complete_rows(sub: pd.DataFrame, na_action: str) -> tuple[pd.DataFrame, np.ndarray]:
    """The analysed columns without incomplete rows (``"omit"``) or an error naming them.

    Infinite values are always an error (lme4 stops on them too): they are not missing. So is
    a column mixing text and numbers (the samplers' check, :func:`pymitml._frame.check_values`).
    """
    from .._frame import check_values

    check_values(sub, [c for c in sub.columns if pd.api.types.is_object_dtype(sub[c])])
    for c in sub.columns:
        col = sub[c]
        if pd.api.types.is_numeric_dtype(col) and not pd.api.types.is_bool_dtype(col):
            vals = col.to_numpy(dtype=float, na_value=np.nan)
            inf = np.flatnonzero(np.isinf(vals))
            if inf.size:
                raise ValueError(
                    f"column '{c}' has {inf.size} infinite value(s) (rows {inf[:5].tolist()}"
                    f"{'...' if inf.size > 5 else ''}); a mixed model needs finite data: fix "
                    "them, or set them to NaN and pass na_action='omit'."
                )
    na = sub.isna()
    counts = na.sum()
    rows = np.arange(len(sub))
    if counts.any():
        if na_action == "fail":
            bad = ", ".join(f"'{c}' ({int(k)} row(s))" for c, k in counts.items() if k > 0)
            raise ValueError(
                f"missing values in the analysis data: {bad}. lmer does not drop rows silently: "
                "pass na_action='omit' to analyse complete cases (lme4's default), or impute first."
            )
        keep = ~na.any(axis=1).to_numpy()
        rows = rows[keep]
        sub = sub.loc[keep]
    return sub.reset_index(drop=True), rows


def build_design(formula: str, data: Any, na_action: str = "fail") -> LmerDesign:
    """Validate ``formula`` and ``data`` and build the arrays of the model.

    Parameters
    ----------
    formula : lme4 formula with one random-effects term, e.g. ``"y ~ x + (1 + x | g)"``.
    data : pandas or polars DataFrame.
    na_action : ``"fail"`` (default; missing values in an analysed column are an error) or
        ``"omit"`` (drop incomplete rows, lme4's default ``na.omit``).
    """
    if na_action not in ("fail", "omit"):
        raise ValueError(f"`na_action` must be 'fail' or 'omit'; got {na_action!r}.")
    f = parse_formula(formula)
    if len(f.targets) != 1:
        raise ValueError(
            f"`formula` must have exactly one response on the left of '~'; got {list(f.targets)} "
            f"in {formula!r}. Fit one model per response."
        )
    if f.random is None:
        raise ValueError(
            f"`formula` {formula!r} has no random-effects term; add one such as '(1 | cluster)' "
            "(for a model without random effects use ordinary least squares)."
        )
    df = as_pandas(data)
    variables = f.variables
    check_columns(df, variables, "formula term(s)")
    sub, rows = complete_rows(df[variables], na_action)
    response = f.targets[0]
    y = _numeric_response(sub, response)
    if y.size == 0:
        raise ValueError(f"no complete rows to analyse for {formula!r}.")
    if np.ptp(y) == 0.0:
        raise ValueError(
            f"response '{response}' has no variation (every value is {y[0]:g}); a linear mixed "
            "model needs a varying response."
        )
    codes, labels = encode_clusters(sub, cast(str, f.cluster))
    codes, labels = _sorted_codes(codes, labels)
    X, xnames, x_spec = design_matrix_spec(f.fixed, sub)
    Z, znames, z_spec = design_matrix_spec(f.random, sub)
    x_keep = list(range(X.shape[1]))
    Z = np.ascontiguousarray(Z)
    n, p = X.shape
    q = Z.shape[1]
    if q == 0:
        raise ValueError(f"the random-effects term of {formula!r} has no columns.")
    J = labels.shape[0]
    n_theta = q * (q + 1) // 2
    if J < max(2, n_theta):
        raise ValueError(
            f"cluster '{f.cluster}' has {J} cluster(s) but the random part '({f.random} | "
            f"{f.cluster})' has {n_theta} variance/covariance parameter(s); a model needs at least "
            f"{max(2, n_theta)} clusters: simplify the random part or use more clusters."
        )
    if n <= J * q:
        raise ValueError(
            f"number of observations ({n}) <= number of random effects ({J * q}) for "
            f"'({f.random} | {f.cluster})'; the random-effects parameters and the residual "
            "variance are unidentifiable: simplify the random part."
        )
    Qz, Rz = np.linalg.qr(Z)
    aliased = _aliased(Rz, znames)
    if aliased:
        raise ValueError(
            f"the random-effects design of {formula!r} is rank deficient: column(s) {aliased} "
            "are linear combinations of earlier columns; drop them from the random part."
        )
    root_n = np.sqrt(n)
    if p:
        Q, R0 = np.linalg.qr(X)
        aliased = _aliased(R0, xnames)
        if aliased:
            warnings.warn(
                f"fixed-effect model matrix is rank deficient so dropping {len(aliased)} "
                f"column(s) / coefficient(s): {aliased} (as lme4)",
                UserWarning,
                stacklevel=4,
            )
            keep = [k for k, nm in enumerate(xnames) if nm not in aliased]
            x_keep = keep
            X = np.ascontiguousarray(X[:, keep])
            xnames = [xnames[k] for k in keep]
            p = X.shape[1]
            Q, R0 = np.linalg.qr(X)
    else:
        Q, R0 = np.zeros((n, 0)), np.zeros((0, 0))
    return LmerDesign(
        formula=f,
        response=response,
        y=y,
        X=X,
        Z=Z,
        codes=np.ascontiguousarray(codes),
        labels=labels,
        fixed_names=tuple(xnames),
        random_names=tuple(znames),
        rows=rows,
        Q=np.ascontiguousarray(Q),
        R0=R0,
        Zt=np.ascontiguousarray(Qz * root_n),
        U=Rz / root_n,
        x_spec=x_spec,
        z_spec=z_spec,
        x_keep=tuple(x_keep),
    )
