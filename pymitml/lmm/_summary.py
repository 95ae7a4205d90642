"""lme4-style printout of an :class:`~pymitml.lmm.fit.LmerFit` (R's ``summary(fit)``)."""

from __future__ import annotations

import math
import re

import numpy as np

__all__ = ["abbreviate", "format_summary", "groups_line", "r_format", "random_block"]


def _decimals(x: float, digits: int) -> int:
    """Decimals R needs to show ``x`` with ``digits`` significant digits (trailing zeros dropped)."""
    if x == 0.0 or not np.isfinite(x):
        return 0
    e = math.floor(math.log10(abs(x)))
    dec = max(0, digits - 1 - e)
    s = f"{abs(x):.{dec}f}"
    if "." in s:
        s = s.rstrip("0").rstrip(".")
        return len(s.split(".")[1]) if "." in s else 0
    return 0


def _zapsmall(x: np.ndarray, digits: int) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` significant digits of the largest magnitude."""
    mx = float(np.max(np.abs(x)))
    if mx == 0.0:
        return x
    return np.round(x, max(0, digits - math.ceil(math.log10(mx))))


def r_format(values, digits: int) -> list[str]:
    """Format numbers with a common number of decimals, as R's ``format(x, digits=)`` does."""
    vals = [float(v) for v in values]
    dec = max([_decimals(v, digits) for v in vals] + [0])
    return ["NaN" if not np.isfinite(v) else f"{v:.{dec}f}" for v in vals]


def abbreviate(name: str, minlength: int = 6) -> str:
    """R's ``abbreviate``: drop lower-case vowels, then lower-case letters, from the end."""
    chars = list(name)
    for pattern in ("[aeiou]", "[a-z]"):
        i = len(chars) - 1
        while len(chars) > minlength and i > 0:
            if re.fullmatch(pattern, chars[i]):
                del chars[i]
            i -= 1
    return "".join(chars[:minlength] if len(chars) > minlength else chars)


def _table(rows: list[list[str]], align: list[str]) -> list[str]:
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [
            (r[c].ljust(widths[c]) if align[c] == "l" else r[c].rjust(widths[c]))
            for c in range(len(r))
        ]
        out.append(" ".join(cells).rstrip())
    return out


def vc_blocks(fit) -> list[tuple[str, list[str], np.ndarray]]:
    """(group label, column names, covariance matrix) of each random-effect term."""
    if hasattr(fit, "cov_random_terms"):
        return fit.cov_random_terms()
    return [(fit.cluster, list(fit.random_names), fit.cov_random.to_numpy())]


def random_block(fit, residual: bool = True) -> list[str]:
    """lme4's "Random effects:" table (``residual=False``: a GLMM's, without the residual row)."""
    blocks = vc_blocks(fit)
    var = np.concatenate([np.diag(c) for _, _, c in blocks])
    if residual:
        var = np.r_[var, fit.sigma**2]
    sd = np.sqrt(var)
    vs, ss = r_format(var, 4), r_format(sd, 4)
    qmax = max(len(names) for _, names, _ in blocks)
    cells: dict[tuple[int, int, int], str] = {}
    for k, (_, names, cov) in enumerate(blocks):
        d = np.sqrt(np.diag(cov))
        for a in range(len(names)):
            for b in range(a):
                cells[(k, a, b)] = f"{cov[a, b] / (d[a] * d[b]):.2f}" if d[a] * d[b] > 0 else "NaN"
    width = max([len(c) for c in cells.values()] + [0])
    header = ["Groups", "Name", "Variance", "Std.Dev."] + (
        ["Corr"] + [""] * (qmax - 2) if qmax > 1 else []
    )
    rows = [header]
    i = 0
    for k, (g, names, _) in enumerate(blocks):
        for a in range(len(names)):
            corr = [cells[(k, a, b)].rjust(width) if b < a else "" for b in range(qmax - 1)]
            rows.append([g if a == 0 else "", names[a], vs[i], ss[i]] + corr)
            i += 1
    if residual:
        rows.append(["Residual", "", vs[-1], ss[-1]] + [""] * max(qmax - 1, 0))
    return [" " + line for line in _table(rows, ["l"] * len(header))]


def groups_line(fit) -> str:
    if getattr(fit, "re_terms", ()):
        seen: dict[str, int] = {}
        for t in fit.re_terms:  # lme4 lists each grouping factor once
            seen.setdefault(t.group, t.n_levels)
        groups = "; ".join(f"{g}, {k}" for g, k in seen.items())
    else:
        groups = f"{fit.cluster}, {fit.ngroups}"
    return f"Number of obs: {fit.nobs}, groups:  {groups}"


def _fixed_block(fit) -> list[str]:
    tab = fit.coef_table()
    est, se, tv = (tab[c].to_numpy() for c in ("Estimate", "Std. Error", "t value"))
    joint = r_format(np.r_[est, se], 4)
    k = est.size
    rows = [["", "Estimate", "Std. Error", "t value"]]
    ts = [f"{v:.3f}" for v in tv]
    for i, name in enumerate(tab.index):
        rows.append([name, joint[i], joint[k + i], ts[i]])
    return _table(rows, ["l", "r", "r", "r"])


def _corr_block(fit) -> list[str]:
    v = fit.vcov.to_numpy()
    p = v.shape[0]
    if p < 2:
        return []
    if p > 12:
        return [f"Correlation matrix not shown by default, as p = {p} > 12."]
    sd = np.sqrt(np.diag(v))
    corr = v / np.outer(sd, sd)
    names = list(fit.vcov.index)
    rows = [[""] + [abbreviate(n) for n in names[:-1]]]
    for i in range(1, p):
        rows.append([names[i]] + [f"{corr[i, j]:.3f}" for j in range(i)] + [""] * (p - 1 - i))
    width = max(len(c) for r in rows[1:] for c in r[1:])
    rows[1:] = [[r[0]] + [c.rjust(width) if c else c for c in r[1:]] for r in rows[1:]]
    return ["Correlation of Fixed Effects:"] + _table(rows, ["l"] * p)


def format_summary(fit) -> str:
    """The text of ``summary(fit)`` in lme4's layout."""
    lines = []
    if fit.REML:
        lines.append("Linear mixed model fit by REML ['lmerMod' via pymitml]")
    else:
        lines.append("Linear mixed model fit by maximum likelihood  ['lmerMod' via pymitml]")
    lines.append(f"Formula: {fit.formula}")
    lines.append("")
    if fit.REML:
        lines.append(f"REML criterion at convergence: {fit.reml_criterion:.1f}")
    else:
        head = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        vals = [
            f"{fit.aic:.1f}",
            f"{fit.bic:.1f}",
            f"{fit.loglik:.1f}",
            f"{fit.deviance:.1f}",
            str(fit.nobs - fit.df),
        ]
        w = [max(8, len(v)) for v in vals]
        lines.append(" ".join(h.rjust(wi) for h, wi in zip(head, w)))
        lines.append(" ".join(v.rjust(wi) for v, wi in zip(vals, w)))
    lines.append("")
    res = fit.residuals() / fit.sigma
    qs = _zapsmall(np.quantile(res, [0, 0.25, 0.5, 0.75, 1.0]), 5)
    lines.append("Scaled residuals: ")
    lines += _table([["Min", "1Q", "Median", "3Q", "Max"], r_format(qs, 4)], ["r"] * 5)
    lines.append("")
    lines.append("Random effects:")
    lines += random_block(fit)
    lines.append(groups_line(fit))
    lines.append("")
    lines.append("Fixed effects:")
    lines += _fixed_block(fit)
    corr = _corr_block(fit)
    if corr:
        lines.append("")
        lines += corr
    lines += list(fit.messages)
    return "\n".join(lines)
