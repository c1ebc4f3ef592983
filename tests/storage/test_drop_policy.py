"""drop_chunks and the retention job obey the archive policy through one rule
(warehouse.jobs.chunk_policy), on both engines: refused with the chunk names, ``force``
overrides, ``dry_run`` drops nothing; archived chunks dropped by hand stay queryable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs
from warehouse.errors import RetentionPolicyError
from warehouse.jobs.chunk_policy import judge_chunks

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
DAYS = 10  # 11-01 .. 11-10, a chunk a day; a 5-day policy at NOW archives 11-01 .. 11-06
PER_DAY = 288


@pytest.fixture(autouse=True)
def archive_dir(tmp_path, monkeypatch):
    root = tmp_path / "archive"
    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(root))
    return root


def frame(metric="cpu", seed=0, n=DAYS * PER_DAY, start="2026-11-01"):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"metric": metric, "labels": [{"host": "a"}] * n,
                         "ts": pd.date_range(start, periods=n, freq="5min", tz="UTC"),
                         "value": rng.normal(50, 10, n).round(3)})


def run(wh, name, now=NOW):
    result = jobs.run_job(wh, name, now=now, retries=0)
    assert result.status == "succeeded", result.error
    return result


def hot_rows(wh) -> int:
    return int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0])


def chunk_names(wh, before: str) -> list[str]:
    chunks = wh.show_chunks("points")
    return chunks[chunks["range_end"] <= pd.Timestamp(before)]["chunk_name"].tolist()


def test_drop_under_an_archive_policy_is_refused_naming_the_chunks(wh):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    doomed = chunk_names(wh, "2026-11-04T00:00:00Z")
    assert len(doomed) == 3
    for dry_run in (False, True):  # a dry run answers exactly what the drop would do
        with pytest.raises(RetentionPolicyError) as refused:
            wh.drop_chunks("points", "2026-11-04T00:00:00Z", dry_run=dry_run)
        assert refused.value.chunks == doomed and refused.value.table == "points"
        message = str(refused.value)
        assert all(name in message for name in doomed) and "not archived yet" in message
        assert "force" in message
    assert hot_rows(wh) == DAYS * PER_DAY
    assert wh.show_chunks("points")["chunk_name"].tolist()[:3] == doomed

    # dry_run with force: what would go, nothing gone.
    assert wh.drop_chunks("points", "2026-11-04T00:00:00Z", force=True, dry_run=True) == doomed
    assert hot_rows(wh) == DAYS * PER_DAY
    # force: gone, rows lost (nothing was archived).
    assert wh.drop_chunks("points", "2026-11-04T00:00:00Z", force=True) == doomed
    assert hot_rows(wh) == (DAYS - 3) * PER_DAY
    assert len(wh.points("cpu")) == (DAYS - 3) * PER_DAY
    assert jobs.archive_manifest(wh).empty


def test_archived_chunks_may_be_dropped_by_hand_and_stay_queryable(wh):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    run(wh, "archive")  # 11-01 .. 11-06 archived and verified; 11-07 on are not
    archived = chunk_names(wh, "2026-11-07T00:00:00Z")
    # One chunk too many: refused, naming only the unarchived one; nothing dropped.
    with pytest.raises(RetentionPolicyError) as refused:
        wh.drop_chunks("points", "2026-11-08T00:00:00Z")
    assert refused.value.chunks == chunk_names(wh, "2026-11-08T00:00:00Z")[-1:]
    assert hot_rows(wh) == DAYS * PER_DAY
    assert wh.drop_chunks("points", "2026-11-07T00:00:00Z", dry_run=True) == archived
    assert hot_rows(wh) == DAYS * PER_DAY

    assert wh.drop_chunks("points", "2026-11-07T00:00:00Z") == archived
    assert hot_rows(wh) == (DAYS - 6) * PER_DAY
    manifest = jobs.archive_manifest(wh)
    assert manifest["dropped_at"].notna().all()  # their files now answer for them
    assert len(wh.points("cpu")) == DAYS * PER_DAY
    counts = jobs.restore_archive(wh, "2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z", now=NOW)
    assert counts["rows_inserted"] == PER_DAY


def test_a_chunk_changed_since_its_archive_is_not_archived(wh):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    run(wh, "archive")
    wh.write_points(frame(n=2, start="2026-11-02T00:01:00", seed=5))  # late, still hot
    with pytest.raises(RetentionPolicyError, match="manifest has 288 rows, the chunk 290"):
        wh.drop_chunks("points", "2026-11-03T00:00:00Z")
    assert hot_rows(wh) == DAYS * PER_DAY + 2


def test_without_an_archive_policy_chunks_drop_freely(wh):
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d")  # retention, no archive
    assert len(wh.drop_chunks("points", "2026-11-03T00:00:00Z")) == 2
    assert hot_rows(wh) == (DAYS - 2) * PER_DAY


def test_a_metric_archive_policy_protects_that_metrics_rows(wh):
    wh.write_points(pd.concat([frame("cpu"), frame("mem", seed=1)]))
    jobs.set_retention(wh, "points", "8d")                              # table: no archive
    jobs.set_retention(wh, "points", "5d", archive=True, metric="mem")  # mem: archive first
    with pytest.raises(RetentionPolicyError, match="metric mem: not archived yet"):
        wh.drop_chunks("points", "2026-11-02T00:00:00Z")
    run(wh, "refresh_rollups")
    run(wh, "archive")  # mem of 11-01 .. 11-06
    first = chunk_names(wh, "2026-11-02T00:00:00Z")
    assert wh.drop_chunks("points", "2026-11-02T00:00:00Z") == first
    assert len(wh.points("mem")) == DAYS * PER_DAY  # mem of 11-01 read from its archive
    assert len(wh.points("cpu")) == (DAYS - 1) * PER_DAY  # cpu was not to be archived


def test_the_retention_job_and_drop_chunks_judge_alike(wh):
    """The job asks the same function: a unit the policy keeps is named the same way."""
    wh.write_points(frame())
    jobs.set_retention(wh, "points", "5d", archive=True)
    run(wh, "refresh_rollups")
    with wh.engine.connect() as conn:
        verdict = judge_chunks(conn, wh.backend, "points", NOW - pd.Timedelta("5D"))
    assert verdict.droppable == [] and len(verdict.unarchived) == 6
    result = run(wh, "retention")
    assert result.rows == 0
    for name in verdict.labels(verdict.unarchived):
        assert f"{name}: not archived yet" in " ".join(result.notes)
    run(wh, "archive")
    with wh.engine.connect() as conn:
        verdict = judge_chunks(conn, wh.backend, "points", NOW - pd.Timedelta("5D"))
    assert len(verdict.droppable) == 6 and verdict.unarchived == []
    assert verdict.archived == verdict.droppable
    assert run(wh, "retention").rows == 6 * PER_DAY


def test_the_sql_only_retention_keeps_unarchived_rows_of_an_archiving_metric(wh):
    """What pg_cron runs (wh_apply_retention, migration 0006): a chunk-wide unit without an
    archive policy waits while rows of a metric whose policy archives are still in it."""
    if wh.backend.capabilities.single_writer:
        pytest.skip("jobs run in the database (pg_cron) only on a server engine")
    wh.write_points(pd.concat([frame("cpu"), frame("mem", seed=1)]))
    jobs.set_retention(wh, "points", "8d")
    jobs.set_retention(wh, "points", "5d", archive=True, metric="mem")
    run(wh, "refresh_rollups")

    def sql_retention():
        with wh.engine.begin() as conn:
            return conn.execute(text("SELECT wh_apply_retention(:now)"),
                                {"now": NOW}).scalar_one()

    assert sql_retention() == 0  # mem is not archived: nothing of 11-01 .. 11-03 goes
    assert len(wh.points("mem")) == DAYS * PER_DAY
    run(wh, "archive")
    sql_retention()  # mem units (archived) go first; the chunk-wide units then follow
    assert len(wh.points("mem")) == DAYS * PER_DAY  # from the archive
    assert len(wh.points("cpu")) == (DAYS - 3) * PER_DAY
    assert wh.show_chunks("points")["range_start"].min() == pd.Timestamp("2026-11-04", tz="UTC")
