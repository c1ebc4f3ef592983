"""A bulk batch inside one chunk that does not exist yet (PostgreSQL: loaded as a plain
table, indexed, then attached in the batch's transaction) stores exactly what the usual path
stores, is not duplicated when replayed or written by two writers at once, leaves nothing
behind when it fails, meets rows stored outside any chunk, and does not block readers of
other chunks while it is attached but not yet committed. DuckDB runs the same writes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest
from sqlalchemy import text

from tests.conftest import run_at_once
from warehouse import ValidationError, Warehouse, jobs
from warehouse.backends import postgresql_write
from warehouse.backends.base import raw_connection
from warehouse.jobs import compress

T0 = pd.Timestamp("2026-11-02T00:00:00Z")
DAY = pd.Timedelta(days=1)


@pytest.fixture(autouse=True)
def small_new_chunks(monkeypatch):
    """Test batches are small: let every batch take the new-chunk path."""
    monkeypatch.setattr(postgresql_write, "NEW_CHUNK_ROWS", 1)


def day_frame(day: int, hosts: int = 20, steps: int = 50, value: float = 0.0) -> pd.DataFrame:
    """TSBS's order: time, then host; two metrics; all inside one day."""
    ts = pd.date_range(T0 + day * DAY, periods=steps, freq="10s", unit="us")
    frames = [pd.DataFrame({"metric": metric, "ts": ts.repeat(hosts),
                            "host": np.tile([f"h{h}" for h in range(hosts)], steps),
                            "value": np.arange(hosts * steps, dtype="f8") + value})
              for metric in ("cpu", "mem")]
    return pd.concat(frames, ignore_index=True)


def stored(wh) -> pd.DataFrame:
    with wh.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT s.metric, s.labels->>'host', p.ts, p.value FROM points p "
            "JOIN series s USING (series_id) ORDER BY 1, 2, 3")).fetchall()
    frame = pd.DataFrame(rows, columns=["metric", "host", "ts", "value"])
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True).dt.as_unit("us")
    return frame


def expected(*frames: pd.DataFrame) -> pd.DataFrame:
    out = pd.concat(frames, ignore_index=True)[["metric", "host", "ts", "value"]]
    return out.sort_values(["metric", "host", "ts"]).reset_index(drop=True)


def chunk_facts(wh, day: int) -> dict:
    """The chunk of ``day`` as the catalogue sees it (PostgreSQL)."""
    name = f"points_{(T0 + day * DAY):%Y%m%d}_000000"
    with wh.engine.connect() as conn:
        return conn.execute(text("""
            SELECT (SELECT count(*) FROM wh_chunks WHERE chunk_name = :n) AS catalogued,
                   (SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE c.relname = :n AND i.inhparent = 'points'::regclass) AS partition,
                   (SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                     WHERE c.relname = :n || '_pkey'
                       AND i.inhparent = 'points_pkey'::regclass) AS key_attached,
                   (SELECT count(*) FROM pg_constraint
                     WHERE conrelid = to_regclass(:n) AND contype = 'c') AS checks,
                   (SELECT count(*) FROM points_default) AS default_rows
        """), {"n": name}).mappings().one()


def test_a_new_day_is_stored_whole_and_its_chunk_is_a_proper_partition(wh):
    frame = day_frame(0)
    result = wh.write_points(frame, label_columns=["host"])
    assert (result.written, result.skipped) == (len(frame), 0)
    pd.testing.assert_frame_equal(stored(wh), expected(frame))
    newest = wh.sql("SELECT count(*) AS n, max(ts) AS ts FROM series_last")
    assert int(newest["n"].iloc[0]) == 40
    assert pd.Timestamp(newest["ts"].iloc[0]) == frame["ts"].max()
    if wh.engine.dialect.name == "postgresql":
        assert dict(chunk_facts(wh, 0)) == {"catalogued": 1, "partition": 1, "key_attached": 1,
                                            "checks": 0, "default_rows": 0}
        # The key is the partition's share of points_pkey: a duplicate is refused there.
        with pytest.raises(Exception, match="duplicate key"), wh.engine.begin() as conn:
            conn.execute(text("INSERT INTO points (ts, series_id, value) "
                              "SELECT ts, series_id, 1 FROM points LIMIT 1"))


