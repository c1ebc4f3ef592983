"""Session 5: newest-first reads (``last=N``) over compressed segments answer like the full
computation's tail on both engines; on PostgreSQL a small window is read without parallel
workers and regular segments are sliced by their ``n`` column (warehouse/query/newest.py,
archive_read.points_relation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs
from warehouse.jobs import compress
from warehouse.query.points import query_points

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
T0 = pd.Timestamp("2026-11-01T00:00:00Z")
HOSTS = ["a", "b", "c"]


def regular_hosts(wh) -> pd.DataFrame:
    """Three hosts, a point every 10 s for 30 hours (several 1,000-point segments a day
    each), values in three forms: whole numbers, one decimal, and any float."""
    ts = pd.date_range(T0, periods=30 * 360, freq="10s")
    rng = np.random.default_rng(5)
    values = {"a": rng.integers(0, 100, len(ts)).astype(float),
              "b": np.round(rng.normal(50, 10, len(ts)), 1),
              "c": rng.normal(50, 10, len(ts))}
    data = pd.concat([pd.DataFrame({"metric": "cpu", "labels": [{"host": h}] * len(ts),
                                    "ts": ts, "value": values[h]}) for h in HOSTS],
                     ignore_index=True)
    wh.write_points(data)
    result = jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0)
    assert result.status == "succeeded", result.error
    return data


def tail_buckets(frame: pd.DataFrame, n: int) -> pd.DataFrame:
    newest = sorted(frame["ts"].unique())[-n:]
    return frame[frame["ts"].isin(newest)].reset_index(drop=True)


ENDS = [
    pd.Timestamp("2026-11-01T13:15:56Z"),        # inside a segment, mid-minute
    pd.Timestamp("2026-11-01T02:46:40Z"),        # on the 1,001st point: a segment boundary
    pd.Timestamp("2026-11-01T02:46:40.000001Z"),  # a microsecond past it
    pd.Timestamp("2026-11-01T23:59:59.999999Z"),  # the end of the compressed day
    None,                                        # the newest point (hot, day 2)
]


def test_last_n_over_compressed_segments_equals_the_full_tail(wh):
    regular_hosts(wh)
    before = {}
    for i, end in enumerate(ENDS):
        for by in ([], None):
            kwargs = dict(every="1m", agg="max", by=by)
            before[(i, str(by), "full")] = wh.points("cpu", None, end, **kwargs)
            before[(i, str(by), "last")] = wh.points("cpu", None, end, last=5, **kwargs)
        before[(i, "raw")] = wh.points("cpu", None, end, last=7)
    compress.compress_now(wh, "1d", now=NOW)
    if wh.backend.capabilities.native_partitions:
        with wh.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM points_compressed")).scalar() > 6
    for i, end in enumerate(ENDS):
        for by in ([], None):
            kwargs = dict(every="1m", agg="max", by=by)
            got = wh.points("cpu", None, end, last=5, **kwargs)
            pd.testing.assert_frame_equal(got, before[(i, str(by), "last")], obj=f"{end} {by}")
            pd.testing.assert_frame_equal(got, tail_buckets(before[(i, str(by), "full")], 5))
            assert len(got) == 5 * (1 if by == [] else len(HOSTS))
        raw = wh.points("cpu", None, end, last=7)
        pd.testing.assert_frame_equal(raw, before[(i, "raw")], obj=f"raw {end}")
        assert len(raw) == 7 * len(HOSTS)


def test_a_small_newest_window_is_read_without_workers(wh):
    """The setting holds for the rest of the read's transaction, so it can be seen there
    after the call: none for the last 5 minutes, the server's default for a wide window."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("PostgreSQL's parallel workers")
    regular_hosts(wh)
    compress.compress_now(wh, "1d", now=NOW)
    end = pd.Timestamp("2026-11-01T13:15:56Z")
    workers = "SHOW max_parallel_workers_per_gather"
    with wh.engine.connect() as conn:
        default = conn.exec_driver_sql(workers).scalar()
        conn.rollback()
        query_points(conn, wh.backend, "cpu", None, end, every="1m", agg="max", by=[], last=5)
        assert conn.exec_driver_sql(workers).scalar() == "0"
        conn.rollback()
        # 40 days of hourly buckets of 3 series: 2,880 series-hours, over the limit
        query_points(conn, wh.backend, "cpu", None, end, every="1d", agg="max", last=40)
        assert conn.exec_driver_sql(workers).scalar() == default != "0"


