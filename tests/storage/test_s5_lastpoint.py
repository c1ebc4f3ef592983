"""wh.sql on PostgreSQL sends its checks and its run in one libpq pipeline (issue 15,
TSBS lastpoint; warehouse/backends/readonly_postgresql.py).

What must hold: a statement seen before costs one round trip, a new one two; the server runs
nothing after a failed step of a pipeline; column types remembered from an earlier call that
no longer match are noticed and the call is answered again; a failed or refused run, a
setting changed with set_config(..., false), a session advisory lock and the time limit behave
on the one-round-trip path as on the first call. The escape corpus of
tests/storage/test_readonly_sql.py runs on the same code.
"""

from __future__ import annotations

import secrets

import pandas as pd
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from warehouse import Warehouse
from warehouse.backends import postgresql_pipeline
from warehouse.backends.readonly import QueryTimeoutError, ReadOnlyLimits
from warehouse.errors import ReadOnlyError, WarehouseError

pytestmark = pytest.mark.storage

HOSTS = ("host_0", "host_1", "host_2")
FIELDS = ("usage_user", "usage_system")
START = pd.Timestamp("2016-01-01", tz="UTC")
# The bench's warehouse form of TSBS lastpoint (bench/tsbs/queries.py), on two fields.
LASTPOINT = ("SELECT labels->>'hostname' AS hostname, max(ts) AS ts, "
             + ", ".join(f"max(CASE WHEN metric = 'cpu.{f}' THEN value END) AS {f}"
                         for f in FIELDS)
             + " FROM series_latest WHERE metric LIKE 'cpu.%' GROUP BY 1 ORDER BY 1")


@pytest.fixture(scope="module")
def pg(postgres_server):
    url = postgres_server.create_database(f"wh_s5_lastpoint_{secrets.token_hex(3)}")
    wh = Warehouse(url)
    ticks = pd.date_range(START, periods=6, freq="10s")
    frames = []
    for h, host in enumerate(HOSTS):
        for f, field in enumerate(FIELDS):
            frames.append(pd.DataFrame({"metric": f"cpu.{field}", "ts": ticks,
                                        "value": [float(h * 100 + f * 10 + i)
                                                  for i in range(len(ticks))],
                                        "labels": [{"hostname": host}] * len(ticks)}))
    wh.write_points(pd.concat(frames, ignore_index=True))
    yield wh, url
    wh.close()


