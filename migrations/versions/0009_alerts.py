"""Alerts: rules, instance state, history, silences and delivery attempts (issue 14).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0009_alerts.up")


def downgrade() -> None:
    run_migration_sql("0009_alerts.down")
