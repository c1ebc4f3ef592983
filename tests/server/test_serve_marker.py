"""``warehouse serve`` owning an embedded file: other processes are told where it serves.

DuckDB lets one process open a file; while `serve` runs, a CLI command on the file fails.
The failure must name the server's URL (from the ``<file>.serving`` marker), and the marker
must go when the server stops — and be ignored when its server died without removing it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.server.conftest import free_port, start_serve, wait_ready
from warehouse.backends.paths import serving_marker, serving_url


def _cli(*args: str, url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "warehouse.cli", *args], capture_output=True,
                          text=True, env={**os.environ, "WAREHOUSE_URL": url}, timeout=120)


def test_cli_on_a_served_file_names_the_server_and_works_through_it(tmp_path):
    db = tmp_path / "w.duckdb"
    port = free_port()
    served = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    proc = start_serve(["--url", f"duckdb:///{db}", "--port", str(port), "--no-jobs",
                        "--no-alerts"], log)
    try:
        wait_ready(proc, served, log)
        marker = serving_marker(db)
        assert json.loads(marker.read_text()) == {"url": served, "pid": proc.pid}

        refused = _cli("sql", "SELECT 1 AS x", url=f"duckdb:///{db}")
        assert refused.returncode == 1
        assert f"`warehouse serve` owns it at {served}" in refused.stderr
        assert f"--url {served}" in refused.stderr

        through = _cli("sql", "SELECT 41 + 1 AS x", "--format", "csv", url=served)
        assert through.returncode == 0, through.stderr
        assert through.stdout.splitlines() == ["x", "42"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    assert not serving_marker(db).exists(), log.read_text()[-2000:]


def test_a_marker_left_by_a_dead_server_is_ignored(tmp_path):
    db = tmp_path / "w.duckdb"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    serving_marker(db).write_text(json.dumps({"url": "http://127.0.0.1:9", "pid": gone.pid}))
    assert serving_url(db) is None


@pytest.mark.parametrize("text", ["", "not json", "[1, 2]", '{"url": "file:///etc/passwd", "pid": 1}',
                                  '{"url": "http://x", "pid": "1"}'])
def test_a_malformed_marker_is_ignored(tmp_path, text):
    db = tmp_path / "w.duckdb"
    serving_marker(db).write_text(text)
    assert serving_url(db) is None
