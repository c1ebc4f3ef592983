"""The CLI, called the way users call it: ``--url`` after the command name, every format."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from warehouse import Warehouse, demo
from warehouse.cli import main

VIEWS_DOC = Path(__file__).resolve().parents[2] / "docs" / "views.md"
VIEWS = re.findall(r"^## `(\w+)`", VIEWS_DOC.read_text(), re.MULTILINE)
END = pd.Timestamp("2026-11-20", tz="UTC")
ISO_UTC_US = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00$")


def run(url, *args, ok=True):
    """``warehouse ARGS... --url URL``; the URL after the command name, as users type it."""
    result = CliRunner().invoke(main, [*args, "--url", url], catch_exceptions=False)
    if ok:
        assert result.exit_code == 0, result.output
    return result


def write_points_file(path, fmt, n=100):
    frame = pd.DataFrame({
        "metric": "latency_ms",
        "labels": ['{"service": "api"}'] * n,
        "ts": pd.date_range("2026-11-20", periods=n, freq="10min", tz="UTC").map(
            lambda t: t.isoformat()),
        "value": range(n),
    })
    if fmt == "csv":
        frame.to_csv(path, index=False)
    elif fmt == "ndjson":
        frame.to_json(path, orient="records", lines=True)
    else:
        frame.assign(ts=pd.to_datetime(frame["ts"], utc=True)).to_parquet(path)
    return frame


@pytest.fixture
def loaded(database_url):
    """Two days of demo runs, steps and points (no analytics: fast)."""
    wh = Warehouse(database_url)
    demo.load(wh, demo.generate(days=2, end=END, seed=5))
    wh.close()
    return database_url


def test_init_ingest_query_sql_info(database_url, tmp_path):
    assert "revision" in run(database_url, "init").output
    for fmt in ("csv", "ndjson", "parquet"):
        write_points_file(tmp_path / f"p.{fmt}", fmt)
        out = run(database_url, "ingest", str(tmp_path / f"p.{fmt}")).output
        assert ("100 written" if fmt == "csv" else "100 already stored") in out
    out = run(database_url, "query", "latency_ms", "--start", "2026-11-19T00:00:00Z",
              "--every", "1d", "--agg", "count", "--by", "", "--format", "json").stdout
    assert [row["value"] for row in json.loads(out)] == [100.0]  # 1000 minutes: one day
    out = run(database_url, "sql", "SELECT count(*) AS n FROM points", "--format", "csv").stdout
    assert out.splitlines() == ["n", "100"]
    info = json.loads(run(database_url, "info", "--format", "json").stdout)
    assert {t["table"]: t["rows"] for t in info["tables"]}["points"] == 100
    shown = run(database_url, "chunks", "show", "points", "--format", "csv").stdout
    assert shown.splitlines()[1].startswith("points_20261120_000000,")


def test_group_url_still_works_and_the_command_url_wins(database_url, tmp_path):
    run(database_url, "init")
    result = CliRunner().invoke(main, ["--url", database_url, "info", "--format", "json"])
    assert result.exit_code == 0 and json.loads(result.stdout)["revision"]
    missing = f"duckdb:///{tmp_path / 'elsewhere.duckdb'}"
    result = CliRunner().invoke(main, ["--url", missing, "info", "--url", database_url])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "elsewhere.duckdb").exists()


def test_query_without_a_window_reads_the_last_day_and_table_output_is_limited(database_url):
    wh = Warehouse(database_url)
    now = pd.Timestamp.now(tz="UTC").floor("s")
    ts = now - pd.to_timedelta(np.arange(3000) * 60, unit="s")  # 50 hours, one a minute
    wh.write_points(pd.DataFrame({"metric": "m", "labels": [{"h": "a"}] * len(ts), "ts": ts,
                                  "value": np.arange(len(ts), dtype=float)}))
    wh.close()
    rows = json.loads(run(database_url, "query", "m", "--format", "json").stdout)
    assert 1439 <= len(rows) <= 1441  # 24 h of minutes, not the 3000 stored
    table = run(database_url, "query", "m")
    assert "showing the first 1,000 of" in table.stderr and "--limit 0" in table.stderr
    assert "read the last 24h" in table.stderr
    limited = json.loads(run(database_url, "query", "m", "--limit", "5", "--format",
                             "json").stdout)
    assert len(limited) == 5
    everything = run(database_url, "sql", "SELECT * FROM points", "--limit", "0",
                     "--format", "csv").stdout
    assert len(everything.splitlines()) == 3001


def test_bad_file_is_refused_with_line_number_and_nothing_written(database_url, tmp_path):
    path = tmp_path / "bad.csv"
    frame = write_points_file(path, "csv", n=10)
    frame.loc[7, "ts"] = "2026-11-20 10:00:00"  # naive
    frame.to_csv(path, index=False)
    result = run(database_url, "ingest", str(path), ok=False)
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1 and result.stdout == ""
    assert "bad.csv" in result.stderr and "row 9" in result.stderr and "naive" in result.stderr
    out = run(database_url, "sql", "SELECT count(*) AS n FROM points", "--format", "csv").stdout
    assert out.splitlines() == ["n", "0"]
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    result = run(database_url, "ingest", str(garbage), ok=False)
    assert result.exit_code == 1 and "garbage.parquet" in result.stderr


def test_demo_runs_end_to_end(database_url):
    out = run(database_url, "demo", "--days", "3").output
    assert "etl-hourly" in out and "runs per recipe" in out
    again = run(database_url, "demo", "--days", "3").output
    assert "'points': 0" in again


def json_commands(tmp_path: Path) -> list[list[str]]:
    """Every command that prints rows or a result, with arguments that make it work."""
    points = tmp_path / "p.csv"
    write_points_file(points, "csv", n=20)
    runs_file = tmp_path / "runs.ndjson"
    runs_file.write_text(json.dumps({"kind": "run", "run_id": str(uuid.uuid4()), "recipe": "imported",
                                     "started_at": "2026-11-19T00:00:00Z",
                                     "finished_at": "2026-11-19T00:01:00Z",
                                     "status": "succeeded"}) + "\n")
    wf = Path(__file__).resolve().parents[1] / "data" / "wfcommons"
    return [
        ["init"], ["info"], ["maintain"],
        ["sql", "SELECT * FROM runs"],
        ["query", "host.cpu_percent", "--start", "2026-11-18T00:00:00Z", "--end",
         "2026-11-19T00:00:00Z"],
        ["query", "host.cpu_percent", "--start", "2026-11-18T00:00:00Z", "--every", "1h",
         "--agg", "p95"],
        ["chunks", "show", "points"], ["chunks", "interval", "points", "1d"],
        ["chunks", "drop", "points", "--older-than", "2026-11-19T00:00:00Z", "--dry-run"],
        ["chunks", "drop", "points", "--older-than", "2000-01-01T00:00:00Z"],
        ["ingest", str(points)], ["import", "runs", str(runs_file)],
        ["import", "wfcommons", str(wf / "helloworld-chain-5-chameleon.json")],
        ["replay", "--spill-dir", str(tmp_path / "spill")],
        ["replay", "--spill-dir", str(tmp_path / "spill"), "--rejected"],
        ["stale", "--older-than", "1m"],
        ["jobs", "list"], ["jobs", "run", "refresh_rollups"], ["jobs", "run-due"],
        ["jobs", "history"], ["jobs", "rollups"],
        ["retention", "set", "points", "--keep", "3650d"], ["retention", "list"],
        ["retention", "remove", "points"],
        ["archive", "list"],
        ["archive", "restore", "--from", "2026-11-18T00:00:00Z", "--to", "2026-11-19T00:00:00Z"],
        ["bottlenecks", "etl-hourly"],
        ["trends", "--recipe", "etl-hourly"],
        ["compare", "etl-hourly@..2026-11-19T00:00:00Z", "etl-hourly@2026-11-19T00:00:00Z.."],
    ]


def test_every_command_takes_url_after_its_name_and_prints_json(loaded, tmp_path):
    for args in json_commands(tmp_path):
        result = run(loaded, *args, "--format", "json", ok=False)
        assert result.exit_code == 0, (args, result.output)
        parsed = json.loads(result.stdout)
        assert isinstance(parsed, (list, dict)), args
        for row in parsed if isinstance(parsed, list) else [parsed]:
            for value in row.values():
                if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT", value):
                    assert ISO_UTC_US.match(value), (args, value)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_round_trips_through_json_and_csv(loaded, view):
    assert len(VIEWS) >= 7
    wh = Warehouse(loaded)
    width = len(wh.sql(f"SELECT * FROM {view} LIMIT 1").columns)
    # Three separate reads compared row by row: the views have no order of their own.
    statement = f"SELECT * FROM {view} ORDER BY " + ", ".join(map(str, range(1, width + 1)))
    frame = wh.sql(statement)
    wh.close()
    assert len(frame), view
    rows = json.loads(run(loaded, "sql", statement, "--format", "json").stdout)
    text = run(loaded, "sql", statement, "--format", "csv").stdout
    back = pd.read_csv(io.StringIO(text))
    assert list(back.columns) == list(frame.columns) == list(rows[0])
    assert len(back) == len(rows) == len(frame)
    for name in frame.columns:
        original, read, from_json = frame[name], back[name], [r[name] for r in rows]
        if isinstance(original.dtype, pd.DatetimeTZDtype) or any(
                isinstance(v, pd.Timestamp) for v in original.dropna()):
            # the same ISO-8601 UTC text in both, parsing back to the same instants
            assert [None if pd.isna(v) else v for v in read.tolist()] == from_json
            assert pd.to_datetime(read, utc=True).dt.as_unit("us").equals(
                pd.to_datetime(original, utc=True).dt.as_unit("us")), name
        elif any(isinstance(v, uuid.UUID) for v in original.dropna()) or name == "run_id":
            # UUIDs as text; a point without a run (all_points) is an empty field / null
            assert ([None if pd.isna(v) else v for v in read.tolist()] == from_json
                    == [None if v is None else str(v) for v in original])
        elif pd.api.types.is_numeric_dtype(original) and not pd.api.types.is_bool_dtype(
                original):
            expect = original.astype(float).to_numpy()
            assert np.allclose(read.astype(float), expect, equal_nan=True), name
            assert np.allclose(np.array(from_json, dtype=float), expect, equal_nan=True), name
        else:
            assert [None if pd.isna(v) else v for v in read.tolist()] == from_json, name


def test_labels_are_json_text_in_csv_and_json(database_url):
    run(database_url, "init")
    wh = Warehouse(database_url)
    wh.write_points(pd.DataFrame({"metric": "m", "labels": [{"b": "2", "a": "x,y"}],
                                  "ts": [pd.Timestamp("2026-11-20T01:02:03.000004Z")],
                                  "value": [1.5]}))
    wh.close()
    args = ("query", "m", "--start", "2026-11-20T00:00:00Z", "--end", "2026-11-21T00:00:00Z")
    row = json.loads(run(database_url, *args, "--format", "json").stdout)[0]
    back = pd.read_csv(io.StringIO(run(database_url, *args, "--format", "csv").stdout))
    assert json.loads(row["labels"]) == json.loads(back["labels"][0]) == {"a": "x,y", "b": "2"}
    assert row["ts"] == back["ts"][0] == "2026-11-20T01:02:03.000004+00:00"


READ_COMMANDS = [
    ["info"], ["sql", "SELECT 1 AS one"], ["query", "m"], ["chunks", "show"], ["maintain"],
    ["stale"], ["jobs", "list"], ["jobs", "history"], ["jobs", "rollups"],
    ["retention", "list"], ["archive", "list"], ["bottlenecks", "etl"],
    ["trends", "--recipe", "etl"],
]


def test_read_commands_refuse_to_create_a_warehouse(database_url, tmp_path):
    if database_url.startswith("duckdb"):
        url = f"duckdb:///{tmp_path / 'typo.duckdb'}"
        where = str(tmp_path / "typo.duckdb")
    else:
        url, where = database_url, database_url.rsplit("/", 1)[1]  # a database, no schema
    for args in READ_COMMANDS:
        result = run(url, *args, ok=False)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.splitlines() == [
            f"error: no warehouse at {where} (run `warehouse init` to create one)"
        ] or (where in result.stderr and "warehouse init" in result.stderr), args
    assert list(tmp_path.iterdir()) == []
    if not database_url.startswith("duckdb"):
        from sqlalchemy import create_engine, inspect

        engine = create_engine(url)
        assert inspect(engine).get_table_names() == []
        engine.dispose()


def one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def test_everyday_mistakes_are_one_line_errors(loaded):
    one_line_error(run(loaded, "sql", "SELEC * FROM runs", ok=False), "check the SQL")
    one_line_error(run(loaded, "sql", "SELECT * FROM no_such_view", ok=False),
                   "no_such_view")
    one_line_error(run(loaded, "query", "no.such.metric", ok=False),
                   "unknown metric 'no.such.metric'")
    one_line_error(run(loaded, "query", "host.cpu_percent", "--start", "2026-11-18 00:00",
                       ok=False), "has no time zone")
    one_line_error(run(loaded, "query", "host.cpu_percent", "--start", "yesterday-ish",
                       ok=False), "is not a timestamp")
    one_line_error(run(loaded, "sql", "DELETE FROM runs", ok=False))
    one_line_error(run(loaded, "chunks", "show", "nope", ok=False), "unknown hypertable")
    one_line_error(run(loaded, "jobs", "run", "nope", ok=False), "nope")
    one_line_error(run(loaded, "ingest", "/no/such/file.csv", ok=False), "no such file")
    debug = run(loaded, "sql", "SELEC * FROM runs", "--debug", ok=False)
    assert debug.exit_code == 1 and "Traceback" in debug.stderr


def test_a_database_in_use_or_away_is_one_line_with_a_hint(database_url, tmp_path):
    run(database_url, "init")
    if database_url.startswith("duckdb"):
        # Another process holds the file, as `warehouse serve` does.
        holder = subprocess.Popen(
            [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
             "print('ready', flush=True); time.sleep(60)", database_url.split(":///", 1)[1]],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "ready"
            one_line_error(run(database_url, "info", ok=False),
                           "is another process (warehouse serve?) holding it")
        finally:
            holder.kill()
            holder.wait()
    else:
        # The same server, a port nothing listens on.
        away = re.sub(r":(\d+)/", ":9/", database_url, count=1)
        assert away != database_url
        one_line_error(run(away, "info", ok=False), "cannot reach", "is the server running")
    assert json.loads(run(database_url, "info", "--format", "json").stdout)["revision"]


def test_usage_errors_exit_2(loaded):
    result = run(loaded, "query", "m", "--agg", "median", ok=False)
    assert result.exit_code == 2 and "median" in result.stderr
    result = run(loaded, "query", "m", "--label", "no-equals-sign", ok=False)
    assert result.exit_code == 2
