"""PostgreSQL keeps a pivoted copy of compressed (closed) chunks too: one row per label set
and segment of up to 1,000 instants, an array per metric, which multi-metric frames read
instead of decoding and joining a segment per metric (docs/jobs.md "Compression"). DuckDB
(whose copy is 0016's): nothing changes.

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0017_readings_copy_pg.up")


def downgrade() -> None:
    run_migration_sql("0017_readings_copy_pg.down")
