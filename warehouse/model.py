"""Data-model constants every layer shares: statuses, rollup tiers, time units.

Base layer: imports nothing from the warehouse (see docs/architecture.md).
"""

from __future__ import annotations

#: Run and step statuses (``runs.status``, ``step_runs.status``).
STATUSES = ("running", "succeeded", "failed", "cancelled")

MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
#: Rollup tiers, coarsest first: (table, bucket width in µs). 1h is built from 1m, 1d from 1h.
TIERS = (("points_1d", DAY_US), ("points_1h", HOUR_US), ("points_1m", MINUTE_US))
#: Aggregates a rollup answers exactly (percentiles need the raw values).
ROLLUP_AGGREGATES = ("mean", "min", "max", "sum", "count", "first", "last")
#: Environment variable naming the archive root (else: beside the DuckDB file, else ./archive).
ARCHIVE_ENV = "WAREHOUSE_ARCHIVE"
