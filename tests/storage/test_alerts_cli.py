"""``warehouse alerts ...`` through the CLI runner, as users call it, on both engines."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from warehouse import Warehouse
from warehouse.cli import main


def run(url, *args, ok=True):
    result = CliRunner().invoke(main, [*args, "--url", url], catch_exceptions=False)
    assert (result.exit_code == 0) == ok, result.output + (result.stderr or "")
    return result


def test_alerts_cli_round_trip(database_url, tmp_path):
    with Warehouse(database_url) as wh:
        now = pd.Timestamp.now(tz="UTC").floor("s")
        wh.write_points(pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}, {"host": "b"}],
                                      "ts": [now - pd.Timedelta("30s")] * 2,
                                      "value": [95.0, 5.0]}))
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "- name: cpu_high\n  kind: threshold\n  metric: cpu\n  op: '>'\n  threshold: 90\n"
        "  window: 5m\n  annotations: {summary: 'cpu {value} on {labels.host}'}\n")
    assert "stored rule cpu_high" in run(database_url, "alerts", "add", str(rules)).output
    listed = json.loads(run(database_url, "alerts", "list", "--format", "json").output)
    assert [(r["name"], r["kind"], r["firing"]) for r in listed] == [("cpu_high", "threshold", 0)]

    tested = json.loads(run(database_url, "alerts", "test", "cpu_high", "--format",
                            "json").output)
    assert [(json.loads(t["labels"])["host"], t["value"]) for t in tested] == [("a", 95.0)]
    with Warehouse(database_url) as wh:  # test changed nothing and sent nothing
        assert wh.sql("SELECT count(*) AS n FROM alert_events")["n"][0] == 0

    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: x, kind: threshold, metric: nope, op: '>', threshold: 1}\n")
    result = run(database_url, "alerts", "add", str(bad), ok=False)
    assert "field 'metric'" in result.output + (result.stderr or "")

    silence_id = run(database_url, "alerts", "silence", "add", "--match", "host=a", "--for",
                     "2h", "--author", "ann", "--comment", "disk swap").output.strip()
    silences = json.loads(run(database_url, "alerts", "silence", "list", "--format",
                              "json").output)
    assert [(s["silence_id"], s["matchers"]) for s in silences] == [(silence_id, "host=a")]
    run(database_url, "alerts", "silence", "expire", silence_id)
    assert json.loads(run(database_url, "alerts", "silence", "list", "--format",
                          "json").output) == []
    result = run(database_url, "alerts", "silence", "add", "--match", "host=~(", "--for", "1h",
                 "--author", "a", "--comment", "c", ok=False)
    assert result.exit_code == 2

    run(database_url, "jobs", "run", "alerts")  # the scheduled evaluation
    history = json.loads(run(database_url, "alerts", "history", "--format", "json").output)
    assert [(h["rule_name"], h["to_state"]) for h in history] == [("cpu_high", "firing")]
    run(database_url, "alerts", "remove", "cpu_high")
    assert json.loads(run(database_url, "alerts", "list", "--format", "json").output) == []
    run(database_url, "alerts", "remove", "cpu_high", ok=False)
