"""Sphinx configuration of pymitml's documentation (``make docs``; CI builds it with -W)."""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "pymitml"
author = "the pymitml developers"
copyright = "2026, the pymitml developers"
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "guide/validity_results.md"]  # included by guide/validity.md
autosummary_generate = True
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing"]
html_theme = "alabaster"
nitpicky = False
