"""DataFrames to an XLSX workbook, one sheet per frame, with typed cells.

Numbers stay numbers, booleans booleans, times Excel dates (converted to UTC and written
without a time zone: Excel has none) with a date format. Text is always text: a value such
as ``=HYPERLINK(...)`` from the data is never written as a formula. Characters XLSX cannot
hold (control characters) are dropped from text."""

from __future__ import annotations

import re

import pandas as pd
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE

from warehouse.export.tables import flat

MAX_ROWS = 1_048_576 - 1  # Excel's sheet limit, less the header row
DATE_FORMAT = "yyyy-mm-dd hh:mm:ss"
_SHEET_BAD = re.compile(r"[\[\]:*?/\\]")


def sheet_names(names) -> list[str]:
    """Valid, unique sheet names (31 characters, none of []:*?/\\) for ``names``."""
    out: list[str] = []
    for name in names:
        base = _SHEET_BAD.sub("_", str(name)).strip("'")[:31] or "sheet"
        candidate, n = base, 1
        while candidate.lower() in (o.lower() for o in out):
            n += 1
            candidate = f"{base[:31 - len(str(n)) - 1]}~{n}"
        out.append(candidate)
    return out


def _column_values(series: pd.Series) -> list:
    if pd.api.types.is_datetime64_any_dtype(series):
        if getattr(series.dt, "tz", None) is not None:
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        return [None if pd.isna(v) else v.to_pydatetime() for v in series]
    if pd.api.types.is_bool_dtype(series):
        return [None if pd.isna(v) else bool(v) for v in series]
    if pd.api.types.is_numeric_dtype(series):
        return [None if pd.isna(v) else v for v in series.astype(object)]
    out = []
    for value in series.astype(object):
        if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
            out.append(None)
        elif isinstance(value, pd.Timestamp):
            stamp = value.tz_convert("UTC").tz_localize(None) if value.tzinfo else value
            out.append(stamp.to_pydatetime())
        elif isinstance(value, (int, float, bool)):
            out.append(value)
        else:
            out.append(ILLEGAL_CHARACTERS_RE.sub("", str(value)))
    return out


def to_xlsx(sheets: dict[str, pd.DataFrame], path, *, notes: dict[str, str] | None = None
            ) -> int:
    """Write each frame to its own sheet (names made valid and unique, in order); a sheet in
    ``notes`` gets that text instead of a frame. Returns the rows written in total."""
    book = Workbook(write_only=True)
    total = 0
    names = list(sheets) + [n for n in (notes or {}) if n not in sheets]
    for name, shown in zip(names, sheet_names(names), strict=True):
        sheet = book.create_sheet(shown)
        if name not in sheets:
            sheet.append([notes[name]])
            continue
        frame = flat(sheets[name])
        if len(frame) > MAX_ROWS:
            raise ValueError(f"sheet {shown!r}: {len(frame)} rows exceed Excel's {MAX_ROWS}; "
                             f"export it as CSV or Parquet")
        sheet.append([str(c) for c in frame.columns])
        columns = [_column_values(frame[c]) for c in frame.columns]
        for row in zip(*columns, strict=True):
            sheet.append([_cell(sheet, v) for v in row])
        total += len(frame)
    book.save(path)
    return total


def _cell(sheet, value):
    if isinstance(value, str):
        cell = WriteOnlyCell(sheet, value)
        cell.data_type = "s"  # text from the data is never a formula or an error code
        return cell
    if hasattr(value, "year"):
        cell = WriteOnlyCell(sheet, value)
        cell.number_format = DATE_FORMAT
        return cell
    return value


__all__ = ["MAX_ROWS", "sheet_names", "to_xlsx"]
