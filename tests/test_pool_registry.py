"""The model registry of pymitml.pool: statsmodels OLS / GLM / MixedLM fits pooled out of the box
(checked against Rubin's rules and the D1 statistic written out with NumPy), and a class a user
registers with pm.register_model."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import pymitml as pm
from pymitml.pool._registry import adapter_for

sm = pytest.importorskip("statsmodels.api")
smf = pytest.importorskip("statsmodels.formula.api")

M = 4


@pytest.fixture(scope="module")
def frames() -> list[pd.DataFrame]:
    """M 'completed' data sets: one design, the imputed column x differs between them."""
    rng = np.random.default_rng(7)
    n, groups = 240, 24
    g = np.repeat(np.arange(groups), n // groups)
    w = rng.normal(size=n)
    x_obs = rng.normal(size=n)
    miss = rng.random(n) < 0.3
    u = rng.normal(scale=0.6, size=groups)[g]
    out = []
    for _ in range(M):
        x = np.where(miss, x_obs + rng.normal(scale=0.8, size=n), x_obs)
        eta = 0.4 + 0.8 * x - 0.5 * w
        y = eta + u + rng.normal(size=n)
        b = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(float)
        out.append(pd.DataFrame({"y": y, "b": b, "x": x, "w": w, "g": g}))
    return out


def rubin(qhat: np.ndarray, uhat: np.ndarray) -> pd.DataFrame:
    """Rubin's rules (Rubin 1987; df of Rubin & Schenker 1986), written out."""
    m = qhat.shape[0]
    q_bar = qhat.mean(axis=0)
    u_bar = uhat.mean(axis=0).diagonal()
    b = qhat.var(axis=0, ddof=1)
    t = u_bar + (1 + 1 / m) * b
    riv = (1 + 1 / m) * b / u_bar
    df = (m - 1) * (1 + 1 / riv) ** 2
    se = np.sqrt(t)
    return pd.DataFrame(
        {
            "Estimate": q_bar,
            "Std.Error": se,
            "t.value": q_bar / se,
            "df": df,
            "P(>|t|)": 2 * stats.t.sf(np.abs(q_bar / se), df),
            "RIV": riv,
            "FMI": (riv + 2 / (df + 3)) / (riv + 1),
        }
    )


def by_hand(fits, k: int | None = None) -> pd.DataFrame:
    qhat = np.stack([np.asarray(f.params)[:k] for f in fits])
    uhat = np.stack([np.asarray(f.cov_params())[:k, :k] for f in fits])
    return rubin(qhat, uhat)


def assert_pooled(got: pd.DataFrame, want: pd.DataFrame, names) -> None:
    assert list(got.index) == list(names)
    for c in want.columns:
        np.testing.assert_allclose(got[c].to_numpy(), want[c].to_numpy(), rtol=1e-10, err_msg=c)


def test_ols_pools_by_rubins_rules(frames):
    fits = [smf.ols("y ~ x + w", d).fit() for d in frames]
    est = pm.pool_estimates(fits)
    assert_pooled(est.table, by_hand(fits), fits[0].params.index)


def test_ols_extra_pars_is_the_residual_variance(frames):
    fits = [smf.ols("y ~ x + w", d).fit() for d in frames]
    extra = pm.pool_estimates(fits, extra_pars=True).extra
    assert list(extra.index) == ["Residual~~Residual"]
    np.testing.assert_allclose(extra.iloc[0, 0], np.mean([f.mse_resid for f in fits]), rtol=1e-12)


def test_glm_binomial_pools_by_rubins_rules(frames):
    fits = [smf.glm("b ~ x + w", d, family=sm.families.Binomial()).fit() for d in frames]
    est = pm.pool_estimates(fits)
    assert_pooled(est.table, by_hand(fits), fits[0].params.index)


def test_unwrapped_statsmodels_results_pool_too(frames):
    fits = [smf.ols("y ~ x + w", d).fit() for d in frames]
    raw = [f._results for f in fits]  # results without the pandas wrapper
    est = pm.pool_estimates(raw)
    np.testing.assert_allclose(est.table["Estimate"], pm.pool_estimates(fits).table["Estimate"])


def test_mixedlm_pools_the_fixed_effects(frames):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' own convergence chatter
        fits = [smf.mixedlm("y ~ x + w", d, groups="g").fit(reml=True) for d in frames]
    est = pm.pool_estimates(fits)
    k = fits[0].k_fe
    assert_pooled(est.table, by_hand(fits, k), fits[0].params.index[:k])


