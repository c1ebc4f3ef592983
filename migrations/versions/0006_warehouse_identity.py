"""A warehouse identity that archives carry (issue 9): table warehouse_identity (one row:
warehouse_id, created_at) and archive_manifest.warehouse_id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0006_warehouse_identity.up")


def downgrade() -> None:
    run_migration_sql("0006_warehouse_identity.down")
