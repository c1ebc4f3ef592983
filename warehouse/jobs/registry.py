"""The job registry: name, body, schedule, limits. Other areas register their own jobs with
:func:`register` (the built-ins go through the same path).

A schedule is a cron expression (``"*/5 * * * *"``, parsed by croniter, UTC) or an interval
(``"15m"``, ``"1h"``). ``WAREHOUSE_JOB_SCHEDULE_<NAME>`` (e.g.
``WAREHOUSE_JOB_SCHEDULE_ARCHIVE="0 3 * * *"``) overrides a job's schedule.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from warehouse.errors import UnknownNameError
from warehouse.timeparse import interval_us


@dataclass(frozen=True)
class Schedule:
    """When a job is due: a cron expression or a fixed interval."""

    text: str

    @property
    def is_cron(self) -> bool:
        return len(self.text.split()) == 5

    def validate(self) -> Schedule:
        if self.is_cron:
            from croniter import croniter

            if not croniter.is_valid(self.text):
                raise ValueError(f"bad cron expression {self.text!r}")
        else:
            interval_us(self.text)  # raises with a clear message
        return self

    def next_after(self, when: datetime) -> pd.Timestamp:
        """The first time strictly after ``when`` at which the job is due."""
        when = pd.Timestamp(when).tz_convert("UTC")
        if self.is_cron:
            from croniter import croniter

            return pd.Timestamp(croniter(self.text, when.to_pydatetime()).get_next(datetime))
        return when + timedelta(microseconds=interval_us(self.text))

    def cron(self) -> str:
        """The schedule as a cron expression (for pg_cron); intervals that divide an hour or
        a day translate, others cannot."""
        if self.is_cron:
            return self.text
        us = interval_us(self.text)
        minutes, hours = us // 60_000_000, us // 3_600_000_000
        if us % 60_000_000 == 0 and minutes < 60 and 60 % minutes == 0:
            return f"*/{minutes} * * * *"
        if us % 3_600_000_000 == 0 and hours < 24 and 24 % hours == 0:
            return f"0 */{hours} * * *"
        if us == 86_400_000_000:
            return "0 0 * * *"
        raise ValueError(f"interval {self.text!r} has no cron equivalent; give a cron expression")


@dataclass(frozen=True)
class Job:
    """A registered job. ``body(ctx) -> rows affected``; ``sql_only``: its whole body runs in
    the database, so pg_cron may schedule it (``wh_job_cron`` dispatches on the name)."""

    name: str
    body: Callable
    schedule: str
    description: str
    sql_only: bool = False
    timeout: float = 3600.0
    retries: int = 2
    backoff: float = 5.0

    @property
    def effective_schedule(self) -> Schedule:
        override = os.environ.get(f"WAREHOUSE_JOB_SCHEDULE_{self.name.upper()}")
        return Schedule(override or self.schedule).validate()


_JOBS: dict[str, Job] = {}


def register(job: Job) -> Job:
    """Add (or replace) a job."""
    Schedule(job.schedule).validate()
    _JOBS[job.name] = job
    return job


def jobs() -> dict[str, Job]:
    """Every registered job by name (the built-ins first)."""
    _builtins()
    return dict(_JOBS)


def get_job(name: str) -> Job:
    found = jobs().get(name)
    if found is None:
        raise UnknownNameError(f"unknown job {name!r}; known: {', '.join(jobs())}")
    return found


#: Every area's jobs, in one list: (name, "module:function" of the body, schedule, flags,
#: description). Bodies are imported when a job runs, so the registry stays cheap to import;
#: a new area (alerts, dashboards) adds its jobs here.
JOB_LIST = (
    ("refresh_rollups", "warehouse.jobs.rollups:refresh_rollups_job", "* * * * *",
     {"sql_only": True, "timeout": 1800.0},
     "Roll points up into points_1m/1h/1d from the watermark and invalidated ranges"),
    ("archive", "warehouse.jobs.archive:archive_job", "10 * * * *", {},
     "Write chunks past an archive policy to Parquet, record and verify them"),
    ("retention", "warehouse.jobs.retention:retention_job", "20 * * * *", {"sql_only": True},
     "Drop chunks past their policy (archived and verified ones only, if archiving)"),
    ("compress", "warehouse.jobs.compress:compress_job", "30 * * * *", {},
     "Compress chunks of points past the compression policy (PostgreSQL; DuckDB: no-op)"),
    ("maintain", "warehouse.jobs.maintenance:maintain_job", "0 * * * *", {},
     "Create chunks ahead of time; move stray rows out of default partitions"),
    ("alerts", "warehouse.alerts.job:alerts_job", "* * * * *", {"timeout": 300.0},
     "Evaluate alert rules (no data, dead man's switch) and send due notifications"),
)


def _lazy_body(target: str) -> Callable:
    module, function = target.split(":")

    def body(ctx):
        import importlib

        return getattr(importlib.import_module(module), function)(ctx)

    body.__qualname__ = target
    return body


def _builtins() -> None:
    if "refresh_rollups" in _JOBS:
        return
    for name, target, schedule, flags, description in JOB_LIST:
        register(Job(name, _lazy_body(target), schedule, description, **flags))
