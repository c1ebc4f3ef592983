"""The recorder end to end, on DuckDB and PostgreSQL: what a recipe run leaves in the
warehouse, including when the database is down or the process is killed."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
import textwrap

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import make_url

from warehouse import recorder
from warehouse.recorder import (
    Recorder,
    read_spill,
    recipe_run,
    recorder_for,
    replay_spill,
    shutdown,
    stale_runs,
)


@pytest.fixture(autouse=True)
def spill_dir(tmp_path, monkeypatch):
    """Each test spills into its own folder; every recorder is closed afterwards."""
    path = tmp_path / "spill"
    monkeypatch.setenv("WAREHOUSE_SPILL_DIR", str(path))
    yield path
    shutdown()


class Boom(Exception):
    pass


def _points(wh, metric: str) -> pd.DataFrame:
    return wh.points(metric).sort_values("ts").reset_index(drop=True)


# -- database outages -------------------------------------------------------------------------
_HOLD_LOCK = textwrap.dedent("""
    import sys, duckdb
    connection = duckdb.connect(sys.argv[1])
    print("locked", flush=True)
    sys.stdin.read()
""")


@contextlib.contextmanager
def database_down(wh, url: str):
    """Make the database unreachable for new connections, then bring it back.

    DuckDB: another process holds the file lock (this process lets go of it first).
    PostgreSQL: the database refuses connections and existing sessions are terminated."""
    u = make_url(url)
    if u.get_backend_name() == "duckdb":
        wh.close()
        holder = subprocess.Popen([sys.executable, "-c", _HOLD_LOCK, u.database],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "locked"
            yield
        finally:
            holder.stdin.close()
            holder.wait(timeout=60)
        return
    admin = psycopg.connect(host=u.host, port=u.port or 5432, user=u.username,
                            password=u.password, dbname="postgres", autocommit=True)
    with admin:
        admin.execute(f'ALTER DATABASE "{u.database}" WITH ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = %s AND pid <> pg_backend_pid()", (u.database,))
        try:
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{u.database}" WITH ALLOW_CONNECTIONS true')


# -- the basics -------------------------------------------------------------------------------
def test_three_line_example_records_run_steps_and_metrics(wh):
    with recipe_run(wh, "etl-daily", params={"day": "2026-11-25"}) as run:
        with run.step("extract"):
            pass
        with run.step("transform") as step:
            step.metric("rows", 120_000)

    runs = wh.runs()
    assert len(runs) == 1
    row = runs.iloc[0]
    assert (row["run_id"], row["recipe"], row["status"]) == (run.run_id, "etl-daily", "succeeded")
    assert row["params"] == {"day": "2026-11-25"}
    assert row["host"] and row["finished_at"] >= row["started_at"]
    assert row["duration_us"] >= 0 and row["last_seen_at"] == row["finished_at"]
    steps = wh.steps(run.run_id)
    assert steps["step"].tolist() == ["extract", "transform"]
    assert steps["ordinal"].tolist() == [0, 1]
    assert steps["status"].tolist() == ["succeeded", "succeeded"]
    assert steps["step_id"].is_unique and steps["parent_step_id"].isna().all()
    assert (steps["started_at"] >= row["started_at"]).all()
    assert (steps["finished_at"] <= row["finished_at"]).all()
    points = _points(wh, "rows")
    assert points["value"].tolist() == [120_000.0]
    assert points["run_id"].tolist() == [run.run_id]
    assert points.loc[0, ["recipe", "step", "host"]].tolist() == ["etl-daily", "transform",
                                                                    row["host"]]


def test_exception_is_recorded_and_reraised_unchanged(wh):
    error = Boom("disk on fire")
    with pytest.raises(Boom) as caught, recipe_run(wh, "fails") as run, run.step("extract"):
        raise error
    assert caught.value is error
    row = wh.runs().iloc[0]
    assert row["status"] == "failed"
    assert row["error_type"] == f"{Boom.__module__}.Boom"
    assert row["error_message"] == "disk on fire"
    assert "raise error" in row["attributes"]["traceback"]
    step = wh.steps(run.run_id).iloc[0]
    assert (step["status"], step["error_type"], step["error_message"]) == (
        "failed", f"{Boom.__module__}.Boom", "disk on fire")
    assert "Boom: disk on fire" in step["attributes"]["traceback"]


def test_keyboard_interrupt_marks_run_and_step_cancelled(wh):
    with pytest.raises(KeyboardInterrupt), recipe_run(wh, "interrupted") as run, \
            run.step("long"):
        raise KeyboardInterrupt
    assert wh.runs().iloc[0]["status"] == "cancelled"
    assert wh.steps(run.run_id)["status"].tolist() == ["cancelled"]


def test_nested_steps_have_parent_step_id(wh):
    with recipe_run(wh, "nested") as run:
        with run.step("outer") as outer:
            with run.step("middle") as middle, run.step("inner") as inner:
                pass
            with run.step("sibling") as sibling:
                pass
        with run.step("top") as top:
            pass
    steps = wh.steps(run.run_id).set_index("step_id")
    parents = {k: (None if pd.isna(v) else v) for k, v in steps["parent_step_id"].items()}
    assert parents == {outer.step_id: None, middle.step_id: outer.step_id,
                       inner.step_id: middle.step_id, sibling.step_id: outer.step_id,
                       top.step_id: None}


def test_retries_are_attempts_of_the_same_step(wh):
    calls = []

    @recorder.step("flaky", attempts=3, retry_on=Boom)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise Boom(f"try {len(calls)}")
        return "ok"

    with recipe_run(wh, "retries") as run:
        for attempt in run.retry("load", attempts=4, retry_on=Boom):
            with attempt:
                if attempt.attempt < 2:
                    raise Boom("not yet")
        assert flaky() == "ok"
        with run.step("manual", attempt=2):
            pass
    steps = wh.steps(run.run_id)
    load = steps[steps["step"] == "load"]
    assert load["attempt"].tolist() == [1, 2]
    assert load["status"].tolist() == ["failed", "succeeded"]
    flaky_steps = steps[steps["step"] == "flaky"]
    assert flaky_steps["attempt"].tolist() == [1, 2, 3]
    assert flaky_steps["error_message"].tolist()[:2] == ["try 1", "try 2"]
    assert steps.loc[steps["step"] == "manual", "attempt"].tolist() == [2]
    assert wh.runs().iloc[0]["status"] == "succeeded"


def test_last_attempt_failure_propagates(wh):
    with pytest.raises(Boom), recipe_run(wh, "gives-up") as run:
        for attempt in run.retry("load", attempts=2):
            with attempt:
                raise Boom("always")
    steps = wh.steps(run.run_id)
    assert steps["status"].tolist() == ["failed", "failed"]
    assert wh.runs().iloc[0]["status"] == "failed"


def test_metrics_land_in_points_with_run_id_and_labels(wh):
    with recipe_run(wh, "metrics", labels={"env": "test"}) as run:
        run.metric("rows_total", 10)
        with run.step("load") as step:
            for i in range(5):
                step.metric("batch_rows", i, table="orders")
            step.metric("batch_rows", float("nan"), table="orders")  # dropped, not raised
            step.metric("batch_rows", -1e101, table="orders")  # beyond what sums can hold
            recorder.metric("latency_ms", 2.5)  # the current step, found from the context
    stats = recorder_for(wh).stats
    assert stats["dropped_values"] == 2
    batch = _points(wh, "batch_rows")
    assert batch["value"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert set(batch["run_id"]) == {run.run_id}
    assert set(batch["table"]) == {"orders"} and set(batch["env"]) == {"test"}
    assert set(batch["step"]) == {"load"}
    total = _points(wh, "rows_total")
    assert total["value"].tolist() == [10.0] and "step" not in total.columns
    assert _points(wh, "latency_ms")["step"].tolist() == ["load"]
    with pytest.raises(ValueError, match="metric name"), recipe_run(wh, "bad") as bad:
        bad.metric("no spaces allowed", 1)


def test_resource_columns_are_filled(wh):
    def cpu_seconds() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    with recipe_run(wh, "busy") as run, run.step("spin"):
        start = cpu_seconds()
        while cpu_seconds() - start < 0.02:  # burn CPU until the kernel has counted it
            sum(range(1000))
    for row in (wh.runs().iloc[0], wh.steps(run.run_id).iloc[0]):
        assert row["cpu_user_us"] + row["cpu_system_us"] > 0
        assert row["peak_rss_bytes"] > 0
        assert row["read_bytes"] >= 0 and row["written_bytes"] >= 0


def test_sampling_records_process_metrics(wh):
    with recipe_run(wh, "sampled", sample_interval=3600) as run, run.step("work"):
        _cpu, rss = run._sampler.sample()  # one sample now instead of waiting an hour
    rss_points = _points(wh, "process.rss_bytes")
    assert rss_points["value"].tolist() == [float(rss)]
    assert rss_points.loc[0, ["recipe", "step"]].tolist() == ["sampled", "work"]
    assert len(_points(wh, "process.cpu_percent")) == 1
    assert wh.steps(run.run_id).iloc[0]["peak_rss_bytes"] >= rss


def test_decorators(wh):
    @recorder.step
    def extract():
        return 3

    @recorder.step("inside")
    def multiply(x, by):
        return x * by

    @recorder.step("double")
    def transform(x):
        return multiply(x, 2)

    @recorder.recipe("decorated", wh=wh, params={"mode": "test"})
    def main():
        return transform(extract())

    assert main() == 6
    assert transform(1) == 2  # outside a run the function just runs
    run = wh.runs().iloc[0]
    assert (run["recipe"], run["status"], run["params"]) == ("decorated", "succeeded",
                                                             {"mode": "test"})
    steps = wh.steps(run["run_id"])
    assert steps["step"].tolist() == ["extract", "double", "inside"]
    assert steps["parent_step_id"].tolist()[2] == steps["step_id"].tolist()[1]


def test_heartbeat_and_stale_runs(wh, spill_dir):
    rec = Recorder(wh, spill_dir=spill_dir, flush_interval=None, heartbeat="1us")
    with rec.recipe_run("beating") as run:
        rec.flush()
        started = wh.runs().iloc[0]["started_at"]
        rec._beat()  # what the writer thread does every second
        rec.flush()
        row = wh.runs().iloc[0]
        assert row["status"] == "running" and row["last_seen_at"] > started
        stale = stale_runs(wh, "5m", now=row["last_seen_at"] + pd.Timedelta("10min"))
        assert stale["run_id"].tolist() == [run.run_id]
        assert stale_runs(wh, "5m", now=row["last_seen_at"] + pd.Timedelta("1min")).empty
    rec._beat()  # a late heartbeat must not turn the finished run back into 'running'
    rec.flush()
    assert wh.runs().iloc[0]["status"] == "succeeded"
    assert stale_runs(wh, "5m", now=row["last_seen_at"] + pd.Timedelta("10min")).empty
    rec.close()


# -- outages and crashes ----------------------------------------------------------------------
def test_database_down_then_up_loses_and_doubles_nothing(wh, database_url, spill_dir):
    rec = Recorder(wh, spill_dir=spill_dir, flush_interval=None)
    with rec.recipe_run("outage") as run:
        with run.step("before") as step:
            step.metric("done", 1)
        rec.flush()
        with database_down(wh, database_url):
            for i in range(5):
                with run.step("during") as step:
                    step.metric("done", 1, phase="down")
                    step.metric("items", i)
            stats = rec.flush()
            assert stats["spilled"] > 0
            assert list(spill_dir.glob("*.ndjson"))
        with run.step("after") as step:
            step.metric("done", 1)
    stats = rec.flush()  # the database is back: spilled records are replayed
    assert not list(spill_dir.glob("*.ndjson"))
    assert stats["replayed"] >= stats["spilled"] > 0 and stats["lost"] == 0

    assert wh.runs()["status"].tolist() == ["succeeded"]
    steps = wh.steps(run.run_id)
    assert steps["step"].tolist() == ["before"] + ["during"] * 5 + ["after"]
    assert (steps["status"] == "succeeded").all()
    assert len(_points(wh, "done")) == 7
    assert _points(wh, "items")["value"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    again = replay_spill(wh, spill_dir)
    assert again["files"] == 0
    assert len(_points(wh, "done")) == 7 and len(wh.steps(run.run_id)) == 7
    rec.close()


_CHILD = textwrap.dedent("""
    import sys
    from warehouse.recorder import recipe_run

    with recipe_run(None, "killed", params={"steps": 20}) as run:
        for i in range(20):
            with run.step("work") as step:
                step.metric("items", i)
                step.metric("bytes", i * 10, part=str(i % 3))
        run.flush()
        print("READY", run.run_id, flush=True)
        with run.step("hang"):
            run.metric("unflushed", 1)
            sys.stdin.read()  # blocks until the test kills this process
