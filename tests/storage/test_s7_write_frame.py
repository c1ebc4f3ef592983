"""``Warehouse.write_frame`` (issue 15): a wide frame written as points answers every question
(wh.points, wh.frame with where=, buckets, labels) exactly as the same values written with
``write_points`` into another warehouse of the same engine, and as the input itself.

On DuckDB the rows also extend the pivoted copy (``readings``, duckdb_readings.py) where the
chunk range stays whole; every other write into a copied range deletes its copy. Each case
below checks which of the two happened (``reading_chunks``) and that frames of several
metrics, read from the copy or from points, still answer as the warehouse that never had a
copy at write. On PostgreSQL no copy is made at write; the compress job makes it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_archive_identity import other_warehouse
from test_readings_copy import assert_same, copy_rows, db, is_duckdb
from test_review_s5_copy import frame as read_frame

from warehouse.errors import ValidationError

DAY1 = pd.Timestamp("2026-11-01T00:00:00Z")
DAY2 = DAY1 + pd.Timedelta(days=1)
DAY3 = DAY2 + pd.Timedelta(days=1)
NOW = pd.Timestamp("2026-11-12T00:00:00Z")
METRICS = ["cpu", "mem", "disk"]
LABELS = ["host"]


@pytest.fixture(name="ref")
def reference_warehouse(wh, request, tmp_path):
    """A warehouse on the same engine as ``wh`` that is only ever written with
    write_points (so DuckDB never copies at write there)."""
    other = other_warehouse(wh, request, tmp_path)
    yield other
    other.close()


def wide(start, periods: int, *, hosts="abc", metrics=METRICS, freq="10min", seed=0,
         gaps=0.15) -> pd.DataFrame:
    """A row per host and instant from ``start``: a column per metric, two-decimal values,
    about ``gaps`` of the cells missing, and host c never has disk (a label set lacking a
    metric entirely)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(pd.Timestamp(start), periods=periods, freq=freq)
    frame = pd.DataFrame({"ts": ts.repeat(len(hosts)), "host": list(hosts) * periods})
    for metric in metrics:
        values = np.round(rng.normal(50, 10, len(frame)), 2)
        values[rng.random(len(frame)) < gaps] = np.nan
        if metric == "disk":
            values[(frame["host"] == "c").to_numpy()] = np.nan
        frame[metric] = values
    return frame


def narrow(frame: pd.DataFrame) -> pd.DataFrame:
    """The same values a row per point, for write_points."""
    metrics = [c for c in frame.columns if c not in ("ts", "run_id", *LABELS)]
    long = frame.melt(id_vars=["ts", *LABELS], value_vars=metrics, var_name="metric")
    return long[long["value"].notna()].reset_index(drop=True)


def write_both(wh, ref, frame: pd.DataFrame):
    """The frame into ``wh`` with write_frame, into ``ref`` with write_points: the same
    counts of points received, written and skipped."""
    got = wh.write_frame(frame, label_columns=LABELS)
    want = ref.write_points(narrow(frame), label_columns=LABELS)
    assert (got.received, got.written, got.skipped) == (want.received, want.written,
                                                        want.skipped)
    return got


def questions(wh, start, end, metrics=METRICS) -> dict:
    f = wh.frame
    rows = ["host", "ts"]
    return {
        "frame": f(metrics, start, end),
        "where": f(metrics, start, end, where="cpu > 55"),
        "where_mem": f(metrics, start, end, where="mem <= 45.5"),
        "hosts": f(metrics, start, end, labels={"host": ["a", "c"]}),
        "inside": f(metrics, start + pd.Timedelta(hours=3), start + pd.Timedelta(hours=5)),
        "mean_1h": f(metrics, start, end, every="1h", agg="mean", by=["host"]),
        "max_6h_all": f(metrics, start, end, every="6h", agg="max", by=[]),
        "count_2h": f(metrics, start, end, every="2h", agg="count"),
        "sum_3h_where": f(metrics, start, end, every="3h", agg="sum", by=["host"],
                          where="cpu > 50"),
        "p95_4h": f(metrics, start, end, every="4h", agg="p95", by=["host"]),
        "points": wh.points("cpu", start, end).drop(columns="series_id")
                    .sort_values(rows).reset_index(drop=True),
        "points_1h": wh.points("mem", start, end, every="1h", agg="min", rollups=False)
                       .drop(columns="series_id", errors="ignore")
                       .sort_values(rows).reset_index(drop=True),
        "last": wh.points("disk", last=2).drop(columns="series_id")
                  .sort_values(rows).reset_index(drop=True),
    }


