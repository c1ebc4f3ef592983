"""Schema migrations through Alembic — the only way the schema changes.

Each revision runs SQL files per dialect (``sql/<dialect>/migrations/<rev>_<name>.{up,down}.sql``,
or named view files), so the DDL for each engine is plain SQL that a DBA can read.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command, op
from alembic.config import Config
from alembic.ddl.postgresql import PostgresqlImpl
from sqlalchemy import Connection, text

from warehouse.errors import WarehouseError
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
    """Migrate the schema up to ``revision`` (``alembic upgrade``), one migrator at a time.

    Runs inside the caller's transaction on ``connection``; the migration lock is held
    until it ends. Raises :class:`WarehouseError` for a database at a revision this code
    does not know (migrated by a newer version)."""
    serialise(connection)
    check_known_revision(connection)
    command.upgrade(_alembic_config(connection), revision)


def downgrade(connection: Connection, revision: str = "base") -> None:
    """Migrate the schema down to ``revision`` (``alembic downgrade``), one at a time."""
    serialise(connection)
    check_known_revision(connection)
    command.downgrade(_alembic_config(connection), revision)


def serialise(connection: Connection) -> None:
    """Wait for the migration lock of this database, held until the transaction on
    ``connection`` ends, so two ``warehouse init`` on one empty database run one after the
    other (the second finds the schema at head) instead of both creating the same tables.
    PostgreSQL: a transaction-level advisory lock (sql/postgresql/migrate_lock.sql). DuckDB:
    one read-write process per file already; threads share the process's write fence."""
    connection.execute(text(load_sql(connection.dialect.name, "migrate_lock")))


def check_known_revision(connection: Connection) -> None:
    """Raise one clear :class:`WarehouseError` if the database is at a revision this code
    does not know — it was migrated by a newer warehouse — instead of Alembic's traceback."""
    current = current_revision(connection)
    if current is not None and current not in known_revisions():
        raise WarehouseError(
            f"database schema is at revision {current}, newer than this code's head "
            f"{head_revision()}; upgrade the warehouse package")


def current_revision(connection: Connection) -> str | None:
    """The revision the database is at, or None before the first migration."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def _scripts():
    from alembic.script import ScriptDirectory

    config = Config()
    here = Path(__file__).resolve().parent
    folder = next(p for p in (here / "migrations", here.parent / "migrations") if p.is_dir())
    config.set_main_option("script_location", str(folder))
    return ScriptDirectory.from_config(config)


def head_revision() -> str:
    """The newest revision this code knows."""
    return _scripts().get_current_head()


def known_revisions() -> set[str]:
    """Every revision this code knows."""
    return {script.revision for script in _scripts().walk_revisions()}


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
