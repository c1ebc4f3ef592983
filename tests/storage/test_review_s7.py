"""Adversarial review of the s7 write path (``Warehouse.write_frame``; DuckDB's
``extend_copy`` keeping the pivoted copy ``readings`` current at write).

The invariant checked directly, not through frames: every chunk range listed copied in
``reading_chunks`` holds in ``readings`` exactly the points of that range (one row per label
set and instant with a point, NULL where a metric has none, no row twice, no row empty).
Answers are checked against a warehouse of the same engine written only with write_points
(which never copies at write) and against the input. Findings: /tmp/s7/review_bugs.md."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_archive_identity import other_warehouse, run
from test_readings_copy import assert_same, db, is_duckdb

from warehouse import Warehouse
from warehouse.jobs import compress

DAY1 = pd.Timestamp("2026-11-01T00:00:00Z")
DAY = pd.Timedelta(days=1)
HOUR = pd.Timedelta(hours=1)
NOW = pd.Timestamp("2026-11-12T00:00:00Z")
LABELS = ["host"]


@pytest.fixture
def ref(wh, request, tmp_path):
    """The same engine as ``wh``, only ever written with write_points."""
    other = other_warehouse(wh, request, tmp_path)
    yield other
    other.close()


def rows(start, periods: int, metrics=("cpu", "mem"), *, hosts="ab", freq="20min",
         seed=0, gaps=0.2) -> pd.DataFrame:
    """A row per host and instant from ``start``, about ``gaps`` of the cells missing."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range(pd.Timestamp(start), periods=periods, freq=freq)
    frame = pd.DataFrame({"ts": ts.repeat(len(hosts)), "host": list(hosts) * periods})
    for metric in metrics:
        values = np.round(rng.normal(50, 10, len(frame)), 2)
        values[rng.random(len(frame)) < gaps] = np.nan
        frame[metric] = values
    return frame


def narrow(frame: pd.DataFrame, labels=LABELS) -> pd.DataFrame:
    metrics = [c for c in frame.columns if c not in ("ts", "run_id", *labels)]
    long = frame.melt(id_vars=["ts", *labels], value_vars=metrics, var_name="metric")
    return long[long["value"].notna()].reset_index(drop=True)


def write_both(wh, ref, frame: pd.DataFrame, labels=LABELS):
    got = wh.write_frame(frame, label_columns=labels)
    want = ref.write_points(narrow(frame, labels), label_columns=labels)
    assert (got.received, got.written, got.skipped) == (want.received, want.written,
                                                        want.skipped)
    return got


def copy_broken(wh) -> list[dict]:
    """Every copied range (DuckDB) whose ``readings`` rows are not exactly its points."""
    if not is_duckdb(wh):
        return []
    columns = dict(db(wh, "SELECT metric, col FROM reading_columns"))
    have = [c for (c,) in db(wh, "SELECT column_name FROM duckdb_columns() "
                                 "WHERE table_name = 'readings' AND column_name LIKE 'm%'")]
    metric_of = {f"m{c}": m for m, c in columns.items()}
    keys = db(wh, "SELECT labels_key, count(*) FROM reading_entities GROUP BY 1 "
                  "HAVING count(*) > 1")
    broken = [{"labels_key numbered twice": keys}] if keys else []
    for start, end in db(wh, "SELECT chunk_start, chunk_end FROM reading_chunks WHERE copied"):
        span = {"a": start, "b": end}
        points = pd.DataFrame(db(wh, (
            "SELECT s.labels_key, p.ts, s.metric, p.value FROM points p "
            "JOIN series s USING (series_id) WHERE p.ts >= :a AND p.ts < :b"), span),
            columns=["key", "ts", "metric", "value"])
        listed = ", ".join(f"r.{c}" for c in have)
        copy = pd.DataFrame(db(wh, (
            f"SELECT e.labels_key, r.ts{', ' + listed if listed else ''} FROM readings r "
            f"LEFT JOIN reading_entities e USING (entity) WHERE r.ts >= :a AND r.ts < :b"),
            span), columns=["key", "ts", *have])
        long = copy.melt(id_vars=["key", "ts"], var_name="column").dropna(subset=["value"])
        long["metric"] = long["column"].map(metric_of)
        want = points.set_index(["key", "ts", "metric"])["value"].sort_index()
        got = long.set_index(["key", "ts", "metric"])["value"].sort_index()
        twice = int(copy.duplicated(["key", "ts"]).sum())
        empty = int(copy[have].isna().all(axis=1).sum()) if have else len(copy)
        same = want.index.equals(got.index) and bool((want.to_numpy() == got.to_numpy()).all())
        if twice or empty or not same or copy["key"].isna().any():
            broken.append({"range": (str(start), str(end)), "rows twice": twice,
                           "empty rows": empty, "points": len(want), "in copy": len(got)})
    return broken


