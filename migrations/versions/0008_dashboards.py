"""Dashboards as data: dashboards (owner, visibility, current version) and every saved
version of each document (issue 13).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0008_dashboards.up")


def downgrade() -> None:
    run_migration_sql("0008_dashboards.down")
