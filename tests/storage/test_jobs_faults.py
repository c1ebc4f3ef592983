"""Faults: the archive and retention jobs killed with SIGKILL at random instants, many times,
then re-run cleanly: every ingested point is in the hot table or the archive, exactly once.
On PostgreSQL a thread keeps ingesting meanwhile, and every write succeeds.

WAREHOUSE_FAULT_KILLS (default 10) sets how many runs are killed per engine; each kill costs
about 2 s (a fresh process per run): ~30 s per engine on an idle two-core machine.
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time

import numpy as np
import pandas as pd
import pytest

from warehouse import Warehouse, jobs
from warehouse.backends.parquet import file_sha256, read_points
from warehouse.query.archive_read import archived_units

KILLS = int(os.environ.get("WAREHOUSE_FAULT_KILLS", "10"))
NOW = pd.Timestamp("2026-11-20T00:00:00Z")
DAYS = 14  # 11-06 .. 11-19; keep 4 days: 10 chunks to archive and drop


def points(days=DAYS, start="2026-11-06", per_day=40_000, seed=0) -> pd.DataFrame:
    n = days * per_day
    rng = np.random.default_rng(seed)
    ts = pd.Timestamp(start, tz="UTC") + pd.to_timedelta(
        np.sort(rng.integers(0, days * 86_400_000_000, n)), unit="us")
    return pd.DataFrame({"metric": "cpu", "host": rng.choice(["a", "b", "c", "d"], n),
                         "ts": ts, "value": rng.normal(50, 5, n).round(2)}).drop_duplicates(
        ["host", "ts"])


def job_process(url: str, job: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "warehouse.jobs", "--url", url, "jobs", "run", job,
         "--now", NOW.isoformat(), "--retries", "0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def job_started(wh, proc, lock_file: str, concurrent: bool) -> bool:
    if proc.poll() is not None:
        return True
    if not concurrent:  # DuckDB: the job's lock file appears when the run begins
        return os.path.exists(lock_file)
    runs = wh.sql("SELECT count(*) AS n FROM job_runs WHERE pid = :p", {"p": proc.pid})
    return bool(runs["n"].iloc[0])


def wait_until(condition, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.slow
def test_killed_archive_and_retention_lose_nothing(database_url, tmp_path, monkeypatch):
    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    env = {**os.environ, "WAREHOUSE_ARCHIVE": str(root)}
    data = points()
    wh = Warehouse(database_url)
    wh.write_points(data, label_columns=["host"])
    jobs.set_retention(wh, "points", "4d", archive=True)
    assert jobs.run_job(wh, "refresh_rollups", now=NOW).status == "succeeded"
    concurrent = not wh.backend.capabilities.single_writer
    if not concurrent:
        wh.close()  # DuckDB: one process owns the file; the killed jobs take turns at it

    written, failures, stop = [], [], threading.Event()

    def ingest():  # recent points, in chunks the jobs never touch
        rng, i = np.random.default_rng(1), 0
        while not stop.is_set():
            batch = pd.DataFrame({"metric": "cpu", "host": "live", "value": rng.normal(size=50),
                                  "ts": NOW - pd.Timedelta("1D") + pd.to_timedelta(
                                      np.arange(i, i + 50) * 997, unit="ms")})
            try:
                wh.write_points(batch, label_columns=["host"])
                written.append(len(batch))
            except Exception as exc:  # noqa: BLE001 - the assertion below reports it
                failures.append(exc)
            i += 50
            time.sleep(0.02)

    writer = threading.Thread(target=ingest) if concurrent else None
    if writer:
        writer.start()
    rng = random.Random(20261126)
    try:
        for i in range(KILLS):
            job = ("archive", "retention")[i % 2]
            lock_file = f"{wh.engine.url.database}.{job}.lock"
            if not concurrent and os.path.exists(lock_file):
                os.remove(lock_file)  # its holder is dead; it reappears when the next starts
            proc = job_process(database_url, job, env)
            # Kill at a random instant of the job's work, not of the interpreter's start-up.
            started_job = wait_until(
                lambda p=proc, f=lock_file: job_started(wh, p, f, concurrent))
            if started_job:
                time.sleep(rng.uniform(0.0, 0.6))
            proc.kill()
            proc.wait()
        for job in ("archive", "retention"):  # the clean re-run
            proc = job_process(database_url, job, env)
            assert proc.wait(timeout=120) == 0, f"{job} failed after the kills"
    finally:
        stop.set()
        if writer:
            writer.join()

    wh = Warehouse(database_url)
    try:
        assert not failures, failures[:3]
        live = sum(written)
        hot = wh.sql("SELECT series_id, ts FROM points")
        with wh.engine.connect() as conn:
            units = archived_units(conn, wh.backend)
        cold = read_points([u.path for u in units]).to_pandas()
        both = pd.concat([hot, cold[["series_id", "ts"]]], ignore_index=True)
        assert not both.duplicated().any(), "a point is stored twice"
        assert len(both) == len(data) + live
        assert len(units) == 10 and len(wh.show_chunks("points")) == DAYS - 10
        manifest = jobs.archive_manifest(wh)
        for unit in units:
            assert file_sha256(unit.path) == unit.sha256
        assert manifest["verified"].all() and manifest["dropped_at"].notna().all()
        assert not list(root.glob("*/*/.*.tmp"))
        assert len(wh.points("cpu", labels={"host": "a"})) == int((data["host"] == "a").sum())
        statuses = jobs.job_runs(wh, limit=1000)["status"].value_counts()
        assert set(statuses.index) <= {"succeeded", "abandoned"}
        assert statuses.get("abandoned", 0) >= KILLS // 4, "kills should land mid-run"
    finally:
        wh.close()
