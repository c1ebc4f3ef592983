"""pg_cron: `warehouse jobs install-pg-cron` schedules the SQL-only jobs inside PostgreSQL.

Needs the pg_cron library (Debian: postgresql-15-cron) preloaded, so it starts its own
server; skipped, saying why, where the library is missing.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import create_engine, text

from warehouse import Warehouse, jobs
from warehouse.errors import WarehouseError
from warehouse.jobs.runner import job_lock
from warehouse.pgserver import LocalPostgres, find_pg_bin


def _pg_cron_library() -> bool:
    pg_bin = find_pg_bin()
    return pg_bin is not None and (pg_bin.parent / "lib" / "pg_cron.so").exists()


pytestmark = [
    pytest.mark.storage,
    pytest.mark.skipif(not _pg_cron_library(),
                       reason="pg_cron library missing: apt-get install postgresql-15-cron"),
]


@pytest.fixture(scope="module")
def cron_server():
    server = LocalPostgres(preload=("pg_cron",)).start()
    yield server
    server.stop()


@pytest.fixture
def cron_wh(cron_server):
    wh = Warehouse(cron_server.create_database(f"wh_cron_{os.getpid()}_{time.time_ns()}"))
    rng = np.random.default_rng(0)
    wh.write_points(pd.DataFrame({"metric": "cpu", "value": rng.normal(size=600),
                                  "ts": pd.date_range("2026-11-20", periods=600, freq="1min",
                                                      tz="UTC")}))
    yield wh
    wh.close()


def test_install_schedules_the_sql_only_jobs(cron_wh, cron_server):
    schedules = jobs.install_pg_cron(cron_wh)
    database = cron_wh.engine.url.database
    assert sorted(schedules["jobname"]) == [f"warehouse:{database}:refresh_rollups",
                                            f"warehouse:{database}:retention"]
    assert set(schedules["database"]) == {database}
    commands = dict(zip(schedules["jobname"], schedules["command"]))
    assert commands[f"warehouse:{database}:retention"] == "SELECT wh_job_cron('retention')"
    assert len(jobs.install_pg_cron(cron_wh)) == 2  # re-installing replaces, not adds
    assert jobs.install_pg_cron(cron_wh, remove=True).empty


def test_the_cron_command_runs_the_job_and_records_it(cron_wh):
    with cron_wh.engine.begin() as conn:
        conn.execute(text("SELECT wh_job_cron('refresh_rollups')"))
    run = jobs.job_runs(cron_wh).iloc[0]
    assert (run["job"], run["status"], run["trigger"]) == ("refresh_rollups", "succeeded",
                                                           "pg_cron")
    assert run["rows_affected"] > 0
    assert jobs.rollup_state(cron_wh)["watermark"].notna().all()
    # One runner per job, whoever starts it: the warehouse's lock makes pg_cron skip.
    with job_lock(cron_wh, "retention"):
        with cron_wh.engine.begin() as conn:
            conn.execute(text("SELECT wh_job_cron('retention')"))
    assert jobs.job_runs(cron_wh, "retention").iloc[0]["status"] == "skipped"


def test_a_server_without_pg_cron_says_so(wh):
    if wh.backend.capabilities.single_writer:
        with pytest.raises(WarehouseError, match="no in-database scheduler"):
            jobs.install_pg_cron(wh)
    else:
        with pytest.raises(WarehouseError, match="pg_cron is not loaded"):
            jobs.install_pg_cron(wh)


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("WAREHOUSE_TEST_PG_CRON_TICK") != "1",
                    reason="waits up to 70 s for pg_cron's next minute; "
                           "set WAREHOUSE_TEST_PG_CRON_TICK=1")
def test_pg_cron_runs_the_job_on_its_own(cron_wh, cron_server):
    jobs.install_pg_cron(cron_wh)  # refresh_rollups: every minute
    deadline = time.monotonic() + 70
    while time.monotonic() < deadline:
        runs = jobs.job_runs(cron_wh, "refresh_rollups")
        if len(runs) and (runs["trigger"] == "pg_cron").any():
            break
        time.sleep(1)
    engine = create_engine(cron_server.url("postgres"))
    with engine.connect() as conn:
        details = conn.execute(text("SELECT status, return_message FROM cron.job_run_details "
                                    "ORDER BY start_time DESC LIMIT 3")).fetchall()
    engine.dispose()
    jobs.install_pg_cron(cron_wh, remove=True)
    assert (runs["trigger"] == "pg_cron").any(), details
    assert runs.iloc[0]["status"] == "succeeded"
