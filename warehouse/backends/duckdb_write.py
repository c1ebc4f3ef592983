"""DuckDB writes: points, series and runs/steps go in as registered Arrow tables or frames
(one INSERT ... SELECT each, never a row at a time). Mixed into :class:`DuckDBBackend`."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy import Connection, text

from warehouse.backends.base import raw_connection
from warehouse.backends.duckdb_readings import extend_copy

if TYPE_CHECKING:
    from warehouse.ingest.wide import WideRows


class DuckDBWrites:
    """The write half of the DuckDB backend (needs ``sql`` from it)."""

    # -- ingest ---------------------------------------------------------------------------
    def insert_points(self, conn: Connection, batch: pd.DataFrame,
                      rows: WideRows | None = None) -> int:
        # Rows go in as given: the stored order is the caller's, which for the usual batch is
        # time order within each metric, what the zone maps on ts prune.
        raw = raw_connection(conn)
        raw.register("_stage_points", _points_arrow(batch))
        try:
            lo, hi = batch["ts"].min(), batch["ts"].max()
            written = max(int(conn.execute(text(self.sql("ingest/insert_points")),
                                           {"lo": lo, "hi": hi}).rowcount), 0)
        finally:
            raw.unregister("_stage_points")
        # Changed points change their range's copy: a batch that came as wide rows extends
        # it where it stays whole (duckdb_readings.py), anything else deletes it.
        if written and not (rows is not None and written == len(batch)
                            and extend_copy(self, conn, rows, written, lo, hi)):
            self.forget_readings(conn, lo, hi)
        return written

    def forget_readings(self, conn: Connection, lo, hi) -> None:
        """Delete the pivoted copy (migration 0016, jobs/readings.py) of every chunk range
        overlapping [lo, hi] (None: unbounded), in ``conn``'s transaction: points there are
        changing, and a frame must not read a copy that no longer matches them. The next
        compress run copies the range again."""
        if not self.table_exists(conn, "reading_chunks"):
            return
        params = {"lo": lo, "hi": hi}
        ranges = conn.execute(text(self.sql("ingest/readings_overlap")), params).fetchall()
        if ranges:  # one span: every range between two overlapping ones overlaps too
            span = {"start": min(r[0] for r in ranges), "end": max(r[1] for r in ranges)}
            conn.execute(text("DELETE FROM readings WHERE ts >= :start AND ts < :end"), span)
            # Every copy overlapping the span lost rows, also one starting before it.
            conn.execute(text("DELETE FROM reading_chunks "
                              "WHERE chunk_start < :end AND chunk_end > :start"), span)

    def insert_series(self, conn: Connection, frame: pd.DataFrame) -> None:
        # DuckDB's executemany pays per row; one INSERT ... SELECT from the frame does not.
        raw = raw_connection(conn)
        raw.register("_stage_series", frame[["metric", "labels_key"]])
        try:
            conn.execute(text(self.sql("ingest/insert_series")))
        finally:
            raw.unregister("_stage_series")

    def upsert_series_last(self, conn: Connection, latest: pd.DataFrame) -> None:
        raw = raw_connection(conn)
        # As Arrow: DuckDB registers it for about half of what a DataFrame costs, which
        # matters for one-point writes (bench/ingest.py --small).
        ts_us = latest["ts"].to_numpy(dtype="datetime64[us]").view("i8")
        raw.register("_stage_series_last", pa.table({
            "series_id": pa.array(latest["series_id"].to_numpy(dtype="i4")),
            "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", "UTC")),
            "value": pa.array(latest["value"].to_numpy(dtype="f8")),
        }))
        try:
            conn.execute(text(self.sql("ingest/upsert_series_last")))
        finally:
            raw.unregister("_stage_series_last")

    def upsert_rows(self, conn: Connection, table: str, frame: pd.DataFrame) -> int:
        raw = raw_connection(conn)
        stage = f"_stage_{table}"
        raw.register(stage, frame)
        try:
            result = conn.execute(text(self.sql(f"ingest/upsert_{table}")))
            return max(int(result.rowcount), 0)
        finally:
            raw.unregister(stage)

    def ensure_chunks(self, conn: Connection, table: str, ts_us: np.ndarray) -> None:
        """Nothing to create: a DuckDB chunk is a time range of the one table."""


def _points_arrow(batch: pd.DataFrame) -> pa.Table:
    """The batch as Arrow, which DuckDB scans without converting Python objects (about a
    third faster than handing it the DataFrame, measured in bench/ingest.py)."""
    ts_us = batch["ts"].to_numpy(dtype="datetime64[us]").view("i8")
    run_id = batch["run_id"]
    # An Arrow-backed column (what prepare_points makes) converts without a copy.
    runs = (pa.nulls(len(batch)) if run_id.isna().all()  # null type: no buffer to fill
            else pa.array(run_id.array, pa.string(), from_pandas=True))
    return pa.table({
        "ts": pa.array(ts_us, pa.int64()).cast(pa.timestamp("us", "UTC")),
        "series_id": pa.array(batch["series_id"].to_numpy(dtype="i4")),
        "value": pa.array(batch["value"].to_numpy(dtype="f8")),
        "run_id": runs,
    })
