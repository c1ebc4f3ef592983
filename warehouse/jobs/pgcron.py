"""Scheduling the SQL-only jobs inside PostgreSQL with pg_cron (where it is installed).

pg_cron keeps its schedules in one database (``cron.database_name``) and runs each command
over a libpq connection to the target database; ``cron.schedule_in_database`` (pg_cron 1.4+)
points a schedule at this warehouse's database. The command is ``SELECT wh_job_cron('<job>')``:
that function takes the same advisory lock as the warehouse scheduler (one runner per job,
whoever starts it) and records the run in ``job_runs`` with trigger ``pg_cron``.
Only jobs whose whole body is SQL qualify (``Job.sql_only``: refresh_rollups, retention);
``archive`` writes Parquet and stays with the warehouse scheduler.
https://github.com/citusdata/pg_cron
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import create_engine, text

from warehouse.errors import UnknownNameError, WarehouseError
from warehouse.jobs.registry import jobs

if TYPE_CHECKING:
    from warehouse.core import Warehouse


def install_pg_cron(wh: Warehouse, *, remove: bool = False) -> pd.DataFrame:
    """(Re)install pg_cron schedules for the SQL-only jobs, or remove them. Returns the
    schedules this database has afterwards (jobid, jobname, schedule, command, ...)."""
    backend = wh.backend
    try:
        settings_sql = backend.sql("jobs/pg_cron_settings")
    except UnknownNameError as exc:
        raise WarehouseError(
            f"pg_cron is a PostgreSQL extension; the {backend.dialect} backend has no "
            f"in-database scheduler: run `warehouse scheduler` instead") from exc
    with wh.engine.connect() as conn:
        cron_db, this_db = conn.execute(text(settings_sql)).one()
    if not cron_db:
        raise WarehouseError("pg_cron is not loaded: add it to shared_preload_libraries "
                             "(and set cron.database_name), then restart PostgreSQL")
    prefix = f"warehouse:{this_db}:"
    cron_engine = create_engine(wh.engine.url.set(database=cron_db))
    try:
        with cron_engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_cron"))
            conn.execute(text(backend.sql("jobs/pg_cron_unschedule")), {"prefix": prefix})
            if not remove:
                for job in jobs().values():
                    if job.sql_only:
                        conn.execute(text(backend.sql("jobs/pg_cron_schedule")), {
                            "name": prefix + job.name, "job": job.name,
                            "schedule": job.effective_schedule.cron(), "database": this_db})
        with cron_engine.connect() as conn:
            return backend.fetch_frame(conn, backend.sql("jobs/pg_cron_jobs"), {"prefix": prefix})
    finally:
        cron_engine.dispose()
