"""Test fixtures: every storage test runs on a DuckDB file AND a real PostgreSQL server.

PostgreSQL comes from ``WAREHOUSE_TEST_PG_URL`` (a server you run; each test gets its own
database on it) or else a throwaway server started from the local PostgreSQL binaries.
With ``WAREHOUSE_REQUIRE_POSTGRES=1`` (set by .ci/run) a missing server fails the run
instead of skipping the PostgreSQL half of the suite.
"""

from __future__ import annotations

import itertools
import os
import threading

import psycopg
import pytest

from warehouse import Warehouse
from warehouse.pgserver import LocalPostgres

ENGINES = ("duckdb", "postgresql")
_counter = itertools.count()


class _ExternalPostgres:
    def __init__(self, url: str):
        from sqlalchemy.engine import make_url

        self._url = make_url(url.replace("postgresql://", "postgresql+psycopg://", 1))

    def create_database(self, name: str) -> str:
        u = self._url
        conninfo = f"host={u.host} port={u.port or 5432} user={u.username} dbname={u.database}"
        if u.password:
            conninfo += f" password={u.password}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self._url.set(database=name).render_as_string(hide_password=False)

    def stop(self, **_) -> None:
        pass


@pytest.fixture(scope="session")
def postgres_server():
    """A PostgreSQL server for the session, or a skip (a failure under CI) saying why."""
    if os.environ.get("WAREHOUSE_TEST_PG_URL"):
        yield _ExternalPostgres(os.environ["WAREHOUSE_TEST_PG_URL"])
        return
    try:
        server = LocalPostgres().start()
    except (FileNotFoundError, OSError, Exception) as exc:  # noqa: BLE001 - report any cause
        message = f"PostgreSQL unavailable: {exc}"
        if os.environ.get("WAREHOUSE_REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    yield server
    server.stop(wait_for_removal=False)  # the suite need not wait for its files to go


@pytest.fixture
def database_url(request, tmp_path):
    """A fresh, empty database URL for the engine named by ``request.param``."""
    engine = request.param
    if engine == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    server = request.getfixturevalue("postgres_server")
    return server.create_database(f"wh_test_{os.getpid()}_{next(_counter)}")


@pytest.fixture
def wh(database_url):
    """A migrated Warehouse on a fresh database."""
    warehouse = Warehouse(database_url)
    yield warehouse
    warehouse.close()


def pytest_generate_tests(metafunc):
    # Any test that asks for a database is run once per engine.
    if "database_url" in metafunc.fixturenames:
        metafunc.parametrize("database_url", ENGINES, indirect=True)


def pytest_collection_modifyitems(items):
    for item in items:
        if "database_url" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.storage)


def load_both_engines(postgres_server, tmp_path_factory, name: str, days: int, seed: int):
    """The same demo data in a DuckDB file and a PostgreSQL database: (warehouses, data)."""
    import pandas as pd

    from warehouse import demo

    data = demo.generate(days=days, end=pd.Timestamp("2026-11-20", tz="UTC"), seed=seed)
    pair = [Warehouse(f"duckdb:///{tmp_path_factory.mktemp(name) / 'w.duckdb'}"),
            Warehouse(postgres_server.create_database(f"wh_{name}"))]
    for wh in pair:
        demo.load(wh, data)
    return pair, data


def run_at_once(task, args) -> list[BaseException]:
    """``task(arg)`` for every arg, each in its own thread started together; the exceptions
    they raised (empty when every call returned)."""
    errors: list[BaseException] = []

    def guarded(arg) -> None:
        try:
            task(arg)
        except Exception as exc:  # noqa: BLE001 - returned to the caller, who asserts on it
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return errors
