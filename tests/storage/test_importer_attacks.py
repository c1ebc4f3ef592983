"""Malformed and hostile import files through `warehouse import`, the way users call it, on
DuckDB and PostgreSQL: each is refused with one clear line naming the file, and nothing of
it is written (issues 9 and 11: think like an attacker on every entry point)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import text

from warehouse import Warehouse
from warehouse.cli import main

SAMPLE = Path(__file__).resolve().parents[1] / "data" / "wfcommons" / "helloworld-chain-5-chameleon.json"
RUN_ID = "6f1c2a8e-0b7d-4c1e-9a57-3d2f0e9b1c11"
HEADER = "kind,run_id,recipe,step_id,step,started_at,finished_at,status,params,depends_on\n"
GOOD_RUN = f"run,{RUN_ID},etl,,,2024-05-01T12:00:00Z,2024-05-01T12:00:05Z,succeeded,,\n"
GOOD_STEP = f"step,{RUN_ID},,extract,extract,2024-05-01T12:00:00Z,2024-05-01T12:00:02Z,succeeded,,\n"


def _wf(mutate) -> bytes:
    """The small real 1.5 sample, changed in place by ``mutate(doc)``."""
    doc = json.loads(SAMPLE.read_text())
    mutate(doc)
    return json.dumps(doc).encode()


def _task(doc, i=0):
    return doc["workflow"]["execution"]["tasks"][i]


def _spec(doc, i=0):
    return doc["workflow"]["specification"]["tasks"][i]


def _set(target, key, value):
    target[key] = value


WFCOMMONS = {
    "not json": b"this is not JSON",
    "empty": b"",
    "truncated": SAMPLE.read_bytes()[:500],
    "top-level array": b"[1, 2, 3]",
    "top-level string": b'"workflow"',
    "bad utf-8": b'{"name": "\xff\xfe", "schemaVersion": "1.5"}',
    "deep nesting": b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    "unknown schema version": _wf(lambda d: _set(d, "schemaVersion", "9.9")),
    "schema version number": _wf(lambda d: _set(d, "schemaVersion", 1.5)),
    "no workflow": _wf(lambda d: d.pop("workflow")),
    "workflow is a list": _wf(lambda d: _set(d, "workflow", [])),
    "tasks not a list": _wf(lambda d: _set(d["workflow"]["execution"], "tasks", {"a": 1})),
    "runtime text": _wf(lambda d: _set(_task(d), "runtimeInSeconds", "abc")),
    "runtime negative": _wf(lambda d: _set(_task(d), "runtimeInSeconds", -5)),
    "runtime NaN": _wf(lambda d: _set(_task(d), "runtimeInSeconds", float("nan"))),
    "runtime infinite": _wf(lambda d: _set(_task(d), "runtimeInSeconds", float("inf"))),
    "runtime huge": _wf(lambda d: _set(_task(d), "runtimeInSeconds", 1e300)),
    "runtime boolean": _wf(lambda d: _set(_task(d), "runtimeInSeconds", True)),
    "memory negative": _wf(lambda d: _set(_task(d), "memoryInBytes", -1)),
    "bytes huge": _wf(lambda d: _set(_task(d), "readBytes", 10**30)),
    "executedAt garbage": _wf(lambda d: _set(d["workflow"]["execution"], "executedAt", "soon")),
    "executedAt year 99999": _wf(lambda d: _set(d["workflow"]["execution"], "executedAt",
                                                "99999-01-01T00:00:00Z")),
    "makespan huge": _wf(lambda d: _set(d["workflow"]["execution"], "makespanInSeconds", 1e300)),
    "unknown parent": _wf(lambda d: _set(_spec(d), "parents", ["ghost"])),
    "dependency cycle": _wf(lambda d: _set(_spec(d), "parents", [_spec(d, -1)["id"]])),
    "duplicate task id": _wf(lambda d: _set(_spec(d, 1), "id", _spec(d, 0)["id"])),
    "task name NUL": _wf(lambda d: _set(_spec(d), "name", "cpu\x00hog")),
    "task name 1 MB": _wf(lambda d: _set(_spec(d), "name", "x" * 1_000_000)),
    "task name SQL": _wf(lambda d: _set(_spec(d), "name", "'; DROP TABLE runs; --")),
    "instance name NUL": _wf(lambda d: _set(d, "name", "chain\x00")),
    "instance name 1 MB": _wf(lambda d: _set(d, "name", "c" * 1_000_000)),
    "machines not a list": _wf(lambda d: _set(d["workflow"]["execution"], "machines", "node")),
}

RUNS_CSV = {
    "no header": GOOD_RUN,
    "unknown column": HEADER.replace("depends_on", "colour") + GOOD_RUN,
    "SQL column name": HEADER.replace("depends_on", "\"x; DROP TABLE runs\"") + GOOD_RUN,
    "duplicate column": HEADER.replace("params", "status") + GOOD_RUN,
    "naive start": HEADER + GOOD_RUN.replace("12:00:00Z", "12:00:00"),
    "garbage start": HEADER + GOOD_RUN.replace("2024-05-01T12:00:00Z", "yesterday"),
    "bad run id": HEADER + GOOD_RUN.replace(RUN_ID, "../../etc/passwd"),
    "bad status": HEADER + GOOD_RUN.replace("succeeded", "exploded"),
    "bad kind": HEADER + GOOD_RUN.replace("run,", "walk,", 1),
    "recipe SQL": HEADER + GOOD_RUN.replace(",etl,", ",'; DROP TABLE runs; --,"),
    "recipe NUL": HEADER + GOOD_RUN.replace(",etl,", ",e\x00tl,"),
    "recipe 1 MB": HEADER + GOOD_RUN.replace(",etl,", "," + "r" * 1_000_000 + ","),
    "params not JSON": HEADER + GOOD_RUN.replace(",succeeded,,", ",succeeded,{oops,"),
    "params a list": HEADER + GOOD_RUN.replace(",succeeded,,", ',succeeded,"[1, 2]",'),
    "params deep": HEADER + GOOD_RUN.replace(",succeeded,,", ',succeeded,"' + '{""a"":' * 200
                                             + "1" + "}" * 200 + '",'),
    "finished before started": HEADER + GOOD_RUN.replace("12:00:05Z", "11:00:00Z"),
    "step without run": HEADER + GOOD_STEP,
    "duplicate run": HEADER + GOOD_RUN + GOOD_RUN,
    "duration huge": "kind,run_id,recipe,started_at,status,duration_us\n"
                     f"run,{RUN_ID},etl,2024-05-01T12:00:00Z,succeeded,{10**30}\n",
    "duration fraction": "kind,run_id,recipe,started_at,status,duration_us\n"
                         f"run,{RUN_ID},etl,2024-05-01T12:00:00Z,succeeded,1.5\n",
    "unterminated quote": HEADER + GOOD_RUN.replace(",succeeded,,", ',succeeded,"{,'),
    "step names unknown dependency": HEADER + GOOD_RUN
    + GOOD_STEP.replace("succeeded,,", 'succeeded,,"[""ghost""]"'),
    # A good run followed by a bad line: the good one must not be written either.
    "good then bad": HEADER + GOOD_RUN + GOOD_STEP.replace("extract,extract", "x,y\x00"),
}


def _counts(url: str) -> tuple[int, int, int]:
    wh = Warehouse(url)
    try:
        with wh.engine.connect() as conn:
            return tuple(conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                         for table in ("recipes", "runs", "step_runs"))
    finally:
        wh.close()


def _refused_cleanly(result, file: Path, label: str) -> str:
    assert result.exit_code == 1, (label, result.exit_code, result.output[-500:])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        label, repr(result.exception))
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, (label, result.stderr[:2000])
    line = lines[0]
    assert "Traceback (most recent" not in line and file.name in line, (label, line)
    assert len(line) < 2000, (label, len(line))  # a 1 MB value is not echoed back whole
    return line


def _run_corpus(database_url, tmp_path, kind: str, corpus: dict, suffix: str) -> dict:
    Warehouse(database_url).close()  # migrated before the counts are taken
    before = _counts(database_url)
    runner = CliRunner()
    lines = {}
    for i, (label, content) in enumerate(corpus.items()):
        file = tmp_path / f"attack{i}{suffix}"
        file.write_bytes(content if isinstance(content, bytes) else content.encode(
            "utf-8", "surrogatepass"))
        result = runner.invoke(main, ["import", kind, str(file), "--url", database_url])
        lines[label] = _refused_cleanly(result, file, label)
    assert _counts(database_url) == before
    return lines


def test_malformed_wfcommons_files_are_refused_in_one_line(database_url, tmp_path):
    lines = _run_corpus(database_url, tmp_path, "wfcommons", WFCOMMONS, ".json")
    assert "$.schemaVersion" in lines["unknown schema version"]
    assert "ghost" in lines["unknown parent"]
    assert "cycle" in lines["dependency cycle"]
    # the control: the unchanged sample imports
    result = CliRunner().invoke(main, ["import", "wfcommons", str(SAMPLE), "--url", database_url])
    assert result.exit_code == 0, result.output
    assert _counts(database_url)[1] == 1


def test_malformed_runs_csv_files_are_refused_in_one_line(database_url, tmp_path):
    lines = _run_corpus(database_url, tmp_path, "runs", RUNS_CSV, ".csv")
    assert "colour" in lines["unknown column"]
    assert "started_at" in lines["naive start"]
    assert "field 'step'" in lines["good then bad"]
    good = tmp_path / "good.csv"
    good.write_text(HEADER + GOOD_RUN + GOOD_STEP)
    result = CliRunner().invoke(main, ["import", "runs", str(good), "--url", database_url])
    assert result.exit_code == 0, result.output
    assert _counts(database_url)[1:] == (1, 1)


def test_paths_that_are_not_import_files_are_refused(database_url, tmp_path):
    runner = CliRunner()
    for path in ("../../etc/passwd", "/etc/passwd", "/dev/zero", str(tmp_path / "missing.json")):
        result = runner.invoke(main, ["import", "wfcommons", path, "--url", database_url])
        assert result.exit_code != 0, (path, result.output)
        assert "Traceback (most recent" not in result.output and result.output.strip(), path
        assert len(result.stderr.strip().splitlines()) == 1, (path, result.stderr[:500])
