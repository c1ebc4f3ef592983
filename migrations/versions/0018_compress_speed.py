"""PostgreSQL's compress job, faster: the chunk it emptied is truncated instead of vacuumed
when no snapshot can still read its rows (wh_reclaim_chunk), and the pivoted copy skips the
emptied chunk's deleted rows (wh_copy_readings' p_hot_rows; docs/jobs.md "Compression").
DuckDB: nothing changes.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-01
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0018_compress_speed.up")


def downgrade() -> None:
    run_migration_sql("0018_compress_speed.down")
