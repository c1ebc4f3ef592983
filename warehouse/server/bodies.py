"""Request bodies of the write endpoints: JSON, NDJSON or Arrow IPC, parsed into rows.

Bad bodies raise :class:`~warehouse.errors.ValidationError` naming the row (line) and
``body`` as the field, so they answer 422 problem+json like any rejected batch.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from fastapi import Request

from warehouse.client.wire import ARROW, JSON, NDJSON, arrow_to_table
from warehouse.errors import FieldProblem, ValidationError
from warehouse.server.problems import BodyTooLarge, UnsupportedMediaType

NDJSON_TYPES = (NDJSON, "application/jsonl", "application/x-jsonlines", "application/ndjson")
BODY_TYPES = (JSON, *NDJSON_TYPES, ARROW)


def media_type(request: Request) -> str:
    """The request's Content-Type without parameters (JSON when absent)."""
    return (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()


def _bad(what: str, row, message: str) -> ValidationError:
    return ValidationError(what, [FieldProblem(row, "body", message)])


def _records(what: str, items) -> list[dict]:
    if isinstance(items, dict):  # {"rows": [...]} is accepted too
        items = items.get("rows", items.get(what.split()[0]))
    if not isinstance(items, list):
        raise _bad(what, None, "must be a JSON array of objects (or {\"rows\": [...]})")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise _bad(what, i, f"must be a JSON object, got {type(item).__name__}")
    return items


def parse_json(what: str, body: bytes) -> list[dict]:
    """A JSON array of records."""
    try:
        return _records(what, json.loads(body or b"[]"))
    except (ValueError, RecursionError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise _bad(what, None, f"is not valid JSON: {exc}") from None


def parse_ndjson(what: str, body: bytes) -> list[dict]:
    """One JSON object per line (blank lines ignored)."""
    lines = [line.strip() for line in body.split(b"\n") if line.strip()]
    # One C-speed parse of the whole body when every line looks like one object; a line
    # such as `{...}, {...}` or `{"a": [1` would join with its neighbours into valid JSON
    # (wrong rows, or two lines read as one), so then each line is parsed on its own.
    if all(line[:1] == b"{" and line[-1:] == b"}" for line in lines):
        try:
            items = json.loads(b"[" + b",".join(lines) + b"]")
        except (ValueError, RecursionError):
            items = None
        if items is not None and len(items) == len(lines):
            return _records(what, items)
    items = []
    for number, line in enumerate(lines):
        try:
            items.append(json.loads(line))
        except (ValueError, RecursionError) as exc:
            raise _bad(what, number, f"line {number + 1} is not valid JSON: {exc}") from None
    return _records(what, items)


#: ISO-8601 text that ends with a zone (what ingest accepts as timezone-aware; the same
#: pattern as warehouse.ingest.validate).
_ZONED = r"(Z|z|[+-]\d{2}(:?\d{2})?)$"


def zoned_times_parsed(rows: list[dict], column: str) -> list[dict] | pd.DataFrame:
    """``rows`` as a frame with ``column`` already parsed when every value is ISO-8601 text
    with a zone — one vectorised parse instead of ingest's per-row check (~40% of an NDJSON
    write). Anything else (a naive or malformed time, other types) is handed over untouched,
    so ingest names the bad rows exactly as before."""
    if len(rows) < 1000:  # not worth it
        return rows
    frame = pd.DataFrame.from_records(rows)
    if column not in frame.columns:
        return frame
    try:
        texts = pa.array(frame[column].to_numpy(dtype=object), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return frame
    if texts.type != pa.string() or texts.null_count or not pc.all(
            pc.match_substring_regex(texts, _ZONED)).as_py():
        return frame
    try:
        parsed = pd.to_datetime(frame[column], utc=True, format="ISO8601")
    except (ValueError, TypeError, OverflowError):
        return frame
    frame[column] = parsed.dt.as_unit("us")
    return frame


async def read_rows(request: Request, what: str, json_limit: int) -> list[dict] | pa.Table:
    """The rows of a write request, by its Content-Type."""
    kind = media_type(request)
    if kind not in BODY_TYPES:
        raise UnsupportedMediaType(
            f"Content-Type {kind!r} is not accepted here; use {', '.join(BODY_TYPES[:2])} "
            f"or {ARROW}")
    if kind != ARROW:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > json_limit:
            raise _too_large(json_limit)
    body = await request.body()
    if kind == ARROW:
        try:
            return arrow_to_table(body)
        except ValueError as exc:
            raise _bad(what, None, str(exc)) from None
    if len(body) > json_limit:
        raise _too_large(json_limit)
    return parse_json(what, body) if kind == JSON else parse_ndjson(what, body)


def _too_large(limit: int) -> BodyTooLarge:
    return BodyTooLarge(limit)


def body_doc(record_schema: dict) -> dict:
    """OpenAPI ``requestBody`` for an endpoint taking rows as JSON, NDJSON or Arrow."""
    return {"requestBody": {"required": True, "content": {
        JSON: {"schema": {"type": "array", "items": record_schema}},
        NDJSON: {"schema": {"type": "string", "description": "one JSON object per line"}},
        ARROW: {"schema": {"type": "string", "format": "binary",
                           "description": "an Arrow IPC stream with the same columns"}},
    }}}
