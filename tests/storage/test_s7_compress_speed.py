"""PostgreSQL's compress job, faster (migration 0018, jobs/compress.py): the chunk it emptied
is truncated instead of vacuumed when no snapshot can read its deleted rows any more
(wh_reclaim_chunk), and the pivoted copy of an emptied chunk reads its segments alone
(wh_copy_readings' p_hot_rows). Neither may change an answer, and an older snapshot must
still read the rows (the reason the chunk is emptied by DELETE: migration 0015)."""

from __future__ import annotations

import pandas as pd
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from test_readings_copy import NOW, assert_same, compress_all, data, db, questions

from warehouse.jobs import compress

DAYS = ["points_20261101_000000", "points_20261102_000000", "points_20261103_000000"]


@pytest.fixture
def pg(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB sorts chunks; nothing is emptied or truncated there")
    return wh


def heap_files(wh) -> dict[str, int]:
    """relfilenode of each day's chunk: TRUNCATE gives a chunk a new one, VACUUM does not."""
    return dict(db(wh, "SELECT relname, relfilenode FROM pg_class WHERE relname = ANY(:n)",
                   {"n": DAYS}))


def other_session(wh) -> psycopg.Connection:
    url = make_url(wh.url).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False))


def reclaim(wh, chunk: str) -> bool:
    with wh.engine.begin() as conn:
        return conn.execute(text("SELECT wh_reclaim_chunk(:c)"), {"c": chunk}).scalar()


def test_the_job_truncates_the_chunks_it_emptied(pg):
    pg.write_points(data())
    before_files, before = heap_files(pg), questions(pg)
    assert [r.refused for r in compress_all(pg)] == [None, None, None]
    after_files = heap_files(pg)
    assert all(after_files[d] != before_files[d] for d in DAYS)
    assert db(pg, "SELECT relname, pg_relation_size(oid), reltuples FROM pg_class "
                  "WHERE relname = ANY(:n) ORDER BY 1", {"n": DAYS}) == [
        (d, 0, 0.0) for d in DAYS]  # empty, and analysed as empty
    assert_same(before, questions(pg))


def test_a_snapshot_older_than_the_job_keeps_the_rows_and_the_chunk_is_vacuumed(pg):
    pg.write_points(data())
    pg.refresh_rollups(now=NOW)
    before_files, hot = heap_files(pg), len(data())
    with other_session(pg) as old:
        old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        old.execute("SELECT count(*) FROM series")  # its snapshot, taken before the job
        assert [r.refused for r in compress.compress_now(pg, "1d", now=NOW)] == [None] * 3
        assert heap_files(pg) == before_files  # not truncated: vacuumed
        [(seen,)] = old.execute("SELECT count(*) FROM points").fetchall()
        assert seen == hot
        old.execute("COMMIT")
    assert db(pg, "SELECT count(*) FROM points") == [(0,)]
    assert db(pg, "SELECT sum(n) FROM points_compressed") == [(hot,)]


def test_a_snapshot_newer_than_the_deletion_does_not_keep_the_chunk(pg):
    """Only snapshots that could still see the deleted rows count: one taken after the
    deletion committed sees the chunk empty already, and then truncated."""
    pg.write_points(data())
    pg.refresh_rollups(now=NOW)
    with pg.engine.begin() as conn:
        [(rows, _, refused)] = conn.execute(
            text("SELECT * FROM wh_compress_chunk(:c)"), {"c": DAYS[0]}).fetchall()
    assert rows > 0 and refused is None
    files = heap_files(pg)
    with other_session(pg) as new:
        new.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        new.execute("SELECT count(*) FROM series")  # its snapshot, after the deletion
        assert reclaim(pg, DAYS[0]) is True
        assert heap_files(pg)[DAYS[0]] != files[DAYS[0]]
        assert new.execute(f"SELECT count(*) FROM {DAYS[0]}").fetchall() == [(0,)]
        new.execute("COMMIT")


def test_a_chunk_holding_a_row_is_not_truncated(pg):
    pg.write_points(data())
    compress_all(pg)
    late = data().iloc[:1].assign(value=123.0)  # written into the compressed first day
    pg.write_points(late)
    rows = db(pg, f"SELECT count(*) FROM {DAYS[0]}")[0][0]
    assert rows > 0
    files = heap_files(pg)
    assert reclaim(pg, DAYS[0]) is False
    assert heap_files(pg) == files
    assert db(pg, f"SELECT count(*) FROM {DAYS[0]}") == [(rows,)]


def test_reclaiming_refuses_a_repeatable_read_transaction(pg):
    """Its snapshot would be taken before the lock: a row committed in between is unseen."""
    pg.write_points(data())
    compress_all(pg)
    files = heap_files(pg)
    with pg.engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
        assert conn.execute(text("SELECT wh_reclaim_chunk(:c)"), {"c": DAYS[1]}).scalar() \
            is False
        conn.commit()
    assert heap_files(pg) == files


def test_the_copy_of_an_emptied_chunk_equals_the_copy_read_with_points(pg):
    pg.write_points(data())
    compress_all(pg)  # copies with p_hot_rows => false
    sql = "SELECT * FROM readings ORDER BY entity, ts_min"
    fast = db(pg, sql)
    assert fast
    for day in ("2026-11-01", "2026-11-02", "2026-11-03"):  # one transaction each, as the job
        start = pd.Timestamp(day, tz="UTC")
        with pg.engine.begin() as conn:
            conn.execute(text("SELECT wh_copy_readings(:a, :b, :now, 256)"), {
                "a": start, "b": start + pd.Timedelta(days=1), "now": NOW})
    assert db(pg, sql) == fast


def test_the_job_compresses_as_before_below_0018(pg):
    pg.write_points(data())
    before = questions(pg)
    pg.downgrade("0017")
    files = heap_files(pg)
    assert [r.refused for r in compress_all(pg)] == [None, None, None]
    assert heap_files(pg) == files  # vacuumed, as 0017's job did
    assert_same(before, questions(pg))
    pg.migrate()
    assert_same(before, questions(pg))
