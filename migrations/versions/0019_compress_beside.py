"""PostgreSQL's compress job encodes a chunk in a second session while its own transaction
deletes the chunk's rows, then moves the staged segments in (wh_compress_begin, _encode,
_empty, _publish; docs/jobs.md "Compression"). DuckDB: nothing changes.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-01
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0019_compress_beside.up")


def downgrade() -> None:
    run_migration_sql("0019_compress_beside.down")
