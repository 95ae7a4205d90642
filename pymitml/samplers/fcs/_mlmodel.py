"""``ml.lmer`` / ``ml.bin``: one variable's linear (or probit) mixed model with random terms
for several grouping factors, imputed at the variable's own level.

Model over the units of the target's level (rows, or the groups of the factor within which the
target is constant), for the units where it is observed:

    y_u = x_u' beta + sum_t z_tu' b_{t, g_t(u)} + e_u,   b_{t,j} ~ N(0, Psi_t),  e_u ~ N(0, s2)

(``ml.bin``: y_u = 1 when a latent normal with s2 = 1 is positive). x_u holds the unit's values
(or unit means) of the predictors and, with ``cluster_means``, their means over the groups of
every factor above the unit; z_tu the term's intercept and slope values. Priors: flat on beta;
Psi_t ~ IW(q_t, 0.01 v I) and s2 ~ scaled inverse chi-square(1, 0.01 v), v the observed
variance of y (weak, on y's scale).

One Gibbs sweep draws (beta, b_1) as one block with b_1 integrated out for beta (the first
term; :func:`~pymitml.samplers._ranef.draw_beta_b`), then each further term's effects given the
rest (the same step with no fixed effects, on the partial residual), each Psi_t
(:func:`~pymitml.samplers._ranef.draw_psi`) and s2; the missing units are then drawn from the
model. Each term's rows are sorted by its groups once (a crossed factor's groups are not
contiguous in the data's order), so every step is one numba call over arrays; Python loops only
over the (few) terms. With one factor this is the model of ``2l.pan`` (a Bayesian draw, as
mice's 2l.pan, with a weaker prior).
"""

from __future__ import annotations

import warnings

import numpy as np

from .._ranef import (
    RcData,
    draw_beta_b,
    draw_psi,
    group_means,
    linear_predictor,
    probit_latents,
    rc_params,
    rc_work,
    residual_ss,
)
from ._design import _expand, _expand_names, _independent_columns
from ._methods import pmm
from ._mlspec import MlSpec

__all__ = ["MlDesign", "MlMethod", "MlModel", "ml_design"]

#: sweeps at the first visit of a chain (from crude start values towards the posterior)
WARMUP = 10
#: prior scale of the residual variance, relative to the observed variance of the target
PRIOR_SCALE = 0.01
#: prior scale of each random effect's variance, relative to the observed variance of the
#: target divided by the variance of the effect's column (a random intercept: 1). Smaller
#: scales pull weakly identified variances (a random slope from 40 schools) towards zero:
#: with 0.01 the imputed data's slope variance was 12% below the complete data's.
PSI_PRIOR_SCALE = 0.3
_LO = np.array([-np.inf, 0.0])
_HI = np.array([0.0, np.inf])


def _first_rows(codes: np.ndarray, n: int) -> np.ndarray:
    """The first sorted row of every group."""
    first = np.empty(n, dtype=np.int64)
    first[codes[::-1]] = np.arange(len(codes) - 1, -1, -1)
    return first


def _means(v: np.ndarray, codes: np.ndarray, n: int) -> np.ndarray:
    """(n, k) group means of the columns of v (the numba step)."""
    out = np.empty((n, v.shape[1]))
    group_means(np.ascontiguousarray(v), codes, out)
    return out


