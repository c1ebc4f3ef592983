"""Analyst views (documented in docs/views.md), one SQL file per view and dialect.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from alembic import op

from warehouse.migrate import execute_script
from warehouse.sqlfiles import load_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

VIEWS = ("recipe_daily_stats", "step_stats", "run_timeline", "error_patterns",
         "resource_usage", "slow_runs", "series_latest")


def upgrade() -> None:
    bind = op.get_bind()
    for name in VIEWS:
        execute_script(bind, load_sql(bind.dialect.name, f"views/{name}"))


def downgrade() -> None:
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
