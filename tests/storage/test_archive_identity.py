"""Archives owned by one warehouse (issue 9), on both engines: a warehouse identity in the
database; files under <root>/<warehouse_id>/, never overwritten; private file modes; restore
that checks every file before writing a row; percentiles over fully archived ranges."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from warehouse import Warehouse, WarehouseError, jobs
from warehouse.backends.parquet import (
    ArchiveFileConflict,
    file_sha256,
    publish,
    write_points_file,
)
from warehouse.jobs.archive import warehouse_id

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
DAYS = 10  # 11-01 .. 11-10, a chunk a day; a 5-day policy at NOW archives 11-01 .. 11-06
ARCHIVED = 6 * 288


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    root = tmp_path / "shared-archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    return root


def frame(n=DAYS * 288, start="2026-11-01", seed=0, metric="cpu"):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"metric": metric, "labels": [{"host": "ab"[i % 2]} for i in range(n)],
                         "ts": pd.date_range(start, periods=n, freq="5min", tz="UTC"),
                         "value": rng.normal(50, 10, n).round(3)})


def run(wh, name, now=NOW):
    result = jobs.run_job(wh, name, now=now, retries=0)
    assert result.status == "succeeded", result.error
    return result


def archive_and_drop(wh, keep="5d"):
    jobs.set_retention(wh, "points", keep, archive=True)
    for job in ("refresh_rollups", "archive", "retention"):
        run(wh, job)


def hot_rows(wh) -> int:
    return int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0])


def other_warehouse(wh, request, tmp_path) -> Warehouse:
    """A second warehouse on the same engine as ``wh``: another file, or another database."""
    if wh.backend.capabilities.single_writer:
        return Warehouse(f"duckdb:///{tmp_path / 'second.duckdb'}")
    server = request.getfixturevalue("postgres_server")
    return Warehouse(server.create_database(f"wh_second_{uuid.uuid4().hex[:12]}"))


def values(wh, metric="cpu") -> pd.DataFrame:
    rows = wh.points(metric)[["ts", "host", "value"]]
    return rows.sort_values(["host", "ts"]).reset_index(drop=True)


def test_each_warehouse_has_one_identity_that_survives_reopening(wh):
    first = warehouse_id(wh)
    assert uuid.UUID(first)
    assert len(wh.sql("SELECT * FROM warehouse_identity")) == 1
    same = Warehouse(wh.url)
    try:
        assert warehouse_id(same) == first
    finally:
        same.close()
    # One row, by constraint (the primary key is the constant ``one_row = true``).
    with pytest.raises(DBAPIError, match="(?i)duplicate|constraint"), wh.engine.begin() as conn:
        conn.execute(text("INSERT INTO warehouse_identity (warehouse_id, created_at) "
                          "VALUES (CAST(:w AS UUID), now())"), {"w": str(uuid.uuid4())})


def test_two_warehouses_archive_into_one_folder_and_restore_their_own_rows(
        wh, request, tmp_path, archive_dir):
    second = other_warehouse(wh, request, tmp_path)
    try:
        # The same metric, labels and chunks in both, different values: before identities,
        # the file names collided and the second archive replaced the first one's files.
        wh.write_points(frame(seed=1))
        second.write_points(frame(seed=2))
        expected = {id(w): values(w) for w in (wh, second)}
        for w in (wh, second):
            archive_and_drop(w)
            assert hot_rows(w) == DAYS * 288 - ARCHIVED
        owners = {warehouse_id(wh), warehouse_id(second)}
        assert len(owners) == 2
        assert {p.name for p in archive_dir.iterdir()} == owners
        for w in (wh, second):
            manifest = jobs.archive_manifest(w)
            assert (manifest["warehouse_id"] == warehouse_id(w)).all()
            assert manifest["path"].str.startswith(warehouse_id(w) + "/").all()
            # Archived history reads back exactly, and restores exactly.
            pd.testing.assert_frame_equal(values(w), expected[id(w)])
            counts = jobs.restore_archive(w, "2026-11-01T00:00:00Z", "2026-11-07T00:00:00Z", now=NOW)
            assert counts == {"units": 6, "rows_read": ARCHIVED, "rows_inserted": ARCHIVED}
            assert hot_rows(w) == DAYS * 288
            pd.testing.assert_frame_equal(values(w), expected[id(w)])
    finally:
        second.close()


def test_archive_files_and_folders_are_private_whatever_the_umask(wh, archive_dir):
    wh.write_points(frame())
    previous = os.umask(0)  # the most permissive umask: modes must still be exact
    try:
        archive_and_drop(wh)
    finally:
        os.umask(previous)
    own = archive_dir / warehouse_id(wh)
    files = [p for p in own.rglob("*") if p.is_file()]
    folders = [archive_dir, *[p for p in own.rglob("*") if p.is_dir()], own]
    assert len(files) == 6 and all(p.suffix == ".parquet" for p in files)
    assert {stat.S_IMODE(p.stat().st_mode) for p in files} == {0o600}
    assert {stat.S_IMODE(p.stat().st_mode) for p in folders} == {0o700}


def test_a_tampered_file_stops_restore_before_any_row_is_written(wh, archive_dir):
    wh.write_points(frame())
    archive_and_drop(wh)
    manifest = jobs.archive_manifest(wh)
    # Tamper with the newest unit: restoring unit by unit would already have written the
    # five before it.
    victim = archive_dir / manifest["path"].iloc[-1]
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0xFF
    victim.write_bytes(bytes(data))
    with pytest.raises(WarehouseError, match="nothing was restored") as refused:
        jobs.restore_archive(wh, "2026-11-01T00:00:00Z", "2026-11-07T00:00:00Z", now=NOW)
    assert str(victim) in str(refused.value) and "sha256" in str(refused.value)
    assert hot_rows(wh) == DAYS * 288 - ARCHIVED
    assert jobs.archive_manifest(wh)["dropped_at"].notna().all()
    victim.unlink()  # a missing file is refused the same way
    with pytest.raises(WarehouseError, match="is missing"):
        jobs.restore_archive(wh, "2026-11-01T00:00:00Z", "2026-11-07T00:00:00Z", now=NOW)
    assert hot_rows(wh) == DAYS * 288 - ARCHIVED


def test_manifests_from_before_identities_still_restore(wh, archive_dir):
    """Rows written before migration 0006 name files as <table>/date=.../<chunk>.parquet
    relative to the root; they resolve and restore as before."""
    wh.write_points(frame())
    archive_and_drop(wh)
    entry = jobs.archive_manifest(wh).iloc[0]
    old_path = f"points/date={entry['chunk_start']:%Y-%m-%d}/{entry['chunk_name']}.parquet"
    (archive_dir / old_path).parent.mkdir(parents=True)
    os.replace(archive_dir / entry["path"], archive_dir / old_path)
    with wh.engine.begin() as conn:
        conn.execute(text("UPDATE archive_manifest SET path = :p, warehouse_id = NULL "
                          "WHERE chunk_start = :s"), {"p": old_path, "s": entry["chunk_start"]})
    assert len(wh.points("cpu")) == DAYS * 288  # read from the old path
    counts = jobs.restore_archive(wh, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", now=NOW)
    assert counts == {"units": 1, "rows_read": 288, "rows_inserted": 288}


def test_migration_gives_existing_archives_the_identity(wh):
    wh.write_points(frame())
    archive_and_drop(wh)
    wh.downgrade("0005")
    with wh.engine.connect() as conn:  # the manifest outlives the identity
        assert conn.execute(text("SELECT count(*) FROM archive_manifest")).scalar_one() == 6
    wh.migrate()
    manifest = jobs.archive_manifest(wh)
    assert (manifest["warehouse_id"] == warehouse_id(wh)).all()
    assert len(wh.points("cpu")) == DAYS * 288


def test_a_rewritten_unit_gets_a_new_file_and_the_old_one_goes(wh, archive_dir):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    run(wh, "archive")
    first = jobs.archive_manifest(wh).iloc[0]
    wh.write_points(frame(2, start="2026-11-01T00:01:00", seed=7))  # late points, still hot
    run(wh, "archive")
    second = jobs.archive_manifest(wh).iloc[0]
    assert second["rows"] == first["rows"] + 2 and second["path"] != first["path"]
    assert not (archive_dir / first["path"]).exists()
    assert file_sha256(archive_dir / second["path"]) == second["sha256"]


def test_publish_never_overwrites_other_bytes(tmp_path):
    rows = pd.DataFrame({"ts": pd.date_range("2026-11-01", periods=3, freq="1s", tz="UTC"),
                         "series_id": 1, "value": [1.0, 2.0, 3.0], "run_id": None})
    import pyarrow as pa

    table = pa.Table.from_pandas(rows, preserve_index=False)
    final = tmp_path / "unit.parquet"
    final.write_bytes(b"someone else's file")
    tmp, sha, _ = write_points_file(table, final)
    with pytest.raises(ArchiveFileConflict, match="not overwritten"):
        publish(tmp, final, sha)
    assert final.read_bytes() == b"someone else's file"
    # The same bytes under the name: kept, nothing replaced, the temporary file gone.
    final.unlink()
    tmp, sha, _ = write_points_file(table, final)
    publish(tmp, final, sha)
    tmp2, sha2, _ = write_points_file(table, final)
    assert sha2 == sha
    publish(tmp2, final, sha2)
    assert file_sha256(final) == sha and not tmp2.exists()
    assert sorted(p.name for p in Path(tmp_path).iterdir()) == ["unit.parquet"]


@pytest.mark.parametrize("agg", ["p50", "p95", "p99"])
def test_percentiles_over_a_fully_archived_range_equal_those_before(wh, agg):
    """PostgreSQL reads archived files in Python; with no hot row in the range the merged
    frame used to be object-typed and pandas refused the quantile."""
    wh.write_points(frame())
    window = ("2026-11-01T00:00:00Z", "2026-11-05T00:00:00Z")
    before = {
        "series": wh.points("cpu", *window, every="1h", agg=agg),
        "by": wh.points("cpu", *window, every="1d", agg=agg, by=["host"]),
    }
    archive_and_drop(wh)
    assert wh.sql("SELECT count(*) AS n FROM points WHERE ts < :e",
                  {"e": pd.Timestamp(window[1])})["n"].iloc[0] == 0
    pd.testing.assert_frame_equal(wh.points("cpu", *window, every="1h", agg=agg),
                                  before["series"])
    pd.testing.assert_frame_equal(wh.points("cpu", *window, every="1d", agg=agg, by=["host"]),
                                  before["by"])


def test_a_folder_planted_under_the_warehouse_name_receives_nothing(wh, archive_dir, tmp_path):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    archive_dir.mkdir()
    (archive_dir / warehouse_id(wh)).symlink_to(elsewhere, target_is_directory=True)
    result = jobs.run_job(wh, "archive", now=NOW, retries=0)
    assert result.status == "failed" and "not a folder of this user" in result.error
    assert list(elsewhere.iterdir()) == []
    assert not jobs.archive_manifest(wh)["verified"].any()
