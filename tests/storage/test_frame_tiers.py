"""Bucketed wh.frame reads the rollup tiers (query/tiers.py tier_partials) and answers exactly
what raw aggregation answers: tier rows as they are, unaligned edges and the tail past the
watermark from raw points, stale buckets after late writes from raw points, on both engines.

The raw answer is wh.points(rollups=False) per metric, merged in pandas (wh.points over raw
points is itself tested against pandas)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse import jobs
from warehouse.query import frame as frame_module
from warehouse.query.catalog import id_ranges

METRICS = ["cpu.user", "cpu.system", "cpu.idle"]
# 12 hosts × 3 metrics: 36 series with consecutive ids, which the frame filters as a range
# (catalog.id_ranges), so the tier reads see that form too.
HOSTS = [f"h{i}" for i in range(12)]
T0 = pd.Timestamp("2026-11-20T00:00Z")
NOW = pd.Timestamp("2026-11-22T12:34:56Z")  # the 1h tier's watermark: 12:00 that day
AGGS = ["mean", "max", "min", "sum", "count"]


def cpu_points() -> pd.DataFrame:
    """12 hosts (every third in dc west) × 3 metrics every 37 s from T0 for ~62 h (past NOW);
    cpu.idle of h2 is missing for a few hours, so not every cell of a bucket has a value."""
    rng = np.random.default_rng(15)
    ticks = pd.date_range(T0, periods=6000, freq="37s")
    parts = []
    for h, host in enumerate(HOSTS):
        for metric in METRICS:
            ts = ticks
            if host == "h2" and metric == "cpu.idle":
                ts = ticks[(ticks < T0 + pd.Timedelta("5h")) | (ticks >= T0 + pd.Timedelta("9h"))]
            parts.append(pd.DataFrame({
                "metric": metric, "ts": ts,
                "labels": [{"host": host, "dc": "west" if h % 3 == 2 else "east"}] * len(ts),
                "value": np.round(rng.normal(50, 20, len(ts)), 3)}))
    return pd.concat(parts, ignore_index=True)


def refresh(wh):
    run = jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0)
    assert run.status == "succeeded", run.error


def raw_frame(wh, start, end, every, agg, by) -> pd.DataFrame:
    """The frame from raw points: one wh.points(rollups=False) per metric, merged."""
    keys = ["ts", *(by if by is not None else ["dc", "host"])]
    merged = None
    for metric in METRICS:
        part = wh.points(metric, start, end, every=every, agg=agg, by=by, rollups=False)
        part = part[keys + ["value"]].rename(columns={"value": metric})
        merged = part if merged is None else merged.merge(part, on=keys, how="outer")
    return merged.sort_values(keys[1:] + ["ts"]).reset_index(drop=True)[keys + METRICS]


@pytest.fixture
def tier_calls(monkeypatch):
    """The rollup tables wh.frame read partials from, call by call."""
    calls = []
    original = frame_module.tier_partials

    def spy(conn, backend, plan, *args, **kwargs):
        calls.append(plan.table)
        return original(conn, backend, plan, *args, **kwargs)

    monkeypatch.setattr(frame_module, "tier_partials", spy)
    return calls


def assert_raw_equal(wh, tier_calls, start, end, every, agg, by, table):
    """wh.frame answers from ``table`` and equals the raw frame."""
    before = len(tier_calls)
    got = wh.frame(METRICS, start, end, every=every, agg=agg, by=by)
    assert tier_calls[before:] == [table], (start, end, every, agg, by)
    want = raw_frame(wh, start, end, every, agg, by)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)


# (start, end, every, tier): tier rows as they are; unaligned start and an open end past the
# watermark (edges and tail from raw); output buckets of several tier rows with unaligned
# edges on both sides; days from the daily tier with its raw tail; minutes from the 1m tier
# with an unaligned start.
CASES = [
    ("2026-11-20T00:00:00Z", "2026-11-22T00:00:00Z", "1h", "points_1h"),
    ("2026-11-20T01:30:10Z", None, "1h", "points_1h"),
    ("2026-11-20T00:00:00.5Z", "2026-11-22T13:00:00Z", "3h", "points_1h"),
    ("2026-11-19T00:00:00Z", None, "1d", "points_1d"),
    ("2026-11-21T10:00:30Z", "2026-11-21T10:20:00Z", "5m", "points_1m"),
]


@pytest.mark.parametrize("agg", AGGS)
def test_tiered_frame_equals_raw_for_every_partial_aggregate(wh, tier_calls, agg):
    wh.write_points(cpu_points())
    refresh(wh)
    ids = wh.sql("SELECT series_id FROM series")["series_id"].tolist()
    assert "BETWEEN" in id_ranges(ids)  # the range form is what is tested
    for start, end, every, table in CASES:
        for by in (None, [], ["dc"]):
            assert_raw_equal(wh, tier_calls, start, end, every, agg, by, table)


def test_stale_buckets_after_late_writes_come_from_raw_points(wh, tier_calls):
    wh.write_points(cpu_points())
    refresh(wh)
    late = pd.DataFrame({
        "metric": ["cpu.user", "cpu.user", "cpu.idle", "cpu.system"],
        "labels": [{"host": "h0", "dc": "east"}, {"host": "h1", "dc": "east"},
                   {"host": "h2", "dc": "west"}, {"host": "h2", "dc": "west"}],
        # into materialised buckets (one of them where h2 had no cpu.idle), and one past
        # the watermark, which is not late at all
        "ts": pd.to_datetime(["2026-11-20T05:00:01Z", "2026-11-21T07:59:59.5Z",
                              "2026-11-20T06:30:00Z", "2026-11-22T12:40:00Z"], utc=True,
                             format="ISO8601"),
        "value": [1000.0, -500.0, 7.0, 9.0]})
    wh.write_points(late)
    for agg in AGGS:
        for start, end, every, table in CASES[:4]:
            for by in (None, ["dc"]):
                assert_raw_equal(wh, tier_calls, start, end, every, agg, by, table)
    # the late cpu.idle point is the only one of h2 in its hour
    got = wh.frame(METRICS, "2026-11-20T06:00Z", "2026-11-20T07:00Z", every="1h", agg="count")
    assert got.loc[got["host"] == "h2", "cpu.idle"].tolist() == [1.0]


def test_value_filter_runs_on_the_merged_tier_answer(wh, tier_calls):
    wh.write_points(cpu_points())
    refresh(wh)
    start, end = "2026-11-20T00:20:00Z", None
    full = wh.frame(METRICS, start, end, every="1h", agg="mean", by=["dc"])
    got = wh.frame(METRICS, start, end, every="1h", agg="mean", by=["dc"],
                   where="cpu.user >= 50")
    assert tier_calls == ["points_1h", "points_1h"]
    want = raw_frame(wh, start, end, "1h", "mean", ["dc"])
    want = want[want["cpu.user"] >= 50].reset_index(drop=True)
    assert 0 < len(got) < len(full)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)


def test_no_tier_read_where_none_answers_exactly(wh, tier_calls):
    """Before any refresh, for a width that is no tier's multiple, and for an aggregate the
    frame does not merge from partials, wh.frame reads raw points only."""
    wh.write_points(cpu_points())
    assert len(wh.frame(METRICS, every="1h", agg="sum", by=["dc"])) > 0
    refresh(wh)
    # first per host (hosts of a dc share their instants: the first of a dc is a tie)
    for every, agg, by in (("90s", "mean", ["dc"]), ("1h", "first", None), ("1h", "p95", ["dc"])):
        got = wh.frame(METRICS, "2026-11-21T00:00Z", "2026-11-21T06:00Z", every=every, agg=agg,
                       by=by)
        want = raw_frame(wh, "2026-11-21T00:00Z", "2026-11-21T06:00Z", every, agg, by)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)
    assert tier_calls == []


def test_compressed_chunks_under_the_edges_and_late_writes_into_them(wh, tier_calls):
    """Raw edges and stale buckets read from compressed chunks (PostgreSQL: decoded
    segments; DuckDB: chunks sorted by series) answer as hot rows do."""
    from warehouse.jobs import compress

    wh.write_points(cpu_points())
    refresh(wh)
    assert compress.compress_now(wh, "1d", now=NOW)
    late = pd.DataFrame({"metric": "cpu.user", "labels": [{"host": "h0", "dc": "east"}],
                         "ts": [pd.Timestamp("2026-11-20T02:10:00.5Z")], "value": [500.0]})
    wh.write_points(late)
    for agg in ("mean", "max", "count"):
        for start, end, every, table in CASES[:3]:
            assert_raw_equal(wh, tier_calls, start, end, every, agg, ["dc"], table)
