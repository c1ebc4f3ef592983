"""wh.frame(where=...) over compressed chunks answers what pandas computes from the points
written, on both engines, before and after compression and after late writes into a
compressed chunk. On PostgreSQL the statement (sql/postgresql/query/segments_where_hits.sql)
reads a hit's other metrics straight from the segments aligned with the hit's own (same
first instant and step: hosts a and f, which has no cpu.system) and every other hit the
general way: a label set missing a metric for hours (b), a metric on another step (c),
irregular timestamps of the filtered metric (e), hits in the hot day, late writes, and a
label set holding two series of one metric. The segments' stored minimum and maximum skip
those that cannot hold a hit, for each operator. Frames over compressed chunks read their
pivoted copies where they exist (query/frame_readings.py); the tests here turn that off
(``segments``) to read the segments, and check the copies' answers once against the same
pandas answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse import jobs
from warehouse.errors import ValidationError
from warehouse.jobs import compress

METRICS = ["cpu.user", "cpu.system", "cpu.idle"]
T0 = pd.Timestamp("2026-11-01T00:00:00Z")
NOW = pd.Timestamp("2026-11-12T00:00:00Z")
WINDOWS = [(None, None),
           ("2026-11-01T03:17:05Z", "2026-11-02T02:00:00Z"),  # mid-segment into the hot day
           ("2026-11-01T00:00:00Z", "2026-11-01T09:00:00Z"),  # ends on a tick (not in it)
           ("2026-11-01T05:00:00Z", "2026-11-01T17:33:27Z")]  # on a tick to between two


def host_points(rng: np.random.Generator) -> pd.DataFrame:
    """30 hours every 10 s (day 1 compressed later, 6 h of day 2 hot). Host a: every metric
    at the same instants, values whole (cpu.user), with two decimals (cpu.system) and any
    float (cpu.idle); b: no cpu.system from 05:00 to 08:00; c: cpu.idle every 20 s; d: no
    cpu.user; e: cpu.user at irregular instants; f: no cpu.system (aligned all the same)."""
    ticks = pd.date_range(T0, periods=30 * 360, freq="10s")
    gap = (ticks >= T0 + pd.Timedelta(hours=5)) & (ticks < T0 + pd.Timedelta(hours=8))
    irregular = T0 + pd.to_timedelta(np.cumsum(rng.integers(1_000_000, 20_000_000, 6000)),
                                     unit="us")
    instants = {("b", "cpu.system"): ticks[~gap], ("c", "cpu.idle"): ticks[::2],
                ("e", "cpu.user"): irregular}
    parts = []
    for host in "abcdef":
        for metric in METRICS:
            if (host, metric) in (("d", "cpu.user"), ("f", "cpu.system")):
                continue
            ts = instants.get((host, metric), ticks)
            values = rng.uniform(0, 100, len(ts))
            values = {"cpu.user": np.round(values), "cpu.system": np.round(values, 2)}.get(
                metric, values)
            parts.append(pd.DataFrame({"metric": metric, "host": host, "ts": ts,
                                       "value": values}))
    return pd.concat(parts, ignore_index=True)


def expected(points: pd.DataFrame, metric: str, test, start, end) -> pd.DataFrame:
    """The frame's answer by pandas: the wide rows where ``test(metric's value)`` holds."""
    if start is not None:
        points = points[(points["ts"] >= pd.Timestamp(start)) & (points["ts"] < pd.Timestamp(end))]
    wide = points.pivot_table(index=["ts", "host"], columns="metric", values="value",
                              aggfunc="max").reindex(columns=METRICS).reset_index()
    wide.columns.name = None
    hits = wide[test(wide[metric])].sort_values(["host", "ts"]).reset_index(drop=True)
    return hits[["ts", "host", *METRICS]]


def write_and_compress(wh, points: pd.DataFrame) -> None:
    wh.write_points(points, label_columns=["host"])
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    compress.compress_now(wh, "1d", now=NOW)


def check(wh, points: pd.DataFrame, where: str, test, metric: str = "cpu.user") -> None:
    for start, end in WINDOWS:
        got = wh.frame(METRICS, start, end, where=where)
        want = expected(points, metric, test, start, end)
        assert len(want) > 0
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=f"{where} {start}")


@pytest.mark.storage
def test_pivoted_copies_answer_the_same(wh):
    points = host_points(np.random.default_rng(61))
    write_and_compress(wh, points)
    check(wh, points, "cpu.user > 70", lambda v: v > 70)


@pytest.mark.storage
def test_hits_over_compressed_segments_answer_as_pandas(wh, segments):
    points = host_points(np.random.default_rng(61))
    write_and_compress(wh, points)
    check(wh, points, "cpu.user > 70", lambda v: v > 70)
    if wh.backend.capabilities.native_partitions:  # PostgreSQL keeps segments
        assert len(segments) == len(WINDOWS)
    got = wh.frame(METRICS, *WINDOWS[1], where="cpu.user > 70")
    # b's hits in its gap have no cpu.system; c's at odd ticks no cpu.idle; d has no hits
    gap = (got["host"] == "b") & (got["ts"] >= T0 + pd.Timedelta(hours=5)) & \
        (got["ts"] < T0 + pd.Timedelta(hours=8))
    assert gap.sum() > 10 and got.loc[gap, "cpu.system"].isna().all()
    assert got.loc[got["host"] == "c", "cpu.idle"].isna().sum() > 10
    assert got.loc[got["host"] == "f", "cpu.system"].isna().all()
    assert set(got["host"]) == {"a", "b", "c", "e", "f"}


@pytest.mark.storage
@pytest.mark.parametrize("where, test, metric", [
    ("cpu.user >= 98", lambda v: v >= 98, "cpu.user"),
    ("cpu.user < 2", lambda v: v < 2, "cpu.user"),
    ("cpu.user <= 1", lambda v: v <= 1, "cpu.user"),
    ("cpu.user = 42", lambda v: v == 42, "cpu.user"),
    ("cpu.user != 42", lambda v: v.notna() & (v != 42), "cpu.user"),
    ("cpu.system > 99.5", lambda v: v > 99.5, "cpu.system"),
])
def test_each_operator_skips_only_segments_without_hits(wh, segments, where, test, metric):
    points = host_points(np.random.default_rng(62))
    write_and_compress(wh, points)
    check(wh, points, where, test, metric)


@pytest.mark.storage
def test_late_writes_into_a_compressed_chunk(wh, segments):
    rng = np.random.default_rng(63)
    points = host_points(rng)
    write_and_compress(wh, points)
    # New instants 5 s after ticks of day 1: hits of a (its other metrics there only for
    # some), and a cpu.system reading of b without a cpu.user one (no hit). The write
    # decodes the segments it overlaps (per series) back into points.
    late_ts = T0 + pd.Timedelta(hours=2, seconds=5) + pd.to_timedelta(np.arange(40) * 60,
                                                                       unit="s")
    late = pd.concat([
        pd.DataFrame({"metric": "cpu.user", "host": "a", "ts": late_ts, "value": 99.0}),
        pd.DataFrame({"metric": "cpu.idle", "host": "a", "ts": late_ts[::3], "value": 1.5}),
        pd.DataFrame({"metric": "cpu.system", "host": "b", "ts": late_ts, "value": 7.25}),
    ], ignore_index=True)
    wh.write_points(late, label_columns=["host"])
    points = pd.concat([points, late], ignore_index=True)
    check(wh, points, "cpu.user > 70", lambda v: v > 70)
    got = wh.frame(METRICS, *WINDOWS[2], where="cpu.user > 70")
    assert got["ts"].isin(late_ts).sum() == 40
    # compressed again, the late points are in (irregular) segments
    compress.compress_now(wh, "1d", now=NOW)
    check(wh, points, "cpu.user > 70", lambda v: v > 70)


@pytest.mark.storage
def test_missing_values_stay_missing(wh, segments):
    points = host_points(np.random.default_rng(64))
    write_and_compress(wh, points)
    before = wh.frame(METRICS, *WINDOWS[1], where="cpu.user > 70")
    # NaN is refused at ingest, so no segment holds one: NaN in a frame means "no reading"
    bad = pd.DataFrame({"metric": "cpu.system", "host": "a",
                        "ts": [T0 + pd.Timedelta(hours=4)], "value": [np.nan]})
    with pytest.raises(ValidationError):
        wh.write_points(bad, label_columns=["host"])
    after = wh.frame(METRICS, *WINDOWS[1], where="cpu.user > 70")
    pd.testing.assert_frame_equal(after, before)
    assert after.loc[after["host"] == "a", METRICS].notna().all().all()


@pytest.mark.storage
def test_two_series_of_a_metric_in_one_group_over_segments(wh, segments):
    # "ts" is not a key of the frame, so host a's two cpu.user series (label ts x / y)
    # make one group: no array of one id per metric, every hit goes the general way.
    ticks = pd.date_range(T0, periods=2000, freq="10s")
    rng = np.random.default_rng(65)
    rows = [pd.DataFrame({"metric": "cpu.user", "labels": [{"host": "a", "ts": tag}] * len(ticks),
                          "ts": ticks, "value": np.round(rng.uniform(0, 100, len(ticks)))})
            for tag in "xy"]
    rows.append(pd.DataFrame({"metric": "cpu.idle", "labels": [{"host": "a"}] * len(ticks),
                              "ts": ticks, "value": rng.uniform(0, 100, len(ticks))}))
    data = pd.concat(rows, ignore_index=True)
    wh.write_points(data)
    before = wh.frame(["cpu.user", "cpu.idle"], None, None, where="cpu.user > 90")
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    compress.compress_now(wh, "1d", now=NOW)
    after = wh.frame(["cpu.user", "cpu.idle"], None, None, where="cpu.user > 90")
    user = data[data["metric"] == "cpu.user"].groupby("ts")["value"].max()
    assert len(before) == (user > 90).sum() > 100
    pd.testing.assert_frame_equal(after, before)
