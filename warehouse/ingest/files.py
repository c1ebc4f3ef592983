"""Read CSV, Parquet and NDJSON files in batches for ``warehouse ingest``.

Each batch's index is the position a person would look for in the file — the line number
for CSV (header is line 1) and NDJSON, the row number for Parquet — so validation errors
point at the right place. Text that is not valid UTF-8 is read with ``surrogateescape`` so
that validation names the line and field instead of the reader failing on the whole file.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from warehouse.errors import FieldProblem, ValidationError

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".ndjson": "ndjson",
           ".jsonl": "ndjson", ".json": "ndjson"}


def file_format(path: Path, given: str | None = None) -> str:
    """The format named by ``given`` or by the file's extension."""
    if given:
        if given not in set(FORMATS.values()):
            raise ValueError(f"unknown format {given!r}; choose csv, parquet or ndjson")
        return given
    try:
        return FORMATS[path.suffix.lower()]
    except KeyError:
        raise ValueError(f"{path}: cannot tell the format from the extension {path.suffix!r}; "
                         f"use .csv, .parquet or .ndjson, or pass --format") from None


def count_rows(path: Path, fmt: str) -> int:
    """Rows in the file (for the progress bar)."""
    if fmt == "parquet":
        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as f:
        lines = sum(1 for line in f if line.strip())
    return max(lines - 1, 0) if fmt == "csv" else lines


def read_batches(path: Path, fmt: str, batch_rows: int = 200_000) -> Iterator[pd.DataFrame]:
    """Yield DataFrames of at most ``batch_rows`` rows, indexed by file position.

    Raises :class:`ValidationError` naming the line for an NDJSON line that is not a JSON
    object."""
    if fmt == "parquet":
        start = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            frame = batch.to_pandas(maps_as_pydicts="strict")
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
        return
    if fmt == "ndjson":
        yield from _ndjson_batches(path, batch_rows)
        return
    reader = pd.read_csv(path, chunksize=batch_rows, dtype={"metric": str, "labels": str,
                                                            "run_id": str})
    line = 2
    try:
        for frame in reader:
            frame.index = pd.RangeIndex(line, line + len(frame))
            line += len(frame)
            yield frame
    except UnicodeError:
        raise _first_bad_utf8(path) or ValueError(f"{path}: not valid UTF-8") from None


def _ndjson_batches(path: Path, batch_rows: int) -> Iterator[pd.DataFrame]:
    """NDJSON parsed line by line: each non-blank line must be one JSON object."""
    records: list[dict] = []
    lines: list[int] = []
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            if not raw.strip():
                continue
            text = raw.decode("utf-8", errors="surrogateescape")
            try:
                record = json.loads(text)
            except ValueError as exc:  # JSONDecodeError, or a number too big to parse
                raise _bad_line(path, number, f"is not valid JSON: {exc}") from None
            except RecursionError:
                raise _bad_line(path, number, "is nested too deeply") from None
            if not isinstance(record, dict):
                raise _bad_line(path, number, (
                    f"must be a JSON object of column to value, got a JSON "
                    f"{_json_kind(record)}"))
            records.append(record)
            lines.append(number)
            if len(records) >= batch_rows:
                yield _frame(records, lines)
                records, lines = [], []
    if records:
        yield _frame(records, lines)


def _first_bad_utf8(path: Path) -> ValidationError | None:
    """The first CSV line that is not valid UTF-8, named with its column (pandas keeps text as
    Arrow strings, which cannot hold the undecodable bytes, so it cannot get that far)."""
    with open(path, "rb") as f:
        header: list[str] = []
        for number, raw in enumerate(f, start=1):
            text = raw.decode("utf-8", errors="surrogateescape")
            if number == 1:
                header = next(csv.reader([text]), [])
            try:
                raw.decode("utf-8")
                continue
            except UnicodeDecodeError as exc:
                byte = raw[exc.start]
            fields = next(csv.reader([text]), [])
            column = next((header[i] if i < len(header) else f"column {i + 1}"
                           for i, value in enumerate(fields)
                           if any("\udc80" <= ch <= "\udcff" for ch in value)), "(line)")
            return ValidationError(f"{path.name} (rows are line numbers)", [FieldProblem(
                number, column, f"is not valid UTF-8 (byte 0x{byte:02x})")])
    return None


