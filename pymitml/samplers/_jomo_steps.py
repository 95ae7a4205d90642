"""Steps shared by jomo's two samplers (:mod:`._jomo_kernel`, :mod:`._jomo_hr_kernel`)."""

from __future__ import annotations

from ._gibbs import _dot
from ._kernel_options import step


@step
def random_effects_crossproducts(v, l2, SB, d):
    """SB = sum_j (u_j, u2_j)(u_j, u2_j)' (v: (d, J); the level-2 residuals from l2.U2)."""
    du = SB.shape[0]
    for x in range(du):
        for y in range(x + 1):
            if x < d:
                val = _dot(v[x], v[y])
            elif l2 is None:
                val = 0.0
            elif y < d:
                val = _dot(l2.U2[x - d], v[y])
            else:
                val = _dot(l2.U2[x - d], l2.U2[y - d])
            SB[x, y] = val
            SB[y, x] = val


@step
def record_level2(store, l2, cat, o):
    """Store beta2 and the thresholds (level-1 rows, then level-2 rows) as iteration o."""
    n1 = 0
    if cat is not None:
        gam = cat.thr.gam
        n1 = gam.shape[0]
        for vv in range(n1):
            for j in range(gam.shape[1]):
                store.gam[vv, j, o] = gam[vv, j]
    if l2 is None:
        return
    beta2 = l2.beta2
    for k in range(beta2.shape[0]):
        for t in range(beta2.shape[1]):
            store.beta2[k, t, o] = beta2[k, t]
    gam2 = l2.cat.thr.gam
    for vv in range(gam2.shape[0]):
        for j in range(gam2.shape[1]):
            store.gam[n1 + vv, j, o] = gam2[vv, j]
