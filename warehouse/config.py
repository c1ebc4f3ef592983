"""Settings: where the warehouse lives and the limits it enforces."""

from __future__ import annotations

import os

#: Used when ``WAREHOUSE_URL`` is unset: an embedded DuckDB file in the working directory.
DEFAULT_URL = "duckdb:///warehouse.duckdb"


def database_url(url: str | None = None) -> str:
    """Return the database URL: the argument, else ``WAREHOUSE_URL``, else the DuckDB default.

    ``postgresql://`` URLs are pointed at the psycopg 3 driver, the only one we ship.
    """
    url = url or os.environ.get("WAREHOUSE_URL") or DEFAULT_URL
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


# Limits on names and labels. They keep series cardinality and index keys small and
# make names safe to show anywhere; they are documented in docs/ingest.md.
MAX_NAME_LENGTH = 200          # metric, recipe and step names, label values
MAX_LABEL_KEY_LENGTH = 64
MAX_LABELS_PER_SERIES = 16
MAX_ERROR_MESSAGE_LENGTH = 4000
# The largest magnitude a point's value may have. Rollups and compressed segments keep sums
# of squares: with 1e100 a bucket's sum of squares stays finite for 1e108 points, while one
# value of 1e155 overflowed it and made PostgreSQL's rollup refresh fail on every run.
MAX_VALUE_MAGNITUDE = 1e100
# The smallest magnitude a non-zero value may have: PostgreSQL raises "underflow" when a
# product of non-zero floats rounds to 0, so the square of 1e-200 made the rollup refresh
# (and with it every later compress run) fail on every run. Squares of 1e-150 stay normal.
MIN_VALUE_MAGNITUDE = 1e-150
