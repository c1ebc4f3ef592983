"""DuckDB keeps a pivoted copy of compressed (closed) chunks, one row per label set and
instant with a column per metric, which multi-metric frames read instead of joining
``points`` with itself (docs/jobs.md "Compression"). PostgreSQL: nothing changes.

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0016_readings_copy.up")


def downgrade() -> None:
    run_migration_sql("0016_readings_copy.down")
