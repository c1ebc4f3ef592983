"""The pivoted copy of compressed chunks (DuckDB: migration 0016, PostgreSQL: 0017;
jobs/readings.py and query/frame_readings.py): every frame answers the same from the copy
as from points on both engines, and a copy never outlives a change to its points.
PostgreSQL reads its copy for frames without buckets only (bucketed ones read segments)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs
from warehouse.jobs import compress
from warehouse.jobs import readings as readings_job
from warehouse.query import frame_readings

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
START, END = "2026-11-01T03:00:00Z", "2026-11-03T21:00:00Z"


def data(seed: int = 0) -> pd.DataFrame:
    """Three days of cpu and mem for hosts a-c (mem missing at some instants), cpu only for
    host d, and disk of another label set (host a, dev sda)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-11-01", periods=3 * 144, freq="10min", tz="UTC")
    parts = []
    for i, host in enumerate("abcd"):
        for metric in ("cpu", "mem") if host != "d" else ("cpu",):
            keep = rng.random(len(ts)) > (0.2 if metric == "mem" else 0.0)
            parts.append(pd.DataFrame({
                "metric": metric, "labels": [{"host": host}] * int(keep.sum()),
                "ts": ts[keep] + pd.Timedelta(seconds=i),
                "value": np.round(50 + np.cumsum(rng.normal(0, 2, int(keep.sum()))), 2)}))
    parts.append(pd.DataFrame({"metric": "disk", "labels": [{"host": "a", "dev": "sda"}] * 100,
                               "ts": ts[:100], "value": rng.random(100)}))
    return pd.concat(parts, ignore_index=True)


def questions(wh) -> dict:
    f = wh.frame
    return {
        "plain": f(["cpu", "mem"], START, END),
        "three": f(["cpu", "mem", "disk"], START, END),
        "hosts": f(["cpu", "mem"], START, END, labels={"host": ["a", "d"]}),
        "where": f(["cpu", "mem"], START, END, where="cpu > 52"),
        "where_mem": f(["cpu", "mem"], START, END, where="mem <= 48"),
        "where_none": f(["cpu", "mem"], START, END, where="cpu > 1e9"),
        **{f"{agg}_{every}_{by}": f(["cpu", "mem", "disk"], START, END, every=every, agg=agg,
                                    by=None if by == "none" else [] if by == "all" else [by])
           for agg in ("mean", "min", "max", "sum", "count")
           for every, by in (("1h", "host"), ("7h", "all"), ("2h", "none"))},
        "bucket_where": f(["cpu", "mem"], START, END, every="2h", agg="mean", by=["host"],
                          where="cpu > 50"),
        "p95": f(["cpu", "mem"], START, END, every="6h", agg="p95", by=["host"]),
        "inside": f(["cpu", "mem"], "2026-11-02T01:00:00Z", "2026-11-02T02:00:00Z"),
        "before_data": f(["cpu", "mem"], "2026-10-30T00:00:00Z", END, where="cpu > 52"),
    }


def is_duckdb(wh) -> bool:
    return not wh.backend.capabilities.native_partitions


def compress_all(wh, now=NOW) -> list:
    """The compress job's work on every closed day (PostgreSQL encodes, and so copies, only
    what the rollups cover: refreshed first, as the schedule would)."""
    if not is_duckdb(wh):
        wh.refresh_rollups(now=now)
    return compress.compress_now(wh, "1d", now=now)


def assert_same(before: dict, after: dict) -> None:
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name], obj=name, check_exact=False,
                                      rtol=1e-12, atol=1e-12)


def test_every_frame_answers_the_same_from_the_copy(wh, copies_used):
    wh.write_points(data())
    before = questions(wh)
    assert not any(copies_used)  # nothing compressed yet
    done = compress_all(wh)
    assert len(done) == 3 and not any(r.refused for r in done)
    # PostgreSQL reads what the copy holds after a commit: a frame doing so is answered
    # twice (frame_readings._copies_postgresql), which this count should not see
    wh.frame(["cpu", "mem"], START, END)
    copies_used.clear()
    after = questions(wh)
    assert_same(before, after)
    if is_duckdb(wh):
        # Every multi-metric frame inside the copied days read it, except the percentile
        # (not mergeable) and the range that starts before the data (not covered).
        assert sum(copies_used) == len(before) - 2
        assert not before["where_none"].shape[0]
        assert set(before["plain"].columns) == {"ts", "host", "cpu", "mem"}
        copy = wh.info()["tables"].set_index("table").loc["readings"]  # shown by info
        instants = data().assign(key=lambda d: d["labels"].map(str)).drop_duplicates(
            ["ts", "key"])
        assert copy["rows"] == len(instants) and copy["bytes"] > 0
    else:
        # The frames without buckets inside the copied days: all but the one starting
        # before the data
        assert sum(copies_used) == 7


def duckdb_only(wh):
    if not is_duckdb(wh):
        pytest.skip("DuckDB's remembered list (PostgreSQL's: test_s6_pg_copy.py)")


def db(wh, sql: str, params: dict | None = None) -> list[tuple]:
    """Rows of ``sql`` read as the warehouse itself (analyst SQL cannot see the copy)."""
    with wh.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql), params or {}).fetchall()]


def copied(wh) -> list[str]:
    rows = db(wh, "SELECT chunk_start FROM reading_chunks WHERE copied ORDER BY 1")
    return [str(pd.Timestamp(t).date()) for (t,) in rows]


