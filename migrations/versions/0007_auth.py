"""Users, roles, API tokens and browser sessions (issue 11).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0007_auth.up")


def downgrade() -> None:
    run_migration_sql("0007_auth.down")
