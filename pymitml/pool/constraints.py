"""Pooled tests of (non)linear constraints on parameters (mitml's ``testConstraints``).

For each imputation l the k constraints g(Q_l) and their covariance by the delta method,
``g'(Q_l) U_l g'(Q_l)'``, are computed; the transformed estimates are then pooled and tested with
D1 or D2 (see :mod:`pymitml.pool.model_tests`). The constraint expressions are parsed with
Python's :mod:`ast` (no ``eval``) and differentiated either as mitml does (R's forward-difference
``numericDeriv``, the default, so results equal mitml's) or exactly by forward-mode automatic
differentiation (``derivative="exact"``).

Constraint grammar (R's arithmetic): numbers, parameter names, ``+ - * / ^`` (``**`` too),
parentheses and the functions exp, log, log10, log2, log1p, expm1, sqrt, abs, sin, cos, tan,
asin, acos, atan, sinh, cosh, tanh, plogis, qlogis, pnorm, qnorm; the constant ``pi``. A name that
is not a Python identifier is written in backticks (``\u0060x:z\u0060``); ``(Intercept)`` may be
written as is or as ``Intercept``.
"""

from __future__ import annotations

import ast
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

from .._validation import check_choice, check_df_com
from ._extract import stack_estimates
from ._failures import check_on_failure, screen_fits
from .estimates import _qhat_array, _uhat_array
from .model_tests import (
    TEST_COLUMNS,
    _df_com_footer,
    _format_table,
    _table_row,
    d1,
    d2,
    wald_statistics,
)

__all__ = ["ConstraintTestResult", "pool_constraints"]


# --------------------------------------------------------------------------------------------
# forward-mode differentiation of constraint expressions over m imputations at once
# value: (m,) array; gradient: (m, p) array


def _dnorm(x):
    return np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)


def _special(name: str) -> Callable:
    """``scipy.special.<name>``, imported on first call (scipy is slow to import)."""

    def call(x):
        from scipy import special

        return getattr(special, name)(x)

    call.__name__ = name
    return call


_expit, _logit, _ndtr, _ndtri = (_special(n) for n in ("expit", "logit", "ndtr", "ndtri"))


#: name -> (function, derivative)
_FUNCTIONS: dict[str, tuple[Callable, Callable]] = {
    "exp": (np.exp, np.exp),
    "log": (np.log, lambda x: 1 / x),
    "log10": (np.log10, lambda x: 1 / (x * np.log(10))),
    "log2": (np.log2, lambda x: 1 / (x * np.log(2))),
    "log1p": (np.log1p, lambda x: 1 / (1 + x)),
    "expm1": (np.expm1, np.exp),
    "sqrt": (np.sqrt, lambda x: 0.5 / np.sqrt(x)),
    "abs": (np.abs, np.sign),
    "sin": (np.sin, np.cos),
    "cos": (np.cos, lambda x: -np.sin(x)),
    "tan": (np.tan, lambda x: 1 / np.cos(x) ** 2),
    "asin": (np.arcsin, lambda x: 1 / np.sqrt(1 - x * x)),
    "acos": (np.arccos, lambda x: -1 / np.sqrt(1 - x * x)),
    "atan": (np.arctan, lambda x: 1 / (1 + x * x)),
    "sinh": (np.sinh, np.cosh),
    "cosh": (np.cosh, np.sinh),
    "tanh": (np.tanh, lambda x: 1 / np.cosh(x) ** 2),
    "plogis": (_expit, lambda x: _expit(x) * (1 - _expit(x))),
    "qlogis": (_logit, lambda x: 1 / (x * (1 - x))),
    "pnorm": (_ndtr, _dnorm),
    "qnorm": (_ndtri, lambda x: 1 / _dnorm(_ndtri(x))),
}


