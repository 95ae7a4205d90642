"""model_impute: substantive-model-compatible (Blimp-style) multilevel imputation."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..._validation import check_run
from ...exceptions import ConvergenceWarning
from ...result import ImputationResult, RunSettings
from ..driver import assemble_result, run_chains, stack_chains
from ._chain import make_model_chain, parameter_names
from ._spec import ModelSpec, build_spec
from ._summary import posterior_table, psr_by_segment

__all__ = ["ModelImputationResult", "ModelSummary", "model_impute"]

#: PSR above this after burn-in is a ConvergenceWarning
PSR_LIMIT = 1.1


@dataclass(frozen=True, eq=False, repr=False)
class ModelImputationResult(ImputationResult):
    """:class:`~pymitml.result.ImputationResult` of :func:`model_impute`, with Blimp's output.

    Attributes (besides the base class's)
    -------------------------------------
    estimates : DataFrame indexed by (model, parameter): Median, StdDev, 2.5%, 97.5%, PSR, N_Eff
        of the draws after burn-in (all chains), for the focal, predictor and selection models,
        the focal model's ICC (random-intercept variance / (that + residual variance; 1 for a
        probit model)) and its variance shares "R2 fixed" (var(x'beta)) and "R2 random"
        (mean z' Psi z) of the total with the residual variance (Rights & Sterba 2019).
    acceptance : DataFrame per Metropolis-sampled variable (an ordinal variable: its thresholds'
        step): acceptance rate during burn-in and after it (tuned toward 0.5 during burn-in,
        frozen after), and the final proposal multiplier.
    psr_burnin : Blimp's table of the highest PSR at 20 checkpoints of the burn-in.
    draws : (parameters, iterations, chains) draws after burn-in (``draws_burnin`` likewise).
    models : the regressions of the factorisation, as text, in order.
    """

    @property
    def estimates(self) -> pd.DataFrame:
        return self.extra["estimates"]

    @property
    def acceptance(self) -> pd.DataFrame:
        return self.extra["acceptance"]

    @property
    def psr_burnin(self) -> pd.DataFrame:
        return self.extra["psr_burnin"]

    @property
    def draws(self) -> np.ndarray:
        return self.extra["draws"]

    @property
    def draws_burnin(self) -> np.ndarray:
        return self.extra["draws_burnin"]

    @property
    def models(self) -> list[str]:
        return self.extra["models"]

    def plot(self, path=None, parameters=None, burn_in: bool = True, **kwargs):
        """Trace plots of the draws (burn-in shaded, then the draws after it), one panel per
        parameter, one line per chain. ``parameters``: (model, parameter) tuples (default: the
        focal model's). Returns the figure (saved to ``path`` when given)."""
        import matplotlib.pyplot as plt

        idx = list(self.extra["parameter_index"])
        if parameters is None:
            focal = idx[0][0]
            parameters = [k for k in idx if k[0] == focal]
        missing = [k for k in parameters if tuple(k) not in idx]
        if missing:
            raise ValueError(f"`parameters` {missing} not among the estimates; choose from {idx}.")
        n = len(parameters)
        fig, axes = plt.subplots(n, 1, figsize=(7, 1.6 * n + 0.6), squeeze=False, sharex=True)
        nb = self.draws_burnin.shape[1]
        for ax, key in zip(axes[:, 0], parameters):
            r = idx.index(tuple(key))
            for c in range(self.draws.shape[2]):
                x = (
                    np.concatenate([self.draws_burnin[r, :, c], self.draws[r, :, c]])
                    if burn_in
                    else self.draws[r, :, c]
                )
                ax.plot(x, lw=0.5)
            if burn_in and nb:
                ax.axvspan(0, nb, color="grey", alpha=0.15, lw=0)
            ax.set_ylabel(f"{key[0]}: {key[1]}", fontsize=7)
        axes[-1, 0].set_xlabel("iteration")
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, **kwargs)
        return fig

    def summary(self, **kwargs) -> ModelSummary:
        """Blimp-like report: the models, the burn-in PSR table, the posterior summaries and
        the Metropolis acceptance rates (print it)."""
        return ModelSummary(
            self.models, self.psr_burnin, self.estimates, self.acceptance, dict(self.settings)
        )


@dataclass(frozen=True)
class ModelSummary:
    """What :meth:`ModelImputationResult.summary` returns; ``print`` it for the report."""

    models: list[str]
    psr_burnin: pd.DataFrame
    estimates: pd.DataFrame
    acceptance: pd.DataFrame
    settings: dict

    def __str__(self) -> str:
        s = self.settings
        parts = [
            "Model-based imputation (model_impute)",
            f"  burn-in {s['n_burn']}, iterations between imputations {s['n_iter']}, "
            f"imputations {s['m']}, chains {s['chains']}",
            "",
            "Models (factorisation, in order):",
            *[f"  {t}" for t in self.models],
            "",
            "Potential scale reduction (PSR) over the burn-in:",
            self.psr_burnin.to_string(float_format=lambda v: f"{v:.3f}")
            if len(self.psr_burnin)
            else "  (burn-in too short)",
            "",
            "Posterior summaries (after burn-in):",
            self.estimates.to_string(float_format=lambda v: f"{v:.3f}"),
            "",
            "Metropolis acceptance rates:",
            self.acceptance.to_string(float_format=lambda v: f"{v:.3f}")
            if len(self.acceptance)
            else "  (no Metropolis steps)",
        ]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return str(self)


def model_impute(
    data: Any,
    formula: str,
    *,
    predictors: Any = None,
    selection: Any = None,
    fixed: Any = None,
    ordinal: Any = None,
    delta: Any = None,
    cluster_means: str = "latent",
    auxiliary: Any = None,
    m: int = 20,
    n_burn: int = 5000,
    n_iter: int = 1000,
    chains: int = 2,
    seed=None,
    psi_scale: float = 1e-3,
    n_threads: int | None = None,
    progress: bool | None = None,
    verbose: bool = True,
    client: Any = None,
) -> ModelImputationResult:
    """Model-based multiple imputation (Blimp; Enders, Du & Keller 2020): the analysis model
    itself is part of the imputation model.

    The joint density is factored as focal model x factored regressions of the incomplete
    predictors x selection models. Every missing value is drawn from its full conditional, the
    product of every model's likelihood that involves it, so that random slopes, interactions
    and powers of incomplete variables are imputed compatibly with the analysis.

    Parameters
    ----------
    data : pandas or polars DataFrame.
    formula : the focal (analysis) model in lme4 grammar, e.g.
        ``"y ~ x1 + x2 + x1:x2 + I(x1^2) + w + (1 + x1 | cluster)"``: one cluster variable,
        random intercept and slopes of level-1 variables (complete or not), products ``a:b``,
        crossings ``a*b``, powers ``I(a^2)`` of any variables, level-2 predictors (columns
        constant within clusters), cluster means ``cmean(x)`` and cluster-mean-centred values
        ``cwc(x)`` of level-1 variables. Without a ``( | )`` term the model is single level.
        The response may be continuous, binary or ordinal (probit with latent responses).
    predictors : factored regressions of the incomplete predictors, e.g. ``["x1 + x2 ~ w"]``:
        ``x1 ~ x2 + w`` then ``x2 ~ w``, in the order given. Incomplete variables without one get
        a default model (most missing first; each regressed on the later ones and the complete
        focal predictors), printed when ``verbose``. Level-1 predictor models have a random
        intercept; level-2 models (one row per cluster) take level-2 predictors only.
    selection : ``{variable: "~ predictors"}``: probit model of the variable's missingness
        indicator (MNAR when the variable itself is among the predictors), e.g.
        ``{"y": "~ y + x1"}``; its likelihood enters the variable's full conditional.
    fixed : complete variables conditioned on (Blimp's FIXED). Complete focal predictors are
        conditioned on anyway; ``fixed`` adds complete variables to the default predictor models.
    ordinal : numeric columns to treat as ordinal (binary) categorical variables; pandas
        ordered categoricals and two-category columns are categorical without it. Other
        categorical columns (more than two unordered categories) are nominal: dummy-coded in
        the designs and, when incomplete (level 1 or level 2), imputed by a multinomial
        probit model.
    cluster_means : ``"latent"`` (default; Blimp's LATENT): ``cmean(x)`` is a latent variable
        mu_j with x_ij = mu_j + (level-1 terms of x's model) + e_ij and mu_j = (intercept +
        level-2 terms) + u_j, drawn by Metropolis steps whose target includes the focal model;
        ``cwc(x)`` = x_ij - mu_j. ``"observed"``: the cluster means of the current values (for
        an incomplete x they move with its imputations; each imputed value's full conditional
        then includes its whole cluster's focal likelihood).
    auxiliary : auxiliary variables (Blimp's auxiliary models), used by no analysis but related
        to the missingness: ``["v"]`` regresses v on every focal variable (the response too),
        ``["v ~ y + x"]`` on the ones given; level-1 models get a random intercept. Their
        likelihood enters the full conditionals of the variables on their right, so holes
        missing at random given v are imputed validly while the focal model stays as it is.
        An incomplete auxiliary variable is imputed from its model.
    delta : ``{variable: shift}``: pattern-mixture shift added to the variable's imputed values
        (tipping-point analyses; see :func:`delta_analysis`).
    m, n_burn, n_iter, chains : imputations; burn-in iterations; iterations between imputations;
        chains (m must be a multiple of chains; each chain draws m / chains imputations).
    seed : int, numpy Generator or None. Same seed, same data: same output whatever
        ``n_threads``.
    psi_scale : scale of the random-effect covariance prior, IW(q + 1, psi_scale * var(y) I).
    n_threads, progress : worker threads for the chains; progress bar.
    verbose : print the default predictor models.
    client : a ``dask.distributed.Client``: the chains run as tasks on its cluster (same
        imputations as a local run with the same seed).

    Returns
    -------
    ModelImputationResult
        ``.estimates``, ``.acceptance``, ``.psr_burnin``, ``.draws``; ``.complete()`` gives the
        m completed data sets (a MitmlList for pm.lmer + pm.pool_estimates).

    Notes
    -----
    Each iteration draws every model's parameters given the current data (the shared steps
    of :mod:`pymitml.samplers._ranef`: flat prior on the coefficients, inverse-Wishart on the
    random-effect covariance, s2 ~ SS / chi2(n)), then every missing value: categorical values
    exactly over their categories, an outcome used by no other model exactly from its model,
    every other continuous value by random-walk Metropolis, its proposal scale tuned during
    burn-in toward acceptance 0.5 and fixed afterwards. A PSR above 1.1 after burn-in is a
    :class:`~pymitml.exceptions.ConvergenceWarning`.

    Examples
    --------
    >>> import numpy as np, pandas as pd, pymitml as pm
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(30), 10)
    >>> x = rng.normal(size=300)
    >>> y = x + rng.normal(size=30)[g] + rng.normal(size=300)
    >>> x[rng.random(300) < 0.2] = np.nan
    >>> df = pd.DataFrame({"g": g, "x": x, "y": y})
    >>> imp = pm.model_impute(
    ...     df, "y ~ x + (1 | g)", m=2, n_burn=200, n_iter=50, seed=1, verbose=False
    ... )
    >>> round(float(imp.estimates.loc[("y", "x"), "Median"]), 0)
    1.0
    """
    m, n_burn, n_iter, chains, per_chain = check_run(m, n_burn, n_iter, chains, "full")
    if not (isinstance(psi_scale, (int, float)) and psi_scale > 0):
        raise ValueError(f"`psi_scale` must be a positive number; got {psi_scale!r}.")
    spec = build_spec(
        data,
        formula,
        predictors=predictors,
        selection=selection,
        fixed=fixed,
        ordinal=ordinal,
        delta=delta,
        cluster_means=cluster_means,
        auxiliary=auxiliary,
    )
    if verbose:
        for msg in spec.messages:
            print(msg)
    prior = {"psi_scale": float(psi_scale)}
    out = run_chains(
        lambda g, c, s: make_model_chain(spec, s, prior, n_burn),
        [None],
        n_burn=n_burn,
        n_iter=n_iter,
        per_chain=per_chain,
        seed=seed,
        n_threads=n_threads,
        progress=progress,
        sampler="model_impute",
        client=client,
    )
    return _result(spec, out, formula, prior, m, n_burn, n_iter, chains, seed)


def _result(spec: ModelSpec, out, formula, prior, m, n_burn, n_iter, chains, seed):
    names = parameter_names(spec)
    burn = stack_chains(out, ["theta"], "burnin")["theta"][:, :, 0, :]  # (npar, it, chains)
    imp = stack_chains(out, ["theta"], "imputation")["theta"][:, :, 0, :]
    der_names, der_imp, der_burn = _derived(spec, names, imp, burn)
    full_idx = pd.MultiIndex.from_tuples(names + der_names, names=["model", "parameter"])
    draws = np.concatenate([imp, der_imp], axis=0)
    table = posterior_table(draws, full_idx)
    labels = [f"{a}: {b}" for a, b in names]
    seg = psr_by_segment(burn, labels) if n_burn >= 8 else pd.DataFrame()
    bad = table["PSR"] > PSR_LIMIT
    if bool(bad.any()):
        worst = table["PSR"].idxmax()
        warnings.warn(
            f"model_impute: PSR {table['PSR'].max():.3f} > {PSR_LIMIT} after burn-in for "
            f"{worst[0]}: {worst[1]} ({int(bad.sum())} parameter(s) above {PSR_LIMIT}); the chains "
            f"have not converged: use a longer burn-in (n_burn > {n_burn}) and more iterations.",
            ConvergenceWarning,
            stacklevel=3,
        )
    acc = _acceptance(spec, out)
    settings = RunSettings(
        n_burn=n_burn,
        n_iter=n_iter,
        m=m,
        chains=chains,
        cluster=spec.cluster,
        seed=seed if isinstance(seed, int) else None,
    )
    res = assemble_result(
        out,
        blocks=("theta",),
        group_rows=[np.arange(len(spec.perm))],
        target_columns=spec.positions,
        method="model",
        formula=formula,
        targets=[spec.names[v] for v in spec.imputed],
        prior=[dict(prior)],
        settings=settings,
        codebook=spec.codebook,
        param_names={"theta": ([f"{a}: {b}" for a, b in names], ["value"])},
        group_labels=[None],
        extra={
            "target_positions": spec.positions,
            "estimates": table,
            "acceptance": acc,
            "psr_burnin": seg,
            "draws": draws,
            "draws_burnin": np.concatenate([burn, der_burn], axis=0),
            "parameter_index": full_idx,
            "models": [md.text for md in spec.models if md.text],
        },
    )
    return ModelImputationResult(**{f: getattr(res, f) for f in res.__dataclass_fields__})


def _derived(spec: ModelSpec, names, imp, burn):
    """The focal model's ICC draws (linear focal model with a random intercept)."""
    focal = spec.models[0]
    lab = focal.label
    pos = {nm: k for k, nm in enumerate(names)}
    key_v, key_s = (lab, "Var(Intercept)"), (lab, "Residual Var.")
    if key_v in pos:
        a = pos[key_v]
        s_i = imp[pos[key_s]] if key_s in pos else 1.0  # probit: latent residual variance 1
        s_b = burn[pos[key_s]] if key_s in pos else 1.0
        icc_i = imp[a] / (imp[a] + s_i)
        icc_b = burn[a] / (burn[a] + s_b)
        return [(lab, "ICC")], icc_i[None], icc_b[None]
    z = np.zeros((0,) + imp.shape[1:])
    return [], z, np.zeros((0,) + burn.shape[1:])


def _acceptance(spec: ModelSpec, out) -> pd.DataFrame:
    """Acceptance rates of the Metropolis-sampled variables (summed over chains)."""
    acc = sum(o.extra["acc"] for o in out[0])
    tries = sum(o.extra["tries"] for o in out[0])
    scale = np.mean([o.extra["scale"] for o in out[0]], axis=0)
    rows = []
    for v in range(len(spec.names)):
        if tries[0, v] + tries[1, v] == 0:
            continue
        with np.errstate(invalid="ignore", divide="ignore"):
            rows.append(
                (
                    spec.names[v],
                    acc[0, v] / tries[0, v] if tries[0, v] else np.nan,
                    acc[1, v] / tries[1, v] if tries[1, v] else np.nan,
                    scale[v],
                )
            )
    return pd.DataFrame(rows, columns=["variable", "burn-in", "imputation", "scale"]).set_index(
        "variable"
    )
