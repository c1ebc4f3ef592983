"""Everyday mistakes give one line on stderr with a hint and exit 1; --debug the traceback.
No database is opened here; the same corpus against real databases (a locked DuckDB file,
an unreachable server, SQL typos) is in tests/storage/test_cli.py."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from sqlalchemy.exc import OperationalError, ProgrammingError

from warehouse.cli import main
from warehouse.cli.options import describe_error
from warehouse.errors import FieldProblem, TerminalError, UnknownNameError, ValidationError


def invoke(*args):
    return CliRunner().invoke(main, list(args))


def one_line(result, *needles) -> str:
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


@pytest.mark.parametrize("command", [["info"], ["sql", "select 1"], ["query", "m"],
                                     ["chunks", "show"], ["jobs", "history"], ["stale"]])
def test_a_misspelled_duckdb_path_creates_nothing(tmp_path, command):
    url = f"duckdb:///{tmp_path / 'typo.duckdb'}"
    line = one_line(invoke(*command, "--url", url))
    assert line == (f"error: no warehouse at {tmp_path / 'typo.duckdb'} "
                    f"(run `warehouse init` to create one)")
    assert list(tmp_path.iterdir()) == []


def test_debug_shows_the_traceback(tmp_path):
    url = f"duckdb:///{tmp_path / 'typo.duckdb'}"
    for args in (["info", "--url", url, "--debug"], ["--debug", "info", "--url", url]):
        result = invoke(*args)
        assert result.exit_code == 1
        assert "Traceback (most recent call last)" in result.stderr
        assert "no warehouse at" in result.stderr


def test_unknown_url_scheme_and_unreachable_server():
    one_line(invoke("info", "--url", "mysql://x/y"), "no warehouse backend for 'mysql'")
    line = one_line(invoke("info", "--url", "postgresql://nobody@127.0.0.1:9/none"),
                    "cannot reach postgresql+psycopg://nobody@127.0.0.1:9/none",
                    "is the server running")
    assert "Traceback" not in line


def test_password_is_not_printed():
    result = invoke("info", "--url", "postgresql://me:s3cret@127.0.0.1:9/db")
    assert "me:***@127.0.0.1" in one_line(result) and "s3cret" not in result.stderr


def driver_error(message: str, cls=OperationalError):
    return cls("SELECT 1", {}, Exception(message))


@pytest.mark.parametrize(("exc", "url", "command", "expected"), [
    (driver_error("IO Error: Could not set lock on file \"w.duckdb\"\nmore"), "duckdb:///w.duckdb",
     "info", "cannot open duckdb:///w.duckdb: IO Error: Could not set lock on file \"w.duckdb\" "
             "— is another process (warehouse serve?) holding it? Stop it or go through its API"),
    (driver_error("connection refused"), "postgresql://h/db", "info",
     "cannot reach postgresql+psycopg://h/db: connection refused — is the server running and "
     "the URL right? (--url or WAREHOUSE_URL); try again once it is up"),
    (driver_error("syntax error at or near \"selec\"\nLINE 1: selec", ProgrammingError),
     "postgresql://h/db", "sql", "the database refused the statement: syntax error at or near "
     "\"selec\" — check the SQL; the documented views are in docs/views.md"),
    (TerminalError("SQL error: Catalog Error: Table x does not exist"), None, "sql",
     "SQL error: Catalog Error: Table x does not exist — check the SQL; the documented views "
     "are in docs/views.md"),
    (UnknownNameError("unknown metric 'x': no series has been written for it"), None, "query",
     "unknown metric 'x': no series has been written for it"),
    (ValidationError("points", [FieldProblem(3, "ts", "naive")]), None, "ingest",
     "points: nothing written — row 3, field 'ts': naive"),
    (ValueError("start: '2026-11-18' has no time zone\nsecond line"), None, "query",
     "start: '2026-11-18' has no time zone"),
    (ZeroDivisionError("division by zero"), None, "info",
     "internal error: ZeroDivisionError: division by zero (run again with --debug for the "
     "traceback)"),
])
def test_describe_error(exc, url, command, expected):
    assert describe_error(exc, url, command) == expected


def test_an_error_line_cannot_drive_the_terminal(tmp_path):
    name = "x\x1b[2J.duckdb"
    url = f"duckdb:///{tmp_path / name}"
    line = one_line(invoke("info", "--url", url), "no warehouse at")
    assert "\x1b" not in line and "x\\x1b[2J.duckdb" in line


@pytest.mark.parametrize("command", [["info"], ["sql", "select 1"], ["jobs", "list"]])
def test_a_served_warehouse_that_is_down_names_warehouse_serve(command):
    # Port 9 (discard) has no listener here: the client raises TransientError at once.
    one_line(invoke(*command, "--url", "http://127.0.0.1:9"), "cannot reach http://127.0.0.1:9",
             "warehouse serve")