def listed(wh) -> list[tuple]:
    """reading_chunks as (start, end, copied), the bounds in µs (DuckDB returns an end in
    year 10000 as text)."""
    return db(wh, "SELECT epoch_us(chunk_start), epoch_us(chunk_end), copied "
                  "FROM reading_chunks ORDER BY 1")


def us(ts) -> int:
    return int(pd.Timestamp(ts).as_unit("us").asm8.view("i8"))


def same_answers(wh, ref, metrics, start, end) -> None:
    """Frames of ``metrics`` over [start, end) answer in ``wh`` as in ``ref``."""
    f, g = wh.frame, ref.frame
    for options in [{}, {"where": f"{metrics[0]} > 50"}, {"labels": {"host": "a"}},
                    {"every": "3h", "agg": "sum", "by": ["host"]},
                    {"every": "1h", "agg": "count"}, {"every": "6h", "agg": "max", "by": []}]:
        name = str(options)
        assert_same({name: g(metrics, start, end, **options)},
                    {name: f(metrics, start, end, **options)})


def as_input(frames: list[pd.DataFrame], metrics, start, end) -> pd.DataFrame:
    """The frame the inputs make (first value of a host, instant and metric kept)."""
    long = narrow(pd.concat(frames, ignore_index=True))
    long = long[(long["ts"] >= start) & (long["ts"] < end) & long["metric"].isin(metrics)]
    long = long.drop_duplicates(["host", "ts", "metric"], keep="first")
    out = long.pivot(index=["ts", "host"], columns="metric", values="value")
    out = out.reindex(columns=list(metrics)).reset_index()
    out.columns.name = None
    return out.sort_values(["host", "ts"]).reset_index(drop=True)[["ts", "host", *metrics]]


# -- the copy stays exact through every kind of write and job ----------------------------------