class _Expression:
    """One parsed constraint: evaluates g(theta) and its gradient for m parameter vectors."""

    def __init__(self, text: str, names: list[str]):
        self.text = text
        self.names = names
        source, self._aliases = _translate(text, names)
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as exc:
            raise ValueError(
                f"constraint {text!r} is not a valid expression ({exc.msg}); use "
                "parameter names, numbers, + - * / ^ and functions such as exp()."
            )
        self._tree = tree.body
        self._check(self._tree)

    def _check(self, node: ast.AST) -> None:
        called = {id(c.func) for c in ast.walk(node) if isinstance(c, ast.Call)}
        for sub in ast.walk(node):
            if (
                isinstance(sub, ast.Name)
                and id(sub) not in called
                and sub.id not in self._aliases
                and sub.id != "pi"
            ):
                raise ValueError(
                    f"constraint {self.text!r} names {sub.id!r}, which is not a parameter; the "
                    f"parameters are {self.names}. Write names that are not Python identifiers "
                    "in backticks, e.g. `x:z`."
                )
            if isinstance(sub, ast.Call):
                if not isinstance(sub.func, ast.Name) or sub.func.id not in _FUNCTIONS:
                    what = ast.unparse(sub.func)
                    raise ValueError(
                        f"constraint {self.text!r} calls {what!r}, which is not "
                        f"supported; available: {sorted(_FUNCTIONS)}."
                    )
                if len(sub.args) != 1 or sub.keywords:
                    raise ValueError(
                        f"constraint {self.text!r}: {sub.func.id}() takes exactly one argument."
                    )
            allowed = (
                ast.Expression,
                ast.BinOp,
                ast.UnaryOp,
                ast.Call,
                ast.Name,
                ast.Constant,
                ast.Load,
                ast.Add,
                ast.Sub,
                ast.Mult,
                ast.Div,
                ast.Pow,
                ast.USub,
                ast.UAdd,
            )
            if not isinstance(sub, allowed) or (
                isinstance(sub, ast.Constant) and not isinstance(sub.value, (int, float))
            ):
                raise ValueError(  # noqa: TRY004 - a bad value of the string, not a type error
                    f"constraint {self.text!r} contains {ast.unparse(sub)!r}, which "
                    "is not allowed; use + - * / ^, numbers, parameter names and "
                    "functions such as exp()."
                )

    def evaluate(
        self, theta: np.ndarray, derivative: str = "forward"
    ) -> tuple[np.ndarray, np.ndarray]:
        """g and its gradient at each row of ``theta`` (m, p): (m,) and (m, p).

        ``derivative="exact"``: forward-mode automatic differentiation. ``"forward"``: R's
        ``numericDeriv`` (what mitml uses): ``(g(x + d e_j) - g(x)) / d`` with
        ``d = sqrt(eps) |x_j|`` (``sqrt(eps)`` if ``x_j = 0``), evaluated in scalar double
        arithmetic with the C library's functions as R does.
        """
        if derivative == "exact":
            with np.errstate(all="ignore"):
                return self._dual(self._tree, theta)
        m, p = theta.shape
        value = np.empty(m)
        grad = np.empty((m, p))
        for i in range(m):
            x = [float(t) for t in theta[i]]
            value[i] = g0 = self._scalar(self._tree, x)
            for j in range(p):
                orig = x[j]
                delta = _SQRT_EPS * abs(orig) if orig != 0 else _SQRT_EPS
                x[j] = orig + delta
                grad[i, j] = (self._scalar(self._tree, x) - g0) / delta
                x[j] = orig
        return value, grad

    def _scalar(self, node: ast.AST, x: list[float]) -> float:
        """The value of the expression at one parameter vector (R's double arithmetic)."""
        if isinstance(node, ast.Constant):
            return float(cast(float, node.value))
        if isinstance(node, ast.Name):
            return x[self._aliases[node.id]] if node.id in self._aliases else math.pi
        if isinstance(node, ast.UnaryOp):
            v = self._scalar(node.operand, x)
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Call):
            return _scalar_call(cast(ast.Name, node.func).id, self._scalar(node.args[0], x))
        node = cast(ast.BinOp, node)  # the only node type left after _check
        a = self._scalar(node.left, x)
        b = self._scalar(node.right, x)
        op = node.op
        if isinstance(op, ast.Add):
            return a + b
        if isinstance(op, ast.Sub):
            return a - b
        if isinstance(op, ast.Mult):
            return a * b
        if isinstance(op, ast.Div):
            return _r_divide(a, b)
        return _r_pow(a, b)

    def _dual(self, node: ast.AST, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(value (m,), gradient (m, p)) by forward-mode automatic differentiation."""
        m, p = theta.shape
        if isinstance(node, ast.Constant):
            return np.full(m, float(cast(float, node.value))), np.zeros((m, p))
        if isinstance(node, ast.Name):
            if node.id not in self._aliases:  # pi
                return np.full(m, np.pi), np.zeros((m, p))
            j = self._aliases[node.id]
            grad = np.zeros((m, p))
            grad[:, j] = 1.0
            return theta[:, j].copy(), grad
        if isinstance(node, ast.UnaryOp):
            v, g = self._dual(node.operand, theta)
            return (-v, -g) if isinstance(node.op, ast.USub) else (v, g)
        if isinstance(node, ast.Call):
            v, g = self._dual(node.args[0], theta)
            f, df = _FUNCTIONS[cast(ast.Name, node.func).id]
            return f(v), df(v)[:, None] * g
        node = cast(ast.BinOp, node)  # the only node type left after _check
        a, ga = self._dual(node.left, theta)
        b, gb = self._dual(node.right, theta)
        op = node.op
        if isinstance(op, ast.Add):
            return a + b, ga + gb
        if isinstance(op, ast.Sub):
            return a - b, ga - gb
        if isinstance(op, ast.Mult):
            return a * b, ga * b[:, None] + a[:, None] * gb
        if isinstance(op, ast.Div):
            return a / b, (ga * b[:, None] - a[:, None] * gb) / (b * b)[:, None]
        # power: d(a^b) = b a^(b-1) da + a^b log(a) db  (the second term only if b varies)
        val = a**b
        grad = (b * a ** (b - 1))[:, None] * ga
        if np.any(gb != 0):
            grad = grad + (val * np.log(a))[:, None] * gb
        return val, grad


_SQRT_EPS = math.sqrt(np.finfo(float).eps)


def _r_divide(a: float, b: float) -> float:
    if b == 0:
        return math.copysign(math.inf, a) * math.copysign(1.0, b) if a != 0 else math.nan
    return a / b


def _r_pow(a: float, b: float) -> float:
    """R's ``^``: x^2 is x*x; otherwise C's pow (nan instead of an exception)."""
    if b == 2.0:
        return a * a
    if a == 1.0 or b == 0.0:
        return 1.0
    try:
        return math.pow(a, b)
    except (ValueError, OverflowError):
        return math.nan if a < 0 else math.inf


_SCALAR: dict[str, Callable[[float], float]] = {
    "exp": math.exp,
    "log": math.log,
    "log10": math.log10,
    "log2": math.log2,
    "log1p": math.log1p,
    "expm1": math.expm1,
    "sqrt": math.sqrt,
    "abs": abs,
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
}


def _scalar_call(name: str, x: float) -> float:
    f = _SCALAR.get(name)
    try:
        if f is not None:
            return float(f(x))
        return float(_FUNCTIONS[name][0](x))
    except (ValueError, OverflowError):
        return math.nan


#: an R-style name outside backticks: letters, digits, '_' and '.', not starting with a digit
#: (nor with '.' and a digit: '.5' is a number); the lookbehind keeps '2.5' a number
_R_NAME = re.compile(r"(?<![A-Za-z0-9_.])(?:[A-Za-z_][A-Za-z0-9_.]*|\.(?![0-9])[A-Za-z0-9_.]*)")


def _translate(text: str, names: list[str]) -> tuple[str, dict[str, int]]:
    """Constraint text -> Python source and {identifier: parameter index}.

    Names are R's: a name with dots that matches a parameter exactly (``I.SES``) is that
    parameter, as in mitml's ``testConstraints``; other names go in backticks (```x:z```).
    """
    aliases: dict[str, int] = {}
    for j, n in enumerate(names):
        if n.isidentifier():
            aliases.setdefault(n, j)
    if "(Intercept)" in names and "Intercept" not in aliases:
        aliases["Intercept"] = names.index("(Intercept)")
    quoted: list[str] = []

    def _quote(match: re.Match) -> str:
        name = match.group(1)
        if name not in names:
            raise ValueError(
                f"constraint {text!r} names `{name}`, which is not a parameter; "
                f"the parameters are {names}."
            )
        key = f"__par{len(quoted)}__"
        quoted.append(key)
        aliases[key] = names.index(name)
        return key

    def _dotted(match: re.Match) -> str:
        # an R name with dots (mitml's "I.SES"): the parameter it matches exactly, as R reads it
        name = match.group(0)
        if "." not in name:
            return name
        if name not in names:
            raise ValueError(
                f"constraint {text!r} names `{name}`, which is not a parameter; "
                f"the parameters are {names}."
            )
        key = f"__par{len(quoted)}__"
        quoted.append(key)
        aliases[key] = names.index(name)
        return key

    parts = re.split(r"(`[^`]*`)", text)  # backticked names stay as they are
    src = "".join(
        re.sub(r"`([^`]*)`", _quote, part) if part.startswith("`") else _R_NAME.sub(_dotted, part)
        for part in parts
    )
    src = src.replace("(Intercept)", "Intercept")
    src = src.replace("^", "**")
    return src, aliases


# --------------------------------------------------------------------------------------------
# result


@dataclass(frozen=True, eq=False)
class ConstraintTestResult:
    """A pooled test of constraints (mitml's ``mitml.testConstraints``).

    Attributes
    ----------
    constraints : the constraints as given.
    estimates : DataFrame (k, 2) indexed by constraint: ``Estimate`` (pooled g(Q)) and
        ``Std.Error`` (square roots of the diagonal of ``total_covariance``).
    total_covariance : DataFrame (k, k): ``(1 + r) U_bar`` of the constraints (mitml's ``T``).
    table : one-row DataFrame with ``F.value, df1, df2, P(>F), RIV``.
    qhat : (m, k) constrained estimates per imputation; uhat : (m, k, k) their covariances.
    m, method, ariv, df_com : as in :func:`pool_constraints`.
    """

    constraints: list[str]
    estimates: pd.DataFrame
    total_covariance: pd.DataFrame
    table: pd.DataFrame
    qhat: np.ndarray = field(repr=False)
    uhat: np.ndarray = field(repr=False)
    m: int = 0
    method: str = "D1"
    ariv: str = "default"
    df_com: float | None = None

    @property
    def q_bar(self) -> pd.Series:
        return self.estimates["Estimate"]

    def summary(self, digits: int = 3, sci_limit: int = 5) -> str:
        """The printout of mitml's ``print.mitml.testConstraints``."""
        out = [
            "",
            f"Hypothesis test calculated from {self.m} imputed data sets. The following",
            "constraints were specified:",
            "",
        ]
        out += _format_table(
            self.estimates.to_numpy(),
            ["Estimate", "Std. Error"],
            [f"{c.replace('(Intercept)', 'Intercept')}:" for c in self.constraints],
            digits,
            sci_limit,
        )
        out += ["", f"Combination method: {self.method} ", ""]
        out += _format_table(
            self.table.to_numpy(), TEST_COLUMNS, None, [digits, 0] + [digits] * 3, sci_limit
        )
        if self.method == "D1":
            out += [""] + _df_com_footer(self.df_com)
        out.append("")
        return "\n".join(out)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        f, p = self.table["F.value"].iloc[0], self.table["P(>F)"].iloc[0]
        return (
            f"<ConstraintTestResult {self.method}: {len(self.constraints)} constraints, "
            f"F = {f:.4g}, p = {p:.4g}>"
        )


# --------------------------------------------------------------------------------------------
# entry point


def pool_constraints(
    fits: Sequence[Any] | None = None,
    constraints: Sequence[str] | str = (),
    method: str = "D1",
    ariv: str = "default",
    df_com: float | None = None,
    *,
    qhat: Any = None,
    uhat: Any = None,
    derivative: str = "forward",
    on_failure: str = "error",
) -> ConstraintTestResult:
    """Test (non)linear constraints on the parameters pooled over imputations (``testConstraints``).

    Parameters
    ----------
    fits : m fitted models (one per imputation), or None when ``qhat`` and ``uhat`` are given.
    constraints : one string or a list of k strings, each an expression in the parameter names
        that is 0 under the null hypothesis, e.g. ``["x - z", "x^2"]``. R names with dots that match
        a parameter exactly (``"I.SES - G.SES"``) are taken as that parameter, as in mitml; other
        names that are not Python identifiers go in backticks (```x:z```); ``(Intercept)`` may be
        written as is or as ``Intercept``.
    method : ``"D1"`` (pooled Wald, default) or ``"D2"`` (pooled Wald chi-squares).
    ariv : ``"default"`` or ``"positive"`` (D2: truncate a negative RIV at 0).
    df_com : complete-data degrees of freedom for the small-sample D1 (Reiter 2007).
    qhat : instead of ``fits``: estimates, an (m, p) array, a DataFrame (rows = imputations,
        columns = parameter names) or a list of m Series. Plain arrays name the parameters
        ``Parameter.1``, ``Parameter.2``, ... (write them in backticks).
    uhat : with ``qhat``: covariances, an (m, p, p) array or a list of m matrices.
    derivative : how the delta method differentiates the constraints: ``"forward"`` (default)
        reproduces mitml exactly (R's ``numericDeriv``: forward differences with step
        ``sqrt(eps) |x|``, relative error about 1e-8 to 1e-7); ``"exact"`` uses automatic
        differentiation (exact up to rounding).
    on_failure : fits that failed or warned (recorded by ``with_``): ``"error"`` (default:
        refuse failed fits, warn on warned ones), ``"drop"`` (pool without the failed fits) or
        ``"drop_warned"`` (without the failed and the warned), as :func:`pool_estimates`.

    Returns
    -------
    ConstraintTestResult with ``.estimates`` (pooled constrained estimates and standard errors),
    ``.total_covariance`` and ``.table`` (``F.value, df1, df2, P(>F), RIV``).

    Examples
    --------
    >>> res = pm.pool_constraints(fits, ["ReadDis - SES", "Girl^2"], method="D1")  # doctest: +SKIP
    >>> print(res)  # doctest: +SKIP
    """
    method = check_choice(method, ("D1", "D2"), "method")
    ariv = check_choice(ariv, ("default", "positive"), "ariv")
    derivative = check_choice(derivative, ("forward", "exact"), "derivative")
    df_com = check_df_com(df_com)
    if df_com is not None and method == "D2":
        warnings.warn(
            "`df_com` is only used with method 'D1' and was ignored with 'D2'.",
            UserWarning,
            stacklevel=2,
        )
    if ariv == "positive" and method == "D1":
        warnings.warn(
            "`ariv='positive'` is not available with method 'D1' and was ignored.",
            UserWarning,
            stacklevel=2,
        )
    if fits is not None:
        fits, _ = screen_fits(fits, on_failure)
    else:
        check_on_failure(on_failure)
    names, q_all, u_all = _parameters(fits, qhat, uhat)
    constraints = _check_constraints(constraints)
    exprs = [_Expression(c, names) for c in constraints]

    m, k = q_all.shape[0], len(exprs)
    q_hat = np.empty((m, k))
    jac = np.empty((m, k, len(names)))
    for i, e in enumerate(exprs):
        q_hat[:, i], jac[:, i, :] = e.evaluate(q_all, derivative)
    u_hat = jac @ u_all @ jac.transpose(0, 2, 1)
    if not (np.all(np.isfinite(q_hat)) and np.all(np.isfinite(u_hat))):
        bad = [
            c for i, c in enumerate(constraints) if not np.all(np.isfinite(q_hat[:, i]))
        ] or constraints
        raise ValueError(
            f"the constraints {bad} are not finite at the estimates (e.g. log of a "
            "negative number); rewrite them."
        )

    # pooled constrained estimates and T = (1 + r) U_bar with D1's r (as mitml reports them)
    _, _, _, r_d1 = d1(q_hat, u_hat, None)
    q_bar = q_hat.mean(axis=0)
    t = (1 + r_d1) * u_hat.mean(axis=0)
    if method == "D1":
        f, k, v, r = d1(q_hat, u_hat, df_com)
    else:
        f, k, v, r = d2(wald_statistics(q_hat, u_hat), k)
        r = max(0.0, r) if ariv == "positive" else r
    est = pd.DataFrame({"Estimate": q_bar, "Std.Error": np.sqrt(np.diag(t))}, index=constraints)
    return ConstraintTestResult(
        constraints=constraints,
        estimates=est,
        total_covariance=pd.DataFrame(t, index=constraints, columns=constraints),
        table=pd.DataFrame([_table_row(f, k, v, r)], columns=TEST_COLUMNS),
        qhat=q_hat,
        uhat=u_hat,
        m=m,
        method=method,
        ariv=ariv,
        df_com=df_com if method == "D1" else None,
    )


def _check_constraints(constraints: Any) -> list[str]:
    if isinstance(constraints, str):
        constraints = [constraints]
    if (
        not isinstance(constraints, Sequence)
        or not constraints
        or not all(isinstance(c, str) and c.strip() for c in constraints)
    ):
        raise ValueError(
            "`constraints` must be a non-empty string or list of strings such as "
            f"['x - z', 'x^2']; got {constraints!r}."
        )
    return [c.strip() for c in constraints]


def _parameters(fits, qhat, uhat) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Parameter names, (m, p) estimates and (m, p, p) covariances from fits or qhat/uhat."""
    if (fits is None) == (qhat is None or uhat is None):
        raise ValueError(
            "give either `fits` or both `qhat` and `uhat`; got "
            + ("neither." if fits is None else "both.")
        )
    if fits is not None:
        return stack_estimates(fits)
    names, q = _qhat_array(qhat)
    u, diagonal = _uhat_array(uhat, q.shape[0], q.shape[1], names=names)
    if diagonal:
        raise ValueError(
            f"`uhat` must hold full (p, p) covariance matrices for the delta method; "
            f"got (m, p) = {u.shape} variances."
        )
    if q.shape[0] < 2:
        raise ValueError(f"pooling needs estimates from at least 2 imputations; got {q.shape[0]}.")
    return names, q, u
