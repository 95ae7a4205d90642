"""One chain of the model-based sampler: start values, kernel bundles, the driver's Chain."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
from numba.typed import List

from .._ranef import rc_params, rc_work
from ..driver import Chain
from ._kernel import MbData, MbModels, MbPars, MbTune, iterate, rc_data
from ._spec import ModelSpec
from ._terms import CENTRED

__all__ = ["ChainState", "chain_state", "column_table", "make_model_chain", "parameter_names"]

#: Metropolis tuning: adaptation window (iterations), target acceptance, gain
WINDOW, TARGET, GAIN = 25, 0.5, 1.0


def column_table(spec: ModelSpec):
    """(fvar, fpow, xc, zc) over all models' design columns."""
    cols: list[list[tuple[int, int]]] = []
    xc = np.zeros((len(spec.models), 2), np.int64)
    zc = np.zeros((len(spec.models), 2), np.int64)
    for m, md in enumerate(spec.models):
        xc[m] = len(cols), len(cols) + len(md.x_cols)
        cols += [f for _, f in md.x_cols]
        zc[m] = len(cols), len(cols) + len(md.z_cols)
        cols += [f for _, f in md.z_cols]
    F = max([len(f) for f in cols] + [1])
    fvar = np.full((max(len(cols), 1), F), -1, np.int64)
    fpow = np.zeros((max(len(cols), 1), F), np.int64)
    for c, f in enumerate(cols):
        for k, (v, p) in enumerate(f):
            fvar[c, k], fpow[c, k] = v, p
    return fvar, fpow, xc, zc


def parameter_names(spec: ModelSpec) -> list[tuple[str, str]]:
    """(model label, parameter name) of every stored parameter, in the kernel's order."""
    out = []
    for md in spec.models:
        for nm, _ in md.x_cols:
            out.append((md.label, nm))
        zn = [nm for nm, _ in md.z_cols]
        for a in range(len(zn)):
            for c in range(a + 1):
                out.append((md.label, f"Var({zn[a]})" if a == c else f"Cov({zn[a]},{zn[c]})"))
        if md.kind == 0:
            out.append((md.label, "Residual Var."))
    for md in spec.models:
        if md.kind == 1:
            for c in range(2, spec.info[md.resp].ncat):
                out.append((md.label, f"Threshold {c}"))
    focal = spec.models[0].label
    out += [(focal, "R2 fixed"), (focal, "R2 random")]
    res = [md.label for md in spec.models if md.level == 1 and md.kind in (0, 1, 2)]
    if len(res) > 1:
        out += [
            ("Residual cor.", f"{res[a]}, {res[b]}")
            for a in range(len(res))
            for b in range(a + 1, len(res))
        ]
    return out


def _start_values(spec: ModelSpec, rng) -> np.ndarray:
    """Missing values filled: observed mean + noise (continuous), observed shares (categorical)."""
    V = spec.V.copy()
    for v, vi in enumerate(spec.info):
        col = V[:, v]
        miss = np.isnan(col)
        if not miss.any():
            continue
        obs = col[~miss]
        if v in spec.observed_means:
            continue  # set below, from the filled-in variable
        if v in spec.latent:  # a latent cluster mean: start at the cluster means of its variable
            base = pd.Series(V[:, spec.latent[v]]).groupby(spec.clus).transform("mean")
            col[:] = base.fillna(np.nanmean(V[:, spec.latent[v]])).to_numpy()
            continue
        if vi.level == 2:
            first = col[spec.start[:-1]].copy()
            cl = np.flatnonzero(np.isnan(first))
            if vi.ncat:
                first[cl] = rng.choice(obs, size=len(cl))
            else:
                first[cl] = obs.mean() + obs.std() * rng.standard_normal(len(cl))
            col[:] = np.repeat(first, np.diff(spec.start))
        else:
            k = int(miss.sum())
            col[miss] = (
                rng.choice(obs, size=k)
                if vi.ncat
                else obs.mean() + obs.std() * rng.standard_normal(k)
            )
    for km, b in spec.observed_means.items():
        V[:, km] = pd.Series(V[:, b]).groupby(spec.clus).transform("mean").to_numpy()
    return V


def missing_index(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray]:
    """(mis_idx, mis_start): missing rows (level 1) or clusters (level 2) of each variable."""
    parts, starts = [], [0]
    for v, vi in enumerate(spec.info):
        miss = np.isnan(spec.V[:, v])
        if vi.level == 2:
            idx = np.flatnonzero(miss[spec.start[:-1]])
        else:
            idx = np.flatnonzero(miss)
        parts.append(idx.astype(np.int64))
        starts.append(starts[-1] + len(idx))
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), np.array(starts, np.int64)


