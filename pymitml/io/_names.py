"""Variable names a target format can hold: check them, or map them with a printed table.

Every writer calls :func:`file_names` once. With ``names="error"`` (the default) a name the
format cannot hold is a ValueError listing every problem and the two fixes (``rename=`` or
``names="map"``); with ``names="map"`` legal names are made up and the mapping is printed and
kept in the schema sidecar, so the readers give the original names back. Nothing is renamed
silently.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

__all__ = ["BLIMP", "LONG", "MPLUS", "SPSS", "STATA", "STATA117", "NameRules", "file_names"]


@dataclass(frozen=True)
class NameRules:
    """What one file format allows as a variable name.

    Attributes
    ----------
    format : the format's name, for messages.
    max_len : longest name allowed (``None``: no limit), counted in ``unit``.
    unit : ``"chars"`` or ``"bytes"`` (UTF-8).
    pattern : regular expression a legal name matches in full.
    rule : the pattern in words, for messages.
    case_insensitive : ``X`` and ``x`` count as the same name.
    reserved : words that cannot be names (compared after case folding when case-insensitive).
    reserved_prefix : a prefix the format keeps for itself (Stata's ``_mi_``).
    ascii : mapped names are made of ASCII characters.
    """

    format: str
    max_len: int | None
    unit: str
    pattern: str
    rule: str
    case_insensitive: bool = False
    reserved: frozenset = frozenset()
    reserved_prefix: str | None = None
    ascii: bool = True

    def length(self, name: str) -> int:
        return len(name.encode("utf-8")) if self.unit == "bytes" else len(name)

    def key(self, name: str) -> str:
        return name.casefold() if self.case_insensitive else name


_STATA_RESERVED = frozenset(
    [
        "_all",
        "_b",
        "byte",
        "_coef",
        "_cons",
        "double",
        "float",
        "if",
        "in",
        "int",
        "long",
        "_n",
        "_N",
        "_pi",
        "_pred",
        "_rc",
        "_skip",
        "strL",
        "using",
        "with",
    ]
)

STATA = NameRules(
    "Stata",
    32,
    "chars",
    r"[^\W\d]\w*",
    "a letter or _ followed by letters, digits or _",
    reserved=_STATA_RESERVED,
    reserved_prefix="_mi_",
    ascii=True,
)
STATA117 = NameRules(
    "Stata 13 (format 117)",
    32,
    "chars",
    r"[A-Za-z_][A-Za-z0-9_]*",
    "an ASCII letter or _ followed by ASCII letters, digits or _",
    reserved=_STATA_RESERVED,
    reserved_prefix="_mi_",
)
SPSS = NameRules(
    "SPSS",
    64,
    "bytes",
    r"(?:[^\W\d_]|@)[\w.@#$]*(?<!\.)",
    "a letter or @ followed by letters, digits, or . _ @ # $, not ending in a period",
    case_insensitive=True,
    reserved=frozenset("ALL AND BY EQ GE GT LE LT NE NOT OR TO WITH".lower().split()),
)
# Mplus User's Guide (v6, ch. 17, "the same rules as variable names"): up to 8 characters,
# beginning with a letter, only letters, numbers and the underscore, not case sensitive.
MPLUS = NameRules(
    "Mplus",
    8,
    "chars",
    r"[A-Za-z][A-Za-z0-9_]*",
    "an ASCII letter followed by ASCII letters, digits or _",
    case_insensitive=True,
    reserved=frozenset(["all", "are", "by", "is", "on", "pon", "with", "pwith", "xwith"]),
)
BLIMP = NameRules(
    "Blimp",
    None,
    "chars",
    r"[A-Za-z][A-Za-z0-9_]*",
    "an ASCII letter followed by ASCII letters, digits or _",
    case_insensitive=True,
)
LONG = NameRules("long CSV/parquet", None, "chars", r"(?s).+", "any non-empty text")


def _problems(names: Sequence[str], rules: NameRules, system: Sequence[str]) -> dict[int, str]:
    """Position -> reason, for each name the format cannot hold."""
    out: dict[int, str] = {}
    seen: dict[str, str] = {}
    sys_keys = {rules.key(s) for s in system}
    reserved = {rules.key(r) for r in rules.reserved}
    for i, n in enumerate(names):
        if not isinstance(n, str):
            out[i] = f"is a {type(n).__name__}, not a string"
            continue
        if rules.max_len is not None and rules.length(n) > rules.max_len:
            out[i] = f"is longer than {rules.max_len} {rules.unit} ({rules.length(n)})"
        elif not re.fullmatch(rules.pattern, n):
            out[i] = f"has characters {rules.format} does not allow (a name is {rules.rule})"
        elif rules.key(n) in reserved or (
            rules.format.startswith("Stata") and re.fullmatch(r"str\d+", n)
        ):
            out[i] = f"is a reserved word in {rules.format}"
        elif rules.reserved_prefix and n.startswith(rules.reserved_prefix):
            out[i] = f"starts with '{rules.reserved_prefix}', which {rules.format} keeps for itself"
        elif rules.key(n) in sys_keys:
            out[i] = "is the name of a column this writer adds"
        elif rules.key(n) in seen:
            what = "differs only in case from" if seen[rules.key(n)] != n else "duplicates"
            out[i] = f"{what} '{seen[rules.key(n)]}'"
        seen.setdefault(rules.key(n), n)
    return out


def _legalise(name: str, rules: NameRules) -> str:
    """A legal name made from ``name`` (may still collide; the caller makes it unique)."""
    s = str(name)
    if rules.ascii:
        s = s.encode("ascii", "ignore").decode()
    s = re.sub(r"[^\w]", "_", s) if rules.format != "SPSS" else re.sub(r"[^\w.@#$]", "_", s)
    if not re.fullmatch(rules.pattern, s[:1] or "_"):
        s = "v" + s
    if rules.reserved_prefix and s.startswith(rules.reserved_prefix):
        s = "v" + s
    s = s.rstrip(".")
    return _truncate(s or "v", rules)


def _truncate(s: str, rules: NameRules, room: int = 0) -> str:
    if rules.max_len is None:
        return s
    limit = rules.max_len - room
    while rules.length(s) > limit:
        s = s[:-1]
    return s


def file_names(
    columns: Sequence[str],
    rules: NameRules,
    names: str = "error",
    rename: Mapping[str, str] | None = None,
    system: Sequence[str] = (),
) -> dict[str, str]:
    """Map every column to the name it gets in the file.

    Parameters
    ----------
    columns : the data's column names.
    rules : the target format's :class:`NameRules`.
    names : ``"error"`` (a ValueError for any name the format cannot hold) or ``"map"``
        (legal names are made up; the mapping is printed).
    rename : explicit ``{column: name in file}`` applied first; those names must be legal.
    system : names of columns the writer adds (``_mi_m``, ``Imputation_``, ...).

    Returns
    -------
    dict : column -> name in the file, in column order.
    """
    if names not in ("error", "map"):
        raise ValueError(f"`names` must be 'error' or 'map'; got {names!r}.")
    rename = dict(rename or {})
    unknown = [k for k in rename if k not in columns]
    if unknown:
        raise ValueError(
            f"`rename` names columns {unknown} that are not in the data; columns are {list(columns)}."
        )
    wanted = [rename.get(c, c) for c in columns]
    bad = _problems(wanted, rules, system)
    if not bad:
        return dict(zip(columns, wanted))
    bad_explicit = {i: why for i, why in bad.items() if columns[i] in rename}
    if names == "error" or bad_explicit:
        shown = bad_explicit if bad_explicit else bad
        lines = "\n".join(f"  '{wanted[i]}' {why}" for i, why in shown.items())
        src = "`rename` gives names" if bad_explicit else "column names"
        raise ValueError(
            f"{src} that {rules.format} cannot hold:\n{lines}\n"
            "Fix: pass rename={'old': 'new', ...} with legal names, or names='map' to have legal names "
            "made up (the mapping is printed and stored so that the reader restores the original names)."
        )
    out: dict[str, str] = {}
    used = {rules.key(s) for s in system}
    for i, (c, w) in enumerate(zip(columns, wanted)):
        if i not in bad:
            out[c] = w
            used.add(rules.key(w))
    for c, w in zip(columns, wanted):
        if c in out:
            continue
        cand = _legalise(w, rules)
        k = 2
        while rules.key(cand) in used or _problems([cand], rules, system):
            suffix = f"_{k}"
            cand = _truncate(_legalise(w, rules), rules, room=rules.length(suffix)) + suffix
            k += 1
        out[c] = cand
        used.add(rules.key(cand))
    changed = {c: n for c, n in out.items() if c != n}
    width = max(len(str(c)) for c in changed)
    table = "\n".join(f"  {c!s:<{width}} -> {n}" for c, n in changed.items())
    print(
        f"pymitml: {len(changed)} column name(s) mapped to names {rules.format} can hold "
        f"(column -> name in file):\n{table}"
    )
    return out
