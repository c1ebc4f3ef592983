"""How tables travel over HTTP, for the server and the remote client alike.

Two encodings of a DataFrame:

- JSON: an array of records, timestamps as ISO-8601 text with µs, NaN/NaT as null — for
  people, curl and any language.
- Arrow IPC stream (``application/vnd.apache.arrow.stream``): columnar and typed, so a
  DataFrame comes back with the dtypes it left with. Object columns holding dicts or lists
  (labels, params) travel as JSON text, named in the schema metadata, and are decoded again.
"""

from __future__ import annotations

import json

import pandas as pd
import pyarrow as pa

ARROW = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
JSON = "application/json"
PROBLEM = "application/problem+json"
_JSON_COLUMNS = b"warehouse.json_columns"


def _json_texts(column: pd.Series) -> pd.Series:
    """Dict/list cells as JSON text, None for missing. Each distinct object is encoded once:
    query results share one labels dict per series among all of its rows."""
    cache: dict[int, str | None] = {}

    def encode(value):
        key = id(value)
        if key not in cache:
            cache[key] = None if value is None or (isinstance(value, float) and value != value) \
                else json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
        return cache[key]

    return pd.Series([encode(v) for v in column.to_numpy(dtype=object)], index=column.index,
                     dtype=object)


def _json_values(column: pd.Series) -> pd.Series:
    """The inverse of :func:`_json_texts` (each distinct text decoded once; rows with equal
    text share one object, as they did before encoding)."""
    cache: dict[str, object] = {}
    out = []
    for text in column.to_numpy(dtype=object):
        if not isinstance(text, str):
            out.append(None)
            continue
        if text not in cache:
            cache[text] = json.loads(text)
        out.append(cache[text])
    return pd.Series(out, index=column.index, dtype=object)


def frame_to_arrow(frame: pd.DataFrame, *, preserve_index: bool | None = False) -> bytes:
    """An Arrow IPC stream of ``frame`` (dict/list cells as JSON text, restored on read)."""
    frame = frame.copy(deep=False)
    json_columns = []
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and any(isinstance(v, (dict, list, tuple))
                                          for v in column.to_numpy(dtype=object)):
            frame[name] = _json_texts(column)
            json_columns.append(str(name))
    try:
        table = pa.Table.from_pandas(frame, preserve_index=preserve_index)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Values Arrow has no type for (UUID, Decimal mixed with floats...): send their text.
        for name in frame.columns:
            if frame[name].dtype == object:
                frame[name] = frame[name].map(lambda v: v if v is None or isinstance(
                    v, (str, bytes, bool, int, float)) else str(v)).astype(object)
        table = pa.Table.from_pandas(frame, preserve_index=preserve_index)
    metadata = dict(table.schema.metadata or {})
    metadata[_JSON_COLUMNS] = json.dumps(json_columns).encode()
    table = table.replace_schema_metadata(metadata)
    return table_to_arrow(table)


def table_to_arrow(table: pa.Table) -> bytes:
    """An Arrow IPC stream of ``table``."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def arrow_to_table(body: bytes) -> pa.Table:
    """Read an Arrow IPC stream; ValueError (naming the problem) if it is not one."""
    try:
        return pa.ipc.open_stream(pa.BufferReader(body)).read_all()
    except (pa.ArrowInvalid, pa.ArrowException, OSError) as exc:
        raise ValueError(f"body is not an Arrow IPC stream: {exc}") from exc


def arrow_to_frame(body: bytes) -> pd.DataFrame:
    """The DataFrame a :func:`frame_to_arrow` stream carries."""
    table = arrow_to_table(body)
    json_columns = json.loads((table.schema.metadata or {}).get(_JSON_COLUMNS, b"[]"))
    frame = table.to_pandas()
    # Text columns that left as object dtype (None for missing) come back that way, not as
    # pandas' string dtype (NaN for missing): the same frame a direct query returns.
    meta = table.schema.pandas_metadata or {}
    for column in meta.get("columns", ()):
        name = column.get("name")
        if column.get("numpy_type") == "object" and name in frame.columns \
                and frame[name].dtype != object:
            values = frame[name].astype(object)
            frame[name] = values.where(values.notna(), None)
    for name in json_columns:
        if name in frame.columns:
            frame[name] = _json_values(frame[name])
    return frame


def frame_to_json(frame: pd.DataFrame) -> str:
    """A JSON array of records (timestamps ISO-8601 with µs and offset, missing as null)."""
    if frame.empty:
        return "[]"
    return frame.to_json(orient="records", date_format="iso", date_unit="us", force_ascii=False)


def wants_arrow(accept: str | None) -> bool:
    """Whether an Accept header asks for Arrow before JSON."""
    return bool(accept) and ARROW in accept
