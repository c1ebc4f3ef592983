"""Read CSV, Parquet and NDJSON files in batches for ``warehouse ingest``.

Each batch's index is the position a person would look for in the file — the line number
for CSV (header is line 1) and NDJSON, the row number for Parquet — so validation errors
point at the right place.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

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
    """Yield DataFrames of at most ``batch_rows`` rows, indexed by file position."""
    if fmt == "parquet":
        start = 0
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows):
            frame = batch.to_pandas(maps_as_pydicts="strict")
            frame.index = pd.RangeIndex(start, start + len(frame))
            start += len(frame)
            yield frame
        return
    if fmt == "csv":
        reader = pd.read_csv(path, chunksize=batch_rows, dtype={"metric": str, "labels": str,
                                                                "run_id": str})
        line = 2
    else:
        reader = pd.read_json(path, lines=True, chunksize=batch_rows, dtype=False)
        line = 1
    for frame in reader:
        frame.index = pd.RangeIndex(line, line + len(frame))
        line += len(frame)
        yield frame


def ingest_file(wh, path: Path, fmt: str | None = None, *, label_columns=(),
                batch_rows: int = 200_000, progress=None) -> dict:
    """Load a points file: validate all of it first, then write it batch by batch.

    Nothing is written unless the whole file is valid. Writes are idempotent, so an
    interrupted ingest can simply be run again: rows already stored are skipped.
    ``progress(phase, rows_done, rows_total)`` is called after each batch.
    """
    from warehouse.errors import ValidationError
    from warehouse.ingest.points import prepare_points

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    fmt = file_format(path, fmt)
    try:
        total = count_rows(path, fmt)
    except (ValueError, OSError) as exc:  # pyarrow's errors derive from these
        raise ValueError(f"{path}: not a readable {fmt} file: {exc}") from exc
    done = 0
    where = "line" if fmt != "parquet" else "row"
    for frame in _batches(path, fmt, batch_rows):
        try:
            prepare_points(frame, label_columns)
        except ValidationError as exc:
            raise ValidationError(f"{path.name} (rows are {where} numbers): {exc.what}",
                                  exc.problems, exc.count) from None
        done += len(frame)
        if progress:
            progress("validate", done, total)
    written = skipped = done = 0
    for frame in _batches(path, fmt, batch_rows):
        result = wh.write_points(frame, label_columns=label_columns)
        written += result.written
        skipped += result.skipped
        done += len(frame)
        if progress:
            progress("write", done, total)
    return {"file": str(path), "format": fmt, "rows": done, "written": written,
            "skipped": skipped}


def _batches(path: Path, fmt: str, batch_rows: int) -> Iterator[pd.DataFrame]:
    from warehouse.errors import ValidationError

    try:
        yield from read_batches(path, fmt, batch_rows)
    except ValidationError:
        raise
    except (ValueError, OSError) as exc:  # pandas/pyarrow parse errors
        raise ValueError(f"{path}: not a readable {fmt} file: {exc}") from exc
