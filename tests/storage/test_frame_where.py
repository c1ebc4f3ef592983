"""wh.frame(where=...) without buckets (TSBS high-cpu): every reading of a label set at the
instants where one metric passes, the same as pandas computes from the points written, on
both engines alike: hot rows, compressed chunks, late writes into them, archived chunks,
hits whose other metrics have no reading, and each form of the statement (few series: a
probe per reading; many, on DuckDB: long rows, a point's group found in an array indexed by
series id or, for ids far apart, through the series mapping)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse import jobs
from warehouse.jobs import compress
from warehouse.query import frame_where

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
METRICS = ["cpu.user", "cpu.system", "cpu.idle"]
HOSTS = ["a", "b", "c"]
SPAN = ("2026-11-01T03:00:00Z", "2026-11-05T21:00:00Z")
WHERE = "cpu.user > 80"


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    return root


def readings(seed: int = 3) -> pd.DataFrame:
    """3 hosts × 3 metrics every 10 min for 6 days (one chunk a day). cpu.idle of host c is
    missing on 11-02 and cpu.system of host b at every hour's first reading, so some hits
    have a metric without a reading."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2026-11-01", periods=6 * 144, freq="10min", tz="UTC")
    parts = []
    for host in HOSTS:
        for metric in METRICS:
            keep = np.ones(len(ts), dtype=bool)
            if (host, metric) == ("c", "cpu.idle"):
                keep = ts.normalize() != pd.Timestamp("2026-11-02", tz="UTC")
            if (host, metric) == ("b", "cpu.system"):
                keep = ts.minute != 0
            parts.append(pd.DataFrame({"metric": metric, "ts": ts[keep], "host": host,
                                       "value": rng.uniform(0, 100, keep.sum()).round(2)}))
    return pd.concat(parts, ignore_index=True)


def expected(points: pd.DataFrame, metric: str, passes) -> pd.DataFrame:
    """The answer from the points, in pandas: the wide readings whose ``metric`` passes."""
    wide = points.pivot_table(index=["ts", "host"], columns="metric", values="value",
                              aggfunc="max").reindex(columns=METRICS).reset_index()
    wide.columns.name = None
    start, end = (pd.Timestamp(t) for t in SPAN)
    wide = wide[(wide["ts"] >= start) & (wide["ts"] < end) & passes(wide[metric])]
    return wide.sort_values(["host", "ts"]).reset_index(drop=True)[["ts", "host", *METRICS]]


def ask(wh, where: str = WHERE, labels=None) -> pd.DataFrame:
    return wh.frame(METRICS, *SPAN, labels=labels, where=where)


def run(wh, name):
    result = jobs.run_job(wh, name, now=NOW, retries=0)
    assert result.status == "succeeded", result.error


