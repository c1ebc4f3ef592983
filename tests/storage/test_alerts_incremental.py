"""Incremental evaluation on the change feed and the evaluator lease, on both engines: a
write is judged on what it touched (the other instances keep their state until the rule's
scheduled evaluation), a failed run is judged from the change itself, an older outcome
never overrides a newer one, and two evaluators of one database notify once."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import pandas as pd
import pytest

from tests.storage.test_alerts import (
    CPU_RULE,
    T0,
    FakeClock,
    Memory,
    deliver,
    manager,
    run_row,
    write_cpu,
)
from warehouse.alerts import AlertManager
from warehouse.alerts.background import merge_points
from warehouse.alerts.evaluator import system_clock
from warehouse.changes import Change


def firing(am, rule=None):
    return sorted(tuple(sorted(i.labels.items())) for i in am.instances.values()
                  if i.state == "firing" and (rule is None or i.rule_name == rule))


@pytest.mark.parametrize("heard", ["in process", "by NOTIFY, ids left out"])
def test_a_write_is_judged_on_its_series_and_time_on_the_interval(wh, heard):
    clock, channel = FakeClock(), Memory()
    write_cpu(wh, T0, a=95.0, b=96.0)
    am = manager(wh, clock, channel, group_wait=timedelta(0))
    am.add_rule(CPU_RULE | {"for": None, "window": "5m", "interval": "10m"})
    am.evaluate_all(clock.advance(seconds=1))
    assert [dict(f)["host"] for f in firing(am)] == ["a", "b"]
    clock.advance(minutes=6)  # b's last point has left the window; only a is written
    with wh.changes.subscribe() as sub:
        write_cpu(wh, clock.now, a=1.0)
        changes = sub.drain()
    if heard != "in process":  # as a big write's NOTIFY payload arrives: no series ids
        changes = [Change.from_json(c.to_json(limit=200)) for c in changes]
        assert changes[0].truncated and changes[0].series_ids == ()
    transitions = am.on_changes(changes)
    # a was judged (resolved); b was not touched by the write and keeps its state ...
    assert [(t.instance.labels["host"], t.to_state) for t in transitions] == [("a", "resolved")]
    assert [dict(f)["host"] for f in firing(am)] == ["b"]
    # ... until the scheduled evaluation sees the window slide past it
    clock.advance(minutes=10)
    assert [(t.instance.labels["host"], t.to_state) for t in am.evaluate_due()] == [
        ("b", "resolved")]


def test_incremental_evaluation_agrees_with_a_whole_one(wh):
    clock = FakeClock()
    am = AlertManager(wh, clock=clock)
    am.add_rule(CPU_RULE | {"for": None, "name": "cpu_any"}, check=False)
    am.add_rule(CPU_RULE | {"for": None, "match": {"host": "b"}}, check=False)
    am.add_rule(CPU_RULE | {"for": None, "name": "mem_low", "metric": "mem", "op": "<",
                            "threshold": 10}, check=False)
    values = [dict(a=95.0, b=5.0, c=99.0), dict(b=97.0, c=1.0), dict(a=2.0), dict(c=91.0)]
    for step, hosts in enumerate(values):
        clock.advance(seconds=10)
        with wh.changes.subscribe() as sub:
            write_cpu(wh, clock.now, **hosts)
            wh.write_points(pd.DataFrame({"metric": "mem", "labels": [{"host": "a"}],
                                          "ts": [pd.Timestamp(clock.now)],
                                          "value": [float(step * 5)]}))
            changes = sub.drain()
        am.on_changes(changes, clock.advance(seconds=1))
    whole = AlertManager(wh, clock=clock)
    whole.instances = {}  # judge everything afresh from the data
    whole.evaluate_all()
    assert firing(am) == firing(whole)
    assert [dict(f)["host"] for f in firing(am, "cpu_any")] == ["b", "c"]


def test_a_failed_run_is_judged_from_the_change_itself(wh):
    clock, channel = FakeClock(), Memory()
    am = manager(wh, clock, channel, group_wait=timedelta(0))
    am.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl"})
    # No such run is stored: only the change can say it failed (no query was needed).
    run_id = str(uuid.uuid4())
    change = Change("runs", rows=1, run_ids=(run_id,), statuses=("failed",), recipes=("etl",),
                    start=T0 - pd.Timedelta("1m"), end=T0 - pd.Timedelta("1m"))
    transitions = am.on_changes([change], clock.advance(seconds=1))
    assert [(t.instance.labels["run_id"], t.to_state) for t in transitions] == [
        (run_id, "firing")]
    deliver(am)
    assert [a["labels"]["run_id"] for m in channel.messages for a in m["alerts"]] == [run_id]


def test_a_mixed_write_of_runs_is_looked_up_by_id(wh):
    clock, channel = FakeClock(), Memory()
    am = manager(wh, clock, channel, group_wait=timedelta(0))
    am.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl"})
    failed = run_row("etl", "failed", T0 - pd.Timedelta("2m"), 30)
    rows = [failed, run_row("etl", "succeeded", T0 - pd.Timedelta("2m"), 30),
            run_row("other", "failed", T0 - pd.Timedelta("2m"), 30)]
    with wh.changes.subscribe() as sub:
        wh.write_runs(rows)
        changes = sub.drain()
    assert set(changes[0].statuses) == {"failed", "succeeded"}  # which is which: not said
    transitions = am.on_changes(changes, clock.advance(seconds=1))
    assert [t.instance.labels for t in transitions] == [
        {"recipe": "etl", "run_id": failed["run_id"], "alertname": "etl_failed"}]


def test_a_run_that_started_before_a_narrow_window_is_looked_up(wh):
    clock = FakeClock()
    am = AlertManager(wh, clock=clock)
    am.add_rule({"name": "failed_15m", "kind": "run_failed", "window": "15m"})
    am.add_rule({"name": "failed_1m", "kind": "run_failed", "window": "1m"})
    late = run_row("etl", "failed", T0 - pd.Timedelta("5m"), 270)  # finished 30 s ago
    early = run_row("etl", "failed", T0 - pd.Timedelta("5m"), 180)  # finished 2 min ago
    fired = []
    for row in (late, early):  # one write each: one status, one recipe
        with wh.changes.subscribe() as sub:
            wh.write_runs([row])
            changes = sub.drain()
        # started before the 1m window: only the run's finish says whether it is in it
        fired += [(t.instance.rule_name, t.instance.labels["run_id"])
                  for t in am.on_changes(changes, clock())]
    assert sorted(fired) == sorted([("failed_15m", late["run_id"]), ("failed_1m", late["run_id"]),
                                    ("failed_15m", early["run_id"])])


def test_a_lookup_that_fails_leaves_the_rule_to_the_whole_evaluation(wh):
    clock = FakeClock()
    am = AlertManager(wh, clock=clock)
    am.add_rule({"name": "failed", "kind": "run_failed"})
    stored = run_row("etl", "failed", T0 - pd.Timedelta("2m"), 30)
    wh.write_runs([stored])
    # ambiguous (two statuses), so looked up by id, and an id the database refuses to cast
    odd = Change("runs", rows=2, run_ids=("not-a-uuid",), statuses=("failed", "succeeded"),
                 recipes=("etl",), start=T0 - pd.Timedelta("2m"), end=T0 - pd.Timedelta("2m"))
    transitions = am.on_changes([odd], clock())
    assert [t.instance.labels["run_id"] for t in transitions] == [stored["run_id"]]
    assert am.errors == {}


def test_an_older_outcome_never_overrides_a_newer_one(wh):
    clock, channel = FakeClock(), Memory()
    am = manager(wh, clock, channel)
    am.add_rule({"name": "failed", "kind": "run_failed", "window": "1m"})
    row = run_row("etl", "failed", T0, 30)  # finishes at T0 + 30 s
    with wh.changes.subscribe() as sub:
        wh.write_runs([row])
        changes = sub.drain()
    am.on_changes(changes, T0 + pd.Timedelta("40s"))  # the change lane: fires at 00:40
    # A whole round whose time was taken before the write (its data read "at 00:10" has no
    # such run) is applied after it: it must not resolve what a newer evaluation saw.
    assert am.evaluate_all(now=(T0 + pd.Timedelta("10s")).to_pydatetime()) == []
    assert [dict(f)["run_id"] for f in firing(am)] == [row["run_id"]]


def test_two_evaluators_of_one_database_notify_once(wh):
    channel = Memory()
    first, second = (manager(wh, system_clock, channel, group_wait=timedelta(0),
                             group_interval=timedelta(0)) for _ in range(2))
    first.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl",
                    "interval": "1h"})
    second.reload()
    first.start(tick=0.05)
    second.start(tick=0.05)
    try:
        assert first.lease.held and not second.lease.held  # the second is a standby
        now = pd.Timestamp.now(tz="UTC")
        wh.write_runs([run_row("etl", "failed", now - pd.Timedelta("2s"), 1)])
        wait_for(lambda: len(channel.messages) == 1)
        assert second.state().empty  # it judged nothing: no second transition, no message
        run = wh.run_job("alerts")  # a scheduler's job: the running evaluator does the work
        assert run.rows == 0 and "lease" in " ".join(run.notes)
        first.stop()  # the holder goes away: the standby takes over, with its state
        wait_for(lambda: second.lease.held)
        wh.write_runs([run_row("etl", "failed", now - pd.Timedelta("1s"), 1)])
        wait_for(lambda: len(channel.messages) == 2)
        deliver(second)
        assert len({a["labels"]["run_id"] for m in channel.messages for a in m["alerts"]}) == 2
    finally:
        first.stop()
        second.stop()


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_point_changes_waiting_for_a_round_are_merged():
    a = Change("points", rows=2, series_ids=(1, 2), metrics=("cpu",), start=T0, end=T0)
    b = Change("points", rows=1, series_ids=(2, 3), metrics=("mem",),
               start=T0 - pd.Timedelta("1h"), end=T0 + pd.Timedelta("1s"))
    runs = [Change("runs", rows=1, run_ids=(str(uuid.uuid4()),)) for _ in range(3)]
    merged = merge_points([a, runs[0], b, runs[1], runs[2]])
    assert [c.kind for c in merged] == ["runs", "points"]
    assert merged[0] is runs[2]  # of other kinds only the last: SQL rules need just "some"
    points = merged[1]
    assert (points.rows, points.series_ids, points.metrics) == (3, (1, 2, 3), ("cpu", "mem"))
    assert (points.start, points.end) == (b.start, b.end)
    truncated = merge_points([a, Change("points", rows=5, metrics=("cpu",), truncated=True)])
    assert truncated[0].truncated and truncated[0].series_ids == ()
