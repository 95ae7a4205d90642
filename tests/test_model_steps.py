"""NumPy reference tests of the model-based sampler's steps and of the shared Metropolis steps."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from pymitml.samplers import _metropolis as mh
from pymitml.samplers.model import _kernel as K
from pymitml.samplers.model._chain import chain_state
from pymitml.samplers.model._spec import build_spec
from pymitml.samplers.model._terms import parse_rhs

PRIOR = {"psi_scale": 1e-3}


# ---------------------------------------------------------------- shared Metropolis steps
def test_rw_proposal_and_accept_follow_numpy_stream():
    a, b = np.random.default_rng(7), np.random.default_rng(7)
    for k in range(50):
        x = mh.rw_proposal(a, 0.3, 2.0)
        assert x == pytest.approx(0.3 + 2.0 * b.standard_normal(), abs=0, rel=1e-15)
        lr = (k - 25) / 10.0
        assert mh.mh_accept(a, lr) == (math.log(b.random()) < lr)
    assert not mh.mh_accept(a, float("nan"))


def test_adapt_scales_formula():
    scale = np.array([1.0, 2.0, 0.5, 3.0])
    acc = np.array([10.0, 40.0, 0.0, 5.0])
    tries = np.array([40.0, 50.0, 20.0, 0.0])
    want = scale.copy()
    for k in range(3):
        want[k] = scale[k] * math.exp(1.5 * (acc[k] / tries[k] - 0.5))
    mh.adapt_scales(scale, acc, tries, 0.5, 1.5)
    np.testing.assert_allclose(scale, want, rtol=1e-15)
    assert (acc == 0).all() and (tries == 0).all()


def test_adaptation_reaches_target_on_a_normal():
    """Tuning a random walk on N(0, 1) (sd scale 1) drives the acceptance rate to ~0.5."""
    rng = np.random.default_rng(3)
    scale, acc, tries = np.array([20.0]), np.zeros(1), np.zeros(1)
    x = 0.0
    for it in range(4000):
        y = mh.rw_proposal(rng, x, scale[0])
        tries[0] += 1
        if mh.mh_accept(rng, -0.5 * (y * y - x * x)):
            x = y
            acc[0] += 1
        if (it + 1) % 50 == 0:
            mh.adapt_scales(scale, acc, tries, 0.5, 1.0)
    n_acc = 0
    for _ in range(20000):
        y = mh.rw_proposal(rng, x, scale[0])
        if mh.mh_accept(rng, -0.5 * (y * y - x * x)):
            x, n_acc = y, n_acc + 1
    assert abs(n_acc / 20000 - 0.5) < 0.04


# ---------------------------------------------------------------- small numeric steps
def test_log_ndtr_and_log_interval_against_scipy():
    for x in [-40.0, -12.0, -5.0, -4.9, -1.0, 0.0, 2.0, 9.0]:
        assert K.log_ndtr(x) == pytest.approx(stats.norm.logcdf(x), rel=1e-7, abs=1e-12)
    for lo, hi, eta in [
        (-np.inf, 0.0, 0.3),
        (0.0, np.inf, -9.0),
        (0.0, 1.2, 0.5),
        (1.0, 2.0, -30.0),
    ]:
        with np.errstate(divide="ignore"):
            want = np.log(stats.norm.cdf(hi - eta) - stats.norm.cdf(lo - eta))
        if not np.isfinite(want):
            want = stats.norm.logsf(lo - eta) + np.log1p(
                -np.exp(stats.norm.logsf(hi - eta) - stats.norm.logsf(lo - eta))
            )
        assert K.log_interval(lo, hi, eta) == pytest.approx(want, rel=1e-6)


def test_parse_rhs_expands_crossings_and_powers():
    icpt, terms = parse_rhs("x*w + I(x^2) + I(w**3):x - 1", "f")
    assert not icpt
    assert terms == [
        (("x", 1),),
        (("w", 1),),
        (("x", 1), ("w", 1)),
        (("x", 2),),
        (("w", 3), ("x", 1)),
    ]


def _data(seed=0, J=12, nj=6):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    w = rng.normal(size=J)[g]
    z = rng.integers(0, 3, size=n)
    y = 1 + x + 0.5 * w + x * w + rng.normal(size=n)
    x[::5] = np.nan
    y[::7] = np.nan
    b = (rng.random(n) < 0.4).astype(float)
    b[::9] = np.nan
    return pd.DataFrame(
        {"g": g, "x": x, "w": w, "z": pd.Categorical(np.array(["a", "b", "c"])[z]), "y": y, "b": b}
    )


@pytest.fixture(scope="module")
def state():
    df = _data()
    spec = build_spec(
        df,
        "y ~ x + w + x:w + I(x^2) + z + b + (1 + x | g)",
        ordinal=["b"],
        selection={"y": "~ y + x"},
    )
    st = chain_state(spec, 1, PRIOR)
    # parameters away from their start values, as after some iterations
    rng = np.random.default_rng(5)
    st.pv.beta[:] = rng.normal(size=st.pv.beta.shape)
    st.pv.b[:] = 0.5 * rng.normal(size=st.pv.b.shape)
    st.pv.s2[:] = 0.5 + rng.random(size=st.pv.s2.shape)
    return spec, st


def _numpy_design(spec, V, m, which="x"):
    """Design columns of model m from V in NumPy."""
    md = spec.models[m]
    cols = md.x_cols if which == "x" else md.z_cols
    out = np.ones((V.shape[0], len(cols)))
    for c, (_, facs) in enumerate(cols):
        for v, p in facs:
            vi = spec.info[v]
            if p < 0:
                out[:, c] *= V[:, v] == -p
            elif p > 100:  # cwc(x): x minus its cluster mean
                out[:, c] *= (V[:, v] - V[:, spec.cen[v]]) ** (p - 100)
            else:
                val = vi.levels[V[:, v].astype(int)] if vi.ncat else V[:, v]
                out[:, c] *= val**p
    return out


def test_design_rows_against_numpy(state):
    spec, st = state
    d, mo = st.d, st.mo
    for m in range(len(spec.models)):
        if spec.models[m].level != 1:
            continue
        want = _numpy_design(spec, d.V, m)
        out = np.zeros(len(spec.models[m].x_cols))
        for i in range(0, d.V.shape[0], 7):
            K.design_row(d, i, mo.xc[m, 0], mo.xc[m, 1], out)
            np.testing.assert_allclose(out, want[i], rtol=1e-15)
    names = [nm for nm, _ in spec.models[0].x_cols]
    assert names == ["Intercept", "x", "w", "x:w", "I(x^2)", "zb", "zc", "b"]


def _numpy_loglik(spec, st, m, i):
    """Model m's log-likelihood at data row i (level-1 model) in NumPy (without constants)."""
    d, pv = st.d, st.pv
    md = spec.models[m]
    X = _numpy_design(spec, d.V[i : i + 1], m)[0]
    eta = X @ pv.beta[m, : len(X)]
    if md.z_cols:
        Z = _numpy_design(spec, d.V[i : i + 1], m, "z")[0]
        eta += Z @ pv.b[m, d.clus[i], : len(Z)]
    v = md.resp
    if md.kind == 0:
        return -0.5 * (d.V[i, v] - eta) ** 2 / pv.s2[m]
    if md.kind == 1:
        k = int(d.V[i, v])
        thr = st.mo.thr[m]
        return np.log(stats.norm.cdf(thr[k + 1] - eta) - stats.norm.cdf(thr[k] - eta))
    return stats.norm.logcdf(eta if d.R[i, v] else -eta)


