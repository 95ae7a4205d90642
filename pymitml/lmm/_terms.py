"""lme4's model grammar: the random-effect terms of an ``lmer`` formula.

An lme4 formula is ``response ~ fixed part + (expr | group) + ...``. This module splits it:

* bar terms ``(expr | group)`` anywhere on the right, any number of them; ``(expr || group)``
  becomes one term per column of ``expr`` (intercept and each other summand, uncorrelated), as
  lme4's ``expandDoubleVerts``; ``group`` may be ``a:b`` (interaction of factors) or ``a/b``
  (nesting: ``(e | a) + (e | b:a)``, lme4's ``expandSlash``);
* ``offset(expr)`` summands of the fixed part;
* the response, which may be an expression such as ``log(y)``.

Where lme4 accepts a bar term without parentheses (``y ~ 1 | g``: R's precedence makes the whole
right-hand side the bar term) it is read the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..formula import _r_to_python, term_variables

__all__ = ["LmerFormula", "RandomTerm", "parse_lmer_formula"]

_NAME = re.compile(r"[A-Za-z_.][\w.]*|`[^`]+`")


@dataclass(frozen=True)
class RandomTerm:
    """One random-effect term ``(expr | g1:g2:...)``.

    expr : the left of the bar (formulaic syntax), e.g. ``"1 + x"``.
    groups : the grouping columns whose interaction forms the grouping factor.
    name : lme4's name of the grouping factor (``"class:school"``).
    """

    expr: str
    groups: tuple[str, ...]

    @property
    def name(self) -> str:
        return ":".join(self.groups)

    @property
    def text(self) -> str:
        return f"({self.expr} | {self.name})"


@dataclass(frozen=True)
class LmerFormula:
    """A parsed lme4 formula: response expression, fixed part, offsets and random terms."""

    text: str
    response: str
    fixed: str
    offsets: tuple[str, ...]
    random: tuple[RandomTerm, ...]

    @property
    def response_is_column(self) -> bool:
        return bool(re.fullmatch(r"[A-Za-z_.][\w.]*", self.response))

    @property
    def variables(self) -> list[str]:
        """Every data column the formula reads, in order of appearance."""
        out = term_variables(self.response) if not self.response_is_column else [self.response]
        out += term_variables(self.fixed)
        for o in self.offsets:
            out += term_variables(o)
        for t in self.random:
            out += term_variables(t.expr) + list(t.groups)
        return list(dict.fromkeys(out))


def _split_top(text: str, sep: str) -> list[str]:
    """Split ``text`` at ``sep`` characters outside parentheses."""
    parts: list[str] = []
    cur: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return [p.strip() for p in parts]


def _strip_parens(s: str) -> str:
    s = s.strip()
    while s.startswith("(") and s.endswith(")"):
        depth = 0
        for i, ch in enumerate(s):
            depth += ch == "("
            depth -= ch == ")"
            if depth == 0 and i < len(s) - 1:
                return s
        s = s[1:-1].strip()
    return s


def _group_names(spec: str, formula: str) -> list[tuple[str, ...]]:
    """Grouping factors of a bar's right side: ``g``, ``a:b``, ``a/b`` (-> a, b:a)."""
    spec = _strip_parens(spec)
    nested = [s.strip() for s in spec.split("/")]
    out = []
    for k in range(len(nested)):
        # a/b/c -> a, b:a, c:b:a (lme4's names: innermost first)
        comps: list[str] = []
        for level in nested[: k + 1]:
            comps = [c.strip().strip("`") for c in level.split(":")] + comps
        for c in comps:
            if not re.fullmatch(r"[A-Za-z_.][\w.]*", c):
                raise ValueError(
                    f"grouping factor '{spec}' in {formula!r} must be column names joined by ':' "
                    f"or '/'; {c!r} is not a column name."
                )
        out.append(tuple(comps))
    return out


def _double_bar(expr: str) -> list[str]:
    """``1 + x + z`` -> ``["1", "0 + x", "0 + z"]`` (lme4's expandDoubleVerts)."""
    parts = _split_top(expr, "+")
    has_int = True
    rest = []
    for p in parts:
        if p in ("0", "-1") or p.endswith("- 1"):
            has_int = False
        elif p == "1":
            continue
        elif p:
            rest.append(p)
    return (["1"] if has_int else []) + [f"0 + {p}" for p in rest]


def _bar_terms(piece: str, formula: str) -> list[RandomTerm]:
    m = re.fullmatch(r"(.*?)(\|\|?)(.*)", piece, flags=re.S)
    assert m is not None
    lhs, bar, rhs = m.group(1).strip(), m.group(2), m.group(3).strip()
    if "|" in rhs:
        raise ValueError(f"could not read the random-effects term '({piece})' in {formula!r}.")
    lhs = lhs or "1"
    exprs = _double_bar(lhs) if bar == "||" else [lhs]
    out = []
    for groups in _group_names(rhs, formula):
        for e in exprs:
            out.append(RandomTerm(_r_to_python(e), groups))
    return out


def parse_lmer_formula(text: str) -> LmerFormula:
    """Read an lme4 formula (see the module docstring).

    Examples
    --------
    >>> f = parse_lmer_formula("log(y) ~ x + offset(o) + (1 | a/b) + (0 + x || c)")
    >>> f.response, f.fixed, f.offsets, [t.text for t in f.random]
    ('log(y)', 'x', ('o',), ['(1 | a)', '(1 | b:a)', '(0 + x | c)'])
    """
    if not isinstance(text, str):
        raise TypeError(
            f"`formula` must be a string such as 'y ~ x + (1 | g)'; got {type(text).__name__}."
        )
    if text.count("~") != 1:
        raise ValueError(f"`formula` must contain exactly one '~'; got {text!r}.")
    lhs, rhs = (s.strip() for s in text.split("~"))
    if not lhs:
        raise ValueError(f"`formula` {text!r} names no response on the left of '~'.")
    if len(_split_top(lhs, "+")) > 1 and "(" not in lhs:
        raise ValueError(
            f"`formula` must have exactly one response on the left of '~'; got {lhs!r} in "
            f"{text!r}. Fit one model per response."
        )
    lhs = lhs.strip("`") if re.fullmatch(r"`[^`]+`", lhs) else lhs
    pieces = _split_top(rhs, "+")
    if any("|" in p and not p.startswith("(") for p in pieces):
        # R's precedence: `a + b | g` is `(a + b) | g`, the whole right-hand side one bar term
        pieces = [f"({rhs})"]
    fixed, offsets, random = [], [], []
    for p in pieces:
        if not p:
            continue
        inner = _strip_parens(p) if p.startswith("(") else p
        if "|" in inner and p.startswith("("):
            random += _bar_terms(inner, text)
            continue
        m = re.fullmatch(r"offset\((.*)\)", p, flags=re.S)
        if m:
            offsets.append(_r_to_python(m.group(1).strip()))
            continue
        fixed.append(p)
    fixed_text = " + ".join(fixed) if fixed else "1"
    if fixed and all(f in ("0", "-1") for f in fixed):
        fixed_text = "0"
    if not random:
        raise ValueError(
            f"`formula` {text!r} has no random-effects term; add one such as '(1 | cluster)' "
            "(for a model without random effects use ordinary least squares)."
        )
    return LmerFormula(
        text=text,
        response=_r_to_python(lhs),
        fixed=_r_to_python(fixed_text),
        offsets=tuple(offsets),
        random=tuple(random),
    )
