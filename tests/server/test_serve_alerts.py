"""A served warehouse evaluates alert rules on the change feed: a failed run written through
the HTTP API reaches the channel named by WAREHOUSE_ALERTS_CONFIG, on both engines."""

from __future__ import annotations

import json
import time
import uuid
import warnings

import pandas as pd

from warehouse.server.app import create_app

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def test_a_failed_run_written_over_http_fires_its_rule(wh, tmp_path, monkeypatch):
    sent = tmp_path / "alerts.jsonl"
    config = tmp_path / "alerts.json"
    config.write_text(json.dumps({
        "receivers": [{"name": "log", "channels": [{"type": "file", "path": str(sent)}]}],
        "routes": [{"receiver": "log", "group_wait": "0s"}]}))
    monkeypatch.setenv("WAREHOUSE_ALERTS_CONFIG", str(config))
    wh.alerts.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl",
                        "interval": "1h"})
    run_id = str(uuid.uuid4())
    now = pd.Timestamp.now(tz="UTC")
    with TestClient(create_app(wh, listen=False, run_alerts=True),
                    base_url="http://127.0.0.1") as client:  # open mode: loopback, no users
        assert wh.alerts.running and wh.alerts.lease.held  # started by the app's lifespan
        response = client.post("/api/v1/runs", json=[{
            "run_id": run_id, "recipe": "etl", "status": "failed",
            "started_at": (now - pd.Timedelta("1s")).isoformat(), "finished_at": now.isoformat()}])
        assert response.status_code < 300, response.text
        deadline = time.monotonic() + 30
        while not (sent.exists() and run_id in sent.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
    assert not wh.alerts.running and not wh.alerts.lease.held  # stopped at shutdown
    lines = [json.loads(line) for line in sent.read_text().splitlines()]
    assert any(run_id in json.dumps(line) for line in lines), lines
