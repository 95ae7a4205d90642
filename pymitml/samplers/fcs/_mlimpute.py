"""The run of :func:`~pymitml.samplers.fcs.fcs_impute` with several cluster variables."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ..._validation import imputation_plan
from ...result import RunSettings
from ..driver import assemble_result, run_chains, stack_chains
from ._chain import make_fcs_chain
from ._mlmodel import MlMethod, ml_design, ml_start_values
from ._mlspec import prepare_ml
from ._spec import check_post

__all__ = ["fcs_impute_ml"]


def _make(spec, t, design, method, sweeps):
    return MlMethod(spec, t, design, method, sweeps)


def fcs_impute_ml(data: Any, model: dict, run: dict):
    """``model``: cluster, crossed, levels, random, method, predictor_matrix, visit_sequence,
    where, cluster_means, post; ``run``: m, maxit, seed, long_chain, thin, sweeps, n_threads,
    progress (checked by the caller)."""
    post = model.pop("post")
    spec, codebook = prepare_ml(data, **model)
    check_post(post, spec)
    cur0 = ml_start_values(spec, np.random.default_rng(0))
    designs = {t: ml_design(spec, t, cur0) for t in spec.models}
    m, maxit = run["m"], run["maxit"]
    if run["long_chain"]:
        n_burn, n_iter, per_chain = maxit, run["thin"], [m]
    else:
        n_burn, n_iter, per_chain = 0, maxit, imputation_plan(m, m)
    sweeps = run["sweeps"]
    out = run_chains(
        lambda g, c, s: make_fcs_chain(spec, designs, s, sweeps, _make, ml_start_values),
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
    lv = spec.levels
    assert lv is not None
    random = {
        spec.names[t]: " + ".join(tm.text for tm in mt.terms) for t, mt in spec.models.items()
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
            "levels": lv,
            "random": random,
        },
        methods={c.name: spec.methods[c.name] for c in spec.columns},
        predictor_matrix=pd.DataFrame(spec.predictors, index=spec.names, columns=spec.names),
        visit_sequence=[spec.names[t] for t in spec.visit],
        chain_mean=both["mean"],
        chain_var=both["var"],
    )