FRAMES = ["frame", "where", "where_mem", "hosts", "inside", "mean_1h", "max_6h_all",
          "count_2h", "sum_3h_where"]


def check(wh, ref, start, end, metrics=METRICS) -> dict:
    """Every question answers in ``wh`` as in ``ref``; the frames also as they do from
    ``wh``'s points alone (never its copy). Returns the answers."""
    got = questions(wh, start, end, metrics)
    assert_same(questions(ref, start, end, metrics), got)
    plain = read_frame(wh, metrics, start, end, copies=False)
    assert_same({"frame": plain}, {"frame": got["frame"]})
    where = read_frame(wh, metrics, start, end, where="cpu > 55", copies=False)
    assert_same({"where": where}, {"where": got["where"]})
    bucketed = read_frame(wh, metrics, start, end, every="3h", agg="sum", by=["host"],
                          where="cpu > 50", copies=False)
    assert_same({"sum_3h_where": bucketed}, {"sum_3h_where": got["sum_3h_where"]})
    return got


def as_written(frames: list[pd.DataFrame], start, end, metrics=METRICS) -> pd.DataFrame:
    """The frame the inputs make: the first value of a (host, instant, metric) stays (later
    ones are skipped as stored), rows without a value of ``metrics`` left out."""
    long = narrow(pd.concat(frames, ignore_index=True))
    long = long[(long["ts"] >= start) & (long["ts"] < end) & long["metric"].isin(metrics)]
    long = long.drop_duplicates(["host", "ts", "metric"], keep="first")
    out = long.pivot(index=["ts", "host"], columns="metric", values="value")
    out = out.reindex(columns=metrics).reset_index()
    out.columns.name = None
    return out.sort_values(["host", "ts"]).reset_index(drop=True)[["ts", "host", *metrics]]


