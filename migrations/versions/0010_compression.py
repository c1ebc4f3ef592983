"""Closed-chunk compression: the compression policy; on PostgreSQL the segment table
points_compressed and its functions (encode a chunk, decode for a late write), and
drop_chunks/retention that count and remove a chunk's segments (issue 15).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0010_compression.up")


def downgrade() -> None:
    run_migration_sql("0010_compression.down")