def test_conditional_log_posterior_sums_every_model_that_uses_the_variable(state):
    spec, st = state
    d, mo, pv, buf = st.d, st.mo, st.pv, st.buf
    names = spec.names
    for var in ["x", "y", "b"]:
        v = names.index(var)
        users = [m for m in range(len(spec.models)) if mo.uses[m, v]]
        assert len(users) >= 2  # own model + focal (+ selection for x, y)
        for i in range(0, d.V.shape[0], 5):
            want = sum(_numpy_loglik(spec, st, m, i) for m in users)
            got = K.cond_logpost(d, mo, pv, v, i, buf[0], buf[1])
            assert got == pytest.approx(want, rel=1e-10, abs=1e-10)


def test_categorical_draw_matches_exact_conditional(state):
    spec, st = state
    d, mo, pv, buf = st.d, st.mo, st.pv, st.buf
    v = spec.names.index("b")
    i = int(np.flatnonzero(d.R[:, v])[0])
    lp = []
    for k in range(2):
        d.V[i, v] = k
        lp.append(K.cond_logpost(d, mo, pv, v, i, buf[0], buf[1]))
    p1 = 1 / (1 + math.exp(lp[0] - lp[1]))
    rng = np.random.default_rng(2)
    draws = []
    for _ in range(20000):
        K.draw_categorical(rng, d, mo, pv, v, i, buf)
        draws.append(d.V[i, v])
    se = math.sqrt(p1 * (1 - p1) / 20000)
    assert abs(np.mean(draws) - p1) < 4 * se + 1e-3


