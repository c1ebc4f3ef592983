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

import numpy as np
import pandas as pd
import pyarrow as pa

ARROW = "application/vnd.apache.arrow.stream"
NDJSON = "application/x-ndjson"
JSON = "application/json"
PROBLEM = "application/problem+json"
_JSON_COLUMNS = b"warehouse.json_columns"
_THREADS_FROM_ROWS = 100_000
#: Object columns of a frame sent column by column (:func:`_lean_table`), for answers up
#: to _LEAN_MAX_ROWS rows; larger ones gain little and take pyarrow's general path.
_LEAN = b"warehouse.object_columns"
_LEAN_MAX_ROWS = 100_000


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


def _holds_containers(column: pd.Series) -> bool:
    """Whether an object column holds dicts or lists (sent as JSON text)."""
    return any(isinstance(v, (dict, list, tuple)) for v in column.to_numpy(dtype=object))


def frame_to_arrow(frame: pd.DataFrame, *, preserve_index: bool | None = False) -> bytes:
    """An Arrow IPC stream of ``frame`` (dict/list cells as JSON text, restored on read)."""
    lean = _lean_table(frame) if preserve_index is False else None
    if lean is not None:
        return table_to_arrow(lean)
    texts = {name: _json_texts(column) for name, column in frame.items()
             if column.dtype == object and _holds_containers(column)}
    json_columns = [str(name) for name in texts]
    if texts:
        frame = frame.copy(deep=False)
        for name, column in texts.items():
            frame[name] = column
    try:
        table = pa.Table.from_pandas(frame, preserve_index=preserve_index)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        # Values Arrow has no type for (UUID, Decimal mixed with floats...): send their text.
        frame = frame.copy(deep=False)  # never change the caller's frame
        for name in frame.columns:
            if frame[name].dtype == object:
                frame[name] = frame[name].map(lambda v: v if v is None or isinstance(
                    v, (str, bytes, bool, int, float)) else str(v)).astype(object)
        table = pa.Table.from_pandas(frame, preserve_index=preserve_index)
    metadata = dict(table.schema.metadata or {})
    metadata[_JSON_COLUMNS] = json.dumps(json_columns).encode()
    table = table.replace_schema_metadata(metadata)
    return table_to_arrow(table)


def _lean_table(frame: pd.DataFrame) -> pa.Table | None:
    """A small answer column by column, without pyarrow's pandas metadata (which is half the
    cost of encoding a 360-row query answer, and again of decoding it); the object columns
    are named in :data:`_LEAN` so :func:`arrow_to_frame` restores them. None for a frame
    this cannot carry exactly (an index, extension dtypes, objects other than text and
    dicts/lists...), which then takes ``pa.Table.from_pandas``."""
    index = frame.index
    if (len(frame) > _LEAN_MAX_ROWS or not isinstance(index, pd.RangeIndex)
            or index.start != 0 or index.step != 1 or index.name is not None
            or not all(isinstance(name, str) for name in frame.columns)
            or frame.columns.has_duplicates):
        return None
    arrays, objects, json_columns = [], [], []
    for name, column in frame.items():
        dtype = column.dtype
        if isinstance(dtype, np.dtype) and dtype.kind == "O":
            holds = _holds_containers(column)
            try:
                array = pa.array((_json_texts(column) if holds else column).to_numpy(
                    dtype=object), from_pandas=True)
            except (pa.ArrowException, TypeError, ValueError):
                return None
            if not (pa.types.is_string(array.type) or pa.types.is_null(array.type)):
                return None  # numbers or times in an object column: the general path
            (json_columns if holds else objects).append(name)
        elif _plain_dtype(dtype):
            array = pa.Array.from_pandas(column.to_numpy() if isinstance(dtype, np.dtype)
                                         else column)
        else:
            return None
        arrays.append(array)
    table = pa.Table.from_arrays(arrays, names=list(frame.columns))
    return table.replace_schema_metadata({_LEAN: json.dumps(objects).encode(),
                                          _JSON_COLUMNS: json.dumps(json_columns).encode()})


