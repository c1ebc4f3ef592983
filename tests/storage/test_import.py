"""Importing real WfCommons traces into both engines, through the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from warehouse import Warehouse
from warehouse.cli import main

SAMPLES = Path(os.environ.get("WAREHOUSE_SHARED_DATA",
                              Path(__file__).resolve().parents[3] / "shared" / "data")) / "wfcommons"


def expected(path: Path) -> tuple[int, float]:
    """Tasks and total task runtime (s) straight from the JSON."""
    doc = json.loads(path.read_text())
    workflow = doc["workflow"]
    if "execution" in workflow:
        tasks = workflow["execution"]["tasks"]
    else:
        tasks = workflow["tasks"]
    return len(tasks), sum(float(t.get("runtimeInSeconds", t.get("runtime", 0))) for t in tasks)


@pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"sample traces not found at {SAMPLES}")
def test_import_every_sample_twice(database_url):
    files = sorted(SAMPLES.glob("*.json"))
    runner = CliRunner()
    first = runner.invoke(main, ["--url", database_url, "import", "wfcommons", str(SAMPLES)],
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
    again = runner.invoke(main, ["--url", database_url, "import", "wfcommons", *map(str, files)],
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
    result = CliRunner().invoke(main, ["--url", database_url, "import", "wfcommons", str(bad)])
    assert result.exit_code == 2
    assert "broken.json" in result.output and "$." in result.output