def test_a_replayed_or_overlapping_day_writes_only_new_keys(wh):
    first = day_frame(0)
    wh.write_points(first, label_columns=["host"])
    replay = wh.write_points(first.assign(value=-1.0), label_columns=["host"])
    assert (replay.written, replay.skipped) == (0, len(first))
    more = day_frame(0, steps=80, value=1000.0)  # its first 50 steps are stored already
    result = wh.write_points(more, label_columns=["host"])
    assert result.written == len(more) - len(first)
    new_rows = more[more["ts"] > first["ts"].max()]
    pd.testing.assert_frame_equal(stored(wh), expected(first, new_rows))


def test_a_failed_batch_leaves_no_chunk_rows_or_series(wh, monkeypatch):
    wh.write_points(day_frame(0), label_columns=["host"])
    before = stored(wh)

    def fail(*args, **kwargs):
        raise RuntimeError("after the load")

    # Fails after the chunk was loaded and attached, before the commit.
    monkeypatch.setattr(type(wh.backend), "upsert_series_last", fail)
    with pytest.raises(RuntimeError, match="after the load"):
        wh.write_points(day_frame(1, hosts=25), label_columns=["host"])
    pd.testing.assert_frame_equal(stored(wh), before)
    assert int(wh.sql("SELECT count(*) AS n FROM series")["n"].iloc[0]) == 40
    if wh.engine.dialect.name == "postgresql":
        facts = chunk_facts(wh, 1)
        assert (facts["catalogued"], facts["partition"]) == (0, 0)
        assert wh.sql("SELECT to_regclass('points_20261103_000000') AS t")["t"].iloc[0] is None


def test_a_refused_batch_writes_nothing_and_the_next_one_loads(wh):
    bad = day_frame(1)
    bad.loc[7, "value"] = np.nan
    with pytest.raises(ValidationError):
        wh.write_points(bad, label_columns=["host"])
    good = day_frame(1)
    assert wh.write_points(good, label_columns=["host"]).written == len(good)
    pd.testing.assert_frame_equal(stored(wh), expected(good))


def test_rows_stored_outside_any_chunk_are_kept_and_not_duplicated(wh):
    """Rows another SQL client inserted into the day before its chunk existed sit in the
    default partition: the batch then makes the chunk the usual way (moving them in) and
    skips their keys; stored values are never overwritten."""
    if wh.engine.dialect.name != "postgresql":
        pytest.skip("only PostgreSQL has a default partition")
    frame = day_frame(2)
    first_instant = frame[frame["ts"] == frame["ts"].iloc[0]]
    wh.write_points(first_instant, label_columns=["host"])  # the series, and day 2's chunk
    with wh.engine.begin() as conn:
        conn.execute(text("SELECT wh_drop_chunks('points', :t)"), {"t": T0 + 3 * DAY})
        conn.execute(text("INSERT INTO points (ts, series_id, value) "
                          "SELECT :ts, series_id, -5 FROM series"), {"ts": frame["ts"].iloc[0]})
    assert chunk_facts(wh, 2)["default_rows"] == 40
    result = wh.write_points(frame, label_columns=["host"])
    assert (result.written, result.skipped) == (len(frame) - 40, 40)
    facts = chunk_facts(wh, 2)
    assert (facts["catalogued"], facts["default_rows"]) == (1, 0)
    got = stored(wh)
    assert len(got) == len(frame)
    assert (got.loc[got["ts"] == frame["ts"].iloc[0], "value"] == -5).all()


