"""Imputation samplers: one model family per module, numba kernels in the _*.py modules."""
