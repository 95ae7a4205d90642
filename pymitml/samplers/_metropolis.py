"""Random-walk Metropolis with a proposal scale adapted during burn-in (shared steps).

A continuous value x with unnormalised log density log f is moved by

    x' = x + s * sd * z,   z ~ N(0, 1),   accepted with probability min(1, f(x') / f(x)),

where ``sd`` is a natural scale of x (e.g. the residual sd of its own regression) and ``s`` a
multiplier per variable. During burn-in, after every window of proposals, the multiplier is moved
towards the target acceptance rate (Blimp's default 0.5):

    s <- s * exp(gain * (rate - target))

and the window counts are reset; after burn-in ``s`` stays fixed, so the chain is an ordinary
(time-homogeneous) Metropolis chain. The steps draw one uniform per decision whatever the log
ratio, so the random stream does not depend on the values.
"""

from __future__ import annotations

import math

from .._numba import njit

__all__ = ["adapt_scales", "mh_accept", "rw_proposal"]


@njit(nrt=False)
def rw_proposal(rng, current, sd):
    """current + sd * z with z standard normal."""
    return current + sd * rng.standard_normal()


@njit(nrt=False)
def mh_accept(rng, log_ratio):
    """True with probability min(1, exp(log_ratio)) (one uniform drawn always)."""
    u = rng.random()
    if log_ratio != log_ratio:  # NaN: reject
        return False
    return math.log(u) < log_ratio


@njit(nrt=False)
def adapt_scales(scale, win_acc, win_try, target, gain):
    """scale[k] *= exp(gain * (win_acc[k] / win_try[k] - target)) for every k with proposals in
    the window; the window counts are reset to 0. Multipliers are kept in [1e-4, 1e4]."""
    for k in range(len(scale)):
        if win_try[k] > 0:
            rate = win_acc[k] / win_try[k]
            s = scale[k] * math.exp(gain * (rate - target))
            scale[k] = min(max(s, 1e-4), 1e4)
        win_acc[k] = 0.0
        win_try[k] = 0.0
