"""Importing real WfCommons traces into both engines, through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from warehouse import Warehouse
from warehouse.cli import main

# Small real traces kept in the repository (tests/data/wfcommons/README.md: source, licence).
SAMPLES = Path(__file__).resolve().parents[1] / "data" / "wfcommons"


def expected(path: Path) -> tuple[int, float]:
    """Tasks and total task runtime (s) straight from the JSON."""
    doc = json.loads(path.read_text())
    workflow = doc["workflow"]
    if "execution" in workflow:
        tasks = workflow["execution"]["tasks"]
    else:
        tasks = workflow["tasks"]
    return len(tasks), sum(float(t.get("runtimeInSeconds", t.get("runtime", 0))) for t in tasks)


def test_import_every_sample_twice(database_url):
    files = sorted(SAMPLES.glob("*.json"))
    runner = CliRunner()
    assert files
    first = runner.invoke(main, ["import", "wfcommons", str(SAMPLES), "--url", database_url],
                          catch_exceptions=False)
    assert first.exit_code == 0, first.output
    wh = Warehouse(database_url)
    runs = wh.runs()
    assert len(runs) == len(files)
    for path in files:
        tasks, runtime = expected(path)
        run = runs[runs["attributes"].map(lambda a, name=path.name: a.get("source_file") == name)]
        assert len(run) == 1, path.name
        steps = wh.steps(run["run_id"].iloc[0])
        assert len(steps) == tasks, path.name
        assert steps["duration_us"].sum() / 1e6 == pytest.approx(runtime, abs=1e-3 * tasks)
    counts = wh.sql("SELECT (SELECT count(*) FROM runs) AS r, (SELECT count(*) FROM step_runs) AS s")
    wh.close()
    again = runner.invoke(main, ["import", "wfcommons", *map(str, files), "--url", database_url],
                          catch_exceptions=False)
    assert again.exit_code == 0, again.output
    wh = Warehouse(database_url)
    assert wh.sql("SELECT (SELECT count(*) FROM runs) AS r, (SELECT count(*) FROM step_runs) AS s"
                  ).equals(counts)
    wh.close()


def test_invalid_file_is_rejected_clearly(database_url, tmp_path):
    bad = tmp_path / "broken.json"
    bad.write_text('{"name": "x", "schemaVersion": "1.5", "workflow": {"specification": '
                   '{"tasks": [{"id": "a", "name": "a", "parents": ["zz"], "children": []}]}, '
                   '"execution": {"makespanInSeconds": 1, "executedAt": "2026-01-01T00:00:00Z",'
                   ' "tasks": [{"id": "a", "runtimeInSeconds": 1}]}}}')
    result = CliRunner().invoke(main, ["import", "wfcommons", str(bad), "--url", database_url])
    assert result.exit_code == 1
    assert "broken.json" in result.stderr and "$." in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