def assert_input(answer: pd.DataFrame, frames: list[pd.DataFrame], start, end,
                 metrics=METRICS) -> None:
    want = as_written(frames, start, end, metrics)
    got = answer.sort_values(["host", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


def reads_copy(wh, copies_used: list, start, end, metrics=METRICS) -> bool:
    """Whether a plain frame of ``metrics`` over [start, end) reads the pivoted copy."""
    copies_used.clear()
    wh.frame(metrics, start, end)
    return copies_used == [True]


def listed(wh) -> list[tuple]:
    """reading_chunks as (start day, end, copied); PostgreSQL lists only what its job made."""
    rows = db(wh, "SELECT chunk_start, chunk_end, copied FROM reading_chunks ORDER BY 1")
    return [(str(pd.Timestamp(a).date()), str(pd.Timestamp(b).date()), c) for a, b, c in rows]


# -- the same answers as write_points ---------------------------------------------------------

def test_a_wide_frame_answers_as_its_points(wh, ref, copies_used):
    frame = wide(DAY1, 144)
    result = write_both(wh, ref, frame)
    cells = int(frame[METRICS].notna().to_numpy().sum())
    assert (result.received, result.written, result.skipped) == (cells, cells, 0)
    got = check(wh, ref, DAY1, DAY2)
    assert_input(got["frame"], [frame], DAY1, DAY2)
    assert_input(got["inside"], [frame], DAY1 + pd.Timedelta(hours=3),
                 DAY1 + pd.Timedelta(hours=5))
    assert len(got["where"]) > 50 and (got["where"]["cpu"] > 55).all()
    # host c has no disk at all: it is no series, its rows show disk as NaN
    assert got["frame"].loc[got["frame"]["host"] == "c", "disk"].isna().all()
    assert set(wh.points("disk")["host"]) == {"a", "b"}
    if is_duckdb(wh):  # a) the fresh chunk is listed as copied, with its bounds
        assert listed(wh) == [("2026-11-01", "2026-11-02", True)]
        assert copy_rows(wh, "2026-11-01") == int(frame[METRICS].notna().any(axis=1).sum())
        assert reads_copy(wh, copies_used, DAY1, DAY2)
    else:
        assert listed(wh) == []


def test_replaying_a_wide_frame_writes_nothing(wh, ref, copies_used):
    frame = wide(DAY1, 72)
    write_both(wh, ref, frame)
    again = write_both(wh, ref, frame)
    cells = int(frame[METRICS].notna().to_numpy().sum())
    assert (again.received, again.written, again.skipped) == (cells, 0, cells)
    shuffled = frame.sample(frac=1.0, random_state=3)  # any row order
    assert wh.write_frame(shuffled, label_columns=LABELS).written == 0
    if is_duckdb(wh):  # nothing changed: the copy stays
        assert listed(wh) == [("2026-11-01", "2026-11-02", True)]
        assert reads_copy(wh, copies_used, DAY1, DAY2)
    check(wh, ref, DAY1, DAY2)


def test_a_bad_row_writes_nothing(wh, ref):
    frame = wide(DAY1, 48)
    write_both(wh, ref, frame.iloc[:30])
    before = check(wh, ref, DAY1, DAY2)
    chunks = listed(wh)
    bad = wide(DAY1 + pd.Timedelta(hours=12), 48, seed=5)
    bad.loc[bad.index[-1], "mem"] = np.inf
    with pytest.raises(ValidationError) as info:
        wh.write_frame(bad, label_columns=LABELS)
    assert [(p.row, p.field) for p in info.value.problems] == [(bad.index[-1], "mem")]
    also_bad = wide(DAY2, 10, seed=6).assign(host=["a", "b", "c\x00"] * 10)
    with pytest.raises(ValidationError):
        wh.write_frame(also_bad, label_columns=LABELS)
    assert listed(wh) == chunks
    assert_same(before, check(wh, ref, DAY1, DAY2))
    assert wh.points("cpu", DAY2, DAY3).empty


def test_run_ids_go_with_every_value_of_their_row(wh):
    run = "6f1c2a56-3c4e-4f7e-9d7a-0d3c1e0b5a11"
    frame = wide(DAY1, 6, gaps=0.0).assign(run_id=[run] * 3 + [None] * 15)
    wh.write_frame(frame, label_columns=LABELS)
    for metric in ("cpu", "mem"):
        points = wh.points(metric)
        tagged = points[points["run_id"].notna()]
        assert sorted(tagged["host"]) == ["a", "b", "c"] and set(tagged["ts"]) == {DAY1}
        assert {str(r) for r in tagged["run_id"]} == {run}


# -- DuckDB's copy kept whole (the same public answers on PostgreSQL) -------------------------

def test_new_instants_extend_a_copied_chunk(wh, ref, copies_used):
    """b) instants between and after those copied, a new label set and a new metric at new
    instants: the copy is extended, still listed, and answers as the points do."""
    first = wide(DAY1, 72)
    between = wide(DAY1 + pd.Timedelta(minutes=5), 72, seed=1)
    later = wide(DAY1 + pd.Timedelta(hours=12), 72, hosts="abcd", seed=2,
                 metrics=[*METRICS, "net"])
    frames = []
    for part in (first, between, later):
        write_both(wh, ref, part)
        frames.append(part)
        if is_duckdb(wh):
            assert listed(wh) == [("2026-11-01", "2026-11-02", True)]
            rows = pd.concat(frames)[[*METRICS, *(["net"] if part is later else [])]]
            assert copy_rows(wh, "2026-11-01") == int(rows.notna().any(axis=1).sum())
            assert reads_copy(wh, copies_used, DAY1, DAY2)
        got = check(wh, ref, DAY1, DAY2)
        assert_input(got["frame"], frames, DAY1, DAY2)
    got = check(wh, ref, DAY1, DAY2, [*METRICS, "net"])
    assert_input(got["frame"], frames, DAY1, DAY2, [*METRICS, "net"])
    assert set(got["frame"].dropna(subset=["net"])["host"]) == set("abcd")


@pytest.mark.parametrize("clash", ["new_metric", "filled_gap"])
def test_values_added_to_copied_instants_delete_the_copy(wh, ref, copies_used, clash):
    """c) a wide write of new points at (label set, instant)s the copy already has a row
    for: a new metric there, or a value where a cell was missing."""
    first = wide(DAY1, 72)
    write_both(wh, ref, first)
    if clash == "new_metric":
        rows = first[first[METRICS].notna().any(axis=1)][["ts", "host"]].iloc[::7]
        second = rows.assign(net=np.arange(len(rows), dtype="f8") / 4)
        metrics = [*METRICS, "net"]
    else:
        gap = first[first["mem"].isna() & first["cpu"].notna()].head(5)  # a row of the copy
        second = gap[["ts", "host"]].assign(mem=[1.25, 2.5, 3.75, 5.0, 6.25])
        metrics = METRICS
    result = write_both(wh, ref, second)
    assert result.written == result.received == len(second)  # every point new
    got = check(wh, ref, DAY1, DAY2, metrics)
    if is_duckdb(wh):
        assert listed(wh) == [] and copy_rows(wh, "2026-11-01") == 0
        assert not reads_copy(wh, copies_used, DAY1, DAY2, metrics)
    assert_input(got["frame"], [first, second], DAY1, DAY2, metrics)


def test_write_points_into_a_copied_chunk_deletes_the_copy(wh, ref, copies_used):
    """d) a narrow write: even a point at a new instant."""
    first = wide(DAY1, 72)
    write_both(wh, ref, first)
    late = pd.DataFrame({"metric": ["cpu"], "host": ["b"], "value": [99.5],
                         "ts": [DAY1 + pd.Timedelta(hours=20, seconds=1)]})
    for target in (wh, ref):
        assert target.write_points(late, label_columns=LABELS).written == 1
    got = check(wh, ref, DAY1, DAY2)
    assert got["where"]["cpu"].max() == 99.5
    if is_duckdb(wh):
        assert listed(wh) == [] and not reads_copy(wh, copies_used, DAY1, DAY2)


def test_a_wide_write_repeating_stored_points_deletes_the_copy(wh, ref, copies_used):
    """e) some rows again (other values: the stored ones stay), some new: partly skipped."""
    first = wide(DAY1, 72)
    write_both(wh, ref, first)
    again = first.iloc[60:90].copy()
    again[METRICS] = again[METRICS] + 1000
    second = pd.concat([again, wide(DAY1 + pd.Timedelta(hours=14), 24, seed=4)],
                       ignore_index=True)
    result = write_both(wh, ref, second)
    repeated = int(again[METRICS].notna().to_numpy().sum())
    assert result.skipped == repeated and result.written == result.received - repeated > 0
    got = check(wh, ref, DAY1, DAY2)
    assert_input(got["frame"], [first, second], DAY1, DAY2)
    if is_duckdb(wh):
        assert listed(wh) == [] and not reads_copy(wh, copies_used, DAY1, DAY2)
    assert got["frame"]["cpu"].max() < 1000


def test_a_wide_write_repeating_every_point_of_an_uncopied_chunk_makes_no_copy(wh, ref,
                                                                                copies_used):
    """e) day 1 holds only points the batch repeats (other values), so it holds as many
    points as the batch has cells there; the batch also fills day 2. Still no copy of
    either: day 1's would hold the batch's values instead of the stored ones."""
    stored = wide(DAY1, 12, seed=15, gaps=0.0)
    for target in (wh, ref):
        target.write_points(narrow(stored), label_columns=LABELS)
    second = pd.concat([stored.assign(cpu=stored["cpu"] + 1000, mem=stored["mem"] + 1000,
                                      disk=stored["disk"] + 1000),
                        wide(DAY2, 12, seed=16)], ignore_index=True)
    result = write_both(wh, ref, second)
    assert 0 < result.skipped == len(narrow(stored)) < result.received
    got = check(wh, ref, DAY1, DAY3)
    assert_input(got["frame"], [stored, second], DAY1, DAY3)
    assert got["frame"][METRICS].max().max() < 1000
    check(wh, ref, DAY1, DAY2)
    if is_duckdb(wh):
        assert listed(wh) == [] and not reads_copy(wh, copies_used, DAY1, DAY3)


def test_a_wide_write_into_a_chunk_of_narrow_points_makes_no_copy(wh, ref, copies_used):
    """f) the range held points before the batch: the copy would lack them."""
    narrow_first = wide(DAY1, 36, metrics=["cpu"], seed=7)
    for target in (wh, ref):
        target.write_points(narrow(narrow_first), label_columns=LABELS)
    second = wide(DAY1 + pd.Timedelta(hours=6), 72, seed=8)
    write_both(wh, ref, second)
    got = check(wh, ref, DAY1, DAY2)
    assert_input(got["frame"], [narrow_first, second], DAY1, DAY2)
    if is_duckdb(wh):
        assert listed(wh) == [] and not reads_copy(wh, copies_used, DAY1, DAY2)


def test_repeated_rows_in_a_batch_make_no_copy(wh, ref, copies_used):
    """Rows repeating a (label set, instant) are merged the long way, without rows for the
    copy: the chunk is not listed, and the last value of each metric wins."""
    frame = wide(DAY1, 24, gaps=0.0)
    repeat = frame.iloc[[0, 4]].assign(cpu=[-1.0, -2.0], mem=[np.nan, np.nan])
    batch = pd.concat([frame, repeat], ignore_index=True)
    result = write_both(wh, ref, batch)
    assert result.written == 3 * len(frame) - len(frame) // 3  # host c: no disk
    got = check(wh, ref, DAY1, DAY2)
    if is_duckdb(wh):
        assert listed(wh) == []
    first = got["frame"].set_index(["host", "ts"])
    assert first.loc[("a", DAY1), "cpu"] == -1.0
    assert first.loc[("a", DAY1), "mem"] == frame.loc[0, "mem"]  # a gap erases nothing


def test_a_batch_over_a_copied_and_a_new_chunk_extends_both(wh, ref, copies_used):
    """g) one batch across midnight: the copied day gets new instants, the next day (no
    point yet) is copied whole; rows with missing cells, host c without disk."""
    first = wide(DAY1, 36)
    write_both(wh, ref, first)
    across = wide(DAY1 + pd.Timedelta(hours=18), 72, seed=9, gaps=0.3)
    write_both(wh, ref, across)
    if is_duckdb(wh):
        assert listed(wh) == [("2026-11-01", "2026-11-02", True),
                              ("2026-11-02", "2026-11-03", True)]
        assert reads_copy(wh, copies_used, DAY1, DAY3)
        both = pd.concat([first, across])
        assert (copy_rows(wh, "2026-11-01") + copy_rows(wh, "2026-11-02")
                == int(both[METRICS].notna().any(axis=1).sum()))
    got = check(wh, ref, DAY1, DAY3)
    assert_input(got["frame"], [first, across], DAY1, DAY3)
    assert got["frame"].loc[got["frame"]["host"] == "c", "disk"].isna().all()


def test_a_batch_over_a_copied_chunk_and_one_of_narrow_points_copies_neither(wh, ref,
                                                                            copies_used):
    first = wide(DAY1, 36)
    write_both(wh, ref, first)
    for target in (wh, ref):
        target.write_points(narrow(wide(DAY2 + pd.Timedelta(hours=20), 6, seed=10)),
                            label_columns=LABELS)
    across = wide(DAY1 + pd.Timedelta(hours=18), 72, seed=11)
    write_both(wh, ref, across)
    check(wh, ref, DAY1, DAY3)
    if is_duckdb(wh):
        assert listed(wh) == [] and not reads_copy(wh, copies_used, DAY1, DAY3)


def test_a_copy_made_under_another_chunk_interval_is_deleted_not_extended(wh, ref,
                                                                          copies_used):
    """Day 1 copied as one day; chunks of 6 h from then on. A wide write of new instants into
    day 1 deletes its copy (the listed range is not the 6 h chunk); one into a fresh day 3
    copies its 6 h ranges."""
    first = wide(DAY1, 36)
    write_both(wh, ref, first)
    for target in (wh, ref):
        target.set_chunk_interval("points", "6h")
    into_day1 = wide(DAY1 + pd.Timedelta(minutes=5), 36, seed=17)
    fresh = wide(DAY3, 72, seed=18)  # 00:00 to 11:50: two 6 h ranges
    for part in (into_day1, fresh):
        write_both(wh, ref, part)
    got = check(wh, ref, DAY1, DAY3 + pd.Timedelta(hours=12))
    assert_input(got["frame"], [first, into_day1, fresh], DAY1, DAY3 + pd.Timedelta(hours=12))
    check(wh, ref, DAY3, DAY3 + pd.Timedelta(hours=12))
    if is_duckdb(wh):
        rows = db(wh, "SELECT chunk_start, chunk_end FROM reading_chunks WHERE copied "
                      "ORDER BY 1")
        assert [(pd.Timestamp(a), pd.Timestamp(b) - pd.Timestamp(a)) for a, b in rows] == [
            (DAY3, pd.Timedelta(hours=6)), (DAY3 + pd.Timedelta(hours=6), pd.Timedelta(hours=6))]
        assert reads_copy(wh, copies_used, DAY3, DAY3 + pd.Timedelta(hours=12))
        assert not reads_copy(wh, copies_used, DAY1, DAY2)


def test_a_batch_of_more_metrics_than_the_copy_holds_makes_no_copy(wh, ref, copies_used,
                                                                  monkeypatch):
    monkeypatch.setattr("warehouse.backends.duckdb_readings.MAX_COLUMNS", 2)
    small = wide(DAY1, 24, metrics=["cpu", "mem"])
    write_both(wh, ref, small)  # two columns: copied
    more = wide(DAY2, 24, seed=19)  # a third: not
    write_both(wh, ref, more)
    check(wh, ref, DAY1, DAY3)
    check(wh, ref, DAY1, DAY2, ["cpu", "mem"])
    if is_duckdb(wh):
        assert listed(wh) == [("2026-11-01", "2026-11-02", True)]
        assert reads_copy(wh, copies_used, DAY1, DAY2, ["cpu", "mem"])


HOSTILE = ["o'brien", 'say "hi"', "日本語", "a,b;c", "x" * 200, "{}", "NULL", " "]


def test_hostile_label_values_and_odd_instants_stay_data(wh, ref, copies_used):
    """Label values with quotes, commas, JSON, non-ASCII or 200 characters, a label missing
    in some rows (another label set), instants a microsecond apart and centuries away."""
    ts = [DAY1 + pd.Timedelta(microseconds=us) for us in (0, 1, 2, 999_999, 86_399_999_999)]
    far = [pd.Timestamp("1700-03-01T12:00:00.000001Z"), pd.Timestamp("2200-12-31T23:59:59Z")]
    rows = [(t, host, region) for t in [*ts, *far] for host in HOSTILE
            for region in ("eu", None)]
    frame = pd.DataFrame(rows, columns=["ts", "host", "region"])
    rng = np.random.default_rng(21)
    for metric in METRICS:
        frame[metric] = np.where(rng.random(len(frame)) < 0.2, np.nan,
                                 rng.uniform(-1e6, 1e6, len(frame)))
    result = wh.write_frame(frame, label_columns=["host", "region"])
    long = frame.melt(id_vars=["ts", "host", "region"], var_name="metric").dropna(
        subset=["value"])
    assert ref.write_points(long, label_columns=["host", "region"]).written == result.written
    for start, end in [(DAY1, DAY2), (far[0].floor("D"), far[0].ceil("D")),
                       (far[1].floor("D"), far[1].floor("D") + pd.Timedelta(days=1))]:
        got = wh.frame(METRICS, start, end)
        assert_same({"f": ref.frame(METRICS, start, end)}, {"f": got})
        assert_same({"w": ref.frame(METRICS, start, end, where="mem > 0")},
                    {"w": wh.frame(METRICS, start, end, where="mem > 0")})
        assert_same({"b": ref.frame(METRICS, start, end, every="1h", agg="max", by=["host"])},
                    {"b": wh.frame(METRICS, start, end, every="1h", agg="max", by=["host"])})
        inside = frame[(frame["ts"] >= start) & (frame["ts"] < end)]
        assert len(got) == int(inside[METRICS].notna().any(axis=1).sum())
        assert set(got["host"]) == set(HOSTILE)
        if is_duckdb(wh):
            assert reads_copy(wh, copies_used, start, end)
    on_time = wh.frame(METRICS, DAY1, DAY2, labels={"host": "o'brien"})
    assert sorted(set(on_time["ts"])) == ts
