"""wh.frame and wh.points([...]): several metrics in one statement give the same answers as
separate wh.points calls, identically on DuckDB and PostgreSQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse import Warehouse

METRICS = ["cpu.user", "cpu.system", "cpu.idle"]
HOSTS = ["h0", "h1", "h2"]
T0 = pd.Timestamp("2026-11-20T00:00Z")


def cpu_points(seed: int = 5) -> pd.DataFrame:
    """3 hosts × 3 metrics every 10 s for 3 h; cpu.idle of h2 is missing for an hour and
    h1 has a second datacenter label value, so series do not all line up."""
    rng = np.random.default_rng(seed)
    ticks = pd.date_range(T0, periods=3 * 360, freq="10s")
    parts = []
    for h, host in enumerate(HOSTS):
        for metric in METRICS:
            ts = ticks
            if host == "h2" and metric == "cpu.idle":
                ts = ticks[(ticks < T0 + pd.Timedelta("1h")) | (ticks >= T0 + pd.Timedelta("2h"))]
            parts.append(pd.DataFrame({
                "metric": metric, "ts": ts, "host": host, "dc": "east" if h < 2 else "west",
                "value": np.round(rng.uniform(0, 100, len(ts)), 1)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture(scope="module")
def both(postgres_server, tmp_path_factory):
    data = cpu_points()
    pair = [Warehouse(f"duckdb:///{tmp_path_factory.mktemp('frame') / 'w.duckdb'}"),
            Warehouse(postgres_server.create_database("wh_frame"))]
    for wh in pair:
        wh.write_points(data, label_columns=["host", "dc"])
    yield pair
    for wh in pair:
        wh.close()


def separate(wh, every, agg, by, start=None, end=None) -> pd.DataFrame:
    """The frame computed from one wh.points call per metric, merged in pandas."""
    keys = ["ts", *(by if by is not None else ["dc", "host"])]
    merged = None
    for metric in METRICS:
        part = wh.points(metric, start, end, every=every, agg=agg, by=by)
        part = part[keys + ["value"]].rename(columns={"value": metric})
        merged = part if merged is None else merged.merge(part, on=keys, how="outer")
    order = keys[1:] + ["ts"]
    return merged.sort_values(order).reset_index(drop=True)[keys + METRICS]


@pytest.mark.storage
@pytest.mark.parametrize("agg", ["mean", "max", "min", "sum", "count", "first", "last", "p95"])
def test_bucketed_frame_equals_separate_points_calls(both, agg):
    answers = []
    for wh in both:
        got = wh.frame(METRICS, every="15m", agg=agg, by=["host"])
        want = separate(wh, "15m", agg, ["host"])
        assert len(got) == 12 * 3
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)
        answers.append(got)
    pd.testing.assert_frame_equal(*answers, rtol=1e-12)


@pytest.mark.storage
def test_frame_without_by_aligns_series_with_the_same_labels(both):
    answers = []
    for wh in both:
        got = wh.frame(METRICS, T0, T0 + pd.Timedelta("90min"), every="10m", agg="max")
        assert list(got.columns) == ["ts", "dc", "host", *METRICS]
        want = separate(wh, "10m", "max", None, T0, T0 + pd.Timedelta("90min"))
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)
        # h2 has no cpu.idle from 01:00 to 02:00: NaN there, values elsewhere.
        h2 = got[got["host"] == "h2"].set_index("ts")["cpu.idle"]
        assert h2[T0 + pd.Timedelta("70min")] != h2[T0 + pd.Timedelta("70min")]
        assert h2[T0].round(1) == h2[T0]
        answers.append(got)
    pd.testing.assert_frame_equal(*answers)


@pytest.mark.storage
def test_raw_frame_with_value_filter_equals_pandas(both):
    data = cpu_points()
    wide = data.pivot_table(index=["ts", "dc", "host"], columns="metric", values="value")
    wide = wide.reset_index()
    start, end = T0 + pd.Timedelta("30min"), T0 + pd.Timedelta("150min")
    want = wide[(wide["ts"] >= start) & (wide["ts"] < end) & (wide["cpu.user"] > 90)]
    want = want.sort_values(["dc", "host", "ts"]).reset_index(drop=True)[
        ["ts", "dc", "host", *METRICS]]
    want.columns.name = None
    answers = []
    for wh in both:
        got = wh.frame(METRICS, start, end, where="cpu.user > 90")
        assert len(got) > 50 and (got["cpu.user"] > 90).all()
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        answers.append(got)
    pd.testing.assert_frame_equal(*answers)
    for wh in both:  # the other operators, and a label filter
        got = wh.frame(METRICS, start, end, labels={"host": ["h0", "h2"]},
                       where="cpu.idle <= 10.5")
        assert set(got["host"]) == {"h0", "h2"} and (got["cpu.idle"] <= 10.5).all()
        assert len(got) == ((want_all := wide[(wide["ts"] >= start) & (wide["ts"] < end)
                                              & wide["host"].isin(["h0", "h2"])])
                            ["cpu.idle"] <= 10.5).sum()
        assert want_all is not None


@pytest.mark.storage
def test_bucketed_value_filter_applies_to_the_aggregate(both):
    for wh in both:
        full = wh.frame(METRICS, every="30m", agg="mean", by=["host"])
        got = wh.frame(METRICS, every="30m", agg="mean", by=["host"], where="cpu.user >= 50")
        want = full[full["cpu.user"] >= 50].reset_index(drop=True)
        assert 0 < len(got) < len(full)
        pd.testing.assert_frame_equal(got, want)


@pytest.mark.storage
@pytest.mark.parametrize("where, message", [
    ("cpu.nice > 3", "not one of the frame's metrics"),
    ("cpu.user >> 3", "expected '<metric> <op> <number>'"),
    ("cpu.user > 3; DROP TABLE points", "expected"),
    ("cpu.user > '3'", "expected"),
    ("cpu.user > 1e999", "finite"),
    ("cpu.user > 3 OR 1=1", "expected"),
    (90, "must be text"),
])
def test_bad_value_filters_are_refused(both, where, message):
    with pytest.raises(ValueError, match=message):
        both[0].frame(METRICS, where=where)


@pytest.mark.storage
def test_frame_errors_name_the_problem(both):
    wh = both[0]
    with pytest.raises(ValueError, match="metric 1"):
        wh.frame(["cpu.user", ""])
    with pytest.raises(ValueError, match="once"):
        wh.frame(["cpu.user", "cpu.user"])
    with pytest.raises(ValueError, match="give 'every'"):
        wh.frame(METRICS, by=["host"])
    from warehouse.errors import UnknownNameError

    with pytest.raises(UnknownNameError, match="cpu.nope"):
        wh.frame(["cpu.user", "cpu.nope"])
    empty = wh.frame(METRICS, labels={"host": "nobody"}, every="1h")
    assert empty.empty and list(empty.columns)[-3:] == METRICS


@pytest.mark.storage
@pytest.mark.parametrize("by", [None, ["host"], []])
def test_points_of_several_metrics_equal_separate_calls(both, by):
    answers = []
    for wh in both:
        got = wh.points(METRICS, every="20m", agg="p50", by=by)
        assert got.columns[1] == "metric"
        for metric in METRICS:
            one = wh.points(metric, every="20m", agg="p50", by=by)
            mine = got[got["metric"] == metric].drop(columns="metric").reset_index(drop=True)
            if by is None:  # series of several metrics come ordered by id, then time
                mine = mine.sort_values(["series_id", "ts"]).reset_index(drop=True)
            pd.testing.assert_frame_equal(mine, one, check_dtype=False)
        answers.append(got.drop(columns=["series_id"], errors="ignore"))
    pd.testing.assert_frame_equal(*answers)


@pytest.mark.storage
def test_label_columns_only_when_asked(both):
    for wh in both:
        full = wh.points("cpu.user", T0, T0 + pd.Timedelta("1min"))
        assert {"labels", "host", "dc"} <= set(full.columns)
        bare = wh.points("cpu.user", T0, T0 + pd.Timedelta("1min"), with_labels=False)
        assert list(bare.columns) == ["ts", "series_id", "value", "run_id"]
        pd.testing.assert_frame_equal(bare, full[bare.columns.tolist()])
        some = wh.points("cpu.user", T0, T0 + pd.Timedelta("1min"), with_labels=["host"])
        assert list(some.columns) == ["ts", "series_id", "value", "run_id", "host"]
        assert some["host"].tolist() == full["host"].tolist()
        with pytest.raises(ValueError, match="with_labels"):
            wh.points("cpu.user", with_labels="host")


@pytest.mark.storage
def test_series_written_elsewhere_are_seen_by_the_next_query(both):
    for wh in both:
        before = wh.points("cpu.user", T0, T0 + pd.Timedelta("10s"))  # caches the series
        other = Warehouse(wh.url)
        try:
            other.write_points(pd.DataFrame({
                "metric": ["cpu.user"], "ts": [T0], "value": [1.0],
                "labels": [{"host": "h9", "dc": "north"}]}))
        finally:
            other.close()
        after = wh.points("cpu.user", T0, T0 + pd.Timedelta("10s"))
        assert len(after) == len(before) + 1 and "h9" in set(after["host"])
        framed = wh.frame(["cpu.user", "cpu.idle"], T0, T0 + pd.Timedelta("10s"))
        assert framed.set_index("host").loc["h9", "cpu.user"] == 1.0


@pytest.mark.storage
def test_a_series_committed_out_of_id_order_is_seen(both):
    """Series ids come from a sequence: one drawn first may commit last. The cache must not
    take the newest id as proof that it has every series below it."""
    from sqlalchemy import text

    add = text("INSERT INTO series (metric, labels, labels_key) "
               "VALUES ('race.m', CAST(:k AS JSON), :k)")
    point = text("INSERT INTO points (ts, series_id, value) SELECT :ts, series_id, 1.0 "
                 "FROM series WHERE metric = 'race.m' AND labels_key = :k")
    for wh in both:
        wh.write_points(pd.DataFrame({"metric": ["race.m"], "ts": [T0], "value": [0.0],
                                      "labels": [{"host": "r0"}]}))
        first = wh.engine.connect()
        try:
            first.begin()
            first.execute(add, {"k": '{"host": "r1"}'})  # draws its id now ...
            first.execute(point, {"k": '{"host": "r1"}', "ts": T0})
            with wh.engine.begin() as second:  # ... a later id commits first
                second.execute(add, {"k": '{"host": "r2"}'})
                second.execute(point, {"k": '{"host": "r2"}', "ts": T0})
            seen = wh.points("race.m", with_labels=["host"])  # caches r0, r2
            assert sorted(seen["host"]) == ["r0", "r2"]
            first.commit()
        finally:
            first.close()
        assert sorted(wh.points("race.m", with_labels=["host"])["host"]) == ["r0", "r1", "r2"]


@pytest.mark.storage
@pytest.mark.parametrize("start", ["2000-01-02T21:00Z", "2000-01-03T00:00Z", "2000-01-03T00:20Z"])
def test_buckets_on_either_side_of_the_origin_equal_separate_points_calls(both, start):
    """A frame starting at or after the bucket origin (2000-01-03) groups on the engine's cheap
    integer bucket; one starting before it on the general floor. Both must cut buckets where
    wh.points does (25 minutes does not divide a day, so the origin decides the edges)."""
    ticks = pd.date_range("2000-01-02T20:00Z", "2000-01-03T03:00Z", freq="7min")
    edge = pd.concat([pd.DataFrame({"metric": m, "ts": ticks, "host": "e0",
                                    "value": np.arange(len(ticks)) * (k + 1.5)})
                      for k, m in enumerate(["edge.a", "edge.b"])], ignore_index=True)
    end = pd.Timestamp("2000-01-03T02:40Z")
    for wh in both:
        wh.write_points(edge, label_columns=["host"])
        for agg in ("max", "mean"):
            got = wh.frame(["edge.a", "edge.b"], start, end, every="25m", agg=agg, by=[])
            for m in ("edge.a", "edge.b"):
                want = wh.points(m, start, end, every="25m", agg=agg, by=[])
                assert list(got["ts"]) == list(want["ts"]), (agg, m)
                np.testing.assert_allclose(got[m].to_numpy(), want["value"].to_numpy(),
                                           rtol=1e-12)


def test_a_repeated_frame_is_the_same_and_a_changed_answer_changes_nothing(both):
    # Label columns are typed once per group table and the last answer's are remembered
    # (query/answer.py): each answer gets copies, so changing one in place cannot reach the
    # next.
    for wh in both:
        options = {"every": "10m", "agg": "max", "by": ["host"]}
        first = wh.frame(METRICS, T0, T0 + pd.Timedelta("1h"), **options)
        again = wh.frame(METRICS, T0, T0 + pd.Timedelta("1h"), **options)
        pd.testing.assert_frame_equal(first, again)
        again.loc[0, "host"] = "changed"
        again["host"].array[1] = "changed"
        after = wh.frame(METRICS, T0, T0 + pd.Timedelta("1h"), **options)
        pd.testing.assert_frame_equal(after, first)
        assert str(after["host"].dtype) == str(first["host"].dtype) != "object"


@pytest.mark.storage
@pytest.mark.parametrize("agg", ["mean", "max", "min", "sum", "count"])
@pytest.mark.parametrize("by", [["dc"], []])
def test_partials_of_several_series_merge_into_one_cell(both, agg, by):
    """by=["dc"] puts h0 and h1 (and by=[] every host) into one cell per metric and bucket:
    the per-series partials are merged (query/partials.py), as wh.points merges them."""
    answers = []
    for wh in both:
        # Other tests of the module write at T0 and after T0 + 3h.
        start, end = T0 + pd.Timedelta("20min"), T0 + pd.Timedelta("3h")
        got = wh.frame(METRICS, start, end, every="20m", agg=agg, by=by)
        want = separate(wh, "20m", agg, by, start, end)
        assert len(got) == 8 * (2 if by else 1)
        pd.testing.assert_frame_equal(got, want, check_dtype=False, rtol=1e-9)
        answers.append(got)
    pd.testing.assert_frame_equal(*answers, rtol=1e-12)


@pytest.mark.storage
def test_bucketed_value_filter_on_merged_cells(both):
    """The where= filter applies to the merged value; a bucket where the filtered metric has
    no value at all (cpu.idle of h2 for an hour, by=["host"]) never passes."""
    for wh in both:
        start, end = T0 + pd.Timedelta("30min"), T0 + pd.Timedelta("3h")
        full = wh.frame(METRICS, start, end, every="30m", agg="max", by=["dc"])
        got = wh.frame(METRICS, start, end, every="30m", agg="max", by=["dc"],
                       where="cpu.user < 99.5")
        want = full[full["cpu.user"] < 99.5].reset_index(drop=True)
        assert 0 < len(got) < len(full)
        pd.testing.assert_frame_equal(got, want)
        by_host = wh.frame(METRICS, start, end, every="30m", agg="min", by=["host"],
                           where="cpu.idle >= 0")
        assert len(by_host) == 3 * 5 - 2  # h2's idle is missing for two half-hour buckets
        assert by_host["cpu.idle"].notna().all()