def assert_answer(got: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(want) > 20
    pd.testing.assert_frame_equal(got, want, check_dtype=False)


@pytest.mark.storage
def test_readings_where_one_metric_passes_equal_pandas(wh):
    points = readings()
    wh.write_points(points, label_columns=["host"])
    want = expected(points, "cpu.user", lambda v: v > 80)
    got = ask(wh)
    assert_answer(got, want)
    # hits whose other metric has no reading keep it missing (NaN), as the frame does
    missing = got[got["host"].isin(["b", "c"])][["cpu.system", "cpu.idle"]].isna().any(axis=1)
    assert missing.sum() > 0
    # another operator on another metric, and a label filter
    some = ask(wh, "cpu.idle <= 12.5", labels={"host": ["a", "c"]})
    assert_answer(some, expected(points[points["host"].isin(["a", "c"])], "cpu.idle",
                                 lambda v: v <= 12.5))
    # a filter nothing passes: an empty frame with the frame's columns
    none = ask(wh, "cpu.user > 1000")
    assert list(none.columns) == ["ts", "host", *METRICS] and len(none) == 0


@pytest.mark.storage
@pytest.mark.parametrize("form", [{},  # few series: the probe
                                  {"_MANY_SERIES": 1},  # DuckDB: long rows, id arrays
                                  {"_MANY_SERIES": 1, "_LOOKUP_SPAN": 1}])  # ids far apart
def test_each_form_of_the_statement_gives_the_same_answer(wh, monkeypatch, form):
    points = readings()
    wh.write_points(points, label_columns=["host"])
    for name, value in form.items():
        monkeypatch.setattr(frame_where, name, value)
    assert_answer(ask(wh), expected(points, "cpu.user", lambda v: v > 80))
    some = ask(wh, "cpu.idle <= 12.5", labels={"host": ["a", "c"]})
    assert_answer(some, expected(points[points["host"].isin(["a", "c"])], "cpu.idle",
                                 lambda v: v <= 12.5))


@pytest.mark.storage
def test_compressed_chunks_and_late_writes_answer_the_same(wh):
    points = readings()
    wh.write_points(points, label_columns=["host"])
    run(wh, "refresh_rollups")
    before = ask(wh)
    compress.compress_now(wh, "3d", now=NOW)
    assert_answer(ask(wh), before)
    # late writes into compressed days: a new instant where host a passes (its other metrics
    # missing), and a reading of host c's missing cpu.idle at an existing hit
    hit_c = before[(before["host"] == "c") & before["cpu.idle"].isna()].iloc[0]
    late = pd.DataFrame({
        "metric": ["cpu.user", "cpu.idle"], "host": ["a", "c"],
        "ts": [pd.Timestamp("2026-11-02T12:05:00Z"), hit_c["ts"]], "value": [99.5, 42.0]})
    assert wh.write_points(late, label_columns=["host"]).written == 2
    all_points = pd.concat([points, late], ignore_index=True)
    got = ask(wh)
    assert_answer(got, expected(all_points, "cpu.user", lambda v: v > 80))
    new = got[(got["host"] == "a") & (got["ts"] == pd.Timestamp("2026-11-02T12:05:00Z"))]
    assert len(new) == 1 and new[["cpu.system", "cpu.idle"]].isna().all(axis=None)
    assert (got[(got["host"] == "c") & (got["ts"] == hit_c["ts"])]["cpu.idle"] == 42.0).all()


@pytest.mark.storage
@pytest.mark.parametrize("many", [False, True])
def test_archived_chunks_answer_the_same(wh, monkeypatch, many):
    if many:  # DuckDB's long-row form over hot rows and Parquet files
        monkeypatch.setattr(frame_where, "_MANY_SERIES", 1)
    points = readings()
    wh.write_points(points, label_columns=["host"])
    want = expected(points, "cpu.user", lambda v: v > 80)
    jobs.set_retention(wh, "points", "8d", archive=True)
    run(wh, "refresh_rollups")
    run(wh, "archive")
    run(wh, "retention")
    manifest = jobs.archive_manifest(wh)
    assert len(manifest) and manifest["dropped_at"].notna().all()
    assert_answer(ask(wh), want)


def test_long_rows_scatter_to_their_hit_and_metric():
    rows = {"n": np.array([1, 0, 1, 0, 2]), "t": np.array([20, 10, 20, 10, 30]),
            "grp": np.array([0, 0, 0, 0, 1]), "m": np.array([0, 0, 2, 1, 0]),
            "v": np.array([1.5, 2.5, 3.5, 4.5, 5.5])}
    wide = frame_where.wide_readings(rows, width=3)
    assert wide["t"].tolist() == [10, 20, 30] and wide["grp"].tolist() == [0, 0, 1]
    np.testing.assert_array_equal(wide["v0"], [2.5, 1.5, 5.5])
    np.testing.assert_array_equal(wide["v1"], [4.5, np.nan, np.nan])
    np.testing.assert_array_equal(wide["v2"], [np.nan, 3.5, np.nan])
    already_wide = {"t": np.array([1]), "grp": np.array([0]), "v0": np.array([1.0])}
    assert frame_where.wide_readings(already_wide, width=1) is already_wide