def test_the_copy_holds_exactly_its_points_through_writes_and_jobs(wh, ref):
    """A sequence mixing wide writes (new day, batch lacking a metric in every row, a metric
    first seen in a later batch, rows exactly at a chunk boundary), a narrow write, the
    compress job, a chunk interval changed between writes, per-metric retention and
    drop_chunks. After each step every copied range holds exactly its points and frames
    answer as the warehouse written with write_points."""
    metrics = ["cpu", "mem", "net"]
    written = set()

    def step(frame=None, *, points=None, job=None, start=DAY1, end=DAY1 + 4 * DAY):
        if frame is not None:
            written.update(narrow(frame)["metric"])
            write_both(wh, ref, frame)
        if points is not None:
            for target in (wh, ref):
                target.write_points(narrow(points), label_columns=LABELS)
        if job is not None:
            for target in (wh, ref):
                job(target)
        assert copy_broken(wh) == []
        same_answers(wh, ref, [m for m in metrics if m in written], start, end)

    step(rows(DAY1, 30))
    if is_duckdb(wh):
        assert listed(wh) == [(us(DAY1), us(DAY1 + DAY), True)]
    # every row lacks mem (its column all NaN), new instants of the copied day
    step(rows(DAY1 + pd.Timedelta(minutes=7), 20).assign(mem=np.nan))
    # net first seen here: a column added to readings inside the write
    step(rows(DAY1 + pd.Timedelta(minutes=11), 20, ["net", "cpu"], seed=3))
    # rows exactly at the boundary and 1 µs before it: two chunks, one of them new
    edge = pd.DataFrame({"ts": [DAY1 + DAY - pd.Timedelta(microseconds=1), DAY1 + DAY] * 2,
                         "host": ["a", "a", "b", "b"], "cpu": [1.0, 2.0, 3.0, np.nan],
                         "net": [5.0, np.nan, 7.0, 8.0], "mem": np.nan})
    step(edge, start=DAY1 + DAY - HOUR, end=DAY1 + DAY + HOUR)
    if is_duckdb(wh):
        assert [day for day, _, copied in listed(wh) if copied] == [us(DAY1),
                                                                      us(DAY1 + DAY)]
    step(points=rows(DAY1 + DAY + pd.Timedelta(minutes=3), 5, seed=4))  # day 2's copy goes
    if is_duckdb(wh):
        assert [day for day, _, copied in listed(wh) if copied] == [us(DAY1)]

    def compress_job(target):
        run(target, "refresh_rollups")
        compress.compress_now(target, "1d", now=NOW)

    step(job=compress_job)
    step(rows(DAY1 + pd.Timedelta(minutes=13), 10, metrics, seed=5))  # after the job
    step(job=lambda target: target.set_chunk_interval("points", "6h"))
    # day 3 in 6 h chunks (new); day 1 listed under 1 d: its copy may not be extended
    step(rows(DAY1 + 2 * DAY, 30, metrics, seed=6))
    step(rows(DAY1 + pd.Timedelta(minutes=17), 5, metrics, seed=7))
    if is_duckdb(wh):
        day3 = DAY1 + 2 * DAY  # day 1's copy went; day 2 keeps its 1 d copy (untouched)
        assert listed(wh) == [
            (us(DAY1 + DAY), us(day3), True), (us(day3), us(day3 + 6 * HOUR), True),
            (us(day3 + 6 * HOUR), us(day3 + 12 * HOUR), True)]
    step(job=compress_job)

    def cpu_retention(target):
        target.set_retention("points", "10d", metric="cpu")  # days ending by 11-02
        run(target, "retention")

    step(job=cpu_retention)
    assert wh.points("cpu", DAY1, DAY1 + DAY).empty
    step(rows(DAY1 + pd.Timedelta(minutes=19), 5, metrics, seed=8))
    step(job=lambda target: target.drop_chunks("points", DAY1 + DAY, force=True))
    assert wh.points("mem", DAY1, DAY1 + DAY).empty
    step(rows(DAY1 + 2 * DAY + pd.Timedelta(minutes=1), 10, metrics, seed=9))


def test_a_write_failing_after_the_copy_was_extended_leaves_no_trace(wh, ref, monkeypatch):
    """The write fails after insert_points ran (DuckDB: extend_copy added rows, a metric
    column and a copied range): nothing of it stays, neither points nor the copy nor its
    bookkeeping; written again it gives what write_points gives."""
    first = rows(DAY1, 10)
    write_both(wh, ref, first)

    def state():
        tables = ["points", "series"]
        if is_duckdb(wh):
            tables += ["readings", "reading_chunks", "reading_columns", "reading_entities"]
        counts = {t: db(wh, f"SELECT count(*) FROM {t}")[0][0] for t in tables}
        if is_duckdb(wh):
            counts["columns"] = db(wh, "SELECT column_name FROM duckdb_columns() WHERE "
                                       "table_name = 'readings' ORDER BY 1")
            counts["listed"] = listed(wh)
        return counts

    before = state()
    late = [rows(DAY1 + pd.Timedelta(minutes=5), 10, ["cpu", "net"], hosts="bc", seed=1),
            rows(DAY1 + DAY, 10, ["cpu", "disk"], hosts="cd", seed=2)]

    def broken(*args, **kwargs):
        raise RuntimeError("after the points and the copy")

    extended = []
    if is_duckdb(wh):
        from warehouse.backends import duckdb_write
        real = duckdb_write.extend_copy
        monkeypatch.setattr(duckdb_write, "extend_copy",
                            lambda *a: extended.append(real(*a)) or extended[-1])
    monkeypatch.setattr(wh.backend, "upsert_series_last", broken)
    for frame in late:
        with pytest.raises(RuntimeError, match="after the points"):
            wh.write_frame(frame, label_columns=LABELS)
    assert extended == ([True, True] if is_duckdb(wh) else [])  # the copy was extended
    monkeypatch.undo()
    assert state() == before
    assert copy_broken(wh) == []
    for frame in late:
        write_both(wh, ref, frame)
    assert copy_broken(wh) == []
    for metrics in (["cpu", "mem", "net", "disk"], ["cpu", "net"]):
        same_answers(wh, ref, metrics, DAY1, DAY1 + 2 * DAY)
    got = wh.frame(["cpu", "mem", "net", "disk"], DAY1, DAY1 + 2 * DAY)
    pd.testing.assert_frame_equal(
        got.sort_values(["host", "ts"]).reset_index(drop=True),
        as_input([first, *late], ["cpu", "mem", "net", "disk"], DAY1, DAY1 + 2 * DAY),
        check_dtype=False)