def _conninfo(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _round_trips(wh: Warehouse, sql: str, params: dict, tmp_path) -> tuple[int, pd.DataFrame]:
    """Messages that wait for the server (Sync, simple Query) one read_only_query sends."""
    path = tmp_path / f"trace-{secrets.token_hex(3)}.txt"
    with wh.engine.connect() as conn, open(path, "w") as trace:
        pgconn = conn.connection.driver_connection.pgconn
        pgconn.trace(trace.fileno())
        try:
            answer = wh.backend.read_only_query(conn, sql, params, limits=ReadOnlyLimits())
        finally:
            pgconn.untrace()
        conn.rollback()
    sent = [line.split("\t") for line in path.read_text().splitlines()]
    waits = sum(1 for fields in sent if len(fields) > 3 and fields[1] == "F"
                and fields[3] in ("Sync", "Query"))
    return waits, answer


def test_lastpoint_answers_as_the_statement_run_directly(pg):
    wh, url = pg
    answer = wh.sql(LASTPOINT)
    with psycopg.connect(_conninfo(url)) as direct:
        direct.execute("SET TimeZone = 'UTC'")  # as the warehouse's sessions read times
        cursor = direct.execute(LASTPOINT.replace("%", "%%"))
        expected = pd.DataFrame(cursor.fetchall(), columns=[c.name for c in cursor.description])
    pd.testing.assert_frame_equal(answer, expected)
    assert list(answer["hostname"]) == list(HOSTS)
    assert list(answer["usage_system"]) == [h * 100 + 10 + 5.0 for h in range(len(HOSTS))]
    pd.testing.assert_frame_equal(wh.sql(LASTPOINT), answer)  # remembered types: the same


def test_a_statement_seen_before_is_one_round_trip(pg, tmp_path):
    wh, _ = pg
    wh.sql("SELECT count(*) AS n, -1 AS tag FROM series")  # the type names, once a process
    statement = f"SELECT count(*) AS n, {secrets.randbelow(10**6)} AS tag FROM series"
    first, answer = _round_trips(wh, statement, {}, tmp_path)
    again, same = _round_trips(wh, statement, {}, tmp_path)
    assert (first, again) == (2, 1)
    pd.testing.assert_frame_equal(answer, same)
    assert answer["n"].iloc[0] == len(HOSTS) * len(FIELDS)


def test_nothing_runs_after_a_failed_step_of_a_pipeline(pg):
    _, url = pg
    with psycopg.connect(_conninfo(url), autocommit=True) as raw:
        pipeline = postgresql_pipeline.Pipeline(raw)
        pipeline.parse("SELECT 1; SELECT set_config('wh.s5_probe', 'ran', false)")
        pipeline.execute("SELECT set_config('wh.s5_probe', :value, false)", {"value": "ran"})
        refused, skipped = pipeline.send()
        assert refused.status == psycopg.pq.ExecStatus.FATAL_ERROR
        assert b"multiple commands" in refused.error_message
        assert skipped.status == psycopg.pq.ExecStatus.PIPELINE_ABORTED
        assert raw.execute("SELECT current_setting('wh.s5_probe', true)").fetchone()[0] \
            in (None, "")
        # and the connection is usable, out of pipeline mode
        assert raw.execute("SELECT 41 + 1").fetchone() == (42,)


def test_column_types_that_changed_are_noticed_and_answered_again(pg):
    wh, _ = pg
    statement = f"SELECT :x AS v, {secrets.randbelow(10**6)} AS tag"
    # The same text and bind type, but an int4 literal, then an int8 one, then int4 again.
    assert wh.sql(statement, {"x": 1})["v"].iloc[0] == 1
    assert wh.sql(statement, {"x": 10**12})["v"].iloc[0] == 10**12
    assert wh.sql(statement, {"x": 7})["v"].iloc[0] == 7
    assert wh.sql("SELECT count(*) AS n FROM series")["n"].iloc[0] == 6


def test_a_failed_run_on_the_one_round_trip_path_leaves_the_session_clean(pg):
    wh, _ = pg
    statement = "SELECT 1 / :d AS x, 'failing run' AS why"
    assert wh.sql(statement, {"d": 1})["x"].iloc[0] == 1
    with pytest.raises(WarehouseError, match="division by zero"):
        wh.sql(statement, {"d": 0})
    with wh.engine.connect() as conn:
        assert conn.execute(text(
            "SELECT current_user = session_user, current_setting('transaction_read_only'), "
            "current_setting('statement_timeout')")).one() == (True, "off", "0")
    assert wh.sql(statement, {"d": 1})["x"].iloc[0] == 1


def test_settings_and_session_locks_do_not_outlive_a_repeated_statement(pg):
    wh, url = pg
    with wh.engine.connect() as conn:
        zone = conn.execute(text("SELECT current_setting('TimeZone')")).scalar_one()
    for _ in range(3):  # first call, then the one-round-trip path twice
        wh.sql("SELECT set_config('TimeZone', 'Pacific/Apia', false) AS tz, "
               "pg_advisory_lock(515151) AS locked")
        with wh.engine.connect() as conn:
            assert conn.execute(text("SELECT current_setting('TimeZone')")).scalar_one() == zone
        with psycopg.connect(_conninfo(url)) as other:
            assert other.execute("SELECT pg_try_advisory_lock(515151)").fetchone() == (True,)


def test_a_repeated_statement_still_meets_the_time_limit(pg, monkeypatch):
    wh, _ = pg
    statement = "SELECT pg_sleep(:s) AS slept, 'time limit' AS why"
    wh.sql(statement, {"s": 0})
    monkeypatch.setenv("WAREHOUSE_SQL_TIMEOUT", "1")
    with pytest.raises(QueryTimeoutError, match="1 s time limit"):
        wh.sql(statement, {"s": 30})
    assert wh.sql("SELECT 1 AS ok")["ok"].iloc[0] == 1


def test_refusals_stay_refusals_after_a_similar_statement_ran(pg):
    wh, _ = pg
    wh.sql("SELECT count(*) AS n FROM series")
    with pytest.raises(ReadOnlyError, match="exactly one statement"):
        wh.sql("SELECT count(*) AS n FROM series; DELETE FROM series")
    for statement in ("SELECT count(*) AS n FROM series; DELETE FROM series",
                      "SELECT count(*) AS n FROM series) AS q; DELETE FROM series; SELECT (1",
                      "SELECT count(*) AS n FROM users"):
        with pytest.raises(WarehouseError):  # ReadOnlyError, or a syntax error for the second
            wh.sql(statement)
    assert wh.sql("SELECT count(*) AS n FROM series")["n"].iloc[0] == 6
