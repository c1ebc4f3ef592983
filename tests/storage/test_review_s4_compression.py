"""Review (session 4): raw reads over compressed segments (migrations 0013/0014) answer what
hot reads answer, whatever the read's bounds; migrations 0013/0014 go down and up again on
data compressed before them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse import jobs
from warehouse.jobs import compress

NOW = pd.Timestamp("2026-11-12T00:00:00Z")


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(tmp_path / "archive"))


def fine_points(n: int = 3000) -> pd.DataFrame:
    """A regular series of 1 ms steps (compressed as regular segments on PostgreSQL)."""
    ts = pd.date_range("2026-11-01", periods=n, freq="1ms", tz="UTC")
    return pd.DataFrame({"metric": "cpu", "ts": ts, "host": "a", "value": np.arange(float(n))})


def compressed_fine(wh) -> pd.DataFrame:
    frame = fine_points()
    wh.write_points(frame, label_columns=["host"])
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    compress.compress_now(wh, "3d", now=NOW)
    return frame


@pytest.mark.parametrize("end", ["2026-11-02T00:00:00Z", "2026-12-01T00:00:00Z",
                                 "2100-01-01T00:00:00Z"])
def test_an_end_far_past_a_fine_segment_reads_it_whole(wh, end):
    """0014's slice counted the points up to the read's end as an integer: an end a month
    after a segment of 1 ms steps raised 'integer out of range' on PostgreSQL."""
    frame = compressed_fine(wh)
    got = wh.points("cpu", "2026-11-01T00:00:00Z", end, with_labels=False)
    assert got["value"].tolist() == frame["value"].tolist()
    wide = wh.frame(["cpu"], "2026-11-01T00:00:00Z", end, where="cpu >= 2990")
    assert wide["cpu"].tolist() == list(np.arange(2990.0, 3000.0))
    bucketed = wh.points("cpu", "2026-11-01T00:00:00.0005Z", end, every="1s", agg="count",
                         with_labels=False, rollups=False)
    assert bucketed["value"].tolist() == [999.0, 1000.0, 1000.0]


def test_0013_and_0014_go_down_and_up_over_compressed_segments(wh):
    """Regular (1 ms, one-point) and irregular segments read the same through all_points at
    0012 (0013 down restores wh_segment_points), and through raw reads back at head."""
    frame = fine_points()
    odd = pd.DataFrame({"metric": "cpu", "host": "b", "value": [1.5, 2.5, 3.5, 4.5],
                        "ts": pd.to_datetime(["2026-11-01T00:00:00.000001Z",
                                              "2026-11-01T00:00:00.000003Z",
                                              "2026-11-01T00:00:07Z",
                                              "2026-11-01T05:00:00Z"], format="ISO8601")})
    one = pd.DataFrame({"metric": "cpu", "host": "c", "value": [9.0],
                        "ts": [pd.Timestamp("2026-11-01T01:00:00Z")]})
    wh.write_points(pd.concat([frame, odd, one], ignore_index=True), label_columns=["host"])
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    every_point = "SELECT series_id, ts, value FROM all_points ORDER BY series_id, ts"
    hot = wh.sql(every_point)
    points = wh.points("cpu", "2026-11-01T00:00:00.0000005Z", "2026-11-01T03:00:00Z")
    compress.compress_now(wh, "3d", now=NOW)
    pd.testing.assert_frame_equal(wh.sql(every_point), hot)
    for revision in ("0013", "0012"):
        wh.downgrade(revision)
        pd.testing.assert_frame_equal(wh.sql(every_point), hot)
    wh.migrate()
    pd.testing.assert_frame_equal(wh.sql(every_point), hot)
    pd.testing.assert_frame_equal(
        wh.points("cpu", "2026-11-01T00:00:00.0000005Z", "2026-11-01T03:00:00Z"), points)


def test_a_snapshot_older_than_a_compression_still_sees_the_chunk(wh, database_url):
    """Every warehouse read on PostgreSQL is REPEATABLE READ (one message: state, then query;
    the snapshot is the state statement's). A read whose snapshot predates the compress
    job's commit, and which reaches the chunk after it (or waited for the job's ACCESS
    EXCLUSIVE lock on it), found the day empty."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's compressed segments")
    import psycopg
    from sqlalchemy.engine import make_url

    frame = fine_points()
    wh.write_points(frame, label_columns=["host"])
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    u = make_url(database_url)
    with psycopg.connect(f"host={u.host} port={u.port} user={u.username} "
                         f"dbname={u.database}") as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM series").fetchone()  # the snapshot
        assert compress.compress_now(wh, "3d", now=NOW)[0].segments > 0
        hot = reader.execute("SELECT count(*) FROM points").fetchone()[0]
        segments = reader.execute("SELECT coalesce(sum(n), 0) FROM points_compressed"
                                  ).fetchone()[0]
        reader.execute("ROLLBACK")
    assert hot + segments == len(frame)


def test_a_read_during_a_compression_answers_every_point(wh, database_url):
    """wh.points while the chunk it reads is being compressed (the job holds ACCESS
    EXCLUSIVE on it from its start): the read's snapshot is taken by its first statement,
    before it waits for the chunk; it then found the chunk truncated and the segments not
    yet visible, and answered 0 of 3,000 points."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's compressed segments")
    import threading
    import time

    import psycopg
    from sqlalchemy.engine import make_url

    frame = fine_points()
    wh.write_points(frame, label_columns=["host"])
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    span = ("2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z")
    assert len(wh.points("cpu", *span)) == len(frame)
    u = make_url(database_url)
    answers = []
    with psycopg.connect(f"host={u.host} port={u.port} user={u.username} "
                         f"dbname={u.database}") as job:
        job.execute("LOCK TABLE points_20261101_000000 IN ACCESS EXCLUSIVE MODE")
        reader = threading.Thread(target=lambda: answers.append(len(wh.points("cpu", *span))))
        reader.start()
        time.sleep(1.0)  # the read waits for the chunk
        job.execute("SELECT * FROM wh_compress_chunk('points_20261101_000000')")
        job.commit()
        reader.join(30)
    assert answers == [len(frame)]


def test_the_slice_function_takes_bounds_far_from_a_fine_segment(wh, database_url):
    """wh_regular_segment_points itself (any caller, not only points_relation, which clips its
    end): 0014 cast the step count up to the bound to integer before capping it, and a bound
    a century after a segment of 1 ms steps raised 'integer out of range'."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's compressed segments")
    from sqlalchemy import text

    frame = compressed_fine(wh)
    decode = ("SELECT count(*) FROM points_compressed c, wh_regular_segment_points("
              "c.ts_min, c.ts_step, c.vals, c.vals_real, c.vals_int, c.vals_decimals, "
              "c.run_ids, CAST(:lo AS timestamptz), CAST(:hi AS timestamptz)) s "
              "WHERE c.ts_step IS NOT NULL")
    with wh.engine.connect() as conn:
        whole = conn.execute(text(decode), {"lo": "1900-01-01Z", "hi": "2100-01-01Z"}).scalar()
        after = conn.execute(text(decode), {"lo": "2100-01-01Z", "hi": None}).scalar()
    assert (whole, after) == (len(frame), 0)
