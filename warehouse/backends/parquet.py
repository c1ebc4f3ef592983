"""Archive files: Parquet (zstd) sorted by (series_id, ts), written crash-safely.

The encodings are chosen for narrow time series: ``ts`` is delta-encoded (regular intervals
within a series become a few bits per row); ``series_id`` and ``run_id`` are dictionary/RLE
encoded (long runs after sorting); ``value`` is dictionary-encoded when the chunk has few
distinct values (metrics measured to a fixed resolution: 1.3-2.3 bytes/point measured) and
byte-stream-split otherwise (full-precision floats: ~6.5 instead of ~7.9 bytes/point
plain). See https://parquet.apache.org/docs/file-format/data-pages/encodings/ .

Files and folders are private to the warehouse's user whatever the umask: files 0600,
folders 0700 (archived points can be as sensitive as the database). A published file is never
replaced: :func:`publish` links the temporary file to its final name and refuses a name that
already holds different bytes, so one writer can never destroy another's archive.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from warehouse.backends.base import POINTS_ARROW_SCHEMA
from warehouse.errors import TerminalError

ZSTD_LEVEL = 3  # level 9 saved <1% on metric data and took twice as long
ROW_GROUP_ROWS = 1_000_000
#: Dictionary-encode values when distinct values are at most this share of the rows.
DICTIONARY_SHARE = 0.25
#: Modes of what the archive writes, set explicitly (the process umask is not trusted).
FILE_MODE = 0o600
DIR_MODE = 0o700


class ArchiveFileConflict(TerminalError):
    """A file already exists under the final name and holds other bytes: not overwritten."""


def private_dirs(base: Path, relative: Path | str) -> Path:
    """Make ``base / relative`` (each missing folder 0700) and return it. Folders below
    ``base`` are the warehouse's own and are set to 0700 even if they exist; ``base`` itself
    (an operator's folder, maybe shared by several warehouses) is only made private when this
    call creates it."""
    if not base.is_dir():
        base.mkdir(parents=True, exist_ok=True)
        os.chmod(base, DIR_MODE)
    folder = base
    for part in Path(relative).parts:
        folder = folder / part
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            pass
        # In a root others can write to, a folder planted under our name (a symbolic link,
        # or someone else's folder) would receive our files: refuse it.
        info = os.lstat(folder)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise ArchiveFileConflict(
                f"{folder} is not a folder of this user (a link, a file or another user's "
                f"folder): archive files are not written there")
        os.chmod(folder, DIR_MODE)  # mkdir's mode is filtered by the umask
    return folder


def sort_points(table: pa.Table) -> pa.Table:
    """Rows ordered by (series_id, ts), the order the archive promises."""
    return table.take(pc.sort_indices(table, [("series_id", "ascending"), ("ts", "ascending")]))


def write_points_file(table: pa.Table, final: Path,
                      metadata: dict[str, str] | None = None) -> tuple[Path, str, int]:
    """Write ``table`` beside ``final`` under a temporary name (0600, fsynced, not yet in
    place); ``metadata`` goes into the file's key-value metadata (who wrote it, which unit).

    Returns (temporary path, sha256 hex, bytes). The caller records the manifest row and then
    :func:`publish` moves the file into place, so a file under its final name is never half
    written, and a manifest row never vouches for bytes it has not checked. The folder must
    exist (see :func:`private_dirs`); it is created here (0700) if it does not.
    """
    if not final.parent.is_dir():
        private_dirs(final.parent.parent, final.parent.name)
    tmp = final.parent / f".{final.name}.{os.getpid()}.tmp"
    distinct = pc.count_distinct(table.column("value")).as_py()
    few_values = distinct <= DICTIONARY_SHARE * max(table.num_rows, 1)
    encodings = {"ts": "DELTA_BINARY_PACKED"}
    if not few_values:
        encodings["value"] = "BYTE_STREAM_SPLIT"
    table = table.cast(POINTS_ARROW_SCHEMA)
    if metadata:
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), **{k: str(v) for k, v in metadata.items()}})
    # Created 0600 (O_EXCL: a leftover of a dead run with this pid is removed first), then
    # fchmod in case the umask removed bits from nothing we need — the mode is exact.
    tmp.unlink(missing_ok=True)
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    os.fchmod(descriptor, FILE_MODE)
    with open(descriptor, "wb") as handle:
        pq.write_table(
            table, handle, compression="zstd", compression_level=ZSTD_LEVEL,
            use_dictionary=(["series_id", "run_id", "value"] if few_values
                            else ["series_id", "run_id"]),
            column_encoding=encodings, row_group_size=ROW_GROUP_ROWS, write_statistics=True,
        )
        handle.flush()
        os.fsync(handle.fileno())
    return tmp, file_sha256(tmp), tmp.stat().st_size


def publish(tmp: Path, final: Path, sha256: str | None = None) -> None:
    """Put the file in place under ``final`` without ever replacing an existing file, and
    make it durable. The temporary file is gone afterwards.

    The final name is taken with a hard link, which fails when the name exists (atomic, no
    window between a check and a rename). An existing file with the same bytes (``sha256``)
    is kept as it is; one with other bytes raises :class:`ArchiveFileConflict`. Filesystems
    without hard links fall back to check-then-rename.
    """
    try:
        os.link(tmp, final)
    except FileExistsError:
        _same_or_conflict(final, sha256)
    except OSError:  # no hard links here (some network or FUSE filesystems)
        if final.exists():
            _same_or_conflict(final, sha256)
        else:
            os.replace(tmp, final)
    tmp.unlink(missing_ok=True)
    directory = os.open(final.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _same_or_conflict(final: Path, sha256: str | None) -> None:
    actual = file_sha256(final)
    if sha256 is None or actual != sha256:
        raise ArchiveFileConflict(
            f"{final} already exists and holds other bytes (sha256 {actual}); "
            f"it was not overwritten")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, rows: int, sha256: str) -> str | None:
    """Read the file back: None if it decodes to ``rows`` rows and hashes to ``sha256``, else
    what is wrong."""
    _, problem = read_verified(path, rows, sha256, columns=["ts", "series_id"])
    return problem


def read_verified(path: Path, rows: int, sha256: str,
                  columns: list[str] | None = None) -> tuple[pa.Table | None, str | None]:
    """(table, None) if the file hashes to ``sha256`` and decodes to ``rows`` rows, else
    (None, what is wrong). The rows returned are decoded from the very bytes that were
    hashed, so a file changed between a check and a read cannot slip through."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, f"{path} is missing"
    except OSError as exc:
        return None, f"{path} cannot be read: {exc}"
    actual = hashlib.sha256(data).hexdigest()
    if actual != sha256:
        return None, f"{path}: sha256 {actual} differs from the manifest's {sha256}"
    try:
        table = pq.read_table(io.BytesIO(data), columns=columns)
    except (OSError, pa.ArrowException) as exc:
        return None, f"{path} does not decode: {exc}"
    if table.num_rows != rows:
        return None, f"{path} holds {table.num_rows} rows, the manifest says {rows}"
    return table, None


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
