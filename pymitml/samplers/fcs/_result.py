"""One fcs run's chains and its ImputationResult (shared by the one- and several-cluster paths)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from ..._validation import imputation_plan
from ...result import ImputationResult, RunSettings
from ..driver import Chain, assemble_result, run_chains, stack_chains

__all__ = ["run_fcs_chains"]


def run_fcs_chains(
    make_chain: Callable[[int], Chain],
    spec: Any,
    codebook: Any,
    designs: dict,
    run: dict,
    extra: dict | None = None,
) -> ImputationResult:
    """Run the chains of ``make_chain(seed)`` with ``run``'s m, maxit, long_chain, thin, seed,
    n_threads, progress and client, and assemble the result (``extra``: more result fields)."""
    m, maxit = run["m"], run["maxit"]
    if run["long_chain"]:
        n_burn, n_iter, per_chain = maxit, run["thin"], [m]
    else:
        n_burn, n_iter, per_chain = 0, maxit, imputation_plan(m, m)
    out = run_chains(
        lambda g, c, s: make_chain(s),
        [None],
        n_burn=n_burn,
        n_iter=n_iter,
        per_chain=per_chain,
        seed=run["seed"],
        n_threads=run["n_threads"],
        progress=run["progress"],
        sampler="fcs_impute",
        client=run.get("client"),
    )
    targets = spec.targets
    names = [spec.names[t] for t in targets]
    positions = [spec.columns[t].position for t in targets]
    seed = run["seed"]
    settings = RunSettings(
        n_burn=n_burn,
        n_iter=n_iter,
        m=m,
        chains=len(per_chain),
        cluster=spec.cluster,
        seed=seed if isinstance(seed, int) else None,
    )
    both = {
        b: np.concatenate(
            [stack_chains(out, [b], "burnin")[b], stack_chains(out, [b], "imputation")[b]], axis=2
        )[:, 0, :, 0, :]
        for b in ("mean", "var")
    }
    return assemble_result(
        out,
        blocks=("mean", "var"),
        group_rows=[np.arange(len(spec.order))],
        target_columns=positions,
        method="fcs",
        formula=None,
        targets=names,
        prior=[{}],
        settings=settings,
        codebook=codebook,
        param_names={"mean": (names, ["mean"]), "var": (names, ["var"])},
        group_labels=[None],
        extra={
            "target_positions": positions,
            "designs": {spec.names[t]: d for t, d in designs.items()},
            **(extra or {}),
        },
        methods={c.name: spec.methods[c.name] for c in spec.columns},
        predictor_matrix=pd.DataFrame(spec.predictors, index=spec.names, columns=spec.names),
        visit_sequence=[spec.names[t] for t in spec.visit],
        chain_mean=both["mean"],
        chain_var=both["var"],
    )
