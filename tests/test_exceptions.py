"""The package's error and warning types where pymitml raises them outside the samplers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import pymitml as pm


def test_exception_classes_are_exported():
    assert issubclass(pm.FileFormatError, ValueError) and issubclass(
        pm.FileFormatError, pm.PymitmlError
    )
    assert issubclass(pm.ConvergenceWarning, pm.PymitmlWarning)
    assert issubclass(pm.ConvergenceWarning, UserWarning)
    import pymitml.lmm

    assert pymitml.lmm.ConvergenceWarning is pm.ConvergenceWarning


def test_stata_file_that_is_not_mi_flong_is_a_file_format_error(tmp_path):
    path = tmp_path / "plain.dta"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_stata(path, write_index=False)
    with pytest.raises(ValueError) as info:  # still a ValueError, as before
        pm.read_stata(path)
    assert isinstance(info.value, pm.FileFormatError)


def test_mplus_list_without_data_files_is_a_file_format_error(tmp_path):
    lst = tmp_path / "imp_list.dat"
    lst.write_text("\n")
    with pytest.raises(pm.FileFormatError, match="names no data files"):
        pm.read_mplus(lst)


def test_long_file_without_imputation_column_is_a_file_format_error(tmp_path):
    path = tmp_path / "long.csv"
    pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_csv(path, index=False)
    with pytest.raises(pm.FileFormatError, match="no imputation column"):
        pm.read_long(path)


def test_validation_messages_unchanged():
    fits = [(np.array([1.0]), np.eye(1)), (np.array([1.2]), np.eye(1))]
    with pytest.raises(TypeError, match="`extra_pars` must be True or False; got 1"):
        pm.pool_estimates(fits, extra_pars=1)
    with pytest.raises(
        ValueError, match="`method` must be one of 'D1', 'D2', 'D3', 'D4'; got 'D9'"
    ):
        pm.compare_models(fits, fits, method="D9")
    with pytest.raises(ValueError, match="`df_com` must be a positive number"):
        pm.compare_models(fits, fits, df_com=-1)
    with pytest.raises(ValueError, match="`library` must be 'pandas' or 'polars'"):
        pm.read_long("whatever.csv", library="arrow")