def copy_rows(wh, day: str) -> int:
    """Instants of a day in the copy (PostgreSQL: a row holds a segment of n of them)."""
    start = pd.Timestamp(day, tz="UTC")
    sql = ("SELECT count(*) FROM readings WHERE ts >= :a AND ts < :b" if is_duckdb(wh) else
           "SELECT coalesce(sum(n), 0) FROM readings WHERE ts_min >= :a AND ts_min < :b")
    [(n,)] = db(wh, sql, {"a": start, "b": start + pd.Timedelta(days=1)})
    return int(n)


def test_a_late_write_deletes_the_copy_until_the_next_run(wh, copies_used):
    wh.write_points(data())
    compress_all(wh)
    assert copied(wh) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    late = pd.DataFrame({"metric": ["cpu"], "labels": [{"host": "b"}],
                         "ts": [pd.Timestamp("2026-11-02T05:00:30Z")], "value": [1000.0]})
    wh.write_points(late)
    assert copied(wh) == ["2026-11-01", "2026-11-03"]
    assert copy_rows(wh, "2026-11-02") == 0 and copy_rows(wh, "2026-11-01") > 0
    answer = wh.frame(["cpu", "mem"], START, END, where="cpu > 999")
    assert answer["cpu"].tolist() == [1000.0] and copies_used[-1] is False
    again = [r.chunk_name for r in compress_all(wh)]
    assert again == ["points_20261102_000000"]
    copies_used.clear()
    assert_same({"a": answer}, {"a": wh.frame(["cpu", "mem"], START, END, where="cpu > 999")})
    assert copies_used == [True]


@pytest.mark.parametrize("hits", ["some", "none"])
def test_a_copy_gone_behind_a_remembered_list_is_noticed(wh, copies_used, hits):
    """The list of copies is remembered per commit generation; a frame re-checks it in its
    own snapshot. Here the list is made stale by hand (same generation, copy deleted): the
    frame must notice, answer from points and forget the list."""
    duckdb_only(wh)
    wh.write_points(data())
    compress.compress_now(wh, "1d", now=NOW)
    where = "cpu > 52" if hits == "some" else "cpu > 1e9"
    wh.frame(["cpu", "mem"], START, END, where=where)  # remembers the list
    key = frame_readings._KEY
    stale = wh.backend.schema_facts[key][1]
    with wh.engine.begin() as conn:  # the copy of day 2 goes, points stay
        conn.execute(text("DELETE FROM readings WHERE ts >= '2026-11-02' AND ts < '2026-11-03'"))
        conn.execute(text("DELETE FROM reading_chunks WHERE chunk_start = '2026-11-02'"))
    # One metric: the query state is read again after that commit, no list of copies; so the
    # next frame starts with no statement of its own and trusts a remembered list.
    wh.frame(["cpu"], START, END)
    wh.backend.schema_facts[key] = (wh.backend.commit_generation(), stale)
    copies_used.clear()
    answer = wh.frame(["cpu", "mem"], START, END, where=where)
    expected = wh.frame(["cpu", "mem"], START, END, where=where)  # list read again: points
    assert copies_used == [True, False]
    assert key not in wh.backend.schema_facts or wh.backend.schema_facts[key][1] is not stale
    assert_same({"a": expected}, {"a": answer})
    if hits == "some":
        assert len(answer) > 100


def test_retention_and_drop_chunks_take_the_copy_with_them(wh):
    wh.write_points(data())
    compress_all(wh)
    wh.drop_chunks("points", "2026-11-02T00:00:00Z", force=True)
    assert copied(wh) == ["2026-11-02", "2026-11-03"] and copy_rows(wh, "2026-11-01") == 0
    wh.refresh_rollups(now=NOW)
    wh.set_retention("points", "9d")  # 11-02 ends by NOW - 9d, 11-03 does not
    result = jobs.run_job(wh, "retention", now=NOW, retries=0)
    assert result.status == "succeeded", result.error
    assert copied(wh) == ["2026-11-03"] and copy_rows(wh, "2026-11-02") == 0
    assert wh.frame(["cpu", "mem"], START, "2026-11-03T00:00:00Z").empty
    assert len(wh.frame(["cpu", "mem"], "2026-11-03T00:00:00Z", END)) > 100


def test_a_chunk_with_too_many_metrics_is_left_to_points(wh, copies_used, monkeypatch):
    monkeypatch.setattr(readings_job, "MAX_COLUMNS", 1)  # every day has cpu and mem
    wh.write_points(data())
    before = questions(wh)
    compress_all(wh)
    flags = db(wh, "SELECT copied FROM reading_chunks ORDER BY chunk_start")
    assert flags == [(False,), (False,), (False,)]
    assert compress.compress_now(wh, "1d", now=NOW) == []  # not tried again
    copies_used.clear()
    assert_same(before, questions(wh))
    assert not any(copies_used)


def test_migration_0016_goes_down_and_up(wh):
    wh.write_points(data())
    compress_all(wh)
    before = questions(wh)
    wh.downgrade("0015")
    tables = {t for (t,) in db(wh, "SELECT table_name FROM information_schema.tables")}
    assert "readings" not in tables and "reading_chunks" not in tables
    wh.migrate()
    assert_same(before, questions(wh))
    assert len(compress.compress_now(wh, "1d", now=NOW)) == 3  # the job copies them again
    assert copied(wh) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert_same(before, questions(wh))