# -- odd input ---------------------------------------------------------------------------------


def test_missing_label_values_of_every_kind_are_one_label_set(wh, ref):
    """None, NaN and pd.NA in a label column all mean "no such label": the rows are one
    label set, so an instant is one row of the copy (two would answer twice)."""
    frame = pd.DataFrame({"ts": [DAY1] * 3 + [DAY1 + HOUR] * 3, "host": "a",
                          "dc": pd.Series([None, np.nan, pd.NA] * 2, dtype=object),
                          "cpu": [1.0, np.nan, np.nan, 4.0, np.nan, np.nan],
                          "mem": [np.nan, 2.0, np.nan, np.nan, 5.0, np.nan],
                          "net": [np.nan, np.nan, 3.0, np.nan, np.nan, 6.0]})
    labels = ["host", "dc"]
    # The rows repeat a label set at an instant: merged the long way, as points are.
    write_both(wh, ref, frame, labels)
    got = wh.frame(["cpu", "mem", "net"], DAY1, DAY1 + DAY)
    assert got[["cpu", "mem", "net"]].to_numpy().tolist() == [[1.0, 2.0, 3.0],
                                                               [4.0, 5.0, 6.0]]
    assert_same({"f": ref.frame(["cpu", "mem", "net"], DAY1, DAY1 + DAY)}, {"f": got})
    assert copy_broken(wh) == []


@pytest.mark.parametrize("kind", ["nan", "none", "pd_na", "nullable_int", "int64", "float32"])
def test_every_kind_of_cell_gives_the_points_of_write_points(wh, ref, kind):
    """Missing cells of every kind are no point; integers (beyond 2**53 too) and float32 are
    stored as write_points stores the same values."""
    n = 6
    base = pd.DataFrame({"ts": pd.date_range(DAY1, periods=n, freq="10min"), "host": "a",
                         "mem": np.arange(n, dtype="f8")})
    cells = {
        "nan": pd.Series([1.5, np.nan, 2.5, np.nan, 3.5, 4.5]),
        "none": pd.Series([1.5, None, 2.5, None, 3.5, 4.5], dtype=object),
        "pd_na": pd.Series([1.5, pd.NA, 2.5, pd.NA, 3.5, 4.5], dtype=object),
        "nullable_int": pd.Series([1, None, 2**53 + 1, None, -7, 0], dtype="Int64"),
        "int64": pd.Series([2**62, 1, -(2**40), 3, 0, 2**53 + 1], dtype="i8"),
        "float32": pd.Series([0.1, np.nan, 1e30, -2.5, np.nan, 3.3], dtype="f4"),
    }
    frame = base.assign(cpu=cells[kind])
    write_both(wh, ref, frame)
    sql = ("SELECT s.metric, p.ts, p.value FROM points p JOIN series s USING (series_id) "
           "ORDER BY 1, 2")
    assert db(wh, sql) == db(ref, sql)
    assert len(db(wh, sql)) == n + int(cells[kind].notna().sum())
    assert copy_broken(wh) == []
    same_answers(wh, ref, ["cpu", "mem"], DAY1, DAY1 + DAY)


