"""pymitml._numba: kernels compiled for their jitted callers, entered from Python through a twin;
``glue=True`` entry points (compiled for less compile time) give the same numbers, and their
machine code is cached across processes."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import pymitml._numba as nb
from pymitml._numba import njit

pytestmark = pytest.mark.skipif(
    not nb.LINKED_CALLEES or nb.PLAIN, reason="plain numba.njit: no twins, no entry libraries"
)


@njit(nrt=False)
def _step(x, out):
    s = 0.0
    for i in range(x.shape[0]):
        s += x[i] * x[i] + 0.1 * x[i]
        out[i] = s
    return s


@njit(nrt=False, glue=True)
def _glue_kernel(x, out):
    return _step(x, out)


@njit(nrt=False)
def _plain_kernel(x, out):
    return _step(x, out)


def test_glue_entry_point_gives_the_same_bits_and_marks_only_its_wrapper():
    x = np.random.default_rng(1).normal(size=1001)
    a, b = np.empty_like(x), np.empty_like(x)
    ra, rb = _glue_kernel(x, a), _plain_kernel(x, b)
    assert ra == rb and np.array_equal(a.view(np.int64), b.view(np.int64))
    twin = _glue_kernel._twin
    lib = twin.overloads[twin.signatures[0]].library
    assert isinstance(lib, nb._EntryLibrary)
    assert not isinstance(
        _plain_kernel._twin.overloads[_plain_kernel._twin.signatures[0]].library, nb._EntryLibrary
    )


def test_glue_entry_point_is_cached_across_processes(tmp_path):
    code = textwrap.dedent(
        """
        import numpy as np
        from pymitml.samplers._jomo_kernel import jomo_iterate
        from pymitml.samplers import _jomo_chain
        import pymitml as pm
        df = pm.datasets.random_intercept(n_clusters=5, cluster_size=4, seed=1)
        imp = pm.jomo_impute(df, "y + x ~ 1 + z + (1|id)", m=1, n_burn=2, n_iter=1, seed=1)
        twin = jomo_iterate._twin
        print(len(twin.stats.cache_hits), len(twin.stats.cache_misses),
              float(np.nansum(imp.replacement)))
        """
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [
        subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
        for _ in range(2)
    ]
    for r in runs:
        assert r.returncode == 0, r.stderr
    first, second = (r.stdout.split() for r in runs)
    assert first[:2] == ["0", "1"]  # compiled
    assert second[:2] == ["1", "0"]  # loaded from the cache
    assert first[2] == second[2]
