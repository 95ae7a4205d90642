"""The penalised weighted least-squares system of glmer on lmer's blocked factorisation.

:class:`BlockedSystem` implements :class:`._pirls.PenalisedSystem` for a model with several
random-effect terms (:class:`._multi_design.MultiDesign`) with the kernels lmer uses
(:mod:`._multi_kernels`): for PIRLS weights W and working response z the cross-products of
sqrt(W)[Z X z] are rebuilt on the fixed pattern, the leading term is factored blockwise and the
rest densely. With ``fixed=True`` the same factor gives u for beta = 0, since the rows of the
random effects come before those of X in the elimination order.
"""

from __future__ import annotations

import numpy as np

from ._multi_design import MultiDesign, fill_system, multi_pattern
from ._multi_kernels import lead_modes
from ._pirls import Solution, lower_tri

__all__ = ["BlockedSystem"]


class BlockedSystem:
    """:class:`._pirls.PenalisedSystem` of a :class:`MultiDesign` (terms in lme4's order)."""

    def __init__(self, design: MultiDesign):
        from .multi_fit import _MultiCriterion

        self.d = design
        self.pattern = multi_pattern(design)
        self.X = design.X
        self.Z = design.Z_sparse().tocsr()
        self.sqrtw = np.ones(design.n)
        self.n_modes = (self.Z.shape[1], 1)
        system = fill_system(self.pattern, design, self.sqrtw, np.zeros(design.n))
        self.crit = _MultiCriterion(design, system, reml=False)
        self._lx = np.zeros((design.p, design.p))
        self.sizes = [t.q * t.n_levels for t in design.terms]

    def set_weights(self, sqrtw: np.ndarray) -> None:
        self.sqrtw = sqrtw

    def _Ts(self, theta: np.ndarray) -> list[np.ndarray]:
        out, k = [], 0
        for t in self.d.terms:
            out.append(lower_tri(theta[k : k + t.n_theta], t.q))
            k += t.n_theta
        return out

    def solve(self, theta: np.ndarray, z: np.ndarray, fixed: bool) -> Solution | None:
        from scipy.linalg import solve_triangular

        crit, pat, d = self.crit, self.pattern, self.d
        crit.s = fill_system(pat, d, self.sqrtw, z)
        ld, _, _ = crit.solve(theta)
        if not np.isfinite(ld):
            return None
        U = crit.U
        assert U is not None
        nr, p = pat.n_re, d.p
        if fixed or p == 0:
            beta = np.zeros(0 if fixed else p)
            u_rest = solve_triangular(U[:nr, :nr], U[:nr, -1]) if nr else np.zeros(0)
            x = np.concatenate([u_rest, np.zeros(p), [-1.0]])
        else:
            beta, u_rest, x = crit.solution()
            self._lx = U[nr : nr + p, nr : nr + p].T.copy()
        lead = d.terms[pat.lead]
        U1 = np.empty((lead.n_levels, lead.q))
        B1 = np.empty((lead.n_levels, lead.q))
        lead_modes(crit.L1, crit.T1, pat.ptr, pat.cols, crit.W, x, U1, B1)
        parts: list[np.ndarray] = [np.zeros(0)] * len(d.terms)
        parts[pat.lead] = U1.ravel()
        for i, k in enumerate(pat.rest):
            parts[k] = u_rest[pat.rest_start[i] : pat.rest_start[i] + self.sizes[k]]
        u = np.concatenate(parts).reshape(-1, 1)
        return Solution(float(ld), beta, u, self.modes_from_u(theta, u))

    def linear_predictor(self, beta: np.ndarray, b: np.ndarray) -> np.ndarray:
        out = self.Z @ b[:, 0]
        if beta.size:
            out = out + self.X @ beta
        return np.asarray(out)

    def modes_from_u(self, theta: np.ndarray, u: np.ndarray) -> np.ndarray:
        out = np.empty_like(u[:, 0])
        col = 0
        for t, T in zip(self.d.terms, self._Ts(np.asarray(theta, dtype=float))):
            size = t.q * t.n_levels
            out[col : col + size] = (u[col : col + size, 0].reshape(t.n_levels, t.q) @ T.T).ravel()
            col += size
        return out.reshape(-1, 1)

    def lx(self) -> np.ndarray:
        return self._lx
