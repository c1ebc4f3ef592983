"""Runs keyed by run_id alone on both engines (issue 9).

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # placeholder: filled in with sql/<dialect>/migrations/0005_runs_key.up.sql


def downgrade() -> None:
    pass
