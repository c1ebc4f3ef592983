"""The recorder's buffer and spill files, without a database: a fake warehouse stands in."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pandas as pd
import pytest
from sqlalchemy.exc import OperationalError

from warehouse.errors import FieldProblem, ValidationError
from warehouse.recorder import Recorder
from warehouse.recorder.buffer import Buffer, WarehouseSink, points_frame, rows_frame
from warehouse.recorder.run import outcome, uuid7
from warehouse.recorder.spill import SpillWriter, read_spill, replay_spill

URL = "duckdb:////nonexistent/fake.duckdb"


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
