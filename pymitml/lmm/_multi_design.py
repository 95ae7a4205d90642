"""Design and cross-products of an lmer model with any random-effect structure.

``build_multi_design`` validates the data against the lme4 formula (:mod:`._terms`), builds y,
X (rank-deficient columns dropped as lme4 does), one :class:`TermDesign` per random-effect term
in lme4's order (terms sorted by decreasing number of levels when they are not already), prior
weights and offsets. ``MultiSystem`` holds the theta-independent cross-products the criterion
(:mod:`.multi_fit`) needs: the leading term's per-level blocks and the dense [rest | X | y]
cross-product, all weighted by the prior weights.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._frame import as_pandas, check_columns
from ..formula import design_matrix, design_matrix_spec
from . import _multi_kernels as mk
from ._design import RANK_TOL, _numeric_response, complete_rows
from ._terms import LmerFormula, RandomTerm, parse_lmer_formula

__all__ = [
    "MultiDesign",
    "MultiPattern",
    "MultiSystem",
    "TermDesign",
    "build_multi_design",
    "fill_system",
    "multi_pattern",
    "multi_system",
]

#: largest dense Schur complement (columns of the non-leading terms + X + y) allowed
MAX_DENSE = 20000


@dataclass(frozen=True, eq=False)
class TermDesign:
    """One random-effect term: its columns (n, q) and grouping factor (codes into labels)."""

    term: RandomTerm
    names: tuple[str, ...]
    Z: np.ndarray
    codes: np.ndarray
    labels: np.ndarray
    spec: Any = None

    @property
    def q(self) -> int:
        return self.Z.shape[1]

    @property
    def n_levels(self) -> int:
        return self.labels.shape[0]

    @property
    def n_theta(self) -> int:
        return self.q * (self.q + 1) // 2

    @property
    def group(self) -> str:
        return self.term.name


@dataclass(frozen=True, eq=False)
class MultiDesign:
    """Arrays of one lmer model with the terms in lme4's order."""

    formula: LmerFormula
    response: str
    y: np.ndarray
    X: np.ndarray
    fixed_names: tuple[str, ...]
    dropped: tuple[str, ...]
    terms: tuple[TermDesign, ...]
    rows: np.ndarray
    weights: np.ndarray | None
    offset: np.ndarray | None
    x_spec: Any = None
    x_keep: tuple[int, ...] = ()

    @property
    def n(self) -> int:
        return self.y.shape[0]

    @property
    def p(self) -> int:
        return self.X.shape[1]

    @property
    def n_theta(self) -> int:
        return sum(t.n_theta for t in self.terms)

    @property
    def n_random(self) -> int:
        return sum(t.q * t.n_levels for t in self.terms)

    def Z_sparse(self) -> sparse.csc_matrix:
        """The full Z (n, n_random) in lme4's column order (term, then level, then column)."""
        blocks = []
        n = self.n
        for t in self.terms:
            cols = (t.codes[:, None] * t.q + np.arange(t.q)[None, :]).ravel()
            rows = np.repeat(np.arange(n), t.q)
            blocks.append(
                sparse.csc_matrix((t.Z.ravel(), (rows, cols)), shape=(n, t.q * t.n_levels))
            )
        return sparse.hstack(blocks, format="csc")


@dataclass(frozen=True, eq=False)
class MultiSystem:
    """Theta-independent cross-products for one response (see :mod:`._multi_kernels`)."""

    lead: int
    rest: tuple[int, ...]
    A1: np.ndarray
    ptr: np.ndarray
    cols: np.ndarray
    Bv: np.ndarray
    C: np.ndarray
    colinfo: np.ndarray
    n_re: int
    rest_start: tuple[int, ...]
    log_weights: float


def _factor_codes(df: pd.DataFrame, col: str) -> tuple[np.ndarray, np.ndarray]:
    s = df[col]
    try:
        codes, labels = pd.factorize(s, sort=True)
    except TypeError:  # mixed types cannot be sorted: order of first appearance
        codes, labels = pd.factorize(s, sort=False)
    return codes.astype(np.int64), np.asarray(labels, dtype=object)


