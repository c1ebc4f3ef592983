"""Space reclaim after a job is best effort (issue 15 follow-up, jobs/reclaim.py).

DuckDB refuses a plain CHECKPOINT while another connection holds a transaction older than a
committed UPDATE or ALTER TABLE. The compress and retention jobs, ``drop_chunks`` and
``warehouse info`` end with (or start with) a CHECKPOINT, after their data work committed:
they failed whenever a frame was being read meanwhile. Now the reclaim is retried briefly,
then deferred and said so; any other error still fails. DuckDB files of their own, except the
last test, which runs on both engines."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from warehouse import Warehouse, jobs
from warehouse.jobs import compress
from warehouse.jobs.reclaim import reclaim_space

NOW = pd.Timestamp("2026-11-20T00:00:00Z")
DEFERRED = "space reclaim deferred"


@pytest.fixture
def duck(tmp_path):
    warehouse = Warehouse(f"duckdb:///{tmp_path / 'w.duckdb'}")
    yield warehouse
    warehouse.close()


def write_days(wh, days: int = 3) -> None:
    ts = pd.date_range("2026-11-01T00:00:00Z", periods=days * 24, freq="1h")
    wh.write_points(pd.concat([pd.DataFrame({
        "metric": metric, "labels": [{"host": "a"}] * len(ts), "ts": ts,
        "value": np.arange(len(ts), dtype="f8")}) for metric in ("cpu", "mem")],
        ignore_index=True))


@contextmanager
def older_transaction(wh):
    """A connection holding a transaction, as a frame being read does."""
    with wh.engine.connect() as reading:
        reading.execute(text("SELECT count(*) FROM series")).scalar_one()
        yield reading


def last_run(wh, job: str):
    return jobs.job_runs(wh, job).iloc[0]


def test_the_compress_job_succeeds_and_records_the_deferred_reclaim(duck):
    """The job sorts and copies the chunks (ALTER TABLE readings, UPDATE sorted_chunks),
    then CHECKPOINTs: with a frame in flight that failed the run although its chunks were
    committed. Now the run succeeds at its first attempt and its record says why the space
    is not back yet; once the frame is done, the next checkpoint goes through."""
    write_days(duck)
    compress.set_policy(duck, "1d")
    with older_transaction(duck):
        run = jobs.run_job(duck, "compress", now=NOW, retries=0)
        assert (run.status, run.attempts, run.rows) == ("succeeded", 1, 144)
        assert DEFERRED in last_run(duck, "compress")["error"]
        assert "another connection holds an older transaction" in run.notes[0]
    assert reclaim_space(duck) is None
    again = jobs.run_job(duck, "compress", now=NOW, retries=0)
    assert (again.status, again.rows, again.notes) == ("succeeded", 0, [])


def test_retention_and_drop_chunks_after_an_alter_under_an_open_transaction(duck, caplog):
    """Retention only deletes, which does not stop a CHECKPOINT; an UPDATE or ALTER TABLE
    committed by anyone while an older transaction is open does (here the compress job's).
    Both deleting paths then failed after their rows were gone."""
    write_days(duck, days=4)
    jobs.run_job(duck, "refresh_rollups", now=NOW)  # retention keeps chunks not rolled up
    with older_transaction(duck):
        compress.compress_now(duck, "1d", now=NOW)  # commits ALTER TABLE readings
        duck.set_retention("points", "17d")  # 11-01 and 11-02 end by NOW - 17d
        run = jobs.run_job(duck, "retention", now=NOW, retries=0)
        assert (run.status, run.rows) == ("succeeded", 96), run.error
        assert DEFERRED in last_run(duck, "retention")["error"]
        caplog.clear()
        assert duck.drop_chunks("points", "2026-11-04T00:00:00Z") == ["points_20261103_000000"]
        assert DEFERRED in caplog.text
    assert int(duck.sql("SELECT count(*) AS n FROM points")["n"].iloc[0]) == 48


def test_warehouse_info_counts_without_the_checkpoint_when_refused(duck):
    """``info`` CHECKPOINTs so rows still in the write-ahead log count; refused, it failed.
    Now it answers (bytes may leave those rows out)."""
    write_days(duck)
    with older_transaction(duck):
        compress.compress_now(duck, "1d", now=NOW)
        sizes = duck.info()["tables"].set_index("table")
    assert sizes.loc["points", "rows"] == 144 and sizes.loc["readings", "rows"] == 72


def test_the_reclaim_is_retried_while_the_transaction_in_the_way_ends(duck):
    """Bounded retry: the second attempt, after the older transaction ended, reclaims."""
    write_days(duck)
    attempts = []
    with older_transaction(duck) as reading:
        compress.compress_now(duck, "1d", now=NOW)

        def transaction():
            attempts.append(len(attempts) + 1)
            if len(attempts) == 2:
                reading.rollback()  # the frame is done
            return duck.engine.begin()

        assert reclaim_space(duck, transaction) is None
    assert attempts == [1, 2]


def test_other_checkpoint_errors_still_fail(duck):
    """Only the refusal for another transaction is tolerated: a CHECKPOINT in a transaction
    that changed something itself is a bug of ours and raises, as does any other error."""
    write_days(duck, days=1)

    @contextmanager
    def with_own_changes():
        with duck.engine.begin() as conn:
            conn.execute(text("CREATE TABLE scratch (a INTEGER)"))
            yield conn

    with pytest.raises(OperationalError, match="transaction local changes"):
        reclaim_space(duck, with_own_changes)

    def broken():
        raise OperationalError("CHECKPOINT", {}, RuntimeError("disk gone"))

    with pytest.raises(OperationalError, match="disk gone"):
        reclaim_space(duck, broken)


def test_the_reclaim_defers_nothing_when_nothing_is_in_the_way(wh):
    """Both engines: the compress job with no older transaction reclaims (DuckDB) or has
    nothing to reclaim (PostgreSQL: the chunk is vacuumed instead) and notes no deferral."""
    write_days(wh)
    jobs.run_job(wh, "refresh_rollups", now=NOW)  # PostgreSQL compresses rolled-up chunks
    compress.set_policy(wh, "1d")
    run = jobs.run_job(wh, "compress", now=NOW, retries=0)
    assert run.status == "succeeded" and run.rows > 0, run.error
    assert not any(DEFERRED in note for note in run.notes)
    # The words alone are not the refusal: only DuckDB's own TransactionException is.
    assert wh.backend.reclaim_refused(OperationalError("CHECKPOINT", {}, RuntimeError(
        "Cannot CHECKPOINT: there are other write transactions active"))) is None
