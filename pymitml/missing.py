"""The missing-data overview before imputing (mice's ``md.pattern``, WinMICE's per-level rates)
and a complete-case analysis to put beside the pooled one (as Stat-JR reports both).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._frame import as_pandas, check_columns, library_of

__all__ = ["CompleteCaseResult", "MissingPattern", "complete_case_analysis", "missing_pattern"]


@dataclass(frozen=True)
class MissingPattern:
    """Missing-data patterns and rates.

    Attributes
    ----------
    patterns : DataFrame
        One row per distinct pattern, ordered like mice's ``md.pattern``: the variables as columns
        sorted by their number of missing values (ascending, ties in data order), 1 = observed,
        0 = missing; then ``count`` (rows with the pattern) and ``n_missing`` (variables missing
        in the pattern). Rows are sorted by the missingness indicators.
    rates : DataFrame
        One row per variable (data order): ``level`` (1 or 2; 2 when the variable is constant
        within every cluster), ``n_missing`` and ``pct_missing`` over rows, and for every
        variable ``clusters_missing`` / ``pct_clusters_missing``: clusters in which it is never
        observed (for a level-2 variable, its missing rate at level 2). No cluster: level 1 and
        the cluster columns are absent.
    n_rows, n_complete : rows, and rows without any missing value among the variables.
    n_clusters : number of clusters (None without ``cluster``).
    cluster : the cluster column or None.
    """

    patterns: pd.DataFrame
    rates: pd.DataFrame
    n_rows: int
    n_complete: int
    n_clusters: int | None
    cluster: str | None

    def table(self) -> pd.DataFrame:
        """mice's ``md.pattern`` matrix: patterns (index = counts), last column the number of
        missing variables, last row the missing counts per variable and in total."""
        p = self.patterns
        vars_ = [c for c in p.columns if c not in ("count", "n_missing")]
        body = p[vars_ + ["n_missing"]].copy()
        body.index = p["count"].astype(str).to_numpy()
        miss = self.rates.set_index("variable").loc[vars_, "n_missing"].to_numpy()
        total = pd.DataFrame(
            [list(miss) + [int(miss.sum())]], columns=vars_ + ["n_missing"], index=[""]
        )
        return pd.concat([body, total]).rename(columns={"n_missing": ""})

    def __str__(self) -> str:
        lines = ["", "Missing-data patterns (1 = observed, 0 = missing):", ""]
        lines.append(self.table().to_string())
        lines += [
            "",
            f"{self.n_rows} rows, {self.n_complete} complete "
            f"({100 * self.n_complete / max(self.n_rows, 1):.1f}%), "
            f"{len(self.patterns)} patterns"
            + (f", {self.n_clusters} clusters ('{self.cluster}')" if self.cluster else "")
            + ".",
        ]
        lines += ["", "Missing data per variable:"]
        r = self.rates.copy()
        for lev in sorted(r["level"].unique()):
            sub = r[r["level"] == lev]
            lines.append("")
            lines.append(f"Level {lev}:" if self.cluster else "Variables:")
            show = pd.DataFrame(
                {
                    "missing": sub["n_missing"].to_numpy(),
                    "MD%": [f"{v:.1f}" for v in sub["pct_missing"]],
                },
                index=sub["variable"].to_numpy(),
            )
            if self.cluster is not None:
                show["clusters missing"] = sub["clusters_missing"].to_numpy()
                show["cluster MD%"] = [f"{v:.1f}" for v in sub["pct_clusters_missing"]]
            lines.append(show.to_string())
        lines.append("")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return self.__str__()


def _levels(df: pd.DataFrame, cluster: str, cols: Sequence[str]) -> dict:
    """2 for columns with at most one distinct observed value in every cluster (and at least one
    cluster with two observed rows), else 1."""
    g = df.groupby(cluster, sort=False, observed=True, dropna=False)[list(cols)]
    nun = g.nunique(dropna=True).max()
    cnt = g.count().max()
    return {c: 2 if (nun[c] <= 1 and cnt[c] >= 2) else 1 for c in cols}


def missing_pattern(
    data: Any,
    cluster: str | None = None,
    columns: Sequence[str] | None = None,
    level2: Sequence[str] | None = None,
) -> MissingPattern:
    """The missing-data pattern table and per-variable missing rates split by level.

    Parameters
    ----------
    data : pandas or polars DataFrame
    cluster : str, optional
        Cluster id column. With it, variables constant within every cluster are level 2 and
        rates are also given over clusters; the cluster column itself is left out.
    columns : list of str, optional
        Variables to describe (default: all columns except ``cluster``).
    level2 : list of str, optional
        Force these variables to level 2 (detection otherwise).

    Returns
    -------
    MissingPattern; ``print`` it for the overview, ``.table()`` gives mice's matrix.

    Examples
    --------
    >>> df = pd.DataFrame({"g": [1, 1, 2, 2], "x": [1.0, None, 3, 4], "z": [5.0, 5, None, None]})
    >>> mp = missing_pattern(df, cluster="g")
    >>> mp.patterns["count"].tolist()
    [1, 2, 1]
    >>> mp.rates.set_index("variable")["level"].to_dict()
    {'x': 1, 'z': 2}
    """
    library_of(data)
    df = as_pandas(data)
    if cluster is not None:
        if not isinstance(cluster, str):
            raise TypeError(f"`cluster` must be a column name (str); got {type(cluster).__name__}.")
        check_columns(df, [cluster], "`cluster` column")
        if df[cluster].isna().any():
            raise ValueError(
                f"the cluster column '{cluster}' has {int(df[cluster].isna().sum())} missing "
                "values; drop or fill those rows first."
            )
    if columns is None:
        columns = [c for c in df.columns if c != cluster]
    else:
        if isinstance(columns, str):
            raise TypeError(
                "`columns` must be a list of column names; got a single string. "
                f"Use columns=[{columns!r}]."
            )
        columns = list(columns)
        check_columns(df, columns, "`columns`")
    if not columns:
        raise ValueError("`columns` is empty; name at least one variable.")
    R = df[columns].isna().to_numpy()
    nmis = R.sum(0)
    order = np.argsort(nmis, kind="stable")
    Rs = R[:, order]
    pats, counts = np.unique(Rs, axis=0, return_counts=True)  # lexicographic, False < True
    cols_sorted = [columns[k] for k in order]
    patterns = pd.DataFrame((~pats).astype(np.int64), columns=cols_sorted)
    patterns["count"] = counts.astype(np.int64)
    patterns["n_missing"] = pats.sum(1).astype(np.int64)
    n = len(df)
    rates = pd.DataFrame(
        {
            "variable": columns,
            "level": 1,
            "n_missing": nmis.astype(np.int64),
            "pct_missing": 100.0 * nmis / max(n, 1),
        }
    )
    n_clusters = None
    if cluster is not None:
        lev = _levels(df, cluster, columns)
        if level2 is not None:
            check_columns(df, list(level2), "`level2`")
            lev.update({c: 2 for c in level2 if c in lev})
        rates["level"] = [lev[c] for c in columns]
        codes = pd.factorize(df[cluster])[0]
        n_clusters = int(codes.max() + 1) if n else 0
        obs = np.zeros((n_clusters, len(columns)))
        np.add.at(obs, codes, (~R).astype(np.float64))
        cm = (obs == 0).sum(0)
        rates["clusters_missing"] = cm.astype(np.int64)
        rates["pct_clusters_missing"] = 100.0 * cm / max(n_clusters, 1)
    return MissingPattern(
        patterns=patterns,
        rates=rates,
        n_rows=n,
        n_complete=int((~R.any(1)).sum()),
        n_clusters=n_clusters,
        cluster=cluster,
    )


@dataclass(frozen=True)
class CompleteCaseResult:
    """A complete-case analysis: ``result`` of the analysis on the rows complete in ``columns``."""

    result: Any
    n_used: int
    n_dropped: int
    columns: list

    def __repr__(self) -> str:
        return (
            f"<CompleteCaseResult: {self.n_used} complete rows used, {self.n_dropped} dropped "
            f"(incomplete in {self.columns}); .result = {type(self.result).__name__}>"
        )


def complete_case_analysis(
    data: Any, func: Callable[[Any], Any], columns: Sequence[str] | None = None
) -> CompleteCaseResult:
    """Run ``func`` on the rows without missing values in ``columns`` (listwise deletion), to
    report beside the pooled analysis.

    Parameters
    ----------
    data : pandas or polars DataFrame (the incomplete data, e.g. ``imp.incomplete``).
    func : callable taking a DataFrame of the same library, e.g.
        ``lambda d: pm.lmer("y ~ x + (1|g)", d)``.
    columns : list of str, optional
        The variables the analysis uses (default: all columns).

    Returns
    -------
    CompleteCaseResult with ``result``, ``n_used``, ``n_dropped``, ``columns``.
    """
    lib = library_of(data)
    if not callable(func):
        raise TypeError(
            f"`func` must be callable (a function of a DataFrame); got {type(func).__name__}."
        )
    df = as_pandas(data)
    if columns is None:
        columns = list(df.columns)
    else:
        if isinstance(columns, str):
            raise TypeError(
                f"`columns` must be a list of column names; got a string. Use [{columns!r}]."
            )
        columns = list(columns)
        check_columns(df, columns, "`columns`")
    keep = ~df[columns].isna().any(axis=1).to_numpy()
    if lib == "pandas":
        sub = data.loc[keep]
    else:
        sub = data.filter(keep.tolist())
    return CompleteCaseResult(
        result=func(sub), n_used=int(keep.sum()), n_dropped=int((~keep).sum()), columns=columns
    )