def test_segment_count_is_the_length_of_its_values(wh):
    """Regular segments are sliced by ``n`` (not the cardinality of the values array): every
    value form keeps them equal."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    regular_hosts(wh)
    compress.compress_now(wh, "1d", now=NOW)
    with wh.engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT count(*), count(*) FILTER (WHERE n = coalesce(cardinality(vals), "
            "cardinality(vals_real), cardinality(vals_int))), "
            "count(DISTINCT num_nonnulls(vals) * 1 + num_nonnulls(vals_real) * 2 "
            "+ num_nonnulls(vals_int) * 4) FROM points_compressed")).one()
    assert rows[0] == rows[1] > 0
    assert rows[2] >= 2  # whole numbers and decimals as integers, floats as float8


WINDOWS = [
    ("2026-11-01T06:25:15Z", "2026-11-01T18:25:15Z"),  # edges in different segments
    ("2026-11-01T06:25:15Z", "2026-11-01T06:28:45Z"),  # both edges in one segment
    ("2026-11-01T02:46:35Z", "2026-11-01T02:46:45Z"),  # one minute's part, across two
    ("2026-11-01T00:00:00Z", "2026-11-01T23:59:59.999999Z"),  # no edge but the last
]


def test_rollup_reads_with_raw_edges_over_compressed_segments(wh):
    """A tier plan's raw edges are decoded per edge (points_relation's spans): buckets at
    both ends of a window, from segments between which nothing is decoded, are unchanged."""
    regular_hosts(wh)
    metrics = ["cpu"]

    def asked():
        return {(i, form): (wh.points("cpu", a, b, every="1m", agg="max") if form == "points"
                            else wh.frame(metrics, a, b, every="1m", agg="max", by=["host"]))
                for i, (a, b) in enumerate(WINDOWS) for form in ("points", "frame")}

    before = asked()
    compress.compress_now(wh, "1d", now=NOW)
    after = asked()
    for key, expected in before.items():
        pd.testing.assert_frame_equal(after[key], expected, obj=str(key))
    assert len(before[(0, "points")]) == len(HOSTS) * 721  # 12 h of minutes and an edge


def test_spans_that_touch_or_overlap_decode_each_point_once(wh):
    """Spans given to points_relation are merged before segments are sliced by them: a
    point in two spans must still come out once."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    from warehouse.query.archive_read import points_relation
    from warehouse.timeparse import epoch_us

    regular_hosts(wh)
    compress.compress_now(wh, "1d", now=NOW)
    ids = wh.sql("SELECT series_id FROM series")["series_id"].tolist()
    us = [epoch_us(pd.Timestamp(t)) for t in
          ("2026-11-01T01:00Z", "2026-11-01T02:00Z", "2026-11-01T03:00Z", "2026-11-01T04:00Z")]
    cases = {
        "overlapping": [(us[0], us[2]), (us[1], us[3])],
        "touching": [(us[0], us[1]), (us[1], us[3])],
        "nested": [(us[0], us[3]), (us[1], us[2])],
        "open": [(None, us[1]), (us[0], None)],
        "apart": [(us[0], us[1]), (us[2], us[3])],
    }
    start, end = pd.Timestamp("2026-11-01T00:00Z"), pd.Timestamp("2026-11-01T05:00Z")
    with wh.engine.connect() as conn:
        for name, spans in cases.items():
            source, params = points_relation([], ids, compressed=True, start=start, end=end,
                                             spans_us=spans)
            kept = " OR ".join(
                "(" + " AND ".join(([f"ts >= to_timestamp({a} / 1e6)"] if a is not None else [])
                                   + ([f"ts < to_timestamp({b} / 1e6)"] if b is not None
                                      else [])) + ")" for a, b in spans)
            rows, distinct = conn.execute(text(
                f"SELECT count(*), count(DISTINCT (series_id, ts)) FROM {source} "
                f"WHERE ts >= :start AND ts < :end AND ({kept})"),
                {**params, "start": start, "end": end}).one()
            expected = {"apart": 2 * 360, "open": 5 * 360}.get(name, 3 * 360) * len(HOSTS)
            assert rows == distinct == expected, name


def test_where_hits_statement_reads_segments_at_the_hits(wh, segments):
    """sql/postgresql/query/segments_where_hits.sql (frame_where._decoded_range's
    statement) answers as the hot table did: hits in regular
    and irregular segments and in the hot (uncompressed) day, instants where another metric
    has no reading, a hit between two points of a segment, and ties."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")

    regular_hosts(wh)  # cpu: day 1 compressed, 6 h of day 2 hot
    rng = np.random.default_rng(9)
    irregular = T0 + pd.to_timedelta(np.cumsum(rng.integers(1, 30_000_000, 1500)), unit="us")
    ticks = pd.date_range(T0, periods=30 * 360, freq="10s")
    mem = pd.DataFrame({"metric": "mem", "labels": [{"host": h} for h in HOSTS[:2]
                                                     for _ in ticks[::3]],
                        "ts": list(ticks[::3]) * 2, "value": rng.normal(50, 10, 2 * len(ticks[::3]))})
    odd = pd.DataFrame({"metric": "disk", "labels": [{"host": "a"}] * len(irregular),
                        "ts": irregular, "value": np.round(rng.normal(50, 10, len(irregular)), 2)})
    wh.write_points(pd.concat([mem, odd], ignore_index=True))
    assert jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0).status == "succeeded"
    asks = [(["cpu", "mem", "disk"], "cpu > 60", ("2026-11-01T01:00Z", "2026-11-02T03:00Z")),
            (["disk", "cpu"], "disk > 55", ("2026-11-01T00:00Z", "2026-11-01T12:00Z")),
            (["mem", "cpu"], "mem >= 50", (None, None))]

    def answers():
        return [wh.frame(metrics, a, b, where=where)
                for metrics, where, (a, b) in asks]

    before = answers()
    compress.compress_now(wh, "1d", now=NOW)
    segments.clear()  # (day 1 was compressed already: before read segments too)
    after = answers()
    assert len(segments) == len(asks)
    for i, expected in enumerate(before):
        assert len(expected) > 0
        pd.testing.assert_frame_equal(after[i], expected, obj=str(asks[i]))