def test_metropolis_targets_the_exact_normal_conditional():
    """x enters the focal model linearly with a random slope: its full conditional is normal
    with precision 1/s2_x + (b1 + b1j)^2 / s2_y; the Metropolis chain of one cell matches it."""
    rng = np.random.default_rng(4)
    g = np.repeat(np.arange(5), 4)
    x = rng.normal(size=20)
    x[0] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": rng.normal(size=20)})
    spec = build_spec(df, "y ~ x + (1 + x | g)")
    st = chain_state(spec, 1, PRIOR)
    d, mo, pv, buf, tune = st.d, st.mo, st.pv, st.buf, st.tune
    pv.beta[0, :2] = [0.3, 1.2]
    pv.b[0, 0, :2] = [0.2, 0.4]
    pv.s2[0] = 0.8
    pv.beta[1, 0] = -0.5
    pv.b[1, 0, 0] = 0.1
    pv.s2[1] = 1.5
    v = spec.names.index("x")
    yv = d.V[0, spec.names.index("y")]
    slope = 1.2 + 0.4
    prec = 1 / 1.5 + slope**2 / 0.8
    mean = ((-0.5 + 0.1) / 1.5 + slope * (yv - 0.3 - 0.2) / 0.8) / prec
    tune.scale[v] = 1.0
    r = np.random.default_rng(9)
    out = np.empty(40000)
    for k in range(len(out)):
        K.draw_metropolis(r, d, mo, pv, v, 0, buf, tune, 1)
        out[k] = d.V[0, v]
    sd = 1 / math.sqrt(prec)
    assert abs(out.mean() - mean) < 0.05 * sd + 4 * sd / math.sqrt(len(out) / 20)
    assert abs(out.std() / sd - 1) < 0.05
    assert 0.2 < tune.acc[1, v] / tune.tries[1, v] < 0.9


def test_latents_truncated_by_their_response(state):
    spec, st = state
    d, mo, pv, buf = st.d, st.mo, st.pv, st.buf
    datas = st.lists[0]
    rng = np.random.default_rng(1)
    for m, md in enumerate(spec.models):
        if md.kind == 0:
            continue
        K.refresh_model(d, mo, m, datas[m])
        K.draw_latents(rng, d, mo, m, datas[m], pv, buf)
        z = datas[m].y
        if md.kind == 2:
            r = d.R[:, md.resp]
            assert (z[r == 1] > 0).all() and (z[r == 0] < 0).all()
        else:
            k = d.V[:, md.resp].astype(int)
            assert (z[k == 1] > 0).all() and (z[k == 0] < 0).all()


