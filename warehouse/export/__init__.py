"""Export of query and panel results: CSV, JSON (records or split), XLSX (one sheet per
frame, typed cells), Parquet, and a self-contained HTML report (Plotly.js inlined).

This area knows DataFrames and figure JSON only; :mod:`warehouse.dashboards.reports` turns a
rendered dashboard into a report or a workbook through it."""

from __future__ import annotations

from warehouse.export.html import report_html, write_report
from warehouse.export.tables import (
    FORMATS,
    flat,
    format_of,
    spreadsheet_text,
    to_csv,
    to_json,
    to_parquet,
    write,
)
from warehouse.export.xlsx import sheet_names, to_xlsx

__all__ = ["FORMATS", "flat", "format_of", "report_html", "sheet_names", "spreadsheet_text",
           "to_csv", "to_json", "to_parquet", "to_xlsx", "write", "write_report"]
