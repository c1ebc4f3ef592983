"""Alembic environment: migrates the connection the Warehouse hands over, or WAREHOUSE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from warehouse.config import database_url
from warehouse.migrate import register_duckdb_impl
from warehouse.schema import metadata

register_duckdb_impl()
target_metadata = metadata


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(database_url(context.config.get_main_option("sqlalchemy.url")))
    with engine.begin() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: run `warehouse init`")
run_migrations_online()
