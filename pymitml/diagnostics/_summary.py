"""ChainSummary: mitml's ``summary`` of an imputation (Rhat, autocorrelation, missing %), printed alike."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._frame import as_pandas
from .._validation import check_positive_int
from ._tables import _TITLES, BLOCKS, RHAT_THRESHOLD, _as_chains, _block_series, parameter_table

# ---------------------------------------------------------------------------------------------
# the summary record and its printout
# ---------------------------------------------------------------------------------------------


def _quantile7(x: np.ndarray, p: float) -> float:
    """R's default quantile (type 7), robust to infinite values like R's."""
    x = np.sort(x)
    h = (len(x) - 1) * p
    lo, hi = math.floor(h), math.ceil(h)
    q = x[lo]
    if hi > lo and x[hi] != q:
        q = (1 - (h - lo)) * q + (h - lo) * x[hi]
    return float(q)


def _five(x: np.ndarray) -> list[float]:
    x = np.asarray(x, dtype=float)
    if x.size == 0:
        return [np.nan] * 6
    return [
        float(x.min()),
        _quantile7(x, 0.25),
        float(x.mean()),
        _quantile7(x, 0.5),
        _quantile7(x, 0.75),
        float(x.max()),
    ]


def _fmt_table(rows: list[str], cols: list[str], cells: list[list[str]], left: bool = False) -> str:
    wl = max(len(r) for r in rows)
    widths = [max(len(c), *(len(row[k]) for row in cells)) for k, c in enumerate(cols)]

    def j(v, w):
        return v.ljust(w) if left else v.rjust(w)

    out = [" " * wl + "".join(" " + j(c, w) for c, w in zip(cols, widths)).rstrip()]
    for r, row in zip(rows, cells):
        out.append((r.ljust(wl) + "".join(" " + j(v, w) for v, w in zip(row, widths))).rstrip())
    return "\n".join(out)


def _num(v: float) -> str:
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "Inf" if v > 0 else "-Inf"
    return f"{v:.3f}"


def _acf_str(v: float) -> str:
    if np.isnan(v):
        return "   NA"
    s = f"{v:.3f}"
    return (
        s.replace("-0.", "-.") if v < 0 else s.replace("0.", " .", 1) if s.startswith("0.") else s
    )


@dataclass(frozen=True)
class ChainSummary:
    """Convergence diagnostics of imputation chains (what mitml's ``summary`` reports).

    Attributes
    ----------
    table : DataFrame, one row per parameter with every computed statistic
        (see :func:`parameter_table`).
    rhat : DataFrame ``block, row, col, group, parameter, Rhat[, Rhat_chains]`` or None.
    goodness : DataFrame ``..., SDprop, n_eff`` or None.
    autocorrelation : DataFrame ``..., lag-1, lag-k, lag-2k`` or None.
    missing_rates : DataFrame (one row ``MD%``, one column per variable, percent) or None.
    settings : n_burn, n_iter, m, chains, n_Rhat, n_groups and what else is known.
    """

    table: pd.DataFrame
    rhat: pd.DataFrame | None
    goodness: pd.DataFrame | None
    autocorrelation: pd.DataFrame | None
    missing_rates: pd.DataFrame | None = None
    settings: dict = field(default_factory=dict)

    @property
    def flagged(self) -> pd.DataFrame:
        """Parameters with Rhat (or Rhat_chains) above :data:`RHAT_THRESHOLD`, worst first."""
        if self.rhat is None:
            return self.table.iloc[:0]
        r = self.rhat
        worst = r["Rhat"].to_numpy()
        if "Rhat_chains" in r:
            worst = np.fmax(worst, r["Rhat_chains"].to_numpy())
        out = r[worst > RHAT_THRESHOLD].assign(worst=worst[worst > RHAT_THRESHOLD])
        return out.sort_values("worst", ascending=False, kind="stable").drop(columns="worst")

    def block_table(self, stat: str) -> pd.DataFrame:
        """Min, 25%, Mean, Median, 75%, Max of ``stat`` per block (mitml's printed table)."""
        t = self.table
        blocks = [b for b in BLOCKS if (t["block"] == b).any()]
        data = [_five(t.loc[t["block"] == b, stat].to_numpy()) for b in blocks]
        return pd.DataFrame(
            data,
            index=[_TITLES[b] for b in blocks],
            columns=["Min", "25%", "Mean", "Median", "75%", "Max"],
        )

    def worst(self, stat: str, absolute: bool = False) -> dict:
        """Block -> (row, col) (0-based) of the largest ``stat`` (first one on ties)."""
        out = {}
        for b in BLOCKS:
            sub = self.table[self.table["block"] == b]
            if len(sub):
                v = sub[stat].to_numpy()
                v = np.abs(v) if absolute else v
                k = int(np.argmax(np.where(np.isnan(v), -np.inf, v)))
                out[b] = (int(sub["row"].iloc[k]), int(sub["col"].iloc[k]))
        return out

    def _worst_line(self, stat: str, absolute: bool = False) -> str:
        w = self.worst(stat, absolute)
        return ", ".join(f"{_TITLES[b]}: [{r + 1},{c + 1}]" for b, (r, c) in w.items())

    def __str__(self) -> str:
        s = self.settings
        lines = [""]
        for k in ("method", "formula"):
            if s.get(k) is not None:
                lines.append(f"{k.capitalize() + ':':<25} {s[k]}")
        if s.get("levels") is not None:  # several cluster variables: the levels report
            lines += [str(s["levels"]), ""]
        elif s.get("cluster") is not None:
            lines.append(f"{'Cluster variable:':<25} {s['cluster']}")
        if s.get("targets"):
            lines.append(f"{'Target variables:':<25} {' '.join(map(str, s['targets']))}")
        if "n_burn" in s and "m" in s:
            lines += [
                "",
                (
                    f"Performed {s['n_burn']} burn-in iterations, and generated {s['m']} imputed "
                    f"data sets,\neach {s['n_iter']} iterations apart."
                ),
            ]
        if s.get("chains", 1) > 1:
            lines.append(f"Ran {s['chains']} chains; imputations were drawn across the chains.")
        if s.get("n_groups", 1) > 1:
            lines.append(f"Imputations were carried out separately within {s['n_groups']} groups.")
        t = self.table
        if self.rhat is not None:
            lines += ["", "Potential scale reduction (Rhat, imputation phase):", ""]
            lines.append(self._stat_block("Rhat"))
            lines += ["", "Largest potential scale reduction:", self._worst_line("Rhat")]
            if "Rhat_chains" in t:
                lines += [
                    "",
                    (
                        f"Potential scale reduction between the {s.get('chains', '')} chains "
                        "(Gelman-Rubin):"
                    ),
                    "",
                ]
                lines.append(self._stat_block("Rhat_chains"))
                lines += [
                    "",
                    "Largest potential scale reduction between chains:",
                    self._worst_line("Rhat_chains"),
                ]
        if self.goodness is not None:
            lines += ["", "Goodness of approximation (imputation phase):", ""]
            lines.append(self._stat_block("SDprop"))
            lines += ["", "Poorest approximation:", self._worst_line("SDprop")]
        if self.autocorrelation is not None:
            lines += ["", "Autocorrelation (ACF, imputation phase):", ""]
            blocks = [b for b in BLOCKS if (t["block"] == b).any()]
            cells = []
            beyond = False
            for b in blocks:
                sub = t[t["block"] == b]
                vals = [sub[c].to_numpy(float) for c in ("lag-1", "lag-k", "lag-2k")]
                beyond |= any(np.isnan(v).all() for v in vals)
                mean = [v[~np.isnan(v)].mean() if (~np.isnan(v)).any() else np.nan for v in vals]
                mx = [v[~np.isnan(v)].max() if (~np.isnan(v)).any() else np.nan for v in vals]
                cells.append([_acf_str(v) for v in mean + mx])
            cells.insert(0, [" Lag1", " Lagk", "Lag2k"] * 2)
            lines.append(
                _fmt_table(
                    [""] + [_TITLES[b] + ":" for b in blocks],
                    [" Mean", "", "", " Max", "", ""],
                    cells,
                    left=True,
                )
            )
            if beyond:
                lines.append("(NA: the lag reaches beyond the imputation phase of a chain.)")
            lines += [
                "",
                "Largest autocorrelation at lag k:",
                self._worst_line("lag-k", absolute=True),
            ]
        if self.rhat is not None:
            fl = self.flagged
            lines.append("")
            if len(fl):
                lines.append(
                    f"Parameters with Rhat > {RHAT_THRESHOLD} ({len(fl)} of {len(self.rhat)}); "
                    "run more burn-in iterations:"
                )
                show = fl.head(10)
                for _, r in show.iterrows():
                    g = "" if s.get("n_groups", 1) <= 1 else f" (group {r['group']})"
                    text = f"Rhat {_num(r['Rhat'])}"
                    if "Rhat_chains" in r:
                        text += f", between chains {_num(r['Rhat_chains'])}"
                    lines.append(f"  {r['parameter']}{g}: {text}")
                if len(fl) > len(show):
                    lines.append(f"  ... and {len(fl) - len(show)} more (see .flagged)")
            else:
                lines.append(f"All parameters have Rhat <= {RHAT_THRESHOLD}.")
        if s.get("n_dropped"):
            lines.append(
                f"({s['n_dropped']} parameters with undefined statistics left out, as in mitml.)"
            )
        if self.missing_rates is not None:
            lines += ["", "Missing data per variable:"]
            mr = self.missing_rates.iloc[0]
            vals = ["0" if v == 0 else f"{v:.1f}" for v in mr.to_numpy(dtype=float)]
            lines.append(_fmt_table(["MD%"], [str(c) for c in mr.index], [vals]))
        lines.append("")
        return "\n".join(lines)

    def _stat_block(self, stat: str) -> str:
        bt = self.block_table(stat)
        cells = [[_num(v) for v in row] for row in bt.to_numpy()]
        return _fmt_table([r + ":" for r in bt.index], list(bt.columns), cells)

    def __repr__(self) -> str:
        return self.__str__()


def _check_n_rhat(n_Rhat):
    if n_Rhat is None:
        return None
    if not isinstance(n_Rhat, (int, np.integer)) or isinstance(n_Rhat, bool) or n_Rhat < 1:
        raise ValueError(
            f"`n_Rhat` must be an integer >= 2 (or None to skip Rhat); got {n_Rhat!r}."
        )
    return int(n_Rhat) if n_Rhat >= 2 else None  # mitml: Rhat only when n.Rhat >= 2


def summarize(
    par: Mapping[str, Any],
    n_iter: int,
    n_Rhat: int | None = 3,
    goodness_of_appr: bool = False,
    autocorrelation: bool = False,
    chains_axis: int | None = None,
    param_names: Mapping | None = None,
    group_labels: list | None = None,
    settings: Mapping | None = None,
    missing_rates: pd.DataFrame | None = None,
) -> ChainSummary:
    """Convergence diagnostics of the imputation phase (mitml's ``summary.mitml``).

    Parameters
    ----------
    par : dict block -> array
        ``"beta"``, ``"beta2"``, ``"psi"``, ``"sigma"`` (any subset) -> draws laid out like
        mitml's ``par.imputation``: (rows, cols, iterations, groups), or with a trailing chains
        axis (rows, cols, iterations, groups, chains). Only the lower triangle of ``psi`` and of
        each stacked ``sigma`` matrix is summarised.
    n_iter : int
        Iterations between imputations (``k``: autocorrelations are reported at 1, k, 2k).
    n_Rhat : int or None, default 3
        Segments per chain for Rhat; None (or 1) skips Rhat.
    goodness_of_appr, autocorrelation : bool, default False
        Also compute these (mitml's defaults).
    chains_axis : int, optional
        Axis of the chains when it is not the fifth.
    param_names : dict block -> (row names, column names), optional; labels the parameters.
    group_labels : list, optional; labels of the groups axis.
    settings : dict, optional; shown in the printout (n_burn, m, chains, ...).
    missing_rates : DataFrame, optional; shown in the printout.

    Returns
    -------
    ChainSummary

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> s = summarize({"beta": rng.normal(size=(2, 1, 300, 1))}, n_iter=10, autocorrelation=True)
    >>> s.rhat.shape[0]
    2
    """
    if not isinstance(par, Mapping):
        raise TypeError(f"`par` must be a dict block -> array; got {type(par).__name__}.")
    check_positive_int(n_iter, "n_iter")
    n_Rhat = _check_n_rhat(n_Rhat)
    total = 0
    for b in BLOCKS:
        if b in par and par[b] is not None:
            a = _as_chains(par[b], b, chains_axis)
            total += len(_block_series(a[:, :, :1], b)[0])
    tab = parameter_table(
        par,
        int(n_iter),
        n_Rhat,
        bool(goodness_of_appr),
        bool(autocorrelation),
        chains_axis,
        param_names,
        group_labels,
    )
    key = ["block", "row", "col", "group", "parameter"]

    def part(cols):
        cols = [c for c in cols if c in tab]
        return tab[key + cols] if cols else None

    st = dict(settings or {})
    st.setdefault("n_iter", int(n_iter))
    st["n_Rhat"] = n_Rhat
    st.setdefault(
        "n_groups",
        len(group_labels)
        if group_labels
        else int(np.asarray(next(iter(v for v in par.values() if v is not None))).shape[3]),
    )
    st["n_dropped"] = total - len(tab)
    return ChainSummary(
        table=tab,
        rhat=part(["Rhat", "Rhat_chains"]) if n_Rhat is not None else None,
        goodness=part(["SDprop", "n_eff"]) if goodness_of_appr else None,
        autocorrelation=part(["lag-1", "lag-k", "lag-2k"]) if autocorrelation else None,
        missing_rates=missing_rates,
        settings=st,
    )


def _missing_rates(data: Any) -> pd.DataFrame | None:
    if data is None:
        return None
    df = as_pandas(data)
    return pd.DataFrame(
        [df.isna().mean().to_numpy() * 100], index=["MD%"], columns=[str(c) for c in df.columns]
    )


def _imp_chains(imp: Any, phase: str) -> tuple[dict, bool]:
    """(dict block -> 5-axis array, True) from the chains attribute, or the 4-axis first chain."""
    ch = getattr(imp, f"par_chains_{phase}", None)
    if ch:
        return {b: v for b, v in ch.items() if v is not None}, True
    par = getattr(imp, f"par_{phase}", None)
    if par is None:
        raise TypeError(
            f"`imp` must be an ImputationResult (with par_{phase}); got {type(imp).__name__}."
        )
    return {b: v for b, v in par.items() if v is not None}, False


def imputation_summary(
    imp: Any, n_Rhat: int | None = 3, goodness_of_appr: bool = False, autocorrelation: bool = False
) -> ChainSummary:
    """mitml's ``summary`` of an imputation run: Rhat (split chains, and between chains when
    several ran), optional autocorrelation and goodness of approximation, missing % per variable.

    Parameters
    ----------
    imp : ImputationResult
        Anything with ``par_imputation`` (or ``par_chains_imputation``) and ``settings``
        (``n_iter``, ``n_burn``, ``m``, ``chains``); ``incomplete``, ``param_names``,
        ``group_labels``, ``targets``, ``formula`` and ``method`` are used when present.
    n_Rhat, goodness_of_appr, autocorrelation : see :func:`summarize`.

    Returns
    -------
    ChainSummary; ``print`` it for mitml's layout.

    Examples
    --------
    >>> s = imp.summary(autocorrelation=True)  # doctest: +SKIP
    >>> s.rhat  # doctest: +SKIP
    """
    par, _ = _imp_chains(imp, "imputation")
    st = dict(getattr(imp, "settings", {}) or {})
    if "n_iter" not in st:
        raise ValueError("`imp.settings` must hold 'n_iter' (iterations between imputations).")
    groups = list(getattr(imp, "group_labels", []) or [])
    info = {k: st.get(k) for k in ("n_burn", "n_iter", "m", "chains", "cluster") if k in st}
    info["chains"] = int(st.get("chains", 1) or 1)
    info["n_groups"] = len(groups) if groups else 1
    info["targets"] = list(getattr(imp, "targets", []) or [])
    info["method"] = getattr(imp, "method", None)
    info["levels"] = (getattr(imp, "extra", None) or {}).get("levels")
    f = getattr(imp, "formula", None)
    info["formula"] = None if f is None else (f if isinstance(f, str) else str(f))
    return summarize(
        par,
        int(st["n_iter"]),
        n_Rhat=n_Rhat,
        goodness_of_appr=goodness_of_appr,
        autocorrelation=autocorrelation,
        param_names=getattr(imp, "param_names", None),
        group_labels=groups if groups and groups != [None] else None,
        settings=info,
        missing_rates=_missing_rates(getattr(imp, "incomplete", None)),
    )
