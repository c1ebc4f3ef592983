"""Alert rules, the instance state machine, matchers and signatures — no database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from warehouse.alerts.channels import sign, verify_signature
from warehouse.alerts.notify import Matcher, NotifyConfig, matchers
from warehouse.alerts.rules import RuleError, compare, load_rules, parse_rule, render
from warehouse.alerts.state import FIRING, INACTIVE, PENDING, RESOLVED, Instance, advance, fingerprint

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def threshold(**extra):
    return {"name": "cpu_high", "kind": "threshold", "metric": "cpu", "op": ">",
            "threshold": 90, **extra}


def test_valid_rule_gets_defaults_and_round_trips():
    rule = parse_rule(threshold(**{"for": "5m", "labels": {"severity": "page"}}))
    assert rule.spec["window"] == "5m" and rule.spec["agg"] == "last"
    assert rule.for_us == 300_000_000 and rule.no_data_state == "ok"
    assert parse_rule(json.loads(rule.to_json())) == rule


@pytest.mark.parametrize(("change", "field", "words"), [
    ({"name": "1bad"}, "name", "not a rule name"),
    ({"kind": "magic"}, "kind", "not one of"),
    ({"op": "=>"}, "op", "not one of"),
    ({"threshold": "high"}, "threshold", "finite number"),
    ({"threshold": float("nan")}, "threshold", "finite number"),
    ({"op": "outside", "threshold": 3}, "threshold", "range"),
    ({"op": "outside", "threshold": [5, 1]}, "threshold", "empty"),
    ({"window": "soon"}, "window", "not understood"),
    ({"every": "1h", "window": "5m"}, "window", "shorter than one bucket"),
    ({"agg": "median"}, "agg", "not one of"),
    ({"for": 5}, "for", "duration"),
    ({"no_data_state": "panic"}, "no_data_state", "not one of"),
    ({"labels": {"bad-name": "x"}}, "labels", "not a label name"),
    ({"annotations": {"summary": "{value.__class__}"}}, "annotations.summary", "placeholder"),
    ({"color": "red"}, "color", "unknown field"),
    ({"enabled": "yes"}, "enabled", "true or false"),
])
def test_bad_fields_are_named(change, field, words):
    with pytest.raises(RuleError) as info:
        parse_rule(threshold(**change))
    assert info.value.field == field
    assert words in str(info.value)


def test_kind_specific_requirements():
    with pytest.raises(RuleError, match="'within'"):
        parse_rule({"name": "dm", "kind": "dead_man", "recipe": "etl"})
    with pytest.raises(RuleError, match="exactly one"):
        parse_rule({"name": "slow", "kind": "run_duration", "max_duration": "1h",
                    "p95_factor": 2})
    with pytest.raises(RuleError, match="fraction"):
        parse_rule({"name": "e", "kind": "step_error_rate", "recipe": "etl", "threshold": 5})
    with pytest.raises(RuleError, match="shorter than one step"):
        parse_rule({"name": "f", "kind": "forecast", "metric": "disk", "every": "1h",
                    "horizon": "10m", "threshold": 95})
    assert parse_rule({"name": "q", "kind": "sql", "query": "select 1 as value"}).spec["op"] \
        is None


def test_compare_operators_and_ranges():
    assert compare(">", 2, 1) and not compare(">", 1, 1) and compare(">=", 1, 1)
    assert compare("!=", 1, 2) and compare("==", 2, 2) and compare("<", 0, 1)
    assert compare("outside", 11, [0, 10]) and not compare("outside", 5, [0, 10])
    assert compare("inside", 5, [0, 10])
    assert not compare(">", float("nan"), 0) and not compare(">", None, 0)


def test_render_only_substitutes_known_placeholders():
    text = render("{rule}: {value} on {labels.host} see {run_url} {labels.missing}",
                  rule="r", value=2.5, labels={"host": "a"}, run_id="abc")
    assert text == "r: 2.5 on a see /runs/abc "


def test_rule_files(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - {name: a, kind: run_failed}\n  - {name: b, kind: run_failed,"
                    " recipe: etl}\n")
    assert [r.name for r in load_rules(path)] == ["a", "b"]
    path.write_text("- {name: a, kind: run_failed}\n- {name: a, kind: run_failed}\n")
    with pytest.raises(RuleError, match="defined twice"):
        load_rules(path)
    bad = tmp_path / "rules.json"
    bad.write_text("{nope")
    with pytest.raises(RuleError, match="not valid JSON"):
        load_rules(bad)


def test_fingerprint_is_stable_and_order_free():
    a = fingerprint("r", {"host": "a", "dc": "x"})
    assert a == fingerprint("r", {"dc": "x", "host": "a"})
    assert a != fingerprint("r2", {"host": "a", "dc": "x"})
    assert a != fingerprint("r", {"host": "b", "dc": "x"})


def step(inst, active, minutes, for_=5, keep=0):
    return advance(inst, active, T0 + timedelta(minutes=minutes),
                   for_=timedelta(minutes=for_), keep_firing_for=timedelta(minutes=keep),
                   value=1.0)


def test_state_machine_pending_firing_resolved():
    inst = Instance("f", "r", {})
    inst, left = step(inst, True, 0)
    assert (inst.state, left) == (PENDING, INACTIVE)
    inst, left = step(inst, True, 4)
    assert (inst.state, left) == (PENDING, None)
    inst, left = step(inst, True, 5)
    assert (inst.state, left) == (FIRING, PENDING) and inst.fired_at == T0 + timedelta(minutes=5)
    inst, left = step(inst, False, 6)
    assert (inst.state, left) == (RESOLVED, FIRING)
    inst, left = step(inst, True, 7)  # comes back: pending again, a new episode
    assert (inst.state, left) == (PENDING, RESOLVED)


def test_pending_that_clears_goes_inactive_and_keep_firing_for_holds():
    inst, _ = step(Instance("f", "r", {}), True, 0)
    inst, left = step(inst, False, 1)
    assert (inst.state, left) == (INACTIVE, PENDING)
    inst, _ = step(Instance("f", "r", {}), True, 0, for_=0, keep=10)
    assert inst.state == FIRING
    inst, left = step(inst, False, 9, for_=0, keep=10)
    assert (inst.state, left) == (FIRING, None)
    inst, left = step(inst, False, 10, for_=0, keep=10)
    assert (inst.state, left) == (RESOLVED, FIRING)


def test_matchers():
    assert Matcher.parse("recipe=etl").matches({"recipe": "etl"})
    assert Matcher.parse("recipe!=etl").matches({"recipe": "x"})
    assert Matcher.parse("host=~web-.*").matches({"host": "web-1"})
    assert not Matcher.parse("host=~web").matches({"host": "web-1"})  # anchored
    assert Matcher.parse("host!~db.*").matches({})
    assert matchers({"a": "1"}) == (Matcher("a", "=", "1"),)
    with pytest.raises(ValueError, match="bad regex"):
        Matcher.parse("a=~(")
    with pytest.raises(ValueError, match="expected label=value"):
        Matcher.parse("just text")


def test_notify_config_errors_name_the_place():
    with pytest.raises(ValueError, match=r"routes\[0\].receiver"):
        NotifyConfig.from_dict({"routes": [{"receiver": "nobody"}]})
    with pytest.raises(ValueError, match="not an http"):
        NotifyConfig.from_dict({"receivers": [{"name": "x", "channels": [
            {"type": "webhook", "url": "file:///etc/passwd"}]}]})
    with pytest.raises(ValueError, match="channel type"):
        NotifyConfig.from_dict({"receivers": [{"name": "x", "channels": [{"type": "fax"}]}]})


def test_signature_round_trip_and_refusals():
    body = b'{"a": 1}'
    signature = sign("s3cret", "1000.000", body)
    assert verify_signature("s3cret", "1000.000", body, signature, now=1001)
    assert not verify_signature("other", "1000.000", body, signature, now=1001)
    assert not verify_signature("s3cret", "1000.000", body + b" ", signature, now=1001)
    assert not verify_signature("s3cret", "1000.000", body, signature, now=5000)  # replay


def test_mute_times():
    from warehouse.alerts.notify import MuteTime

    night = MuteTime.from_dict({"start": "22:00", "end": "06:00", "weekdays": ["fri"]})
    friday = datetime(2026, 11, 27, tzinfo=UTC)  # a Friday
    assert night.covers(friday.replace(hour=23))
    assert night.covers(friday.replace(hour=5) + timedelta(days=1))  # Saturday 05:00
    assert not night.covers(friday.replace(hour=5))  # Friday 05:00 is Thursday's night
    assert not night.covers(friday.replace(hour=12))
    weekend = MuteTime.from_dict({"weekdays": ["saturday", "sun"]})
    assert weekend.covers(friday + timedelta(days=1, hours=12))
    assert not weekend.covers(friday + timedelta(hours=12))
    with pytest.raises(ValueError, match=r"mute_times\[0\].start"):
        NotifyConfig.from_dict({"receivers": [{"name": "x"}], "routes": [
            {"receiver": "x", "mute_times": [{"start": "25:00"}]}]})
    with pytest.raises(ValueError, match="not a weekday"):
        MuteTime.from_dict({"weekdays": ["someday"]})
