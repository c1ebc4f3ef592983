"""The public functions of :mod:`warehouse.jobs`; each takes a :class:`~warehouse.Warehouse`.
The CLI (:mod:`warehouse.cli.jobs`) and the facade call exactly these.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import text

from warehouse.jobs import archive as _archive
from warehouse.jobs import retention as _retention
from warehouse.jobs import runner as _runner
from warehouse.jobs.pgcron import install_pg_cron
from warehouse.jobs.registry import get_job, jobs
from warehouse.jobs.rollups import rollup_state
from warehouse.jobs.runner import JobRun
from warehouse.jobs.scheduler import due_jobs, last_started, next_due, run_due

if TYPE_CHECKING:
    from warehouse.core import Warehouse


def run_job(wh: Warehouse, name: str, *, now=None, timeout: float | None = None,
        retries: int | None = None, backoff: float | None = None, trigger: str = "manual",
        cancel: threading.Event | None = None) -> JobRun:
    """Run the job ``name`` now (``refresh_rollups``, ``archive``, ``retention``, ...).

    ``now`` (tests, backfills) replaces the wall clock as the job's present: rollups
    materialise buckets that end before it, policies count their age from it.
    Returns the run as recorded in ``job_runs``; a run that found the job busy is
    ``skipped``.
    """
    return _runner.run_job(wh, get_job(name), now=now, timeout=timeout, retries=retries,
                   backoff=backoff, trigger=trigger, cancel=cancel)


def list_jobs(wh: Warehouse, now=None) -> pd.DataFrame:
    """Registered jobs: job, schedule, sql_only, last_started, next_due, description."""
    now = pd.Timestamp.now(tz="UTC") if now is None else pd.Timestamp(now)
    last = last_started(wh)
    rows = [{"job": j.name, "schedule": j.effective_schedule.text, "sql_only": j.sql_only,
             "last_started": last.get(j.name), "next_due": next_due(j, last.get(j.name), now),
             "description": j.description} for j in jobs().values()]
    return pd.DataFrame(rows)


def job_runs(wh: Warehouse, job: str | None = None, limit: int = 50) -> pd.DataFrame:
    """Recent runs, newest first: run_id, job, started_at, finished_at, status,
    rows_affected, attempts, error, trigger, host, pid."""
    with wh.engine.connect() as conn:
        return wh.backend.fetch_frame(conn, wh.backend.sql("jobs/job_runs"),
                                      {"job": job, "limit": int(limit)})


def set_retention(wh: Warehouse, table: str, keep, *, archive: bool = False,
                  metric: str | None = None) -> dict:
    """Keep ``table`` (or one ``metric`` of points) for ``keep``; ``archive`` writes chunks
    to Parquet (and verifies them) before they may leave the hot table."""
    return _retention.set_policy(wh, table, keep, archive=archive, metric=metric)


def remove_retention(wh: Warehouse, table: str, metric: str | None = None) -> bool:
    """Remove a retention policy; returns whether one existed."""
    return _retention.remove_policy(wh, table, metric)


def retention_policies(wh: Warehouse) -> pd.DataFrame:
    """Retention policies: table_name, metric, keep, keep_us, archive, updated_at."""
    return _retention.policies(wh)


def restore_archive(wh: Warehouse, start, end, *, hold=_archive.DEFAULT_HOLD, now=None,
            progress=None) -> dict:
    """Bring archived points in [start, end) back into the hot table (idempotent); retention
    leaves them for ``hold``. Returns units, rows_read, rows_inserted. ``progress(units_done,
    units_total)`` is called after each unit."""
    return _archive.restore(wh, start, end, hold=hold, now=now, progress=progress)


def archive_manifest(wh: Warehouse) -> pd.DataFrame:
    """Every archived unit: table, chunk, metric, rows, min/max ts, bytes, sha256, verified,
    archived/verified/dropped times, hold_until, root, path."""
    with wh.engine.connect() as conn:
        return wh.backend.fetch_frame(conn, wh.backend.sql("jobs/archive_manifest"), {})


def count_rows(wh: Warehouse, table: str = "points") -> int:
    """Rows of a table, hot only (a helper for checks and tests)."""
    with wh.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())


__all__ = ["archive_manifest", "due_jobs", "install_pg_cron", "job_runs", "list_jobs",
           "remove_retention", "restore_archive", "retention_policies", "rollup_state",
           "run_job", "run_due", "set_retention"]
