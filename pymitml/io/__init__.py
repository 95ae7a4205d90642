"""Interchange: imputed data to and from Stata, SPSS, Mplus, Blimp, R (.rds) and long CSV/parquet.

Every writer takes a :class:`~pymitml.MitmlList`; every reader gives one back (pandas by default,
``library="polars"`` on request). Writers never overwrite a file unless ``overwrite=True``, never
rename a column silently (``names="map"`` prints the mapping), and store a schema sidecar
(``<file>.schema.json``; inside the file for parquet) so that a round trip gives back identical
data, dtypes and categories.

Each format module registers its writer and reader (:mod:`._registry`): ``MitmlList.to_stata``
etc. find the writer there, and :func:`formats` lists what is available.
"""

from __future__ import annotations

from ._registry import formats, reader, register_reader, register_writer, writer
from .blimp import read_blimp, write_blimp
from .long import read_long, write_long
from .mplus import read_mplus, write_mplus
from .rds import read_rds, write_rds
from .spss import read_spss, write_spss
from .stata import read_stata, read_stata_characteristics, write_stata

__all__ = [
    "formats",
    "reader",
    "register_reader",
    "register_writer",
    "writer",
    "read_blimp",
    "read_long",
    "read_mplus",
    "read_rds",
    "read_spss",
    "read_stata",
    "read_stata_characteristics",
    "write_blimp",
    "write_long",
    "write_mplus",
    "write_rds",
    "write_spss",
    "write_stata",
]
