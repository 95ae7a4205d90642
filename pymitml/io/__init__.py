"""Interchange: imputed data to and from Stata, SPSS, Mplus, Blimp, R (.rds) and long CSV/parquet.

Every writer takes a :class:`~pymitml.MitmlList`; every reader gives one back (pandas by default,
``library="polars"`` on request). Writers never overwrite a file unless ``overwrite=True`` (mitml
overwrites silently; Stata asks for ``replace``), never rename a column silently (``names="map"``
prints the mapping), write every file under a temporary name in the target folder and rename it
into place only when all were written (a failure leaves no half-written file), and store a
schema sidecar (``<file>.schema.json``; inside the file for parquet) so that a round trip gives
back identical data, dtypes and categories. The sidecar holds the SHA-256 of the data files, and
parquet files carry page checksums, so a truncated or corrupted file is an error, not other data.

Readers report every problem with a file (missing, empty, a folder, not this format, truncated,
corrupted, no imputation indicator, data sets of different sizes) as one
:class:`~pymitml.FileFormatError` naming the file, the format and what is wrong, chained
(``raise ... from``) to the parsing library's own error.

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