@pytest.mark.parametrize("instant", ["0001-01-02T05:00:00Z", "1900-03-01T05:00:00Z",
                                     "1969-12-31T23:30:00Z", "2300-06-01T05:00:00Z",
                                     "9999-12-31T12:00:00Z"])
def test_instants_outside_pandas_nanoseconds_are_copied_rightly(wh, ref, instant):
    """Before the epoch, before the bucket origin (2000-01-03) and past pandas' nanosecond
    range (2262), up to the last day DuckDB's chunk end can follow: the chunk is listed with
    the bounds the job would use and holds exactly the rows."""
    start = pd.Timestamp(instant)
    frame = rows(start, 4, freq="7min", gaps=0.3, seed=11)
    write_both(wh, ref, frame)
    assert copy_broken(wh) == []
    if is_duckdb(wh):
        day = us(start.floor("1D"))
        assert listed(wh) == [(day, day + us(DAY1 + DAY) - us(DAY1), True)]
    window = (start - HOUR, start + HOUR)
    got = wh.frame(["cpu", "mem"], *window)
    assert_same({"f": ref.frame(["cpu", "mem"], *window)}, {"f": got})
    pd.testing.assert_frame_equal(got.sort_values(["host", "ts"]).reset_index(drop=True),
                                  as_input([frame], ["cpu", "mem"], *window),
                                  check_dtype=False)


# -- two Warehouse objects on one file ---------------------------------------------------------


def test_two_warehouses_on_one_file_keep_one_copy(wh, ref, tmp_path):
    """Writes through two Warehouse objects of one database, interleaved with reads through
    each (DuckDB: the remembered copy list is per file): every answer is ref's."""
    other = Warehouse(wh.url)
    try:
        for i, target in enumerate([wh, other, wh, other]):
            frame = rows(DAY1 + pd.Timedelta(minutes=3 * i), 12, ["cpu", "mem", f"m{i}"],
                         hosts="abc"[: i + 1], seed=20 + i)
            got = target.write_frame(frame, label_columns=LABELS)
            want = ref.write_points(narrow(frame), label_columns=LABELS)
            assert (got.written, got.skipped) == (want.written, want.skipped)
            for reader in (wh, other):
                assert copy_broken(reader) == []
                same_answers(reader, ref, ["cpu", "mem", f"m{i}"], DAY1, DAY1 + DAY)
        if is_duckdb(wh):
            assert [copied for _, _, copied in listed(wh)] == [True]
    finally:
        other.close()


def test_the_check_sees_a_copy_that_differs_from_its_points(tmp_path):
    """copy_broken itself (DuckDB, whose copy is a row per instant): a value changed, a row
    doubled, a row lost are all seen."""
    wh = Warehouse(f"duckdb:///{tmp_path / 'check.duckdb'}")
    try:
        wh.write_frame(rows(DAY1, 6, gaps=0.0), label_columns=LABELS)
        assert copy_broken(wh) == []
        for change in (
                "UPDATE readings SET m1 = m1 + 1 WHERE ts = (SELECT min(ts) FROM readings)",
                "INSERT INTO readings SELECT * FROM readings LIMIT 1",
                "DELETE FROM readings WHERE ts = (SELECT max(ts) FROM readings)"):
            with wh.engine.begin() as conn:
                conn.exec_driver_sql(change)
            assert copy_broken(wh) != [], change
            with wh.engine.begin() as conn:  # start again from an exact copy
                for table in ("readings", "reading_chunks", "points"):
                    conn.exec_driver_sql(f"DELETE FROM {table}")
            wh.write_frame(rows(DAY1, 6, gaps=0.0), label_columns=LABELS)
            assert copy_broken(wh) == []
    finally:
        wh.close()