def grouping(df: pd.DataFrame, term: RandomTerm) -> tuple[np.ndarray, np.ndarray]:
    """Codes and labels of a (possibly interaction) grouping factor, R's level order."""
    parts = [_factor_codes(df, g) for g in term.groups]
    if len(parts) == 1:
        codes, labels = parts[0]
        return codes, np.array([str(v) for v in labels], dtype=object)
    sizes = [len(lab) for _, lab in parts]
    key = np.zeros(len(df), dtype=np.int64)
    for (c, _), size in zip(parts, sizes):
        key = key * size + c
    uniq, codes = np.unique(key, return_inverse=True)  # first factor varies slowest, as R's ':'
    names = []
    for k in uniq:
        comp = []
        for (_, lab), size in zip(reversed(parts), reversed(sizes)):
            comp.append(str(lab[k % size]))
            k //= size
        names.append(":".join(reversed(comp)))
    return codes.astype(np.int64), np.array(names, dtype=object)


def _independent(R0: np.ndarray) -> list[int]:
    """Columns of X = Q R0 that are not combinations of earlier ones (R's pivoting qr order)."""
    basis: list[np.ndarray] = []
    keep = []
    for k in range(R0.shape[1]):
        v = R0[:, k].copy()
        norm = np.linalg.norm(v)
        for _ in range(2):
            for b in basis:
                v -= (b @ v) * b
        res = np.linalg.norm(v)
        if norm > 0.0 and res > RANK_TOL * norm:
            basis.append(v / res)
            keep.append(k)
    return keep


def _evaluate(expr: str, sub: pd.DataFrame, what: str, formula: str) -> np.ndarray:
    """One numeric column from an expression such as ``log(y)`` or a column name."""
    if expr in sub.columns:
        return _numeric_response(sub, expr)
    inner = expr[2:-1] if re.fullmatch(r"I\(.*\)", expr) else expr
    x, _ = design_matrix(f"0 + I({inner.replace('^', '**')})", sub)
    if x.shape[1] != 1:
        raise ValueError(f"{what} '{expr}' of {formula!r} must be one numeric column.")
    return np.ascontiguousarray(x[:, 0])


def _vector(value: Any, n: int, name: str) -> np.ndarray:
    v = np.asarray(value, dtype=float).reshape(-1)
    if v.shape[0] != n:
        raise ValueError(
            f"`{name}` must have one value per row of the data ({n}); got {v.shape[0]}."
        )
    return v


def _lme4_order(terms: list[TermDesign]) -> list[TermDesign]:
    """lme4's reordering: by decreasing number of levels, only when they are not so already."""
    nl = np.array([t.n_levels for t in terms])
    if nl.size > 1 and np.any(np.diff(nl) > 0):
        order = np.argsort(nl, kind="stable")[::-1]
        return [terms[k] for k in order]
    return terms