def test_ordinal_threshold_step_targets_its_exact_posterior():
    """Three categories: one free threshold t2; with the coefficients fixed its posterior (flat
    prior, latents integrated out) is prod_r P(c_r | eta_r, t2), computed on a grid."""
    rng = np.random.default_rng(3)
    n = 60
    g = np.repeat(np.arange(6), 10)
    o = rng.integers(0, 3, size=n).astype(float)
    o[:3] = np.nan
    df = pd.DataFrame({"g": g, "y": rng.normal(size=n), "o": o})
    spec = build_spec(df, "y ~ o + (1 | g)", ordinal=["o"])
    st = chain_state(spec, 1, PRIOR)
    d, mo, pv, buf, tune = st.d, st.mo, st.pv, st.buf, st.tune
    m = [k for k, md in enumerate(spec.models) if md.label == "o"][0]
    v = spec.names.index("o")
    pv.beta[m, 0] = 0.2
    pv.b[m, :, 0] = 0.3 * rng.normal(size=pv.b.shape[1])
    dm = st.lists[0][m]
    K.refresh_model(d, mo, m, dm)
    eta = 0.2 + pv.b[m, d.clus, 0]
    cat = d.V[:, v].astype(int)
    grid = np.linspace(1e-3, 4, 4000)
    lo = np.where(cat == 0, -np.inf, np.where(cat == 1, 0.0, grid[:, None]))
    hi = np.where(cat == 0, 0.0, np.where(cat == 1, grid[:, None], np.inf))
    logp = np.log(stats.norm.cdf(hi - eta) - stats.norm.cdf(lo - eta)).sum(1)
    w = np.exp(logp - logp.max())
    w /= w.sum()
    mean = (w * grid).sum()
    sd = math.sqrt((w * (grid - mean) ** 2).sum())
    tune.scale[v] = 3.0
    r = np.random.default_rng(5)
    out = np.empty(30000)
    for k in range(len(out)):
        K.draw_thresholds(r, d, mo, m, dm, pv, buf, tune, 1)
        out[k] = mo.thr[m, 2]
    assert mo.thr[m, 1] == 0.0 and mo.thr[m, 3] == np.inf
    assert abs(out.mean() - mean) < 0.06 * sd + 4 * sd / math.sqrt(len(out) / 30)
    assert abs(out.std() / sd - 1) < 0.06
    # the summed log-likelihood against NumPy
    mo.thr[m, 2] = 1.3
    want = np.log(
        stats.norm.cdf(np.where(cat == 0, 0.0, np.where(cat == 1, 1.3, np.inf)) - eta)
        - stats.norm.cdf(np.where(cat == 0, -np.inf, np.where(cat == 1, 0.0, 1.3)) - eta)
    ).sum()
    assert K._thresholds_loglik(d, mo, pv, m, n, buf) == pytest.approx(want, rel=1e-10)


def test_r2_shares_against_numpy_at_every_draw():
    """With complete predictors the focal design is fixed: every stored R2 draw equals the
    Rights-Sterba shares computed in NumPy from the same iteration's beta, Psi and s2."""
    import pymitml as pm

    rng = np.random.default_rng(1)
    g = np.repeat(np.arange(15), 8)
    x = rng.normal(size=120)
    y = 1 + x + rng.normal(size=15)[g] + rng.normal(size=120)
    y[::6] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": y})
    imp = pm.model_impute(
        df, "y ~ x + (1 + x | g)", m=1, n_burn=10, n_iter=30, chains=1, seed=2, verbose=False
    )
    idx = list(imp.extra["parameter_index"])
    dr = imp.draws[:, :, 0]
    col = {
        k: dr[idx.index(("y", k))]
        for k in [
            "Intercept",
            "x",
            "Var(Intercept)",
            "Cov(x,Intercept)",
            "Var(x)",
            "Residual Var.",
            "R2 fixed",
            "R2 random",
        ]
    }
    for t in range(dr.shape[1]):
        f = col["Intercept"][t] + col["x"][t] * x
        psi = np.array(
            [
                [col["Var(Intercept)"][t], col["Cov(x,Intercept)"][t]],
                [col["Cov(x,Intercept)"][t], col["Var(x)"][t]],
            ]
        )
        Z = np.column_stack([np.ones(120), x])
        vr = np.einsum("ia,ab,ib->i", Z, psi, Z).mean()
        tot = f.var() + vr + col["Residual Var."][t]
        assert col["R2 fixed"][t] == pytest.approx(f.var() / tot, rel=1e-10)
        assert col["R2 random"][t] == pytest.approx(vr / tot, rel=1e-10)


