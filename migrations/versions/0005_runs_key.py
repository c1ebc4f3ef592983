"""Runs keyed by run_id alone, steps by (run_id, step_id), on both engines (issue 9).

PostgreSQL: existing duplicate runs are merged (newest last_seen_at wins) and table
run_keys, kept by row triggers on the partitioned runs table, makes run_id unique; step_keys
does the same for step_runs (run_id, step_id).
DuckDB: runs already has PRIMARY KEY (run_id); nothing changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0005_runs_key.up")


def downgrade() -> None:
    run_migration_sql("0005_runs_key.down")
