"""PostgreSQL's compress job encodes a chunk in a second session while its own transaction
deletes the chunk's rows, then moves the staged segments in (migration 0019, jobs/compress.py,
docs/jobs.md "Compression"). No answer may change, a snapshot of any age must read every
point of a day exactly once, and the staged segments must be the chunk's rows, all of them."""

from __future__ import annotations

import psycopg
import pytest
import sqlalchemy.exc
from sqlalchemy import text
from sqlalchemy.engine import make_url
from test_readings_copy import NOW, assert_same, compress_all, data, db, questions

from warehouse.jobs import compress
from warehouse.jobs.runner import JobContext

DAYS = ["points_20261101_000000", "points_20261102_000000", "points_20261103_000000"]
#: every point, hot or in segments, as the warehouse's union reads them
ALL_POINTS = "SELECT count(*), count(DISTINCT (series_id, ts)) FROM all_points"


@pytest.fixture
def pg(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB sorts chunks; nothing is encoded or staged there")
    return wh


def session(wh) -> psycopg.Connection:
    url = make_url(wh.url).set(drivername="postgresql")
    return psycopg.connect(url.render_as_string(hide_password=False))


def staged(wh) -> int:
    return db(wh, "SELECT count(*) FROM points_compressed_staging")[0][0]


def test_the_job_encodes_beside_its_delete_and_answers_the_same(pg, monkeypatch):
    pg.write_points(data())
    before, hot = questions(pg), len(data())
    encoders = []
    beside = compress._compress_beside

    def spy(ctx, conn, chunk, encoder):
        encoders.append(encoder is not None)
        return beside(ctx, conn, chunk, encoder)

    monkeypatch.setattr(compress, "_compress_beside", spy)
    done = compress_all(pg)
    assert [(r.rows > 0, r.refused) for r in done] == [(True, None)] * 3
    assert encoders == [True, True, True]  # each chunk in a second session
    assert sum(r.rows for r in done) == hot
    assert db(pg, "SELECT count(*) FROM points") == [(0,)]
    assert db(pg, "SELECT sum(n) FROM points_compressed") == [(hot,)]
    assert staged(pg) == 0
    assert_same(before, questions(pg))


def test_every_snapshot_reads_each_point_once_across_the_staged_steps(pg):
    """The job's steps by hand, in the order the job runs them, with a REPEATABLE READ
    reader whose snapshot predates the job and one taken after the encoder committed its
    staged segments (the job's DELETE not yet): both read every point once, before and after
    the job commits, and so does a new snapshot afterwards."""
    pg.write_points(data())
    pg.refresh_rollups(now=NOW)
    hot = len(data())
    day = DAYS[1]
    with session(pg) as old, session(pg) as mid, session(pg) as encoder, session(pg) as job:
        old.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert old.execute(ALL_POINTS).fetchall() == [(hot, hot)]
        assert encoder.execute("SELECT wh_compress_encoder_lock(%s)", [day]).fetchall() == [
            (True,)]
        assert job.execute("SELECT wh_compress_begin(%s)", [day]).fetchall() == [(None,)]
        [(segments,)] = encoder.execute("SELECT wh_compress_encode(%s)", [day]).fetchall()
        encoder.commit()
        assert segments > 0 and staged(pg) == segments
        mid.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        assert mid.execute(ALL_POINTS).fetchall() == [(hot, hot)]
        [(deleted,)] = job.execute("SELECT wh_compress_empty(%s)", [day]).fetchall()
        [(rows, segs, refused)] = job.execute(
            "SELECT * FROM wh_compress_publish(%s, %s)", [day, deleted]).fetchall()
        assert (rows, segs, refused) == (deleted, segments, None) and 0 < rows < hot
        for reader in (old, mid):  # the job's work not committed yet
            assert reader.execute(ALL_POINTS).fetchall() == [(hot, hot)]
        job.commit()
        for reader in (old, mid):
            assert reader.execute(ALL_POINTS).fetchall() == [(hot, hot)]
            reader.execute("COMMIT")
    assert db(pg, ALL_POINTS) == [(hot, hot)]
    assert db(pg, f"SELECT count(*) FROM {day}") == [(0,)]
    assert staged(pg) == 0


def test_the_publish_fails_when_the_staged_points_are_not_the_deleted_ones(pg):
    """A row the encoder did not see (here written by the job's own transaction, the only
    one that can while it holds the lock) would be deleted unencoded: the chunk fails."""
    pg.write_points(data())
    pg.refresh_rollups(now=NOW)
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="staged"), pg.engine.begin() as conn:
        assert conn.execute(text("SELECT wh_compress_begin(:c)"), {"c": DAYS[0]}).scalar() is None
        conn.execute(text("SELECT wh_compress_encode(:c)"), {"c": DAYS[0]})
        conn.execute(text(f"INSERT INTO {DAYS[0]} (ts, series_id, value) "
                          "SELECT '2026-11-01T23:59:59Z', min(series_id), 1 FROM series"))
        deleted = conn.execute(text("SELECT wh_compress_empty(:c)"), {"c": DAYS[0]}).scalar()
        conn.execute(text("SELECT * FROM wh_compress_publish(:c, :d)"),
                     {"c": DAYS[0], "d": deleted})
    assert db(pg, "SELECT count(*) FROM points_compressed") == [(0,)]


