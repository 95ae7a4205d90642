"""lme4-style printout of a :class:`~pymitml.lmm.glmer_fit.GlmerFit` (R's ``summary(fit)``)."""

from __future__ import annotations

import numpy as np

from ._summary import _corr_block, _table, _zapsmall, groups_line, r_format, random_block

__all__ = ["format_glmer_summary"]


def _p_values(ps: np.ndarray) -> list[str]:
    """R's p-value column (``format.pval`` with 3 significant digits): values below 1e-4 in
    scientific notation, the others with the decimals the smallest of them needs."""
    fixed = [p for p in ps if p >= 1e-4]
    dec = max([max(0, 2 - int(np.floor(np.log10(p)))) for p in fixed if p > 0] + [0])
    out = []
    for p in ps:
        if p < 2.220446e-16:
            out.append("< 2e-16")
        elif p < 1e-4:
            out.append(f"{p:.2e}")
        else:
            out.append(f"{p:.{dec}f}")
    return out


def _stars(p: float) -> str:
    for cut, s in ((0.001, "***"), (0.01, "**"), (0.05, "*"), (0.1, ".")):
        if p < cut:
            return s
    return ""


def _fixed_block(fit) -> list[str]:
    tab = fit.coef_table()
    est, se, z, p = (tab[c].to_numpy() for c in ("Estimate", "Std. Error", "z value", "Pr(>|z|)"))
    joint = r_format(np.r_[est, se], 4)
    k = est.size
    rows = [["", "Estimate", "Std. Error", "z value", "Pr(>|z|)", ""]]
    pv = _p_values(p)
    for i, name in enumerate(tab.index):
        rows.append([name, joint[i], joint[k + i], f"{z[i]:.3f}", pv[i], _stars(p[i])])
    lines = _table(rows, ["l", "r", "r", "r", "r", "l"])
    lines.append("---")
    lines.append("Signif. codes:  0 '***' 0.001 '**' 0.01 '*' 0.05 '.' 0.1 ' ' 1")
    return lines


def format_glmer_summary(fit) -> str:
    """The text of ``summary(fit)`` for a glmer fit in lme4's layout."""
    if fit.nAGQ != 1:
        method = f"(Adaptive Gauss-Hermite Quadrature, nAGQ = {fit.nAGQ})"
    else:
        method = "(Laplace\n  Approximation)"
    lines = [
        f"Generalized linear mixed model fit by maximum likelihood {method} ['glmerMod' via "
        "pymitml]",
        f" Family: {fit.family}  ( {fit.link} )",
        f"Formula: {fit.formula}",
        "",
    ]
    head = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
    vals = [
        f"{fit.aic:.1f}",
        f"{fit.bic:.1f}",
        f"{fit.loglik:.1f}",
        f"{-2.0 * fit.loglik:.1f}",
        str(fit.nobs - fit.df),
    ]
    w = [max(8, len(v)) for v in vals]
    lines.append(" ".join(h.rjust(wi) for h, wi in zip(head, w)))
    lines.append(" ".join(v.rjust(wi) for v, wi in zip(vals, w)))
    lines.append("")
    qs = _zapsmall(np.quantile(fit.residuals("pearson"), [0, 0.25, 0.5, 0.75, 1.0]), 5)
    lines.append("Scaled residuals: ")
    cells = r_format(qs, 4)
    width = max(len(c) for c in cells)
    lines += _table(
        [["Min", "1Q", "Median", "3Q", "Max"], [c.rjust(width) for c in cells]], ["r"] * 5
    )
    lines.append("")
    lines.append("Random effects:")
    lines += random_block(fit, residual=False)
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
