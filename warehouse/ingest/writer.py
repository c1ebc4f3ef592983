"""Write validated batches: each call is one all-or-nothing transaction for its rows."""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from sqlalchemy import Engine, text

from warehouse.backends.base import Backend
from warehouse.changes import Change, ChangeFeed, distinct
from warehouse.ingest.invalidation import before_points_write
from warehouse.ingest.points import PointsBatch, prepare_points
from warehouse.ingest.runs import prepare_runs, prepare_steps
from warehouse.ingest.series import SeriesRegistry
from warehouse.ingest.wide import WideRows, prepare_wide
from warehouse.timeparse import us_to_ts


@dataclass(frozen=True)
class WriteResult:
    """What one write did. ``skipped`` counts rows already stored (or repeated in the batch):
    writing the same batch twice writes it once."""

    received: int
    written: int
    skipped: int


class Writer:
    """Validates and writes points, runs and steps through a backend."""

    def __init__(self, engine: Engine, backend: Backend, changes: ChangeFeed | None = None):
        self.engine = engine
        self.backend = backend
        # Each committed write is published here (and NOTIFYed where the engine can).
        self.changes = changes
        self.series = SeriesRegistry(engine, backend)
        # One writer at a time in this process: DuckDB has a single writer anyway, and the
        # anti-join de-duplication must not race with itself. On a single-writer engine the
        # lock is shared with the jobs (per database); elsewhere row locks fence them.
        self._lock = (backend.write_fence if backend.capabilities.single_writer
                      else threading.Lock())

    def write_points(self, data, label_columns=()) -> WriteResult:
        return self._write_points(prepare_points(data, label_columns))

    def write_frame(self, data, label_columns=()) -> WriteResult:
        """Points from a wide frame (ingest/wide.py): a row per label set and instant, a
        column per metric. The same write as :meth:`write_points`; the rows also keep the
        pivoted copy (DuckDB) current where the range allows (``insert_points``)."""
        return self._write_points(*prepare_wide(data, label_columns))

    def _write_points(self, batch: PointsBatch, rows: WideRows | None = None) -> WriteResult:
        received = batch.received
        if batch.frame.empty:
            return WriteResult(received, 0, received)
        ts_us = batch.ts_us
        with self._lock:
            # Chunks first, in bounded transactions of their own (harmless if the data then
            # fails); then series, points and their bookkeeping in one transaction. A bulk
            # batch inside one chunk that does not exist yet makes that chunk itself, in its
            # transaction, claiming it before taking any row lock (postgresql_write.py).
            new_chunk = self._ensure_chunks("points", ts_us, bulk_points=True)
            with self.engine.begin() as conn:
                if new_chunk:
                    new_chunk = self.backend.claim_new_chunk(conn, ts_us)
                ids, learnt = self.series.resolve(conn, batch.series)
                # Columns as arrays, not copies: a day of TSBS is 8.6M rows.
                frame = pd.DataFrame({
                    "ts": batch.frame["ts"].array,
                    "series_id": ids[batch.frame["series_code"].to_numpy()],
                    "value": batch.frame["value"].to_numpy(),
                    "run_id": batch.frame["run_id"].array,
                }, copy=False)
                # Late points invalidate rollups, and archived ranges refuse writes, in the
                # same transaction as the points (warehouse/jobs/invalidation.py).
                before_points_write(conn, self.backend, frame["series_id"].to_numpy(), ts_us)
                written = (self.backend.load_new_chunk(conn, new_chunk, frame) if new_chunk
                           else self.backend.insert_points(conn, frame, rows))
                # Older schemas (before migration 0004) have no series_last to maintain.
                if written and self.backend.table_exists(conn, "series_last"):
                    # In series_id order: writers sharing series then lock their
                    # series_last rows in one order (in batch order, two PostgreSQL writers
                    # sending the same series differently ordered deadlocked).
                    order = np.argsort(ids, kind="stable")
                    newest = batch.newest[order]
                    self.backend.upsert_series_last(conn, pd.DataFrame({
                        "series_id": ids[order], "ts": frame["ts"].array[newest],
                        "value": frame["value"].to_numpy()[newest]}))
                change = self._announce(conn, written, lambda: Change(
                    "points", rows=written, series_ids=tuple(int(i) for i in np.unique(ids)),
                    metrics=distinct(batch.series["metric"]), start=us_to_ts(ts_us.min()),
                    end=us_to_ts(ts_us.max())))
            self.series.remember(learnt)
        self._publish(change)
        return WriteResult(received, written, received - written)

    def write_runs(self, data) -> WriteResult:
        frame = prepare_runs(data)
        return self._upsert("runs", frame, recipes=frame["recipe"].unique())

    def write_steps(self, data) -> WriteResult:
        return self._upsert("step_runs", prepare_steps(data))

    def _upsert(self, table: str, frame: pd.DataFrame, recipes=()) -> WriteResult:
        if frame.empty:
            return WriteResult(0, 0, 0)
        ts_us = frame["started_at"].to_numpy(dtype="datetime64[us]").view("i8")
        with self._lock:
            self._ensure_chunks(table, ts_us)
            with self.engine.begin() as conn:
                if len(recipes):
                    conn.execute(text(self.backend.sql("ingest/insert_recipe")),
                                 [{"recipe": r} for r in recipes])
                written = self.backend.upsert_rows(conn, table, frame)
                change = self._announce(conn, written, lambda: Change(
                    "runs" if table == "runs" else "steps", rows=written,
                    start=frame["started_at"].min(), end=frame["started_at"].max(),
                    run_ids=distinct(frame["run_id"]), statuses=distinct(frame["status"]),
                    recipes=distinct(frame["recipe"]) if "recipe" in frame else ()))
        self._publish(change)
        return WriteResult(len(frame), written, len(frame) - written)

    def _announce(self, conn, written: int, make) -> Change | None:
        """The change record of a write about to commit, NOTIFYed to other processes in the
        same transaction (so they hear of it only if it commits). None if nothing changed."""
        if not written or (self.changes is None and not self.backend.capabilities.change_notify):
            return None
        change = make()
        if self.changes is not None:
            change = replace(change, origin=self.changes.origin)
        self.backend.notify_change(conn, change.to_json())
        return change

    def _publish(self, change: Change | None) -> None:
        # After the commit: subscribers must never see a change that was rolled back.
        if change is not None and self.changes is not None:
            self.changes.publish(change)

    def _ensure_chunks(self, table: str, ts_us: np.ndarray, bulk_points: bool = False) -> bool:
        """Make the chunks ``ts_us`` needs, except (``bulk_points``) the one new chunk a bulk
        points batch fills alone, which it loads itself: then True."""
        # The backend makes chunks in short transactions of its own (few chunks each), so
        # chunk DDL commits quickly, cannot exhaust the lock table and is harmless if the
        # data then fails; this connection is only read.
        if not self.backend.capabilities.native_partitions:
            return False
        with self.engine.connect() as conn:
            if bulk_points:
                if self.backend.new_chunk_for(conn, ts_us) is not None:
                    return True
                # End the read: it locked the default partition (ACCESS SHARE), which
                # wh_ensure_chunk, on another connection, locks exclusively.
                conn.rollback()
            self.backend.ensure_chunks(conn, table, ts_us)
        return False
