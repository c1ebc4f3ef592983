"""Small helpers the job modules share: schema presence, µs <-> timestamps, where files go."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import Backend
from warehouse.query.timeparse import epoch_us

MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
#: Rollup tiers, coarsest first: (table, bucket width in µs). 1h is built from 1m, 1d from 1h.
TIERS = (("points_1d", DAY_US), ("points_1h", HOUR_US), ("points_1m", MINUTE_US))
#: Aggregates a rollup answers exactly (percentiles need the raw values).
ROLLUP_AGGREGATES = ("mean", "min", "max", "sum", "count", "first", "last")
#: Environment variable naming the archive root (else: beside the DuckDB file, else ./archive).
ARCHIVE_ENV = "WAREHOUSE_ARCHIVE"


def jobs_schema_present(conn: Connection, backend: Backend) -> bool:
    """Whether migration 0003 has run (ingest and queries work without it, as before).
    Remembered once true: each query asked twice, two round trips of ~0.8 ms on DuckDB."""
    if backend.schema_facts.get("jobs_schema"):
        return True
    present = bool(conn.execute(text(backend.sql("jobs/schema_present"))).scalar_one())
    if present:
        backend.schema_facts["jobs_schema"] = True
    return present


def us_to_ts(us: int) -> pd.Timestamp:
    """A UTC timestamp from µs since the Unix epoch."""
    return pd.Timestamp(int(us), unit="us", tz="UTC")


def ts_to_us(ts) -> int:
    """µs since the Unix epoch of an aware timestamp (or a driver's datetime)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:  # drivers hand back UTC; only the zone info can be missing
        stamp = stamp.tz_localize("UTC")
    return int(epoch_us(stamp))


def database_file(engine, backend: Backend) -> Path | None:
    """The database file of an embedded single-writer engine, or None (a server)."""
    name = engine.url.database
    if backend.capabilities.single_writer and name and name != ":memory:":
        return Path(name).resolve()
    return None


def archive_root(engine, backend: Backend, root: str | os.PathLike | None = None) -> Path:
    """Where Parquet archives go: ``root``, else WAREHOUSE_ARCHIVE, else ``archive/`` beside
    the database file (DuckDB), else ``./archive``."""
    chosen = root or os.environ.get(ARCHIVE_ENV)
    if chosen:
        return Path(chosen).resolve()
    db_file = database_file(engine, backend)
    return (db_file.parent if db_file else Path.cwd()) / "archive"