def _ucols(spec: ModelSpec) -> np.ndarray:
    """Column of U of every nominal sub-model (consecutive per variable)."""
    out = np.zeros(len(spec.models), np.int64)
    c = 0
    for m, md in enumerate(spec.models):
        if md.kind == 4:
            out[m] = c
            c += 1
    return out


def _start_utilities(spec: ModelSpec, V: np.ndarray) -> np.ndarray:
    """Utilities agreeing with the (filled-in) categories: 0.5 for the category, -0.5 else."""
    D = sum(md.kind == 4 for md in spec.models)
    U = np.full((V.shape[0], max(D, 1)), -0.5)
    uc = _ucols(spec)
    for m, md in enumerate(spec.models):
        if md.kind == 4:
            U[V[:, md.resp] == md.dim, uc[m]] = 0.5
    return U


def model_tables(spec: ModelSpec):
    """MbModels arrays (thresholds fresh: each chain mutates its own)."""
    M, K = len(spec.models), len(spec.names)
    fvar, fpow, xc, zc = column_table(spec)
    L = max([vi.ncat for vi in spec.info] + [2])
    uses = np.zeros((M, K), np.int64)
    thr = np.zeros((M, L + 1))
    for m, md in enumerate(spec.models):
        if md.kind != 2:
            uses[m, md.resp] = 1
        for _, f in md.x_cols + md.z_cols:
            for v, pw in f:
                uses[m, v] = 1
                if pw > CENTRED:
                    uses[m, spec.cen[v]] = 1
        if md.offset >= 0:
            uses[m, md.offset] = 1
        if md.kind == 1:
            kc = spec.info[md.resp].ncat
            thr[m, 0] = -np.inf
            thr[m, 1] = 0.0
            for c in range(2, kc):
                thr[m, c] = c - 1.0
            thr[m, kc:] = np.inf
    own = np.full(K, -1, np.int64)
    for m, md in enumerate(spec.models):
        if md.kind != 2:
            own[md.resp] = m
    obsm = np.full(K, -1, np.int64)
    for km, b in spec.observed_means.items():
        obsm[b] = km
    direct = np.zeros(K, np.int64)
    for v in range(K):
        lone = uses[:, v].sum() == 1 and (obsm[v] < 0 or uses[:, obsm[v]].sum() == 0)
        if own[v] >= 0 and spec.models[own[v]].kind == 0 and lone:
            direct[v] = 1
    mo = MbModels(
        np.array([md.resp for md in spec.models], np.int64),
        np.array([md.kind for md in spec.models], np.int64),
        np.array([md.level for md in spec.models], np.int64),
        xc,
        zc,
        uses,
        thr,
        np.array([vi.level for vi in spec.info], np.int64),
        own,
        direct,
        np.array([md.offset for md in spec.models], np.int64),
        obsm,
        np.array([md.dim for md in spec.models], np.int64),
        _ucols(spec),
        *changing_rows(spec, uses),
    )
    return mo, fvar, fpow


def changing_rows(spec: ModelSpec, uses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rrows, rstart): the rows (clusters for level-2 models) of every model where a variable
    it uses can change during sampling: a level-1 variable where it is missing; a level-2
    variable, latent or observed cluster mean in every row of a cluster where it (its base
    variable) is missing."""
    n, K = spec.R.shape
    start = spec.start
    J = len(start) - 1
    miss = spec.R == 1
    dyn = miss.copy()
    for v, vi in enumerate(spec.info):
        base = spec.observed_means.get(v, v)
        if v in spec.latent:
            dyn[:, v] = True
        elif vi.level == 2 or base != v:
            anym = np.logical_or.reduceat(miss[:, base], start[:-1]) if n else np.zeros(0, bool)
            dyn[:, v] = np.repeat(anym, np.diff(start))
    parts, starts = [], [0]
    for m, md in enumerate(spec.models):
        rows = dyn[:, uses[m] == 1].any(axis=1)
        if md.level == 2:
            rows = rows[start[:-1]] if J else rows[:0]
        idx = np.flatnonzero(rows).astype(np.int64)
        parts.append(idx)
        starts.append(starts[-1] + len(idx))
    return np.concatenate(parts), np.array(starts, np.int64)


class ChainState(NamedTuple):
    """Everything one chain's kernel call takes (see :func:`~._kernel.iterate`)."""

    rng: np.random.Generator
    d: MbData
    mo: MbModels
    lists: tuple
    pv: MbPars
    buf: tuple
    tune: MbTune


