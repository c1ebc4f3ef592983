"""Bulk points reach PostgreSQL as a stream of COPY blocks that a writer thread sends while
the next block is encoded (postgresql_write.points_copy_parts, copy_in). Whatever the
blocking, every point is stored once with its own value and run_id, on each path a bulk
batch can take: a new chunk, a direct COPY into an existing chunk, and the de-duplicating
staging table. DuckDB runs the same writes and must store the same."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse.backends import postgresql_write

T0 = pd.Timestamp("2026-10-05T00:00:00Z")
HOSTS, STEPS = 30, 400  # 12,000 points a metric: over BULK_ROWS, so the bulk paths run
RUNS = [str(uuid.UUID(int=i * 7919 + 1)) for i in range(5)]


@pytest.fixture(autouse=True)
def tiny_blocks(monkeypatch):
    """Many blocks per batch, and a block edge inside each run_id layout."""
    monkeypatch.setattr(postgresql_write, "COPY_PART_ROWS", 997)


def batch(offset: int = 0, value: float = 0.0) -> pd.DataFrame:
    """Two metrics on HOSTS hosts; every third point belongs to a run (several runs)."""
    ts = pd.date_range(T0 + pd.Timedelta(seconds=10 * offset), periods=STEPS, freq="10s",
                       unit="us")
    n = HOSTS * STEPS
    frames = []
    for k, metric in enumerate(("cpu", "mem")):
        run_id = np.array([RUNS[i % len(RUNS)] if i % 3 == 0 else None for i in range(n)],
                          dtype=object)
        frames.append(pd.DataFrame({
            "metric": metric, "ts": ts.repeat(HOSTS),
            "host": np.tile([f"h{h:02d}" for h in range(HOSTS)], STEPS),
            "value": np.arange(n, dtype="f8") * (k + 1) + value + 0.25,
            "run_id": run_id}))
    return pd.concat(frames, ignore_index=True)


def stored(wh) -> pd.DataFrame:
    parts = [wh.points(metric, with_labels=True).assign(metric=metric)
             for metric in ("cpu", "mem")]
    return comparable(pd.concat(parts, ignore_index=True))


def comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Sorted plain columns: ts in µs, run_id as text or None."""
    out = frame[["metric", "host", "ts", "value", "run_id"]].copy()
    out["ts"] = out["ts"].dt.as_unit("us")
    out["run_id"] = [None if pd.isna(r) else str(r) for r in out["run_id"]]
    out = out.astype({"metric": object, "host": object})
    return out.sort_values(["metric", "host", "ts"]).reset_index(drop=True)


def assert_stored(wh, frame: pd.DataFrame) -> None:
    got, want = stored(wh), comparable(frame)
    assert len(got) == len(want)
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_index_type=False)


def test_bulk_batch_in_blocks_stores_every_point_once(wh):
    first = batch()
    assert wh.write_points(first, label_columns=["host"]).written == len(first)
    assert_stored(wh, first)


def test_blocks_into_an_existing_chunk_and_through_staging(wh):
    first = batch()
    wh.write_points(first, label_columns=["host"])
    # later points of the same chunk: a direct COPY into it (PostgreSQL)
    later = batch(offset=STEPS)
    assert wh.write_points(later, label_columns=["host"]).written == len(later)
    # a batch overlapping both and running past them: de-duplicated through the staging
    # table, stored points kept (skipped), the new ones written
    overlap = batch(offset=STEPS + STEPS // 2, value=1000.0)
    result = wh.write_points(overlap, label_columns=["host"])
    assert (result.written, result.skipped) == (len(overlap) // 2, len(overlap) // 2)
    merged = (pd.concat([first, later, overlap], ignore_index=True)
              .drop_duplicates(["metric", "host", "ts"], keep="first"))
    assert_stored(wh, merged)


def test_a_failing_block_stream_leaves_nothing(wh, monkeypatch):
    """An error while encoding a later block (here: the third) rolls the whole batch back."""
    if wh.backend.capabilities.native_partitions is False:
        pytest.skip("DuckDB does not stream COPY blocks")
    real = postgresql_write._copy_rows
    calls = []

    def failing(*args):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("encoder broke")
        return real(*args)

    monkeypatch.setattr(postgresql_write, "_copy_rows", failing)
    with pytest.raises(RuntimeError, match="encoder broke"):
        wh.write_points(batch(), label_columns=["host"])
    monkeypatch.setattr(postgresql_write, "_copy_rows", real)
    with wh.engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM points")).scalar() == 0
    again = batch()
    assert wh.write_points(again, label_columns=["host"]).written == len(again)
    assert_stored(wh, again)
