"""ImputationResult: what an imputation run returns (mitml's class ``mitml``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from ._frame import Codebook
from .mitml_list import MitmlList

__all__ = ["ImputationResult", "RunSettings"]


@dataclass(frozen=True)
class RunSettings(Mapping):
    """How a sampler was run; typed fields, and read-only dict access (``settings["n_burn"]``,
    ``.get``, ``dict(settings)``) as before.

    Attributes
    ----------
    n_burn, n_iter, m, chains : burn-in iterations, iterations between imputations, imputations,
        chains.
    keep_chains : ``"full"`` or ``"diagonal"``.
    group, cluster : the grouping and cluster columns (None when absent).
    seed : the integer seed if one was given, else None.
    random_L1 : jomo's random_L1 (None for samplers without it; then not a key).
    """

    n_burn: int
    n_iter: int
    m: int
    chains: int
    keep_chains: str = "full"
    group: str | None = None
    cluster: str | None = None
    seed: int | None = None
    random_L1: str | None = None

    def _keys(self) -> list[str]:
        return [
            f.name for f in fields(self) if not (f.name == "random_L1" and self.random_L1 is None)
        ]

    def __getitem__(self, key: str):
        if key in self._keys():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    @classmethod
    def coerce(cls, value):
        """``value`` as RunSettings when it is a mapping of exactly these keys (n_burn, n_iter, m
        and chains required); any other mapping is returned unchanged."""
        if isinstance(value, cls) or not isinstance(value, Mapping):
            return value
        names = {f.name for f in fields(cls)}
        if set(value) <= names and {"n_burn", "n_iter", "m", "chains"} <= set(value):
            return cls(**value)
        return value


@dataclass(frozen=True, eq=False)
class ImputationResult:
    """The chains and the draws of an imputation run.

    Attributes
    ----------
    method : ``"pan"`` or ``"jomo"``.
    formula : the model formula(s) as given (or built from ``type``).
    targets : imputed columns, in model order.
    prior : the priors used (mitml's names: a, Binv, c, Dinv; one dict per group).
    settings : :class:`RunSettings` (n_burn, n_iter, m, chains, keep_chains, group, cluster, seed;
        also readable as a dict).
    par_burnin, par_imputation : dict block -> array (rows, cols, iterations, groups) laid out like
        mitml's ``par.burnin`` / ``par.imputation`` (first chain). Blocks: ``beta`` (fixed effects x
        targets), ``psi`` (random effects, target-major), ``sigma`` (level-1 covariance).
    par_chains_burnin, par_chains_imputation : the same with a trailing chains axis.
    replacement : (cells, m) imputed values of the missing cells (mitml's replacement.mat).
    index : (cells, 2) int array: 0-based row position and data-column position of each cell.
    codebook : how to rebuild completed data in the user's library.
    param_names : block -> (row names, column names).
    group_labels : labels of the imputation groups ([None] without ``group``).
    chain_mean, chain_var : chained equations (``fcs_impute``) only: mice's chainMean /
        chainVar, the mean and variance of each imputed variable's imputed cells after every
        iteration, (variable, iteration, chain); None for the joint models.
    methods : chained equations only: the method of every column (mice's ``method``).
    predictor_matrix : chained equations only: the predictor matrix used (DataFrame).
    visit_sequence : chained equations only: the columns in the order they were visited.
    """

    method: str
    formula: Any
    targets: list[str]
    prior: list[dict]
    settings: RunSettings | dict
    par_burnin: dict
    par_imputation: dict
    par_chains_burnin: dict
    par_chains_imputation: dict
    replacement: np.ndarray
    index: np.ndarray
    codebook: Codebook = field(repr=False)
    param_names: dict = field(default_factory=dict)
    group_labels: list = field(default_factory=lambda: [None])
    extra: dict = field(default_factory=dict)
    chain_mean: np.ndarray | None = field(default=None, repr=False)
    chain_var: np.ndarray | None = field(default=None, repr=False)
    methods: dict | None = None
    predictor_matrix: Any = field(default=None, repr=False)
    visit_sequence: list | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "settings", RunSettings.coerce(self.settings))

    @property
    def m(self) -> int:
        return int(self.replacement.shape[1])

    @property
    def incomplete(self):
        """The incomplete data (pandas or polars, like the input; missing codes as missing)."""
        return self.codebook.incomplete

    @property
    def index_mat(self) -> np.ndarray:
        """mitml's 1-based ``index.mat`` (row, column)."""
        return self.index + 1

    def complete(
        self, which: int | Sequence[int] | str = "all", force_list: bool = False, lazy: bool = True
    ):
        """Completed data (mitml's ``mitmlComplete``).

        Parameters
        ----------
        which : ``"all"`` (a MitmlList of all m data sets), an imputation number 1..m (one DataFrame;
            0 gives the incomplete data), or a list of numbers (a MitmlList).
        force_list : return a MitmlList even for a single number.
        lazy : True (default): the MitmlList holds the observed data once and the replacement
            matrix, and builds each data set when it is used (memory: observed data +
            replacement matrix + the data set in use); False: all data sets are built now and
            held (warns, with the estimate, when they would take more than half the available
            memory).
        """
        m = self.m
        if isinstance(which, str):
            if which != "all":
                raise ValueError(
                    f"`which` must be 'all', an int in 0..{m} or a list of ints; got {which!r}."
                )
            idx = list(range(1, m + 1))
            single = False
        elif isinstance(which, (int, np.integer)):
            idx, single = [int(which)], not force_list
        else:
            idx, single = [int(i) for i in which], False
        bad = [i for i in idx if not 0 <= i <= m]
        if bad:
            raise ValueError(
                f"imputation number(s) {bad} out of range; choose from 0 (incomplete data) to {m}."
            )
        # codebook target j <-> data column position
        tpos = np.asarray(self.extra.get("target_positions", []), dtype=np.int64)
        lut = np.full(int(tpos.max()) + 1 if len(tpos) else 1, -1, dtype=np.int64)
        lut[tpos] = np.arange(len(tpos))
        cols = lut[self.index[:, 1]] if len(self.index) else np.zeros(0, np.int64)
        rows = self.index[:, 0]
        if single:
            src = MitmlList.from_imputation(self.codebook, rows, cols, self.replacement, idx)
            return src[0]
        out = MitmlList.from_imputation(
            self.codebook, rows, cols, self.replacement, idx, original=self.codebook.incomplete
        )
        out.imputation = self
        return out.materialize() if not lazy else out

    # diagnostics live in pymitml.diagnostics / pymitml.plots; these are the entry points
    def summary(self, **kwargs):
        """Convergence diagnostics like mitml's ``summary`` (Rhat, autocorrelation, missing %)."""
        from .diagnostics import imputation_summary

        return imputation_summary(self, **kwargs)

    def plot(self, path=None, **kwargs):
        """Trace, ACF and density plots per parameter block (see :func:`pymitml.plots.plot_chains`)."""
        from .plots import plot_chains

        return plot_chains(self, path, **kwargs)

    # interchange: the completed data sets (with the incomplete data as imputation 0)
    def to_stata(self, path, **kwargs):
        """``self.complete().to_stata(path, ...)``: one Stata .dta in mi flong style."""
        return self.complete().to_stata(path, **kwargs)

    def to_spss(self, path, **kwargs):
        """``self.complete().to_spss(path, ...)``: one .sav stacked by ``Imputation_`` plus a .sps."""
        return self.complete().to_spss(path, **kwargs)

    def to_mplus(self, stem, **kwargs):
        """``self.complete().to_mplus(stem, ...)``: Mplus TYPE=IMPUTATION files."""
        return self.complete().to_mplus(stem, **kwargs)

    def to_blimp(self, path, **kwargs):
        """``self.complete().to_blimp(path, ...)``: Blimp stacked or separate files."""
        return self.complete().to_blimp(path, **kwargs)

    def to_rds(self, path, **kwargs):
        """``self.complete().to_rds(path, ...)``: an R .rds holding a mitml.list (needs R)."""
        return self.complete().to_rds(path, **kwargs)

    def to_file(self, path, **kwargs):
        """``self.complete().to_file(path, ...)``: long CSV/parquet with an imputation column."""
        return self.complete().to_file(path, **kwargs)

    def __repr__(self) -> str:
        s = self.settings
        if self.methods is not None:  # chained equations: what ran for every column
            used = {k: v for k, v in self.methods.items() if v}
            return (
                f"<ImputationResult ({self.method}): m={self.m}, iterations={s['n_burn'] + s['n_iter'] * (self.m // s['chains'])}, "
                f"chains={s['chains']}, {len(self.index)} imputed cells; methods {used}>"
            )
        return (
            f"<ImputationResult ({self.method}): {self.formula!r}; m={self.m}, n_burn={s['n_burn']}, "
            f"n_iter={s['n_iter']}, chains={s['chains']}, {len(self.index)} missing cells>"
        )
