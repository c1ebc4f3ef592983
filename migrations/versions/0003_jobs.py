"""Jobs: rollups (points_1m/1h/1d, watermarks, invalidations), retention policies, the
archive manifest, job runs, the all_points view and (PostgreSQL) the job body functions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0003_jobs.up")


def downgrade() -> None:
    run_migration_sql("0003_jobs.down")
