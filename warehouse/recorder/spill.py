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
import io
import json
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from warehouse.config import database_url
from warehouse.errors import ValidationError

KINDS = ("runs", "steps", "points")
TIME_COLUMNS = ("started_at", "finished_at", "last_seen_at")
SPILL_SUFFIX = ".ndjson"
REJECTED_SUFFIX = ".rejected"
SPILL_FILE_BYTES = 64 * 2**20  # then a new file, so that replays progress file by file
REPLAY_CHUNK = 50_000  # records per write when replaying: bounds replay memory
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


def _fsync_dir(directory: Path) -> None:
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


def _write(wh, kind: str, records: list[dict], report: dict) -> None:
    if kind == "points":
        frame, label_columns = _points_frame(records)
        result = wh.write_points(frame, label_columns=label_columns)
    else:
        write = wh.write_runs if kind == "runs" else wh.write_steps
        result = write(pd.DataFrame.from_records(records))
    report[kind] += len(records)
    report["written"] += result.written
    report["skipped"] += result.skipped
    records.clear()


def _points_frame(records: list[dict]):
    """Spill records back into buffer items, to reuse the writer's fast path."""
    from warehouse.recorder.buffer import points_frame  # buffer imports this module

    stamps = pd.to_datetime([r["ts"] for r in records], utc=True, format="ISO8601")
    shared: dict[tuple, tuple] = {}  # one tuple per label set, as the recorder makes them
    items = []
    for record, ts in zip(records, stamps.as_unit("us").asi8.tolist(), strict=True):
        labels = tuple((record.get("labels") or {}).items())
        items.append(("points", record["metric"], record["value"], ts, record.get("run_id"),
                      shared.setdefault(labels, labels)))
    return points_frame(items)


def _replay_file(wh, f, target: str | None, report: dict) -> list[str] | None:
    """Stream one file into ``wh`` in chunks (memory stays bounded whatever the file's size);
    returns its bad lines, or None when it belongs to another database."""
    pending: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    bad: list[str] = []
    checked = target is None
    for kind, value in parse_lines(f):
        if not checked and kind in ("header", *KINDS):
            if kind != "header" or value.get("target") != target:
                return None  # no header means no known target: only all_targets replays it
            checked = True
        if kind in pending:
            pending[kind].append(value)
            if len(pending[kind]) >= REPLAY_CHUNK:
                _write(wh, kind, pending[kind], report)
        elif kind == "bad":
            bad.append(value)
        elif kind == "torn":
            report["torn_lines"] += 1
    for kind in KINDS:
        if pending[kind]:
            _write(wh, kind, pending[kind], report)
    return bad


def replay_spill(wh, spill_dir: str | os.PathLike | None = None, *,
                 all_targets: bool = False) -> dict:
    """Write every closed spill file in ``spill_dir`` to ``wh``, then remove it.

    Files still locked by a live process are left alone ("busy"); files spilled for another
    database are left alone ("other_target") unless ``all_targets``. A file is removed only
    after all of its records are committed, so a crash mid-replay just replays it again,
    which changes nothing. Returns counts: files, runs, steps, points (records read),
    written, skipped, torn_lines, bad_lines (set aside in ``*.rejected``), busy,
    other_target, rejected (files whose records the warehouse refused, renamed
    ``*.rejected``), and ``failed`` (file and error; such files stay for the next replay).
    """
    directory = Path(spill_dir) if spill_dir is not None else default_spill_dir()
    report = {"files": 0, "runs": 0, "steps": 0, "points": 0, "written": 0, "skipped": 0,
              "torn_lines": 0, "bad_lines": 0, "busy": 0, "other_target": 0, "rejected": 0,
              "failed": []}
    if not directory.is_dir():
        return report
    target = None if all_targets else target_key(wh.url)
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
            try:
                with os.fdopen(os.dup(fd), encoding="utf-8", errors="replace",
                               newline="\n") as f:
                    bad = _replay_file(wh, f, target, report)
            except ValidationError as exc:
                # Replaying it again would fail the same way: set it aside, keep going.
                os.rename(path, path.with_suffix(REJECTED_SUFFIX))
                report["rejected"] += 1
                report["failed"].append({"file": str(path), "error": str(exc)[:500]})
                continue
            if bad is None:
                report["other_target"] += 1
                continue
            if bad:
                report["bad_lines"] += len(bad)
                path.with_suffix(REJECTED_SUFFIX).write_text("".join(
                    line if line.endswith("\n") else line + "\n" for line in bad))
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
