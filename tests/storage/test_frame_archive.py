"""wh.frame, wh.points([...]) and last=N over archived-and-dropped chunks answer as they did
before the rows left the hot table (Parquet read in SQL on DuckDB, in Python on PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from warehouse import jobs

NOW = pd.Timestamp("2026-11-12T00:00:00Z")


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    return root


def two_metrics() -> pd.DataFrame:
    rng = np.random.default_rng(4)
    ts = pd.date_range("2026-11-01", periods=10 * 24 * 6, freq="10min", tz="UTC")
    parts = [pd.DataFrame({"metric": m, "ts": ts, "host": h,
                           "value": rng.uniform(0, 100, len(ts)).round(2)})
             for m in ("cpu.user", "cpu.idle") for h in ("a", "b")]
    return pd.concat(parts, ignore_index=True)


def run(wh, name):
    result = jobs.run_job(wh, name, now=NOW, retries=0)
    assert result.status == "succeeded", result.error


def test_frame_and_newest_read_archived_rows(wh):
    wh.write_points(two_metrics(), label_columns=["host"])
    metrics = ["cpu.user", "cpu.idle"]
    span = ("2026-11-02T00:30:00Z", "2026-11-08T12:00:00Z")
    questions = {
        "bucketed": lambda: wh.frame(metrics, *span, every="6h", agg="mean", by=["host"]),
        "raw where": lambda: wh.frame(metrics, *span, where="cpu.user > 95"),
        "bucketed where": lambda: wh.frame(metrics, *span, every="1d", agg="max",
                                           where="cpu.idle >= 99"),
        "long": lambda: wh.points(metrics, *span, every="12h", agg="p95", by=["host"]),
        "last": lambda: wh.points("cpu.user", None, "2026-11-04T00:00:00Z", every="1h",
                                  agg="max", by=[], last=3),
    }
    before = {name: ask() for name, ask in questions.items()}
    assert all(len(b) > 0 for b in before.values())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    run(wh, "archive")
    run(wh, "retention")
    assert jobs.archive_manifest(wh)["dropped_at"].notna().all()
    for name, ask in questions.items():
        pd.testing.assert_frame_equal(ask(), before[name], check_dtype=False, rtol=1e-9,
                                      obj=name)
