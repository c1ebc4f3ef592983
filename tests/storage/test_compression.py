"""Closed-chunk compression (issue 15): every answer is the same before and after the
compress job, late writes into compressed chunks stay correct, retention and archive work on
compressed chunks, the job is idempotent and a killed compression loses nothing — on both
engines (DuckDB's job re-sorts closed ranges by series instead; answers must not change)."""

from __future__ import annotations

import json
import threading
import uuid

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs
from warehouse.jobs import compress

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
DAYS = 6  # 2026-11-01 .. 11-06, one chunk a day
HOSTS = ("a", "b", "c")


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    return root


def frame(start="2026-11-01", days=DAYS, freq="10min", seed=0, metric="cpu"):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=days * 144, freq=freq, tz="UTC")
    parts = []
    for i, host in enumerate(HOSTS):
        walk = np.round(50 + np.cumsum(rng.normal(0, 2, len(ts))), 1)
        runs = [str(uuid.UUID(int=k + 1)) if k % 7 == 0 else None for k in range(len(ts))]
        parts.append(pd.DataFrame({"metric": metric, "labels": [{"host": host}] * len(ts),
                                   "ts": ts + pd.Timedelta(seconds=i), "value": walk,
                                   "run_id": runs}))
    return pd.concat(parts, ignore_index=True)


def run(wh, name, now=NOW):
    result = jobs.run_job(wh, name, now=now, retries=0)
    assert result.status == "succeeded", result.error
    return result


def compressed(wh) -> tuple[int, int]:
    """(hot rows, compressed rows) of points; compressed is 0 where the engine has none."""
    hot = int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0])
    state = compress.compression_state(wh)
    return hot, int(state.get("compressed_rows", 0))


def answers(wh) -> dict:
    """The questions whose answers must not change."""
    start, end = "2026-11-01T03:00:00Z", "2026-11-06T21:00:00Z"
    return {
        "raw": wh.points("cpu", start, end),
        "raw_all": wh.points("cpu"),
        "host": wh.points("cpu", start, end, labels={"host": "b"}),
        "hourly": wh.points("cpu", start, end, every="1h", agg="mean", rollups=False),
        "hourly_rollup": wh.points("cpu", start, end, every="1h", agg="max"),
        "odd_buckets": wh.points("cpu", "2026-11-02T00:07:00Z", end, every="7h", agg="p95"),
        "by_host": wh.points("cpu", start, end, every="6h", agg="sum", by=["host"]),
        "last": wh.points("cpu", last=5),
        "last_buckets": wh.points("cpu", every="1d", agg="min", last=3),
        "frame": wh.frame(["cpu", "mem"], start=start, end=end, every="2h", agg="mean"),
        "frame_where": wh.frame(["cpu", "mem"], start=start, end=end, where="cpu > 55"),
        "rollup_state": wh.rollup_state()[["rollup", "watermark", "rows"]],
    }


def assert_same(before: dict, after: dict) -> None:
    for name in before:
        pd.testing.assert_frame_equal(after[name], before[name], obj=name)


def assert_stored_in_series_order(wh) -> None:
    """DuckDB: within each day, rows are stored (rowid order) by series, then time."""
    with wh.engine.connect() as conn:
        rows = pd.DataFrame(conn.execute(text(
            "SELECT CAST(ts AS DATE) AS day, series_id, ts FROM points ORDER BY rowid"
        )).fetchall(), columns=["day", "series_id", "ts"])
    for _, part in rows.groupby("day", sort=False):
        assert part.equals(part.sort_values(["series_id", "ts"]))


def loaded(wh):
    wh.write_points(pd.concat([frame(), frame(seed=1, metric="mem")], ignore_index=True))
    run(wh, "refresh_rollups")
    return len(frame()) * 2