def _frame(records: list[dict], lines: list[int]) -> pd.DataFrame:
    index = pd.Index(lines)
    try:
        return pd.DataFrame(records, index=index)
    except UnicodeEncodeError:  # Arrow-backed text cannot hold the surrogates: keep objects
        return pd.DataFrame(records, index=index, dtype=object)


def _json_kind(value) -> str:
    return {list: "array", str: "string", bool: "boolean", type(None): "null"}.get(
        type(value), "number")


def _bad_line(path: Path, line: int, message: str) -> ValidationError:
    return ValidationError(f"{path.name} (rows are line numbers)",
                           [FieldProblem(line, "(line)", message)])


def validate_file(wh, path: Path, fmt: str, *, label_columns=(), batch_rows: int = 200_000,
                  progress=None) -> int:
    """Validate every batch of a points file without writing anything; return its rows.

    Checks what ``write_points`` checks (every value, named by line or row) and, where the
    warehouse is local, that no point falls in an archived-and-dropped range. Raises
    :class:`ValidationError` at the first bad batch."""
    from warehouse.ingest.invalidation import check_archived
    from warehouse.ingest.points import prepare_points

    total = _total(path, fmt)
    done = 0
    engine = getattr(wh, "engine", None)  # a served warehouse checks at write time instead
    for frame in _batches(path, fmt, batch_rows):
        try:
            batch = prepare_points(frame, label_columns)
            if engine is not None and len(batch.frame):
                metrics = np.asarray(batch.series["metric"], dtype=object)[
                    batch.frame["series_code"].to_numpy()]
                ts_us = batch.frame["ts"].to_numpy(dtype="datetime64[us]").view("i8")
                with engine.connect() as conn:
                    check_archived(conn, wh.backend, metrics, ts_us)
        except ValidationError as exc:
            raise _in_file(path, fmt, exc) from None
        done += len(frame)
        if progress:
            progress("validate", done, total)
    return done


def ingest_file(wh, path: Path, fmt: str | None = None, *, label_columns=(),
                batch_rows: int = 200_000, progress=None) -> dict:
    """Load a points file: validate all of it first, then write it batch by batch.

    Nothing is written unless the whole file is valid (:func:`validate_file`), whatever
    ``batch_rows`` is; a file that changes between the two passes is refused. Writes are
    idempotent, so an interrupted ingest can simply be run again: rows already stored are
    skipped. ``progress(phase, rows_done, rows_total)`` is called after each batch, with
    phase ``"validate"`` then ``"write"``. Returns file, format, rows, written, skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"batch_rows must be a positive integer, got {batch_rows!r}")
    fmt = file_format(path, fmt)
    label_columns = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    seen = _fingerprint(path)
    validate_file(wh, path, fmt, label_columns=label_columns, batch_rows=batch_rows,
                  progress=progress)
    total = _total(path, fmt)
    written = skipped = done = 0
    if _fingerprint(path) != seen:
        raise ValueError(f"{path}: the file changed while it was being validated; nothing "
                         f"was written — run the ingest again")
    for frame in _batches(path, fmt, batch_rows):
        try:
            result = wh.write_points(frame, label_columns=label_columns)
        except ValidationError as exc:  # e.g. a range archived meanwhile; earlier batches stay
            raise _in_file(path, fmt, exc, done) from None
        written += result.written
        skipped += result.skipped
        done += len(frame)
        if progress:
            progress("write", done, total)
    return {"file": str(path), "format": fmt, "rows": done, "written": written,
            "skipped": skipped}


def _in_file(path: Path, fmt: str, exc: ValidationError, done: int = 0) -> ValidationError:
    where = "line" if fmt != "parquet" else "row"
    what = f"{path.name} (rows are {where} numbers): {exc.what}"
    if done:
        what += f" (the first {done} rows were written before this batch)"
    return ValidationError(what, exc.problems, exc.count)


def _fingerprint(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_size, stat.st_mtime_ns


def _total(path: Path, fmt: str) -> int:
    try:
        return count_rows(path, fmt)
    except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
        raise ValueError(f"{path}: not a readable {fmt} file: {exc}") from exc


def _batches(path: Path, fmt: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    try:
        yield from read_batches(path, fmt, batch_rows)
    except ValidationError:
        raise
    except (ValueError, OSError) as exc:  # pandas/pyarrow parse errors
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"{path}: not a readable {fmt} file: {first}") from exc
