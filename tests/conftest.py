"""Shared test fixtures.

R tests: in CI (environment variable CI set) R must be present and R tests must run; outside CI a
test that needs R is skipped when R or rpy2 is missing, with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess

# OpenBLAS picks its kernels by CPU (DYNAMIC_ARCH): on an AVX-512 machine its level-2/3 kernels
# sum in another order than on the AVX2 machine the golden draws were frozen on (jomo's level-2
# step differed in the 14th digit). The golden files check the code, not the CPU, so the tests
# pin OpenBLAS to one kernel set before numpy loads it; a caller's own setting wins.
os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")

import pytest  # noqa: E402

R_PACKAGES = ("lme4", "mitml", "jomo", "pan", "mice", "haven", "lmerTest", "pbkrtest")


def _r_status() -> str | None:
    """None if R, rpy2 and the reference packages work, else why not."""
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH (install r-base-core and r-cran-* from Debian, see README)"
    pkgs = ",".join(f'"{p}"' for p in R_PACKAGES)
    code = f"for (p in c({pkgs})) library(p, character.only=TRUE)"
    r = subprocess.run(["Rscript", "-e", code], capture_output=True, text=True)
    if r.returncode != 0:
        return "an R reference package is missing: " + r.stderr.strip()[-300:]
    try:
        _import_robjects()
    except Exception as exc:  # pragma: no cover - depends on the machine
        return f"rpy2 does not load: {exc}"
    return None


def _import_robjects():
    """Import rpy2.robjects, undoing its LD_LIBRARY_PATH change (it would make Python
    subprocesses started later load the system libpython)."""
    before = os.environ.get("LD_LIBRARY_PATH")
    import rpy2.robjects as ro

    if before is None:
        os.environ.pop("LD_LIBRARY_PATH", None)
    else:
        os.environ["LD_LIBRARY_PATH"] = before
    return ro


_STATUS: list = []


def r_unavailable() -> str | None:
    if not _STATUS:
        _STATUS.append(_r_status())
    return _STATUS[0]


@pytest.fixture(scope="session")
def needs_r():
    """Use in a test that needs R: skips outside CI when R is missing, fails in CI."""
    why = r_unavailable()
    if why is not None:
        if os.environ.get("CI"):
            pytest.fail(f"R is required in CI but unavailable: {why}")
        pytest.skip(f"needs R: {why}")
    return True


@pytest.fixture(scope="session")
def R(needs_r):
    """rpy2's ``robjects.r`` with lme4 and mitml loaded (quietly)."""
    ro = _import_robjects()
    from rpy2.rinterface_lib import callbacks

    callbacks.consolewrite_warnerror = lambda s: None
    ro.r("suppressPackageStartupMessages({library(lme4); library(mitml)})")
    return ro.r
