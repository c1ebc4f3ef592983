"""The job runner and scheduler: job_runs records, one runner per job, timeouts, retries
with backoff, failures isolated, clean stops; and the CLI the way users call it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from warehouse import Warehouse, jobs
from warehouse.cli import main
from warehouse.errors import TransientError
from warehouse.jobs import registry
from warehouse.jobs.registry import Job
from warehouse.jobs.registry import register as register_job
from warehouse.jobs.runner import job_lock, run_job
from warehouse.jobs.scheduler import Scheduler


def points(n=500, start="2026-11-20"):
    rng = np.random.default_rng(0)
    return pd.DataFrame({"metric": "cpu", "ts": pd.date_range(start, periods=n, freq="1min",
                                                                 tz="UTC"),
                         "value": rng.normal(size=n)})


def test_runs_are_recorded_in_job_runs(wh):
    wh.write_points(points())
    run = jobs.run_job(wh, "refresh_rollups", now="2026-11-21T00:00:00Z")
    assert (run.status, run.attempts) == ("succeeded", 1) and run.rows > 0
    history = jobs.job_runs(wh)
    assert history.iloc[0][["job", "status", "rows_affected", "trigger"]].tolist() == [
        "refresh_rollups", "succeeded", run.rows, "manual"]
    assert pd.notna(history.iloc[0]["finished_at"]) and history.iloc[0]["pid"] == os.getpid()


def test_one_runner_per_job(wh):
    with job_lock(wh, "archive") as held:
        assert held
        with job_lock(wh, "archive") as again:
            assert not again  # also between threads of one process
        run = jobs.run_job(wh, "archive")
    assert run.status == "skipped"
    assert jobs.run_job(wh, "archive").status == "succeeded"
    if not wh.backend.capabilities.advisory_locks:  # DuckDB: a lock file beside the database
        assert os.path.exists(wh.engine.url.database + ".archive.lock")


def test_a_killed_run_is_marked_abandoned_by_the_next(wh):
    with wh.engine.begin() as conn:
        conn.execute(*_sql(wh, "jobs/job_run_start", job="retention",
                           started_at=pd.Timestamp("2026-11-01", tz="UTC"), trigger="x",
                           host="h", pid=1))
    assert jobs.run_job(wh, "retention").status == "succeeded"
    statuses = jobs.job_runs(wh, "retention")["status"].tolist()
    assert statuses == ["succeeded", "abandoned"]


def test_timeouts_stop_a_long_statement(wh):
    sleep = ("SELECT pg_sleep(30)" if wh.backend.capabilities.advisory_locks else
             "SELECT count(*) FROM range(1000000000000) AS r(i) WHERE i % 7 = 3")

    def slow(ctx):
        with ctx.transaction() as conn:
            conn.exec_driver_sql(sleep).fetchall()
        return 1

    started = time.monotonic()
    run = run_job(wh, Job("slow_job", slow, "1h", "sleeps"), timeout=1.0, retries=3)
    assert run.status == "timeout" and run.attempts == 1  # timeouts are not retried
    assert time.monotonic() - started < 10
    assert jobs.job_runs(wh, "slow_job")["status"].tolist() == ["timeout"]


def test_transient_failures_are_retried_with_backoff_terminal_ones_are_not(wh):
    calls = []

    def flaky(ctx):
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise TransientError("database restarting")
        return 7

    run = run_job(wh, Job("flaky", flaky, "1h", "fails twice"), retries=3, backoff=0.05)
    assert (run.status, run.attempts, run.rows) == ("succeeded", 3, 7)
    gaps = np.diff(calls)
    assert gaps[1] > gaps[0] >= 0.05  # the backoff doubles

    def broken(ctx):
        raise ValueError("bad policy")

    run = run_job(wh, Job("broken", broken, "1h", "always fails"), retries=3, backoff=0.01)
    assert (run.status, run.attempts) == ("failed", 1) and "bad policy" in run.error


def test_a_failing_job_never_stops_the_others(wh):
    builtins = {name for name, *_ in registry.JOB_LIST}
    register_job(Job("always_fails", lambda ctx: 1 / 0, "1h", "fails", retries=0))
    runs = {r.job: (r.status, r.attempts) for r in jobs.run_due(wh)}
    # Side by side, the jobs do not trip over each other (no retry was needed).
    assert runs == {**{name: ("succeeded", 1) for name in builtins},
                    "always_fails": ("failed", 1)}
    assert {"refresh_rollups", "archive", "retention", "maintain"} <= builtins
    assert jobs.due_jobs(wh) == []  # each ran: none is due again yet


def test_scheduler_runs_due_jobs_and_stops_cleanly(wh):
    seen = []
    scheduler = Scheduler(wh, tick=0.1, on_run=seen.append)
    thread = threading.Thread(target=scheduler.run, kwargs={"install_signals": False})
    thread.start()
    deadline = time.monotonic() + 30
    builtins = sorted(name for name, *_ in registry.JOB_LIST)
    while len(seen) < len(builtins) and time.monotonic() < deadline:
        time.sleep(0.1)
    scheduler.stop()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert sorted(r.job for r in seen) == builtins
    assert "running" not in set(jobs.job_runs(wh)["status"])


def test_scheduler_process_stops_on_sigterm(database_url, tmp_path):
    wh = Warehouse(database_url)
    wh.write_points(points())
    wh.close()  # DuckDB: the scheduler process must own the file
    proc = subprocess.Popen([sys.executable, "-m", "warehouse.jobs", "--url", database_url,
                             "scheduler", "--tick", "0.2"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    names = {name for name, *_ in registry.JOB_LIST}
    done: set[str] = set()
    deadline = time.monotonic() + 60
    while done != names and time.monotonic() < deadline:
        job, _, status = proc.stdout.readline().partition(": ")
        if status.startswith("succeeded"):
            done.add(job)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "scheduler stopped" in stderr
    wh = Warehouse(database_url)
    history = jobs.job_runs(wh)
    # Every job ran to the end once; a run the SIGTERM caught mid-way is recorded as
    # cancelled (interrupted, to be re-run), never left 'running' or 'failed'.
    succeeded = set(history.loc[history["status"] == "succeeded", "job"])
    assert succeeded == names
    assert set(history["status"]) <= {"succeeded", "cancelled"}
    assert set(history["trigger"]) == {"scheduler"}
    wh.close()


def test_cli_jobs_retention_archive(database_url, tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(tmp_path / "archive"))
    runner = CliRunner()

    def cli(*args, code=0):
        result = runner.invoke(main, ["--url", database_url, *args], catch_exceptions=False)
        assert result.exit_code == code, result.output
        return result.output

    wh = Warehouse(database_url)
    wh.write_points(points(3 * 1440, start="2026-10-01"))
    wh.close()
    assert "points[*]: keep 30d, archive first" in cli("retention", "set", "points", "--keep",
                                                       "30d", "--archive")
    assert "points,*,30d" in cli("retention", "list", "--format", "csv")
    assert "refresh_rollups" in cli("jobs", "list", "--format", "csv")
    builtins = [name for name, *_ in registry.JOB_LIST]
    for job in builtins:
        assert f"{job}: succeeded" in cli("jobs", "run", job)
    # Nothing is due, unless a minute began since a minutely job ran (a loaded machine takes
    # long enough over the loop above): then it, and only it, is due again.
    minutely = {name for name, _, schedule, *_ in registry.JOB_LIST if schedule == "* * * * *"}
    due = cli("jobs", "run-due")
    again = [] if "no job is due" in due else due.splitlines()
    assert {line.split(":")[0] for line in again} <= minutely, due
    assert all(": succeeded" in line for line in again), due
    history = cli("jobs", "history", "--format", "csv")
    assert history.count("succeeded") == len(builtins) + len(again)
    assert "points_1d" in cli("jobs", "rollups", "--format", "csv")
    assert cli("archive", "list", "--format", "csv").count("points/date=") == 3
    assert "4320 rows inserted" in cli("archive", "restore", "--from", "2026-10-01T00:00:00Z",
                                       "--to", "2026-10-04T00:00:00Z")
    assert "0 rows inserted" in cli("archive", "restore", "--from", "2026-10-01T00:00:00Z",
                                    "--to", "2026-10-04T00:00:00Z")
    assert "error" in runner.invoke(main, ["--url", database_url, "jobs", "run", "nope"]).output
    cli("retention", "set", "nope", "--keep", "1d", code=1)


def _sql(wh, name, **params):
    from sqlalchemy import text

    return text(wh.backend.sql(name)), params


@pytest.fixture(autouse=True)
def _no_stray_jobs():
    from warehouse.jobs import registry

    before = set(registry.jobs())
    yield
    for name in set(registry._JOBS) - before:
        registry._JOBS.pop(name)
