"""DataFrames to CSV, JSON (records or split) and Parquet files.

Values that a flat file cannot hold are made plain first (:func:`flat`): dicts and lists
(labels, params) become JSON text, UUIDs text; times stay timezone-aware (ISO-8601 with the
offset in CSV and JSON, ``timestamp[us, tz=UTC]`` in Parquet)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

FORMATS = ("csv", "json", "json-split", "parquet", "xlsx")
#: First characters that make a spreadsheet read a CSV cell as a formula (OWASP "CSV
#: injection"): a recipe named ``=HYPERLINK(...)`` must arrive as text, not run.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(value):
    """``value`` as a CSV cell a spreadsheet shows as written: text starting like a formula
    gets a leading apostrophe (which spreadsheets hide); anything else is unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _plain_object(value):
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(_jsonable(value), sort_keys=True, ensure_ascii=False)
    if isinstance(value, np.ndarray):
        return json.dumps(_jsonable(value.tolist()), ensure_ascii=False)
    if isinstance(value, (uuid.UUID, bytes)):
        return str(value) if isinstance(value, uuid.UUID) else value.hex()
    if isinstance(value, pd.Timestamp):
        return value
    return value


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (pd.Timestamp, np.datetime64)):
        return pd.Timestamp(value).isoformat()
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def flat(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy whose object columns hold only scalars (JSON text for nested values)."""
    out = frame.copy()
    out.columns = [str(c) for c in out.columns]
    for column in out.columns:
        if isinstance(out[column].dtype, pd.DatetimeTZDtype):
            out[column] = out[column].dt.tz_convert("UTC")  # DuckDB says Etc/UTC
        elif out[column].dtype == object:
            out[column] = out[column].map(_plain_object)
            kinds = {type(v) for v in out[column].dropna()}
            if len(kinds) > 1:  # mixed column: text, so every format can hold it
                out[column] = out[column].map(lambda v: None if v is None or v is pd.NA
                                              else str(v))
    return out


def to_csv(frame: pd.DataFrame, path, *, spreadsheet_safe: bool = True) -> int:
    """Write ``frame`` as CSV (UTF-8, header, ISO-8601 times with µs and offset, nulls as
    empty fields); returns rows. Exports are opened in spreadsheets, so by default text
    that would run as a formula is written as text (:func:`spreadsheet_text`);
    ``spreadsheet_safe=False`` writes every value exactly (for programs)."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    out = flat(frame)
    for column in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[column]):
            out[column] = _iso_text(out[column])
        elif spreadsheet_safe and (out[column].dtype == object
                                   or pd.api.types.is_string_dtype(out[column])):
            text = out[column]
            formula = text.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
            if formula.any():
                out[column] = text.where(~formula, "'" + text.astype(str))
    # pyarrow's writer: several times faster than DataFrame.to_csv on wide numeric data.
    table = pa.Table.from_pandas(out, preserve_index=False)
    pa_csv.write_csv(table, str(path), pa_csv.WriteOptions(quoting_style="needed"))
    return len(frame)


def _iso_text(series: pd.Series) -> pd.Series:
    """ISO-8601 text with µs (and +00:00 for aware times, in UTC), vectorised."""
    aware = getattr(series.dt, "tz", None) is not None
    naive = series.dt.tz_convert("UTC").dt.tz_localize(None) if aware else series
    text = np.datetime_as_string(naive.to_numpy().astype("datetime64[us]"), unit="us")
    text = np.char.add(text, "+00:00") if aware else text
    return pd.Series(text, index=series.index, dtype=object).where(series.notna(), None)


def to_json(frame: pd.DataFrame, path, orient: str = "records") -> int:
    """Write ``frame`` as JSON: ``records`` (a list of objects) or ``split`` (columns and
    data); times ISO-8601 in UTC with µs, NaN as null. Returns rows."""
    if orient not in ("records", "split"):
        raise ValueError(f"JSON orient {orient!r}: choose records or split")
    flat(frame).to_json(path, orient=orient, date_format="iso", date_unit="us", index=False,
                        force_ascii=False)
    return len(frame)


def to_parquet(frame: pd.DataFrame, path) -> int:
    """Write ``frame`` as Parquet (zstd); times keep their time zone. Returns rows."""
    flat(frame).to_parquet(path, index=False, compression="zstd")
    return len(frame)


def write(frame: pd.DataFrame, path, fmt: str | None = None) -> int:
    """Write ``frame`` in ``fmt`` (default: from the file's suffix); returns rows written."""
    from warehouse.export.xlsx import to_xlsx

    fmt = fmt or format_of(path)
    if fmt == "csv":
        return to_csv(frame, path)
    if fmt in ("json", "json-records"):
        return to_json(frame, path, "records")
    if fmt == "json-split":
        return to_json(frame, path, "split")
    if fmt == "parquet":
        return to_parquet(frame, path)
    if fmt == "xlsx":
        return to_xlsx({"data": frame}, path)
    raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")


def format_of(path) -> str:
    """The format a file name implies (.csv, .json, .parquet, .xlsx, .html)."""
    suffix = Path(path).suffix.lower().lstrip(".")
    known = {"csv": "csv", "json": "json", "parquet": "parquet", "pq": "parquet",
             "xlsx": "xlsx", "html": "html", "htm": "html"}
    if suffix not in known:
        raise ValueError(f"{path}: cannot tell the format from the suffix; give --format")
    return known[suffix]


__all__ = ["FORMATS", "flat", "format_of", "to_csv", "to_json", "to_parquet", "write"]