def _plain_dtype(dtype) -> bool:
    """Whether Arrow carries a column of ``dtype`` back to the same dtype without pandas
    metadata: numpy numbers, booleans and times, zoned times, and pandas' default text
    dtype (missing as NaN)."""
    if isinstance(dtype, np.dtype):
        return dtype.kind in "iufbM"
    if isinstance(dtype, pd.DatetimeTZDtype):
        return True
    return isinstance(dtype, pd.StringDtype) and dtype.na_value is np.nan


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
    metadata = table.schema.metadata or {}
    json_columns = json.loads(metadata.get(_JSON_COLUMNS, b"[]"))
    if _LEAN in metadata:  # small by construction: no conversion threads
        frame = table.to_pandas(use_threads=False)
        for name in json.loads(metadata[_LEAN]):
            if frame[name].dtype != object:  # all-missing columns already are
                frame[name] = _text_objects(table, name, frame[name])
        for name in json_columns:
            frame[name] = _json_objects(table, name, frame[name])
        return frame
    # Arrow's conversion threads pay off on big tables only; a small query answer would
    # wait longer for the pool's threads than for the work (~0.5 ms on a loaded machine).
    frame = table.to_pandas(use_threads=table.num_rows >= _THREADS_FROM_ROWS)
    # Text columns that left as object dtype (None for missing) come back that way, not as
    # pandas' string dtype (NaN for missing): the same frame a direct query returns. Both
    # fixes read the Arrow column rather than the pandas one: a query's round trip is
    # budgeted in milliseconds and pandas' per-value paths cost ~1.5 ms for 360 rows.
    meta = table.schema.pandas_metadata or {}
    for column in meta.get("columns", ()):
        name = column.get("name")
        if column.get("numpy_type") == "object" and name in frame.columns \
                and name not in json_columns and frame[name].dtype != object:
            frame[name] = _text_objects(table, name, frame[name])
    for name in json_columns:
        if name in frame.columns:
            frame[name] = _json_objects(table, name, frame[name])
    return frame


def _arrow_column(table: pa.Table, name) -> pa.Array | None:
    """Column ``name`` of ``table`` as one Array (None if it is not a plain column, e.g. an
    index stored under another field name)."""
    if not isinstance(name, str) or table.schema.get_field_index(name) < 0:
        return None
    return table.column(name).combine_chunks()


def _text_objects(table: pa.Table, name, column: pd.Series) -> pd.Series:
    """A text column as object dtype: str values, None for missing."""
    array = _arrow_column(table, name)
    if array is not None and (pa.types.is_string(array.type)
                              or pa.types.is_large_string(array.type)):
        values = array.to_numpy(zero_copy_only=False)  # object ndarray, None for null
    else:
        values = column.astype(object)
        values = values.where(values.notna(), None).to_numpy(dtype=object)
    return pd.Series(values, index=column.index, dtype=object)


def _json_objects(table: pa.Table, name, column: pd.Series) -> pd.Series:
    """A JSON-text column decoded: each distinct text parsed once (dictionary-encoded in
    Arrow), rows with equal text sharing one object, None for missing."""
    array = _arrow_column(table, name)
    if array is None or not (pa.types.is_string(array.type)
                             or pa.types.is_large_string(array.type)
                             or pa.types.is_null(array.type)):
        return _json_values(column)
    if pa.types.is_null(array.type):
        return pd.Series([None] * len(array), index=column.index, dtype=object)
    encoded = array.dictionary_encode()
    distinct = encoded.dictionary.to_pylist()
    lookup = np.empty(len(distinct) + 1, dtype=object)  # the last slot: None, for nulls
    for i, text in enumerate(distinct):  # one by one: numpy would unpack list values
        lookup[i] = json.loads(text)
    positions = encoded.indices.fill_null(len(distinct)).to_numpy(zero_copy_only=False)
    return pd.Series(lookup[positions.astype(np.intp, copy=False)], index=column.index,
                     dtype=object)


def frame_to_json(frame: pd.DataFrame) -> str:
    """A JSON array of records (timestamps ISO-8601 with µs and offset, missing as null)."""
    if frame.empty:
        return "[]"
    return frame.to_json(orient="records", date_format="iso", date_unit="us", force_ascii=False)


def wants_arrow(accept: str | None) -> bool:
    """Whether an Accept header asks for Arrow before JSON."""
    return bool(accept) and ARROW in accept
