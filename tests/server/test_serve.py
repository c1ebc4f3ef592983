"""``warehouse serve`` as a real process on a free port over a DuckDB file: the recorder
records over HTTP while ``warehouse sql`` reads from another process; kill -9 of the server
in the middle of a stream of recorder writes loses nothing and doubles nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.server.conftest import free_port, start_serve, wait_ready
from warehouse import Warehouse, recorder

pytestmark = pytest.mark.slow


class ServeProcess:
    """``python -m warehouse.cli serve`` on a DuckDB file; waits until /readyz answers."""

    def __init__(self, db_path, port: int, log_path):
        self.db_path, self.port, self.log_path = db_path, port, log_path
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> ServeProcess:
        self.proc = start_serve(["--url", f"duckdb:///{self.db_path}", "--port",
                                 str(self.port), "--log-level", "info"], self.log_path)
        wait_ready(self.proc, self.url, self.log_path)
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(30)
        return self.proc.returncode


@pytest.fixture
def spill_dir(tmp_path, monkeypatch):
    path = tmp_path / "spill"
    monkeypatch.setenv("WAREHOUSE_SPILL_DIR", str(path))
    yield path
    recorder.shutdown()


@pytest.fixture
def served(tmp_path):
    server = ServeProcess(tmp_path / "served.duckdb", free_port(), tmp_path / "serve.log").start()
    yield server
    server.stop()


def cli_sql(url: str, statement: str) -> list[dict]:
    """``warehouse sql`` in another process against the served warehouse."""
    out = subprocess.run([sys.executable, "-m", "warehouse.cli", "sql", statement,
                          "--format", "json"],
                         env={**os.environ, "WAREHOUSE_URL": url}, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_recorder_over_http_while_another_process_reads(served, spill_dir):
    wh = Warehouse(served.url)
    with wh.recipe_run("etl-served", params={"day": "2026-11-30"}) as run:
        with run.step("extract") as step:
            step.metric("rows", 42)
        run.flush()
        # The server holds the DuckDB file; another process still reads, through the API.
        during = cli_sql(served.url, "SELECT recipe, status FROM runs")
        assert during == [{"recipe": "etl-served", "status": "running"}]
        with run.step("load"):
            pass
    recorder.shutdown()
    after = cli_sql(served.url, "SELECT status FROM runs")
    assert after == [{"status": "succeeded"}]
    steps = cli_sql(served.url, "SELECT step, status FROM step_runs ORDER BY ordinal")
    assert steps == [{"step": "extract", "status": "succeeded"},
                     {"step": "load", "status": "succeeded"}]
    assert wh.points("rows")["value"].tolist() == [42.0]
    # On DuckDB the server runs due jobs itself (nothing else can open the file).
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        history = wh.job_runs()
        if "refresh_rollups" in set(history.loc[history["trigger"] == "scheduler", "job"]):
            break
        time.sleep(0.5)
    else:
        raise AssertionError(f"no scheduled job ran: {wh.job_runs()}")
    # Graceful stop: on SIGTERM the app shuts down and closes the warehouse (uvicorn then
    # re-raises the signal, so the exit status says SIGTERM); the file opens directly again.
    assert served.stop() in (0, -signal.SIGTERM)
    assert "warehouse closed" in served.log_path.read_text()
    direct = Warehouse(f"duckdb:///{served.db_path}")
    try:
        assert len(direct.runs()) == 1
    finally:
        direct.close()


def test_kill_9_during_recorder_writes_loses_and_doubles_nothing(served, spill_dir):
    wh = Warehouse(served.url)
    sent = 3000
    with wh.recipe_run("stream") as run:
        for i in range(sent):
            run.metric("seq", i)
            if i % 100 == 99:
                run.flush()  # a stream of HTTP writes, 100 points at a time
            if i == 1000:
                served.kill()  # mid-stream: later writes fail and spill to disk
            if i == 2000:
                served.start()  # back: the recorder writes again and replays its spill
    stats = recorder.recorder_for(wh).flush()
    recorder.shutdown()
    # The outage really happened: writes failed, went to the spill file and were replayed.
    assert stats["spilled"] > 0 and stats["replayed"] > 0 and stats["db_errors"] > 0, stats
    rows = wh.sql("SELECT count(*) AS n, count(DISTINCT value) AS d, min(value) AS lo, "
                  "max(value) AS hi FROM points p JOIN series s USING (series_id) "
                  "WHERE s.metric = 'seq'").iloc[0]
    assert (int(rows["n"]), int(rows["d"]), rows["lo"], rows["hi"]) == (sent, sent, 0, sent - 1), stats
    assert wh.runs(recipe="stream")["status"].tolist() == ["succeeded"]
    assert not list(spill_dir.glob("*.spill*")) or all(p.stat().st_size == 0
                                                       for p in spill_dir.glob("*.spill*"))
