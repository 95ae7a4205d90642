"""Running an R script for the benchmarks: write it to a temporary file, run Rscript, return stdout."""

from __future__ import annotations

import os
import subprocess
import tempfile


def run_rscript(code: str, *args: str) -> str:
    """Run ``code`` with ``Rscript`` and command-line ``args``; stdout as text (raises on failure)."""
    with tempfile.NamedTemporaryFile("w", suffix=".R", delete=False) as fh:
        fh.write(code)
        script = fh.name
    try:
        return subprocess.run(
            ["Rscript", script, *map(str, args)], capture_output=True, text=True, check=True
        ).stdout
    finally:
        os.unlink(script)
