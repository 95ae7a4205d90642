"""The three-level joint model against the truth (benchmarks/study_pan3.py).

Slow: 100 replications (m = 10) of the random-intercept and class-level random-slope designs:
the pooled lmer estimates (fixed effects and the variance components at every level) have
relative bias below 10% and 95% coverage in 90-98% (the slope design with a class-level prior
scale Dinv = 0.1 I; under pan's default the slope variance follows the prior, as two-level
pan's does: second slow test), and the naive two-level imputation (class as the only cluster)
biases the school variance down. Quick: four replications of each design
with looser bounds that a wrong sampler still fails (a sampler without the school level, the
naive one, fails the quick school-variance check)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "study_pan3.py"


def _study():
    spec = importlib.util.spec_from_file_location("study_pan3", STUDY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


study = _study()
SCHOOL = "var(Intercept)|school"


@pytest.mark.parametrize("design", ["intercept", "slope"])
def test_a_few_replications_recover_the_truth(design):
    reps = [study.replicate(design, seed=3 + 1000 * k, m=5) for k in range(4)]
    tab = study.summarise(design, reps)
    print(tab.round(3).to_string())
    loose = {q: (60.0 if q.startswith("var") and q != "var(Residual)" else 15.0) for q in tab.index}
    for q, lim in loose.items():
        assert abs(tab.loc[q, "pan3:bias%"]) < lim, (q, tab.loc[q])
        assert tab.loc[q, "pan3:cover"] >= 0.75, (q, tab.loc[q])
    # against the complete data of the same replications the imputation adds little bias
    for q in tab.index:
        means = np.array([r["pan3"][q][0] - r["complete"][q][0] for r in reps])
        assert abs(means.mean()) < 0.25 * study.TRUTH[design][q] + 0.01, (q, means)
    assert tab.loc[SCHOOL, "naive:bias%"] < tab.loc[SCHOOL, "pan3:bias%"]


@pytest.mark.slow
@pytest.mark.parametrize(("design", "dinv"), [("intercept", None), ("slope", 0.1)])
def test_bias_and_coverage_over_replications(design, dinv):
    # Measured (seeds 1 + 1000 k; docs/guide/three_level.md): every quantity within 8.8% of the
    # truth with coverage 0.90-0.98. The slope design runs with Dinv = 0.1 I at the class level:
    # under pan's default Dinv = I, large beside a slope variance of 0.05 estimated from
    # 10-pupil classes, that variance comes out +26% (coverage 0.83), and so does two-level
    # pan's (+27%), which shares the class level (test below).
    tab = study.run(design, reps=100, m=10, dinv=dinv)
    print(tab.round(3).to_string())
    assert np.all(np.abs(tab["pan3:bias%"]) < 10.0), tab["pan3:bias%"]
    assert np.all((tab["pan3:cover"] >= 0.90) & (tab["pan3:cover"] <= 0.98)), tab["pan3:cover"]
    assert tab.loc[SCHOOL, "naive:bias%"] < -10.0


@pytest.mark.slow
def test_default_prior_slope_variance_equals_two_level_pans():
    """Under pan's default prior the class-level slope variance is overestimated by the
    three-level model exactly as by two-level pan (measured +26.2% and +26.5%), and the other
    quantities still meet the bounds."""
    tab = study.run("slope", reps=100, m=10)
    slope_var = "var(x)|school:class"
    row = tab.loc[slope_var]
    assert abs(row["pan3:bias%"] - row["naive:bias%"]) < 5.0, row
    main = tab.drop(index=[slope_var])
    assert np.all(np.abs(main["pan3:bias%"]) < 10.0), main["pan3:bias%"]
    assert np.all((main["pan3:cover"] >= 0.90) & (main["pan3:cover"] <= 0.98)), main["pan3:cover"]
