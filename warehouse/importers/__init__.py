"""Importers: parse execution traces into ``runs`` and ``steps`` DataFrames (no database).

The frames have exactly the columns of docs/data-model.md; the ingest layer validates and
writes them. Formats and rules: docs/importers.md.
"""

from __future__ import annotations

from warehouse.importers.runs_file import ImportFormatError, parse_runs_file
from warehouse.importers.wfcommons import parse_wfformat

__all__ = ["ImportFormatError", "parse_runs_file", "parse_wfformat"]
