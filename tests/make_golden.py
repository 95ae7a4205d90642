"""Write the golden draws of tests/_golden.py (run only before a change that must keep them)."""

from __future__ import annotations

import numpy as np

from ._golden import CONFIGS, GOLDEN_DIR, run

if __name__ == "__main__":
    GOLDEN_DIR.mkdir(exist_ok=True)
    for name in CONFIGS:
        arrs = run(name)
        np.savez_compressed(GOLDEN_DIR / f"{name}.npz", **arrs)
        print(name, {k: v.shape for k, v in arrs.items()})
