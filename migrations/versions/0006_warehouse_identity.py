"""A warehouse identity that archives carry (issue 9).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in with sql/<dialect>/migrations/0006_warehouse_identity.up.sql


def downgrade() -> None:
    pass