def test_wide_writes_around_an_archived_metric_and_its_restore(wh, ref, tmp_path,
                                                               monkeypatch):
    """cpu of day 1 archived and dropped; wide writes of other metrics into that day; the
    compress job; cpu restored (restore inserts points): the copy stays exact at every
    step and frames answer the input, as the warehouse written with write_points."""
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(tmp_path / "archive"))
    first = rows(DAY1, 36, ["cpu", "mem", "net"], gaps=0.1, seed=30)
    write_both(wh, ref, first)
    metrics = ["cpu", "mem", "net"]
    for target in (wh, ref):
        run(target, "refresh_rollups")
        target.set_retention("points", "10d", archive=True, metric="cpu")  # day 1 only
        run(target, "archive")
        run(target, "retention")
    hot_cpu = ("SELECT count(*) FROM points JOIN series USING (series_id) "
               "WHERE metric = 'cpu'")
    assert db(wh, hot_cpu) == db(ref, hot_cpu) == [(0,)]  # read from Parquet now
    assert copy_broken(wh) == []
    later = rows(DAY1 + pd.Timedelta(minutes=9), 12, ["mem", "net"], seed=31)
    write_both(wh, ref, later)
    assert copy_broken(wh) == []
    for target in (wh, ref):
        run(target, "refresh_rollups")
        compress.compress_now(target, "1d", now=NOW)
    assert copy_broken(wh) == []
    same_answers(wh, ref, ["mem", "net"], DAY1, DAY1 + DAY)
    for target in (wh, ref):
        target.set_retention("points", "1000d", metric="cpu")  # keep what comes back
        target.restore_archive(DAY1, DAY1 + DAY)
    assert copy_broken(wh) == []
    same_answers(wh, ref, metrics, DAY1, DAY1 + DAY)
    got = wh.frame(metrics, DAY1, DAY1 + DAY)
    pd.testing.assert_frame_equal(got.sort_values(["host", "ts"]).reset_index(drop=True),
                                  as_input([first, later], metrics, DAY1, DAY1 + DAY),
                                  check_dtype=False)
    for target in (wh, ref):
        run(target, "refresh_rollups")
        compress.compress_now(target, "1d", now=NOW)
    assert copy_broken(wh) == []
    same_answers(wh, ref, metrics, DAY1, DAY1 + DAY)


# -- a frame planned before a write and run after it ------------------------------------------


# Review R1 (/tmp/s7/review_bugs.md): before a852ed5 the write_frame case answered a's half of
# the batch without b's (the copy it extended kept its copy_no, so the guard passed).
@pytest.mark.parametrize("writer", ["write_points", "write_frame"])
def test_a_frame_planned_before_a_write_answers_before_or_after_it(tmp_path, monkeypatch,
                                                                   writer):
    """DuckDB: another write commits between a frame's plan (the remembered copy list) and
    its statement; the answer is the state before the write or after it, never part of
    the batch. Host b has series (day 2) but no entity in the copy of day 1 yet."""
    from warehouse.query import frame_readings

    wh = Warehouse(f"duckdb:///{tmp_path / 'race.duckdb'}")
    try:
        wh.write_frame(pd.DataFrame({"ts": [DAY1], "host": "a", "cpu": [1.0], "mem": [2.0]}),
                       label_columns=LABELS)
        wh.write_points(pd.DataFrame({"metric": ["cpu", "mem"], "host": "b",
                                      "ts": DAY1 + DAY, "value": [5.0, 6.0]}),
                        label_columns=LABELS)
        window = (DAY1, DAY1 + 2 * HOUR)
        before = wh.frame(["cpu", "mem"], *window)  # also remembers the copy list
        batch = pd.DataFrame({"ts": [DAY1 + HOUR] * 2, "host": ["a", "b"], "cpu": [3.0, 7.0],
                              "mem": [4.0, 8.0]})
        real = frame_readings._copies
        writes = []

        def copies_then_a_write(conn, backend):
            listed = real(conn, backend)
            if not writes:  # once: the frame read again after a failed guard plans anew
                writes.append(
                    wh.write_frame(batch, label_columns=LABELS) if writer == "write_frame"
                    else wh.write_points(narrow(batch), label_columns=LABELS))
            return listed

        monkeypatch.setattr(frame_readings, "_copies", copies_then_a_write)
        got = wh.frame(["cpu", "mem"], *window)
        monkeypatch.undo()
        assert len(writes) == 1 and writes[0].written == 4
        after = wh.frame(["cpu", "mem"], *window)
        assert len(before) == 1 and len(after) == 3
        assert got.equals(before) or got.equals(after), got
    finally:
        wh.close()
