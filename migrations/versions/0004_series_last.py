"""series_last: the newest point of every series, kept by ingest; series_latest reads it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0004_series_last.up")


def downgrade() -> None:
    run_migration_sql("0004_series_last.down")
