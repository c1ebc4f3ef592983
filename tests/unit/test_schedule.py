"""Job schedules, invalidation ranges and tier choice: no database needed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse.ingest.invalidation import MAX_RANGES, late_ranges
from warehouse.jobs.registry import Job, Schedule, get_job, jobs, register
from warehouse.jobs.runner import JobTimeout, is_transient
from warehouse.jobs.scheduler import next_due

T0 = pd.Timestamp("2026-11-26T10:07:30Z")
MIN = 60_000_000


def test_cron_and_interval_schedules():
    assert Schedule("*/5 * * * *").next_after(T0) == pd.Timestamp("2026-11-26T10:10:00Z")
    assert Schedule("0 3 * * *").next_after(T0) == pd.Timestamp("2026-11-27T03:00:00Z")
    assert Schedule("15m").next_after(T0) == T0 + pd.Timedelta("15min")
    with pytest.raises(ValueError):
        Schedule("61 * * * *").validate()
    with pytest.raises(ValueError):
        Schedule("every so often").validate()


def test_intervals_translate_to_cron_for_pg_cron():
    assert Schedule("5m").cron() == "*/5 * * * *"
    assert Schedule("2h").cron() == "0 */2 * * *"
    assert Schedule("1d").cron() == "0 0 * * *"
    assert Schedule("10 * * * *").cron() == "10 * * * *"
    with pytest.raises(ValueError):
        Schedule("7m").cron()


def test_a_job_never_run_is_due_now_then_follows_its_schedule():
    job = get_job("archive")  # "10 * * * *"
    assert next_due(job, None, T0) == T0
    assert next_due(job, T0, T0) == pd.Timestamp("2026-11-26T10:10:00Z")
    ran = pd.Timestamp("2026-11-26T10:10:02Z")
    assert next_due(job, ran, T0) == pd.Timestamp("2026-11-26T11:10:00Z")


def test_schedule_override_from_environment(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_JOB_SCHEDULE_RETENTION", "0 4 * * *")
    assert get_job("retention").effective_schedule.text == "0 4 * * *"


def test_builtin_jobs_and_registration():
    assert {"refresh_rollups", "archive", "retention"} <= set(jobs())
    assert get_job("refresh_rollups").sql_only and not get_job("archive").sql_only
    register(Job("custom_noop", lambda ctx: 0, "1h", "does nothing"))
    assert "custom_noop" in jobs()
    with pytest.raises(KeyError):
        get_job("no_such_job")


def test_late_points_collapse_into_contiguous_minute_ranges():
    base = 1_795_000_000_000_000 - 1_795_000_000_000_000 % MIN
    ts = np.array([base + 5, base + MIN + 9, base + 2 * MIN, base + 5 * MIN, base + 1])
    sid = np.array([1, 1, 1, 1, 2])
    assert late_ranges(sid, ts) == [(1, base, base + 3 * MIN), (1, base + 5 * MIN,
                                                               base + 6 * MIN),
                                    (2, base, base + MIN)]


def test_too_many_ranges_are_coarsened_per_series():
    ts = np.arange(2 * MAX_RANGES, dtype="i8") * 2 * MIN  # every other minute
    ranges = late_ranges(np.zeros(len(ts), dtype="i8"), ts)
    assert ranges == [(0, 0, int(ts[-1]) + MIN)]


def test_transient_and_terminal_failures():
    assert is_transient(OSError("disk busy")) and is_transient(RuntimeError("conflict"))
    assert not is_transient(ValueError("bad")) and not is_transient(JobTimeout("late"))
