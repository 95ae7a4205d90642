"""Adaptive Gauss-Hermite quadrature (nAGQ > 1) for one scalar random effect per cluster.

Cluster j contributes  -2 log  int exp(-(d_j(u) + u^2) / 2) du / sqrt(2 pi)  (up to the
saturated model's constant), with d_j(u) the sum of its rows' deviance residuals. Around the
conditional mode u~_j with the curvature L_j^2 = 1 + T^2 sum_i w_i z_i^2 of the Laplace
approximation, the substitution u = u~_j + x / L_j and the K-point Gauss-Hermite rule for the
standard normal (nodes x_k, weights w_k summing to 1) give

    d_j(u~_j) + u~_j^2 + log L_j^2
        - 2 log sum_k w_k exp(-(d_j(u_k) + u_k^2 - d_j(u~_j) - u~_j^2 - x_k^2) / 2),

which is the Laplace term at K = 1 (one node at 0) and exact for large K (lme4's scaling).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from .._numba import njit
from ._family import _dev_resid, _linkinv
from ._pirls import GlmmData, PirlsResult

__all__ = ["agq_deviance", "gauss_hermite"]


@lru_cache(maxsize=16)
def gauss_hermite(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and weights (summing to 1) of the k-point rule for the standard normal density."""
    x, w = np.polynomial.hermite_e.hermegauss(int(k))
    x.setflags(write=False)
    w = w / w.sum()
    w.setflags(write=False)
    return x, w


@njit
def _node_deviances(family, link, eta, zcol, codes, y, a, shift, nodes, out):
    """out[j, k] = sum of cluster j's deviance residuals at eta + z_i shift_j nodes_k."""
    n = eta.shape[0]
    K = nodes.shape[0]
    for j in range(out.shape[0]):
        for k in range(K):
            out[j, k] = 0.0
    for i in range(n):
        j = codes[i]
        s = zcol[i] * shift[j]
        for k in range(K):
            mu = _linkinv(link, eta[i] + s * nodes[k])
            out[j, k] += _dev_resid(family, y[i], mu, a[i])


def agq_deviance(
    mode: PirlsResult, data: GlmmData, Z: np.ndarray, codes: np.ndarray, t: float, k: int
) -> float:
    """The AGQ deviance with ``k`` nodes at the conditional mode ``mode`` (scalar T = ``t``)."""
    J = mode.u.shape[0]
    zcol = np.ascontiguousarray(Z[:, 0])
    w2 = mode.sqrtw * mode.sqrtw * zcol * zcol
    L = np.sqrt(1.0 + t * t * np.bincount(codes, weights=w2, minlength=J))
    nodes, weights = gauss_hermite(k)
    dev = np.empty((J, nodes.size))
    f = data.family
    _node_deviances(
        f.code, f.link_code, mode.eta, zcol, codes, data.y, data.weights, t / L, nodes, dev
    )
    u0 = mode.u[:, 0]
    uk = u0[:, None] + nodes[None, :] / L[:, None]
    pen = dev + uk * uk
    base = np.bincount(codes, weights=mode.devres, minlength=J) + u0 * u0
    expo = -0.5 * (pen - base[:, None] - nodes[None, :] ** 2)
    top = expo.max(axis=1)
    log_sum = top + np.log(np.exp(expo - top[:, None]) @ weights)
    return float(np.sum(base + 2.0 * np.log(L) - 2.0 * log_sum))
