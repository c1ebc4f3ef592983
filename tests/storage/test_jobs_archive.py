"""Retention and archival: policies, the Parquet archive and its manifest, the invariant
checked in SQL, archived data staying queryable, and restore — on both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sqlalchemy import text

from warehouse import ValidationError, jobs
from warehouse.backends.parquet import file_sha256

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
DAYS = 10  # 2026-11-01 .. 11-10, one chunk a day; a 5-day policy at NOW covers 11-01..11-06


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    return root


def frame(n=DAYS * 24 * 12, start="2026-11-01", freq="5min", metric="cpu", seed=0,
          hosts=("a", "b", "c")):
    rng = np.random.default_rng(seed)
    ts = pd.date_range(start, periods=n, freq=freq, tz="UTC")
    return pd.DataFrame({"metric": metric, "labels": [{"host": hosts[i % len(hosts)]}
                                                      for i in range(n)],
                         "ts": ts, "value": rng.normal(50, 10, n).round(3)})


def run(wh, name, now=NOW):
    result = jobs.run_job(wh, name, now=now, retries=0)
    assert result.status == "succeeded", result.error
    return result


def said(result) -> str:
    """What a run told the operator (job_runs.error holds the same)."""
    return " ".join(filter(None, [result.error, *result.notes]))


def raw_points(wh, *args, **kwargs):
    """The same query answered from raw points only (no rollup tier)."""
    return wh.points(*args, rollups=False, **kwargs)


def hot_rows(wh, metric=None):
    sql = "SELECT count(*) AS n FROM points"
    if metric:
        sql += " WHERE series_id IN (SELECT series_id FROM series WHERE metric = :m)"
    return int(wh.sql(sql, {"m": metric} if metric else None)["n"].iloc[0])


def test_archive_then_retention_then_restore(wh, archive_dir):
    df = frame()
    wh.write_points(df)
    jobs.set_retention(wh, "points", "5d", archive=True)
    before = {agg: wh.points("cpu", every="1h", agg=agg) for agg in ("mean", "p95")}

    # Nothing may go before it is rolled up and archived: the SQL guard says why.
    first = run(wh, "retention")
    assert first.rows == 0 and "not archived yet" in said(first)
    run(wh, "refresh_rollups")
    assert run(wh, "archive").rows == 6 * 288
    manifest = jobs.archive_manifest(wh)
    assert len(manifest) == 6 and manifest["verified"].all() and manifest["rows"].sum() == 6 * 288
    for entry in manifest.itertuples():
        path = archive_dir / entry.path
        # <warehouse_id>/points/date=.../<chunk>.<sha256 prefix>.parquet, owned by this warehouse
        assert entry.path == (f"{entry.warehouse_id}/points/date={entry.chunk_start:%Y-%m-%d}/"
                              f"{entry.chunk_name}.{entry.sha256[:16]}.parquet")
        assert file_sha256(path) == entry.sha256 and path.stat().st_size == entry.bytes
    assert run(wh, "archive").rows == 0  # unchanged units are not written again

    assert run(wh, "retention").rows == 6 * 288
    assert hot_rows(wh) == len(df) - 6 * 288
    assert len(wh.show_chunks("points")) == DAYS - 6
    assert jobs.archive_manifest(wh)["dropped_at"].notna().all()

    # Archived data stays queryable: raw rows, percentiles (raw only) and rollup answers.
    raw = wh.points("cpu")
    assert len(raw) == len(df) and not raw.duplicated(["series_id", "ts"]).any()
    for agg, expected in before.items():
        pd.testing.assert_frame_equal(wh.points("cpu", every="1h", agg=agg), expected)
    for agg in ("mean", "last", "p50"):  # unaligned edges inside archived ranges
        args = ("cpu", "2026-11-02T00:30:00Z", "2026-11-08T12:00:00Z")
        pd.testing.assert_frame_equal(wh.points(*args, every="1h", agg=agg),
                                      raw_points(wh, *args, every="1h", agg=agg), rtol=1e-9)
    window = wh.points("cpu", "2026-11-02T00:30:00Z", "2026-11-08T12:00:00Z")
    in_window = df[(df["ts"] >= "2026-11-02T00:30:00Z") & (df["ts"] < "2026-11-08T12:00:00Z")]
    assert len(window) == len(in_window)
    assert np.isclose(wh.points("cpu", "2026-11-02T00:30:00Z", "2026-11-08T12:00:00Z",
                                every="1w", agg="sum", by=[])["value"].sum(),
                      in_window["value"].sum())
    all_points = int(wh.sql("SELECT count(*) AS n FROM all_points")["n"].iloc[0])
    if wh.backend.capabilities.parquet_scan:
        assert all_points == len(df)  # hot table + Parquet files
    else:
        assert all_points == hot_rows(wh)  # documented: PostgreSQL reads no Parquet in SQL

    # Archived history is read-only until restored.
    with pytest.raises(ValidationError, match="archived and dropped"):
        wh.write_points(frame(3, start="2026-11-03T10:00:00"))
    counts = jobs.restore_archive(wh, "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z", now=NOW)
    assert counts == {"units": 1, "rows_read": 288, "rows_inserted": 288}
    assert jobs.restore_archive(wh, "2026-11-03T00:00:00Z", "2026-11-04T00:00:00Z",
                        now=NOW)["rows_inserted"] == 0  # idempotent
    assert hot_rows(wh) == len(df) - 5 * 288
    assert len(wh.points("cpu")) == len(df)
    wh.write_points(frame(1, start="2026-11-03T10:00:00.5"))  # hot again: writes allowed
    # Held for 7 days: retention leaves it; afterwards the changed chunk is archived again.
    assert run(wh, "retention").rows == 0
    later = NOW + pd.Timedelta("8D")
    run(wh, "refresh_rollups", later)
    assert "archive again first" in said(run(wh, "retention", later))
    assert run(wh, "archive", later).rows > 0
    assert run(wh, "retention", later).rows > 0
    assert len(wh.points("cpu")) == len(df) + 1


def test_parquet_files_are_zstd_sorted_and_self_describing(wh, archive_dir):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "archive")
    entry = jobs.archive_manifest(wh).iloc[0]
    meta = pq.ParquetFile(archive_dir / entry["path"]).metadata
    assert meta.row_group(0).column(0).compression == "ZSTD"
    table = pq.read_table(archive_dir / entry["path"]).to_pandas()
    assert list(table.columns) == ["ts", "series_id", "value", "run_id"]
    assert table.equals(table.sort_values(["series_id", "ts"]))
    assert (table["ts"].min(), table["ts"].max()) == (entry["min_ts"], entry["max_ts"])


def test_the_invariant_is_enforced_in_sql(wh):
    """Call the retention SQL directly, bypassing Python: no manifest row, a wrong row count,
    or an unverified file all make it refuse; a matching verified row lets it drop."""
    wh.write_points(frame())
    run(wh, "refresh_rollups")
    unit = {"table": "points", "start": pd.Timestamp("2026-11-01", tz="UTC"),
            "end": pd.Timestamp("2026-11-02", tz="UTC"), "metric": "*", "archive": True,
            "now": NOW}
    script = wh.backend.sql("jobs/retention_drop")

    def drop():
        with wh.engine.begin() as conn:
            return wh.backend.run_script(conn, script, unit)[0]

    assert drop() == (0, "not archived yet")
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "archive")
    with wh.engine.begin() as conn:
        conn.execute(text("UPDATE archive_manifest SET rows = rows - 1 "
                          "WHERE chunk_start = :s"), {"s": unit["start"]})
    assert drop()[0] == 0
    with wh.engine.begin() as conn:
        conn.execute(text("UPDATE archive_manifest SET rows = rows + 1, verified = false "
                          "WHERE chunk_start = :s"), {"s": unit["start"]})
    assert drop() == (0, "archive not verified")
    assert hot_rows(wh) == len(frame())
    with wh.engine.begin() as conn:
        conn.execute(text("UPDATE archive_manifest SET verified = true WHERE chunk_start = :s"),
                     {"s": unit["start"]})
    assert drop() == (288, None)
    assert hot_rows(wh) == len(frame()) - 288


def test_a_chunk_that_changes_after_archiving_is_archived_again(wh):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    run(wh, "archive")
    extra = frame(4, start="2026-11-02T01:02:03.5", seed=9)
    wh.write_points(extra)  # late points in an archived (not yet dropped) chunk
    refused = run(wh, "retention")
    assert "manifest has 288 rows, the chunk 292" in said(refused)
    assert run(wh, "archive").rows == 292
    refused = run(wh, "retention")  # archived again, but rollups lag behind the late points
    assert "late points not rolled up yet" in said(refused)
    run(wh, "refresh_rollups")
    run(wh, "retention")
    assert len(wh.points("cpu")) == len(frame()) + 4
    assert jobs.archive_manifest(wh)["dropped_at"].notna().sum() == 6


def test_metric_policies_remove_one_metric_sooner(wh):
    wh.write_points(pd.concat([frame(), frame(metric="mem", seed=1)]))
    jobs.set_retention(wh, "points", "8d", archive=True)
    jobs.set_retention(wh, "points", "5d", archive=True, metric="mem")
    with pytest.raises(ValueError, match="keep less than the table"):
        jobs.set_retention(wh, "points", "9d", metric="mem")
    run(wh, "refresh_rollups")
    run(wh, "archive")
    run(wh, "retention")
    assert hot_rows(wh, "mem") == len(frame()) - 6 * 288
    assert hot_rows(wh, "cpu") == len(frame())
    for metric in ("cpu", "mem"):
        assert len(wh.points(metric)) == len(frame())
    # The chunk-wide units were archived while mem was still in them: retention refused them
    # and the next cycle archives them again without mem, so no row is archived twice.
    run(wh, "archive")
    run(wh, "retention")
    manifest = jobs.archive_manifest(wh)
    assert sorted(manifest["metric"].unique()) == ["*", "mem"]
    assert manifest[manifest["metric"] == "*"]["rows"].tolist() == [288] * 3
    assert manifest["dropped_at"].notna().all()
    assert hot_rows(wh) == 2 * len(frame()) - 9 * 288
    for metric in ("cpu", "mem"):
        assert len(wh.points(metric)) == len(frame())
    if wh.backend.capabilities.parquet_scan:
        assert wh.sql("SELECT count(*) AS n FROM all_points")["n"].iloc[0] == 2 * len(frame())
    counts = jobs.restore_archive(wh, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", now=NOW)
    assert counts == {"units": 2, "rows_read": 2 * 288, "rows_inserted": 2 * 288}
    assert hot_rows(wh, "mem") == len(frame()) - 5 * 288


def test_retention_without_archive_and_for_runs(wh):
    wh.write_points(frame())
    runs = pd.DataFrame({"run_id": [f"00000000-0000-0000-0000-00000000000{i}" for i in range(3)],
                         "recipe": "etl", "status": "succeeded",
                         "started_at": pd.to_datetime(["2026-10-01", "2026-10-20", "2026-11-10"],
                                                      utc=True)})
    wh.write_runs(runs)
    jobs.set_retention(wh, "points", "5d")
    jobs.set_retention(wh, "runs", "30d")
    with pytest.raises(ValueError, match="not supported"):
        jobs.set_retention(wh, "runs", "30d", archive=True)
    run(wh, "refresh_rollups")
    assert run(wh, "retention").rows == 6 * 288 + 1
    assert hot_rows(wh) == len(frame()) - 6 * 288
    assert len(wh.runs()) == 2
    assert jobs.archive_manifest(wh).empty
    policies = jobs.retention_policies(wh)
    assert policies[["table_name", "keep"]].values.tolist() == [["points", "5d"], ["runs", "30d"]]
    assert jobs.remove_retention(wh, "runs") and not jobs.remove_retention(wh, "runs")


def test_empty_chunks_go_without_an_archive(wh):
    wh.write_points(frame(12, start="2026-10-01", freq="1h"))
    with wh.engine.begin() as conn:
        conn.execute(text("DELETE FROM points"))
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    result = run(wh, "retention")
    assert (result.rows, said(result)) == (0, "")
    assert wh.show_chunks("points").empty
