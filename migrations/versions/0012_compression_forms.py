"""Compression forms: on PostgreSQL a segment's values are kept as integer[] or real[] when
every value round-trips exactly (else float8[]), TOAST-compressed with pglz, and the encoder
sorts each chunk once (issue 15). DuckDB: nothing changes.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30
"""

from __future__ import annotations

from warehouse.migrate import run_migration_sql

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    run_migration_sql("0012_compression_forms.up")


def downgrade() -> None:
    run_migration_sql("0012_compression_forms.down")
