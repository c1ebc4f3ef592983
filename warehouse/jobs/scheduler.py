"""Deciding which jobs are due, running them, and the foreground scheduler loop.

The scheduler remembers nothing itself: a job is due when its schedule fires after the
start of its last (not skipped) run in ``job_runs`` — so restarts, several schedulers and
manual runs all agree. A job never run is due at once. Each job runs in its own thread, so
a slow or failing job never holds the others up; the job lock keeps one runner per job
across threads, processes and machines.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import text

from warehouse.jobs.registry import Job, jobs
from warehouse.jobs.runner import JobRun, run_job

if TYPE_CHECKING:
    from warehouse.core import Warehouse


def last_started(wh: Warehouse) -> dict[str, pd.Timestamp]:
    """When each job last started a run that was not skipped."""
    with wh.engine.connect() as conn:
        rows = conn.execute(text(wh.backend.sql("jobs/job_last_started"))).fetchall()
    return {job: pd.Timestamp(ts).tz_convert("UTC") if pd.Timestamp(ts).tzinfo
            else pd.Timestamp(ts, tz="UTC") for job, ts in rows}


def next_due(job: Job, last: pd.Timestamp | None, now: pd.Timestamp) -> pd.Timestamp:
    """When ``job`` is next due (``now`` if it never ran)."""
    if last is None:
        return now
    return job.effective_schedule.next_after(last)


def due_jobs(wh: Warehouse, now=None) -> list[Job]:
    """Jobs whose next run is due at ``now``, in registry order."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now).tz_convert("UTC")
    last = last_started(wh)
    return [job for job in jobs().values() if next_due(job, last.get(job.name), now) <= now]


def run_due(wh: Warehouse, *, now=None, trigger: str = "run-due",
            cancel: threading.Event | None = None) -> list[JobRun]:
    """Run every due job once, each in its own thread; a failing job does not stop others."""
    due = due_jobs(wh, now)
    if not due:
        return []
    with ThreadPoolExecutor(max_workers=len(due), thread_name_prefix="job") as pool:
        futures = [pool.submit(run_job, wh, job, trigger=trigger, cancel=cancel) for job in due]
    return [_result(job, f) for job, f in zip(due, futures)]


class Scheduler:
    """Runs due jobs until stopped (SIGINT/SIGTERM in the foreground, or :meth:`stop`).

    Stopping is clean: no new run starts, running jobs stop at their next step (the statement
    in flight is interrupted and its transaction rolled back — every job is safe to stop at
    any instant), every run is recorded (``cancelled``), and the call returns.
    """

    def __init__(self, wh: Warehouse, *, tick: float = 1.0, grace: float = 30.0,
                 on_run: Callable[[JobRun], None] | None = None):
        self.wh, self.tick, self.grace, self.on_run = wh, tick, grace, on_run
        self._stop = threading.Event()
        self._cancel = threading.Event()
        self._running: dict[str, Future] = {}

    def stop(self, *_args) -> None:
        self._stop.set()

    def run(self, *, install_signals: bool = True, max_seconds: float | None = None) -> None:
        """Loop until stopped; returns once every started run has finished."""
        previous = {}
        if install_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self.stop)
        started = time.monotonic()
        pool = ThreadPoolExecutor(max_workers=max(len(jobs()), 1), thread_name_prefix="job")
        try:
            while not self._stop.is_set():
                if max_seconds is not None and time.monotonic() - started > max_seconds:
                    break
                self._start_due(pool)
                self._stop.wait(self.tick)
        finally:
            self._shutdown(pool)
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _start_due(self, pool: ThreadPoolExecutor) -> None:
        for name in [n for n, f in self._running.items() if f.done()]:
            run = _result(jobs()[name], self._running.pop(name))
            if self.on_run:
                self.on_run(run)
        try:
            due = due_jobs(self.wh)
        except Exception:  # noqa: BLE001 - the database may be restarting: try next tick
            return
        for job in due:
            if job.name not in self._running:
                self._running[job.name] = pool.submit(
                    run_job, self.wh, job, trigger="scheduler", cancel=self._cancel)

    def _shutdown(self, pool: ThreadPoolExecutor) -> None:
        self._cancel.set()  # jobs stop at their next step; watchdogs interrupt statements
        deadline = time.monotonic() + self.grace
        while any(not f.done() for f in self._running.values()) and time.monotonic() < deadline:
            time.sleep(0.05)
        for name, future in self._running.items():
            if self.on_run:
                self.on_run(_result(jobs()[name], future))
        self._running.clear()
        pool.shutdown(wait=True)


def _result(job: Job, future: Future) -> JobRun:
    try:
        return future.result()
    except Exception as exc:  # noqa: BLE001 - e.g. the database vanished while recording
        return JobRun(job.name, "failed", error=f"{type(exc).__name__}: {exc}")
