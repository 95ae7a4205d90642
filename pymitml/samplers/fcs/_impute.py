"""fcs_impute: multilevel chained equations with mice's methods and semantics."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..._validation import check_positive_int
from ...result import ImputationResult
from ._chain import make_fcs_chain, start_values
from ._design import target_design
from ._result import run_fcs_chains
from ._spec import check_post, prepare_fcs

__all__ = ["fcs_impute"]


def fcs_impute(
    data: Any,
    *,
    cluster: str | list[str] | None = None,
    method: dict[str, str] | str | None = None,
    random: dict[str, str] | None = None,
    levels: dict[str, Any] | None = None,
    crossed: bool = False,
    cluster_means: bool = True,
    predictor_matrix: Any = None,
    visit_sequence: Any = None,
    where: Any = None,
    m: int = 5,
    maxit: int = 5,
    seed=None,
    long_chain: bool = False,
    thin: int = 10,
    sweeps: int = 1,
    post: dict | None = None,
    n_threads: int | None = None,
    progress: bool | None = None,
    client: Any = None,
) -> ImputationResult:
    """Multiple imputation by chained equations with two-level methods (R's ``mice``).

    Parameters
    ----------
    data : pandas or polars DataFrame; rows in any order. Numeric columns are modelled as
        numbers, categorical / string / bool columns as categories.
    cluster : the cluster id (any type; never missing). Without it only single-level methods
        are available. It may also be given as the -2 column of ``predictor_matrix``. A list
        of cluster variables (outermost first when nested, e.g. ``["school", "class"]``; an
        entry may be an interaction ``"school:class"``) imputes three-level or
        cross-classified data: every variable at its own level (:func:`pymitml.detect_levels`)
        with methods ``"ml.lmer"`` (numeric), ``"ml.pmm"`` (predictive mean matching),
        ``"ml.bin"`` (binary, probit), ``"ml.polr"`` (ordered categories, cumulative probit)
        and ``"ml.polyreg"`` (unordered categories, sequential probit), see
        docs/guide/three_level.md.
    random : several cluster variables only: ``{column: lme4 random terms}``, e.g.
        ``{"y": "(1 + x|school) + (1|school:class)"}``. Default: a random intercept for every
        factor above the column's level (nested) or for every factor (a crossed level-1
        column).
    levels : several cluster variables only: ``{column: factor name or level number}`` to
        declare a column's level (checked against the data) instead of detecting it.
    crossed : several cluster variables only: the factors are crossed, not nested.
    cluster_means : several cluster variables only: add every predictor's means over the groups
        of each factor above the target's level (default True).
    method : ``{column: method}`` (other columns get their default) or one method for every
        incomplete column, with mice's names:

        - ``"2l.pan"``: homoscedastic linear mixed model (pan's prior, as mice sets it);
        - ``"2l.norm"``: cluster-specific residual variances (van Buuren 2011);
        - ``"2l.lmer"``: the model of 2l.pan (mice approximates its posterior from an lmer fit;
          this draws it exactly);
        - ``"2l.pmm"``: predictive mean matching on the mixed model's prediction. Base mice
          (3.15) has no 2l.pmm (the add-on packages miceadds / micemd have one; they are not
          used here), so it has no R reference: it is checked by simulation recovery of fixed
          effects and variance components (tests/test_fcs.py);
        - ``"2l.bin"``: binary, a probit mixed model drawn by latent normals (mice fits a
          logistic mixed model with glmer and draws from a normal approximation; the links
          differ, the imputations agree within Monte Carlo error, see tests/test_fcs_r.py);
        - ``"polr"``: mice's mice.impute.polr: the proportional-odds (cumulative logit) model of
          MASS::polr fitted by maximum likelihood to the observed rows plus mice's augmented
          rows (against perfect prediction), each cell drawn from its fitted category
          probabilities (like mice, no draw of the parameters); a failed fit falls back to
          the multinomial logit, as in mice;
        - ``"polyreg"``: mice's mice.impute.polyreg: the multinomial logit of nnet::multinom,
          fitted and drawn the same way;
        - ``"2l.polr"`` / ``"2l.polyreg"`` (not in mice): K categories as K - 1 continuation-
          ratio probit steps P(y = k | y >= k), each with its own fixed and random effects
          drawn by latent normals (checked by simulation recovery);
        - ``"2lonly.norm"``, ``"2lonly.pmm"``, ``"2lonly.mean"``: level-2 variables, one value
          per cluster from cluster means of the predictors;
        - ``"norm"``, ``"norm.nob"``, ``"pmm"``, ``"logreg"``: mice's single-level methods;
        - ``""`` (not imputed) and passive formulas ``"~ I(a / b)"``.

        Defaults: see :func:`~pymitml.samplers.fcs._columns.default_method`; the result shows
        what ran.
    predictor_matrix : pandas DataFrame (rows = targets, columns = predictors; entries not
        given are 0) or a square array in column order, with mice's codes: 0 unused, 1 fixed
        effect, 2 fixed effect + random slope, 3 fixed effect + cluster mean, 4 fixed effect +
        random slope + cluster mean, -2 the cluster id. Default:
        :func:`make_predictor_matrix`. 2l methods always have a random intercept. Unlike
        mice's 2l.norm, which drops code-1 predictors (it models random coefficients only),
        every 2l method here uses code-1 predictors as fixed effects; with codes 2 only the
        models are the same.
    visit_sequence : list of column names, or ``"roman"`` (column order, the default),
        ``"arabic"``, ``"monotone"``, ``"revmonotone"``.
    where : boolean array or DataFrame of the data's shape: cells to impute (default: the
        missing cells).
    m : imputations. maxit : iterations of each chain (mice's scheme: m chains of maxit).
    seed : int, numpy Generator or None; the same seed gives the same imputations whatever
        ``n_threads`` is.
    long_chain : one chain instead of m: ``maxit`` burn-in iterations, then an imputation every
        ``thin`` iterations.
    sweeps : Gibbs sweeps of a 2l model's parameters per visit (kept between visits).
    post : mice's ``post``: ``{column: f}`` with f mapping the column's imputed values to new
        ones after every visit, or ``{column: (low, high)}`` to squeeze them into a range.
    n_threads : worker threads for the chains. progress : progress bar.
    client : a ``dask.distributed.Client``: the chains run as tasks on its cluster (same
        imputations as a local run; needs ``pymitml[dask]``).

    Notes
    -----
    Agreement with R's mice 3.15 (tests/test_fcs_r.py, references in r_compat/): ``2l.pan``,
    ``2l.norm``, ``2l.bin``, ``pmm``, ``norm``, ``2lonly.pmm``, ``polr`` and ``polyreg``
    agree with mice within Monte Carlo error (pooled analyses, imputed means, variances and
    category shares; ``2lonly.mean`` exactly). polr / polyreg fits equal MASS::polr /
    nnet::multinom on mice's augmented data to 1e-6 relative; ordered-factor predictors are
    coded by R's ``contr.poly`` in their augmented rows, as in mice's design matrix. The 2l
    methods keep their parameters between visits (one Gibbs sweep per visit, ``sweeps``)
    where mice restarts its samplers at each visit: same stationary distribution, lower cost.
    ``2l.pmm``, ``2l.polr`` and ``2l.polyreg`` have no counterpart in base mice.

    Returns
    -------
    ImputationResult
        ``.complete()`` gives the m completed data sets (observed cells, row order, index,
        dtypes and categories unchanged); ``.chain_mean`` / ``.chain_var`` are mice's
        chainMean / chainVar: (variable, iteration, chain); ``.methods`` the methods used.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pymitml as pm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(20), 10)
    >>> x = rng.normal(size=200)
    >>> y = x + rng.normal(size=20)[g] + rng.normal(size=200)
    >>> y[::7] = np.nan
    >>> df = pd.DataFrame({"g": g, "x": x, "y": y})
    >>> imp = pm.fcs_impute(df, cluster="g", m=2, maxit=3, seed=1)
    >>> imp.methods["y"]
    '2l.pan'
    """
    m = check_positive_int(m, "m")
    maxit = check_positive_int(maxit, "maxit")
    thin = check_positive_int(thin, "thin")
    sweeps = check_positive_int(sweeps, "sweeps")
    run = dict(
        m=m,
        maxit=maxit,
        seed=seed,
        long_chain=long_chain,
        thin=thin,
        sweeps=sweeps,
        n_threads=n_threads,
        progress=progress,
        client=client,
    )
    if isinstance(cluster, (list, tuple)) or random is not None or levels is not None or crossed:
        if cluster is None:
            raise ValueError(
                "`random`, `levels` and `crossed` need the cluster variables: pass "
                "cluster=['school', 'class'] (outermost first)."
            )
        from ._mlimpute import fcs_impute_ml

        model = dict(
            cluster=[cluster] if isinstance(cluster, str) else list(cluster),
            crossed=bool(crossed),
            levels=levels,
            random=random,
            method=method,
            predictor_matrix=predictor_matrix,
            visit_sequence=visit_sequence,
            where=where,
            cluster_means=cluster_means,
            post=post,
        )
        return fcs_impute_ml(data, model, run)
    spec, codebook = prepare_fcs(
        data,
        cluster=cluster,
        method=method,
        predictor_matrix=predictor_matrix,
        visit_sequence=visit_sequence,
        where=where,
    )
    check_post(post, spec)
    cur0 = start_values(spec, np.random.default_rng(0))
    designs = {
        t: target_design(
            spec,
            t,
            cur0,
            spec.methods[spec.names[t]].startswith("2lonly."),
            spec.methods[spec.names[t]].startswith("2l."),
        )
        for t in set(spec.visit)
        if t not in spec.passive
    }
    J = len(spec.start) - 1
    for t, d in designs.items():
        q = len(d.z_names)
        if spec.methods[spec.names[t]] == "2l.norm" and J <= 2 * q:
            raise ValueError(
                f"method '2l.norm' of '{spec.names[t]}' has {q} random effects but only {J} "
                f"clusters (its random-effect covariance needs more than {2 * q}); use fewer "
                "random slopes (code 2/4) or '2l.pan'."
            )
    return run_fcs_chains(
        lambda s: make_fcs_chain(spec, designs, s, sweeps), spec, codebook, designs, run
    )
