"""Rendering helpers of the dashboard pages: the Jinja2 templates and their filters, page data
as plain JSON, the export downloads (CSV, JSON, XLSX, Parquet) and shareable query strings."""

from __future__ import annotations

import io
import json
import math
from datetime import datetime
from pathlib import Path
from urllib.parse import urlencode

import pandas as pd
from fastapi import Request
from fastapi.responses import Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

#: warehouse/server: its templates/ and static/ folders
SERVER_DIR = Path(__file__).parent.parent
MAX_EXPORT_ROWS = 100_000
BINARY_FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "parquet": "application/vnd.apache.parquet"}

templates = Environment(loader=FileSystemLoader(SERVER_DIR / "templates"),
                         autoescape=select_autoescape(["html"]))


def _duration(ms) -> str:
    """1234.5 -> '1.23 s'; 95000 -> '1 min 35 s'; None -> '–'."""
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return "–"
    ms = float(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _when(value) -> str:
    if value in (None, ""):
        return "–"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def _bytes(value) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "–"


def _number(value) -> str:
    """A measured number as people read it: thousands grouped and whole, else 4 digits."""
    return ("{:,.0f}" if abs(value) >= 1000 else "{:.4g}").format(value)


def _cell(value):
    """A table cell: missing as a dash, floats as :func:`_number` (a raw repr showed 17
    digits), anything else as it is."""
    if value is None:
        return "–"
    return _number(value) if isinstance(value, float) else value


templates.filters.update(duration=_duration, when=_when, bytes=_bytes, number=_number,
                         cell=_cell)
templates.globals.update(rows=lambda frame: records(frame))


class PageError(ValueError):
    """Bad page parameters: shown on the page as a message (400)."""



def plain(value):
    """A cell as a plain JSON value: timestamps as ISO text, NaN/NaT as None, numpy scalars
    as Python ones."""
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):
        return plain(value.item())
    return value


def records(frame: pd.DataFrame) -> list[dict]:
    """A frame as a list of plain-JSON records."""
    return [{str(k): plain(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def page_json(data: dict) -> dict:
    """A page's data as plain JSON values (frames as lists of records)."""
    out = {}
    for key, value in data.items():
        if key == "tables":
            out[key] = {name: records(frame) for name, frame in value.items()}
        elif key == "window":
            out[key] = {"name": value["name"], "start": value["start"].isoformat(),
                        "end": value["end"].isoformat()}
        else:
            out[key] = value
    return out


def script_json(value) -> str:
    """JSON safe to embed in a ``<script type="application/json">`` element."""
    # Inside <script type="application/json">: "</script>" in data must not close the tag.
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def export(data: dict, table: str, fmt: str, filename: str) -> Response:
    """One table of a page as CSV, JSON, XLSX or Parquet (a download)."""
    tables = data["tables"]
    if table not in tables:
        raise PageError(f"table must be one of {', '.join(tables)}, not {table!r}")
    frame = tables[table].head(MAX_EXPORT_ROWS)
    disposition = {"Content-Disposition": f'attachment; filename="{filename}-{table}.{fmt}"'}
    if fmt == "csv":
        buffer = io.StringIO()
        frame.map(_csv_cell).to_csv(buffer, index=False)
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                        headers=disposition)
    if fmt in BINARY_FORMATS:
        # The export area's writers (typed XLSX cells, never formulas; zstd Parquet).
        from warehouse import export as exporter

        buffer = io.BytesIO()
        try:
            if fmt == "xlsx":
                exporter.to_xlsx({table: frame}, buffer)
            else:
                exporter.to_parquet(frame, buffer)
        except ValueError as exc:  # e.g. more rows than a sheet holds
            raise PageError(str(exc)) from None
        return Response(buffer.getvalue(), media_type=BINARY_FORMATS[fmt], headers=disposition)
    return Response(json.dumps(records(frame), default=str), media_type="application/json",
                    headers=disposition)


def _csv_cell(value):
    """A CSV cell; text that a spreadsheet would run as a formula (a recipe name or an error
    message starting with '=', '+', '-', '@') is written as text (OWASP CSV injection)."""
    from warehouse.export import spreadsheet_text

    value = spreadsheet_text(plain(value))
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return value


def query_string(request: Request, **changes) -> str:
    """This page's query string with ``changes`` applied (None removes a key)."""
    params = dict(request.query_params)
    params.pop("format", None)
    params.pop("table", None)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + urlencode(params) if params else ""