""")


def test_killed_process_spill_is_replayed_exactly_once(wh, database_url, spill_dir):
    env = {**os.environ, "WAREHOUSE_URL": database_url, "WAREHOUSE_SPILL_DIR": str(spill_dir)}
    with database_down(wh, database_url):
        child = subprocess.Popen([sys.executable, "-c", _CHILD], env=env, text=True,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        try:
            line = child.stdout.readline().split()
            assert line and line[0] == "READY", "the child did not get to its checkpoint"
            run_id = line[1]
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=60)
    assert child.returncode == -signal.SIGKILL

    files = sorted(spill_dir.glob("*.ndjson"))
    assert files, "nothing was spilled"
    with files[-1].open("ab") as f:  # as if the kill had cut a write short
        f.write(b'{"kind":"points","id":"cut-short","metric":"it')
    spilled = {"runs": [], "steps": [], "points": []}
    for path in files:
        for kind, records in read_spill(path.read_bytes())["records"].items():
            spilled[kind] += records
    step_ids = {r["step_id"] for r in spilled["steps"]}
    assert len(step_ids) >= 20
    point_keys = {(r["metric"], tuple(sorted(r["labels"].items())), r["ts"])
                  for r in spilled["points"]}

    def stored():
        points = pd.concat([_points(wh, m) for m in ("items", "bytes")], ignore_index=True)
        return wh.runs(), wh.steps(run_id), points

    report = replay_spill(wh, spill_dir)
    assert report["failed"] == [] and report["files"] == len(files)
    assert report["torn_lines"] == 1 and not list(spill_dir.glob("*.ndjson"))
    runs, steps, points = stored()
    assert runs["run_id"].tolist() == [run_id] and runs["status"].tolist() == ["running"]
    assert sorted(steps["step_id"]) == sorted(step_ids)  # each exactly once
    assert len(points) == len(point_keys) == 40
    assert set(points["run_id"]) == {run_id}
    assert steps.loc[steps["step"] == "work", "status"].eq("succeeded").all()

    again = replay_spill(wh, spill_dir)
    assert again["files"] == 0
    for before, after in zip((runs, steps, points), stored(), strict=True):
        assert len(before) == len(after)

    # The process died, so the run stays 'running' and goes stale.
    last_seen = runs.iloc[0]["last_seen_at"]
    stale = stale_runs(wh, "5m", now=last_seen + pd.Timedelta("6min"))
    assert stale["run_id"].tolist() == [run_id]


_CHILD_DONE = textwrap.dedent("""
    import sys
    from warehouse.recorder import recipe_run

    with recipe_run(None, "from-url") as run, run.step("only"):
        pass
    print("DONE", run.run_id, flush=True)
    sys.stdin.read()  # still alive: a DuckDB file lock would still be held if not released
""")


def test_url_recorder_lets_go_of_the_database_between_runs(wh, database_url, spill_dir):
    wh.close()  # one read-write process per DuckDB file: the child's turn
    env = {**os.environ, "WAREHOUSE_URL": database_url, "WAREHOUSE_SPILL_DIR": str(spill_dir)}
    child = subprocess.Popen([sys.executable, "-c", _CHILD_DONE], env=env, text=True,
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        line = child.stdout.readline().split()
        assert line and line[0] == "DONE"
        runs = wh.runs()  # reopens the database while the child still lives
        assert runs["run_id"].tolist() == [line[1]]
        assert runs["status"].tolist() == ["succeeded"]
    finally:
        child.stdin.close()
        child.wait(timeout=60)
    assert child.returncode == 0
    assert not list(spill_dir.glob("*.ndjson"))
