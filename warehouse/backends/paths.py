"""Where the store keeps files outside the database: the embedded file and the Parquet archive."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from warehouse.backends.base import Backend
from warehouse.model import ARCHIVE_ENV


def database_file(engine, backend: Backend) -> Path | None:
    """The database file of an embedded single-writer engine, or None (a server)."""
    name = engine.url.database
    if backend.capabilities.single_writer and name and name != ":memory:":
        return Path(name).resolve()
    return None


def archive_root(engine, backend: Backend, root: str | os.PathLike | None = None) -> Path:
    """Where Parquet archives go: ``root``, else WAREHOUSE_ARCHIVE, else ``archive/`` beside
    the database file (DuckDB), else ``./archive``."""
    chosen = root or os.environ.get(ARCHIVE_ENV)
    if chosen:
        return Path(chosen).resolve()
    db_file = database_file(engine, backend)
    return (db_file.parent if db_file else Path.cwd()) / "archive"


def warehouse_archive_folder(warehouse_id: str | uuid.UUID) -> str:
    """The folder, relative to the archive root, that holds one warehouse's files: its
    identity (``warehouse_identity.warehouse_id``). Two warehouses sharing a root never share
    a file name. Parsed as a UUID, so a tampered value cannot point outside the root."""
    return str(uuid.UUID(str(warehouse_id)))
