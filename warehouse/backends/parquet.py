"""Archive files: Parquet (zstd) sorted by (series_id, ts), written crash-safely.

The encodings are chosen for narrow time series: ``ts`` is delta-encoded (regular intervals
within a series become a few bits per row); ``series_id`` and ``run_id`` are dictionary/RLE
encoded (long runs after sorting); ``value`` is dictionary-encoded when the chunk has few
distinct values (metrics measured to a fixed resolution: 1.3-2.3 bytes/point measured) and
byte-stream-split otherwise (full-precision floats: ~6.5 instead of ~7.9 bytes/point
plain). See https://parquet.apache.org/docs/file-format/data-pages/encodings/ .
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.backends.base import POINTS_ARROW_SCHEMA

ZSTD_LEVEL = 3  # level 9 saved <1% on metric data and took twice as long
ROW_GROUP_ROWS = 1_000_000
#: Dictionary-encode values when distinct values are at most this share of the rows.
DICTIONARY_SHARE = 0.25


def sort_points(table: pa.Table) -> pa.Table:
    """Rows ordered by (series_id, ts), the order the archive promises."""
    return table.take(pc.sort_indices(table, [("series_id", "ascending"), ("ts", "ascending")]))


def write_points_file(table: pa.Table, final: Path) -> tuple[Path, str, int]:
    """Write ``table`` beside ``final`` under a temporary name (fsynced, not yet in place).

    Returns (temporary path, sha256 hex, bytes). The caller records the manifest row and then
    :func:`publish` moves the file into place, so a file under its final name is never half
    written, and a manifest row never vouches for bytes it has not checked.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    distinct = pc.count_distinct(table.column("value")).as_py()
    few_values = distinct <= DICTIONARY_SHARE * max(table.num_rows, 1)
    encodings = {"ts": "DELTA_BINARY_PACKED"}
    if not few_values:
        encodings["value"] = "BYTE_STREAM_SPLIT"
    pq.write_table(
        table.cast(POINTS_ARROW_SCHEMA), tmp, compression="zstd", compression_level=ZSTD_LEVEL,
        use_dictionary=["series_id", "run_id", "value"] if few_values else ["series_id", "run_id"],
        column_encoding=encodings, row_group_size=ROW_GROUP_ROWS, write_statistics=True,
    )
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    return tmp, file_sha256(tmp), tmp.stat().st_size


def publish(tmp: Path, final: Path) -> None:
    """Atomically put the file in place (replacing an older version) and make it durable."""
    os.replace(tmp, final)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, rows: int, sha256: str) -> str | None:
    """Read the file back: None if it decodes to ``rows`` rows and hashes to ``sha256``, else
    what is wrong."""
    if not path.is_file():
        return f"{path} is missing"
    actual = file_sha256(path)
    if actual != sha256:
        return f"{path}: sha256 {actual} differs from the manifest's {sha256}"
    try:
        read = pq.read_table(path, columns=["ts", "series_id"]).num_rows
    except (OSError, pa.ArrowException) as exc:
        return f"{path} does not decode: {exc}"
    if read != rows:
        return f"{path} holds {read} rows, the manifest says {rows}"
    return None


def read_points(paths: list[Path], series_ids: list[int] | None = None, start=None,
                end=None) -> pa.Table:
    """Rows of archive files, optionally only some series and [start, end)."""
    filters = []
    if series_ids is not None:
        filters.append(("series_id", "in", [int(s) for s in series_ids]))
    if start is not None:
        filters.append(("ts", ">=", start))
    if end is not None:
        filters.append(("ts", "<", end))
    tables = [pq.read_table(p, filters=filters or None).cast(POINTS_ARROW_SCHEMA) for p in paths]
    return pa.concat_tables(tables) if tables else POINTS_ARROW_SCHEMA.empty_table()
