"""Migrations go up and down on both engines; read-only SQL stays read-only."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import inspect

from warehouse import ReadOnlyError, Warehouse

TABLES = {"hypertables", "recipes", "series", "points", "runs", "step_runs"}


def test_upgrade_downgrade_upgrade(database_url):
    wh = Warehouse(database_url, migrate=False)
    assert wh.revision() is None
    wh.migrate()
    assert wh.revision() == wh.head_revision()
    assert TABLES <= set(inspect(wh.engine).get_table_names())
    wh.write_points(pd.DataFrame({"metric": "m", "ts": [pd.Timestamp("2026-01-01", tz="UTC")],
                                  "value": [1.0]}))
    wh.downgrade("base")
    assert wh.revision() is None
    assert not TABLES & set(inspect(wh.engine).get_table_names())
    wh.migrate()
    assert wh.revision() == wh.head_revision()
    assert wh.sql("SELECT count(*) AS n FROM points")["n"].tolist() == [0]
    wh.close()


def test_opening_a_new_database_migrates_it(database_url):
    wh = Warehouse(database_url)
    assert wh.revision() == wh.head_revision()
    wh.close()


def test_sql_is_read_only(wh):
    wh.write_points(pd.DataFrame({"metric": "m", "ts": [pd.Timestamp("2026-01-01", tz="UTC")],
                                  "value": [1.0]}))
    out = wh.sql("SELECT count(*) AS n FROM points WHERE value > :v", {"v": 0})
    assert out["n"].tolist() == [1]
    for statement in ("DELETE FROM points", "DROP TABLE points",
                      "INSERT INTO recipes (recipe) VALUES ('x')"):
        with pytest.raises(ReadOnlyError):
            wh.sql(statement)
    assert wh.sql("SELECT count(*) AS n FROM points")["n"].tolist() == [1]


def test_info_reports_tables_rows_bytes_and_chunks(wh):
    wh.write_points(pd.DataFrame({"metric": "m", "ts": pd.date_range("2026-01-01", periods=48,
                                                                     freq="1h", tz="UTC"),
                                  "value": 1.0}))
    info = wh.info()
    tables = info["tables"].set_index("table")
    assert info["backend"] == wh.backend.dialect
    assert tables.loc["points", "rows"] == 48
    assert tables.loc["points", "chunks"] == 2
    assert tables.loc["points", "bytes"] > 0
