"""SQLAlchemy descriptions of the warehouse tables (Alembic's ``target_metadata``).

The DDL itself lives in ``sql/<dialect>/migrations/`` because partitioning differs per
engine; these Table objects describe the columns both engines share, for building queries.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Uuid,
)

metadata = MetaData()

RESOURCE_COLUMNS = ("cpu_user_us", "cpu_system_us", "peak_rss_bytes", "read_bytes", "written_bytes")


def _resources() -> list[Column]:
    return [Column(name, BigInteger) for name in RESOURCE_COLUMNS]


series = Table(
    "series", metadata,
    Column("series_id", Integer, primary_key=True),
    Column("metric", String, nullable=False),
    Column("labels", JSON, nullable=False),
    Column("labels_key", String, nullable=False),
    Column("unit", String),
    Column("kind", String, nullable=False),
)

points = Table(
    "points", metadata,
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("series_id", Integer, nullable=False),
    Column("value", Float, nullable=False),
    Column("run_id", Uuid),
)

runs = Table(
    "runs", metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("recipe", String, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_us", BigInteger),
    Column("status", String, nullable=False),
    Column("error_type", String),
    Column("error_message", String),
    Column("host", String),
    Column("params", JSON),
    Column("attributes", JSON),
    *_resources(),
    Column("last_seen_at", DateTime(timezone=True)),
)

step_runs = Table(
    "step_runs", metadata,
    Column("run_id", Uuid, primary_key=True),
    Column("step_id", String, primary_key=True),
    Column("parent_step_id", String),
    Column("step", String, nullable=False),
    Column("ordinal", Integer),
    Column("attempt", Integer, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Column("duration_us", BigInteger),
    Column("status", String, nullable=False),
    Column("error_type", String),
    Column("error_message", String),
    Column("host", String),
    Column("depends_on", JSON),
    Column("attributes", JSON),
    *_resources(),
)

RUN_COLUMNS = tuple(c.name for c in runs.columns)
STEP_COLUMNS = tuple(c.name for c in step_runs.columns)
#: The timestamps the warehouse stores, in µs since the Unix epoch: what Python's datetime
#: holds (0001-01-01 to 9999-12-31T23:59:59.999999 UTC), well inside both engines' ranges.
#: Ingest refuses others; chunks at either edge are clamped to it (a chunk holding
#: 9999-12-31 would otherwise end in year 10000, which no Python client can read back).
TS_MIN_US = -62_135_596_800_000_000
TS_MAX_US = 253_402_300_799_999_999
#: Tables partitioned on time, with their time column (the ``hypertables`` table says the same).
HYPERTABLES = {"points": "ts", "runs": "started_at", "step_runs": "started_at"}
