"""Faster views: slow_runs on DuckDB as a window (a windowed quantile over each run's
trailing 30 days) instead of a self-join of every run with its recipe's runs; the same
columns and answers (issue 13).

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0011_faster_views.up")


def downgrade() -> None:
    run_migration_sql("0011_faster_views.down")
