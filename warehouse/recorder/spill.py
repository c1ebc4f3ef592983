"""Spill files: where records go while the database is unreachable (replayed by replay.py).

Format: NDJSON, one JSON object per line. The first line is a header
(``{"kind": "header", "target": <database URL without password>, "host", "pid", ...}``);
every other line is one record with ``kind`` (runs, steps or points), a unique ``id`` and the
columns (timestamps as ISO-8601 text in UTC). A file is appended to by one process only,
fsync'd per flush, and ``flock``-ed by that process while open: a replay takes only files
that nobody holds, i.e. closed ones or those of a dead process. Files are created 0600 in
folders created 0700: records carry parameters and error messages.

Engine facts (is this error transient, is this URL an embedded file) come from the backend
classes, never from the error text or the dialect's name here.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.engine import URL, make_url

from warehouse.backends.base import Backend, backend_class
from warehouse.config import database_url
from warehouse.errors import WarehouseError

KINDS = ("runs", "steps", "points")
TIME_COLUMNS = ("started_at", "finished_at", "last_seen_at")
SPILL_SUFFIX = ".ndjson"
REJECTED_SUFFIX = ".rejected"
SPILL_FILE_BYTES = 64 * 2**20  # then a new file, so that replays progress file by file
REPLAY_CHUNK = 50_000  # records per write when replaying: bounds replay memory
FILE_MODE = 0o600
DIR_MODE = 0o700
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_spill_dir() -> Path:
    """``WAREHOUSE_SPILL_DIR``, else ``./.warehouse-spill``."""
    return Path(os.environ.get("WAREHOUSE_SPILL_DIR") or ".warehouse-spill")


def make_spill_dir(directory: Path) -> None:
    """Create the spill folder (0700) if needed. An existing folder is left as it is: it
    may be shared (``/tmp``), and only its owner should change its mode."""
    directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)


def backend_of(url: str | None) -> type[Backend]:
    """The backend class of a database URL (the generic :class:`Backend` for URLs no
    backend claims, such as a remote ``http://`` warehouse)."""
    try:
        return backend_class(make_url(database_url(url)).get_backend_name())
    except (WarehouseError, ValueError, ImportError, AttributeError):
        return Backend


def is_transient(exc: BaseException, url: str | None = None) -> bool:
    """True for "database unreachable or locked" (worth retrying later), as opposed to bad
    records or a bug: the engine of ``url`` decides (``Backend.is_transient``)."""
    try:
        return backend_of(url).is_transient(exc)
    except Exception:  # noqa: BLE001 - asking must never fail the caller
        return False


def _parsed(url: str | None) -> URL | None:
    try:
        u = make_url(database_url(url))
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy understands
        return None
    capabilities = getattr(backend_of(url), "capabilities", None)  # None: no backend
    if capabilities is not None and capabilities.single_writer and u.database \
            and u.database != ":memory:":
        # A relative path means another file from another working directory.
        u = u.set(database=os.path.abspath(u.database))
    return u


def target_key(url: str | None) -> str:
    """Identity of a database for spill headers: the URL without password, an embedded
    file's path made absolute."""
    u = _parsed(url)
    if u is None:
        return str(url or "").split("@")[-1]  # never the password; still names the host
    return u.render_as_string(hide_password=True)


def match_key(target: str | None) -> str | None:
    """What must be equal for a spill file to belong to a database: ``target_key`` without
    the password and without query options (``?connect_timeout=5`` changes how we connect,
    not where). Works on URLs and on spill headers' targets alike."""
    if not target:
        return None
    u = _parsed(target)
    if u is None:
        return target
    return u.set(password=None, query={}).render_as_string(hide_password=True)


_last_second: tuple[int, str] = (0, "1970-01-01T00:00:00")


def _iso(us: int | None) -> str | None:
    """µs since the epoch as ISO-8601 UTC text with µs; the formatted second is memoised
    (one tuple, swapped atomically, so threads cannot mix two seconds)."""
    global _last_second
    if us is None:
        return None
    second, micro = divmod(us, 1_000_000)
    last = _last_second
    if last[0] != second:
        last = _last_second = (second, (_EPOCH + timedelta(seconds=second))
                               .strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{last[1]}.{micro:06d}+00:00"


def to_record(item: tuple) -> dict:
    """A buffer item as a spill record (without id): JSON-ready, timestamps ISO-8601."""
    kind = item[0]
    if kind == "points":
        return {"kind": kind, "metric": item[1], "value": item[2], "ts": _iso(item[3]),
                "run_id": item[4], "labels": dict(item[5])}
    record = {"kind": kind}
    for name, value in item[1].items():
        record[name] = _iso(value) if name in TIME_COLUMNS else value
    return record


# -- spill files --------------------------------------------------------------------------
class SpillWriter:
    """One append-only spill file, locked by this process until :meth:`close`."""

    def __init__(self, directory: Path, target: str):
        make_spill_dir(directory)
        self.token = uuid.uuid4().hex[:12]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"spill-{stamp}-{os.getpid()}-{self.token}"
        temporary = directory / f"{name}.tmp"
        self._fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND
                           | os.O_CLOEXEC, FILE_MODE)
        # Locked before it gets the name replays look for: a replay can never see this file
        # half-written by a live process. The kernel drops the lock if the process dies.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.path = directory / f"{name}{SPILL_SUFFIX}"
        os.rename(temporary, self.path)
        fsync_dir(directory)
        self.records = 0
        self.bytes = 0
        self._seq = 0
        self._torn = False
        self._header = {"kind": "header", "id": f"{self.token}-h", "target": target,
                        "host": socket.gethostname(), "pid": os.getpid(),
                        "created_at": datetime.now(UTC).isoformat()}

    def append(self, items: list[tuple]) -> int:
        """Append items as lines and fsync; returns the number of records written."""
        lines = [] if self._header is None else [json.dumps(self._header)]
        label_json: dict[tuple, str] = {}
        for item in items:
            record_id = f"{self.token}-{self._seq}"
            self._seq += 1
            if item[0] == "points":
                # Formatted by hand: this runs on the recipe thread when the buffer is full.
                # Metric names are checked names and run ids canonical UUIDs (no escaping);
                # the repr of a finite float is valid JSON.
                _, metric, value, ts, run_id, labels = item
                lab = label_json.get(labels)
                if lab is None:
                    lab = label_json[labels] = json.dumps(dict(labels), separators=(",", ":"))
                run = "null" if run_id is None else f'"{run_id}"'
                lines.append(f'{{"kind":"points","id":"{record_id}","metric":"{metric}",'
                             f'"value":{value!r},"ts":"{_iso(ts)}","run_id":{run},'
                             f'"labels":{lab}}}')
            else:
                record = to_record(item)
                record["id"] = record_id
                lines.append(json.dumps(record, separators=(",", ":"), default=str))
        data = ("\n".join(lines) + "\n").encode()
        if self._torn:  # isolate what a failed earlier write may have left
            data = b"\n" + data
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
            os.fsync(self._fd)
        except OSError:
            self._torn = True
            raise
        self._torn = False
        self._header = None  # written and synced
        self.records += len(items)
        self.bytes += len(data)
        return len(items)

    def close(self) -> None:
        """Release the file (it becomes replayable); an unused file is removed."""
        if self._fd < 0:
            return
        if self.records == 0 and self.bytes == 0:
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = -1


def fsync_dir(directory: Path) -> None:
    """Make a folder's entries durable (after a create or rename in it)."""
    # The file's directory entry must be durable too, or a crash could lose the whole file.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def parse_lines(lines: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """Classify spill-file lines (with their newlines) as they are read: yields
    ``("header", dict)``, ``(kind, record)`` for runs/steps/points (``id`` removed),
    ``("duplicate", id)``, ``("bad", line)`` or ``("torn", line)``.

    An unparseable line without its newline can only be the last one: a write cut short by a
    crash ("torn": never acknowledged, so nothing is lost). An unparseable line elsewhere is
    damage ("bad")."""
    seen: set[str] = set()
    for raw in lines:
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            kind = record.pop("kind")
            if kind != "header" and kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, KeyError, AttributeError, TypeError):
            yield ("bad" if raw.endswith("\n") else "torn"), raw
            continue
        if kind == "header":
            yield kind, record
            continue
        record_id = record.pop("id", None)
        if record_id is not None:
            if record_id in seen:
                yield "duplicate", record_id
                continue
            seen.add(record_id)
        yield kind, record


def read_spill(data: bytes) -> dict:
    """Parse a whole spill file's bytes: ``{"header", "records": {kind: [...]}, "torn",
    "bad" (lines, as text), "duplicates"}`` (see :func:`parse_lines`)."""
    out = {"header": None, "records": {k: [] for k in KINDS}, "torn": 0, "bad": [],
           "duplicates": 0}
    # Text, not bytes: json.loads on bytes detects the encoding again for every line. A torn
    # line may end inside a UTF-8 sequence, hence errors="replace".
    for kind, value in parse_lines(io.StringIO(data.decode("utf-8", errors="replace"),
                                               newline="\n")):
        if kind == "header":
            out["header"] = value
        elif kind in KINDS:
            out["records"][kind].append(value)
        elif kind == "bad":
            out["bad"].append(value)
        else:
            out["torn" if kind == "torn" else "duplicates"] += 1
    return out
