"""Users, roles, API tokens and browser sessions (issue 11).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in with sql/<dialect>/migrations/0007_auth.up.sql


def downgrade() -> None:
    pass