def test_compare_models_d1_by_hand(frames):
    fits = [smf.ols("y ~ x + w", d).fit() for d in frames]
    null = [smf.ols("y ~ w", d).fit() for d in frames]
    res = pm.compare_models(fits, null, method="D1")
    # D1 (Li, Raghunathan & Rubin 1991) on the coefficient of x, written out
    i = list(fits[0].params.index).index("x")
    q = np.array([[f.params.iloc[i]] for f in fits])
    u = np.array([[[f.cov_params().iloc[i, i]]] for f in fits])
    m, k = q.shape
    q_bar, u_bar = q.mean(axis=0), u.mean(axis=0)
    b = np.atleast_2d(np.cov(q, rowvar=False, ddof=1))
    r = (1 + 1 / m) * np.trace(np.linalg.solve(u_bar, b)) / k
    f = float(q_bar @ np.linalg.solve((1 + r) * u_bar, q_bar) / k)
    t = k * (m - 1)
    v = (
        4 + (t - 4) * (1 + (1 - 2 / t) / r) ** 2
        if t > 4
        else t * (1 + 1 / k) * (1 + 1 / r) ** 2 / 2
    )
    row = res.table.iloc[0]
    np.testing.assert_allclose(
        [row["F.value"], row["df1"], row["df2"], row["P(>F)"], row["RIV"]],
        [f, k, v, stats.f.sf(f, k, v), r],
        rtol=1e-10,
    )


def test_compare_models_d2_likelihood_uses_the_registry(frames):
    fits = [smf.ols("y ~ x + w", d).fit() for d in frames]
    null = [smf.ols("y ~ w", d).fit() for d in frames]
    res = pm.compare_models(fits, null, method="D2", use="likelihood")
    assert np.isfinite(res.table.iloc[0]["F.value"])
    assert adapter_for(fits[0]).likelihood(fits[0]) is not None


class _MyFit:
    """A model class pymitml has never heard of."""

    def __init__(self, b, v):
        self.b, self.v = np.asarray(b, dtype=float), np.asarray(v, dtype=float)


class _MySubFit(_MyFit):
    pass


def test_user_registered_class_pools():
    rng = np.random.default_rng(3)
    qhat = rng.normal(size=(5, 2)) + [1.0, -2.0]
    uhat = np.stack([np.diag(rng.uniform(0.05, 0.2, size=2)) for _ in range(5)])
    with pytest.raises(TypeError, match="register_model"):
        pm.pool_estimates([_MyFit(q, u) for q, u in zip(qhat, uhat)])

    pm.register_model(_MyFit, lambda f: (pd.Series(f.b, index=["a", "b"][: f.b.size]), f.v))
    est = pm.pool_estimates([_MySubFit(q, u) for q, u in zip(qhat, uhat)])  # subclasses too
    assert_pooled(est.table, rubin(qhat, uhat), ["a", "b"])
    with pytest.warns(UserWarning, match="variance components not supported"):
        assert (
            pm.pool_estimates([_MyFit(q, u) for q, u in zip(qhat, uhat)], extra_pars=True).extra
            is None
        )
    res = pm.compare_models(
        [_MyFit(q, u) for q, u in zip(qhat, uhat)],
        [_MyFit(q[:1], u[:1, :1]) for q, u in zip(qhat, uhat)],
        method="D1",
    )
    assert res.table.iloc[0]["df1"] == 1


def test_register_model_as_decorator_with_variance_components():
    class Fit:
        def __init__(self, b):
            self.b = b

    @pm.register_model(Fit, variance_components=lambda f: pd.Series({"s2": 2.0 * f.b}))
    def _(fit):
        return np.array([fit.b]), np.array([[0.1]])  # plain arrays: names Parameter.1

    est = pm.pool_estimates([Fit(1.0), Fit(1.5), Fit(0.5)], extra_pars=True)
    assert list(est.table.index) == ["Parameter.1"]
    np.testing.assert_allclose(est.extra.loc["s2", "Estimate"], 2.0)


def test_register_model_by_name_waits_for_the_module():
    key = "pymitml_no_such_module:Fit"
    pm.register_model(key, lambda f: (np.zeros(1), np.eye(1)))
    from pymitml.pool import _registry

    assert key in _registry._PENDING
    with pytest.raises(ValueError, match="module:QualName"):
        pm.register_model("no_colon", lambda f: None)
    with pytest.raises(TypeError, match="function of the fit"):
        pm.register_model(_MyFit, estimates=3)
    _registry._PENDING.pop(key)


def test_wave1_spelling_extract_estimates_register_still_works():
    class Old:
        pass

    @pm.pool.extract_estimates.register(Old)
    def _(fit):
        return pd.Series([1.0], index=["a"]), pd.DataFrame([[1.0]], ["a"], ["a"])

    coef, vcov = pm.pool.extract_estimates(Old())
    assert list(coef.index) == ["a"] and vcov.shape == (1, 1)
