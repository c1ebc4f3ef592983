"""``Warehouse.write_frame`` after jobs, beside readers and in random sequences (issue 15;
the cases of single writes are in test_s7_write_frame.py, whose helpers these use): the
compress job, retention, drop_chunks and archive after wide writes, a bulk frame into a new
day, rollups invalidated by a late wide write, a frame read while another thread writes wide
batches, and random sequences of writes against a warehouse written with write_points."""

from __future__ import annotations

import threading

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_readings_copy import assert_same, copied, copy_rows, is_duckdb
from test_review_s5_copy import frame as read_frame
from test_s7_write_frame import (
    DAY1,
    DAY2,
    DAY3,
    LABELS,
    METRICS,
    NOW,
    as_written,
    assert_input,
    check,
    listed,
    narrow,
    reads_copy,
    reference_warehouse,  # noqa: F401 - the fixture "ref" of the tests below
    wide,
    write_both,
)

from warehouse import Warehouse, jobs
from warehouse.jobs import compress

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
