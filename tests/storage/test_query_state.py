"""The state a query starts from, when it is assumed rather than read first.

On PostgreSQL a ``wh.points``/``wh.frame`` call assumes the state read by the call before
and sends the state statement with its own (one round trip); when the state read there
differs, the call is answered again from it (warehouse/query/catalog.py, state_checked).
On DuckDB the state is remembered per commit instead; the answers must be the same.
"""

from __future__ import annotations

import re

import pandas as pd
import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from warehouse import Warehouse

START = pd.Timestamp("2026-11-25T00:00Z")


def _points(metric: str, host: str, n: int = 120, value: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({"metric": metric, "ts": pd.date_range(START, periods=n, freq="1min"),
                         "value": value, "host": host})


def test_a_call_whose_assumed_state_is_outdated_is_answered_again(wh, database_url):
    wh.write_points(_points("cpu", "a", value=1.0), label_columns=["host"])
    hosts = {"host": ["a", "b"]}
    first = wh.frame(["cpu"], START, START + pd.Timedelta("2h"), labels=hosts, every="1h",
                     agg="max", by=["host"])
    assert first["host"].tolist() == ["a", "a"]
    assert wh.points("cpu", START, labels=hosts, every="1h", agg="max")["host"].tolist() == [
        "a", "a"]
    other = Warehouse(database_url)  # another writer: this process's caches do not see it
    try:
        other.write_points(_points("cpu", "b", value=2.0), label_columns=["host"])
        other.write_points(_points("mem", "a", n=3), label_columns=["host"])  # a new metric
    finally:
        other.close()
    frame = wh.frame(["cpu"], START, START + pd.Timedelta("2h"), labels=hosts, every="1h",
                     agg="max", by=["host"])
    assert frame["host"].tolist() == ["a", "a", "b", "b"]
    assert frame["cpu"].tolist() == [1.0, 1.0, 2.0, 2.0]
    points = wh.points("cpu", START, labels=hosts, every="1h", agg="max", by=["host"])
    assert points["host"].tolist() == ["a", "a", "b", "b"]
    # Unknown to the state assumed (an error before any statement): read again, found.
    assert len(wh.points("mem", with_labels=False)) == 3
    # And a metric that does not exist still says so.
    with pytest.raises(Exception, match="unknown metric 'disk'"):
        wh.points("disk")


def test_a_small_postgresql_call_sends_its_state_with_its_statement(database_url, request):
    """One pipeline per call, a transaction of its own (BEGIN REPEATABLE READ, state, query,
    COMMIT): no BEGIN of psycopg's and no ROLLBACK of the pool's; the connection goes back to
    the pool out of autocommit."""
    if not database_url.startswith("postgresql"):
        pytest.skip("an embedded engine has no round trips to save")
    server = request.getfixturevalue("postgres_server")
    if not hasattr(server, "log"):
        pytest.skip("the server's statement log is not readable here")
    database = database_url.rsplit("/", 1)[1]
    setup = Warehouse(database_url)
    try:
        setup.write_points(_points("cpu", "a"), label_columns=["host"])
        with setup.engine.begin() as conn:
            conn.execute(text(f'ALTER DATABASE "{database}" SET log_statement = \'all\''))
    finally:
        setup.close()
    wh = Warehouse(database_url)  # sessions begun after the setting log every statement
    try:
        for _ in range(2):  # the first call reads the state; the next ones assume it
            wh.points("cpu", START, START + pd.Timedelta("1h"), every="1m", agg="max")
        with wh.engine.connect() as conn:
            pid = conn.execute(text("SELECT pg_backend_pid()")).scalar()
            conn.rollback()
        before = len(server.log())
        answer = wh.frame(["cpu"], START, START + pd.Timedelta("1h"), labels={"host": ["a"]},
                          every="1m", agg="max", by=[])
        assert len(answer) == 60
        logged = server.log()[before:]  # the connection is back: its ROLLBACK is logged
        messages = re.findall(rf"\[{pid}\] LOG:  (?:statement|execute [^:]*): (.*)", logged)
        assert len(messages) == 4, logged
        assert messages[0] == "BEGIN ISOLATION LEVEL REPEATABLE READ"
        assert messages[1].startswith("-- What a points query must know")  # the state
        assert messages[3] == "COMMIT"
        with wh.engine.connect() as conn:  # the same pooled connection, back to normal
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() == pid
            assert conn.connection.driver_connection.autocommit is False
    finally:
        wh.close()


def test_a_failed_statement_leaves_the_pooled_connection_usable(wh, database_url, monkeypatch):
    """The query's statement fails inside the message that also carried BEGIN and the state:
    the error reaches the caller, and the next call (same pooled connection) is answered."""
    wh.write_points(_points("cpu", "a"), label_columns=["host"])
    call = lambda: wh.points("cpu", START, START + pd.Timedelta("1h"),  # noqa: E731
                             every="1m", agg="max", by=[])
    assert len(call()) == 60  # the state is read (and remembered) here
    monkeypatch.setattr(wh.backend, "aggregate", lambda agg: "no_such_function(value)")
    with pytest.raises(Exception, match="no_such_function"):
        call()
    monkeypatch.undo()
    assert len(call()) == 60
    if database_url.startswith("postgresql"):
        with wh.engine.connect() as conn:
            driver = conn.connection.driver_connection
            assert driver.autocommit is False
            assert driver.info.transaction_status.name == "IDLE"


def _counting_statements(wh, monkeypatch) -> list[str]:
    statements = []
    fetch = wh.backend.fetch_columns
    monkeypatch.setattr(wh.backend, "fetch_columns",
                        lambda conn, sql, params: statements.append(sql) or fetch(conn, sql,
                                                                                   params))
    return statements


def test_after_its_own_write_a_call_reads_the_state_instead_of_assuming_it(wh, monkeypatch):
    """A commit of this process makes the state read before it stale, most likely: the next
    call reads it first rather than send its statement twice (assumed, then again)."""
    wh.write_points(_points("cpu", "a"), label_columns=["host"])
    statements = _counting_statements(wh, monkeypatch)
    call = lambda: wh.points("cpu", START, labels={"host": ["a", "b"]},  # noqa: E731
                             every="1h", agg="max", by=["host"])
    call()
    wh.write_points(_points("cpu", "b"), label_columns=["host"])  # this process's commit
    statements.clear()
    assert call()["host"].tolist() == ["a", "a", "b", "b"]
    assert len(statements) == 1


def test_another_writers_commit_is_found_in_the_query_snapshot(wh, database_url, monkeypatch):
    """PostgreSQL: a commit this process did not make (another client: plain psycopg here) is
    found by the state read with the query's statement, and the call answered again."""
    if not database_url.startswith("postgresql"):
        pytest.skip("one writer process: every commit to the file is counted")
    wh.write_points(_points("cpu", "a"), label_columns=["host"])
    statements = _counting_statements(wh, monkeypatch)
    hosts = {"host": ["a", "c"]}
    call = lambda: wh.frame(["cpu"], START, START + pd.Timedelta("2h"),  # noqa: E731
                            labels=hosts, every="1h", agg="max", by=["host"])
    assert call()["host"].tolist() == ["a", "a"]
    url = make_url(database_url)
    with psycopg.connect(host=url.host, port=url.port, user=url.username,
                         dbname=url.database) as other:
        for metric in ("cpu", "mem"):
            sid = other.execute(
                "INSERT INTO series (metric, labels, labels_key) VALUES (%s, %s, %s) "
                "RETURNING series_id", (metric, '{"host": "c"}', '{"host": "c"}')).fetchone()[0]
            other.execute("INSERT INTO points (ts, series_id, value) VALUES (%s, %s, 7.0)",
                          (START + pd.Timedelta("10min"), sid))
    statements.clear()
    answer = call()
    assert answer["host"].tolist() == ["a", "a", "c"]
    assert answer["cpu"].tolist() == [1.0, 1.0, 7.0]
    assert len(statements) == 2  # assumed, found changed, answered again in that snapshot
    # A metric unknown to the state assumed (an error before any statement): found.
    assert wh.points("mem", with_labels=False)["value"].tolist() == [7.0]


def test_a_call_needing_a_statement_after_its_one_message_is_answered_again(wh):
    """last=N over a gap wider than the first window: the newest-first plan widens it with
    more statements, which cannot follow the message that ended its transaction (PostgreSQL:
    SnapshotEnded), so the call is answered again, reading its state first."""
    old = _points("cpu", "a", n=3)
    new = _points("cpu", "a", n=2).assign(ts=lambda f: f["ts"] + pd.Timedelta("20D"))
    wh.write_points(pd.concat([old, new]), label_columns=["host"])
    end = START + pd.Timedelta("21D")
    first = wh.points("cpu", None, end, last=4, with_labels=False)  # reads the state
    again = wh.points("cpu", None, end, last=4, with_labels=False)  # assumes it
    pd.testing.assert_frame_equal(again, first)
    assert first["ts"].tolist() == [*old["ts"][1:], *new["ts"]]
    assert len(wh.points("cpu", None, end, every="1h", agg="max", by=[], last=2)) == 2