def test_a_day_overlapping_a_compressed_chunk_is_deduplicated_against_its_segments(wh):
    first = day_frame(0)
    wh.write_points(first, label_columns=["host"])
    later = T0 + 10 * DAY
    assert jobs.run_job(wh, "refresh_rollups", now=later, retries=0).status == "succeeded"
    compress.compress_now(wh, older_than="1d", now=later)
    if wh.engine.dialect.name == "postgresql":
        assert compress.compression_state(wh)["compressed_rows"] == len(first)
    again = wh.write_points(day_frame(0, steps=60, value=500.0), label_columns=["host"])
    assert again.written == 2 * 20 * 10
    got = stored(wh)
    assert len(got) == 2 * 20 * 60
    pd.testing.assert_frame_equal(got[got["ts"] <= first["ts"].max()].reset_index(drop=True),
                                  expected(first))


def test_two_writers_of_the_same_new_day_store_it_once(wh):
    """Two Warehouse objects (as two processes) write the same new day at once: one loads
    the chunk, the other waits for its chunk lock, then finds the chunk and skips every key."""
    other = Warehouse(wh.url)
    frame = day_frame(3, hosts=200, steps=100)
    results = []
    errors = run_at_once(
        lambda into: results.append(into.write_points(frame, label_columns=["host"])),
        (wh, other))
    other.close()
    assert errors == []
    assert sorted(r.written for r in results) == [0, len(frame)]
    assert len(stored(wh)) == len(frame)


def test_two_writers_of_different_new_days_both_commit(wh):
    other = Warehouse(wh.url)
    frames = {wh: day_frame(4), other: day_frame(5)}
    errors = run_at_once(
        lambda into: into.write_points(frames[into], label_columns=["host"]), frames)
    other.close()
    assert errors == []
    pd.testing.assert_frame_equal(stored(wh), expected(*frames.values()))


def test_readers_of_other_chunks_are_not_blocked_while_a_new_chunk_is_attached(wh):
    """Between the ATTACH and the commit the loading transaction holds SHARE UPDATE
    EXCLUSIVE on points (CREATE TABLE ... PARTITION OF would hold ACCESS EXCLUSIVE): a
    reader of a stored day runs; it is refused only if it would have to wait (NOWAIT-like:
    lock_timeout), so the test cannot hang."""
    if wh.engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL locks")
    wh.write_points(day_frame(0), label_columns=["host"])
    frame = day_frame(1)
    ts_us = frame["ts"].to_numpy(dtype="datetime64[us]").view("i8")
    backend = wh.backend
    with wh.engine.begin() as conn:
        chunk = backend.claim_new_chunk(conn, ts_us)
        assert chunk is not None
        ids = conn.execute(text("SELECT series_id FROM series ORDER BY series_id")).scalars()
        ids = np.array(list(ids), dtype="i4")
        batch = pd.DataFrame({"ts": frame["ts"].array,
                              "series_id": np.resize(ids, len(frame)),
                              "value": frame["value"].to_numpy(),
                              "run_id": pd.array([None] * len(frame), dtype=object)})
        batch = batch.drop_duplicates(["series_id", "ts"])
        backend.load_new_chunk(conn, chunk, batch)
        pid = raw_connection(conn).info.backend_pid
        locks = dict(conn.execute(text(
            "SELECT c.relname, string_agg(l.mode, ',') FROM pg_locks l "
            "JOIN pg_class c ON c.oid = l.relation WHERE l.pid = :pid "
            "AND c.relname IN ('points', 'points_default') GROUP BY 1"), {"pid": pid}).all())
        assert "AccessExclusiveLock" not in locks["points"]
        assert "AccessExclusiveLock" in locks["points_default"]
        dsn = raw_connection(conn).info.dsn
        with psycopg.connect(dsn, autocommit=True) as reader:
            reader.execute("SET lock_timeout = '2s'")
            n = reader.execute("SELECT count(*) FROM points WHERE ts >= %s AND ts < %s",
                               (T0, T0 + DAY)).fetchone()[0]
            assert n == len(day_frame(0))
