"""Segment decode: on PostgreSQL a regular compressed segment decodes its times with
generate_series, and points_compressed may be scanned by two parallel workers (issue 15).
DuckDB: nothing changes.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0013_segment_decode.up")


def downgrade() -> None:
    run_migration_sql("0013_segment_decode.down")
