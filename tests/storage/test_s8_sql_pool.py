"""``wh.sql`` returns its pooled connection as it found it: no transaction left open on it
(DuckDB's read-only path runs on a connection of its own and tells the pool so, which then
skips its rollback), after an answer, a refusal and an error alike; writes and reads on the
same pool go on."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import text

from warehouse.errors import WarehouseError

T0 = pd.Timestamp("2026-11-04T00:00:00Z")


def no_open_transaction(wh) -> None:
    """Every idle connection of the pool can begin a transaction of its own."""
    with wh.engine.connect() as conn:
        if wh.backend.capabilities.native_partitions:
            assert conn.connection.driver_connection.info.transaction_status.name == "IDLE"
        else:
            raw = conn.connection.driver_connection
            raw.execute("BEGIN")  # raises inside an open transaction
            raw.execute("ROLLBACK")


def test_sql_leaves_no_transaction_on_the_pool(wh):
    wh.write_points(pd.DataFrame({"metric": "m", "ts": [T0], "value": [1.0]}))
    assert wh.sql("SELECT count(*) AS n FROM points")["n"].tolist() == [1]
    no_open_transaction(wh)
    with pytest.raises(WarehouseError):
        wh.sql("DELETE FROM points")  # refused: read-only
    no_open_transaction(wh)
    with pytest.raises(WarehouseError):
        wh.sql("SELECT no_such_column FROM points")  # the engine's error
    no_open_transaction(wh)
    with wh.engine.begin() as conn:  # a transaction on a connection wh.sql used
        conn.execute(text("SELECT 1"))
    assert wh.write_points(pd.DataFrame({"metric": "m", "ts": [T0 + pd.Timedelta("1s")],
                                         "value": [2.0]})).written == 1
    assert wh.sql("SELECT sum(value) AS s FROM points")["s"].tolist() == [3.0]
    assert wh.points("m")["value"].tolist() == [1.0, 2.0]
