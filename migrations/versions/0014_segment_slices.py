"""Segment slices: on PostgreSQL a raw read decodes only the points of a regular compressed
segment inside its time range (issue 15). DuckDB: nothing changes.

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0014_segment_slices.up")


def downgrade() -> None:
    run_migration_sql("0014_segment_slices.down")
