"""The study's table: bias, relative bias, RMSE, coverage, interval width and FMI per design,
method and parameter, each with its Monte Carlo standard error; and its figure.

With R replications of estimates e_r of a truth t (errors d_r = e_r - t):

- bias = mean(d), MCSE = sd(d) / sqrt(R); relative bias = bias / t, MCSE = MCSE(bias) / |t|;
- RMSE = sqrt(mean(d^2)), MCSE = sd(d^2) / (2 RMSE sqrt(R)) (delta method);
- coverage = share of intervals holding t, MCSE = sqrt(c (1 - c) / R_i), over the R_i
  replications that have an interval (``intervals``: a variance component whose fits are all
  on the boundary has none; its estimate, the mean over the m fits, still counts in the bias);
- width and FMI: means over those, MCSE = sd / sqrt(R_i).

(Morris, White & Crowther 2019, Table 6.) Replications where a method failed are left out of its
figures and counted in ``failed``; designs a method cannot handle are not in the table.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["summarize", "plot_summary", "to_markdown"]


def _cell(g: pd.DataFrame) -> pd.Series:
    ok = g[g["status"] == "ok"]
    R = len(ok)
    t = float(g["truth"].iloc[0])
    d = ok["estimate"].to_numpy(float) - t
    cov = ok["covered"].astype("Float64").dropna().to_numpy(float)  # replications with an interval
    out: dict[str, Any] = {
        "truth": t,
        "reps": R,
        "failed": int((g["status"] == "error").sum()),
        "intervals": len(cov),
    }
    if R == 0:
        return pd.Series(out)
    sq = np.sqrt(R)
    sd = d.std(ddof=1) if R > 1 else np.nan
    rmse = float(np.sqrt(np.mean(d**2)))
    nc = max(len(cov), 1)
    c = float(cov.mean()) if len(cov) else np.nan
    out.update(
        {
            "mean": t + float(d.mean()),
            "bias": float(d.mean()),
            "bias_mcse": sd / sq,
            "rel_bias": float(d.mean()) / t if t != 0 else np.nan,
            "rel_bias_mcse": sd / sq / abs(t) if t != 0 else np.nan,
            "rmse": rmse,
            "rmse_mcse": (d**2).std(ddof=1) / (2 * rmse * sq) if R > 1 and rmse > 0 else np.nan,
            "coverage": c,
            "coverage_mcse": np.sqrt(c * (1 - c) / nc),
            "width": float(ok["width"].mean()),
            "width_mcse": ok["width"].std(ddof=1) / np.sqrt(nc) if len(cov) > 1 else np.nan,
            "fmi": float(ok["fmi"].mean()),
            "fmi_mcse": ok["fmi"].std(ddof=1) / np.sqrt(nc) if len(cov) > 1 else np.nan,
            "seconds": float(ok.drop_duplicates(["rep"])["seconds"].mean()),
        }
    )
    return pd.Series(out)


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """One row per design x method x parameter (in the results' order), with MCSEs."""
    res = results[results["status"] != "not applicable"]
    if res.empty:
        raise ValueError("no results to summarise (every method was not applicable or none ran).")
    keys = ["design", "method", "parameter"]
    order = {k: pd.unique(res[k]) for k in keys}
    tab = res.groupby(keys, sort=False).apply(_cell, include_groups=False)
    tab = tab.reset_index()
    for k in keys[:2]:
        tab[k] = pd.Categorical(tab[k], categories=order[k], ordered=True)
    # parameters stay in the order each design lists them
    return tab.sort_values(keys[:2], kind="stable").reset_index(drop=True)


def plot_summary(table: pd.DataFrame, path: str | None = None) -> Any:
    """Relative bias and coverage per method (points, +- 2 MCSE) per design and parameter."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    designs = list(
        table["design"].cat.categories
        if hasattr(table["design"], "cat")
        else pd.unique(table["design"])
    )
    methods = list(pd.unique(table["method"]))
    fig, axes = plt.subplots(len(designs), 2, figsize=(11, 2.2 * len(designs) + 0.8), squeeze=False)
    colours = plt.get_cmap("tab10")
    for i, dn in enumerate(designs):
        sub = table[table["design"] == dn]
        pars = list(pd.unique(sub["parameter"]))
        for j, (col, ref, lab) in enumerate(
            (("rel_bias", 0.0, "relative bias"), ("coverage", 0.95, "coverage"))
        ):
            ax = axes[i, j]
            for k, mth in enumerate(methods):
                s = sub[sub["method"] == mth].set_index("parameter").reindex(pars)
                x = np.arange(len(pars)) + (k - len(methods) / 2) * 0.8 / len(methods)
                ax.errorbar(
                    x,
                    s[col],
                    yerr=2 * s[f"{col}_mcse"],
                    fmt="o",
                    ms=3,
                    color=colours(k),
                    label=mth if i == 0 and j == 0 else None,
                )
            ax.axhline(ref, color="grey", lw=0.8)
            if col == "coverage":
                ax.axhspan(0.925, 0.975, color="grey", alpha=0.15)
            ax.set_xticks(np.arange(len(pars)))
            ax.set_xticklabels([p.replace("~~", "\n~~") for p in pars], fontsize=6)
            ax.set_title(f"{dn}: {lab}", fontsize=8)
    fig.legend(loc="upper center", ncol=min(len(methods), 8), fontsize=7)
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def to_markdown(table: pd.DataFrame, digits: int = 2) -> str:
    """One Markdown table per design: rows are methods, cells ``relative bias (coverage)`` in
    percent per parameter, with the replications and the largest MCSEs under each table."""
    out = []
    for dn, sub in table.groupby("design", sort=False, observed=True):
        pars = list(pd.unique(sub["parameter"]))
        reps = int(sub["reps"].max())
        out += [f"**{dn}** ({reps} replications; relative bias % (coverage %))", ""]
        heads = (p.replace("|", "\\|") for p in pars)  # a bar would end the cell
        out.append("| method | " + " | ".join(heads) + " |")
        out.append("|---" * (len(pars) + 1) + "|")
        for mth, ms in sub.groupby("method", sort=False, observed=True):
            ms = ms.set_index("parameter").reindex(pars)
            cells = [
                ""
                if pd.isna(r["rel_bias"])
                else f"{100 * r['rel_bias']:.{max(digits - 1, 0)}f} ({100 * r['coverage']:.0f})"
                for _, r in ms.iterrows()
            ]
            out.append(f"| {mth} | " + " | ".join(cells) + " |")
        mc_b = 100 * sub["rel_bias_mcse"].max()
        mc_c = 100 * sub["coverage_mcse"].max()
        out += [
            "",
            f"Largest MCSE: relative bias {mc_b:.1f} points, coverage {mc_c:.1f} points.",
            "",
        ]
    return "\n".join(out)
