"""Passive imputation: a derived variable recomputed from the others (mice's ``"~ I(a / b)"``).

The expression inside ``~ I(...)`` (or after ``~``) is parsed once into a small tree of
arithmetic on column names, numbers and a few functions; it is evaluated on whole columns
(NumPy), never with Python's ``eval``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Mapping

import numpy as np

__all__ = ["PassiveFormula", "parse_passive"]

_FUNCS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "log": np.log,
    "exp": np.exp,
    "sqrt": np.sqrt,
    "abs": np.abs,
    "log10": np.log10,
    "log2": np.log2,
}
_BINOPS: dict[type, Callable[[np.ndarray, np.ndarray], np.ndarray]] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.divide,
    ast.Pow: np.power,
}


class PassiveFormula:
    """A parsed passive formula: ``names`` (the columns it reads) and ``evaluate(columns)``."""

    def __init__(self, text: str, tree: ast.AST, names: list[str]) -> None:
        self.text, self._tree, self.names = text, tree, names

    def evaluate(self, columns: Mapping[str, np.ndarray]) -> np.ndarray:
        """The derived values, from ``columns`` (name -> float64 array)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.asarray(_eval(self._tree, columns), dtype=np.float64)


def _eval(node: ast.AST, cols: Mapping[str, np.ndarray]):
    if isinstance(node, ast.Expression):
        return _eval(node.body, cols)
    if isinstance(node, ast.Constant):
        return float(node.value)  # type: ignore[arg-type]  # numbers only (_check)
    if isinstance(node, ast.Name):
        return cols[node.id]
    if isinstance(node, ast.UnaryOp):
        v = _eval(node.operand, cols)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp):
        return _BINOPS[type(node.op)](_eval(node.left, cols), _eval(node.right, cols))
    assert isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
    return _FUNCS[node.func.id](_eval(node.args[0], cols))


def _check(node: ast.AST, text: str, names: list[str]) -> None:
    """Allow only numbers, names, + - * / ^ and the functions of ``_FUNCS``."""
    ok = True
    if isinstance(node, ast.Constant):
        ok = isinstance(node.value, (int, float)) and not isinstance(node.value, bool)
    elif isinstance(node, ast.Name):
        names.append(node.id)
    elif isinstance(node, ast.UnaryOp):
        ok = isinstance(node.op, (ast.USub, ast.UAdd))
        _check(node.operand, text, names)
    elif isinstance(node, ast.BinOp):
        ok = type(node.op) in _BINOPS
        _check(node.left, text, names)
        _check(node.right, text, names)
    elif isinstance(node, ast.Call):
        ok = (
            isinstance(node.func, ast.Name)
            and node.func.id in _FUNCS
            and len(node.args) == 1
            and not node.keywords
        )
        if ok:
            _check(node.args[0], text, names)
    else:
        ok = False
    if not ok:
        raise ValueError(
            f"passive formula {text!r}: only numbers, column names, + - * / ^ and the functions "
            f"{sorted(_FUNCS)} are allowed; rewrite it, e.g. '~ I(a / b)'."
        )


def parse_passive(text: str, variable: str, columns: list[str]) -> PassiveFormula:
    """Parse ``"~ I(a / b)"`` (or ``"~ a / b"``) given as the method of ``variable``.

    Raises ValueError naming the variable when the formula is malformed, names a column that is
    not in the data, or names the variable itself.
    """
    body = text.strip()[1:].strip()
    if body.startswith("I(") and body.endswith(")"):
        body = body[2:-1]
    try:
        tree = ast.parse(body.replace("^", "**"), mode="eval")
    except SyntaxError:
        raise ValueError(
            f"the passive formula {text!r} of '{variable}' is not an expression; write it as "
            "'~ I(a / b)'."
        ) from None
    names: list[str] = []
    _check(tree.body, text, names)
    unknown = sorted(set(names) - set(columns))
    if unknown:
        raise ValueError(
            f"the passive formula {text!r} of '{variable}' names {unknown}, which are not "
            "columns of the data; use the column names exactly."
        )
    if variable in names:
        raise ValueError(
            f"the passive formula {text!r} of '{variable}' uses '{variable}' itself; a passive "
            "variable must be computed from other columns."
        )
    return PassiveFormula(text, tree, sorted(set(names)))