def test_answers_identical_after_compression(wh):
    total = loaded(wh)
    before = answers(wh)
    hot_bytes = wh.info()["tables"].set_index("table").loc["points", "bytes"]
    compress.set_policy(wh, "3d")
    result = run(wh, "compress")
    hot, packed = compressed(wh)
    tables = wh.info()["tables"].set_index("table")
    assert wh.show_chunks("points")["rows"].sum() == total  # compressed rows count
    if wh.backend.capabilities.native_partitions:
        # 11-01..11-08 end by NOW - 3d: the six days of data are compressed
        assert packed == total and hot == 0 and result.rows == total
        assert tables.loc["points_compressed", "rows"] == total
        assert 0 < tables.loc["points_compressed", "bytes"] < hot_bytes / 2
    else:  # DuckDB: every closed range rewritten in (series_id, ts) order
        assert (hot, packed) == (total, 0) and result.rows == total
        assert "points_compressed" not in tables.index
        assert_stored_in_series_order(wh)
    assert_same(before, answers(wh))
    assert int(wh.sql("SELECT count(*) AS n FROM all_points")["n"].iloc[0]) == total


def test_downgrade_decodes_every_segment(wh):
    total = loaded(wh)
    before = wh.points("cpu")
    compress.compress_now(wh, "3d", now=NOW)
    wh.downgrade("0009")
    assert int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0]) == total
    wh.migrate()
    pd.testing.assert_frame_equal(wh.points("cpu"), before)


def test_downgrade_widens_integer_and_real_segments(wh):
    """0012 down puts integer[] (whole and decimal) and real[] segments back into float8[]
    values, exactly."""
    ts = pd.date_range("2026-11-01", periods=1400, freq="1min", tz="UTC")
    values = {"count": np.arange(1400) % 17 - 8.0, "ratio": np.arange(1400) / 64.0,
              "celsius": np.round(np.arange(1400) * 0.37 - 200, 1)}
    wh.write_points(pd.concat([pd.DataFrame({"metric": m, "labels": [{}] * len(ts), "ts": ts,
                                             "value": v}) for m, v in values.items()]))
    run(wh, "refresh_rollups")
    every_point = "SELECT series_id, ts, value FROM all_points ORDER BY series_id, ts"
    before = wh.sql(every_point)
    compress.compress_now(wh, "1d", now=NOW)
    pd.testing.assert_frame_equal(wh.sql(every_point), before)
    wh.downgrade("0011")  # the code reads the 0012 schema only: compare all_points
    pd.testing.assert_frame_equal(wh.sql(every_point), before)
    if wh.backend.capabilities.native_partitions:
        with wh.engine.connect() as conn:
            assert conn.execute(text("SELECT bool_and(vals IS NOT NULL), count(*) "
                                     "FROM points_compressed")).one() == (True, 6)
    wh.migrate()
    pd.testing.assert_frame_equal(wh.sql(every_point), before)


def test_compress_again_changes_nothing(wh):
    loaded(wh)
    compress.set_policy(wh, "3d")
    run(wh, "compress")
    state = compress.compression_state(wh)
    assert run(wh, "compress").rows == 0
    assert compress.compression_state(wh) == state


def test_chunk_not_rolled_up_is_left_hot(wh):
    wh.write_points(frame())
    results = compress.compress_now(wh, "3d", now=NOW)
    if wh.backend.capabilities.native_partitions:
        assert results and all(r.refused and "rolled up" in r.refused for r in results)
    else:  # sorting changes no row: rollups need not cover the range first
        assert [r.refused for r in results] == [None] * DAYS
    assert compressed(wh) == (len(frame()), 0)


def test_late_writes_into_compressed_chunk(wh):
    loaded(wh)
    compress.compress_now(wh, "3d", now=NOW)
    some = frame().iloc[[5, 400]].copy()  # two stored points: duplicates change nothing
    new = some.assign(ts=some["ts"] + pd.Timedelta(minutes=5), value=[1000.0, -1000.0])
    written = wh.write_points(pd.concat([some.assign(value=[7.0, 8.0]), new]))
    assert written.written == 2
    run(wh, "refresh_rollups")
    expected = pd.concat([frame(), new], ignore_index=True).sort_values(["ts"])
    raw = wh.points("cpu")
    assert len(raw) == len(expected)
    stored = raw.set_index(["ts", "series_id"])["value"]
    assert sorted(stored.to_numpy()) == sorted(expected["value"].to_numpy())
    hourly = wh.points("cpu", every="1h", agg="max", rollups=False)
    pd.testing.assert_frame_equal(wh.points("cpu", every="1h", agg="max"), hourly)
    assert hourly["value"].max() == 1000.0
    # The decoded segments are hot again; the next run encodes them again.
    hot, _ = compressed(wh)
    again = [r.chunk_name for r in compress.compress_now(wh, "3d", now=NOW)]
    # Both engines do again every day the host's late range [11-01, 11-03] spans: PostgreSQL
    # encodes them (ingest invalidates all of it), DuckDB sorts the two days that got a new
    # point and copies all three (ingest deletes the pivoted copy of the batch's range).
    assert len(again) == 3
    if wh.backend.capabilities.native_partitions:
        assert hot > 0
        assert compressed(wh) == (0, len(expected) + len(frame(metric="mem")))
    else:
        assert_stored_in_series_order(wh)
    assert len(wh.points("cpu")) == len(expected)


