"""Schema migrations through Alembic — the only way the schema changes.

Each revision runs SQL files per dialect (``sql/<dialect>/migrations/<rev>_<name>.{up,down}.sql``,
or named view files), so the DDL for each engine is plain SQL that a DBA can read.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.ddl.postgresql import PostgresqlImpl
from sqlalchemy import Connection

from warehouse.sqlfiles import load_sql


class DuckDBImpl(PostgresqlImpl):
    """Alembic has no DuckDB implementation; DuckDB speaks PostgreSQL's DDL dialect closely.
    Defining the class registers it (Alembic keys implementations by ``__dialect__``)."""

    __dialect__ = "duckdb"


def register_duckdb_impl() -> None:
    """Kept for env.py: importing this module has already registered :class:`DuckDBImpl`."""


def _alembic_config(connection: Connection) -> Config:
    here = Path(__file__).resolve().parent
    ini = next(p for p in (here / "alembic.ini", here.parent / "alembic.ini") if p.is_file())
    config = Config(str(ini))
    # In an installed wheel migrations/ sits inside the package, beside alembic.ini.
    config.set_main_option("script_location", str(ini.parent / "migrations"))
    config.set_main_option("version_locations", str(ini.parent / "migrations" / "versions"))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the schema up to ``revision`` (``alembic upgrade``)."""
    command.upgrade(_alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str = "base") -> None:
    """Migrate the schema down to ``revision`` (``alembic downgrade``)."""
    command.downgrade(_alembic_config(connection), revision)


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str:
    """The newest revision this code knows."""
    from alembic.script import ScriptDirectory

    config = Config()
    here = Path(__file__).resolve().parent
    folder = next(p for p in (here / "migrations", here.parent / "migrations") if p.is_dir())
    config.set_main_option("script_location", str(folder))
    return ScriptDirectory.from_config(config).get_current_head()


def run_migration_sql(name: str) -> None:
    """Run ``sql/<dialect>/migrations/<name>.sql`` whole, inside the migration's transaction."""
    bind = op.get_bind()
    script = load_sql(bind.dialect.name, f"migrations/{name}")
    execute_script(bind, script)


def execute_script(connection: Connection, script: str) -> None:
    """Execute a multi-statement SQL script on the driver connection, without splitting it.

    Both psycopg (given no parameters) and DuckDB accept several statements in one call;
    splitting on ``;`` would break PL/pgSQL bodies.
    """
    connection.connection.driver_connection.execute(script)
