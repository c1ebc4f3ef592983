"""Analyst views (documented in docs/views.md), frozen as they were first created.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0002_views.up")


def downgrade() -> None:
    run_migration_sql("0002_views.down")
