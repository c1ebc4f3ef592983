"""Points: ingest, idempotency, all-or-nothing batches, chunks and bucketed queries."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import UnknownNameError, ValidationError


def frame(n=10, metric="cpu", start="2026-11-25", freq="1min", hosts=("a", "b"), seed=0):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({
        "metric": metric,
        "labels": [{"host": hosts[i % len(hosts)]} for i in range(n)],
        "ts": ts,
        "value": rng.normal(50, 10, n),
    })


def test_roundtrip_keeps_microseconds_and_values(wh):
    df = frame(6)
    df["ts"] = df["ts"] + pd.to_timedelta([1, 22, 333, 4_444, 55_555, 666_666], unit="us")
    assert wh.write_points(df).written == 6
    out = wh.points("cpu").sort_values("ts").reset_index(drop=True)
    assert out["ts"].tolist() == sorted(df["ts"].tolist())
    expected = df.sort_values("ts")["value"].to_numpy()
    np.testing.assert_array_equal(out["value"].to_numpy(), expected)
    assert set(out["host"]) == {"a", "b"}


def test_replaying_a_batch_changes_nothing(wh):
    df = frame(100)
    first = wh.write_points(df)
    again = wh.write_points(df)
    assert (first.written, again.written, again.skipped) == (100, 0, 100)
    # A batch that overlaps half of what is stored writes only the new half.
    overlap = pd.concat([df.iloc[50:], frame(50, start="2026-11-26")])
    assert wh.write_points(overlap).written == 50
    assert len(wh.points("cpu")) == 150


def test_duplicates_inside_one_batch_keep_the_last(wh):
    df = frame(3)
    dup = df.iloc[[0]].assign(value=999.0)
    result = wh.write_points(pd.concat([df, dup], ignore_index=True))
    assert result.written == 3 and result.received == 4
    stored = wh.points("cpu").set_index("ts")["value"]
    assert stored[df["ts"].iloc[0]] == 999.0


def test_bad_row_rejects_the_whole_batch(wh):
    df = frame(20)
    df.loc[13, "value"] = np.nan
    with pytest.raises(ValidationError) as info:
        wh.write_points(df)
    assert "row 13" in str(info.value) and "'value'" in str(info.value)
    with pytest.raises(UnknownNameError):
        wh.points("cpu")  # nothing at all was written, not even the series' points


@pytest.mark.parametrize("when", ["1971-03-04T05:06:07+00:00", "1999-12-31T23:59:59.999999+00:00",
                                  "2009-06-01T00:00:00+02:00", "2031-01-01T00:00:00+00:00",
                                  "2090-07-15T12:00:00-05:00"])
def test_any_timestamp_lands_in_a_chunk(wh, when):
    df = pd.DataFrame({"metric": "m", "ts": [pd.Timestamp(when)], "value": [1.0]})
    assert wh.write_points(df).written == 1
    chunks = wh.show_chunks("points")
    ts = pd.Timestamp(when).tz_convert("UTC")
    holding = chunks[(chunks["range_start"] <= ts) & (ts < chunks["range_end"])]
    assert len(holding) == 1 and int(holding["rows"].iloc[0]) == 1
    assert wh.points("m")["ts"].tolist() == [ts]


def test_chunks_follow_the_interval_and_drop_whole_chunks(wh):
    df = frame(24 * 6, freq="1h", start="2026-11-01")  # 6 days, 1-day chunks
    wh.write_points(df)
    chunks = wh.show_chunks("points")
    assert len(chunks) == 6
    assert ((chunks["range_end"] - chunks["range_start"]) == pd.Timedelta("1D")).all()
    assert chunks["rows"].sum() == 144
    dropped = wh.drop_chunks("points", "2026-11-03T12:00:00+00:00")
    assert len(dropped) == 2  # the chunk holding 11-03 12:00 is not over yet: it stays
    remaining = wh.points("cpu")
    assert remaining["ts"].min() == pd.Timestamp("2026-11-03", tz="UTC")
    assert len(remaining) == 24 * 4


def test_chunk_interval_is_configurable_per_table(wh):
    wh.set_chunk_interval("points", "6h")
    wh.write_points(frame(24, freq="1h", start="2026-11-01"))
    chunks = wh.show_chunks("points")
    assert len(chunks) == 4
    assert ((chunks["range_end"] - chunks["range_start"]) == pd.Timedelta("6h")).all()
    with pytest.raises(UnknownNameError):
        wh.set_chunk_interval("nope", "1d")


def test_rows_inserted_outside_chunks_land_in_default_and_maintenance_moves_them(wh):
    if not wh.backend.capabilities.native_partitions:
        pytest.skip("chunks are ranges of one table on this engine: nothing can miss them")
    with wh.engine.begin() as conn:
        conn.execute(text("INSERT INTO points (ts, series_id, value) VALUES "
                          "('1990-05-05 10:00+00', 1, 1.0), ('2044-02-02 10:00+00', 1, 2.0)"))
        assert conn.execute(text("SELECT count(*) FROM points_default")).scalar_one() == 2
    moved = wh.maintain(now=pd.Timestamp("2026-11-26", tz="UTC"))
    assert moved["rows_moved"] == 2
    with wh.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM points_default")).scalar_one() == 0
        assert conn.execute(text("SELECT count(*) FROM points")).scalar_one() == 2
    names = set(wh.show_chunks("points")["chunk_name"])
    assert {"points_19900505_000000", "points_20440202_000000"} <= names
    # maintenance also made chunks ahead of "now"
    assert "points_20261127_000000" in names


@pytest.mark.parametrize("agg", ["mean", "min", "max", "sum", "count", "first", "last",
                                 "p50", "p95", "p99"])
def test_bucketed_aggregates_match_pandas(wh, agg):
    df = frame(600, freq="37s", seed=3)
    wh.write_points(df)
    out = wh.points("cpu", every="15m", agg=agg)
    df["bucket"] = df["ts"].dt.floor("15min")
    funcs = {"mean": "mean", "min": "min", "max": "max", "sum": "sum", "count": "count",
             "first": "first", "last": "last", "p50": lambda s: s.quantile(0.5),
             "p95": lambda s: s.quantile(0.95), "p99": lambda s: s.quantile(0.99)}
    hosts = df["labels"].map(lambda d: d["host"])
    expected = df.assign(host=hosts).sort_values("ts").groupby(["host", "bucket"])["value"].agg(
        funcs[agg])
    got = out.set_index(["host", "ts"])["value"]
    got.index.names = ["host", "bucket"]
    pd.testing.assert_series_equal(got.sort_index(), expected.sort_index().astype(float),
                                   check_names=False, rtol=1e-9)


def test_group_by_labels_and_gap_filling(wh):
    df = frame(8, freq="1h", hosts=("a", "b"))
    df = df[df["ts"].dt.hour != 3]  # a hole at 03:00
    wh.write_points(df)
    total = wh.points("cpu", every="1h", agg="count", by=[], fill="zero",
                      start="2026-11-25T00:00:00Z", end="2026-11-25T10:00:00Z")
    assert len(total) == 10
    assert total["value"].tolist() == [1, 1, 1, 0, 1, 1, 1, 1, 0, 0]
    per_host = wh.points("cpu", every="2h", agg="sum", by=["host"])
    assert set(per_host["host"]) == {"a", "b"}
    prev = wh.points("cpu", every="1h", labels={"host": "b"}, fill="previous")
    assert prev["value"].isna().sum() == 0 and len(prev) == 7


def test_weekly_buckets_start_on_monday_even_before_the_origin(wh):
    ts = pd.to_datetime(["1999-12-29T12:00:00Z", "2026-11-26T12:00:00Z"])
    wh.write_points(pd.DataFrame({"metric": "w", "ts": ts, "value": [1.0, 2.0]}))
    out = wh.points("w", every="1w", agg="sum")
    assert [t.day_of_week for t in out["ts"]] == [0, 0]
    assert out["ts"].tolist() == [pd.Timestamp("1999-12-27", tz="UTC"),
                                  pd.Timestamp("2026-11-23", tz="UTC")]


def test_query_errors_are_clear(wh):
    wh.write_points(frame(3))
    with pytest.raises(UnknownNameError, match="unknown metric 'nope'"):
        wh.points("nope")
    with pytest.raises(ValueError, match="no time zone"):
        wh.points("cpu", start="2026-11-25 00:00")
    with pytest.raises(ValueError, match="unknown aggregate"):
        wh.points("cpu", every="1h", agg="median")
    with pytest.raises(ValueError, match="interval"):
        wh.points("cpu", every="fortnight")
    assert wh.points("cpu", labels={"host": "zzz"}).empty


def test_run_id_and_arrow_and_records_inputs(wh):
    import pyarrow as pa

    run = "0b7f3c1e-8d2a-4e4b-9f67-1a2b3c4d5e6f"
    records = [{"metric": "rows", "labels": {"step": "load"}, "ts": pd.Timestamp("2026-11-25T01:00Z"),
                "value": 5, "run_id": run}]
    assert wh.write_points(records).written == 1
    table = pa.table({"metric": ["rows"], "ts": pa.array([pd.Timestamp("2026-11-25T02:00Z")],
                                                          pa.timestamp("us", "UTC")),
                      "value": [6.0], "labels": ['{"step": "load"}']})
    assert wh.write_points(table).written == 1
    out = wh.points("rows")
    assert out["run_id"].tolist() == [run, None]
    assert out["series_id"].nunique() == 1


def test_label_filter_accepts_a_set_of_values(wh):
    wh.write_points(frame(9, hosts=("a", "b", "c")))
    both = wh.points("cpu", labels={"host": ["a", "c"]})
    assert set(both["host"]) == {"a", "c"} and len(both) == 6
    grouped = wh.points("cpu", labels={"host": {"a", "b"}}, every="1h", agg="max", by=["host"])
    assert grouped["host"].tolist() == ["a", "b"]


def test_fill_over_the_data_span_is_bounded(wh):
    # Two points eight millennia apart: filling every minute between them would be ~4e9 rows.
    wh.write_points(pd.DataFrame({"metric": "far", "ts": [
        pd.Timestamp("1600-01-01", tz="UTC"), pd.Timestamp("9000-01-01", tz="UTC")],
        "value": [1.0, 2.0]}))
    with pytest.raises(ValueError, match="fill would make more than"):
        wh.points("far", every="1m", fill="previous")
    assert len(wh.points("far", every="1m")) == 2  # without fill: only buckets with data


def test_a_query_sees_every_commit_made_since_the_last_query(wh, database_url, monkeypatch,
                                                             tmp_path):
    """The state a query starts from (series, rollup watermarks, pending invalidations) is
    remembered on DuckDB only while no commit has happened: writes through a second
    Warehouse on the same file (spelled differently), and SQL committed on the engine, are
    seen by the next query. A stale 'nothing pending' would answer from outdated rollups."""
    from warehouse import Warehouse

    wh.write_points(frame(180, hosts=("a",), start="2026-11-25T00:00Z"))
    wh.refresh_rollups(now=pd.Timestamp("2026-11-26T00:00Z"))
    before = wh.points("cpu", every="1h", agg="sum", with_labels=False)
    assert len(before) == 3
    if database_url.startswith("duckdb:///"):
        monkeypatch.chdir(tmp_path)  # the same file by a relative path
        other_url = "duckdb:///warehouse.duckdb"
    else:
        other_url = database_url
    other = Warehouse(other_url)
    try:
        late = frame(1, hosts=("a",), start="2026-11-25T00:30:30Z").assign(value=1000.0)
        other.write_points(late)  # late: invalidates a materialised hour
        other.write_points(frame(2, hosts=("b",), start="2026-11-25T00:00Z"))  # a new series
    finally:
        other.close()
    after = wh.points("cpu", every="1h", agg="sum", with_labels=["host"])
    raw = wh.points("cpu", every="1h", agg="sum", with_labels=["host"], rollups=False)
    pd.testing.assert_frame_equal(after, raw)
    assert set(after["host"]) == {"a", "b"}
    first_hour = after[(after["host"] == "a")]["value"].iloc[0]
    assert first_hour == pytest.approx(before["value"].iloc[0] + 1000.0)
    with wh.engine.begin() as conn:
        conn.execute(text("DELETE FROM rollup_invalidations"))
        conn.execute(text("DELETE FROM points_1h"))
        conn.execute(text("UPDATE rollup_watermarks SET watermark = NULL"))
    # Nothing materialised any more: the next query must not plan from the old watermark.
    pd.testing.assert_frame_equal(
        wh.points("cpu", every="1h", agg="sum", with_labels=["host"]), raw)


@pytest.fixture(params=["idle", "recent"])
def request_kind(request):
    return request


def test_a_pooled_connection_the_server_closed_is_replaced(wh, database_url, monkeypatch,
                                                           request_kind):
    """A connection that sat in the pool is pinged before use, and a dead one replaced, so
    the query after a server restart (here: its backend terminated) succeeds."""
    if not database_url.startswith("postgresql"):
        pytest.skip("an embedded file has no server to lose")
    import warehouse.backends.postgresql as pg
    from warehouse import Warehouse

    wh.write_points(frame(5))
    assert len(wh.points("cpu")) == 5
    other = Warehouse(database_url)  # a connection outside wh's pool ends all of wh's
    try:
        with other.engine.connect() as admin:
            ended = admin.execute(text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()")).scalar()
    finally:
        other.close()
    assert ended >= 1
    if request_kind.param == "recent":
        # Used a moment ago, so not pinged for being idle: the server's goodbye waiting on
        # its socket gets it pinged (and replaced) all the same.
        monkeypatch.setattr(pg, "_PING_AFTER_IDLE_S", 3600.0)
        time.sleep(0.2)  # the FATAL message reaches the socket
    else:
        monkeypatch.setattr(pg, "_PING_AFTER_IDLE_S", 0.0)  # the pooled one counts as idle
    assert len(wh.points("cpu")) == 5


def test_answers_are_the_same_without_pandas_private_constructor(wh, monkeypatch):
    # query/answer.py builds answers with DataFrame._from_arrays, which pandas may drop or
    # change: then the public constructor gives the same frames.
    df = frame(8)
    df["labels"] = [{"host": "b"} if i % 2 else {"host": "a", "dc": "x"} for i in range(8)]
    wh.write_points(df)
    queries = ({}, {"every": "1h", "agg": "max"}, {"every": "1h", "agg": "max", "by": ["dc"]})
    fast = [wh.points("cpu", **options) for options in queries]
    monkeypatch.delattr(pd.DataFrame, "_from_arrays")
    for options, expected in zip(queries, fast):
        pd.testing.assert_frame_equal(wh.points("cpu", **options), expected)


def test_answers_keep_their_column_types_and_a_changed_answer_changes_nothing(wh):
    # Answers are built from typed columns without pandas' inference (query/answer.py) and
    # a repeated query reuses the label columns taken for the last one: the types must be
    # what pandas infers from the values, and changing an answer in place must not reach
    # the next one.
    df = frame(8)
    df["labels"] = [{"host": "b"} if i % 2 else {"host": "a", "dc": "x"} for i in range(8)]
    wh.write_points(df)
    expected = {"ts": "datetime64[us, UTC]", "series_id": "int64", "value": "float64",
                "run_id": "object", "labels": "object", "dc": "str", "host": "str"}
    for options in ({}, {"every": "1h", "agg": "max"}):
        first = wh.points("cpu", **options)
        kinds = {c: str(t) for c, t in first.dtypes.items()}
        assert kinds == {c: t for c, t in expected.items() if c in kinds}
        assert first.columns.dtype == pd.Index(list(first.columns)).dtype
        again = wh.points("cpu", **options)  # the same rows: remembered label columns
        pd.testing.assert_frame_equal(first, again)
        again.loc[0, "host"] = "changed"
        again["dc"].array[0] = "changed"
        again.columns.name = "changed"
        after = wh.points("cpu", **options)
        pd.testing.assert_frame_equal(after, first)
        assert after.columns.name is None
    missing = wh.points("cpu", with_labels=["nowhere"])
    assert str(missing["nowhere"].dtype) == "object" and missing["nowhere"].isna().all()
    by = wh.points("cpu", every="1h", agg="max", by=["dc"])
    assert [str(t) for t in by.dtypes] == ["datetime64[us, UTC]", "str", "float64"]
