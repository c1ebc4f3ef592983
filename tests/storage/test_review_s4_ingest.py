"""Review (session 4): the new-chunk load path (COPY FREEZE into a plain table, then ATTACH)
seen by a concurrent REPEATABLE READ reader."""

from __future__ import annotations

import numpy as np
import pandas as pd
import psycopg
import pytest

from warehouse import Warehouse
from warehouse.backends import postgresql_write

T0 = pd.Timestamp("2026-11-02T00:00:00Z")
DAY = pd.Timedelta(days=1)


@pytest.fixture(autouse=True)
def small_new_chunks(monkeypatch):
    monkeypatch.setattr(postgresql_write, "NEW_CHUNK_ROWS", 1)


def day_frame(day: int, hosts: int = 5, steps: int = 20) -> pd.DataFrame:
    ts = pd.date_range(T0 + day * DAY, periods=steps, freq="10s", unit="us")
    return pd.DataFrame({"metric": "cpu", "ts": ts.repeat(hosts),
                         "host": np.tile([f"h{h}" for h in range(hosts)], steps),
                         "value": np.arange(hosts * steps, dtype="f8")})


def _conninfo(url: str) -> str:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    return f"host={u.host} port={u.port} user={u.username} dbname={u.database}"


def test_a_snapshot_does_not_see_a_new_chunk_committed_after_it_began(wh, database_url):
    """A REPEATABLE READ transaction must not see rows committed after its snapshot. Rows
    COPYed with FREEZE are visible to every snapshot, and the attached partition is found by
    the next plan: an analyst's (or a job's) snapshot saw the new day's rows appear."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's new-chunk path")
    wh.write_points(day_frame(0), label_columns=["host"])
    with psycopg.connect(_conninfo(database_url)) as reader:
        reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        day1 = {"lo": (T0 + DAY).to_pydatetime(), "hi": (T0 + 2 * DAY).to_pydatetime()}
        # The snapshot is taken here (a read of day 0's chunk only: no lock on the default
        # partition, which the ATTACH must lock).
        assert reader.execute("SELECT count(*) FROM points WHERE ts >= %(lo)s AND ts < %(hi)s",
                              {"lo": T0.to_pydatetime(), "hi": (T0 + DAY).to_pydatetime()}
                              ).fetchone()[0] == 100
        writer = Warehouse(database_url)
        try:
            writer.write_points(day_frame(1), label_columns=["host"])
        finally:
            writer.close()
        seen = reader.execute("SELECT count(*) FROM points WHERE ts >= %(lo)s AND ts < %(hi)s",
                              day1).fetchone()[0]
        reader.execute("ROLLBACK")
    assert seen == 0, f"a snapshot older than the write saw {seen} of its rows"


def test_a_new_chunk_is_named_as_wh_ensure_chunk_names_it(wh, database_url):
    """Years before 1000: strftime's %Y gave points_5001102_000000 where wh_ensure_chunk
    (to_char YYYY) names the chunk points_05001102_000000."""
    if not database_url.startswith("postgresql"):
        pytest.skip("PostgreSQL's chunks")
    old = pd.Timestamp("0500-11-02T00:00:00Z").as_unit("us")
    frame = day_frame(0).assign(ts=lambda f: f["ts"] - (T0 - old))
    wh.write_points(frame, label_columns=["host"])
    wh.write_points(day_frame(0).assign(ts=lambda f: f["ts"] - (T0 - old) + 2 * DAY),
                    label_columns=["host"])  # the same path, another day
    with wh.engine.connect() as conn:
        from sqlalchemy import text

        made = conn.execute(text("SELECT wh_ensure_chunk('points', :ts)"),
                            {"ts": (old + 5 * DAY).to_pydatetime()}).scalar()
        names = sorted(r[0] for r in conn.execute(text(
            "SELECT chunk_name FROM wh_chunks WHERE hypertable = 'points'")))
    assert made == "points_05001107_000000"
    assert names == ["points_05001102_000000", "points_05001104_000000", made]
