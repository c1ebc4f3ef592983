"""The CLI, called the way users call it."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from warehouse.cli import main


def run(url, *args, ok=True):
    result = CliRunner().invoke(main, ["--url", url, *args], catch_exceptions=False)
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


def test_init_ingest_query_sql_info(database_url, tmp_path):
    assert "revision" in run(database_url, "init").output
    for fmt in ("csv", "ndjson", "parquet"):
        write_points_file(tmp_path / f"p.{fmt}", fmt)
        out = run(database_url, "ingest", str(tmp_path / f"p.{fmt}")).output
        assert ("100 written" if fmt == "csv" else "100 already stored") in out
    out = run(database_url, "query", "latency_ms", "--every", "1d", "--agg", "count",
              "--by", "", "--format", "json").output
    assert [row["value"] for row in json.loads(out)] == [100.0]  # 1000 minutes: one day
    out = run(database_url, "sql", "SELECT count(*) AS n FROM points", "--format", "csv").output
    assert out.splitlines() == ["n", "100"]
    info = json.loads(run(database_url, "info", "--format", "json").output)
    assert {t["table"]: t["rows"] for t in info["tables"]}["points"] == 100
    shown = run(database_url, "chunks", "show", "points", "--format", "csv").output
    assert shown.splitlines()[1].startswith("points_20261120_000000,")


def test_bad_file_is_refused_with_line_number_and_nothing_written(database_url, tmp_path):
    path = tmp_path / "bad.csv"
    frame = write_points_file(path, "csv", n=10)
    frame.loc[7, "ts"] = "2026-11-20 10:00:00"  # naive
    frame.to_csv(path, index=False)
    result = run(database_url, "ingest", str(path), ok=False)
    assert result.exit_code == 2
    assert "bad.csv" in result.output and "row 9" in result.output and "naive" in result.output
    out = run(database_url, "sql", "SELECT count(*) AS n FROM points", "--format", "csv").output
    assert out.splitlines() == ["n", "0"]
    garbage = tmp_path / "garbage.parquet"
    garbage.write_bytes(b"not parquet at all")
    result = run(database_url, "ingest", str(garbage), ok=False)
    assert result.exit_code == 2 and "garbage.parquet" in result.output


def test_demo_runs_end_to_end(database_url):
    out = run(database_url, "demo", "--days", "3").output
    assert "etl-hourly" in out and "runs per recipe" in out
    again = run(database_url, "demo", "--days", "3").output
    assert "'points': 0" in again
