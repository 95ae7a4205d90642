"""Validating user priors against a sampler's defaults (mitml's names: a, Binv, c, Dinv)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["check_prior"]


def check_prior(
    prior: Mapping | None,
    defaults: dict,
    matrices: dict[str, int],
    scalars: dict[str, tuple[float, str]],
) -> dict:
    """``defaults`` updated by the user's ``prior``, every entry checked.

    Parameters
    ----------
    matrices : key -> order of a symmetric positive definite scale matrix.
    scalars : key -> (exclusive lower bound, what the value is) for degrees of freedom.
    """
    out = dict(defaults)
    if prior is None:
        return out
    keys = ", ".join(f"'{k}'" for k in defaults)
    if not isinstance(prior, Mapping):
        raise TypeError(f"`prior` must be a dict with keys {keys} (mitml's names).")
    unknown = set(prior) - set(defaults)
    if unknown:
        raise ValueError(f"`prior` has unknown key(s) {sorted(unknown)}; use {keys}.")
    for key, dim in matrices.items():
        if key in prior:
            mat = np.atleast_2d(np.asarray(prior[key], dtype=float))
            if mat.shape != (dim, dim):
                raise ValueError(
                    f"`prior['{key}']` must be a {dim} x {dim} matrix; got shape {mat.shape}."
                )
            if not np.allclose(mat, mat.T) or np.linalg.eigvalsh(mat).min() <= 0:
                raise ValueError(f"`prior['{key}']` must be symmetric positive definite.")
            out[key] = mat
    for key, (low, what) in scalars.items():
        if key in prior:
            val = float(prior[key])
            if not val > low:
                raise ValueError(f"`prior['{key}']` ({what}) must exceed {low:g}; got {val}.")
            out[key] = val
    return out
