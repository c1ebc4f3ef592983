"""Core schema: hypertables, recipes, series, points, runs, step_runs and chunk functions.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0001_core.up")


def downgrade() -> None:
    run_migration_sql("0001_core.down")