def build_multi_design(
    formula: str,
    data: Any,
    na_action: str = "fail",
    weights: Any = None,
    offset: Any = None,
    check_nobs: bool = True,
) -> MultiDesign:
    """Validate ``formula``/``data`` and build the model's arrays (see the module docstring).

    ``check_nobs=False`` skips lme4's checks of levels and random effects against the number
    of observations (glmer allows observation-level random effects, as lme4's glmerControl).
    """
    if na_action not in ("fail", "omit"):
        raise ValueError(f"`na_action` must be 'fail' or 'omit'; got {na_action!r}.")
    f = parse_lmer_formula(formula)
    df = as_pandas(data)
    variables = f.variables
    check_columns(df, variables, "formula term(s)")
    n_all = len(df)
    extra = pd.DataFrame(index=df.index)
    if weights is not None:
        extra["(weights)"] = _vector(weights, n_all, "weights")
    if offset is not None:
        extra["(offset)"] = _vector(offset, n_all, "offset")
    sub, rows = complete_rows(pd.concat([df[variables], extra], axis=1), na_action)
    y = _evaluate(f.response, sub, "response", formula)
    n = y.size
    if n == 0:
        raise ValueError(f"no complete rows to analyse for {formula!r}.")
    if not np.all(np.isfinite(y)):
        raise ValueError(
            f"response '{f.response}' of {formula!r} has non-finite values (e.g. log of 0)."
        )
    w = None
    if weights is not None:
        w = np.ascontiguousarray(sub["(weights)"].to_numpy(dtype=float))
        if np.any(w < 0) or not np.all(np.isfinite(w)):
            raise ValueError(
                "`weights` must be finite and non-negative (lme4: 'negative weights')."
            )
        if np.any(w == 0):
            raise ValueError(
                "`weights` has zeros; drop those rows (lme4 gives them no influence either)."
            )
    off = np.zeros(n)
    has_offset = bool(f.offsets) or offset is not None
    for o in f.offsets:
        off += _evaluate(o, sub, "offset", formula)
    if offset is not None:
        off += sub["(offset)"].to_numpy(dtype=float)
    if np.ptp(y - off) == 0.0:
        raise ValueError(
            f"response '{f.response}' has no variation; a linear mixed model needs a varying response."
        )
    X, xnames, x_spec = design_matrix_spec(f.fixed, sub)
    x_keep = list(range(X.shape[1]))
    dropped: list[str] = []
    if X.shape[1]:
        _, R0 = np.linalg.qr(X)
        keep = _independent(R0)
        if len(keep) < X.shape[1]:
            dropped = [xnames[k] for k in range(X.shape[1]) if k not in keep]
            warnings.warn(
                f"fixed-effect model matrix is rank deficient so dropping {len(dropped)} "
                f"column{'s' if len(dropped) > 1 else ''} / coefficient"
                f"{'s' if len(dropped) > 1 else ''}: {dropped} (as lme4)",
                UserWarning,
                stacklevel=4,
            )
            X = np.ascontiguousarray(X[:, keep])
            xnames = [xnames[k] for k in keep]
            x_keep = keep
    terms = []
    for t in f.random:
        Z, names, z_spec = design_matrix_spec(t.expr, sub)
        if Z.shape[1] == 0:
            raise ValueError(f"the random-effects term '{t.text}' of {formula!r} has no columns.")
        codes, labels = grouping(sub, t)
        td = TermDesign(t, tuple(names), np.ascontiguousarray(Z), codes, labels, z_spec)
        if td.n_levels < 2:
            raise ValueError(
                f"grouping factor '{t.name}' of the term '{t.text}' has {td.n_levels} level: "
                "grouping factors must have > 1 sampled level (lme4); drop the term."
            )
        if check_nobs and td.n_levels >= n:
            raise ValueError(
                f"number of levels of grouping factor '{t.name}' ({td.n_levels}) must be < number "
                f"of observations ({n}) (lme4); drop the term '{t.text}'."
            )
        if check_nobs and n <= td.n_levels * td.q:
            raise ValueError(
                f"number of observations ({n}) <= number of random effects ({td.n_levels * td.q}) "
                f"for term '{t.text}'; the random-effects parameters and the residual variance "
                "are unidentifiable: simplify the random part."
            )
        _, Rz = np.linalg.qr(Z)
        if len(_independent(Rz)) < Z.shape[1]:
            raise ValueError(
                f"the random-effects design of the term '{t.text}' is rank deficient: drop the "
                "columns that are combinations of the others."
            )
        terms.append(td)
    return MultiDesign(
        formula=f,
        response=f.response,
        y=y,
        X=np.ascontiguousarray(X),
        fixed_names=tuple(xnames),
        dropped=tuple(dropped),
        terms=tuple(_lme4_order(terms)),
        rows=rows,
        weights=w,
        offset=off if has_offset else None,
        x_spec=x_spec,
        x_keep=tuple(x_keep),
    )


@dataclass(frozen=True, eq=False)
class MultiPattern:
    """The theta- and weight-independent structure of the blocked system (see _multi_kernels)."""

    lead: int
    rest: tuple[int, ...]
    ptr: np.ndarray
    cols: np.ndarray
    colinfo: np.ndarray
    tinfo: np.ndarray
    rcodes: np.ndarray
    Zr: np.ndarray
    n_re: int
    rest_start: tuple[int, ...]


