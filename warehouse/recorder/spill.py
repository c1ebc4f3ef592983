"""Spill files: where records go while the database is unreachable, and their replay.

Format: NDJSON, one JSON object per line. The first line is a header
(``{"kind": "header", "target": <database URL without password>, "host", "pid", ...}``);
every other line is one record with ``kind`` (runs, steps or points), a unique ``id`` and the
columns (timestamps as ISO-8601 text in UTC). A file is appended to by one process only,
fsync'd per flush, and ``flock``-ed by that process while open: a replay takes only files
that nobody holds, i.e. closed ones or those of a dead process.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from warehouse.config import database_url
from warehouse.errors import ValidationError

KINDS = ("runs", "steps", "points")
TIME_COLUMNS = ("started_at", "finished_at", "last_seen_at")
SPILL_SUFFIX = ".ndjson"
REJECTED_SUFFIX = ".rejected"
SPILL_FILE_BYTES = 64 * 2**20  # a new file after this: bounds the memory a replay needs
REPLAY_CHUNK = 200_000  # points per write when replaying
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def default_spill_dir() -> Path:
    """``WAREHOUSE_SPILL_DIR``, else ``./.warehouse-spill``."""
    return Path(os.environ.get("WAREHOUSE_SPILL_DIR") or ".warehouse-spill")


def target_key(url: str | None) -> str:
    """Identity of a database for spill headers: URL without password, DuckDB paths absolute
    (a relative path means another file from another working directory)."""
    u = make_url(database_url(url))
    if u.get_backend_name() == "duckdb" and u.database and u.database != ":memory:":
        u = u.set(database=os.path.abspath(u.database))
    return u.render_as_string(hide_password=True)


def is_unavailable(exc: BaseException) -> bool:
    """True for "database unreachable or locked" (worth retrying later), as opposed to a bug."""
    if isinstance(exc, OperationalError) or (isinstance(exc, DBAPIError)
                                             and exc.connection_invalidated):
        return True
    # DuckDB's lock error, raw or wrapped: "IO Error: Could not set lock on file ...".
    return "Could not set lock" in str(exc) or type(exc).__name__ in ("IOException",
                                                                      "ConnectionException")


def _iso(us: int | None) -> str | None:
    return None if us is None else (_EPOCH + timedelta(microseconds=us)).isoformat()


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
        directory.mkdir(parents=True, exist_ok=True)
        self.token = uuid.uuid4().hex[:12]
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        name = f"spill-{stamp}-{os.getpid()}-{self.token}"
        temporary = directory / f"{name}.tmp"
        self._fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o644)
        # Locked before it gets the name replays look for: a replay can never see this file
        # half-written by a live process. The kernel drops the lock if the process dies.
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        self.path = directory / f"{name}{SPILL_SUFFIX}"
        os.rename(temporary, self.path)
        _fsync_dir(directory)
        self.records = 0
        self.bytes = 0
        self._seq = 0
        self._torn = False
        self._header = {"kind": "header", "id": f"{self.token}-h", "target": target,
                        "host": socket.gethostname(), "pid": os.getpid(),
                        "created_at": datetime.now(UTC).isoformat()}

    def append(self, items: list[tuple]) -> int:
        """Append items as lines and fsync; returns the number of records written."""
        lines = [json.dumps(self._header)] if self.records == 0 and self._seq == 0 else []
        for item in items:
            record = to_record(item)
            record["id"] = f"{self.token}-{self._seq}"
            self._seq += 1
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


def _fsync_dir(directory: Path) -> None:
    # The file's directory entry must be durable too, or a crash could lose the whole file.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_spill(data: bytes) -> dict:
    """Parse spill-file bytes: ``{"header", "records": {kind: [...]}, "torn", "bad",
    "duplicates"}``. An unparseable *last* line is a write cut short by a crash ("torn": it was
    never acknowledged, so nothing is lost); an unparseable line elsewhere is "bad"."""
    lines = data.split(b"\n")
    out = {"header": None, "records": {k: [] for k in KINDS}, "torn": 0, "bad": [],
           "duplicates": 0}
    seen: set[str] = set()
    for number, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            record = json.loads(raw)
            kind = record.pop("kind")
            if kind != "header" and kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}")
        except (ValueError, KeyError, AttributeError, TypeError):
            if number == len(lines) - 1:  # no newline after it: the write never completed
                out["torn"] += 1
            else:
                out["bad"].append(raw)
            continue
        if kind == "header":
            out["header"] = record
            continue
        record_id = record.pop("id", None)
        if record_id is not None:
            if record_id in seen:
                out["duplicates"] += 1
                continue
            seen.add(record_id)
        out["records"][kind].append(record)
    return out


def _write_records(wh, kind: str, records: list[dict]) -> tuple[int, int]:
    """Write parsed spill records of one kind; returns (written, skipped)."""
    written = skipped = 0
    if kind == "points":
        chunks = [records[i:i + REPLAY_CHUNK] for i in range(0, len(records), REPLAY_CHUNK)]
        for chunk in chunks:
            result = wh.write_points(pd.DataFrame.from_records(chunk))
            written, skipped = written + result.written, skipped + result.skipped
        return written, skipped
    write = wh.write_runs if kind == "runs" else wh.write_steps
    result = write(pd.DataFrame.from_records(records))
    return result.written, result.skipped


def replay_spill(wh, spill_dir: str | os.PathLike | None = None, *,
                 all_targets: bool = False) -> dict:
    """Write every closed spill file in ``spill_dir`` to ``wh``, then remove it.

    Files still locked by a live process are left alone ("busy"); files spilled for another
    database are left alone ("other_target") unless ``all_targets``. A file is removed only
    after all of its records are committed, so a crash mid-replay just replays it again,
    which changes nothing. Returns counts: files, runs, steps, points (records read),
    written, skipped, torn_lines, bad_lines, busy, other_target, rejected, and ``failed``
    (file and error for files that could not be written; they stay for the next replay).
    """
    directory = Path(spill_dir) if spill_dir is not None else default_spill_dir()
    report = {"files": 0, "runs": 0, "steps": 0, "points": 0, "written": 0, "skipped": 0,
              "torn_lines": 0, "bad_lines": 0, "busy": 0, "other_target": 0, "rejected": 0,
              "failed": []}
    if not directory.is_dir():
        return report
    target = target_key(wh.url)
    for path in sorted(directory.glob(f"*{SPILL_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:  # replayed by someone else meanwhile
            continue
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                report["busy"] += 1
                continue
            try:  # the name may now belong to nothing (replayed and removed meanwhile)
                if os.stat(path).st_ino != os.fstat(fd).st_ino:
                    continue
            except FileNotFoundError:
                continue
            with os.fdopen(os.dup(fd), "rb") as f:
                parsed = read_spill(f.read())
            header = parsed["header"] or {}
            if not all_targets and header.get("target") != target:
                report["other_target"] += 1
                continue
            try:
                for kind in KINDS:
                    records = parsed["records"][kind]
                    if records:
                        written, skipped = _write_records(wh, kind, records)
                        report[kind] += len(records)
                        report["written"] += written
                        report["skipped"] += skipped
            except ValidationError as exc:
                # Replaying it again would fail the same way: set it aside, keep going.
                os.rename(path, path.with_suffix(REJECTED_SUFFIX))
                report["rejected"] += 1
                report["failed"].append({"file": str(path), "error": str(exc)[:500]})
                continue
            report["torn_lines"] += parsed["torn"]
            report["bad_lines"] += len(parsed["bad"])
            if parsed["bad"]:
                path.with_suffix(REJECTED_SUFFIX).write_bytes(b"\n".join(parsed["bad"]) + b"\n")
            os.unlink(path)  # only now: every record above is committed
            report["files"] += 1
        except Exception as exc:  # noqa: BLE001 - report it, leave the file for next time
            report["failed"].append({"file": str(path), "error": f"{type(exc).__name__}: "
                                                                 f"{str(exc)[:500]}"})
            if is_unavailable(exc):
                break  # the database is down: the other files would fail the same way
        finally:
            os.close(fd)
    return report
