"""Review of session 6's PostgreSQL reads over compressed chunks (issue 15): wh.frame from the
pivoted copy (query/frame_readings.py, migration 0017) and where= frames over segments
(query/frame_where.py, query/segments_where_*.sql) answer what pandas computes from the
points written, and what the same frame over points answers (``copies=False``), on both
engines: after late writes into a compressed, copied day (an instant written again, a new
label set, a new metric, instants between a segment's), for every operator with negative
and decimal thresholds, each value form (whole, two decimals, quarters, any float),
irregular instants, label sets aligned for some metrics only, and ranges starting or
ending mid-segment or on a segment's first instant."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from test_readings_copy import db
from test_review_s5_copy import frame as read_frame

from warehouse import Warehouse, jobs
from warehouse.jobs import compress
from warehouse.query import frame

METRICS = ["cpu.user", "cpu.system", "cpu.idle", "mem"]
T0 = pd.Timestamp("2026-11-01T00:00:00Z")
NOW = pd.Timestamp("2026-11-12T00:00:00Z")
# Segments hold 1,000 instants: at 10 s, host a's second segment starts at 02:46:40.
BOUNDARY = T0 + pd.Timedelta(seconds=10_000)
WINDOWS = [
    (T0, T0 + pd.Timedelta(days=2)),
    (BOUNDARY, BOUNDARY + pd.Timedelta(seconds=10_000)),  # on segment starts
    (BOUNDARY - pd.Timedelta(seconds=10), BOUNDARY + pd.Timedelta(seconds=5)),
    (T0 + pd.Timedelta(hours=3, seconds=17), T0 + pd.Timedelta(hours=29, minutes=3)),
    (T0 - pd.Timedelta(days=3), T0 - pd.Timedelta(days=2)),  # no data
]
WHERES = [
    ("cpu.user > -3", lambda v: v > -3),
    ("cpu.user >= 40", lambda v: v >= 40),
    ("cpu.user < -45", lambda v: v < -45),
    ("cpu.user <= -49", lambda v: v <= -49),
    ("cpu.user = 7", lambda v: v == 7),
    ("cpu.user != 7", lambda v: v.notna() & (v != 7)),
    ("cpu.system > 0.5", lambda v: v > 0.5),
    ("cpu.system <= -0.75", lambda v: v <= -0.75),
    ("cpu.system = -0.25", lambda v: v == -0.25),
    ("mem >= 12.25", lambda v: v >= 12.25),
    ("mem = -3.75", lambda v: v == -3.75),
    ("cpu.idle < -0.9", lambda v: v < -0.9),
    ("cpu.user > 1e9", lambda v: v > 1e9),  # no hit
]


@pytest.fixture
def segments(monkeypatch):
    """Frames read segments, not the pivoted copies (PostgreSQL's where= path)."""
    monkeypatch.setattr(frame, "copy_read", lambda *args: None)


def host_points(rng: np.random.Generator) -> pd.DataFrame:
    """36 hours every 10 s (day 1 compressed, 12 h of day 2 hot). Values: cpu.user whole
    numbers in [-50, 50], cpu.system two decimals in [-1, 1], cpu.idle any float, mem
    quarters. Host a: every metric at every tick; b: cpu.idle every 20 s (aligned for the
    others only); c: cpu.user at irregular instants; d: no mem."""
    ticks = pd.date_range(T0, periods=36 * 360, freq="10s")
    irregular = T0 + pd.to_timedelta(np.cumsum(rng.integers(1_000_000, 20_000_000, 7000)),
                                     unit="us")
    instants = {("b", "cpu.idle"): ticks[::2], ("c", "cpu.user"): irregular}
    parts = []
    for host in "abcd":
        for metric in METRICS:
            if (host, metric) == ("d", "mem"):
                continue
            ts = instants.get((host, metric), ticks)
            parts.append(pd.DataFrame({"metric": metric, "host": host, "ts": ts,
                                       "value": values(rng, metric, len(ts))}))
    return pd.concat(parts, ignore_index=True)


def values(rng: np.random.Generator, metric: str, n: int) -> np.ndarray:
    if metric == "cpu.user":
        return rng.integers(-50, 51, n).astype("f8")
    if metric == "cpu.system":
        return np.round(rng.uniform(-1, 1, n), 2)
    if metric == "mem":
        return rng.integers(-80, 80, n) / 4
    return rng.uniform(-1, 1, n)


def pivoted(points: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The points as pandas pivots them: a row per (ts, host) with a value of one of
    ``metrics``, a column per metric; the first value written of each key wins (ingest skips
    stored keys)."""
    points = points.drop_duplicates(["metric", "host", "ts"], keep="first")
    points = points[points["metric"].isin(metrics)]
    wide = points.pivot_table(index=["ts", "host"], columns="metric", values="value",
                              aggfunc="max").reindex(columns=metrics).reset_index()
    wide.columns.name = None
    return wide.sort_values(["host", "ts"]).reset_index(drop=True)[["ts", "host", *metrics]]


def expected_of(wide: pd.DataFrame, metric: str | None, test, start, end) -> pd.DataFrame:
    """The frame by pandas from :func:`pivoted` rows: those in [start, end) where ``test``
    holds for ``metric`` (every row: None)."""
    wide = wide[(wide["ts"] >= start) & (wide["ts"] < end)]
    if metric is not None:
        wide = wide[test(wide[metric])]
    return wide.reset_index(drop=True)


def expected(points: pd.DataFrame, metrics: list[str], metric: str | None, test, start,
             end) -> pd.DataFrame:
    return expected_of(pivoted(points, metrics), metric, test, start, end)


def write(wh, points: pd.DataFrame) -> None:
    wh.write_points(points, label_columns=["host"])


def compress_closed(wh) -> None:
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    compress.compress_now(wh, "1d", now=NOW)


def check(wh, points: pd.DataFrame, metrics: list[str] = METRICS) -> None:
    wide = pivoted(points, metrics)  # once: filtering it per window and test is the same
    for start, end in WINDOWS:
        for where, test in [(None, None), *WHERES]:
            metric = where.split()[0] if where else None
            if metric is not None and metric not in metrics:
                continue
            want = expected_of(wide, metric, test, start, end)
            got = wh.frame(metrics, start, end, where=where)
            from_points = read_frame(wh, metrics, start, end, where=where, copies=False)
            name = f"{where} {start} {end}"
            pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=name)
            # empty or not, the same columns of the same types as the points' answer
            pd.testing.assert_frame_equal(got, from_points, obj=f"{name} (points)")
            assert str(got["ts"].dtype) == "datetime64[us, UTC]", name


def late_writes(rng: np.random.Generator) -> pd.DataFrame:
    """Into compressed day 1: host a's cpu.user again at written instants (ignored: the first
    value stays), a new label set (e), a new metric of host a (cpu.steal), instants 3 s
    after ticks of b inside its segments (some metrics only), and c's cpu.user at ticks."""
    at = T0 + pd.Timedelta(hours=4) + pd.to_timedelta(np.arange(50) * 70, unit="s")
    between = at + pd.Timedelta(seconds=3)
    rows = [
        pd.DataFrame({"metric": "cpu.user", "host": "a", "ts": at, "value": 49.0}),
        *[pd.DataFrame({"metric": m, "host": "e", "ts": at, "value": values(rng, m, len(at))})
          for m in METRICS],
        pd.DataFrame({"metric": "cpu.steal", "host": "a", "ts": at, "value": -2.5}),
        pd.DataFrame({"metric": "cpu.user", "host": "b", "ts": between,
                      "value": values(rng, "cpu.user", len(at))}),
        pd.DataFrame({"metric": "mem", "host": "b", "ts": between[::2], "value": -3.75}),
        pd.DataFrame({"metric": "cpu.user", "host": "c", "ts": at + pd.Timedelta(hours=3),
                      "value": 7.0}),
    ]
    return pd.concat(rows, ignore_index=True)


@pytest.mark.storage
@pytest.mark.parametrize("read", ["copies", "segments"])
def test_frames_over_compressed_days_answer_as_pandas(wh, read, request):
    if read == "segments":
        request.getfixturevalue("segments")
    rng = np.random.default_rng(71)
    points = host_points(rng)
    write(wh, points)
    compress_closed(wh)
    check(wh, points)
    late = late_writes(rng)
    write(wh, late)
    points = pd.concat([points, late], ignore_index=True)
    check(wh, points)
    check(wh, points, ["cpu.user", "cpu.steal", "mem"])
    compress_closed(wh)  # the late points encoded and the day copied again
    check(wh, points)
    check(wh, points, ["cpu.user", "cpu.steal", "mem"])


@pytest.mark.storage
def test_frames_during_the_compress_job_answer_as_pandas(wh):
    """Frames read while another thread's compress job encodes and copies the day again
    (after late writes, one of a new metric: the copy adds its column) see either the points
    or the copy, never a mix or nothing."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB has one writer: its job and frames do not overlap")
    rng = np.random.default_rng(72)
    points = host_points(rng)
    write(wh, points)
    compress_closed(wh)
    late = late_writes(rng)
    write(wh, late)
    points = pd.concat([points, late], ignore_index=True)
    metrics = ["cpu.user", "cpu.steal", "mem"]
    start, end = WINDOWS[1]
    want = {where: expected(points, metrics, where and where.split()[0], test, start, end)
            for where, test in [(None, None), ("cpu.user >= 40", lambda v: v >= 40),
                                ("mem = -3.75", lambda v: v == -3.75)]}
    job = threading.Thread(target=compress_closed, args=(wh,))
    job.start()
    answered = 0
    while job.is_alive() or answered < 3:
        for where, answer in want.items():
            got = wh.frame(metrics, start, end, where=where)
            pd.testing.assert_frame_equal(got, answer, check_dtype=False, obj=str(where))
            answered += 1
    job.join()
    [(copied,)] = db(wh, "SELECT count(*) FROM reading_chunks WHERE copied")
    assert copied >= 1 and answered >= 3


@pytest.mark.storage
def test_another_process_writing_and_copying_behind_a_remembered_list(wh, database_url):
    """Another process writes into a copied day (a new label set among its writes) and
    copies it again while this one remembers the old list (up to 10 s): this one's frames
    answer as pandas all the same."""
    rng = np.random.default_rng(73)
    points = host_points(rng)
    write(wh, points)
    compress_closed(wh)
    start, end = WINDOWS[1]
    other = Warehouse(database_url) if wh.backend.capabilities.native_partitions else wh
    try:
        for copy_again in (False, True):
            wh.frame(METRICS, start, end)  # the list is remembered (PostgreSQL)
            late = late_writes(rng)
            late["ts"] += pd.Timedelta(seconds=1 + copy_again)  # new instants each time
            write(other, late)
            if copy_again:
                compress_closed(other)
            points = pd.concat([points, late], ignore_index=True)
            for where, test in [(None, None), ("cpu.user >= 40", lambda v: v >= 40)]:
                want = expected(points, METRICS, where and where.split()[0], test, start, end)
                got = wh.frame(METRICS, start, end, where=where)
                pd.testing.assert_frame_equal(got, want, check_dtype=False,
                                              obj=f"{copy_again} {where}")
            compress_closed(other)
    finally:
        if other is not wh:
            other.close()


@pytest.mark.storage
def test_a_copied_day_exactly_with_labels_and_a_metric_not_in_it(wh):
    """A range of exactly the copied day, a label filter choosing some label sets, and a
    metric with values only in the hot day (no column of the copy holds it, or an empty
    one): the copy answers as pandas, the metric's column all NaN."""
    rng = np.random.default_rng(74)
    points = host_points(rng)
    hot = pd.DataFrame({"metric": "disk", "host": "a",
                        "ts": T0 + pd.Timedelta(hours=30) + pd.to_timedelta(np.arange(5), "s"),
                        "value": 1.0})
    points = pd.concat([points, hot], ignore_index=True)
    write(wh, points)
    compress_closed(wh)
    day = (T0, T0 + pd.Timedelta(days=1))
    metrics = ["cpu.user", "disk", "mem"]
    for where, test in [(None, None), ("cpu.user != 0", lambda v: v.notna() & (v != 0)),
                        ("disk > 0", lambda v: v > 0)]:
        chosen = points[points["host"].isin(["b", "d"])]
        want = expected(chosen, metrics, where and where.split()[0], test, *day)
        got = wh.frame(metrics, *day, labels={"host": ["b", "d"]}, where=where)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=str(where))
        assert where == "disk > 0" or (len(got) and got["disk"].isna().all())


