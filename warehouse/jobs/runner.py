"""Running one job: one runner at a time, every run recorded in ``job_runs``, a timeout, and
retries with backoff for failures worth retrying.

* Lock: PostgreSQL — a session advisory lock on a dedicated connection (freed by the server
  if the runner dies); DuckDB — ``flock`` on a file beside the database (freed by the kernel
  if the runner dies). A run that finds the job locked is recorded as ``skipped``.
* Record: the ``running`` row is committed before the body starts; a runner that holds the
  lock marks any older ``running`` row of its job ``abandoned`` (its runner died).
* Timeout: the body checks the deadline between steps (``ctx.check()``), and a watchdog
  interrupts the statement running at the deadline (DuckDB ``interrupt``, PostgreSQL cancel).
* Retries: transient failures (connection, lock, conflict, I/O) are retried with exponential
  backoff and jitter; terminal ones (bad input, SQL errors, timeouts) are not.
"""

from __future__ import annotations

import fcntl
import os
import random
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, text
from sqlalchemy.exc import ProgrammingError

from warehouse.backends.paths import database_file
from warehouse.errors import TerminalError, TransientError, WarehouseError

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.registry import Job


#: How long job_runs remembers a job's runs.
KEEP_RUNS = pd.Timedelta(days=90)


class JobTimeout(TerminalError):
    """The job ran past its timeout and was stopped."""


class JobCancelled(WarehouseError):
    """The job was asked to stop (the scheduler is shutting down)."""


@dataclass
class JobContext:
    """What a job body gets: the warehouse, its notion of now, and cooperative stopping."""

    wh: Warehouse
    job: str
    now: pd.Timestamp
    deadline: float | None = None  # time.monotonic() value
    cancel: threading.Event = field(default_factory=threading.Event)
    notes: list[str] = field(default_factory=list)
    _current: Connection | None = None
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def check(self) -> None:
        """Raise if the job must stop now (call between steps)."""
        if self.cancel.is_set():
            raise JobCancelled(f"{self.job}: stopped on request")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise JobTimeout(f"{self.job}: ran past its timeout")

    def note(self, message: str) -> None:
        """Something the operator should see in the run's record (e.g. a refused drop)."""
        self.notes.append(message)

    @contextmanager
    def transaction(self, *, exclusive: bool = False) -> Iterator[Connection]:
        """A transaction the watchdog can interrupt. ``exclusive``: the job changes points or
        rollups; on a single-writer engine it then holds this process's ingest lock, the
        only fence between ingest and the job there (no other process, no row locks)."""
        backend = self.wh.backend
        lock = backend.job_fence() if exclusive else nullcontext()
        with lock, self.wh.engine.begin() as conn:
            with self._guard:
                self._current = conn
            try:
                yield conn
            finally:
                with self._guard:
                    self._current = None

    def interrupt(self) -> None:
        """Cancel the statement in flight, if any (called by the watchdog thread)."""
        with self._guard:
            if self._current is not None:
                try:
                    self.wh.backend.interrupt(self._current)
                except Exception:  # noqa: BLE001 - best effort: the check() calls still stop it
                    pass


@dataclass
class JobRun:
    """The outcome of one run, as recorded in job_runs."""

    job: str
    status: str
    rows: int = 0
    attempts: int = 0
    error: str | None = None
    run_id: int | None = None
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def is_transient(exc: BaseException) -> bool:
    """Whether retrying might help (the split dlt makes): not for bad input, SQL errors in
    our own statements, or timeouts; yes for connections, locks, conflicts and I/O."""
    if isinstance(exc, TransientError):
        return True
    if isinstance(exc, (TerminalError, JobCancelled, ValueError, TypeError, KeyError,
                        AttributeError, NotImplementedError, ProgrammingError)):
        return False
    return True