def chain_state(spec: ModelSpec, seed, prior: dict) -> ChainState:
    """Start values and the kernel bundles of one chain."""
    rng = np.random.default_rng(seed)
    mo, fvar, fpow = model_tables(spec)
    V = _start_values(spec, rng)
    mis_idx, mis_start = missing_index(spec)
    K = len(spec.names)
    L = mo.thr.shape[1] - 1
    lev = np.zeros((K, L))
    ncat = np.zeros(K, np.int64)
    for v, vi in enumerate(spec.info):
        ncat[v] = vi.ncat
        lev[v, : vi.ncat] = vi.levels
    J = len(spec.start) - 1
    n = V.shape[0]
    d = MbData(
        V,
        spec.R.copy(),
        spec.clus,
        spec.start,
        spec.start[:-1].copy(),
        lev,
        ncat,
        fvar,
        fpow,
        mis_idx,
        mis_start,
        np.array(spec.order, np.int64),
        spec.cen,
        _start_utilities(spec, V),
    )
    datas, pars, works = List(), List(), List()
    for md in spec.models:
        p, q = len(md.x_cols), len(md.z_cols)
        rows = n if md.level == 1 else J
        nclus = J if q > 0 else 1
        st = spec.start if q > 0 else np.array([0, rows], np.int64)
        resp = V[:, md.resp] if md.level == 1 else V[spec.start[:-1], md.resp]
        if md.offset >= 0:
            resp = resp - V[:, md.offset]
        s2 = float(np.var(resp[np.isfinite(resp)])) if md.kind == 0 else 1.0
        s2 = s2 if s2 > 0 else 1.0
        pr = np.array([q + 1.0, prior["psi_scale"] * (s2 if md.kind == 0 else 1.0), 0.0, 0.0])
        mode = 0 if md.kind == 0 else 2
        datas.append(
            rc_data(np.zeros((rows, p)), np.zeros((rows, q)), np.zeros(rows), st, pr, mode)
        )
        par = rc_params(p, q, nclus, s2)
        pars.append(par)
        works.append(rc_work(p, q, nclus))
    pmax = max([len(md.x_cols) for md in spec.models] + [1])
    qmax = max([len(md.z_cols) for md in spec.models] + [1])
    buf = (np.zeros(pmax), np.zeros(qmax), np.zeros(L + 1), np.zeros(L + 1))
    pv = MbPars(
        np.zeros((len(spec.models), pmax)),
        np.zeros((len(spec.models), J, qmax)),
        np.ones(len(spec.models)),
    )
    for m in range(len(spec.models)):
        pv.s2[m] = pars[m].s2[0]
    lists = (datas, pars, works)
    tune = MbTune(
        np.ones(K),
        np.zeros(K),
        np.zeros(K),
        np.zeros((2, K)),
        np.zeros((2, K)),
        np.array([0.0, 1.0, float(WINDOW), TARGET, GAIN]),
    )
    return ChainState(rng, d, mo, lists, pv, buf, tune)


def make_model_chain(spec: ModelSpec, seed, prior: dict, n_burn: int) -> Chain:
    """The driver's Chain for one chain of ``spec``."""
    rng, d, mo, lists, pv, buf, tune = chain_state(spec, seed, prior)
    V = d.V
    npar = len(parameter_names(spec))
    cell_t, cell_r, cell_sorted = cells(spec)
    lv_of = [spec.info[v] for v in spec.imputed]

    def advance(nit, rec0, store):
        tune.ctrl[1] = 1.0 if tune.ctrl[0] < n_burn else 0.0
        code, at = iterate(nit, rec0, rng, d, mo, lists, pv, buf, tune, store["theta"])
        return int(code), int(at)

    def current():
        out = np.empty(len(cell_t))
        for t, v in enumerate(spec.imputed):
            sel = cell_t == t
            vals = V[cell_sorted[sel], v]
            vi = lv_of[t]
            if vi.ncat and vi.categories is None:
                vals = vi.levels[vals.astype(np.int64)]
            out[sel] = vals + spec.delta.get(v, 0.0)
        return out

    def finish(burnin, imputation):
        return {"acc": tune.acc.copy(), "tries": tune.tries.copy(), "scale": tune.scale.copy()}

    return Chain(
        advance,
        shapes={"theta": (npar,)},
        current=current,
        cells=(cell_t, cell_r),
        after_segment=None,
        finish=finish,
    )


def cells(spec: ModelSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(target index, data row position, sorted row) of every missing cell, target-major."""
    ts, rs, ss = [], [], []
    for t, v in enumerate(spec.imputed):
        rows_sorted = np.flatnonzero(spec.R[:, v] == 1)
        data_rows = spec.perm[rows_sorted]
        o = np.argsort(data_rows, kind="stable")
        ts.append(np.full(len(o), t, np.int64))
        rs.append(data_rows[o])
        ss.append(rows_sorted[o])
    if not ts:
        z = np.zeros(0, np.int64)
        return z, z, z
    return np.concatenate(ts), np.concatenate(rs), np.concatenate(ss)
