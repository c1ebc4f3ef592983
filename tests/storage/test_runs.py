"""Runs and steps: upsert semantics, idempotency and validation on both engines."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from warehouse import ValidationError

T0 = pd.Timestamp("2026-11-25T08:00:00.123456Z")


def run_row(run_id, status="succeeded", **extra):
    row = {"run_id": run_id, "recipe": "etl", "started_at": T0, "status": status,
           "params": {"day": "2026-11-25"}, "host": "h1"}
    if status != "running":
        row["finished_at"] = T0 + pd.Timedelta("90s")
    return row | extra


def test_run_lifecycle_running_then_finished(wh):
    rid = str(uuid.uuid4())
    wh.write_runs([run_row(rid, "running", last_seen_at=T0)])
    assert wh.runs()["status"].tolist() == ["running"]
    wh.write_runs([run_row(rid, "failed", error_type="ValueError", error_message="bad")])
    runs = wh.runs()
    assert runs["status"].tolist() == ["failed"]
    assert runs["duration_us"].tolist() == [90_000_000]
    assert runs["params"].tolist() == [{"day": "2026-11-25"}]
    # A late heartbeat never turns a finished run back into a running one.
    wh.write_runs([run_row(rid, "running", last_seen_at=T0 + pd.Timedelta("10s"))])
    assert wh.runs()["status"].tolist() == ["failed"]
    assert wh.runs(recipe="etl", status="failed")["run_id"].tolist() == [rid]
    assert wh.runs(recipe="other").empty


def test_replaying_runs_and_steps_changes_nothing(wh):
    rid = str(uuid.uuid4())
    runs = [run_row(rid)]
    steps = [{"run_id": rid, "step_id": s, "step": s, "started_at": T0 + pd.Timedelta(f"{i}s"),
              "finished_at": T0 + pd.Timedelta(f"{i + 1}s"), "status": "succeeded",
              "depends_on": [] if i == 0 else ["extract"]}
             for i, s in enumerate(["extract", "transform"])]
    for _ in range(2):
        wh.write_runs(runs)
        wh.write_steps(steps)
    assert len(wh.runs()) == 1
    got = wh.steps(rid)
    assert got["step"].tolist() == ["extract", "transform"]
    assert got["ordinal"].tolist() == [0, 1]
    assert got["duration_us"].tolist() == [1_000_000, 1_000_000]
    assert got["depends_on"].tolist() == [[], ["extract"]]
    assert got["started_at"].iloc[0] == T0


@pytest.mark.parametrize("bad, field", [
    ({"started_at": pd.Timestamp("2026-11-25T08:00:00")}, "started_at"),
    ({"status": "exploded"}, "status"),
    ({"recipe": "etl; DROP TABLE runs"}, "recipe"),
    ({"recipe": "x" * 201}, "recipe"),
    ({"run_id": "not-a-uuid"}, "run_id"),
    ({"cpu_user_us": float("inf")}, "cpu_user_us"),
    ({"finished_at": T0 - pd.Timedelta("1s")}, "finished_at"),
    ({"colour": "blue"}, "colour"),
])
def test_bad_runs_are_rejected_whole(wh, bad, field):
    good = run_row(str(uuid.uuid4()))
    broken = run_row(str(uuid.uuid4())) | bad
    with pytest.raises(ValidationError) as info:
        wh.write_runs([good, broken])
    assert field in str(info.value)
    assert wh.runs().empty


def test_steps_of_a_run_id_that_is_not_a_uuid_is_a_clear_error(wh):
    with pytest.raises(ValueError, match="run_id: 'not-a-uuid' is not a UUID"):
        wh.steps("not-a-uuid")
    assert wh.steps(str(uuid.uuid4())).empty  # a well-formed unknown id: no steps