def test_level2_conditional_sums_the_rows_of_its_cluster():
    rng = np.random.default_rng(6)
    g = np.repeat(np.arange(8), 5)
    w = rng.normal(size=8)
    w[[1, 4]] = np.nan
    x = rng.normal(size=40)
    df = pd.DataFrame({"g": g, "w": w[g], "x": x, "y": x + rng.normal(size=40)})
    spec = build_spec(df, "y ~ x + w + x:w + (1 + x | g)")
    st = chain_state(spec, 1, PRIOR)
    d, mo, pv, buf = st.d, st.mo, st.pv, st.buf
    r = np.random.default_rng(2)
    pv.beta[:] = r.normal(size=pv.beta.shape)
    pv.b[:] = r.normal(size=pv.b.shape)
    v = spec.names.index("w")
    assert mo.vlevel[v] == 2 and list(d.mis_idx[d.mis_start[v] : d.mis_start[v + 1]]) == [1, 4]
    for j in [1, 4]:
        for val in [-1.0, 0.7]:
            K.set_value(d, True, v, j, val)
            rows = range(d.start[j], d.start[j + 1])
            focal = sum(_numpy_loglik(spec, st, 0, i) for i in rows)
            m2 = [k for k, md in enumerate(spec.models) if md.label == "w"][0]
            own = -0.5 * (val - pv.beta[m2, 0]) ** 2 / pv.s2[m2]
            assert K.cond_logpost(d, mo, pv, v, j, buf[0], buf[1]) == pytest.approx(
                focal + own, rel=1e-12
            )
            assert (d.V[d.start[j] : d.start[j + 1], v] == val).all()


def test_observed_cluster_means_follow_the_imputed_values():
    rng = np.random.default_rng(8)
    g = np.repeat(np.arange(6), 7)
    x = rng.normal(size=42)
    x[::3] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": rng.normal(size=42)})
    spec = build_spec(df, "y ~ cwc(x) + cmean(x) + (1 | g)", cluster_means="observed")
    st = chain_state(spec, 1, PRIOR)
    v, km = spec.names.index("x"), spec.names.index("x.mean")
    from pymitml.samplers.model._chain import parameter_names

    theta = np.zeros((len(parameter_names(spec)), 30))
    code, _ = K.iterate(30, 0, st.rng, st.d, st.mo, st.lists, st.pv, st.buf, st.tune, theta)
    assert code == 0
    V = st.d.V
    want = pd.Series(V[:, v]).groupby(st.d.clus).transform("mean").to_numpy()
    np.testing.assert_allclose(V[:, km], want, rtol=1e-10, atol=1e-12)
    assert st.tune.tries[0, v] > 0 and st.mo.direct[v] == 0
    # the full conditional of one cell sums the focal model over the whole cluster
    i = int(np.flatnonzero(st.d.R[:, v])[0])
    j = st.d.clus[i]
    focal = sum(_numpy_loglik(spec, st, 0, r) for r in range(st.d.start[j], st.d.start[j + 1]))
    own = _numpy_loglik(spec, st, 1, i)
    got = K.cond_logpost(st.d, st.mo, st.pv, v, i, st.buf[0], st.buf[1])
    assert got == pytest.approx(focal + own, rel=1e-10)