@pytest.mark.storage
@pytest.mark.parametrize("day", ["1830-08-01", "2110-03-01"])
@pytest.mark.parametrize("read", ["copies", "segments"])
def test_microseconds_of_a_distant_year_come_back_exact(wh, copies_used, day, read, request):
    """Ingest takes years 1 to 9999. Beyond 2106 or before 1833 a time's seconds since the
    epoch as float8 (date_part) no longer hold every µs: a copy built or read from them
    moved instants by a µs. Regular (every 10.000123 s) and irregular instants."""
    if read == "segments":
        request.getfixturevalue("segments")
    # the first µs of the day whose float8 seconds do not give it back
    t0 = pd.Timestamp(day, tz="UTC")
    t0 += pd.Timedelta(microseconds=next(
        f for f in range(1, 10**6) if round((t0.value // 1000 + f) / 1e6 * 1e6)
        != t0.value // 1000 + f))
    ticks = t0 + pd.to_timedelta(np.arange(3000) * 10_000_123, unit="us")
    irregular = t0 + pd.to_timedelta(np.cumsum(np.random.default_rng(75).integers(
        1, 20_000_000, 3000)), unit="us")
    # mem on other instants than cpu.user: the copy pivots these label sets' points
    instants = {("a", "cpu.user"): ticks, ("a", "mem"): ticks[::2],
                ("b", "cpu.user"): irregular, ("b", "mem"): irregular[::3]}
    rows = [pd.DataFrame({"metric": m, "host": h, "ts": ts, "value": np.arange(len(ts), 0.0, -1)})
            for (h, m), ts in instants.items()]
    points = pd.concat(rows, ignore_index=True)
    write(wh, points)
    now = pd.Timestamp(day, tz="UTC") + pd.Timedelta(days=11)
    assert jobs.run_job(wh, "refresh_rollups", now=now, retries=0).status == "succeeded"
    compress.compress_now(wh, "1d", now=now)
    start, end = pd.Timestamp(day, tz="UTC"), t0 + pd.Timedelta(hours=7)
    for where, test in [(None, None), ("cpu.user >= 100", lambda v: v >= 100)]:
        want = expected(points, ["cpu.user", "mem"], where and "cpu.user", test, start, end)
        got = wh.frame(["cpu.user", "mem"], start, end, where=where)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, obj=str(where))
    assert read == "segments" or copies_used and all(copies_used)  # the copy answered
