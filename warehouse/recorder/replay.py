"""Replaying spill files, and quarantining the records the warehouse refuses.

A replay streams each closed spill file into the warehouse in chunks. A chunk the warehouse
refuses because of its *records* (validation, a value the engine rejects) is cut in halves,
and the halves again, until the bad records stand alone: they go to ``<file>.rejected``
(NDJSON, readable: the header, then one record per line with its error in ``_error``) and
every good record is written. One bad record in 30,000 costs about 2·log2(30,000) ≈ 30
writes, not 30,000. A failure that is not about the records (the database is unreachable,
a table is missing) stops the file instead: it stays for the next replay.

After fixing a ``.rejected`` file (or the warehouse), ``replay_spill(wh, rejected=True)``
(``warehouse replay --rejected``) re-tries its records; those refused again stay in it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from warehouse.recorder.frames import points_frame
from warehouse.recorder.spill import (
    FILE_MODE,
    KINDS,
    REJECTED_SUFFIX,
    REPLAY_CHUNK,
    SPILL_SUFFIX,
    default_spill_dir,
    fsync_dir,
    is_transient,
    make_spill_dir,
    match_key,
    parse_lines,
)

#: Field of a quarantined record that says why the warehouse refused it.
ERROR_FIELD = "_error"
#: PEP 249 exception classes that mean "this data", whatever the driver.
_DATA_ERRORS = frozenset(("DataError", "IntegrityError"))


def is_bad_record(exc: BaseException, url: str | None) -> bool:
    """True when a write failed because of the records it was given (so that writing fewer
    of them can succeed), not because of the database: validation errors, values Python or
    the driver cannot convert, and PEP 249 ``DataError``/``IntegrityError``."""
    if is_transient(exc, url):
        return False
    # Not AttributeError: that is a bug (a sink without write_runs), and treating it as bad
    # records would quarantine everything one record at a time.
    if isinstance(exc, (ValueError, TypeError, KeyError, OverflowError)):
        return True  # ValidationError and UnicodeEncodeError are ValueErrors
    return any(cls.__name__ in _DATA_ERRORS for cls in type(exc).__mro__)


def error_text(exc: BaseException) -> str:
    """One line naming an error, for reports and quarantine files."""
    try:
        text = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    except Exception:  # noqa: BLE001 - an exception whose __str__ fails
        text = []
    return f"{type(exc).__name__}: {(text[0] if text else '')[:1000]}"


def write_bisecting(write: Callable[[list], Any], batch: list,
                    on_bad: Callable[[Any, BaseException], None],
                    is_bad: Callable[[BaseException], bool]) -> int:
    """``write(batch)``; when it fails because of its records (``is_bad``), write each half,
    recursively, and hand the records that fail alone to ``on_bad``. Other failures
    propagate (what was written stays written: every write is keyed, so a replay of the
    same records changes nothing). Returns how many records were bad."""
    bad = 0
    parts = [batch]
    while parts:
        part = parts.pop()
        try:
            write(part)
        except Exception as exc:
            if not is_bad(exc):
                raise
            if len(part) == 1:
                on_bad(part[0], exc)
                bad += 1
            else:
                middle = len(part) // 2
                parts += (part[middle:], part[:middle])  # first half first: keeps order
    return bad


class Quarantine:
    """Records set aside in one ``.rejected`` file (created 0600 on first use)."""

    def __init__(self, path: Path, header: dict | None):
        self.path = path
        self.header = header
        self.count = 0
        self._fd = -1

    def _open(self) -> None:
        make_spill_dir(self.path.parent)
        while True:  # another replay may swap the file (rejected=True): lock the live one
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC,
                         FILE_MODE)
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                if os.stat(self.path).st_ino == os.fstat(fd).st_ino:
                    break
            except FileNotFoundError:
                pass
            os.close(fd)
        self._fd = fd
        if os.fstat(fd).st_size == 0 and self.header is not None:
            header = {"kind": "header", **self.header,
                      "quarantined_at": datetime.now(UTC).isoformat()}
            self._append(json.dumps(header, default=str))

    def _append(self, line: str) -> None:
        data = (line + "\n").encode("utf-8", errors="backslashreplace")
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]

    def add(self, kind: str, record: dict, error: BaseException | str) -> None:
        """Set one record aside with the reason."""
        if self._fd < 0:
            self._open()
        reason = error if isinstance(error, str) else error_text(error)
        self._append(json.dumps({"kind": kind, **record, ERROR_FIELD: reason}, default=str))
        self.count += 1

    def add_line(self, line: str, error: str | None) -> None:
        """Set a damaged line aside: wrapped as ``{"kind": "damaged", "line": ...}``, or as it
        is when ``error`` is None (it already is such a wrapper)."""
        if self._fd < 0:
            self._open()
        self._append(line.rstrip("\n") if error is None else
                     json.dumps({"kind": "damaged", "line": line.rstrip("\n"),
                                 ERROR_FIELD: error}))
        self.count += 1

    def close(self) -> None:
        """Make what was set aside durable, then release the file."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1


