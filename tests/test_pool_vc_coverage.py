"""Coverage of pool_variance_components' intervals (slow; the full study is
benchmarks/study_vc_coverage.py, 500 replications per design)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

STUDY = Path(__file__).resolve().parents[1] / "benchmarks" / "study_vc_coverage.py"


def _study():
    spec = importlib.util.spec_from_file_location("study_vc_coverage", STUDY)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
@pytest.mark.parametrize("design", ["intercept", "slope"])
def test_vc_interval_coverage(design):
    reps = 100
    tab = _study().run(design, reps=reps, m=5)
    # 95% intervals: with 100 replications the Monte Carlo SE of a rate is about 0.022; a rate
    # outside [0.88, 0.995] would be far beyond the 92-98% aimed at in the 500-replication study
    assert tab.attrs["used"] >= 0.9 * reps
    cov = tab["coverage"]
    assert np.all(cov >= 0.88), tab
    # the random-slope SD's intervals are conservative (98.0% over 500 replications with
    # m = 10): no upper bound for that one
    assert np.all(cov.drop("sd(x)|g", errors="ignore") <= 0.995), tab
    # calibrated intervals: the mean pooled SE is close to the empirical SD of the estimates
    ratio = tab["mean_se"] / tab["emp_sd"]
    assert np.all((ratio > 0.75) & (ratio < 1.35)), tab