def multi_pattern(design: MultiDesign) -> MultiPattern:
    """Which columns of [rest | X | y] each level of the leading term meets, and their layout."""
    n, p = design.n, design.p
    terms = design.terms
    sizes = [t.q * t.n_levels for t in terms]
    lead = int(np.argmax(sizes))
    rest = tuple(k for k in range(len(terms)) if k != lead)
    n_re = sum(sizes[k] for k in rest)
    m = n_re + p + 1
    if m > MAX_DENSE:
        raise ValueError(
            f"the model's random effects outside its largest term number {n_re}; pymitml's lmer "
            f"factors that block densely and allows at most {MAX_DENSE - p - 1}: drop or merge "
            "random-effect terms."
        )
    t1 = terms[lead]
    J1 = t1.n_levels
    starts: list[int] = []
    tinfo: list[tuple[int, int, int]] = []
    colinfo_parts: list[np.ndarray] = []
    pos = zc = 0
    for k in rest:
        t = terms[k]
        starts.append(pos)
        tinfo.append((t.q, zc, pos))
        off = np.tile(np.arange(t.q), t.n_levels)
        colinfo_parts.append(
            np.column_stack([off, np.full(off.size, len(colinfo_parts)), np.full(off.size, t.q)])
        )
        pos += sizes[k]
        zc += t.q
    ident = len(rest)
    colinfo_parts.append(np.column_stack([np.zeros(p + 1), np.full(p + 1, ident), np.ones(p + 1)]))
    colinfo = np.ascontiguousarray(np.vstack(colinfo_parts).astype(np.int64))
    rcodes = np.ascontiguousarray(
        np.column_stack([terms[k].codes for k in rest]) if rest else np.zeros((n, 0), np.int64)
    )
    pieces = []
    for (qt, _, start), k in zip(tinfo, rest):
        pair = np.unique(t1.codes * (n_re + 1) + start + terms[k].codes * qt)
        pieces.append(np.concatenate([pair + o for o in range(qt)]) if qt > 1 else pair)
    pat = np.unique(np.concatenate(pieces)) if pieces else np.zeros(0, np.int64)
    lev = pat // (n_re + 1)
    col = pat % (n_re + 1)
    per = np.bincount(lev, minlength=J1) + (p + 1)
    ptr = np.zeros(J1 + 1, dtype=np.int64)
    np.cumsum(per, out=ptr[1:])
    cols = np.empty(int(ptr[-1]), dtype=np.int64)
    first = np.searchsorted(lev, np.arange(J1))
    cols[ptr[lev] + np.arange(pat.size) - first[lev]] = col
    xy_pos = (ptr[:-1] + per - (p + 1))[:, None] + np.arange(p + 1)[None, :]
    cols[xy_pos.ravel()] = np.tile(np.arange(n_re, m), J1)
    return MultiPattern(
        lead=lead,
        rest=rest,
        ptr=ptr,
        cols=cols,
        colinfo=colinfo,
        tinfo=np.array(tinfo, dtype=np.int64).reshape(-1, 3),
        rcodes=rcodes,
        Zr=np.ascontiguousarray(
            np.column_stack([terms[k].Z for k in rest]) if rest else np.zeros((n, 0))
        ),
        n_re=n_re,
        rest_start=tuple(starts),
    )


def fill_system(
    pattern: MultiPattern, design: MultiDesign, sw: np.ndarray, y: np.ndarray, log_w: float = 0.0
) -> MultiSystem:
    """Cross-products of sqrt-weighted [Z | X | y] on the pattern (weights ``sw**2``)."""
    terms = design.terms
    t1 = terms[pattern.lead]
    n, p = design.n, design.p
    m = pattern.n_re + p + 1
    XY = np.empty((n, p + 1))
    XY[:, :p] = design.X * sw[:, None]
    XY[:, p] = y * sw
    Z1 = np.ascontiguousarray(t1.Z * sw[:, None])
    Zr = np.ascontiguousarray(pattern.Zr * sw[:, None])
    Bv = np.zeros((pattern.cols.size, t1.q))
    A1 = np.zeros((t1.n_levels, t1.q, t1.q))
    mk.lead_crossproducts(
        t1.codes, Z1, pattern.rcodes, Zr, pattern.tinfo, XY, pattern.ptr, pattern.cols, Bv, A1
    )
    C = np.zeros((m, m))
    mk.rest_crossproducts(pattern.rcodes, Zr, pattern.tinfo, XY, C)
    return MultiSystem(
        lead=pattern.lead,
        rest=pattern.rest,
        A1=A1,
        ptr=pattern.ptr,
        cols=pattern.cols,
        Bv=Bv,
        C=C,
        colinfo=pattern.colinfo,
        n_re=pattern.n_re,
        rest_start=pattern.rest_start,
        log_weights=log_w,
    )


def multi_system(design: MultiDesign, y: np.ndarray | None = None) -> MultiSystem:
    """Cross-products of the prior-weighted design for response ``y`` (default: the design's)."""
    y = design.y if y is None else y
    if design.offset is not None:
        y = y - design.offset
    sw = np.ones(design.n) if design.weights is None else np.sqrt(design.weights)
    log_w = 0.0 if design.weights is None else float(np.sum(np.log(design.weights)))
    return fill_system(multi_pattern(design), design, sw, np.asarray(y, dtype=float), log_w)