def test_the_encoder_refuses_a_chunk_no_job_has_locked(pg):
    pg.write_points(data())
    with pytest.raises(sqlalchemy.exc.DBAPIError, match="not locked"), \
            pg.engine.begin() as conn:
        conn.execute(text("SELECT wh_compress_encode(:c)"), {"c": DAYS[0]})
    assert staged(pg) == 0


def test_what_a_failed_run_staged_is_cleared_by_the_next(pg):
    """The encoder commits its segments before the job's transaction ends; when that
    transaction then fails, the next run on the chunk must not publish them twice."""
    pg.write_points(data())
    pg.refresh_rollups(now=NOW)
    before, hot = questions(pg), len(data())
    with session(pg) as encoder, session(pg) as job:
        encoder.execute("SELECT wh_compress_encoder_lock(%s)", [DAYS[0]])
        job.execute("SELECT wh_compress_begin(%s)", [DAYS[0]])
        encoder.execute("SELECT wh_compress_encode(%s)", [DAYS[0]])
        encoder.commit()
        job.rollback()  # the job failed after its encoder committed
    assert staged(pg) > 0
    with pg.engine.begin() as conn:  # and one for a chunk dropped since
        conn.execute(text(
            "INSERT INTO points_compressed_staging (chunk_name, series_id, ts_min, ts_max, n, "
            "min, max, sum, sum_sq, first_value, last_value, ts_step, vals) "
            "VALUES ('points_20250101_000000', 1, '2025-01-01', '2025-01-01', 1, 0, 0, 0, 0, "
            "0, 0, 0, '{0}')"))
    assert [r.refused for r in compress_all(pg)] == [None] * 3
    assert staged(pg) == 0
    assert db(pg, "SELECT sum(n) FROM points_compressed") == [(hot,)]
    assert_same(before, questions(pg))


def test_without_a_second_session_the_job_encodes_alone(pg):
    """Where the encoder's session cannot lock the chunk, the job's transaction encodes it
    before deleting the rows."""
    pg.write_points(data())
    pg.refresh_rollups(now=NOW)
    before, hot = questions(pg), len(data())
    ctx = JobContext(pg, "compress", NOW)
    for day in DAYS:
        with ctx.transaction(exclusive=True) as conn:
            rows, segments, refused = compress._compress_beside(ctx, conn, day, None)
        assert rows > 0 and segments > 0 and refused is None
    assert db(pg, "SELECT sum(n) FROM points_compressed") == [(hot,)]
    assert staged(pg) == 0
    assert [r.refused for r in compress_all(pg)] == [None] * 3  # copies the encoded days
    assert_same(before, questions(pg))


def test_the_job_compresses_as_before_below_0019(pg):
    pg.write_points(data())
    before = questions(pg)
    pg.downgrade("0018")
    assert db(pg, "SELECT to_regclass('points_compressed_staging') IS NULL") == [(True,)]
    assert [r.refused for r in compress_all(pg)] == [None] * 3
    assert_same(before, questions(pg))
    pg.migrate()
    assert staged(pg) == 0
    assert_same(before, questions(pg))
    late = data().iloc[:1].assign(value=123.0)  # decoded back, then encoded again
    pg.write_points(late)
    assert [(r.chunk_name, r.refused) for r in compress_all(pg)] == [(DAYS[0], None)]
    assert db(pg, f"SELECT count(*) FROM {DAYS[0]}") == [(0,)]
    assert staged(pg) == 0
