"""Test data helpers: mitml's studentratings through R (for R comparisons)."""

from __future__ import annotations

import pandas as pd


def r_dataframe(R, expr: str) -> pd.DataFrame:
    """Evaluate an R expression giving a data.frame and return it as pandas."""
    import rpy2.robjects as ro
    from rpy2.robjects import pandas2ri
    from rpy2.robjects.conversion import localconverter

    with localconverter(ro.default_converter + pandas2ri.converter):
        return ro.conversion.rpy2py(R(expr))


def r_array(R, expr: str):
    import numpy as np
    import rpy2.robjects as ro
    from rpy2.robjects import numpy2ri
    from rpy2.robjects.conversion import localconverter

    with localconverter(ro.default_converter + numpy2ri.converter):
        return np.asarray(ro.conversion.rpy2py(R(expr)))


def batch_means_mcse(x, n_batches: int = 20) -> float:
    """Monte Carlo standard error of the mean of a chain by non-overlapping batch means."""
    import numpy as np

    x = np.asarray(x, dtype=float)
    b = len(x) // n_batches
    means = x[: b * n_batches].reshape(n_batches, b).mean(axis=1)
    return float(means.std(ddof=1) / np.sqrt(n_batches))