def run_job(wh: Warehouse, job: Job, *, now=None, trigger: str = "manual",
            timeout: float | None = None, retries: int | None = None,
            backoff: float | None = None, cancel: threading.Event | None = None) -> JobRun:
    """Run ``job`` once (with its retries) unless another runner holds it; record the run."""
    timeout = job.timeout if timeout is None else timeout
    retries = job.retries if retries is None else retries
    backoff = job.backoff if backoff is None else backoff
    cancel = cancel or threading.Event()
    started = time.monotonic()
    with job_lock(wh, job.name) as held:
        if not held:
            _record(wh, "jobs/job_run_skipped", job=job.name, now=_wall(), trigger=trigger,
                    host=socket.gethostname(), pid=os.getpid())
            return JobRun(job.name, "skipped", error="another runner holds this job")
        _record(wh, "jobs/job_run_abandon", job=job.name, now=_wall())
        with wh.engine.begin() as conn:
            run_id = conn.execute(text(wh.backend.sql("jobs/job_run_start")), {
                "job": job.name, "started_at": _wall(), "trigger": trigger,
                "host": socket.gethostname(), "pid": os.getpid()}).scalar_one()
        run = JobRun(job.name, "running", run_id=int(run_id))
        deadline = started + timeout if timeout else None
        ctx = JobContext(wh, job.name, _now(now), deadline, cancel)
        watchdog = _Watchdog(ctx)
        try:
            while True:
                run.attempts += 1
                try:
                    run.rows = int(job.body(ctx) or 0)
                    run.status, run.error = "succeeded", None
                    break
                except BaseException as exc:  # noqa: BLE001 - recorded, then re-raised if fatal
                    run.status, run.error = _classify(ctx, exc)
                    if not isinstance(exc, Exception):
                        raise  # KeyboardInterrupt/SystemExit: recorded below, then leave
                    if (run.status != "failed" or not is_transient(exc)
                            or run.attempts > retries):
                        break
                    delay = backoff * 2 ** (run.attempts - 1) * (1 + random.random() / 4)
                    if cancel.wait(min(delay, _remaining(deadline))):
                        run.status, run.error = "cancelled", "stopped while waiting to retry"
                        break
        finally:
            watchdog.stop()
            run.notes = ctx.notes
            run.seconds = time.monotonic() - started
            error = run.error
            if run.notes:
                error = "; ".join(filter(None, [error, *run.notes]))
            _record(wh, "jobs/job_run_finish", run_id=run.run_id, finished_at=_wall(),
                    status="cancelled" if run.status == "running" else run.status,
                    rows_affected=run.rows, attempts=run.attempts, error=error)
            _record(wh, "jobs/job_runs_prune", job=job.name, before=_wall() - KEEP_RUNS)
    return run


def _classify(ctx: JobContext, exc: BaseException) -> tuple[str, str]:
    # An interrupted statement surfaces as a driver error: the deadline says what it was.
    if isinstance(exc, JobTimeout) or (ctx.deadline and time.monotonic() > ctx.deadline):
        return "timeout", f"ran past its timeout ({type(exc).__name__}: {exc})"
    if isinstance(exc, JobCancelled) or ctx.cancel.is_set():
        return "cancelled", str(exc) or "stopped on request"
    return "failed", f"{type(exc).__name__}: {exc}"


class _Watchdog:
    """Interrupts the job's statement at its deadline or when it is cancelled."""

    def __init__(self, ctx: JobContext):
        self._ctx, self._done = ctx, threading.Event()
        self._thread = threading.Thread(target=self._watch, name=f"watchdog-{ctx.job}",
                                        daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            late = self._ctx.deadline is not None and time.monotonic() > self._ctx.deadline
            if late or self._ctx.cancel.is_set():
                self._ctx.interrupt()
            self._done.wait(0.2)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=5)


@contextmanager
def job_lock(wh: Warehouse, job: str) -> Iterator[bool]:
    """Hold the job's lock for the block if nobody else does; yields whether it is held."""
    if wh.backend.capabilities.advisory_locks:
        conn = wh.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
        try:
            held = bool(conn.execute(text(wh.backend.sql("jobs/job_lock")), {"job": job}).scalar_one())
            try:
                yield held
            finally:
                if held:
                    conn.execute(text(wh.backend.sql("jobs/job_unlock")), {"job": job})
        finally:
            conn.close()
        return
    handle = os.open(lock_path(wh, job), os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            # flock locks belong to the open file, so threads of one process exclude each
            # other too (fcntl/POSIX locks would not).
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(handle)  # closing releases the lock


def lock_path(wh: Warehouse, job: str) -> Path:
    """``<database file>.<job>.lock`` beside the database (a temp file for in-memory ones)."""
    db_file = database_file(wh.engine, wh.backend)
    if db_file is None:
        return Path(tempfile.gettempdir()) / f"warehouse-{os.getpid()}-{id(wh.engine)}.{job}.lock"
    return db_file.with_name(f"{db_file.name}.{job}.lock")


def _record(wh: Warehouse, name: str, **params) -> None:
    with wh.engine.begin() as conn:
        conn.execute(text(wh.backend.sql(name)), params)


def _wall() -> pd.Timestamp:
    return pd.Timestamp.now(tz="UTC")


def _now(now) -> pd.Timestamp:
    if now is None:
        return _wall()
    from warehouse.timeparse import aware_timestamp

    return aware_timestamp(now, "now")


def _remaining(deadline: float | None) -> float:
    return max(deadline - time.monotonic(), 0.0) if deadline is not None else 3600.0
