"""The package's exceptions and warnings, and the status codes numba kernels report.

Kernels cannot raise informative Python errors, so every sampler step returns a :class:`Status`
(an ``int`` inside numba; 0 = success). The Python layer turns a non-zero status into a
:class:`NumericalFailureError` in one place, :func:`raise_for_status`, which names the step, the
iteration, the chain and what to do.
"""

from __future__ import annotations

from enum import IntEnum

__all__ = [
    "ConvergenceWarning",
    "FileFormatError",
    "MissingCodeWarning",
    "NumericalFailureError",
    "PymitmlError",
    "PymitmlWarning",
    "SamplingInterrupted",
    "ScaleWarning",
    "Status",
    "raise_for_status",
]


class PymitmlError(Exception):
    """Base class of the errors pymitml raises itself (beside plain ValueError/TypeError for bad
    arguments, which are raised as those types so that ordinary ``except ValueError`` works)."""


class NumericalFailureError(PymitmlError, FloatingPointError):
    """A sampler step met a matrix that is not positive definite (or a similar numerical failure).

    Attributes
    ----------
    status : the :class:`Status` of the failing step.
    iteration : the chain's iteration (0-based, counted from the start of burn-in), when known.
    chain : the chain's number (0-based) within its group, when known.
    group : the imputation group's label (``None`` without ``group=``).
    variable : the target whose step failed (chained equations), when known.
    """

    def __init__(
        self,
        message: str,
        *,
        status: Status,
        iteration: int | None = None,
        chain: int | None = None,
        group: object = None,
        variable: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.iteration = iteration
        self.chain = chain
        self.group = group
        self.variable = variable


class FileFormatError(PymitmlError, ValueError):
    """A file could not be read as the format asked for (truncated, corrupted, not that format)."""


class SamplingInterrupted(PymitmlError, KeyboardInterrupt):
    """Ctrl-C during sampling: the chains were stopped cleanly and nothing was returned."""


class PymitmlWarning(UserWarning):
    """Base class of pymitml's warnings."""


class ConvergenceWarning(PymitmlWarning):
    """A fit or a chain may not have converged (optimiser messages, singular fits, large Rhat)."""


class ScaleWarning(PymitmlWarning):
    """A continuous target's observed SD is below 1e-6 or above 1e6 (or 0): the default prior
    and start values assume a scale near 1. Standardise it or give a prior on its scale."""


class MissingCodeWarning(PymitmlWarning):
    """``missing_code`` turned observed cells into missing values; the message gives the count
    per column (also in ``ImputationResult.codebook.missing_code_cells``)."""


class Status(IntEnum):
    """What a kernel step reports: 0 success, otherwise the step whose matrix failed."""

    OK = 0
    SIGMA = 1
    PSI = 2
    BETA = 3
    RANDOM_EFFECTS = 4
    MISSING = 5
    LATENT = 6
    BETA2 = 7
    LEVEL2 = 8
    SIGMA_J = 9
    LAMBDA = 10

    @property
    def step(self) -> str:
        return _STEP_TEXT[self]


_STEP_TEXT = {
    Status.OK: "no step (success)",
    Status.SIGMA: "the draw of the level-1 residual covariance Sigma",
    Status.PSI: "the draw of the random-effect covariance Psi",
    Status.BETA: "the draw of the fixed effects beta (their posterior precision)",
    Status.RANDOM_EFFECTS: "the draw of the random effects (a cluster's posterior precision)",
    Status.MISSING: "the draw of the missing values (their conditional covariance)",
    Status.LATENT: "the draw of the latent normals of the categorical targets",
    Status.BETA2: "the draw of the level-2 fixed effects beta2",
    Status.LEVEL2: "the draw of the level-2 targets (their conditional prior)",
    Status.SIGMA_J: "the draw of a cluster's own covariance matrix Sigma_j (random_L1)",
    Status.LAMBDA: "the draw of the scale matrix of the Sigma_j (random_L1)",
}


def raise_for_status(
    code: int,
    *,
    sampler: str,
    iteration: int | None = None,
    chain: int | None = None,
    group: object = None,
    variable: str | None = None,
) -> None:
    """Raise :class:`NumericalFailureError` for a kernel's non-zero status; return otherwise.

    ``variable`` names the target whose step failed, where a sampler visits targets one at a
    time (chained equations)."""
    if code == 0:
        return
    try:
        status = Status(int(code))
    except ValueError:  # a code no step defines: still an error, never a silent success
        status = Status.SIGMA
    where = [f"{sampler}"]
    if variable is not None:
        where.append(f"variable {variable!r}")
    if group is not None:
        where.append(f"group {group!r}")
    if chain is not None:
        where.append(f"chain {chain}")
    if iteration is not None:
        where.append(f"iteration {iteration}")
    last = (
        "or drop predictors from `predictor_matrix`."
        if sampler == "fcs_impute"
        else "or use a more informative `prior`."
    )
    raise NumericalFailureError(
        f"{status.step} failed: a matrix lost positive definiteness ({', '.join(where)}). "
        "Rescale the variables (e.g. to unit variance), check for constant or collinear "
        f"predictors, {last}",
        status=status,
        iteration=iteration,
        chain=chain,
        group=group,
        variable=variable,
    )
