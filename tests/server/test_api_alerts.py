"""Alerts over HTTP (/api/v1/alerts), on DuckDB and PostgreSQL: rules, tests, instance state,
silences and history; the permission matrix by role (a viewer reads, an editor writes rules
and silences, an admin may also set a silence in someone else's name); problem+json naming
the field; the same calls through the remote client and the CLI."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from click.testing import CliRunner

from tests.server.conftest import ThreadServer, clients_by_user
from warehouse.alerts import AlertManager, RuleError
from warehouse.client import RemoteWarehouse
from warehouse.client.remote_objects import ALERTS_SERVER_ONLY, RemoteAlerts
from warehouse.errors import UnknownNameError
from warehouse.server.app import create_app
from warehouse.server.auth import route_scopes

API = "/api/v1"
PASSWORD = "correct horse battery"
RULE = {"name": "cpu_high", "kind": "threshold", "metric": "cpu", "op": ">", "threshold": 90,
        "window": "5m", "annotations": {"summary": "cpu {value} on {labels.host}"}}
SILENCE = {"matchers": ["host=a"], "duration": "1h", "comment": "maintenance"}


def write_cpu(wh) -> None:
    now = pd.Timestamp.now(tz="UTC").floor("s")
    wh.write_points(pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}, {"host": "b"}],
                                  "ts": [now - pd.Timedelta("30s")] * 2, "value": [95.0, 5.0]}))


def assert_problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    if kind:
        assert body["type"].endswith("/" + kind), body
    return body


def test_rules_state_silences_and_history(client, wh):
    write_cpu(wh)
    stored = client.post(f"{API}/alerts/rules", json=RULE)
    assert stored.status_code == 201 and stored.json()["window"] == "5m"
    assert [r["name"] for r in client.get(f"{API}/alerts/rules").json()] == ["cpu_high"]
    assert client.get(f"{API}/alerts/rules/cpu_high").json()["threshold"] == 90
    tested = client.get(f"{API}/alerts/rules/cpu_high/test").json()
    assert tested["no_data"] is False
    assert [(r["labels"]["host"], r["value"]) for r in tested["rows"]] == [("a", 95.0)]
    draft = client.post(f"{API}/alerts/test", json={**RULE, "name": "draft", "threshold": 1})
    assert sorted(r["labels"]["host"] for r in draft.json()["rows"]) == ["a", "b"]
    assert client.get(f"{API}/alerts/instances").json() == []  # testing changes nothing
    assert wh.sql("SELECT count(*) AS n FROM alert_events")["n"][0] == 0

    wh.alerts.evaluate("cpu_high", notify=False)  # what the server's evaluator does
    instances = client.get(f"{API}/alerts/instances").json()
    assert [(i["rule"], i["state"], i["labels"]["host"]) for i in instances] == [
        ("cpu_high", "firing", "a")]
    history = client.get(f"{API}/alerts/history", params={"rule": "cpu_high"}).json()
    assert [(h["from_state"], h["to_state"]) for h in history] == [("inactive", "firing")]
    assert client.get(f"{API}/alerts/history", params={"since": "2100-01-01T00:00:00Z"}).json() == []
    assert client.get(f"{API}/alerts/notifications").json() == []

    silence = client.post(f"{API}/alerts/silences", json=SILENCE)
    assert silence.status_code == 201, silence.text
    body = silence.json()
    assert body["matchers"] == [["host", "=", "a"]] and body["author"] == "anonymous"
    assert (pd.Timestamp(body["ends_at"]) - pd.Timestamp(body["starts_at"])) == pd.Timedelta("1h")
    assert [s["silence_id"] for s in client.get(f"{API}/alerts/silences").json()] == [
        body["silence_id"]]
    assert client.delete(f"{API}/alerts/silences/{body['silence_id']}").status_code == 200
    assert_problem(client.delete(f"{API}/alerts/silences/{body['silence_id']}"), 404)
    assert client.get(f"{API}/alerts/silences").json() == []

    assert client.delete(f"{API}/alerts/rules/cpu_high").json() == {"removed": "cpu_high"}
    assert_problem(client.get(f"{API}/alerts/rules/cpu_high"), 404, "unknown-name")
    assert_problem(client.delete(f"{API}/alerts/rules/cpu_high"), 404, "unknown-name")
    assert client.get(f"{API}/alerts/instances").json() == []


def test_bad_input_is_problem_json_naming_the_field(client, wh):
    write_cpu(wh)
    cases = [({**RULE, "window": "xx"}, "window"), ({**RULE, "kind": "nope"}, "kind"),
             ({**RULE, "op": "~"}, "op"), ({**RULE, "metric": "nosuch"}, "metric"),
             ({**RULE, "annotations": {"summary": "{secret}"}}, "annotations.summary"),
             ({**RULE, "colour": "red"}, "colour")]
    for rule, field in cases:
        body = assert_problem(client.post(f"{API}/alerts/rules", json=rule), 422, "alert-rule")
        assert body["errors"][0]["field"] == field and body["rule"] == "cpu_high", body
    assert client.get(f"{API}/alerts/rules").json() == []  # nothing refused was stored
    unchecked = client.post(f"{API}/alerts/rules", params={"check": "false"},
                            json={**RULE, "metric": "nosuch"})
    assert unchecked.status_code == 201
    checked = client.post(f"{API}/alerts/rules/check", json={**RULE, "name": "only_checked"})
    assert checked.status_code == 200 and checked.json()["name"] == "only_checked"
    assert "only_checked" not in [r["name"] for r in client.get(f"{API}/alerts/rules").json()]
    body = assert_problem(client.post(f"{API}/alerts/rules/check",
                                      json={**RULE, "metric": "nosuch"}), 422, "alert-rule")
    assert body["errors"][0]["field"] == "metric"
    assert_problem(client.post(f"{API}/alerts/rules", json=[RULE]), 422, "request-validation")
    assert_problem(client.get(f"{API}/alerts/rules/nosuch/test"), 404, "unknown-name")
    assert_problem(client.get(f"{API}/alerts/history", params={"since": "yesterday-ish"}), 400)
    assert_problem(client.get(f"{API}/alerts/history", params={"limit": 0}), 422,
                   "request-validation")

    no_end = assert_problem(client.post(f"{API}/alerts/silences", json={
        "matchers": ["host=a"], "comment": "c"}), 422)
    assert no_end["errors"][0]["field"] == "ends_at"
    assert "matcher" in assert_problem(client.post(f"{API}/alerts/silences", json={
        **SILENCE, "matchers": ["host"]}), 400, "bad-request")["detail"]
    short = assert_problem(client.post(f"{API}/alerts/silences", json={
        **SILENCE, "matchers": [["host", "="]]}), 422)
    assert short["errors"][0]["field"] == "matchers.0"
    backwards = client.post(f"{API}/alerts/silences", json={
        "matchers": ["host=a"], "comment": "c", "starts_at": "now", "ends_at": "now-1h"})
    assert "ends before it starts" in assert_problem(backwards, 400)["detail"]
    assert_problem(client.post(f"{API}/alerts/silences", json={**SILENCE, "comment": ""}), 422,
                   "request-validation")


@pytest.fixture
def users(wh):
    return clients_by_user(wh, {"vic": "viewer", "ed": "editor", "root": "admin"}, PASSWORD)


def test_permission_matrix(users, wh):
    write_cpu(wh)
    vic, ed, root = users["vic"], users["ed"], users["root"]
    scopes = {(m, p): s for m, p, s in route_scopes(vic.app) if p.startswith(f"{API}/alerts")}
    assert len(scopes) == 14
    assert {p for (m, p), s in scopes.items() if s == "read"} == {
        p for (m, p) in scopes if m == "GET"}
    assert all(s == "write" for (m, _), s in scopes.items() if m != "GET")

    reads = ["/alerts/rules", "/alerts/errors", "/alerts/instances", "/alerts/silences",
             "/alerts/history", "/alerts/notifications"]
    writes = [("POST", "/alerts/rules", RULE), ("POST", "/alerts/rules/check", RULE),
              ("POST", "/alerts/test", RULE), ("POST", "/alerts/silences", SILENCE),
              ("DELETE", "/alerts/rules/cpu_high", None),
              ("DELETE", "/alerts/silences/nosuch", None)]
    for path in reads:
        for client in (vic, ed, root):
            assert client.get(API + path).status_code == 200, path
    for method, path, body in writes:
        assert_problem(vic.request(method, API + path, json=body), 403)
    assert ed.post(f"{API}/alerts/rules", json=RULE).status_code == 201
    assert vic.get(f"{API}/alerts/rules/cpu_high/test").status_code == 200
    assert ed.post(f"{API}/alerts/rules/check", json=RULE).status_code == 200
    assert ed.post(f"{API}/alerts/test", json=RULE).status_code == 200
    mine = ed.post(f"{API}/alerts/silences", json=SILENCE)
    assert mine.status_code == 201 and mine.json()["author"] == "ed"
    assert_problem(ed.post(f"{API}/alerts/silences", json={**SILENCE, "author": "root"}), 403)
    theirs = root.post(f"{API}/alerts/silences", json={**SILENCE, "author": "night-shift"})
    assert theirs.status_code == 201 and theirs.json()["author"] == "night-shift"
    assert ed.delete(f"{API}/alerts/silences/{theirs.json()['silence_id']}").status_code == 200
    assert ed.delete(f"{API}/alerts/rules/cpu_high").status_code == 200
    assert root.post(f"{API}/alerts/rules", json=RULE).status_code == 201
    assert root.delete(f"{API}/alerts/rules/cpu_high").status_code == 200


def test_remote_client_and_cli_through_a_served_warehouse(wh, tmp_path, monkeypatch):
    write_cpu(wh)
    with ThreadServer(create_app(wh)) as server, RemoteWarehouse(server.url) as remote:
        alerts = remote.alerts
        assert isinstance(alerts, RemoteAlerts)
        assert alerts.add_rule(RULE).name == "cpu_high"
        assert list(alerts.rules) == ["cpu_high"]
        assert alerts.rules["cpu_high"].to_dict() == wh.alerts.rules["cpu_high"].to_dict()
        with pytest.raises(RuleError) as refused:
            alerts.add_rule({**RULE, "window": "xx"})
        assert refused.value.field == "window" and refused.value.rule == "cpu_high"
        assert alerts.check(RULE).name == "cpu_high"
        tested = alerts.test("cpu_high")
        assert tested["value"].tolist() == [95.0] and tested.attrs["no_data"] is False
        assert alerts.test(alerts.rules["cpu_high"])["value"].tolist() == [95.0]

        wh.alerts.evaluate("cpu_high", notify=False)
        state = alerts.state()
        local = wh.alerts.state()
        assert state[["rule", "state", "fingerprint"]].equals(local[["rule", "state",
                                                                     "fingerprint"]])
        assert state["labels"].tolist() == local["labels"].tolist()
        assert alerts.history()["to_state"].tolist() == ["firing"]
        assert alerts.notifications().empty and alerts.errors == {}

        ends = pd.Timestamp.now(tz="UTC").to_pydatetime() + pd.Timedelta("1h")
        silence = alerts.add_silence(["host=a"], ends_at=ends, author="anonymous", comment="c")
        assert silence.matchers == (("host", "=", "a"),)
        assert [s.silence_id for s in alerts.silences()] == [silence.silence_id]
        assert [s.silence_id for s in wh.alerts.silences()] == [silence.silence_id]
        assert alerts.expire_silence(silence.silence_id) is True
        assert alerts.expire_silence(silence.silence_id) is False
        with pytest.raises(AttributeError, match="runs where alerts are evaluated"):
            alerts.start()
        alerts.remove_rule("cpu_high")
        with pytest.raises(UnknownNameError):
            alerts.remove_rule("cpu_high")

        # The CLI, unchanged, against WAREHOUSE_URL=http://...
        monkeypatch.setenv("WAREHOUSE_URL", server.url)
        from warehouse.cli import main

        def cli(*args, ok=True):
            result = CliRunner().invoke(main, list(args), catch_exceptions=False)
            assert (result.exit_code == 0) == ok, result.output
            return result.output

        rules = tmp_path / "rules.json"
        rules.write_text(json.dumps([RULE]))
        assert "stored rule cpu_high" in cli("alerts", "add", str(rules))
        listed = json.loads(cli("alerts", "list", "--format", "json"))
        assert [(r["name"], r["kind"]) for r in listed] == [("cpu_high", "threshold")]
        tested = json.loads(cli("alerts", "test", "cpu_high", "--format", "json"))
        assert [t["value"] for t in tested] == [95.0]
        added = json.loads(cli("alerts", "silence", "add", "--match", "host=a", "--for", "2h",
                               "--author", "anonymous", "--comment", "deploy", "--format",
                               "json"))
        silenced = json.loads(cli("alerts", "silence", "list", "--format", "json"))
        assert [s["silence_id"] for s in silenced] == [added["silence_id"]]
        cli("alerts", "silence", "expire", added["silence_id"])
        assert json.loads(cli("alerts", "history", "--format", "json"))[0]["to_state"] == "firing"
        cli("alerts", "remove", "cpu_high")
        assert "cpu_high" not in remote.alerts.rules
        assert "no alert rule named 'cpu_high'" in cli("alerts", "remove", "cpu_high", ok=False)


def test_remote_alerts_has_every_method_of_the_alert_manager():
    public = {n for n in dir(AlertManager) if not n.startswith("_")}
    remote = {n for n in dir(RemoteAlerts) if not n.startswith("_")}
    assert public - ALERTS_SERVER_ONLY - remote == set()
