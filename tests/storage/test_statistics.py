"""Planner statistics of partitioned tables: PostgreSQL's autovacuum analyses partitions but
never their parent, so `maintain` (the hourly job and `warehouse maintain`) does it when the
parent has none or they are stale. DuckDB keeps its own: nothing to do."""

from __future__ import annotations

import pandas as pd
from sqlalchemy import text

T0 = pd.Timestamp("2026-11-01T00:00Z")


def _parent_rows(wh, table: str) -> float:
    with wh.engine.connect() as conn:
        return float(conn.execute(text("SELECT reltuples FROM pg_class "
                                       "WHERE oid = CAST(:t AS regclass)"), {"t": table}).scalar())


def test_maintain_analyses_parents_without_statistics_once(wh):
    ts = pd.date_range(T0, periods=5_000, freq="1min")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "value": range(len(ts))}))
    if not wh.backend.capabilities.native_partitions:
        assert wh.maintain(now=T0)["tables_analysed"] == 0
        return
    assert _parent_rows(wh, "points") < 0  # never analysed: the planner guesses
    first = wh.maintain(now=T0)
    assert first["tables_analysed"] >= 1
    assert _parent_rows(wh, "points") == len(ts)
    assert wh.maintain(now=T0)["tables_analysed"] == 0  # up to date: not again


def test_the_maintain_job_notes_what_it_analysed(wh):
    ts = pd.date_range(T0, periods=100, freq="1min")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "value": 1.0}))
    run = wh.run_job("maintain", now=T0)
    analysed = [n for n in run.notes if n.startswith("analysed ")]
    if wh.backend.capabilities.native_partitions:
        assert analysed and "points" in analysed[0]
    else:
        assert analysed == []
