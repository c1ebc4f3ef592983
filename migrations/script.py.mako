"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    run_migration_sql("${up_revision}_NAME.up")


def downgrade() -> None:
    run_migration_sql("${up_revision}_NAME.down")
