"""Where the store keeps files outside the database: the embedded file, the Parquet archive,
and the marker saying which ``warehouse serve`` owns an embedded file."""

from __future__ import annotations

import json
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


def serving_marker(db_file: Path) -> Path:
    """The file beside an embedded database that says ``warehouse serve`` owns it, and where
    (``<file>.serving``: JSON ``{"url": ..., "pid": ...}``). Other processes cannot open the
    file while the server runs; the marker lets them say where to go instead."""
    return db_file.with_name(db_file.name + ".serving")


def announce_serving(db_file: Path, url: str) -> Path:
    """Write the marker for this process serving ``db_file`` at ``url`` (atomically)."""
    marker = serving_marker(db_file)
    partial = marker.with_name(marker.name + f".{os.getpid()}.tmp")
    partial.write_text(json.dumps({"url": url, "pid": os.getpid()}))
    os.replace(partial, marker)
    return marker


def withdraw_serving(db_file: Path) -> None:
    """Remove the marker if it is this process's (a newer server's marker stays)."""
    marker = serving_marker(db_file)
    if _marker(marker).get("pid") == os.getpid():
        marker.unlink(missing_ok=True)


def serving_url(db_file: Path) -> str | None:
    """The URL of the live ``warehouse serve`` that owns ``db_file``, or None (no marker, or
    one left by a server that died: its process is gone)."""
    found = _marker(serving_marker(db_file))
    pid, url = found.get("pid"), found.get("url")
    if not isinstance(pid, int) or not isinstance(url, str) or not url.startswith("http"):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, another user's
        pass
    return url


def _marker(path: Path) -> dict:
    try:
        found = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}
