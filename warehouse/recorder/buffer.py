"""The durable buffered writer: recording never slows or breaks the recipe.

Hot path: :meth:`Buffer.add` appends one small tuple to a deque. A daemon thread drains it
every ``interval`` seconds (sooner when ``flush_at`` items are waiting), builds DataFrames and
writes runs, steps and points to the warehouse, each kind in its own transaction.

When a write fails because the database is unreachable or locked (another process holds the
DuckDB file), the records go to a *spill file* instead: NDJSON, one record per line with its
``kind`` and a unique ``id``, appended and fsync'd per flush, under ``WAREHOUSE_SPILL_DIR``
(default ``./.warehouse-spill``). Writes then back off (0.5 s doubling to ``retry_max``);
spilled files are replayed as soon as a write succeeds again, when a recorder starts, and by
``warehouse replay``. Replays are idempotent because every write is keyed (runs by run_id,
steps by (run_id, step_id), points by (series, ts)).

The deque is bounded: at ``capacity`` the caller spills synchronously to disk instead of
growing memory. Each spill file is ``flock``-ed by the process writing it and only becomes
replayable once that process closes it or dies, so a replay never races a live writer.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path

from warehouse.config import database_url
from warehouse.recorder.frames import points_frame, rows_frame
from warehouse.recorder.replay import Quarantine, is_bad_record, replay_spill, write_bisecting
from warehouse.recorder.safety import internal_failure
from warehouse.recorder.spill import (
    KINDS,
    REJECTED_SUFFIX,
    SPILL_FILE_BYTES,
    SPILL_SUFFIX,
    SpillWriter,
    default_spill_dir,
    is_transient,
    target_key,
    to_record,
)

log = logging.getLogger("warehouse.recorder")



# -- the buffer ---------------------------------------------------------------------------
class WarehouseSink:
    """Where a buffer writes: a given Warehouse, or one opened from a URL on first need (the
    database may be unreachable when the recorder starts)."""

    def __init__(self, wh=None, url: str | None = None):
        self._wh = wh
        self.owned = wh is None
        self.url = wh.url if wh is not None else database_url(url)
        self.target = target_key(self.url)

    def get(self):
        """The Warehouse, opening it if needed; raises if the database is unavailable."""
        if self._wh is None:
            from warehouse.core import Warehouse

            self._wh = Warehouse(self.url)
        return self._wh

    def release(self) -> None:
        """Let go of a single-writer database (the DuckDB file lock) that we opened ourselves,
        so other processes can write between our runs; it is reopened on the next write."""
        wh = self._wh
        if self.owned and wh is not None and wh.backend.capabilities.single_writer:
            wh.close()


class Buffer:
    """Bounded in-memory buffer with a background writer, spill files and replay.

    ``capacity`` items at most are held; ``flush_at`` items wake the writer (default a
    quarter of capacity); ``interval`` seconds between background flushes (None: no thread,
    flushes happen when ``flush_at`` is reached or :meth:`flush` is called). ``tickers`` are
    called on each wake-up of the writer thread (run heartbeats); ``idle()`` says whether the
    sink may let go of the database after a replay (no run active).
    """

    def __init__(self, sink: WarehouseSink, *, spill_dir=None, capacity: int = 100_000,
                 flush_at: int | None = None, interval: float | None = 1.0,
                 retry_max: float = 30.0, replay_on_start: bool = True,
                 idle: Callable[[], bool] = lambda: False):
        if capacity < 1:
            raise ValueError("capacity must be ≥ 1")
        self.sink = sink
        self.spill_dir = Path(spill_dir) if spill_dir is not None else default_spill_dir()
        self.capacity = capacity
        self.flush_at = min(flush_at or max(capacity // 4, 1), capacity)
        self.interval = interval
        self.retry_max = retry_max
        self.tickers: list[Callable[[], None]] = []
        self.idle = idle  # True when no run is active: the sink may let go of the database
        self.stats = {"written": 0, "spilled": 0, "replayed": 0, "rejected": 0, "overflows": 0,
                      "db_errors": 0, "lost": 0, "dropped_values": 0}
        self.last_replay: dict | None = None
        self._items: deque = deque()
        self._write_lock = threading.Lock()
        # Group commit: a flush that starts after a caller's request carries its records,
        # so callers waiting at run ends share one write instead of queueing one each.
        self._flush_state = threading.Condition()
        self._tickets = 0  # requests issued
        self._flushed = 0  # every request up to this one is written (or spilled)
        self._flushing = False
        self._spill_lock = threading.Lock()
        self._spill: SpillWriter | None = None
        self._spilled = False  # own records on disk that are not in the database yet
        self._spill_count = 0  # appends so far: tells a replay whether more came meanwhile
        self._replay_pending = replay_on_start
        self._delay = 0.0
        self._retry_at = 0.0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._quarantine: Quarantine | None = None
        if interval:
            try:
                thread = threading.Thread(target=self._loop, name="warehouse-recorder",
                                          daemon=True)
                thread.start()
                self._thread = thread
            except Exception as exc:  # noqa: BLE001 - no thread: flushes happen inline
                internal_failure("starting the recorder's writer thread", exc)

    def add(self, item: tuple) -> None:
        """Queue one item (the hot path: one append and one length check). Never raises."""
        items = self._items
        items.append(item)
        if len(items) >= self.flush_at:
            try:
                self._threshold()
            except Exception as exc:  # noqa: BLE001 - recording must not break the recipe
                internal_failure("the recorder's buffer", exc)

    def __len__(self) -> int:
        return len(self._items)

    def _threshold(self) -> None:
        if len(self._items) >= self.capacity:
            # Full: memory must not grow and the caller must not wait for the database, so
            # the backlog goes to disk right here; it is replayed once writes succeed.
            self.stats["overflows"] += 1
            self._spill_items(self._drain())
        elif self._thread is not None:
            self._wake.set()
        else:
            self.flush(force=False)

    def _drain(self) -> list[tuple]:
        # popleft is atomic, so producers may keep appending while this runs; another
        # thread may drain at the same time (an overflow on two recipe threads), so the
        # deque can run dry before len() items were taken.
        items, pop = self._items, self._items.popleft
        out = []
        try:
            for _ in range(len(items)):
                out.append(pop())
        except IndexError:
            pass
        return out

    def flush(self, *, force: bool = True, shared: bool = False) -> dict:
        """Write what is buffered now (and replay spilled records if the database is back).
        ``force`` tries the database even while backing off after a failure. With ``shared``
        (a run's end) a flush by another thread that started after this call counts as this
        one: threads ending runs together wait for one write, not one each. Never raises;
        returns a copy of :attr:`stats`."""
        try:
            state = self._flush_state
            # One flush at a time, elected on a condition rather than by racing for the write
            # lock: a thread that keeps the GIL would otherwise take that lock again and
            # again, and every thread ending a run would write alone.
            with state:
                self._tickets += 1
                ticket = self._tickets
                while self._flushing:
                    state.wait()
                    if shared and self._flushed >= ticket:
                        return dict(self.stats)
                if shared and self._flushed >= ticket:
                    return dict(self.stats)
                self._flushing = True
                covered = self._tickets  # their items were all pushed before: drained now
            try:
                with self._write_lock:
                    self._flush_locked(force)
            finally:
                with state:
                    self._flushing = False
                    self._flushed = max(self._flushed, covered)
                    state.notify_all()
        except Exception as exc:  # noqa: BLE001 - recording must never break the recipe
            internal_failure("the recorder's flush", exc)
        return dict(self.stats)

    def _flush_locked(self, force: bool) -> None:
        items = self._drain()
        ok = self._write(items, force) if items else True
        # Spilled records come after live ones, and only while the buffer is not filling
        # up again: replay (JSON) is slower than the live path, so a writer that falls
        # behind catches up with live data first. Order does not matter for correctness:
        # writes are keyed and a terminal status always wins.
        if ok and (self._replay_pending or self._spilled) and (
                force or len(self._items) < self.flush_at):
            self._replay(force)

    def _write(self, items: list[tuple], force: bool) -> bool:
        """Write items, spilling what cannot be written; False if the database failed."""
        if not force and time.monotonic() < self._retry_at:
            self._spill_items(items)
            return False
        groups: dict[str, list] = {kind: [] for kind in KINDS}
        for item in items:
            groups[item[0]].append(item)
        try:
            wh = self.sink.get()
        except Exception as exc:  # noqa: BLE001 - the database may be unreachable in any way
            self._failed(exc)
            self._spill_items(items)
            return False
        url = self.sink.url
        for number, kind in enumerate(KINDS):
            batch = groups[kind]
            if not batch:
                continue
            try:
                # Records the warehouse refuses are found by halving the batch and set aside
                # one by one; the others are written (see replay.write_bisecting).
                write_bisecting(lambda part, k=kind: self._write_kind(wh, k, part), batch,
                                self._set_aside, lambda exc: is_bad_record(exc, url))
            except Exception as exc:  # noqa: BLE001 - unreachable, locked, or anything else: spill
                self._failed(exc)
                self._spill_items([i for k in KINDS[number:] for i in groups[k]])
                return False
        self._succeeded()
        return True

    def _write_kind(self, wh, kind: str, items: list[tuple]) -> None:
        if kind == "points":
            frame, label_columns = points_frame(items)
            wh.write_points(frame, label_columns=label_columns)
        else:
            write = wh.write_runs if kind == "runs" else wh.write_steps
            write(rows_frame([item[1] for item in items]))
        self.stats["written"] += len(items)

    def _replay(self, force: bool) -> None:
        if not force and time.monotonic() < self._retry_at:
            return
        with self._spill_lock:  # seal our own file so that the replay can take it
            if self._spill is not None:
                self._spill.close()
                self._spill = None
            count = self._spill_count
        if not any(self.spill_dir.glob(f"*{SPILL_SUFFIX}")):
            report = None  # nothing to do: do not even open the database
        else:
            try:
                report = replay_spill(self.sink.get(), self.spill_dir)
            except Exception as exc:  # noqa: BLE001 - recorded by _failed, retried later
                self._failed(exc)
                return
            self.last_replay = report
            self.stats["replayed"] += (report["runs"] + report["steps"] + report["points"]
                                       - report["rejected"])
            self.stats["rejected"] += report["rejected"]
            if report["failed"]:
                self._failed(RuntimeError(report["failed"][0]["error"]))
                return
            if self.idle():
                self.sink.release()
        self._replay_pending = False
        with self._spill_lock:  # an overflow spill during the replay is for the next one
            if self._spill_count == count:
                self._spilled = False
        if report is not None:
            self._succeeded()

    def _failed(self, exc: BaseException) -> None:
        self.stats["db_errors"] += 1
        if self._delay == 0.0:  # log once per outage, not on every retry
            kind = "unavailable" if is_transient(exc, self.sink.url) else "failing"
            log.warning("recorder: database %s (%s); spilling to %s", kind,
                        str(exc).splitlines()[0][:300], self.spill_dir)
        self._delay = min(max(self._delay * 2, 0.5), self.retry_max)
        self._retry_at = time.monotonic() + self._delay

    def _succeeded(self) -> None:
        if self._delay:
            log.info("recorder: database reachable again")
        self._delay = self._retry_at = 0.0

    def _spill_items(self, items: list[tuple]) -> None:
        if not items:
            return
        with self._spill_lock:
            try:
                if self._spill is None or self._spill.bytes > SPILL_FILE_BYTES:
                    if self._spill is not None:
                        self._spill.close()
                    self._spill = SpillWriter(self.spill_dir, self.sink.target)
                self.stats["spilled"] += self._spill.append(items)
                self._spill_count += 1
                self._spilled = True
            except Exception as exc:  # noqa: BLE001 - disk full, read-only...: nothing durable left
                self.stats["lost"] += len(items)
                log.error("recorder: could not spill %d records to %s: %s", len(items),
                          self.spill_dir, exc)

    def _set_aside(self, item: tuple, exc: BaseException) -> None:
        """Quarantine one record the warehouse refused (``rejected-<pid>-<token>.rejected``,
        the format of replay's quarantine files: ``replay_spill(..., rejected=True)`` re-tries
        them)."""
        self.stats["rejected"] += 1
        internal_failure("writing a record the warehouse refuses", exc)
        try:
            if self._quarantine is None:
                path = self.spill_dir / f"rejected-{os.getpid()}-{uuid.uuid4().hex[:12]}" \
                                        f"{REJECTED_SUFFIX}"
                self._quarantine = Quarantine(path, {
                    "target": self.sink.target, "pid": os.getpid(),
                    "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            record = to_record(item)
            self._quarantine.add(record.pop("kind"), record, exc)
            self._quarantine.close()  # durable now; reopened (appending) on the next one
        except Exception as failure:  # noqa: BLE001
            self.stats["lost"] += 1
            log.error("recorder: could not set a rejected record aside: %s", failure)

    def release(self) -> None:
        """Let the sink release its database between runs; waits for a write in progress."""
        if not self.sink.owned:  # nothing to let go of: do not queue behind a write
            return
        with self._write_lock:
            self.sink.release()

    def _loop(self) -> None:
        # Work first, then wait: the first pass replays what earlier processes left behind.
        while not self._stop.is_set():
            for tick in self.tickers:
                try:
                    tick()
                except Exception:
                    log.exception("recorder ticker failed")
            self.flush(force=False)
            self._wake.wait(self.interval)
            self._wake.clear()

    def close(self) -> dict:
        """Stop the writer thread, flush what is left, release the spill file."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=30)
        stats = self.flush(force=False)
        with self._spill_lock:
            if self._spill is not None:
                self._spill.close()
                self._spill = None
        return stats
