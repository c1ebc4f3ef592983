"""The recorder's buffer and spill files, without a database: a fake warehouse stands in."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from dataclasses import dataclass

import pandas as pd
import psutil
import pytest
from sqlalchemy.exc import OperationalError

from warehouse.errors import FieldProblem, ValidationError
from warehouse.recorder import Recorder, safety
from warehouse.recorder import buffer as buffer_module
from warehouse.recorder.buffer import Buffer, WarehouseSink, points_frame, rows_frame
from warehouse.recorder.replay import replay_spill
from warehouse.recorder.resources import PROBE, Probe
from warehouse.recorder.run import outcome, uuid7
from warehouse.recorder.spill import (
    SpillWriter,
    is_transient,
    match_key,
    read_spill,
    target_key,
)

URL = "duckdb:////nonexistent/fake.duckdb"


class Boom(Exception):
    pass


@dataclass
class Result:
    written: int
    skipped: int


class FakeWarehouse:
    """Stores what it is given, keyed like the real tables; ``down`` makes writes fail the
    way an unreachable database does."""

    def __init__(self, url: str = URL):
        self.url = url
        self.down = False
        self.invalid = False
        self.refused_metric = "refused"  # points of this metric fail validation, like a bad name
        self.calls = 0
        self.runs: dict = {}
        self.steps: dict = {}
        self.points: dict = {}

    def _check(self):
        self.calls += 1
        if self.down:
            raise OperationalError("connect", {}, Exception("Could not set lock on file"))
        if self.invalid:
            raise ValidationError("batch", [FieldProblem(0, "value", "is bad")])

    def _keyed(self, store: dict, frame: pd.DataFrame, keys: list[str]) -> Result:
        self._check()
        written = 0
        for row in frame.to_dict("records"):
            key = tuple(str(row[k]) for k in keys)
            written += key not in store
            if store.get(key, {}).get("status") in (None, "running"):
                store[key] = row
        return Result(written, len(frame) - written)

    def write_runs(self, frame):
        return self._keyed(self.runs, frame, ["run_id"])

    def write_steps(self, frame):
        return self._keyed(self.steps, frame, ["run_id", "step_id"])

    def write_points(self, frame, label_columns=()):
        self._check()
        refused = frame["metric"].astype(str) == self.refused_metric
        if refused.any():
            row = int(refused.to_numpy().nonzero()[0][0])
            raise ValidationError("points batch", [FieldProblem(row, "metric", "is refused")])
        written = 0
        for row in frame.to_dict("records"):
            labels = row.get("labels") or {k: row[k] for k in label_columns if pd.notna(row[k])}
            key = (row["metric"], json.dumps(labels, sort_keys=True), pd.Timestamp(row["ts"]))
            written += key not in self.points
            self.points[key] = row["value"]
        return Result(written, len(frame) - written)


def point(i: int, **labels) -> tuple:
    return ("points", "m", float(i), 1_780_000_000_000_000 + i, None,
            tuple({"recipe": "r", **labels}.items()))


def step_row(i: int, status: str = "succeeded") -> tuple:
    return ("steps", {"run_id": "01a2164d-b4e9-730c-89d5-be640a2b5d9a", "step_id": f"{i}:s",
                      "step": "s", "ordinal": i, "attempt": 1, "status": status,
                      "started_at": 1_780_000_000_000_000, "finished_at": None})


@pytest.fixture
def fake():
    return FakeWarehouse()


def make_buffer(fake, spill_dir, **options) -> Buffer:
    options = {"capacity": 1000, "interval": None, "replay_on_start": False, **options}
    return Buffer(WarehouseSink(fake), spill_dir=spill_dir, **options)


def test_flush_writes_each_kind_once(fake, tmp_path):
    buffer = make_buffer(fake, tmp_path)
    for i in range(10):
        buffer.add(point(i, step=f"s{i % 2}"))
    buffer.add(step_row(0, "running"))
    buffer.add(step_row(0))
    stats = buffer.flush()
    assert stats["written"] == 12 and len(buffer) == 0
    assert len(fake.points) == 10 and len(fake.steps) == 1
    assert next(iter(fake.steps.values()))["status"] == "succeeded"
    assert not list(tmp_path.glob("*.ndjson"))


def test_buffer_is_bounded_and_overflow_spills_without_touching_the_database(fake, tmp_path):
    buffer = make_buffer(fake, tmp_path, capacity=100, flush_at=100)
    peak = 0
    for i in range(1050):
        buffer.add(point(i))
        peak = max(peak, len(buffer))
    assert peak <= 100
    assert fake.calls == 0  # the caller never waited for the database
    assert buffer.stats["overflows"] == 10 and buffer.stats["spilled"] == 1000
    assert len(buffer) == 50
    buffer.close()  # writes the rest, then replays the overflow
    assert len(fake.points) == 1050 and not list(tmp_path.glob("*.ndjson"))


def test_database_down_spills_then_replays_when_up(fake, tmp_path):
    buffer = make_buffer(fake, tmp_path)
    fake.down = True
    for i in range(20):
        buffer.add(point(i))
    buffer.add(step_row(1))
    stats = buffer.flush()
    assert stats["spilled"] == 21 and stats["db_errors"] == 1 and not fake.points
    files = list(tmp_path.glob("*.ndjson"))
    assert len(files) == 1
    buffer.add(point(20))
    buffer.flush(force=False)  # backing off: goes straight to disk, no new attempt
    assert fake.calls == 1 and buffer.stats["spilled"] == 22
    fake.down = False
    stats = buffer.flush()
    assert stats["replayed"] == 22 and len(fake.points) == 21 and len(fake.steps) == 1
    assert not list(tmp_path.glob("*.ndjson"))


def test_invalid_batch_is_set_aside_not_spilled(fake, tmp_path):
    buffer = make_buffer(fake, tmp_path)
    fake.invalid = True
    buffer.add(point(1))
    stats = buffer.flush()
    assert stats["rejected"] == 1 and stats["spilled"] == 0
    assert len(list(tmp_path.glob("*.rejected"))) == 1


def test_live_batch_with_one_refused_record_writes_the_others(fake, tmp_path):
    buffer = make_buffer(fake, tmp_path)
    for i in range(100):
        buffer.add(point(i) if i != 37 else ("points", "refused", 1.0, 1, None, ()))
    stats = buffer.flush()
    assert stats["written"] == 99 and stats["rejected"] == 1 and len(fake.points) == 99
    assert fake.calls < 20  # halving, not one write per record
    [quarantine] = tmp_path.glob("*.rejected")
    lines = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["header", "points"]
    assert lines[1]["metric"] == "refused" and "is refused" in lines[1]["_error"]
    fake.refused_metric = None  # fixed: the quarantined record is re-tried and written
    report = replay_spill(fake, tmp_path, rejected=True)
    assert report["rejected"] == 0 and report["points"] == 1 and len(fake.points) == 100
    assert not list(tmp_path.glob("*.rejected"))


def test_spill_file_format(tmp_path):
    writer = SpillWriter(tmp_path, "duckdb:///x.duckdb")
    writer.append([point(1, step="a"), step_row(2)])
    writer.close()
    lines = [json.loads(line) for line in writer.path.read_text().splitlines()]
    assert [line["kind"] for line in lines] == ["header", "points", "steps"]
    assert lines[0]["target"] == "duckdb:///x.duckdb"
    assert len({line["id"] for line in lines}) == 3
    assert lines[1]["ts"] == "2026-05-28T20:26:40.000001+00:00"
    assert lines[1]["labels"] == {"recipe": "r", "step": "a"}
    assert lines[2]["started_at"] == "2026-05-28T20:26:40.000000+00:00"
    assert lines[2]["finished_at"] is None


def test_torn_last_line_is_ignored_and_reported():
    good = [json.dumps({"kind": "points", "id": f"a-{i}", "metric": "m", "value": i,
                        "ts": "2026-01-01T00:00:00+00:00", "labels": {}}) for i in range(3)]
    data = ("\n".join(good) + "\n" + good[0][:17]).encode()
    parsed = read_spill(data)
    assert len(parsed["records"]["points"]) == 3 and parsed["torn"] == 1
    assert parsed["bad"] == []
    # a complete last record without its newline is still a record
    assert len(read_spill("\n".join(good).encode())["records"]["points"]) == 3
    # damage in the middle is "bad", not torn; repeated ids are read once
    middle = read_spill(f"{good[0]}\n{{garbage\n{good[1]}\n{good[1]}\n".encode())
    assert middle["torn"] == 0 and len(middle["bad"]) == 1
    assert len(middle["records"]["points"]) == 2 and middle["duplicates"] == 1


def test_replay_skips_files_of_live_writers_and_other_databases(fake, tmp_path):
    live = SpillWriter(tmp_path, WarehouseSink(fake).target)
    live.append([point(1)])
    other = SpillWriter(tmp_path, "postgresql+psycopg://elsewhere/db")
    other.append([point(2)])
    other.close()
    report = replay_spill(fake, tmp_path)
    assert (report["busy"], report["other_target"], report["files"]) == (1, 1, 0)
    assert not fake.points
    live.close()
    report = replay_spill(fake, tmp_path)
    assert report["files"] == 1 and len(fake.points) == 1
    assert replay_spill(fake, tmp_path, all_targets=True)["files"] == 1
    assert len(fake.points) == 2 and not list(tmp_path.glob("*.ndjson"))


def test_replay_reports_torn_line_and_keeps_file_when_database_down(fake, tmp_path):
    writer = SpillWriter(tmp_path, WarehouseSink(fake).target)
    writer.append([point(i) for i in range(5)])
    writer.close()
    with writer.path.open("ab") as f:
        f.write(b'{"kind":"points","id":"x-9","met')
    fake.down = True
    report = replay_spill(fake, tmp_path)
    assert report["files"] == 0 and len(report["failed"]) == 1
    assert writer.path.exists()  # nothing committed, nothing removed
    fake.down = False
    report = replay_spill(fake, tmp_path)
    assert (report["files"], report["points"], report["torn_lines"]) == (1, 5, 1)
    assert replay_spill(fake, tmp_path)["files"] == 0 and len(fake.points) == 5


def test_points_frame_uses_categorical_label_columns():
    frame, labels = points_frame([point(1, step="a"), point(2, step="b"), point(3)])
    assert labels == ["recipe", "step"]
    assert isinstance(frame["step"].dtype, pd.CategoricalDtype)
    assert frame["step"].tolist()[:2] == ["a", "b"] and pd.isna(frame["step"].tolist()[2])
    assert str(frame["ts"].dtype) == "datetime64[us, UTC]"
    frame, labels = points_frame([point(1, value="clash")])  # a label named like a column
    assert labels == [] and frame["labels"].tolist() == [{"recipe": "r", "value": "clash"}]


def test_rows_frame_converts_microseconds():
    frame = rows_frame([step_row(0)[1]])
    assert frame["started_at"].iloc[0] == pd.Timestamp("2026-05-28T20:26:40Z")
    assert pd.isna(frame["finished_at"].iloc[0])


def test_recorder_on_a_fake_warehouse(fake, tmp_path):
    rec = Recorder(fake, spill_dir=tmp_path, flush_interval=None, replay_on_start=False)
    with rec.recipe_run("unit", params={"a": 1}) as run, run.step("s") as step:
        step.metric("m", 1)
    assert len(fake.runs) == 1 and len(fake.steps) == 1 and len(fake.points) == 1
    assert next(iter(fake.runs.values()))["status"] == "succeeded"
    with pytest.raises(ValueError, match="step name"):
        run.step("bad name")
    with pytest.raises(ValueError, match="params"):
        rec.recipe_run("unit", params={"x": float("nan")})
    rec.close()


def test_uuid7_is_time_ordered_and_versioned():
    ids = [uuid7() for _ in range(100)]
    assert all(u.version == 7 for u in ids)
    assert [u.bytes[:6] for u in ids] == sorted(u.bytes[:6] for u in ids)
    assert len(set(ids)) == 100


def test_outcome_classifies_exits():
    assert outcome(None, None, None)[0] == "succeeded"
    assert outcome(KeyboardInterrupt, KeyboardInterrupt(), None)[0] == "cancelled"
    assert outcome(SystemExit, SystemExit(0), None)[0] == "succeeded"
    status, kind, message, _ = outcome(ValueError, ValueError("x" * 5000), None)
    assert (status, kind, len(message)) == ("failed", "ValueError", 4000)


# -- the recorder never breaks the recipe ------------------------------------------------------
@pytest.fixture
def fresh_warnings(monkeypatch):
    """Each test sees the first warning of each kind of recorder failure again."""
    monkeypatch.setattr(safety, "_reported", set())
    monkeypatch.setattr(safety, "failure_counts", {})


def test_probe_opened_by_many_threads_at_once_never_fails(monkeypatch):
    real = psutil.Process

    def slow_process(*args):  # widens the window in which a half-opened probe was visible
        time.sleep(0.005)
        return real(*args)

    monkeypatch.setattr(psutil, "Process", slow_process)
    for _ in range(3):
        probe = Probe()  # fresh: the first snapshots open /proc/self/statm and psutil
        start = threading.Barrier(32)
        errors = []

        def snap(probe=probe, start=start, errors=errors):
            start.wait()
            try:
                for _ in range(50):
                    assert len(probe.snapshot()) == 6 and len(probe.counters()) == 6
            except Exception as exc:  # noqa: BLE001 - collected for the assertion
                errors.append(exc)

        threads = [threading.Thread(target=snap) for _ in range(32)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        # as after a fork: another pid owns the state, every thread reopens it once
        probe._state = (-1, None, None)
        assert probe.snapshot()[0] >= 0


def test_own_failures_are_logged_once_and_never_reach_the_recipe(fake, tmp_path, monkeypatch,
                                                                  caplog, fresh_warnings):
    def broken(*_args, **_kwargs):
        raise RuntimeError("probe broke")

    monkeypatch.setattr(PROBE, "snapshot", broken)
    monkeypatch.setattr(PROBE, "counters", broken)
    fake.write_steps = broken  # a writer bug (not an outage)
    rec = Recorder(fake, spill_dir=tmp_path, flush_interval=None, replay_on_start=False)
    error = Boom("the recipe's own")
    for _ in range(3):
        with pytest.raises(Boom) as raised, rec.recipe_run("unit") as run, run.step("s"):
            raise error
        assert raised.value is error  # the same object, not a recorder error
    with rec.recipe_run("unit") as run, run.step("s") as step:
        step.metric("m", 1)
    stats = rec.close()
    # the broken writer made the recorder spill (and back off): nothing lost, nothing raised
    assert stats["spilled"] > 0 and stats["lost"] == 0 and stats["db_errors"] >= 1
    spilled = {"runs": [], "steps": [], "points": []}
    for path in tmp_path.glob("*.ndjson"):
        for kind, records in read_spill(path.read_bytes())["records"].items():
            spilled[kind] += records
    runs = [r for r in [*fake.runs.values(), *spilled["runs"]] if r["status"] != "running"]
    assert sorted(r["status"] for r in runs) == ["failed"] * 3 + ["succeeded"]
    assert all(r.get("cpu_user_us") is None or pd.isna(r["cpu_user_us"]) for r in runs)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"
                and "resource probe" in r.getMessage()]
    assert len(warnings) == 1  # one per kind, not one per call
    assert safety.failure_counts["the resource probe"] >= 8


def test_failing_spill_disk_counts_lost_records_without_raising(fake, tmp_path, monkeypatch,
                                                                  fresh_warnings):
    def no_disk(*_args, **_kwargs):
        raise PermissionError("read-only file system")

    monkeypatch.setattr(buffer_module, "SpillWriter", no_disk)
    buffer = make_buffer(fake, tmp_path, capacity=10, flush_at=10)
    fake.down = True
    for i in range(25):
        buffer.add(point(i))  # overflows spill on this thread, and fail
    assert buffer.flush()["lost"] == 25


def test_text_the_recorder_produces_is_cleaned_and_cut():
    odd = type("OddError", (Exception,), {"__module__": "mod\x00ule\udcff"})
    status, kind, message, trace = outcome(odd, odd("a\x00b\udcffc" + "x" * 5000), None)
    assert status == "failed" and kind == "mod\ufffdule\ufffd.OddError"
    assert message.startswith("a\ufffdb\ufffdc") and len(message) == 4000
    assert "\x00" not in trace and "\udcff" not in trace

    class Unprintable(Exception):
        def __str__(self):
            raise RuntimeError("no")

    assert outcome(Unprintable, Unprintable(), None)[2].endswith("str() failed>")


def test_attributes_changed_during_a_run_are_cleaned_not_refused(fake, tmp_path):
    rec = Recorder(fake, spill_dir=tmp_path, flush_interval=None, replay_on_start=False)
    with rec.recipe_run("unit") as run, run.step("s") as step:
        run.attributes["note"] = "bad\x00byte"
        run.attributes["k\udcff"] = ["x\udc80"]
        step.attributes["huge"] = "y" * (safety.MAX_JSON_CHARS + 10)
    rec.close()
    [row] = fake.runs.values()
    assert row["attributes"] == {"note": "bad\ufffdbyte", "k\ufffd": ["x\ufffd"]}
    [step_row_] = fake.steps.values()
    assert list(step_row_["attributes"]) == ["truncated"]
    assert not list(tmp_path.glob("*"))


@pytest.mark.parametrize("bad", ["a\x00b", "a\udcffb"])
def test_unstorable_text_the_user_passes_is_refused_where_it_is_written(fake, tmp_path, bad):
    rec = Recorder(fake, spill_dir=tmp_path, flush_interval=None, replay_on_start=False)
    calls = [
        lambda: rec.recipe_run(f"r{bad}"),
        lambda: rec.recipe_run("r", labels={"env": bad}),
        lambda: rec.recipe_run("r", params={"p": bad}),
        lambda: rec.recipe_run("r", params={bad: 1}),
        lambda: rec.recipe_run("r", params={"deep": [{"x": bad}]}),
        lambda: rec.recipe_run("r", attributes={"a": bad}),
        lambda: rec.recipe_run("r", params={"big": "z" * safety.MAX_JSON_CHARS}),
    ]
    with rec.recipe_run("unit") as run, run.step("s") as step:
        before = len(rec.buffer)
        calls += [
            lambda: run.step(f"s{bad}"),
            lambda: run.step("s", labels={"t": bad}),
            lambda: run.step("s", attributes={"a": bad}),
            lambda: run.step("s", depends_on=[f"0:s{bad}"]),
            lambda: step.metric(f"m{bad}", 1),
            lambda: step.metric("m", 1, table=bad),
            lambda: run.metric("m", 1, table=bad),
        ]
        for call in calls:
            with pytest.raises(ValueError):
                call()
        assert len(rec.buffer) == before  # nothing was buffered
    with pytest.raises(ValidationError, match="NUL|UTF-8"):
        rec.recipe_run("r", labels={"env": bad})
    rec.close()


def test_spill_targets_match_without_query_options_or_password():
    pg = "postgresql+psycopg://u:secret@db.example:5432/wh"
    assert match_key(pg) == match_key(pg + "?connect_timeout=5&sslmode=require")
    assert match_key(target_key(pg + "?connect_timeout=5")) == match_key(pg)
    assert "secret" not in target_key(pg) and "secret" not in match_key(pg)
    assert match_key(pg) != match_key("postgresql+psycopg://u@db.example:5432/other")
    assert match_key("duckdb:///w.duckdb") == match_key(f"duckdb:///{os.getcwd()}/w.duckdb?x=y")
    assert match_key("duckdb:///w.duckdb") != match_key("duckdb:////elsewhere/w.duckdb")


def test_transient_errors_are_the_engines_call():
    lock = RuntimeError('IO Error: Could not set lock on file "w.duckdb"')
    assert is_transient(lock, "duckdb:///w.duckdb")
    assert not is_transient(lock, "postgresql+psycopg://h/db")
    assert is_transient(OperationalError("connect", {}, Exception("down")), "http://remote:1")
    assert not is_transient(ValidationError("x", []), "duckdb:///w.duckdb")


def test_spill_and_quarantine_files_are_private(fake, tmp_path):
    folder = tmp_path / "spill"
    writer = SpillWriter(folder, "duckdb:///x.duckdb")
    writer.append([point(1)])
    writer.close()
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert stat.S_IMODE(writer.path.stat().st_mode) == 0o600
    buffer = make_buffer(fake, folder)
    buffer.add(("points", "refused", 1.0, 1, None, ()))
    buffer.flush()
    [quarantine] = folder.glob("*.rejected")
    assert stat.S_IMODE(quarantine.stat().st_mode) == 0o600


def test_replay_quarantines_each_kind_of_bad_record_and_writes_the_rest(fake, tmp_path):
    writer = SpillWriter(tmp_path, WarehouseSink(fake).target)
    writer.append([point(i) for i in range(200)])
    writer.close()
    good = json.dumps({"kind": "points", "metric": "m", "value": 1.0,
                       "ts": "2026-01-01T00:00:00+00:00", "labels": {}})
    damaged = [
        good.replace('"labels": {}', '"labels": ["a"]'),        # labels not an object
        good.replace('"ts": "2026-01-01T00:00:00+00:00", ', ""),  # no timestamp
        good.replace('"value": 1.0', '"value": "many"'),          # not a number
        good.replace('"metric": "m"', '"metric": "refused"'),     # refused by the warehouse
        "{not json",                                              # damaged line
    ]
    with writer.path.open("a") as f:
        f.write("".join(line + "\n" for line in damaged) + good + "\n")
    report = replay_spill(fake, tmp_path)
    assert report["failed"] == [] and report["files"] == 1
    assert report["rejected"] == 4 and report["bad_lines"] == 1
    assert len(fake.points) == 201 and not list(tmp_path.glob("*.ndjson"))
    [quarantine] = tmp_path.glob("*.rejected")
    lines = [json.loads(line) for line in quarantine.read_text().splitlines()]
    assert lines[0]["kind"] == "header" and len(lines) == 6
    assert all(line["_error"] for line in lines[1:])
    assert {line["kind"] for line in lines[1:]} == {"points", "damaged"}
    # a re-try without a fix keeps all five, damaged line included
    again = replay_spill(fake, tmp_path, rejected=True)
    assert again["rejected"] == 4 and again["bad_lines"] == 1 and quarantine.exists()
    assert len(quarantine.read_text().splitlines()) == 6


def test_a_broken_sink_is_a_database_failure_not_bad_records(fake, tmp_path):
    buffer = make_buffer(fake, tmp_path)
    buffer.sink.get = lambda: object()  # no write_points: a bug, not 100 bad records
    for i in range(100):
        buffer.add(point(i))
    stats = buffer.flush()
    assert stats["rejected"] == 0 and stats["spilled"] == 100 and stats["db_errors"] == 1