# -- writing records back -----------------------------------------------------------------
def _points_frame(records: list[dict]):
    """Spill records back into buffer items, to reuse the writer's fast path."""
    stamps = pd.to_datetime([r["ts"] for r in records], utc=True, format="ISO8601")
    shared: dict[tuple, tuple] = {}  # one tuple per label set, as the recorder makes them
    items = []
    for record, ts in zip(records, stamps.as_unit("us").asi8.tolist(), strict=True):
        labels = record.get("labels") or {}
        if not isinstance(labels, dict):  # a damaged or hand-edited record
            raise TypeError(f"labels must be an object, got {type(labels).__name__}")
        labels = tuple(labels.items())
        items.append(("points", record["metric"], record["value"], ts, record.get("run_id"),
                      shared.setdefault(labels, labels)))
    return points_frame(items)


def _writer(wh, kind: str, report: dict) -> Callable[[list[dict]], None]:
    def write(records: list[dict]) -> None:
        if kind == "points":
            frame, label_columns = _points_frame(records)
            result = wh.write_points(frame, label_columns=label_columns)
        else:
            write_rows = wh.write_runs if kind == "runs" else wh.write_steps
            result = write_rows(pd.DataFrame.from_records(records))
        report["written"] += result.written
        report["skipped"] += result.skipped
    return write


def _replay_lines(wh, lines: Iterable[str], target: str | None, report: dict,
                  quarantine: Quarantine, *, retry: bool) -> bool:
    """Stream one file's lines into ``wh`` in chunks (memory stays bounded whatever the
    file's size), quarantining bad records and damaged lines. False when the file belongs to
    another database (nothing written)."""
    pending: dict[str, list[dict]] = {kind: [] for kind in KINDS}
    checked = target is None
    url = wh.url

    def flush(kind: str) -> None:
        batch = pending[kind]
        pending[kind] = []
        report["rejected"] += write_bisecting(
            _writer(wh, kind, report), batch,
            lambda record, exc: quarantine.add(kind, record, exc),
            lambda exc: is_bad_record(exc, url))

    for kind, value in parse_lines(lines):
        if not checked and kind in ("header", *KINDS):
            if kind != "header" or match_key(value.get("target")) != target:
                return False  # no header means no known target: only all_targets replays it
            checked = True
        if kind == "header":
            quarantine.header = {k: v for k, v in value.items() if k != "quarantined_at"}
        elif kind in pending:
            if retry:
                value.pop(ERROR_FIELD, None)
            pending[kind].append(value)
            report[kind] += 1
            if len(pending[kind]) >= REPLAY_CHUNK:
                flush(kind)
        elif kind == "bad":
            report["bad_lines"] += 1
            quarantine.add_line(value, None if retry else "damaged line: not a JSON record")
        elif kind == "torn":
            report["torn_lines"] += 1
    for kind in KINDS:
        if pending[kind]:
            flush(kind)
    return True


