"""Right-hand sides of the model-based sampler's formulas as products of variable powers.

A design column is a product of factors, each a variable raised to a power (``x``, ``I(x^2)``)
or the indicator of one category of a nominal variable. The grammar: terms joined by ``+``;
``a:b`` (product), ``a*b`` (``a + b + a:b``), ``I(a^k)`` / ``I(a**k)`` (integer k >= 1),
``cmean(a)`` (the cluster mean of a level-1 variable: latent, or observed by option) and
``cwc(a)`` (a minus its cluster mean), ``1`` / ``0`` / ``-1`` (intercept in / out). Whatever
else is an error naming the term.
"""

from __future__ import annotations

import itertools
import re

__all__ = ["CENTRED", "Term", "parse_rhs", "split_top", "term_name"]

#: a term: tuple of (variable, power) in order of appearance
Term = tuple[tuple[str, int], ...]

_NAME = r"[A-Za-z_.][\w.]*"
_POWER = re.compile(rf"I\(\s*({_NAME})\s*(?:\^|\*\*)\s*(\d+)\s*\)")
_CMEAN = re.compile(rf"cmean\(\s*({_NAME})\s*\)")
_CWC = re.compile(rf"cwc\(\s*({_NAME})\s*\)")

#: power code of a cluster-mean-centred factor: 100 + power (``cwc(x)`` is x - x.mean)
CENTRED = 100


def split_top(text: str, sep: str) -> list[str]:
    """``text`` split at ``sep`` outside parentheses (stripped pieces)."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return parts


def _factor(text: str, where: str) -> tuple[str, int]:
    t = text.strip().strip("`")
    if re.fullmatch(_NAME, t):
        return (t, 1)
    m = _CMEAN.fullmatch(t.replace(" ", ""))
    if m:
        return (f"{m.group(1)}.mean", 1)
    m = _CWC.fullmatch(t.replace(" ", ""))
    if m:
        return (m.group(1), CENTRED + 1)
    m = _POWER.fullmatch(t.replace(" ", ""))
    if m and int(m.group(2)) >= 1:
        return (m.group(1), int(m.group(2)))
    raise ValueError(
        f"cannot read the term {text.strip()!r} of {where}; model_impute's formulas take column "
        "names, products 'a:b', crossings 'a*b', powers 'I(a^2)', cluster means 'cmean(a)' and "
        "cluster-mean-centred values 'cwc(a)'. Compute other transformations as columns of the "
        "data first."
    )


def _product(factors: list[tuple[str, int]]) -> Term:
    acc: dict[str, int] = {}
    for name, pw in factors:
        acc[name] = acc.get(name, 0) + pw
    return tuple(acc.items())


def parse_rhs(rhs: str, where: str) -> tuple[bool, list[Term]]:
    """(intercept?, terms in order, duplicates dropped) of a right-hand side."""
    intercept = True
    text = rhs.replace("-1", "+ -1").replace("- 1", "+ -1")
    terms: list[Term] = []
    for piece in split_top(text, "+"):
        if piece in ("", "1"):
            continue
        if piece in ("0", "-1"):
            intercept = False
            continue
        crossed = split_top(piece, "*")
        groups = [[_factor(f, where) for f in split_top(c, ":")] for c in crossed]
        for k in range(1, len(groups) + 1):
            for combo in itertools.combinations(groups, k):
                term = _product([f for g in combo for f in g])
                if sorted(term) not in [sorted(t) for t in terms]:
                    terms.append(term)
    return intercept, terms


def term_name(term: Term) -> str:
    """lme4-like name of a term: ``x``, ``x:w``, ``I(x^2)``."""
    return ":".join(_factor_name(n, p) for n, p in term)


def _factor_name(n: str, p: int) -> str:
    if p > CENTRED:
        return f"cwc({n})" if p == CENTRED + 1 else f"I(cwc({n})^{p - CENTRED})"
    if n.endswith(".mean") and p == 1:
        return f"cmean({n[:-5]})"
    return n if p == 1 else f"I({n}^{p})"
