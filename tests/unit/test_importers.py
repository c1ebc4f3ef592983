"""Importers: WfCommons WfFormat samples and generic runs files, parsed without a database."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from warehouse.importers import ImportFormatError, parse_runs_file, parse_wfformat
from warehouse.importers.runs_file import RUN_COLUMNS, STEP_COLUMNS
from warehouse.importers.wfcommons import recipe_from_instance_name

# Small real traces kept in the repository (tests/data/wfcommons/README.md: source, licence).
SAMPLE_DIR = Path(__file__).resolve().parents[1] / "data" / "wfcommons"
SAMPLES = sorted(SAMPLE_DIR.glob("*.json"))
RUN_ID = "6f1c2a8e-0b7d-4c1e-9a57-3d2f0e9b1c11"


def test_the_samples_live_in_the_repository() -> None:
    # A fresh clone tests as much as this machine: no sample is fetched or skipped.
    assert len(SAMPLES) == 6 and (SAMPLE_DIR / "LICENSE").is_file()


def sample(name: str) -> Path:
    path = SAMPLE_DIR / name
    assert path.is_file(), f"{path}: a test sample is missing from the repository"
    return path


def us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def check_frames(runs: pd.DataFrame, steps: pd.DataFrame) -> None:
    """Columns, order and dtypes are those of docs/data-model.md / docs/importers.md."""
    assert list(runs.columns) == list(RUN_COLUMNS)
    assert list(steps.columns) == list(STEP_COLUMNS)
    for frame, columns in ((runs, RUN_COLUMNS), (steps, STEP_COLUMNS)):
        for name, kind in columns.items():
            dtype = str(frame[name].dtype)
            expected = {"ts": "datetime64[us, UTC]", "int": "Int64", "object": "object",
                        "list": "object"}.get(kind, "str")
            assert dtype == expected, (name, dtype)
    for run_id in runs["run_id"]:
        assert str(uuid.UUID(run_id)) == run_id
    assert all(isinstance(value, dict) for value in runs["params"])
    assert all(isinstance(value, dict) for value in runs["attributes"])
    assert all(isinstance(value, dict) for value in steps["attributes"])
    assert all(isinstance(value, list) for value in steps["depends_on"])


# --- WfCommons samples ------------------------------------------------------------------------

@pytest.mark.parametrize(
    "path", SAMPLES,
    ids=lambda p: p.name)
def test_sample_parses_faithfully(path: Path) -> None:
    doc = json.loads(path.read_text())
    spec = {t["id"]: t for t in doc["workflow"]["specification"]["tasks"]}
    execution = {t["id"]: t for t in doc["workflow"]["execution"]["tasks"]}
    runs, steps = parse_wfformat(path)
    check_frames(runs, steps)
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["status"] == "succeeded"
    assert run["attributes"]["source_file"] == path.name
    assert run["attributes"]["schema_version"] == doc["schemaVersion"]
    assert run["attributes"]["step_starts"] == "derived_from_dag"

    assert len(steps) == len(spec) == len(execution)
    assert set(steps["step_id"]) == set(spec)
    assert steps["duration_us"].sum() == sum(us(t["runtimeInSeconds"]) for t in execution.values())
    assert abs(steps["duration_us"].sum()
               - sum(t["runtimeInSeconds"] for t in execution.values()) * 1e6) <= len(steps)
    by_id = steps.set_index("step_id")
    for step_id, task in spec.items():
        assert by_id.at[step_id, "depends_on"] == task["parents"]
        # A derived start is when the last parent ended; roots start with the run.
        parent_ends = [by_id.at[p, "finished_at"] for p in task["parents"]]
        assert by_id.at[step_id, "started_at"] == max([run["started_at"], *parent_ends])
        assert by_id.at[step_id, "finished_at"] <= run["finished_at"]
    makespan_end = run["started_at"] + pd.Timedelta(
        microseconds=us(doc["workflow"]["execution"]["makespanInSeconds"]))
    assert run["finished_at"] == max(makespan_end, steps["finished_at"].max())
    assert run["duration_us"] == (run["finished_at"] - run["started_at"]) // pd.Timedelta("1us")
    assert (steps["attempt"] == 1).all()
    assert (steps["status"] == "succeeded").all()
    ordered = steps.sort_values(["started_at", "step_id"])
    assert list(ordered["ordinal"]) == list(range(len(steps)))


def test_parsing_twice_gives_the_same_ids() -> None:
    first = [parse_wfformat(path)[0]["run_id"].iloc[0] for path in SAMPLES]
    second = [parse_wfformat(path)[0]["run_id"].iloc[0] for path in SAMPLES]
    assert first == second
    assert len(set(first)) == len(SAMPLES)


def test_all_samples_import_quickly() -> None:
    started = time.perf_counter()
    for path in SAMPLES:
        parse_wfformat(path)
    assert time.perf_counter() - started < 10


def test_run_id_ignores_formatting_but_not_content(tmp_path: Path) -> None:
    doc = json.loads(sample("helloworld-chain-5-chameleon.json").read_text())
    (tmp_path / "a.json").write_text(json.dumps(doc))
    (tmp_path / "b.json").write_text(json.dumps(doc, indent=4))
    doc["workflow"]["execution"]["tasks"][0]["runtimeInSeconds"] += 1
    (tmp_path / "c.json").write_text(json.dumps(doc))
    ids = [parse_wfformat(tmp_path / f"{n}.json")[0]["run_id"].iloc[0] for n in "abc"]
    assert ids[0] == ids[1] != ids[2]


@pytest.mark.parametrize(("name", "started_at"), [
    ("helloworld-chain-5-chameleon.json", "2023-05-10T16:23:32Z"),     # MM-DD-YYTHH:MM:SSZ
    ("1000genome-chameleon-2ch-100k-001.json", "2020-04-01T03:50:43Z"),  # basic ISO, +0000
    ("bacass-dirt02-001.json", "2023-03-29T20:02:36Z"),                  # -10:00 offset
])
def test_executed_at_formats(name: str, started_at: str) -> None:
    runs, _ = parse_wfformat(sample(name))
    assert runs["started_at"].iloc[0] == pd.Timestamp(started_at)
    assert "executed_at_assumed_utc" not in runs["attributes"].iloc[0]


def test_recipe_hosts_and_resources() -> None:
    runs, steps = parse_wfformat(sample("1000genome-chameleon-2ch-100k-001.json"))
    assert runs["recipe"].iloc[0] == "1000genome"
    assert runs["host"].iloc[0] == "pegasus-5"
    first = steps.set_index("step_id").loc["individuals_ID0000001"]
    assert first["duration_us"] == 53_600_000
    assert first["cpu_user_us"] == round(160.8619 / 100 * 53.6 * 1e6)  # avgCPU% x runtime
    assert pd.isna(first["cpu_system_us"])
    assert first["attributes"]["program"] == "individuals"
    assert runs["cpu_user_us"].iloc[0] == steps["cpu_user_us"].sum()

    runs, steps = parse_wfformat(sample("blast-chameleon-small-001.json"))
    assert pd.isna(runs["host"].iloc[0])  # two machines
    assert set(steps["host"]) == {"worker-1.novalocal", "worker-2.novalocal"}
    assert runs["peak_rss_bytes"].iloc[0] == steps["peak_rss_bytes"].max()

    runs, steps = parse_wfformat(sample("bacass-dirt02-001.json"), recipe="nf-core/bacass")
    assert runs["recipe"].iloc[0] == "nf-core/bacass"
    assert (steps["host"] == "dirt02").all()  # no per-task machine: the one declared machine
    assert steps["read_bytes"].notna().all()


# --- WfFormat 1.4 and other hand-made documents ----------------------------------------------

def to_v14(doc: dict[str, Any]) -> dict[str, Any]:
    """The same execution in the 1.4 layout: one task list, parents by name, ``wms``."""
    spec = {t["id"]: t for t in doc["workflow"]["specification"]["tasks"]}
    tasks = []
    for task in doc["workflow"]["execution"]["tasks"]:
        item = {k: v for k, v in task.items() if k not in ("machines", "coreCount")}
        item.update(name=task["id"], type="compute", category=task["command"]["program"],
                    parents=spec[task["id"]]["parents"], machine=task["machines"][0],
                    files=[{"name": f, "sizeInBytes": 1, "link": "input"}
                           for f in spec[task["id"]].get("inputFiles", [])])
        tasks.append(item)
    execution = doc["workflow"]["execution"]
    return {"name": doc["name"], "schemaVersion": "1.4", "wms": doc["runtimeSystem"],
            "workflow": {"makespanInSeconds": execution["makespanInSeconds"],
                         "executedAt": "2023-05-04T10:46:27", "machines": execution["machines"],
                         "tasks": tasks}}


def test_v14_layout(tmp_path: Path) -> None:
    doc = json.loads(sample("helloworld-forkjoin-10-chameleon.json").read_text())
    path = tmp_path / "forkjoin-14.json"
    path.write_text(json.dumps(to_v14(doc)))
    runs14, steps14 = parse_wfformat(path)
    runs15, steps15 = parse_wfformat(sample("helloworld-forkjoin-10-chameleon.json"))
    check_frames(runs14, steps14)
    attributes = runs14["attributes"].iloc[0]
    assert attributes["schema_version"] == "1.4"
    assert attributes["wms"] == "Pegasus"
    assert attributes["executed_at_assumed_utc"] is True  # naive executedAt -> UTC
    assert runs14["started_at"].iloc[0] == runs15["started_at"].iloc[0]
    assert set(steps14["step"]) == {"cpuhog"}  # category wins over the name
    for column in ("step_id", "started_at", "finished_at", "duration_us", "ordinal", "host",
                   "depends_on", "cpu_user_us"):
        assert list(steps14[column]) == list(steps15[column]), column

    # runtimeInSeconds is optional in 1.4: a task without one lasts 0 s and is flagged
    v14 = to_v14(doc)
    del v14["workflow"]["tasks"][-1]["runtimeInSeconds"]
    path.write_text(json.dumps(v14))
    last = parse_wfformat(path)[1].set_index("step_id").loc[v14["workflow"]["tasks"][-1]["name"]]
    assert last["duration_us"] == 0
    assert last["attributes"]["runtime_missing"] is True


@pytest.mark.parametrize(("name", "recipe"), [
    ("1000genome-20200401T035039Z-0", "1000genome"),
    ("seismology-0", "seismology"),
    ("chain-5-5000-0.6-100000000-cascadelake-1-0-1683736566.json",
     "chain-5-5000-0.6-100000000-cascadelake"),
    ("makeflow-blast-small", "makeflow-blast-small"),
    ("2024", "2024"),
])
def test_recipe_from_instance_name(name: str, recipe: str) -> None:
    assert recipe_from_instance_name(name) == recipe


def test_recorded_task_starts_are_kept(tmp_path: Path) -> None:
    doc = json.loads(sample("helloworld-chain-5-chameleon.json").read_text())
    first = doc["workflow"]["execution"]["tasks"][0]
    first["executedAt"] = "2023-05-10T16:25:00Z"
    path = tmp_path / "chain.json"
    path.write_text(json.dumps(doc))
    runs, steps = parse_wfformat(path)
    assert runs["attributes"].iloc[0]["step_starts"] == "mixed"
    by_id = steps.set_index("step_id")
    assert by_id.at[first["id"], "started_at"] == pd.Timestamp("2023-05-10T16:25:00Z")
    assert by_id.at[first["id"], "attributes"]["start_recorded"] is True


def broken(tmp_path: Path, name: str, change: Any) -> Path:
    """A copy of a small sample, changed by ``change(doc)`` (or replaced by text)."""
    path = tmp_path / name
    if isinstance(change, str):
        path.write_text(change)
        return path
    doc = json.loads(sample("helloworld-chain-5-chameleon.json").read_text())
    change(doc)
    path.write_text(json.dumps(doc))
    return path


def _tasks(doc: dict[str, Any], part: str) -> list[dict[str, Any]]:
    return doc["workflow"][part]["tasks"]


@pytest.mark.parametrize(("change", "message"), [
    ("{not json", "bad.json: $: not valid JSON"),
    ("[1, 2]", "bad.json: $: expected an object, got [1, 2]"),
    (lambda d: d["workflow"]["execution"].pop("tasks"),
     "bad.json: $.workflow.execution.tasks: required but missing"),
    (lambda d: d["workflow"].pop("specification"),
     "bad.json: $.workflow.specification: required but missing"),
    (lambda d: _tasks(d, "execution")[3].update(runtimeInSeconds="abc"),
     'bad.json: $.workflow.execution.tasks[3].runtimeInSeconds: expected a number, got "abc"'),
    (lambda d: _tasks(d, "execution")[1].update(runtimeInSeconds=-2.5),
     "bad.json: $.workflow.execution.tasks[1].runtimeInSeconds: expected a number >= 0"),
    (lambda d: _tasks(d, "execution")[1].update(runtimeInSeconds=float("nan")),
     "bad.json: $.workflow.execution.tasks[1].runtimeInSeconds: expected a finite number"),
    (lambda d: _tasks(d, "execution")[0].update(avgCPU=float("inf")),
     "bad.json: $.workflow.execution.tasks[0].avgCPU: expected a finite number"),
    (lambda d: _tasks(d, "specification")[2]["parents"].append("ghost"),
     'bad.json: $.workflow.specification.tasks[2].parents[1]: unknown task "ghost"'),
    (lambda d: _tasks(d, "specification")[0]["parents"].append(_tasks(d, "specification")[4]["id"]),
     "bad.json: $.workflow.specification.tasks[1].parents: dependency cycle: cpuhog_chain_00000002"),
    (lambda d: _tasks(d, "specification")[1].update(id=_tasks(d, "specification")[0]["id"]),
     "bad.json: $.workflow.specification.tasks[1].id: duplicate task id"),
    (lambda d: _tasks(d, "execution").pop(),
     "bad.json: $.workflow.specification.tasks[4].id: task \"cpuhog_chain_00000005\" has no entry"),
    (lambda d: d.update(schemaVersion="1.3"),
     'bad.json: $.schemaVersion: unsupported version "1.3"'),
    (lambda d: d["workflow"]["execution"].update(executedAt="yesterday"),
     'bad.json: $.workflow.execution.executedAt: expected an ISO-8601 timestamp, got "yesterday"'),
], ids=["not-json", "not-object", "missing-tasks", "missing-spec", "string-runtime",
        "negative-runtime", "nan-runtime", "inf-cpu", "unknown-parent", "cycle", "duplicate-id",
        "unexecuted-task", "version", "bad-timestamp"])
def test_invalid_wfformat(tmp_path: Path, change: Any, message: str) -> None:
    with pytest.raises(ImportFormatError) as caught:
        parse_wfformat(broken(tmp_path, "bad.json", change))
    assert str(caught.value).startswith(message)
    assert caught.value.file == "bad.json"


# --- runs files -------------------------------------------------------------------------------

CSV = f"""kind,run_id,recipe,step_id,step,started_at,finished_at,status,params,depends_on,cpu_user_us
run,{RUN_ID},etl,,,2024-05-01T12:00:00Z,2024-05-01T12:00:05Z,succeeded,"{{""day"": 1}}",,1200
step,{RUN_ID},,extract,extract,2024-05-01T12:00:00Z,2024-05-01T12:00:02Z,succeeded,,,
step,{RUN_ID.upper()},,load,load,2024-05-01T14:00:02+02:00,2024-05-01T12:00:05Z,succeeded,,"[""extract""]",800
"""


def ndjson(*records: dict[str, Any]) -> str:
    return "".join(json.dumps(record) + "\n" for record in records)


RUN = {"kind": "run", "run_id": RUN_ID, "recipe": "etl", "started_at": "2024-05-01T12:00:00Z",
       "finished_at": "2024-05-01T12:00:05Z", "status": "succeeded", "params": {"day": 1}}
STEP = {"kind": "step", "run_id": RUN_ID, "step_id": "extract", "step": "extract",
        "started_at": "2024-05-01T12:00:00Z", "finished_at": "2024-05-01T12:00:02Z",
        "status": "succeeded"}


@pytest.mark.parametrize("name", ["runs.csv", "runs.ndjson", "runs.jsonl"])
def test_runs_file(tmp_path: Path, name: str) -> None:
    load = {**STEP, "step_id": "load", "step": "load", "started_at": "2024-05-01T14:00:02+02:00",
            "finished_at": "2024-05-01T12:00:05Z", "depends_on": ["extract"], "cpu_user_us": 800}
    text = CSV if name.endswith(".csv") else ndjson({**RUN, "cpu_user_us": 1200}, STEP, load)
    (tmp_path / name).write_text(text)
    runs, steps = parse_runs_file(tmp_path / name)
    check_frames(runs, steps)
    run = runs.iloc[0]
    assert (run["run_id"], run["recipe"], run["params"]) == (RUN_ID, "etl", {"day": 1})
    assert run["duration_us"] == 5_000_000
    assert run["cpu_user_us"] == 1200
    assert list(steps["run_id"]) == [RUN_ID, RUN_ID]  # canonical, whatever the spelling
    assert list(steps["ordinal"]) == [0, 1]
    assert list(steps["attempt"]) == [1, 1]
    assert steps["depends_on"].tolist() == [[], ["extract"]]
    assert steps["started_at"].iloc[1] == pd.Timestamp("2024-05-01T12:00:02Z")


BAD_RUNS_FILES = [
    ("naive.csv", CSV.replace("2024-05-01T12:00:02Z,succeeded", "2024-05-01T12:00:02,succeeded"),
     "naive.csv: line 3, field 'finished_at': timestamp without a UTC offset"),
    ("naive.ndjson", ndjson({**RUN, "started_at": "2024-05-01 12:00:00"}),
     "naive.ndjson: line 1, field 'started_at': timestamp without a UTC offset"),
    ("column.csv", CSV.replace("cpu_user_us\n", "colour\n", 1),
     "column.csv: line 1, column 'colour': unknown column"),
    ("key.ndjson", ndjson(RUN, {**STEP, "colour": "red"}),
     "key.ndjson: line 2, field 'colour': unknown field"),
    ("other-kind.ndjson", ndjson(RUN, {**STEP, "recipe": "etl"}),
     "other-kind.ndjson: line 2, field 'recipe': not a step field"),
    ("required.ndjson", ndjson({k: v for k, v in RUN.items() if k != "status"}),
     "required.ndjson: line 1, field 'status': required"),
    ("status.ndjson", ndjson({**RUN, "status": "done"}),
     "status.ndjson: line 1, field 'status': expected one of"),
    ("kind.ndjson", ndjson({**RUN, "kind": "job"}),
     "kind.ndjson: line 1, field 'kind': expected 'run' or 'step'"),
    ("json.csv", CSV.replace('"{""day"": 1}"', '"{day: 1}"'),
     "json.csv: line 2, field 'params': not valid JSON text"),
    ("int.csv", CSV.replace(",1200\n", ",lots\n"),
     "int.csv: line 2, field 'cpu_user_us': expected an integer"),
    ("uuid.ndjson", ndjson({**RUN, "run_id": "run-1"}),
     "uuid.ndjson: line 1, field 'run_id': expected a UUID"),
    ("orphan.ndjson", ndjson(RUN, {**STEP, "run_id": str(uuid.uuid4())}),
     "orphan.ndjson: line 2, field 'run_id': no kind=run record"),
    ("duplicate.ndjson", ndjson(RUN, STEP, STEP),
     "duplicate.ndjson: line 3, field 'step_id': duplicate step 'extract'"),
    ("unknown-dep.ndjson", ndjson(RUN, {**STEP, "depends_on": ["ghost"]}),
     "unknown-dep.ndjson: line 2, field 'depends_on': unknown step_id 'ghost'"),
    ("cycle.ndjson", ndjson(RUN, {**STEP, "depends_on": ["load"]},
                            {**STEP, "step_id": "load", "depends_on": ["extract"]}),
     "cycle.ndjson: line 3, field 'depends_on': dependency cycle: load -> extract -> load"),
    ("backwards.ndjson", ndjson({**RUN, "finished_at": "2024-05-01T11:00:00Z"}),
     "backwards.ndjson: line 1, field 'finished_at': earlier than started_at"),
    ("negative.ndjson", ndjson({**RUN, "read_bytes": -1}),
     "negative.ndjson: line 1, field 'read_bytes': must not be negative"),
    ("broken.ndjson", '{"kind": "run"\n', "broken.ndjson: line 1: not valid JSON"),
    ("runs.txt", "", "runs.txt: file name: unknown extension '.txt'"),
]


@pytest.mark.parametrize(("name", "text", "message"), BAD_RUNS_FILES,
                         ids=[case[0] for case in BAD_RUNS_FILES])
def test_invalid_runs_file(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(ImportFormatError) as caught:
        parse_runs_file(tmp_path / name)
    assert str(caught.value).startswith(message)


def test_empty_runs_file_gives_empty_typed_frames(tmp_path: Path) -> None:
    (tmp_path / "empty.ndjson").write_text("\n")
    runs, steps = parse_runs_file(tmp_path / "empty.ndjson")
    assert runs.empty and steps.empty
    check_frames(runs, steps)


def test_csv_line_numbers_count_multiline_cells(tmp_path: Path) -> None:
    # the run's params cell spans lines 2-3, so the "load" step starts on line 5
    text = CSV.replace('"{""day"": 1}"', '"{""day"":\n 1}"')
    text = text.replace("2024-05-01T14:00:02+02:00", "2024-05-01T14:00:02")
    (tmp_path / "multi.csv").write_text(text)
    with pytest.raises(ImportFormatError, match=r"multi\.csv: line 5, field 'started_at'"):
        parse_runs_file(tmp_path / "multi.csv")
