"""Alert state on both engines with a fake clock: every transition, NoData and errors,
grouping timers, repeat, silences, inhibition, restarts and the change feed."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pandas as pd
import pytest

from warehouse.alerts import AlertManager, NotifyConfig, RuleError
from warehouse.alerts.channels import Channel
from warehouse.alerts.notify import Dispatcher, InhibitRule, Notifier, Route, matchers
from warehouse.alerts.store import Silence, add_silence, expire_silence, history, notifications

T0 = pd.Timestamp("2026-11-25T00:00:00Z")


class FakeClock:
    def __init__(self, start=T0):
        self.now = start.to_pydatetime()

    def __call__(self):
        return self.now

    def advance(self, **delta):
        self.now += timedelta(**delta)
        return self.now


class Memory(Channel):
    kind = "memory"

    def __init__(self):
        super().__init__("memory")
        self.messages = []

    def send(self, message):
        self.messages.append(message)

    def alerts(self):
        return [(a["status"], a["labels"].get("host") or a["labels"].get("recipe"))
                for m in self.messages for a in m["alerts"]]


def manager(wh, clock, channel, *, inhibit=(), **route):
    timers = {"group_wait": timedelta(seconds=30), "group_interval": timedelta(minutes=5),
              "repeat_interval": timedelta(hours=1)} | route
    config = NotifyConfig([Route("ops", group_by=("alertname",), **timers)],
                          {"ops": [channel]}, list(inhibit))
    notifier = Notifier(wh, config, dispatcher=Dispatcher(wh, backoff=0.01, clock=clock))
    return AlertManager(wh, notify=notifier, clock=clock)


def deliver(am):
    assert am.notifier.dispatcher.wait(10)


def write_cpu(wh, ts, **values):
    wh.write_points(pd.DataFrame({"metric": "cpu",
                                  "labels": [{"host": h} for h in values],
                                  "ts": [pd.Timestamp(ts)] * len(values),
                                  "value": list(values.values())}))


CPU_RULE = {"name": "cpu_high", "kind": "threshold", "metric": "cpu", "op": ">",
            "threshold": 90, "window": "10m", "for": "2m",
            "annotations": {"summary": "cpu {value} on {labels.host}"}}


def test_threshold_pending_firing_resolved_notified_once(wh):
    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0, b=10.0)
    am = manager(wh, clock, channel)
    am.add_rule(CPU_RULE)
    clock.advance(seconds=1)
    assert [(t.from_state, t.to_state) for t in am.evaluate("cpu_high")] == [("inactive", "pending")]
    clock.advance(minutes=2)
    assert [(t.from_state, t.to_state) for t in am.evaluate("cpu_high")] == [("pending", "firing")]
    deliver(am)
    assert channel.messages == []  # group_wait has not passed
    clock.advance(seconds=30)
    am.evaluate("cpu_high")
    deliver(am)
    assert channel.alerts() == [("firing", "a")]
    assert channel.messages[0]["alerts"][0]["annotations"]["summary"] == "cpu 95 on a"
    for _ in range(5):  # evaluations and replays within repeat_interval send nothing
        clock.advance(minutes=5)
        write_cpu(wh, clock.now, a=96.0)
        am.evaluate("cpu_high")
    deliver(am)
    assert len(channel.messages) == 1
    clock.advance(minutes=40)  # 1 h after the first notification: repeated
    write_cpu(wh, clock.now, a=97.0)
    am.evaluate("cpu_high")
    deliver(am)
    assert len(channel.messages) == 2
    write_cpu(wh, clock.advance(minutes=1), a=50.0)
    assert [t.to_state for t in am.evaluate("cpu_high")] == ["resolved"]
    clock.advance(minutes=5)  # group_interval after the last send
    am.notify()
    deliver(am)
    assert channel.alerts()[-1] == ("resolved", "a")
    events = wh.sql("SELECT from_state, to_state, value FROM alert_events ORDER BY changed_at")
    assert list(zip(events["from_state"], events["to_state"])) == [
        ("inactive", "pending"), ("pending", "firing"), ("firing", "resolved")]
    assert events["value"].tolist()[:2] == [95.0, 95.0]
    sent = notifications(wh)
    assert (sent["status"] == "sent").all() and len(sent) == 3


def test_keep_firing_for_and_flapping(wh):
    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0)
    am = manager(wh, clock, channel)
    am.add_rule(CPU_RULE | {"for": None, "keep_firing_for": "10m", "window": "1m"})
    clock.advance(seconds=1)
    assert [t.to_state for t in am.evaluate("cpu_high")] == ["firing"]
    clock.advance(minutes=5)  # no point in the window any more: NoData (ok) - keeps firing
    write_cpu(wh, clock.now, a=10.0)
    assert am.evaluate("cpu_high") == []
    assert am.state()["state"].tolist() == ["firing"]
    clock.advance(minutes=6)
    write_cpu(wh, clock.now, a=10.0)
    assert [t.to_state for t in am.evaluate("cpu_high")] == ["resolved"]


def test_pending_that_clears_is_forgotten(wh):
    clock = FakeClock()
    write_cpu(wh, T0, a=95.0)
    am = manager(wh, clock, Memory())
    am.add_rule(CPU_RULE)
    am.evaluate("cpu_high", clock.advance(seconds=1))
    write_cpu(wh, clock.advance(minutes=1), a=20.0)
    transitions = am.evaluate("cpu_high", clock.advance(seconds=1))
    assert [(t.from_state, t.to_state) for t in transitions] == [("pending", "inactive")]
    assert am.state().empty
    assert wh.sql("SELECT count(*) AS n FROM alert_instances")["n"][0] == 0


@pytest.mark.parametrize("policy", ["alerting", "ok", "keep_last"])
def test_no_data_states(wh, policy):
    clock = FakeClock()
    write_cpu(wh, T0, a=95.0)
    am = manager(wh, clock, Memory())
    am.add_rule(CPU_RULE | {"for": None, "window": "5m", "no_data_state": policy})
    am.evaluate("cpu_high", clock.advance(seconds=1))
    clock.advance(minutes=10)  # the window is empty now
    transitions = am.evaluate("cpu_high")
    states = sorted(zip(am.state()["state"], am.state()["labels"].map(
        lambda lab: lab.get("alertstate", lab.get("host")))))
    if policy == "alerting":
        assert states == [("firing", "a"), ("firing", "nodata")]
        assert transitions[0].reason == "no data"
        write_cpu(wh, clock.advance(minutes=1), a=10.0)  # data is back: NoData resolves
        am.evaluate("cpu_high")
        assert ("resolved", "nodata") in set(zip(am.state()["state"], am.state()["labels"].map(
            lambda lab: lab.get("alertstate", lab.get("host")))))
    elif policy == "ok":
        assert states == [("resolved", "a")]
    else:
        assert states == [("firing", "a")] and transitions == []


def test_evaluation_error_states(wh):
    clock = FakeClock()
    am = manager(wh, clock, Memory())
    rule = {"name": "broken", "kind": "sql", "query": "SELECT value FROM no_such_table",
            "error_state": "alerting"}
    with pytest.raises(RuleError, match="'query'"):
        am.add_rule(rule)  # refused on save...
    am.add_rule(rule, check=False)  # ...but a rule may break later (a dropped view)
    transitions = am.evaluate("broken", clock.advance(seconds=1))
    assert [t.to_state for t in transitions] == ["firing"]
    assert am.state()["labels"][0]["alertstate"] == "error"
    assert "no_such_table" in transitions[0].reason and "broken" in am.errors
    am.add_rule(rule | {"error_state": "keep_last"}, check=False)
    assert am.evaluate("broken", clock.advance(minutes=1)) == []
    assert am.state()["state"].tolist() == ["firing"]


def test_restart_in_pending_and_firing_resumes_without_duplicates(wh, database_url):
    from warehouse import Warehouse

    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0, b=99.0)
    am = manager(wh, clock, channel)
    am.add_rule(CPU_RULE)
    am.evaluate("cpu_high", clock.advance(seconds=1))  # both pending
    other = Warehouse(database_url)  # "restart": a new process state from the database
    try:
        am2 = manager(other, clock, channel)
        assert sorted(am2.state()["state"]) == ["pending", "pending"]
        clock.advance(minutes=2)  # for has passed since the first evaluation, not the restart
        assert [t.to_state for t in am2.evaluate("cpu_high")] == ["firing", "firing"]
        clock.advance(seconds=30)
        am2.notify()
        deliver(am2)
        assert len(channel.messages) == 1 and len(channel.messages[0]["alerts"]) == 2
        am3 = manager(other, clock, channel)  # restart while firing and notified
        for _ in range(3):
            clock.advance(minutes=10)
            write_cpu(other, clock.now, a=95.0, b=99.0)
            am3.evaluate("cpu_high")
        deliver(am3)
        assert len(channel.messages) == 1
        assert list(history(other)["to_state"]) == ["firing", "firing", "pending", "pending"]
    finally:
        other.close()


def test_grouping_timers(wh):
    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0)
    am = manager(wh, clock, channel)
    am.add_rule(CPU_RULE | {"for": None})
    am.evaluate("cpu_high", clock.advance(seconds=1))
    write_cpu(wh, clock.advance(seconds=10), a=95.0, b=95.0)  # joins during group_wait
    am.evaluate("cpu_high")
    am.evaluate("cpu_high", clock.advance(seconds=25))
    deliver(am)
    assert sorted(channel.alerts()) == [("firing", "a"), ("firing", "b")]
    assert len(channel.messages) == 1
    write_cpu(wh, clock.advance(minutes=1), a=95.0, b=95.0, c=95.0)  # a change: waits
    am.evaluate("cpu_high")  # for group_interval after the last send
    am.evaluate("cpu_high", clock.advance(minutes=3))
    deliver(am)
    assert len(channel.messages) == 1
    write_cpu(wh, clock.advance(minutes=1, seconds=30), a=95.0, b=95.0, c=95.0)
    am.evaluate("cpu_high")
    deliver(am)
    assert len(channel.messages) == 2 and len(channel.messages[1]["alerts"]) == 3


def test_silence_mutes_until_it_ends(wh):
    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0, b=95.0)
    am = manager(wh, clock, channel, group_wait=timedelta(0))
    am.add_rule(CPU_RULE | {"for": None})
    silence = Silence("s1", (("host", "=", "a"),), clock.now, clock.now + timedelta(hours=1),
                      "ann", "maintenance")
    add_silence(wh, silence, clock.now)
    am.evaluate("cpu_high", clock.advance(seconds=1))
    deliver(am)
    assert channel.alerts() == [("firing", "b")]
    assert expire_silence(wh, "s1", clock.advance(minutes=1))
    assert not expire_silence(wh, "s1", clock.now)
    write_cpu(wh, clock.advance(minutes=5), a=95.0, b=95.0)
    am.evaluate("cpu_high")
    deliver(am)
    assert sorted(channel.alerts()[1:]) == [("firing", "a"), ("firing", "b")]


def run_row(recipe, status, started, seconds, **extra):
    row = {"run_id": str(uuid.uuid4()), "recipe": recipe, "started_at": started,
           "status": status}
    if status != "running":
        row["finished_at"] = started + pd.Timedelta(seconds=seconds)
    return row | extra


def test_run_rules_and_inhibition(wh):
    clock, channel = FakeClock(T0 + pd.Timedelta(days=1)), Memory()
    wh.write_runs([run_row("etl", "succeeded", T0 + pd.Timedelta(hours=h), 60)
                   for h in range(10)])
    inhibit = InhibitRule(matchers(["alertname=etl_down"]), matchers(["severity=step"]),
                          ("recipe",))
    am = manager(wh, clock, channel, inhibit=[inhibit], group_wait=timedelta(0))
    am.add_rule({"name": "etl_down", "kind": "dead_man", "recipe": "etl", "within": "6h"})
    am.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl",
                 "labels": {"severity": "step"},
                 "annotations": {"description": "run {run_id}: {run_url}"}})
    am.add_rule({"name": "etl_slow", "kind": "run_duration", "recipe": "etl",
                 "p95_factor": 2.0, "window": "1h"})
    failed = run_row("etl", "failed", clock.now - pd.Timedelta("5m"), 30)
    slow = run_row("etl", "running", clock.now - pd.Timedelta("10m"), 0)
    wh.write_runs([failed, slow])
    am.evaluate_all()
    deliver(am)
    names = sorted(a["labels"]["alertname"] for m in channel.messages for a in m["alerts"])
    assert names == ["etl_down", "etl_slow"]  # etl_failed inhibited by etl_down
    state = am.state().set_index("rule")
    assert state.loc["etl_failed", "state"] == "firing"  # inhibited is not resolved
    failed_alert = am.instances[state.loc["etl_failed", "fingerprint"]]
    assert failed_alert.annotations["description"] == (
        f"run {failed['run_id']}: /runs/{failed['run_id']}")
    assert state.loc["etl_slow", "value"] == pytest.approx(600, abs=1)
    wh.write_runs([run_row("etl", "succeeded", clock.now - pd.Timedelta("2m"), 60)])
    clock.advance(minutes=1)
    assert {t.instance.rule_name for t in am.evaluate_all()} == {"etl_down"}  # resolved


def test_step_error_rate(wh):
    clock = FakeClock(T0 + pd.Timedelta("2h"))
    runs = [run_row("etl", "succeeded", T0 + pd.Timedelta(minutes=10 * i), 60)
            for i in range(6)]
    wh.write_runs(runs)
    wh.write_steps([{"run_id": r["run_id"], "step_id": "load", "step": "load",
                     "started_at": r["started_at"], "finished_at": r["finished_at"],
                     "status": "failed" if i % 2 else "succeeded"}
                    for i, r in enumerate(runs)])
    am = manager(wh, clock, Memory())
    am.add_rule({"name": "load_errors", "kind": "step_error_rate", "recipe": "etl",
                 "window": "3h", "threshold": 0.4})
    am.evaluate_all()
    row = am.state().iloc[0]
    assert row["labels"]["step"] == "load" and row["value"] == pytest.approx(0.5)


def test_sql_rule_rows_are_instances(wh):
    clock = FakeClock()
    write_cpu(wh, T0, a=95.0, b=10.0)
    am = manager(wh, clock, Memory())
    am.add_rule({"name": "latest", "kind": "sql", "op": ">", "threshold": 50,
                 "query": "SELECT labels->>'host' AS host, value FROM series_latest"})
    am.evaluate_all(clock.advance(seconds=1))
    assert [lab["host"] for lab in am.state()["labels"]] == ["a"]
    with pytest.raises(RuleError, match="'value' column"):
        am.add_rule({"name": "novalue", "kind": "sql", "query": "SELECT 1 AS n"})
    with pytest.raises(RuleError, match="field 'query'"):
        am.add_rule({"name": "writes", "kind": "sql", "query": "DELETE FROM runs"})


def test_rules_validated_against_data(wh):
    am = manager(wh, FakeClock(), Memory())
    with pytest.raises(RuleError, match="unknown metric 'nope'"):
        am.add_rule(CPU_RULE | {"metric": "nope"})
    wh.write_points(pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * 5,
                                  "ts": pd.date_range(T0, periods=5, freq="1h"),
                                  "value": [1.0] * 5}))
    with pytest.raises(RuleError, match="field 'window'.*data interval"):
        am.add_rule(CPU_RULE | {"window": "5m"})
    am.add_rule(CPU_RULE | {"window": "2h"})
    am.remove_rule("cpu_high")
    assert am.rules == {}


def test_change_feed_triggers_evaluation(wh):
    clock, channel = FakeClock(), Memory()
    am = manager(wh, clock, channel, group_wait=timedelta(0))
    write_cpu(wh, T0 - pd.Timedelta("1m"), a=1.0)
    am.add_rule(CPU_RULE | {"for": None})
    am.add_rule({"name": "failed", "kind": "run_failed"})
    with wh.changes.subscribe() as sub:
        write_cpu(wh, T0, a=99.0)
        wh.write_runs([run_row("other", "failed", T0 - pd.Timedelta("1m"), 30)])
        changes = sub.drain()
    transitions = am.on_changes(changes, clock.advance(seconds=1))
    assert sorted(t.instance.rule_name for t in transitions) == ["cpu_high", "failed"]
    assert am.on_changes([c for c in changes if c.kind == "points"]) == []  # replay: nothing
    deliver(am)
    assert len(channel.messages) == 2


def test_threshold_aggregates_over_the_window(wh):
    wh.write_points(pd.DataFrame({"metric": "lat", "labels": [{"svc": "api"}] * 4,
                                  "ts": pd.date_range(T0, periods=4, freq="1min"),
                                  "value": [1.0, 9.0, 3.0, 5.0]}))
    am = manager(wh, FakeClock(T0 + pd.Timedelta("3m")), Memory())
    got = {}
    for agg in ("mean", "max", "min", "sum", "count", "first", "last", "p50"):
        am.add_rule({"name": f"lat_{agg}", "kind": "threshold", "metric": "lat", "op": ">=",
                     "threshold": 0, "window": "10m", "agg": agg})
        got[agg] = am.test(f"lat_{agg}")["value"].tolist()
    assert got == {"mean": [4.5], "max": [9.0], "min": [1.0], "sum": [18.0], "count": [4.0],
                   "first": [1.0], "last": [5.0], "p50": [4.0]}
    am.add_rule({"name": "lat_range", "kind": "threshold", "metric": "lat", "op": "outside",
                 "threshold": [0, 4], "window": "10m", "agg": "last"})
    assert am.test("lat_range")["value"].tolist() == [5.0]


def test_batched_threshold_rules_keep_their_own_series(wh):
    wh.write_points(pd.DataFrame({"metric": ["cpu", "cpu", "mem", "mem"],
                                  "labels": [{"host": "a"}, {"host": "b"}] * 2,
                                  "ts": [T0] * 4, "value": [95.0, 5.0, 5.0, 97.0]}))
    am = manager(wh, FakeClock(T0 + pd.Timedelta("1s")), Memory())
    am.add_rule(CPU_RULE | {"for": None})
    am.add_rule(CPU_RULE | {"for": None, "name": "mem_high", "metric": "mem"})
    am.add_rule(CPU_RULE | {"for": None, "name": "gone_high", "metric": "never_written"},
                check=False)  # stored before any data: NoData, and the others still work
    transitions = am.evaluate_all()  # one query for the three rules
    fired = sorted((t.instance.rule_name, t.instance.labels["host"], t.instance.value)
                   for t in transitions)
    assert fired == [("cpu_high", "a", 95.0), ("mem_high", "b", 97.0)]
    assert am.errors == {}  # a metric with no data is NoData for its rule, not an error


def test_mute_time_window_delays_until_it_ends(wh):
    from warehouse.alerts.notify import MuteTime

    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0)
    am = manager(wh, clock, channel, group_wait=timedelta(0),
                 mute_times=(MuteTime.from_dict({"start": "00:00", "end": "01:00"}),))
    am.add_rule(CPU_RULE | {"for": None})
    am.evaluate("cpu_high", clock.advance(seconds=1))
    deliver(am)
    assert channel.messages == [] and am.state()["state"].tolist() == ["firing"]
    clock.advance(minutes=59, seconds=59)  # 01:00: the window is over
    am.notify()
    deliver(am)
    assert channel.alerts() == [("firing", "a")]


def test_alerts_job_sees_rules_added_elsewhere(wh, database_url):
    from warehouse import Warehouse

    write_cpu(wh, pd.Timestamp.now(tz="UTC") - pd.Timedelta("10s"), a=95.0)
    assert wh.alerts.rules == {}  # the job's manager exists before the rule does
    with Warehouse(database_url) as other:  # e.g. the CLI in another process
        other.alerts.add_rule(CPU_RULE | {"for": None})
    run = wh.run_job("alerts")
    assert (run.status, run.rows) == ("succeeded", 1)
    assert wh.alerts.state()["state"].tolist() == ["firing"]


def test_last_value_fast_path_matches_labels_and_ignores_future_points(wh):
    write_cpu(wh, T0, a=95.0, b=96.0)
    am = manager(wh, FakeClock(T0 + pd.Timedelta("1s")), Memory())
    am.add_rule(CPU_RULE | {"for": None, "match": {"host": "b"}})
    am.add_rule(CPU_RULE | {"for": None, "name": "cpu_any"})
    assert [lab["host"] for lab in am.test("cpu_high")["labels"]] == ["b"]
    assert sorted((t.instance.rule_name, t.instance.labels["host"])
                  for t in am.evaluate_all()) == [
        ("cpu_any", "a"), ("cpu_any", "b"), ("cpu_high", "b")]
    write_cpu(wh, T0 + pd.Timedelta("1h"), a=1.0)  # "newest" point is after now: a replay
    assert sorted(lab["host"] for lab in am.test("cpu_any")["labels"]) == ["a", "b"]
    assert [v for v in am.test("cpu_any")["value"]] == [95.0, 96.0]