def test_nominal_utilities_loglik_and_truncation():
    rng = np.random.default_rng(11)
    n = 40
    g = np.repeat(np.arange(8), 5)
    z = rng.normal(size=n)
    c = rng.integers(0, 4, size=n)
    cats = np.array(["p", "q", "r", "s"])
    cc = pd.Categorical(cats[c], categories=list(cats))
    cc[::6] = np.nan
    df = pd.DataFrame({"g": g, "z": z, "c": cc, "y": rng.normal(size=n)})
    spec = build_spec(df, "y ~ c + z + (1 | g)")
    st = chain_state(spec, 1, PRIOR)
    d, mo, pv, buf = st.d, st.mo, st.pv, st.buf
    subs = [m for m, md in enumerate(spec.models) if md.kind == 4]
    assert len(subs) == 3 and list(mo.dim[subs]) == [1, 2, 3]
    pv.beta[subs, :2] = rng.normal(size=(3, 2))
    v = spec.names.index("c")
    for _ in range(3):
        K.draw_nominal(rng, d, mo, pv, subs[0], buf)
    U = d.U[:, mo.ucol[subs[0]] : mo.ucol[subs[0]] + 3]
    code = d.V[:, v].astype(int)
    implied = np.where((U < 0).all(1), 0, U.argmax(1) + 1)
    np.testing.assert_array_equal(code, implied)  # categories agree with the utilities
    obs = d.R[:, v] == 0
    np.testing.assert_array_equal(code[obs], pd.Categorical(df.c).codes[spec.perm][obs])
    Sigma = np.full((3, 3), K.RHO) + (1 - K.RHO) * np.eye(3)
    W = np.column_stack([np.ones(n), d.V[:, spec.names.index("z")]])
    for i in range(0, n, 7):
        e = U[i] - W[i] @ pv.beta[subs, :2].T
        want = -0.5 * e @ np.linalg.solve(Sigma, e)
        got = K.nominal_loglik(d, mo, pv, subs[0], i, buf[0], buf[1])
        assert got == pytest.approx(want, rel=1e-10)
    w, s = K.nominal_consts(3)
    # conditional of u_1 given u_2, u_3 from the joint normal
    S12 = Sigma[0, 1:] @ np.linalg.inv(Sigma[1:, 1:])
    assert np.allclose(S12, w) and s == pytest.approx(np.sqrt(1 - S12 @ Sigma[1:, 0]), rel=1e-12)


def test_refresh_nominal_conditional_regression():
    """Sub-model k's rows: (u_k - w sum_{l != k} (u_l - eta_l)) / s on design / s."""
    rng = np.random.default_rng(12)
    n = 30
    z = rng.normal(size=n)
    cc = pd.Categorical(np.array(["p", "q", "r"])[rng.integers(0, 3, size=n)])
    cc[::5] = np.nan
    df = pd.DataFrame({"g": np.repeat(np.arange(6), 5), "z": z, "c": cc, "y": rng.normal(size=n)})
    spec = build_spec(df, "y ~ c + z + (1 | g)")
    st = chain_state(spec, 1, PRIOR)
    d, mo, pv, buf = st.d, st.mo, st.pv, st.buf
    subs = [m for m, md in enumerate(spec.models) if md.kind == 4]
    pv.beta[subs, :2] = rng.normal(size=(2, 2))
    d.U[:, :2] = rng.normal(size=(n, 2))
    W = np.column_stack([np.ones(n), d.V[:, spec.names.index("z")]])
    eta = W @ pv.beta[subs, :2].T
    w, s = K.nominal_consts(2)
    for k, m in enumerate(subs):
        dm = st.lists[0][m]
        K.refresh_nominal(d, mo, pv, m, dm, buf)
        other = 1 - k
        want_y = (d.U[:, k] - w * (d.U[:, other] - eta[:, other])) / s
        np.testing.assert_allclose(dm.y, want_y, rtol=1e-12)
        np.testing.assert_allclose(dm.X, W / s, rtol=1e-12)


