"""The run of :func:`~pymitml.samplers.fcs.fcs_impute` with several cluster variables."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._chain import make_fcs_chain
from ._mlcat import MlPolr, MlPolyreg
from ._mlmodel import MlMethod, ml_design, ml_start_values
from ._mlspec import prepare_ml
from ._result import run_fcs_chains
from ._spec import check_post

__all__ = ["fcs_impute_ml"]


def _make(spec, t, design, method, sweeps):
    if method == "ml.polr":
        return MlPolr(spec, t, design, method, sweeps)
    if method == "ml.polyreg":
        return MlPolyreg(spec, t, design, method, sweeps)
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
    lv = spec.levels
    assert lv is not None
    random = {
        spec.names[t]: " + ".join(tm.text for tm in mt.terms) for t, mt in spec.models.items()
    }
    sweeps = run["sweeps"]
    return run_fcs_chains(
        lambda s: make_fcs_chain(spec, designs, s, sweeps, _make, ml_start_values),
        spec,
        codebook,
        designs,
        run,
        {"levels": lv, "random": random},
    )
