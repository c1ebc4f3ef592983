"""Compression empties a chunk with DELETE under an EXCLUSIVE lock instead of TRUNCATE under
ACCESS EXCLUSIVE: older REPEATABLE READ snapshots keep seeing its rows (PostgreSQL). DuckDB:
nothing changes.

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0015_compress_delete.up")


def downgrade() -> None:
    run_migration_sql("0015_compress_delete.down")
