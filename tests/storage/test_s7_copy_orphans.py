"""DuckDB's pivoted copy leaves no row behind its listing (review s7, R2): retention of a
range copied under another chunk interval deletes the whole listed copy, and a wide write
that lists a range first clears it, so dropped data never comes back through frames."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs

T = pd.Timestamp("2026-11-01T00:00:00Z")
H = pd.Timedelta(hours=1)


def _count(wh, sql: str) -> int:
    with wh.engine.connect() as conn:
        return int(conn.execute(text(sql)).scalar_one())


def test_dropped_rows_of_a_copy_never_come_back(wh):
    if wh.backend.capabilities.native_partitions:
        pytest.skip("PostgreSQL copies segments of compressed chunks (test_s6_pg_copy.py)")
    wh.write_frame(pd.DataFrame({"ts": pd.date_range(T, periods=24, freq="1h"), "host": "a",
                                 "cpu": np.arange(24.0), "mem": np.arange(24.0)}),
                   label_columns=["host"])
    assert _count(wh, "SELECT count(*) FROM reading_chunks WHERE copied") == 1  # one day
    wh.set_chunk_interval("points", "6h")
    wh.set_retention("points", "10d")
    now = T + 12 * H + pd.Timedelta(days=10)
    for job in ("refresh_rollups", "retention"):  # drops the 6 h chunks before 12:00
        assert jobs.run_job(wh, job, now=now, retries=0).status == "succeeded"
    assert _count(wh, "SELECT count(*) FROM reading_chunks") == 0
    assert _count(wh, "SELECT count(*) FROM readings") == 0  # not 12 rows without a listing
    wh.drop_chunks("points", T + pd.Timedelta(days=1), force=True)
    wh.write_frame(pd.DataFrame({"ts": [T + 14.5 * H], "host": "a", "cpu": [100.0],
                                 "mem": [200.0]}), label_columns=["host"])
    frame = wh.frame(["cpu", "mem"], T + 12 * H, T + 18 * H)
    assert frame["ts"].tolist() == [T + 14.5 * H]
    assert frame[["cpu", "mem"]].to_numpy().tolist() == [[100.0, 200.0]]
