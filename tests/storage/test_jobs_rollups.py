"""Rollups: incremental refresh, late-data invalidation, and tiered queries that equal raw
aggregation at all times (before and after refreshes, after late writes) on both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import Warehouse, demo, jobs
from warehouse.query import points as points_module

NOW = pd.Timestamp("2026-11-22T12:34:56Z")
ROLLUP_AGGS = ["mean", "min", "max", "sum", "count", "first", "last"]


def frame(n=6000, start="2026-11-20", freq="37s", seed=0, hosts=("a", "b"), metric="cpu"):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({"metric": metric, "labels": [{"host": hosts[i % len(hosts)]}
                                                      for i in range(n)],
                         "ts": ts, "value": rng.normal(50, 10, n)})


def raw_points(wh, *args, **kwargs):
    """The same query answered from raw points only (no rollup tier)."""
    return wh.points(*args, rollups=False, **kwargs)


def tier_used(wh, *args, **kwargs) -> str | None:
    """Which rollup table answered the query (None: raw points)."""
    used = []
    original = points_module.plan_tier

    def spy(*a, **k):
        plan = original(*a, **k)
        used.append(plan.table if plan else None)
        return plan

    points_module.plan_tier = spy
    try:
        wh.points(*args, **kwargs)
    finally:
        points_module.plan_tier = original
    return used[0] if used else None


def assert_same(wh, *args, **kwargs):
    got, want = wh.points(*args, **kwargs), raw_points(wh, *args, **kwargs)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, want, rtol=1e-9)


def refresh(wh, now=NOW):
    run = jobs.run_job(wh, "refresh_rollups", now=now, retries=0)
    assert run.status == "succeeded", run.error
    return run


def rollup_rows(wh, table):
    return wh.sql(f"SELECT * FROM {table} ORDER BY series_id, bucket")


def test_refresh_materialises_complete_buckets_and_queries_use_the_coarsest_tier(wh):
    wh.write_points(frame())
    assert tier_used(wh, "cpu", every="1h", agg="mean") is None  # nothing materialised yet
    refresh(wh)
    marks = jobs.rollup_state(wh).set_index("rollup")["watermark"]
    assert marks["points_1m"] == pd.Timestamp("2026-11-22T12:34:00Z")
    assert marks["points_1h"] == pd.Timestamp("2026-11-22T12:00:00Z")
    assert marks["points_1d"] == pd.Timestamp("2026-11-22T00:00:00Z")
    assert tier_used(wh, "cpu", every="1d", agg="sum") == "points_1d"
    assert tier_used(wh, "cpu", every="3h", agg="max") == "points_1h"
    assert tier_used(wh, "cpu", every="7m", agg="count") == "points_1m"
    assert tier_used(wh, "cpu", every="30s", agg="count") is None
    assert tier_used(wh, "cpu", every="1h", agg="p95") is None


def test_tiered_answers_equal_raw_for_every_aggregate_and_bucket(wh):
    wh.write_points(frame())
    refresh(wh)
    for every in ("1m", "7m", "1h", "3h", "1d", "1w"):
        for agg in ROLLUP_AGGS:
            assert_same(wh, "cpu", every=every, agg=agg)
    # Unaligned edges, an open end past the watermark, grouping across series, gap filling.
    assert_same(wh, "cpu", "2026-11-20T01:30:10Z", "2026-11-22T13:00:00Z", every="1h",
                agg="mean")
    assert_same(wh, "cpu", "2026-11-20T00:00:00.5Z", None, every="1d", agg="last")
    assert_same(wh, "cpu", every="1h", agg="sum", by=["host"])
    assert_same(wh, "cpu", every="1h", agg="count", by=[], fill="zero",
                start="2026-11-19T00:00:00Z", end="2026-11-23T00:00:00Z")
    assert_same(wh, "cpu", every="2h", agg="first", labels={"host": "b"}, fill="previous")


def test_rollup_rows_hold_count_sum_min_max_squares_and_first_last(wh):
    df = frame(600, freq="10s")
    wh.write_points(df)
    refresh(wh)
    hour = rollup_rows(wh, "points_1h").iloc[0]
    sid = int(hour["series_id"])
    labels = wh.sql("SELECT labels_key FROM series WHERE series_id = :s", {"s": sid})
    host = "a" if '"a"' in labels["labels_key"].iloc[0] else "b"
    mine = df[df["labels"].map(lambda d: d["host"]) == host]
    mine = mine[mine["ts"] < pd.Timestamp(hour["bucket"]) + pd.Timedelta("1h")]
    assert hour["count"] == len(mine)
    assert hour["sum"] == pytest.approx(mine["value"].sum())
    assert hour["sum_sq"] == pytest.approx((mine["value"] ** 2).sum())
    assert (hour["min"], hour["max"]) == (mine["value"].min(), mine["value"].max())
    assert pd.Timestamp(hour["first_ts"]) == mine["ts"].min()
    assert hour["first_value"] == mine["value"].iloc[0]
    assert hour["last_value"] == mine["value"].iloc[-1]


def test_refresh_is_incremental_from_the_watermark(wh):
    wh.write_points(frame(3000, start="2026-11-20"))
    first = refresh(wh, pd.Timestamp("2026-11-20T12:00:00Z"))
    before = rollup_rows(wh, "points_1m")
    assert refresh(wh, pd.Timestamp("2026-11-20T12:00:00Z")).rows == 0  # nothing new
    later = refresh(wh, pd.Timestamp("2026-11-21T12:00:00Z"))
    after = rollup_rows(wh, "points_1m")
    assert first.rows > 0 and later.rows > 0
    # Buckets already materialised are left untouched; new ones are appended.
    old = after[pd.to_datetime(after["bucket"], utc=True) < pd.Timestamp("2026-11-20T12:00Z")]
    pd.testing.assert_frame_equal(old.reset_index(drop=True), before.reset_index(drop=True))
    assert_same(wh, "cpu", every="1h", agg="mean")


def test_late_points_invalidate_exactly_their_buckets(wh):
    wh.write_points(frame())
    refresh(wh)
    tiers = {t: rollup_rows(wh, t) for t in ("points_1m", "points_1h", "points_1d")}
    # Late points: host a, three separate minutes on 11-20 (two adjacent), one on 11-21;
    # and points past the watermark, which are not late at all.
    late_ts = pd.to_datetime(["2026-11-20T05:00:01.5Z", "2026-11-20T05:01:59Z",
                              "2026-11-20T07:30:00.25Z", "2026-11-21T23:59:59.999999Z",
                              "2026-11-22T12:40:00Z"], utc=True, format="ISO8601")
    late = pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * 5, "ts": late_ts,
                         "value": [1000.0, -1000.0, 7.0, 3.5, 9.0]})
    wh.write_points(late)
    pending = wh.sql("SELECT range_start, range_end FROM rollup_invalidations "
                     "ORDER BY range_start")
    assert [(pd.Timestamp(a).strftime("%d %H:%M"), pd.Timestamp(b).strftime("%d %H:%M"))
            for a, b in pending.itertuples(index=False)] == [
        ("20 05:00", "20 05:02"), ("20 07:30", "20 07:31"), ("21 23:59", "22 00:00")]
    # Before the refresh, queries read the invalidated buckets from raw points.
    for every, agg in (("1m", "max"), ("1h", "sum"), ("1d", "mean"), ("1d", "first")):
        assert_same(wh, "cpu", every=every, agg=agg)
    run = refresh(wh)
    assert wh.sql("SELECT count(*) AS n FROM rollup_invalidations")["n"].iloc[0] == 0
    # Exactly the touched buckets changed, per tier: 4 minutes, 3 hours, 2 days of host a
    # (the point past the watermark becomes a new minute when the watermark passes it).
    changed = {}
    for table, old in tiers.items():
        new = rollup_rows(wh, table)
        merged = old.merge(new, how="outer", indicator=True,
                           on=list(old.columns))
        changed[table] = merged[merged["_merge"] != "both"]["bucket"].nunique()
    assert changed == {"points_1m": 4, "points_1h": 3, "points_1d": 2}
    assert run.rows == 4 + 3 + 2
    for every, agg in (("1m", "max"), ("1h", "sum"), ("1d", "mean"), ("1d", "first"),
                       ("1w", "last")):
        assert_same(wh, "cpu", every=every, agg=agg)


def test_rollups_keep_answering_after_raw_chunks_are_dropped(wh):
    wh.write_points(frame(24 * 60, start="2026-11-01", freq="1min"))
    refresh(wh)
    before = wh.points("cpu", every="1d", agg="mean")
    wh.drop_chunks("points", "2026-11-02T00:00:00Z")
    assert len(wh.points("cpu")) == 0  # raw points are gone ...
    pd.testing.assert_frame_equal(wh.points("cpu", every="1d", agg="mean"), before)  # not these


def test_tiered_answers_are_identical_on_both_engines(postgres_server, tmp_path):
    data = demo.generate(days=3, end=pd.Timestamp("2026-11-20", tz="UTC"), seed=5)
    pair = [Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}"),
            Warehouse(postgres_server.create_database("wh_jobs_tiers"))]
    try:
        for wh in pair:
            demo.load(wh, data)
            refresh(wh, pd.Timestamp("2026-11-19T06:30:00Z"))
        for every in ("1m", "1h", "1d"):
            for agg in ("mean", "count", "first", "last"):
                duck, pg = (wh.points("host.cpu_percent", every=every, agg=agg) for wh in pair)
                assert len(duck) > 0
                pd.testing.assert_frame_equal(duck.drop(columns=["series_id", "labels"]),
                                              pg.drop(columns=["series_id", "labels"]),
                                              rtol=1e-9)
    finally:
        for wh in pair:
            wh.close()


def test_ingest_without_the_jobs_schema_still_works(database_url):
    wh = Warehouse(database_url)
    wh.downgrade("0002")
    assert wh.write_points(frame(10)).written == 10
    assert len(wh.points("cpu", every="1h")) > 0
    with wh.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM points")).scalar_one() == 10
    wh.close()


def test_a_stray_old_point_does_not_make_the_refresh_walk_decades(wh):
    old = pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}], "value": [1.0],
                        "ts": [pd.Timestamp("1971-03-04T05:06:07Z")]})
    wh.write_points(pd.concat([old, frame(600)]))
    run = refresh(wh)
    assert run.seconds < 30  # one slice per stretch holding points, not one per empty day
    assert_same(wh, "cpu", every="1d", agg="count")
    assert_same(wh, "cpu", every="1h", agg="first")


def test_rollup_reads_equal_raw_with_stale_buckets_edges_and_groups(wh):
    """wh.points answers from the tiers (read_tier: fetched in bulk, sorted in NumPy) exactly
    as raw aggregation does: tier rows as they are, unaligned edges, an open end past the
    watermark, merged partials, stale buckets after late points, groups by label."""
    wh.write_points(frame())
    refresh(wh)
    late = pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}, {"host": "b"}],
                         "ts": pd.to_datetime(["2026-11-20T05:00:01Z", "2026-11-21T07:59:00Z"]),
                         "value": [1000.0, -5.0]})
    wh.write_points(late)  # stale buckets: raw points answer them
    cases = [("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z", "1h"),  # tier rows as they are
             ("2026-11-20T01:30:10Z", None, "1h"),  # unaligned start, open end past the mark
             ("2026-11-20T00:00:00.5Z", "2026-11-22T13:00:00Z", "3h"),  # merged partials
             ("2026-11-19T00:00:00Z", None, "1d")]
    for start, end, every in cases:
        for agg in ROLLUP_AGGS:
            assert tier_used(wh, "cpu", start, end, every=every, agg=agg) is not None
            assert_same(wh, "cpu", start, end, every=every, agg=agg)
            assert_same(wh, "cpu", start, end, every=every, agg=agg, by=["host"])


def test_rollup_read_of_a_range_without_points_is_empty(wh):
    wh.write_points(frame())
    refresh(wh)
    wh.write_points(frame(10, start="2026-11-25"))  # past the watermark: the plan has a tail
    assert tier_used(wh, "cpu", "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", every="1h",
                     agg="mean") is not None
    assert wh.points("cpu", "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z", every="1h",
                     agg="mean").empty


def test_tier_buckets_before_1970_and_the_origin_equal_raw(wh):
    # Bucket starts are turned into µs from float seconds: exact on whole seconds, which
    # every tier bucket is; negative epochs and buckets either side of the origin included.
    stamps = ["1969-12-31T22:59:59.999999Z", "1969-12-31T23:30:00.25Z", "1970-01-01T00:00:00Z",
              "2000-01-02T23:59:59.5Z", "2000-01-03T00:00:00Z", "2000-01-03T01:00:00.000001Z"]
    points = pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * len(stamps),
                           "ts": pd.to_datetime(stamps, format="ISO8601"),
                           "value": np.arange(len(stamps), dtype="f8")})
    wh.write_points(points)
    refresh(wh, pd.Timestamp("2000-01-04T00:00:00Z"))
    assert tier_used(wh, "cpu", every="1h", agg="max") == "points_1h"
    for every in ("1m", "1h", "3h", "1d", "1w"):
        for agg in ("max", "first", "mean"):
            assert_same(wh, "cpu", every=every, agg=agg)