def test_residual_correlations_equal_numpy():
    """The stored residual correlations are those of e_m = y_m - X beta_m - Z b_m,j of the
    level-1 linear and probit models (latent responses), each pair once."""
    from pymitml.samplers.model._chain import parameter_names

    rng = np.random.default_rng(11)
    g = np.repeat(np.arange(10), 8)
    x = rng.normal(size=80)
    y = x + rng.normal(size=10)[g] + rng.normal(size=80)
    b = (x + rng.normal(size=80) > 0).astype(float)
    x[::5] = np.nan
    y[1::7] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "y": y, "b": b})
    df.loc[::9, "b"] = np.nan
    spec = build_spec(df, "y ~ x + b + (1 + x | g)", selection={"y": "~ y"})
    st = chain_state(spec, 1, PRIOR)
    names = parameter_names(spec)
    theta = np.zeros((len(names), 5))
    code, _ = K.iterate(5, 0, st.rng, st.d, st.mo, st.lists, st.pv, st.buf, st.tune, theta)
    assert code == 0
    datas, pars, _w = st.lists
    res = [m for m, md in enumerate(spec.models) if md.level == 1 and md.kind in (0, 1, 2)]
    assert len(res) >= 3  # focal y, x's and b's models, y's selection model
    E = []
    for m in res:
        dm, par = datas[m], pars[m]
        e = dm.y - dm.X @ par.beta
        if dm.Z.shape[1]:
            e = e - np.einsum("ij,ij->i", dm.Z, par.b[st.d.clus])
        E.append(e)
    want = np.corrcoef(np.array(E))
    got = {p: theta[k, -1] for k, (lab, p) in enumerate(names) if lab == "Residual cor."}
    labels = [spec.models[m].label for m in res]
    assert len(got) == len(res) * (len(res) - 1) // 2
    for a in range(len(res)):
        for c in range(a + 1, len(res)):
            assert got[f"{labels[a]}, {labels[c]}"] == pytest.approx(
                want[a, c], rel=1e-9, abs=1e-12
            )


@pytest.mark.parametrize("cluster_means", ["latent", "observed"])
def test_partial_refresh_equals_full_refresh(cluster_means):
    """Refreshing only the rows that can change (missing level-1 values, clusters with a missing
    level-2 value or cluster mean) gives the same chain, draw for draw, as refreshing every row
    of every model at every iteration."""
    rng = np.random.default_rng(4)
    J, nj = 12, 7
    g = np.repeat(np.arange(J), nj)
    n = J * nj
    x = rng.normal(size=n)
    w = rng.normal(size=J)[g]
    o = rng.integers(0, 3, n).astype(float)
    c = pd.Categorical(np.array(["a", "b", "c"])[rng.integers(0, 3, n)])
    y = x + w + o + rng.normal(size=n)
    x[::5] = np.nan
    w[g % 4 == 1] = np.nan
    o[::7] = np.nan
    c[::6] = np.nan
    y[::4] = np.nan
    df = pd.DataFrame({"g": g, "x": x, "w": w, "o": o, "c": c, "y": y})
    spec = build_spec(
        df,
        "y ~ cwc(x) + cmean(x) + w + x:w + o + c + (1 + x | g)",
        ordinal=["o"],
        cluster_means=cluster_means,
    )
    out = []
    for full in (False, True):
        st = chain_state(spec, 3, PRIOR)
        mo = st.mo
        if full:  # every row of every model listed as changing
            rows = [np.arange(dm.X.shape[0]) for dm in st.lists[0]]
            mo = mo._replace(
                rrows=np.concatenate(rows).astype(np.int64),
                rstart=np.cumsum([0] + [len(r) for r in rows]).astype(np.int64),
            )
        else:
            assert len(mo.rrows) < sum(dm.X.shape[0] for dm in st.lists[0])  # rows skipped
        theta = np.zeros((200, 40))
        code, _ = K.iterate(40, 0, st.rng, st.d, mo, st.lists, st.pv, st.buf, st.tune, theta)
        assert code == 0
        out.append((theta, st.d.V.copy()))
    np.testing.assert_array_equal(out[0][0], out[1][0])
    np.testing.assert_array_equal(out[0][1], out[1][1])
