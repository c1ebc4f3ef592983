"""Review (session 5) of DuckDB's pivoted copy of compressed chunks (migration 0016,
jobs/readings.py, query/frame_readings.py): a frame read from the copy must answer as the
same frame read from points (``query_frame(..., copies=False)``), whatever happened to the
copy. DuckDB only: PostgreSQL keeps no copy (tests/storage/test_readings_copy.py checks it
answers as before), so these tests use a DuckDB file of their own."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import Warehouse
from warehouse.jobs import compress
from warehouse.query.catalog import state_checked
from warehouse.query.frame import query_frame

NOW = pd.Timestamp("2026-11-20T00:00:00Z")
DAY1, DAY2 = "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"


@pytest.fixture
def duck(tmp_path):
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    yield warehouse
    warehouse.close()


def frame(wh, metrics, start, end, *, copies: bool, conn=None, **options) -> pd.DataFrame:
    """wh.frame, or (copies=False) the same frame read from points only."""
    if conn is not None:
        return state_checked(query_frame)(conn, wh.backend, metrics, start, end,
                                          copies=copies, **options)
    with wh.engine.connect() as own:
        return frame(wh, metrics, start, end, copies=copies, conn=own, **options)


def hourly(metrics, labels: dict, days: int = 2, offset: float = 0.0) -> pd.DataFrame:
    ts = pd.date_range(DAY1, periods=days * 24, freq="1h")
    return pd.concat([pd.DataFrame({"metric": m, "labels": [labels] * len(ts), "ts": ts,
                                    "value": np.arange(len(ts), dtype="f8") + offset})
                      for m in metrics], ignore_index=True)


def test_label_sets_sharing_a_row_key_give_one_row_per_instant(duck, copies_used):
    """Without ``by`` a row is (instant, label columns); a label named like one of the
    frame's metrics (or "ts") is not a label column, so {host=a, mem=x} and {host=a, mem=y}
    share a row and each metric's value is the max of theirs. The copy answered one row per
    label set (48 rows, two per instant) where points answer 24; such frames now read
    points."""
    duck.write_points(pd.concat([hourly(["cpu", "mem"], {"host": "a", "mem": "x"}),
                                 hourly(["cpu", "mem"], {"host": "a", "mem": "y"}, offset=10)]))
    expected = frame(duck, ["cpu", "mem"], DAY1, DAY2, copies=False)
    assert len(expected) == 24 and expected["cpu"].iloc[0] == 10.0
    compress.compress_now(duck, "1d", now=NOW)
    for where in (None, "cpu >= 0"):
        answer = frame(duck, ["cpu", "mem"], DAY1, DAY2, copies=True, where=where)
        pd.testing.assert_frame_equal(answer, expected)
    # A bucketed frame merges label sets per group on both paths: the copy still serves it.
    copies_used.clear()
    bucketed = frame(duck, ["cpu", "mem"], DAY1, DAY2, copies=True, every="6h", agg="max")
    pd.testing.assert_frame_equal(bucketed, frame(duck, ["cpu", "mem"], DAY1, DAY2,
                                                  copies=False, every="6h", agg="max"))
    assert copies_used[0] is True


def copies(wh) -> list[tuple]:
    with wh.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(
            "SELECT chunk_start, chunk_end FROM reading_chunks ORDER BY 1")).fetchall()]


def test_a_late_write_after_the_chunk_interval_changed_leaves_no_hollow_copy(duck):
    """On DuckDB a chunk is a range of the current interval: after 1d -> 36h the job copies
    the new ranges, which overlap the old copies (replaced only where chunk_start is the
    same). A late write then deleted the rows of every copy overlapping it, as one span
    [first start, last end), but only the reading_chunks rows starting inside that span: the
    copy starting before it stayed listed with part of its rows gone, and a frame there read
    nothing (6 rows expected). Now a copy unlists the copies it overlaps, and a write every
    copy overlapping the rows it deletes."""
    duck.write_points(hourly(["cpu", "mem"], {"host": "a"}, days=6))
    compress.compress_now(duck, "1d", now=NOW)
    duck.set_chunk_interval("points", "36h")
    compress.compress_now(duck, "1d", now=NOW)
    listed = copies(duck)
    assert all(end <= nxt for (_, end), (nxt, _) in zip(listed, listed[1:])), \
        f"copies overlap: {listed}"
    duck.write_points(pd.DataFrame({"metric": ["cpu"], "labels": [{"host": "a"}],
                                    "ts": [pd.Timestamp("2026-11-02T06:00:30Z")],
                                    "value": [1000.0]}))
    start, end = "2026-11-01T12:00:00Z", "2026-11-01T18:00:00Z"
    expected = frame(duck, ["cpu", "mem"], start, end, copies=False)
    assert len(expected) == 6
    pd.testing.assert_frame_equal(frame(duck, ["cpu", "mem"], start, end, copies=True),
                                  expected)


def test_a_frame_whose_snapshot_predates_a_new_metric_column(duck):
    """The list of copies is remembered per commit generation, read when the frame reaches
    copy_read, not when its snapshot began. A frame whose transaction began (its state
    statements ran) before the compress job committed a new metric's column, reaching
    copy_read after another frame remembered the new list, names that column in a snapshot
    without it: DuckDB raised "Referenced column m3 not found" instead of the frame falling
    back to points (CopyRead.held only catches missing copies, after the statement ran).
    Now a frame already inside a transaction reads the list in its own snapshot."""
    duck.write_points(hourly(["cpu", "mem"], {"host": "a"}, days=1))
    compress.compress_now(duck, "1d", now=NOW)  # day 1 copied: cpu m1, mem m2
    duck.write_points(pd.concat([hourly(["cpu", "disk"], {"host": "a"}, days=2)
                                 .query("ts >= @DAY2")]))
    expected = frame(duck, ["cpu", "disk"], DAY1, DAY2, copies=False)
    with duck.engine.connect() as early:
        early.execute(text("SELECT count(*) FROM series")).scalar_one()  # snapshot begins
        compress.compress_now(duck, "1d", now=NOW)  # day 2: ALTER TABLE readings ADD m3
        frame(duck, ["cpu", "disk"], DAY1, DAY2, copies=True)  # remembers the new list
        answer = frame(duck, ["cpu", "disk"], DAY1, DAY2, copies=True, conn=early)
    pd.testing.assert_frame_equal(answer, expected)


#: Metric names are limited to [A-Za-z0-9_.:/@+-] at ingest; these read like the copy's own
#: identifiers. Label values may be anything.
METRICS = ["m2", "entity", "ts:x", "a/b@c+d-e", "m1.m2"]
HOSTILE = ["cpu'; DROP TABLE readings; --", "m1 FROM readings; --", "\"q\"", "50%", "a\\'b"]


def test_hostile_metric_names_and_label_values_stay_data(duck, copies_used):
    """Checked and sound: metric names become reading_columns rows (columns are m<int>),
    label values reach the copy only through labels_key joins."""
    duck.write_points(pd.concat([hourly(METRICS, {"host": value}) for value in HOSTILE]))
    expected = frame(duck, METRICS, DAY1, DAY2, copies=False, where="m2 > 3")
    compress.compress_now(duck, "1d", now=NOW)
    copies_used.clear()
    answer = frame(duck, METRICS, DAY1, DAY2, copies=True, where="m2 > 3")
    assert copies_used == [True] and len(answer) == len(expected) > 0
    pd.testing.assert_frame_equal(answer, expected)


def test_the_compress_job_adding_a_metric_column_while_a_frame_reads(duck, caplog):
    """DuckDB refuses CHECKPOINT ("there are other write transactions active") when a
    transaction older than a committed ALTER TABLE (or UPDATE) is still open. The job runs
    ALTER TABLE readings ADD COLUMN for each new metric, then CHECKPOINTs (reclaim_space):
    with a frame in flight it failed after committing its chunks (103 of 187 runs). (The
    same happened before for a re-sorted chunk, whose sorted_chunks row is replaced: an
    UPDATE.) The reclaim is now best effort: deferred, and said so (jobs/reclaim.py)."""
    duck.write_points(hourly(["cpu", "mem"], {"host": "a"}, days=1))
    with duck.engine.connect() as reading:
        reading.execute(text("SELECT count(*) FROM series")).scalar_one()  # a frame's snapshot
        assert len(compress.compress_now(duck, "1d", now=NOW)) == 1
    assert "space reclaim deferred" in caplog.text
    assert copies(duck) != []  # the chunk's copy is committed


def test_the_compress_job_runs_on_a_schema_without_the_copy(duck):
    """At 0015 (downgraded) forget_readings and the frame check that the copy's tables
    exist; the job called copy_chunk regardless ("Table with name reading_entities does not
    exist"), so compression failed until the database was migrated again."""
    duck.write_points(hourly(["cpu", "mem"], {"host": "a"}, days=1))
    duck.downgrade("0015")
    assert [r.chunk_name for r in compress.compress_now(duck, "1d", now=NOW)] == [
        "points_20261101_000000"]
    assert len(duck.frame(["cpu", "mem"], DAY1, DAY2)) == 24