def _locked(path: Path, report: dict) -> int | None:
    """An fd holding an exclusive lock on ``path``, or None (busy, or gone meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:  # replayed by someone else meanwhile
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        # The name may now belong to nothing (replayed and removed meanwhile).
        if os.stat(path).st_ino == os.fstat(fd).st_ino:
            return fd
    except BlockingIOError:
        report["busy"] += 1
    except FileNotFoundError:
        pass
    os.close(fd)
    return None


def _replay_one(wh, path: Path, target: str | None, report: dict, *, retry: bool) -> None:
    fd = _locked(path, report)
    if fd is None:
        return
    # A spill file's bad records go to <name>.rejected; a .rejected file being re-tried is
    # rewritten through <name>.rejected.tmp and renamed over itself at the end.
    out = path.with_name(path.name + ".tmp") if retry else path.with_suffix(REJECTED_SUFFIX)
    if retry:
        out.unlink(missing_ok=True)  # left by a crash: its records are still in `path`
    quarantine = Quarantine(out, None)
    try:
        with os.fdopen(os.dup(fd), encoding="utf-8", errors="replace", newline="\n") as f:
            mine = _replay_lines(wh, f, target, report, quarantine, retry=retry)
        quarantine.close()
        if not mine:
            report["other_target"] += 1
            return
        if quarantine.count:
            report["quarantine_files"].append(str(path if retry else out))
        if retry and quarantine.count:
            os.replace(out, path)  # only the records refused again stay
        else:
            path.unlink()  # only now: every record above is committed or quarantined
            if retry:
                out.unlink(missing_ok=True)
        fsync_dir(path.parent)
        report["files"] += 1
    except Exception as exc:  # noqa: BLE001 - report it, leave the file for next time
        quarantine.close()
        if retry:
            out.unlink(missing_ok=True)
        report["failed"].append({"file": str(path), "error": error_text(exc)})
        if is_transient(exc, wh.url):
            raise  # the database is down: the other files would fail the same way
    finally:
        os.close(fd)


def replay_spill(wh, spill_dir: str | os.PathLike | None = None, *,
                 all_targets: bool = False, rejected: bool = False, progress=None) -> dict:
    """Write every closed spill file in ``spill_dir`` to ``wh``, then remove it.

    Files still locked by a live process are left alone ("busy"); files spilled for another
    database are left alone ("other_target") unless ``all_targets`` (the match ignores the
    password and query options such as ``?connect_timeout=5``). Records the warehouse
    refuses are found by bisecting the failing chunk and quarantined one by one into
    ``<file>.rejected``; every other record is written. A file is removed only after its
    records are committed or quarantined, so a crash mid-replay just replays it again, which
    changes nothing. With ``rejected`` the quarantined records (``*.rejected`` files) are
    re-tried too, after a fix: those refused again stay.

    Returns counts: files, runs, steps, points (records read), written, skipped,
    torn_lines, bad_lines (damaged lines, quarantined), rejected (records quarantined by
    this replay, including those refused again), busy, other_target, quarantine_files
    (paths) and failed (file and error; such files stay for the next replay).
    ``progress(files_done, files_total)`` is called after each file (the CLI's bar).
    """
    directory = Path(spill_dir) if spill_dir is not None else default_spill_dir()
    report: dict[str, Any] = {
        "files": 0, "runs": 0, "steps": 0, "points": 0, "written": 0, "skipped": 0,
        "torn_lines": 0, "bad_lines": 0, "rejected": 0, "busy": 0, "other_target": 0,
        "quarantine_files": [], "failed": []}
    if not directory.is_dir():
        return report
    target = None if all_targets else match_key(wh.url)
    paths = [(p, False) for p in sorted(directory.glob(f"*{SPILL_SUFFIX}"))]
    if rejected:
        paths += [(p, True) for p in sorted(directory.glob(f"*{REJECTED_SUFFIX}"))]
    for done, (path, retry) in enumerate(paths, 1):
        try:
            _replay_one(wh, path, target, report, retry=retry)
        except Exception:  # noqa: BLE001 - transient: recorded in report["failed"]
            break
        if progress:
            progress(done, len(paths))
    return report
