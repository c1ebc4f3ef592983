"""Session settings every warehouse connection to PostgreSQL gets (backends/postgresql.py)."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from warehouse import Warehouse


@pytest.mark.storage
def test_warehouse_connections_run_without_jit_in_utc(postgres_server):
    wh = Warehouse(postgres_server.create_database("wh_session"))
    try:
        with wh.engine.connect() as conn:
            assert conn.execute(text("SHOW jit")).scalar() == "off"
            assert conn.execute(text("SHOW TimeZone")).scalar() == "UTC"
        # analyst SQL runs on the same connections
        assert wh.sql("SELECT current_setting('jit') AS jit")["jit"].tolist() == ["off"]
    finally:
        wh.close()
