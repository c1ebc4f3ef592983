"""``Warehouse.write_frame`` (issue 15): a wide frame written as points answers every question
(wh.points, wh.frame with where=, buckets, labels) exactly as the same values written with
``write_points`` into another warehouse of the same engine, and as the input itself.

On DuckDB the rows also extend the pivoted copy (``readings``, duckdb_readings.py) where the
chunk range stays whole; every other write into a copied range deletes its copy. Each case
below checks which of the two happened (``reading_chunks``) and that frames of several
metrics, read from the copy or from points, still answer as the warehouse that never had a
copy at write. On PostgreSQL no copy is made at write; the compress job makes it."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_archive_identity import other_warehouse
from test_readings_copy import assert_same, copied, copy_rows, db, is_duckdb
from test_review_s5_copy import frame as read_frame

from warehouse import Warehouse, jobs
from warehouse.errors import ValidationError
from warehouse.jobs import compress

DAY1 = pd.Timestamp("2026-11-01T00:00:00Z")
DAY2 = DAY1 + pd.Timedelta(days=1)
DAY3 = DAY2 + pd.Timedelta(days=1)
NOW = pd.Timestamp("2026-11-12T00:00:00Z")
METRICS = ["cpu", "mem", "disk"]
LABELS = ["host"]


@pytest.fixture
def ref(wh, request, tmp_path):
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


# -- jobs after wide writes -------------------------------------------------------------------

def run(wh, name: str, **options):
    result = jobs.run_job(wh, name, now=NOW, retries=0, **options)
    assert result.status == "succeeded", result.error
    return result


def test_compress_retention_and_drop_chunks_after_wide_writes(wh, ref, copies_used):
    """h) the compress job copies (PostgreSQL) or rewrites (DuckDB) the days written wide;
    wide writes after it still extend or delete copies rightly; retention and drop_chunks
    take the copies with them; every answer stays that of ``ref``."""
    frames = [wide(DAY1, 144 * 3, seed=12)]
    write_both(wh, ref, frames[0])
    for target in (wh, ref):
        run(target, "refresh_rollups")  # PostgreSQL compresses rolled-up chunks only
        compress.set_policy(target, "1d")
        assert run(target, "compress").rows > 0
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert copied(wh) == days
    assert reads_copy(wh, copies_used, DAY1, DAY1 + pd.Timedelta(days=3))
    got = check(wh, ref, DAY1, DAY1 + pd.Timedelta(days=3))
    assert_input(got["frame"], frames, DAY1, DAY1 + pd.Timedelta(days=3))
    # into compressed days: new instants of day 2 (DuckDB extends; PostgreSQL's encoded
    # copy goes), a day not written yet (DuckDB copies it), a clash on day 3 (copy goes)
    frames.append(wide(DAY2 + pd.Timedelta(minutes=3), 20, seed=13))
    frames.append(wide(DAY1 + pd.Timedelta(days=4), 30, seed=14))
    frames.append(frames[0].iloc[-9:][["ts", "host"]].assign(net=1.5))
    for part in frames[1:]:
        write_both(wh, ref, part)
    end = DAY1 + pd.Timedelta(days=5)
    got = check(wh, ref, DAY1, end)
    assert_input(got["frame"], frames, DAY1, end)
    for day in range(1, 5):  # each day alone: the ones still copied read their copy
        start = DAY1 + pd.Timedelta(days=day)
        check(wh, ref, start, start + pd.Timedelta(days=1), [*METRICS, "net"])
    if is_duckdb(wh):
        assert copied(wh) == ["2026-11-01", "2026-11-02", "2026-11-05"]
    else:
        assert copied(wh) == ["2026-11-01"]
    for target in (wh, ref):  # the job again, then retention and drop_chunks
        run(target, "refresh_rollups")
        run(target, "compress")
    assert copied(wh) == ["2026-11-01", "2026-11-02", "2026-11-03", "2026-11-05"]
    check(wh, ref, DAY1, end, [*METRICS, "net"])
    for target in (wh, ref):
        target.drop_chunks("points", DAY2, force=True)
        target.set_retention("points", "9d")  # day 2 ends by NOW - 9d, day 3 does not
        run(target, "retention")
    assert copied(wh) == ["2026-11-03", "2026-11-05"]
    assert copy_rows(wh, "2026-11-01") == copy_rows(wh, "2026-11-02") == 0
    assert wh.points("cpu", DAY1, DAY3).empty
    got = check(wh, ref, DAY3, end, [*METRICS, "net"])
    assert_input(got["frame"], frames, DAY3, end, [*METRICS, "net"])


def test_a_bulk_wide_frame_into_a_new_day(wh, ref, copies_used, monkeypatch):
    """Over 100,000 points inside one new day: PostgreSQL loads the chunk whole (its own
    path, NEW_CHUNK_ROWS), DuckDB copies the day; replayed, nothing is written."""
    hosts = "abcdefgh"
    metrics = [*METRICS, *(f"cpu.m{i}" for i in range(7))]
    frame = wide(DAY2, 1440, hosts=hosts, metrics=metrics, freq="1min", seed=22, gaps=0.05)
    loads = []
    if not is_duckdb(wh):
        load = wh.backend.load_new_chunk
        monkeypatch.setattr(wh.backend, "load_new_chunk",
                            lambda *args: loads.append(len(args[-1])) or load(*args))
    result = write_both(wh, ref, frame)
    assert loads == ([] if is_duckdb(wh) else [result.written])
    assert result.written == int(frame[metrics].notna().to_numpy().sum()) > 100_000
    assert write_both(wh, ref, frame).written == 0
    check(wh, ref, DAY2, DAY3)
    got = wh.frame(metrics, DAY2, DAY3)
    assert_input(got, [frame], DAY2, DAY3, metrics)
    if is_duckdb(wh):
        assert listed(wh) == [("2026-11-02", "2026-11-03", True)]
        assert reads_copy(wh, copies_used, DAY2, DAY3, metrics)


def hourly_max(wh) -> dict:
    return {m: wh.points(m, DAY1, DAY2, every="1h", agg="max")
            .drop(columns="series_id", errors="ignore")
            .sort_values(["host", "ts"]).reset_index(drop=True) for m in METRICS}


def test_a_late_wide_write_invalidates_the_rollups(wh, ref):
    first = wide(DAY1, 144)
    write_both(wh, ref, first)
    for target in (wh, ref):
        run(target, "refresh_rollups")
    late = wide(DAY1 + pd.Timedelta(minutes=7), 144, seed=23)
    write_both(wh, ref, late)
    got = hourly_max(wh)  # from the rollups where they are exact
    assert_same(hourly_max(ref), got)
    both = narrow(pd.concat([first, late]))
    want = both[both["metric"] == "cpu"].assign(hour=lambda d: d["ts"].dt.floor("1h"))
    want = want.groupby(["host", "hour"])["value"].max()
    assert (got["cpu"]["value"].to_numpy() == want.to_numpy()).all()
    for target in (wh, ref):
        run(target, "refresh_rollups")
    check(wh, ref, DAY1, DAY2)


def test_one_metric_archived_and_dropped_after_wide_writes(wh, tmp_path, monkeypatch,
                                                          copies_used):
    """Retention of cpu alone under an archive policy after wide writes: cpu of days 1-2
    goes to Parquet and leaves the hot tables, with the copies of those days; frames of
    several metrics still answer the input (cpu read from the archive), also after the
    compress job ran again on what stays hot."""
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(tmp_path / "archive"))
    frame = wide(DAY1, 144 * 3, seed=24)
    wh.write_frame(frame, label_columns=LABELS)
    run(wh, "refresh_rollups")
    wh.set_retention("points", "9d", archive=True, metric="cpu")  # days ending by 11-03
    run(wh, "archive")
    run(wh, "retention")
    hot = wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0]
    assert hot == len(narrow(frame)) - int(frame.loc[frame["ts"] < DAY3, "cpu"].notna().sum())
    end = DAY1 + pd.Timedelta(days=3)
    if is_duckdb(wh):
        assert copied(wh) == ["2026-11-03"]
    for when in ("after retention", "after compress"):
        if when == "after compress":
            run(wh, "refresh_rollups")
            compress.set_policy(wh, "1d")
            assert run(wh, "compress").rows > 0
        for start, stop in [(DAY1, DAY2), (DAY1, end), (DAY3, end)]:
            got = wh.frame(METRICS, start, stop)
            assert_input(got, [frame], start, stop)
            assert_same({when: read_frame(wh, METRICS, start, stop, copies=False)},
                        {when: got})
            where = wh.frame(METRICS, start, stop, where="cpu > 60")
            assert_input(where, [frame[frame["cpu"] > 60]], start, stop)


# -- a reader beside a writer ------------------------------------------------------------------


@pytest.mark.parametrize("columns", ["same", "one_more_each"])
def test_a_frame_read_beside_wide_writes_sees_whole_batches(wh, columns):
    """i) frames read while another thread writes wide batches of new instants into the same
    chunk (each extending DuckDB's copy, ``one_more_each``: with a metric of its own, a
    column added to the copy) answer as some prefix of the batches: a batch is there whole
    or not at all, never a copy without its points or the reverse."""
    extra = (lambda k: [f"x{k}"]) if columns == "one_more_each" else (lambda k: [])
    batches = [wide(DAY1 + pd.Timedelta(minutes=k), 36, seed=20 + k, freq="20min",
                    metrics=[*METRICS, *extra(k)]) for k in range(8)]
    wh.write_frame(batches[0], label_columns=LABELS)
    prefixes = [as_written(batches[:k], DAY1, DAY2) for k in range(1, len(batches) + 1)]
    sizes = [len(p) for p in prefixes]
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for batch in batches[1:]:
                wh.write_frame(batch, label_columns=LABELS)
        except BaseException as exc:  # noqa: BLE001 - asserted on below
            errors.append(exc)

    thread = threading.Thread(target=writer)
    thread.start()
    seen = []
    while thread.is_alive() or len(seen) < 3:
        for where in (None, "cpu > 50"):
            got = wh.frame(METRICS, DAY1, DAY2, where=where)
            got = got.sort_values(["host", "ts"]).reset_index(drop=True)
            if where is None:
                assert len(got) in sizes, len(got)
                k = sizes.index(len(got))
                pd.testing.assert_frame_equal(got, prefixes[k], check_dtype=False)
                seen.append(k)
            else:
                assert len(got) and (got["cpu"] > 50).all()
    thread.join()
    assert not errors, errors
    last = wh.frame(METRICS, DAY1, DAY2).sort_values(["host", "ts"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(last, prefixes[-1], check_dtype=False)
    assert len(seen) >= 3 and seen == sorted(seen)  # never a batch seen, then gone
    if is_duckdb(wh):
        assert listed(wh) == [("2026-11-01", "2026-11-02", True)]


# -- random sequences of writes (DuckDB: the copy's rules against a warehouse without it) ------

WRITE = st.fixed_dictionaries({
    "how": st.sampled_from(["frame", "frame", "frame", "points", "compress"]),
    "day": st.integers(0, 1),
    "minute": st.sampled_from([0, 0, 20, 3]),
    "periods": st.integers(1, 30),
    "hosts": st.sampled_from(["abc", "ab", "c", "abcd"]),
    "metrics": st.sampled_from([METRICS, ["cpu", "mem"], ["disk", "net"], ["cpu", "net"]]),
    "gaps": st.sampled_from([0.0, 0.3]),
    "seed": st.integers(0, 1000),
})


@pytest.mark.storage
@settings(max_examples=20, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(writes=st.lists(WRITE, min_size=1, max_size=6))
def test_random_writes_answer_as_write_points(tmp_path_factory, writes):
    """Wide writes (new instants, repeats, clashes, new metrics, both days), narrow writes
    and compress runs in any order on DuckDB: every frame answers as a warehouse written
    only with write_points, whether it reads the copy or points."""
    folder = tmp_path_factory.mktemp("random")
    wh = Warehouse(f"duckdb:///{folder / 'wide.duckdb'}")
    ref = Warehouse(f"duckdb:///{folder / 'ref.duckdb'}")
    try:
        written = set()
        for write in writes:
            if write["how"] == "compress":
                for target in (wh, ref):
                    compress.compress_now(target, "1d", now=NOW)
                continue
            start = DAY1 + pd.Timedelta(days=write["day"], minutes=write["minute"])
            part = wide(start, write["periods"], hosts=write["hosts"], freq="20min",
                        metrics=write["metrics"], gaps=write["gaps"], seed=write["seed"])
            if write["how"] == "frame":
                write_both(wh, ref, part)
            else:
                for target in (wh, ref):
                    target.write_points(narrow(part), label_columns=LABELS)
            written |= set(narrow(part)["metric"])
        metrics = sorted(written)
        if len(metrics) < 2:
            return
        for start, end in [(DAY1, DAY2), (DAY2, DAY3), (DAY1, DAY3)]:
            for options in [{}, {"where": f"{metrics[0]} > 50"},
                            {"every": "2h", "agg": "max", "by": ["host"]},
                            {"every": "1h", "agg": "count"}]:
                assert_same({str(options): ref.frame(metrics, start, end, **options)},
                            {str(options): wh.frame(metrics, start, end, **options)})
    finally:
        wh.close()
        ref.close()