def test_retention_and_archive_of_compressed_chunks(wh, archive_dir):
    total = loaded(wh)
    compress.compress_now(wh, "3d", now=NOW)
    before = wh.points("cpu")
    wh.set_retention("points", "8d", archive=True)  # chunks 11-01..11-03 end by NOW - 8d
    run(wh, "archive")
    manifest = wh.archive_manifest()
    assert len(manifest) == 3 and manifest["rows"].sum() == total // 2
    run(wh, "retention")
    hot, packed = compressed(wh)
    assert hot + packed == total // 2
    pd.testing.assert_frame_equal(wh.points("cpu"), before)  # the rest read from Parquet
    gone = wh.drop_chunks("points", pd.Timestamp("2026-11-06T00:00:00Z"), force=True)
    assert len(gone) == 2
    hot, packed = compressed(wh)
    assert hot + packed == total // 6  # 11-06 only


def test_drop_chunks_refuses_compressed_chunk_without_archive(wh):
    loaded(wh)
    compress.compress_now(wh, "3d", now=NOW)
    wh.set_retention("points", "30d", archive=True)
    with pytest.raises(Exception, match="not archived"):
        wh.drop_chunks("points", pd.Timestamp("2026-11-03T00:00:00Z"))


def test_killed_compression_loses_nothing(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB re-sorts in one transaction of its single writer")
    total = loaded(wh)
    before = wh.points("cpu")
    chunk = wh.show_chunks("points")["chunk_name"].iloc[0]
    started = threading.Event()

    def compress_then_hang():
        with wh.engine.connect() as conn:
            started.pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.execute(text("SELECT * FROM wh_compress_chunk(:c)"), {"c": chunk})
            started.set()
            try:
                conn.execute(text("SELECT pg_sleep(30)"))
            except Exception:  # noqa: BLE001 - the session is killed here
                pass

    worker = threading.Thread(target=compress_then_hang)
    worker.start()
    assert started.wait(30)
    with wh.engine.connect() as conn:
        conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": started.pid})
    worker.join(30)
    assert compressed(wh) == (total, 0)
    pd.testing.assert_frame_equal(wh.points("cpu"), before)
    compress.compress_now(wh, "3d", now=NOW)
    assert compressed(wh) == (0, total)
    pd.testing.assert_frame_equal(wh.points("cpu"), before)


def test_late_write_decodes_only_its_series_and_range(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    total = loaded(wh)
    compress.compress_now(wh, "3d", now=NOW)
    late = pd.DataFrame({"metric": ["cpu"], "labels": [{"host": "b"}],
                         "ts": [pd.Timestamp("2026-11-02T12:00:05Z")], "value": [1.5]})
    wh.write_points(late)
    # host b's segment of 11-02 (one day of 10-minute points) is hot again, with the new one
    assert compressed(wh) == (144 + 1, total - 144)
    assert len(wh.points("cpu", labels={"host": "b"})) == len(frame()) // 3 + 1


def test_irregular_microsecond_timestamps_round_trip(wh):
    rng = np.random.default_rng(3)
    gaps = rng.choice([1, 7, 999, 1_000_001, 3_599_999_999], size=2500)  # µs, 2.5 segments
    ts = pd.Timestamp("2026-11-01T00:00:00Z") + pd.to_timedelta(np.cumsum(gaps), unit="us")
    ts = ts[ts < pd.Timestamp("2026-11-02T00:00:00Z")]
    data = pd.DataFrame({"metric": "odd", "labels": [{}] * len(ts), "ts": ts,
                         "value": rng.normal(0, 1e6, len(ts))})
    wh.write_points(data)
    run(wh, "refresh_rollups")
    before = wh.points("odd")
    compress.compress_now(wh, "1d", now=NOW)
    if wh.backend.capabilities.native_partitions:
        assert compressed(wh) == (0, len(ts))
    pd.testing.assert_frame_equal(wh.points("odd"), before)
    assert (wh.points("odd")["ts"].to_numpy() == ts.to_numpy()).all()


def test_cli_compress_and_policy(database_url):
    from click.testing import CliRunner

    from warehouse import Warehouse
    from warehouse.cli import main

    with Warehouse(database_url) as wh:
        total = loaded(wh)

    def cli(*args):
        result = CliRunner().invoke(main, [*args, "--url", database_url],
                                    catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    assert json.loads(cli("compress", "policy", "--format", "json")) == {
        "table": "points", "compress_after": None}
    assert json.loads(cli("compress", "policy", "--after", "3d", "--format", "json")) == {
        "table": "points", "compress_after": "P3DT0H0M0S"}
    assert "compress_after  P3DT0H0M0S" in cli("compress", "policy")
    out = cli("compress", "--now", str(NOW))  # the policy's age
    assert (f"compressed {DAYS} chunk(s): {total} rows" in out
            or f"sorted {DAYS} chunk(s) by series: {total} rows" in out)
    assert "compressed 0 chunk(s)" in cli("compress", "--older-than", "1d", "--now", str(NOW))
    assert json.loads(cli("compress", "policy", "--remove", "--format", "json"))["removed"] is True
    assert json.loads(cli("compress", "policy", "--format", "json"))["compress_after"] is None


def test_sql_retention_keeps_compressed_rows_of_an_archived_metric(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("the SQL-only retention (pg_cron) exists on PostgreSQL")
    total = loaded(wh)
    compress.compress_now(wh, "3d", now=NOW)
    wh.set_retention("points", "8d")
    wh.set_retention("points", "7d", archive=True, metric="mem")  # not archived yet
    with wh.engine.begin() as conn:
        conn.execute(text("SELECT wh_apply_retention(:now)"), {"now": NOW})
    hot, packed = compressed(wh)
    assert hot + packed == total  # the mem rows of 11-01..11-03 hold their chunks back


def test_write_waits_for_a_compression_in_progress(wh):
    """A write into a chunk being compressed waits for the compression's commit, then decodes
    what it overlaps: the duplicate stays one row, the new point is added once."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB's single writer already serialises the job and ingest")
    total = loaded(wh)
    chunk = wh.show_chunks("points")["chunk_name"].iloc[1]  # 11-02
    stored = frame().iloc[[200]]
    late = pd.concat([stored, stored.assign(ts=stored["ts"] + pd.Timedelta(minutes=1))])
    results = []
    with wh.engine.connect() as conn:
        conn.execute(text("SELECT * FROM wh_compress_chunk(:c)"), {"c": chunk})
        writer = threading.Thread(target=lambda: results.append(wh.write_points(late)))
        writer.start()
        writer.join(2)  # it waits on the chunk's compress key (if it got that far)
        conn.commit()
    writer.join(60)
    assert results and results[0].written == 1
    hot, packed = compressed(wh)
    assert hot + packed == total + 1
    assert len(wh.points("cpu")) == len(frame()) + 1


def test_value_forms_keep_every_value_exactly(wh):
    """Each segment takes the narrowest form that gives its values back bit for bit: integer[]
    for integers (not -0.0, whose sign an integer loses), integer[] of value * 10^d for 1-3
    decimals, real[] for values float4 holds, float8[] otherwise. NaN, ±inf, -0.0, and values
    a cast would overflow or underflow on (written by SQL clients: ingest refuses non-finite
    values) come back as they were."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    rng = np.random.default_rng(5)
    n = 1400  # one minute apart on 11-01: two segments per series
    ints = rng.integers(-1000, 1000, n).astype(float)
    cases = {
        "int": np.r_[ints[:-2], 2147483647.0, -2147483648.0],
        "int_negative_zero": np.r_[ints[:-1], 0.0],  # the 0.0 becomes -0.0 below
        "decimal": np.round(rng.normal(0, 1e3, n), 2),
        "decimal_small": np.round(rng.normal(0, 1, n), 3),
        "decimal_negative_zero": np.round(rng.normal(0, 10, n), 1),  # -0.0 below
        "real": rng.normal(0, 1e3, n).astype(np.float32).astype(float),
        "float": rng.normal(0, 1e3, n),
        "special": ints,  # NaN, inf, -inf below
        "tiny": ints * 1e-100,  # as real: underflow (squares stay in range for the rollups)
        "huge": ints * 1e97,  # as real: overflow (within the ±1e100 ingest accepts)
        "past_int": ints + 2.0**31,  # beyond integer; float4 cannot hold them all
    }
    ts = pd.date_range("2026-11-01", periods=n, freq="1min", tz="UTC")
    wh.write_points(pd.concat([pd.DataFrame({"metric": name, "labels": [{}] * n, "ts": ts,
                                             "value": values})
                               for name, values in cases.items()], ignore_index=True))
    with wh.engine.begin() as conn:
        for metric, value, at in (("int_negative_zero", "-0", -1), ("special", "NaN", 3),
                                  ("decimal_negative_zero", "-0", 2),
                                  ("special", "Infinity", 1200), ("special", "-Infinity", -1)):
            conn.execute(text(
                "UPDATE points SET value = CAST(:v AS double precision) WHERE ts = :ts "
                "AND series_id = (SELECT series_id FROM series WHERE metric = :m)"),
                {"v": value, "ts": ts[at], "m": metric})
    run(wh, "refresh_rollups")
    before = {name: wh.points(name)["value"].to_numpy() for name in cases}
    compress.compress_now(wh, "1d", now=NOW)
    assert compressed(wh) == (0, n * len(cases))
    for name in cases:
        after = wh.points(name)["value"].to_numpy()
        assert after.view("i8").tolist() == before[name].view("i8").tolist(), name
    assert np.signbit(wh.points("int_negative_zero")["value"].iloc[-1])
    with wh.engine.connect() as conn:
        forms = dict(conn.execute(text(
            "SELECT s.metric, string_agg(CASE WHEN c.vals_int IS NOT NULL "
            "THEN 'int' || c.vals_decimals "
            "WHEN c.vals_real IS NOT NULL THEN 'real' ELSE 'float8' END, ',' "
            "ORDER BY c.ts_min) FROM points_compressed c JOIN series s USING (series_id) "
            "GROUP BY s.metric")).fetchall())
    # *_negative_zero: the segment holding -0.0 takes another form than the other one
    assert forms == {
        "int": "int0,int0", "int_negative_zero": "int0,real", "decimal": "int2,int2",
        "decimal_small": "int3,int3", "decimal_negative_zero": "float8,int1",
        "real": "real,real",
        "float": "float8,float8", "special": "float8,float8", "tiny": "float8,float8",
        "huge": "float8,float8", "past_int": "float8,float8"}


def test_one_point_segments_and_every_decode_agree(wh):
    """A segment of one point (step 0), regular and irregular segments give the same points
    through raw reads (one decode function per form, migration 0013) as through all_points
    (wh_segment_points) and as before compression."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    regular = pd.date_range("2026-11-01", periods=1500, freq="10s", tz="UTC")
    irregular = pd.Timestamp("2026-11-02", tz="UTC") + pd.to_timedelta(
        np.cumsum(np.random.default_rng(7).integers(1, 10**7, 1200)), unit="us")
    single = pd.DatetimeIndex([pd.Timestamp("2026-11-03T05:06:07.000008Z")])
    data = pd.concat([pd.DataFrame({"metric": name, "labels": [{}] * len(ts), "ts": ts,
                                    "value": np.arange(len(ts)) * 0.25})
                      for name, ts in (("regular", regular), ("irregular", irregular),
                                       ("single", single))], ignore_index=True)
    wh.write_points(data)
    run(wh, "refresh_rollups")
    names = ["regular", "irregular", "single"]
    before = {name: wh.points(name) for name in names}
    every_point = "SELECT series_id, ts, value FROM all_points ORDER BY series_id, ts"
    all_before = wh.sql(every_point)
    compress.compress_now(wh, "1d", now=NOW)
    assert compressed(wh) == (0, len(data))
    with wh.engine.connect() as conn:
        forms = conn.execute(text("SELECT count(*) FILTER (WHERE ts_step = 0), "
                                  "count(*) FILTER (WHERE ts_step > 0), "
                                  "count(*) FILTER (WHERE ts_step IS NULL) "
                                  "FROM points_compressed")).one()
    assert tuple(forms) == (1, 2, 2)
    for name in names:
        pd.testing.assert_frame_equal(wh.points(name), before[name], obj=name)
    pd.testing.assert_frame_equal(wh.sql(every_point), all_before)


def test_raw_read_of_many_segments_can_run_in_parallel(wh):
    """The decode of a raw read is a plain function scan per segment, so an aggregate over
    many segments may be split over parallel workers (under 0012 the decode was a
    parameterised subquery and no statement reading segments could use a worker)."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    from warehouse.query.archive_read import points_relation

    loaded(wh)
    compress.compress_now(wh, "3d", now=NOW)
    series_ids = wh.sql("SELECT series_id FROM series")["series_id"].tolist()
    source, params = points_relation([], series_ids, compressed=True)
    with wh.engine.connect() as conn:
        # the test's few segments are cheap: make workers free so the plan shows whether
        # the statement may use them at all
        for setting in ("parallel_setup_cost = 0", "parallel_tuple_cost = 0",
                        "min_parallel_table_scan_size = 0", "max_parallel_workers_per_gather = 2"):
            conn.execute(text(f"SET LOCAL {setting}"))
        statement = (f"SELECT series_id, max(value), count(*) FROM {source} "
                     f"GROUP BY series_id")
        plan = "\n".join(conn.execute(text("EXPLAIN " + statement), params).scalars())
        assert "Gather" in plan and "Partial" in plan, plan
        counts = conn.execute(text(statement), params).fetchall()
    assert sum(n for _, _, n in counts) == len(frame()) * 2


def test_raw_reads_bounded_inside_segments(wh):
    """A regular segment is sliced to the read's [start, end) before decoding (0014): bounds
    on a point, a microsecond either side, between points, across two segments, before,
    after and around a one-point segment give the rows they gave hot."""
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("DuckDB keeps no segments")
    ts = pd.date_range("2026-11-01T01:00:00Z", periods=1500, freq="10s")  # 1000 + 500
    wh.write_points(pd.concat([
        pd.DataFrame({"metric": "steady", "labels": [{}] * len(ts), "ts": ts,
                      "value": np.arange(len(ts), dtype=float)}),
        pd.DataFrame({"metric": "once", "labels": [{}], "ts": [ts[5]], "value": [7.0]})],
        ignore_index=True))
    run(wh, "refresh_rollups")
    us = pd.Timedelta(microseconds=1)
    windows = [(ts[10], ts[20]), (ts[10] + us, ts[20] - us), (ts[10] - us, ts[20] + us),
               (ts[10] + pd.Timedelta(seconds=3), ts[11] + pd.Timedelta(seconds=3)),
               (ts[990], ts[1010]), (ts[0] - pd.Timedelta(days=1), ts[3]),
               (ts[1497], ts[-1] + pd.Timedelta(days=1)), (ts[5], ts[5] + us),
               (ts[5] - us, ts[5]), (ts[0] - pd.Timedelta(days=1), None), (None, ts[1200])]
    before = {(name, i): wh.points(name, a, b) for name in ("steady", "once")
              for i, (a, b) in enumerate(windows)}
    compress.compress_now(wh, "1d", now=NOW)
    assert compressed(wh) == (0, len(ts) + 1)
    for (name, i), expected in before.items():
        a, b = windows[i]
        pd.testing.assert_frame_equal(wh.points(name, a, b), expected, obj=f"{name} {i}")
    assert len(before[("steady", 0)]) == 10 and len(before[("once", 7)]) == 1