class MlDesign:
    """How one target's unit-level X and Z are built from the current values."""

    def __init__(self, spec: MlSpec, t: int) -> None:
        lv = spec.levels
        assert lv is not None
        mt = spec.models[t]
        self.spec, self.t, self.unit = spec, t, mt.unit
        self.codes, self.n_units = spec.unit_codes(mt.unit)
        self.first = _first_rows(self.codes, self.n_units)
        facs = [f.name for f in lv.factors]
        if mt.unit is None:
            above = facs
        elif lv.nested:
            above = facs[: facs.index(mt.unit)]
        else:
            above = []
        self.above = above if spec.cluster_means else []
        names = spec.names
        self.preds = [
            k for k in range(len(names)) if spec.predictors[t, k] == 1 and k != t
        ]  # cluster columns have code 0
        self.x_names = ["(Intercept)"]
        self.means: list[tuple[str, list[int]]] = []
        for k in self.preds:
            self.x_names += _expand_names(spec, k)
        for g in self.above:
            ks = [k for k in self.preds if not self._constant_within(k, g)]
            self.means.append((g, ks))
            self.x_names += [f"mean_{g}({n})" for k in ks for n in _expand_names(spec, k)]
        self.terms = mt.terms
        self.term_groups = [spec.codes[tm.factor][self.first] for tm in mt.terms]
        self.term_J = [spec.n_groups[tm.factor] for tm in mt.terms]
        self.keep = np.arange(len(self.x_names))

    def _constant_within(self, k: int, g: str) -> bool:
        """Predictor k is constant within the groups of factor g (its level is g or above)."""
        lv = self.spec.levels
        assert lv is not None
        lev = lv.level_of.get(self.spec.names[k])
        if lev is None:
            return False
        if not lv.nested:
            return lev == g
        facs = [f.name for f in lv.factors]
        return facs.index(lev) <= facs.index(g)

    def _unit(self, v: np.ndarray) -> np.ndarray:
        if self.unit is None:
            return v
        return _means(v, self.codes, self.n_units)

    def build(self, cur: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
        """(X (units x p), [Z_t (units x q_t)]) from the current values."""
        spec = self.spec
        ex = {k: _expand(spec, cur, k) for k in self.preds}
        E = np.hstack([np.ones((cur.shape[0], 1))] + [ex[k] for k in self.preds])
        xs = [self._unit(E)]
        for g, ks in self.means:
            if ks:
                gm = _means(np.hstack([ex[k] for k in ks]), spec.codes[g], spec.n_groups[g])
                xs.append(gm[spec.codes[g][self.first]])
        X = np.hstack(xs) if len(xs) > 1 else xs[0]
        if len(self.keep) != X.shape[1]:
            X = X[:, self.keep]
        Zs = []
        for tm in self.terms:
            zs = [np.ones((self.n_units, 1))] if tm.intercept else []
            zs += [self._unit(cur[:, [k]]) for k in tm.slopes]
            Zs.append(np.ascontiguousarray(np.hstack(zs)))
        return np.ascontiguousarray(X), Zs


def ml_design(spec: MlSpec, t: int, cur: np.ndarray) -> MlDesign:
    """The design of target t, with constant or collinear columns (judged on the observed
    units at the start values) dropped, with a warning naming them."""
    d = MlDesign(spec, t)
    X, _ = d.build(cur)
    obs_units = _observed_units(spec, t, d)
    d.keep = _independent_columns(X[obs_units])
    dropped = [d.x_names[a] for a in range(len(d.x_names)) if a not in set(d.keep.tolist())]
    if dropped:
        warnings.warn(
            f"predictor column(s) {dropped} of '{spec.names[t]}' are constant or collinear with "
            "the others where it is observed; they are dropped from its model.",
            stacklevel=4,
        )
        d.x_names = [d.x_names[a] for a in d.keep]
    return d


def _observed_units(spec: MlSpec, t: int, d: MlDesign) -> np.ndarray:
    rows = ~spec.where[:, t] & ~np.isnan(spec.columns[t].values)
    return np.flatnonzero(np.bincount(d.codes[rows], minlength=d.n_units) > 0)


def _xb(X: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """X beta by the numba step (no BLAS call: threaded BLAS on small products stalls on a
    loaded machine)."""
    out = np.empty(X.shape[0])
    n = X.shape[0]
    linear_predictor(X, np.zeros((n, 0)), np.zeros(n, np.int64), beta, _NO_B, out)
    return out


_NO_B = np.zeros((1, 0))


class MlModel:
    """The Gibbs state of one target's model on its observed units (see the module docstring).

    ``groups[t]``: the group in term t of every observed unit; ``J[t]`` its number of groups;
    ``q[t]`` its random effects. Without terms one dummy term (q = 0, one group) carries beta.
    """

    def __init__(self, n: int, groups, J, p, q, mode: int, v: float, sweeps: int) -> None:
        if not groups:
            groups, J, q = [np.zeros(n, np.int64)], [1], [0]
        self.n_real = len([x for x in q if x > 0])
        self.mode, self.sweeps, self.started = mode, sweeps, False
        self.warmup = WARMUP
        self.groups = [np.asarray(g, np.int64) for g in groups]
        self.perm = [np.argsort(g, kind="stable") for g in self.groups]
        self.start = [
            np.searchsorted(g[o], np.arange(j + 1)).astype(np.int64)
            for g, o, j in zip(self.groups, self.perm, J)
        ]
        s2 = 1.0 if mode == 2 else v
        self.pars = [
            rc_params(p if i == 0 else 0, qi, j, s2) for i, (qi, j) in enumerate(zip(q, J))
        ]
        self.works = [rc_work(p if i == 0 else 0, qi, j) for i, (qi, j) in enumerate(zip(q, J))]
        vy = 1.0 if mode == 2 else v
        scale, pscale = PRIOR_SCALE * vy, PSI_PRIOR_SCALE * vy
        self.priors = [np.array([float(max(qi, 1)), pscale, 1.0, scale]) for qi in q]
        self.zscale: list[np.ndarray] | None = None
        self.s2 = s2
        self.latent = np.zeros(n)
        self.x0 = np.zeros((n, 0))
        self.e0 = np.zeros(0)

    @property
    def beta(self) -> np.ndarray:
        return self.pars[0].beta

    def _start_psi(self, Zs: list[np.ndarray]) -> None:
        """Each term's Psi starts explaining a share of the residual variance."""
        k = max(self.n_real, 1)
        for par, Z in zip(self.pars, Zs):
            if Z.shape[1] == 0:
                continue
            var = Z.var(axis=0) if len(Z) > 1 else np.ones(Z.shape[1])
            var[var <= 1e-12] = 1.0
            if np.all(Z[:, 0] == 1.0):
                var[0] = 1.0
            par.psi[:, :] = np.diag(0.5 * self.s2 / k / var)
            par.psi_inv[:, :] = np.diag(2.0 * k * var / self.s2)
        self.started = True

    def _eta(self, i: int, Z: np.ndarray) -> np.ndarray:
        out = np.empty(Z.shape[0])
        if Z.shape[1] == 0:
            out[:] = 0.0
            return out
        linear_predictor(self.x0[: Z.shape[0]], Z, self.groups[i], self.e0, self.pars[i].b, out)
        return out

    def _set_zscale(self, Zs: list[np.ndarray]) -> None:
        """Each random-effect column is divided by its SD over the observed units (1 for an
        intercept or a constant column): the prior IW(q, c v I) of the scaled effects is
        IW(q, c v D^-2) for the effects on the data's scale, D the SDs."""
        out = []
        for Z in Zs:
            sd = Z.std(axis=0) if len(Z) > 1 else np.ones(Z.shape[1])
            sd[(sd <= 1e-12) | ~np.isfinite(sd)] = 1.0
            out.append(1.0 / sd)
        self.zscale = out

    def _scaled(self, Zs: list[np.ndarray]) -> list[np.ndarray]:
        if self.zscale is None:
            return Zs
        return [np.ascontiguousarray(Z * s) if Z.shape[1] else Z for Z, s in zip(Zs, self.zscale)]

    def predict(self, X: np.ndarray, Zs: list[np.ndarray], groups: list[np.ndarray]) -> np.ndarray:
        """x'beta + sum_t z_t'b_t at the given units (``groups[t]``: their groups in term t)."""
        return self._predict(X, self._scaled(Zs), groups)

    def _predict(self, X: np.ndarray, Zs: list[np.ndarray], groups: list[np.ndarray]) -> np.ndarray:
        eta = _xb(X, self.beta)
        for par, Z, g in zip(self.pars, Zs, groups):
            if Z.shape[1]:
                out = np.empty(Z.shape[0])
                linear_predictor(np.zeros((Z.shape[0], 0)), Z, g, self.e0, par.b, out)
                eta += out
        return eta

    def update(
        self, rng: np.random.Generator, X: np.ndarray, Zs: list[np.ndarray], y, ordinal=None
    ) -> int:
        """Sweeps given the observed units' X, Z and y (0/1 in probit mode). Status code.

        ``ordinal`` (an :class:`~pymitml.samplers.fcs._mlcat.OrdinalLatents`, probit mode):
        the thresholds and latents are drawn before every sweep, given its linear predictor;
        otherwise the probit latents once per visit."""
        if not Zs:
            Zs = [np.zeros((X.shape[0], 0))]
        n = self.sweeps
        if self.zscale is None:
            self._set_zscale(Zs)
        Zs = self._scaled(Zs)
        if not self.started:
            self._start_psi(Zs)
            n = max(n, self.warmup)
        if self.mode == 2 and ordinal is None:
            eta = self._predict(X, Zs, self.groups)
            probit_latents(rng, eta, np.asarray(y, np.int64), _LO, _HI, self.latent)
            y = self.latent
        y = np.ascontiguousarray(y, dtype=np.float64)
        Xs0 = np.ascontiguousarray(X[self.perm[0]])
        Zsorted = [np.ascontiguousarray(Z[o]) for Z, o in zip(Zs, self.perm)]
        etas = [self._eta(i, Z) for i, Z in enumerate(Zs)]
        for _ in range(n):
            if ordinal is not None:
                y = ordinal.draw(rng, _xb(X, self.beta) + sum(etas))
            code = self._sweep(rng, X, Xs0, (Zs, Zsorted), y, etas)
            if code:
                return code
        return 0

    def _sweep(self, rng, X, Xs0, Zpair, y, etas) -> int:
        Zs, Zsorted = Zpair
        K = len(self.pars)
        for i in range(K):
            par, o = self.pars[i], self.perm[i]
            r = y - (sum(etas[u] for u in range(K) if u != i) if K > 1 else 0.0)
            if i > 0:
                r = r - _xb(X, self.pars[0].beta)
            par.s2[:] = self.s2
            d = RcData(
                Xs0 if i == 0 else self.x0,
                Zsorted[i],
                np.ascontiguousarray(r[o]),
                self.start[i],
                self.priors[i],
                0,
            )
            code = draw_beta_b(rng, d, par, self.works[i])
            if code:
                return int(code)
            if Zsorted[i].shape[1]:
                code = draw_psi(rng, d, par, self.works[i])
                if code:
                    return int(code)
                etas[i] = self._eta(i, Zs[i])
        if self.mode != 2:  # s2 from the residuals of the first term's (sorted) rows
            r = y - sum(etas[1:]) if K > 1 else y
            d = RcData(
                Xs0,
                Zsorted[0],
                np.ascontiguousarray(r[self.perm[0]]),
                self.start[0],
                self.priors[0],
                0,
            )
            ss = self.works[0].ss
            residual_ss(d, self.pars[0], ss)
            pr = self.priors[0]
            self.s2 = float((pr[3] + ss.sum()) / rng.chisquare(pr[2] + len(y)))
        return 0


class MlMethod:
    """``ml.lmer`` / ``ml.bin`` of one target in one chain: ``visit(cur, rng) -> status``."""

    def __init__(self, spec: MlSpec, t: int, design: MlDesign, method: str, sweeps: int) -> None:
        self.spec, self.t, self.design, self.method = spec, t, design, method
        col = spec.columns[t]
        d = design
        rows = ~spec.where[:, t] & ~np.isnan(col.values)
        self.miss_rows = np.flatnonzero(spec.where[:, t])
        seen = np.bincount(d.codes[rows], minlength=d.n_units) > 0
        need = np.bincount(d.codes[self.miss_rows], minlength=d.n_units) > 0
        self.obs_units = np.flatnonzero(seen)
        self.mis_units = np.flatnonzero(need & ~seen)
        self.value = np.full(d.n_units, np.nan)
        self.value[d.codes[rows]] = col.values[rows]
        yo = self.value[self.obs_units]
        v = float(np.var(yo)) if len(yo) > 1 and np.var(yo) > 0 else 1.0
        p = len(design.x_names)
        q = [int(tm.intercept) + len(tm.slopes) for tm in design.terms]
        groups = [g[self.obs_units] for g in design.term_groups]
        mode = 2 if method == "ml.bin" else 0
        n = len(self.obs_units)
        self.model = MlModel(n, groups, list(design.term_J), p, q, mode, v, sweeps)
        self.mis_groups = [g[self.mis_units] for g in design.term_groups]

    def visit(self, cur: np.ndarray, rng: np.random.Generator) -> int:
        d, mod, o, m = self.design, self.model, self.obs_units, self.mis_units
        X, Zs = d.build(cur)
        code = mod.update(rng, X[o], [Z[o] for Z in Zs], self.value[o])
        if code:
            return code
        v = self.value.copy()
        if len(m):
            eta = mod.predict(X[m], [Z[m] for Z in Zs], self.mis_groups)
            if self.method == "ml.bin":
                v[m] = (eta + rng.standard_normal(len(m)) > 0.0).astype(np.float64)
            elif self.method == "ml.pmm":
                eta_o = mod.predict(X[o], [Z[o] for Z in Zs], mod.groups)
                v[m] = pmm(rng, eta_o, self.value[o], eta)
            else:
                v[m] = eta + np.sqrt(mod.s2) * rng.standard_normal(len(m))
        cur[self.miss_rows, self.t] = v[d.codes[self.miss_rows]]
        return 0


def ml_start_values(spec: MlSpec, rng: np.random.Generator) -> np.ndarray:
    """(N, C) current values: cells to impute drawn from their column's observed values, one
    draw per unit of the column's level (mice's start, per level)."""
    cur = np.column_stack([c.values for c in spec.columns]).astype(np.float64)
    lv = spec.levels
    assert lv is not None
    for t in spec.targets:
        miss = spec.where[:, t]
        obs = ~miss & ~np.isnan(cur[:, t])
        pool = cur[obs, t] if obs.any() else np.zeros(1)
        unit = lv.level_of.get(spec.names[t])
        codes, n = spec.unit_codes(unit)
        per = rng.choice(pool, n)
        cur[miss, t] = per[codes[miss]]
        if unit is not None:  # a unit with an observed value keeps it in its missing rows
            val = np.full(n, np.nan)
            val[codes[obs]] = cur[obs, t]
            fill = miss & ~np.isnan(val[codes])
            cur[fill, t] = val[codes[fill]]
    return cur
