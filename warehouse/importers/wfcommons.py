"""WfCommons WfFormat execution instances (schema 1.4 and 1.5) -> ``runs`` and ``steps``.

One file is one run, each task one step. 1.5 splits tasks into ``workflow.specification``
(DAG) and ``workflow.execution`` (measurements), joined by task id; 1.4 keeps both in
``workflow.tasks`` and refers to parents by name. WfFormat has durations but no task start
times, so starts are derived from the DAG. Rules: docs/importers.md. Pure parsing, no database.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pandas as pd

from warehouse.config import MAX_NAME_LENGTH
from warehouse.importers.runs_file import (
    ImportFormatError,
    build_frames,
    topological_order,
)
from warehouse.importers.runs_file import show_value as _show
from warehouse.timeparse import epoch_us

#: uuid5 namespace of imported WfFormat runs, itself
#: uuid5(NAMESPACE_URL, "urn:recipe-analytics-warehouse:importers:wfformat").
#: Changing it would give every re-imported file a new run id.
WFFORMAT_NAMESPACE = uuid.UUID("b7972df4-25a6-55f6-9afe-20465d9ffbe7")
SUPPORTED_VERSIONS = ("1.4", "1.5")
#: Longest time a trace may hold: 10,000 years in seconds (the warehouse's whole range).
_MAX_SECONDS = 10_000 * 366 * 86_400.0
_PROGRAM_LIMIT = 200  # Nextflow puts whole scripts in command.program; keep attributes small
# Pegasus 5.0 writes executedAt as MM-DD-YYTHH:MM:SS[Z] (e.g. 05-10-23T16:23:32Z = 2023-05-10).
_MONTH_DAY_YEAR = re.compile(r"(\d{2})-(\d{2})-(\d{2})T(\d{2}:\d{2}:\d{2}(?:\.\d+)?)(.*)")
# Trailing "-"-separated tokens of an instance name that identify the instance, not the
# workflow: counters ("-0"), epoch seconds ("-1683736566"), compact timestamps ("-20200401T035039Z").
_INSTANCE_TOKEN = re.compile(r"\d+|\d{8}T\d{6}Z?")


@dataclass
class _Task:
    step_id: str
    step: str
    path: str               # JSON path of the object holding parents/children
    parents: list[str]
    children: list[str]
    runtime_s: float = 0.0
    started_us: int | None = None   # recorded start, when the task has its own executedAt
    machines: list[str] = field(default_factory=list)
    avg_cpu: float | None = None
    memory: float | None = None
    read: float | None = None
    written: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Instance:
    executed_at: Any
    executed_path: str
    makespan_s: float
    machines: list[str]
    tasks: list[_Task]
    refs: dict[str, str]    # how parents/children refer to tasks -> step_id
    attributes: dict[str, Any]


def parse_wfformat(path: str | os.PathLike[str], *,
                   recipe: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse one WfFormat 1.4/1.5 execution instance into ``(runs, steps)`` DataFrames.

    One run row, one step row per task, columns as in docs/data-model.md. ``recipe``
    overrides the recipe name (default: ``recipe_from_instance_name(name)``). run_id is
    uuid5 of name, executedAt and the sha256 of the canonical JSON: same content, same id.
    started_at = executedAt (no offset: UTC, flagged ``executed_at_assumed_utc``); a step
    starts when its last parent ends (roots at run start) unless it has its own executedAt;
    finished_at = max(started_at + makespan, last step end).
    CPU time: ``cpu_user_us = round(avgCPU / 100 * runtimeInSeconds * 1e6)`` - avgCPU is the
    mean utilisation in percent of one core (above 100 on multi-core tasks), so this is the
    task's CPU seconds; WfFormat does not split user from system, so cpu_system_us is null.

    Raises ImportFormatError ``"<file>: <JSON path>: <problem>"``.
    """
    file = Path(path)
    chk = _Checker(file.name)
    try:
        doc = json.loads(file.read_bytes())
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError for
        # non-text bytes, RecursionError for nesting deeper than the parser's stack
        chk.fail("$", f"not valid JSON: {exc}")
    root = chk.object(doc, "$")
    name = chk.text(chk.get(root, "name", "$"), "$.name")
    version = chk.text(chk.get(root, "schemaVersion", "$"), "$.schemaVersion")
    if version not in SUPPORTED_VERSIONS:
        chk.fail("$.schemaVersion", f"unsupported version {_show(version)} "
                                    f"(supported: {', '.join(SUPPORTED_VERSIONS)})")
    inst = _read_v15(chk, root) if version == "1.5" else _read_v14(chk, root)
    recipe = recipe if recipe is not None else recipe_from_instance_name(name)
    if not 1 <= len(recipe) <= MAX_NAME_LENGTH:
        chk.fail("$.name", f"recipe name must be 1 to {MAX_NAME_LENGTH} characters long, "
                           f"got {len(recipe)} (pass recipe=...)")

    run_start, assumed_utc = _timestamp(chk, inst.executed_at, inst.executed_path)
    # Hash the parsed document, not the bytes, so re-indenting a file keeps its run id.
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    run_id = str(uuid.uuid5(WFFORMAT_NAMESPACE, f"{name}\n{inst.executed_at}\n{digest}"))
    tasks = inst.tasks
    parents = _resolve(chk, tasks, inst.refs)
    starts, ends = _schedule(chk, tasks, parents, run_start)
    makespan_end = run_start + _us(inst.makespan_s)
    run_end = max(makespan_end, *ends)
    recorded = sum(task.started_us is not None for task in tasks)
    step_starts = ("recorded" if recorded == len(tasks)
                   else "derived_from_dag" if recorded == 0 else "mixed")

    machines = sorted(set(inst.machines).union(*(task.machines for task in tasks)))
    run_host = machines[0] if len(machines) == 1 else None
    order = sorted(range(len(tasks)), key=lambda i: (starts[i], tasks[i].step_id))
    ordinal = {i: position for position, i in enumerate(order)}
    steps: list[dict[str, Any]] = []
    for i, task in enumerate(tasks):
        attributes = dict(task.attributes)
        if step_starts == "mixed":
            attributes["start_recorded"] = task.started_us is not None
        if len(task.machines) > 1:
            attributes["machines"] = task.machines
        host = task.machines[0] if len(task.machines) == 1 else None
        if not task.machines:
            host = run_host  # e.g. Nextflow traces: no per-task machine, one declared machine
        cpu = None if task.avg_cpu is None else _us(task.avg_cpu / 100 * task.runtime_s)
        steps.append({
            "run_id": run_id, "step_id": task.step_id, "parent_step_id": None,
            "step": task.step, "ordinal": ordinal[i], "attempt": 1,
            "started_at": starts[i], "finished_at": ends[i], "duration_us": ends[i] - starts[i],
            "status": "succeeded", "host": host,
            "depends_on": [tasks[p].step_id for p in parents[i]], "attributes": attributes,
            "cpu_user_us": cpu, "cpu_system_us": None, "peak_rss_bytes": _int(task.memory),
            "read_bytes": _int(task.read), "written_bytes": _int(task.written),
        })

    attributes = {"source": "wfcommons", "source_file": file.name, "source_sha256": digest,
                  "schema_version": version, "instance_name": name, **inst.attributes,
                  "executed_at": inst.executed_at, "makespan_s": inst.makespan_s,
                  "machines": machines, "task_count": len(tasks), "step_starts": step_starts,
                  "finished_at_from": "makespan" if run_end == makespan_end else "last_step_end"}
    if assumed_utc:
        attributes["executed_at_assumed_utc"] = True
    run = {"run_id": run_id, "recipe": recipe, "started_at": run_start, "finished_at": run_end,
           "duration_us": run_end - run_start, "status": "succeeded", "host": run_host,
           "params": {}, "attributes": attributes, "last_seen_at": None}
    # Run totals: CPU and bytes add up over steps; the peak is the largest single task's
    # (WfFormat gives no memory timeline, so concurrent tasks cannot be summed honestly).
    for column, total in (("cpu_user_us", sum), ("read_bytes", sum), ("written_bytes", sum),
                          ("peak_rss_bytes", max)):
        values = [step[column] for step in steps if step[column] is not None]
        run[column] = total(values) if values else None
    return build_frames([run], steps)


# Pegasus and Makeflow name each task after its program plus an instance id
# ("bwa_ID000003", "individuals_ID0000001"); the step is the program part.
_TASK_INSTANCE_SUFFIX = re.compile(r"_(ID)?\d+$")


def step_name(task_name: str) -> str:
    """The step a task is an execution of: its name without a trailing ``_ID000123``, so
    that step statistics group the executions of one program."""
    stripped = _TASK_INSTANCE_SUFFIX.sub("", task_name)
    return stripped or task_name


def recipe_from_instance_name(name: str) -> str:
    """The recipe name for a WfFormat instance name: drop a ``.json`` ending, then trailing
    ``-``-separated counters, epoch seconds and compact timestamps (never the first token)."""
    base = name[:-5] if name.lower().endswith(".json") else name
    tokens = base.split("-")
    while len(tokens) > 1 and _INSTANCE_TOKEN.fullmatch(tokens[-1]):
        tokens.pop()
    return "-".join(tokens).strip() or name


def _read_v15(chk: _Checker, root: dict[str, Any]) -> _Instance:
    wf = chk.object(chk.get(root, "workflow", "$"), "$.workflow")
    spec = chk.object(chk.get(wf, "specification", "$.workflow"), "$.workflow.specification")
    if wf.get("execution") is None:
        chk.fail("$.workflow.execution", "required but missing (a specification without an "
                                         "execution is not a run)")
    ex, ex_path, spec_path = wf["execution"], "$.workflow.execution", "$.workflow.specification"
    ex_tasks = chk.array(chk.get(chk.object(ex, ex_path), "tasks", ex_path), f"{ex_path}.tasks",
                         nonempty=True)
    spec_tasks = chk.array(chk.get(spec, "tasks", spec_path), f"{spec_path}.tasks", nonempty=True)
    records = _index(chk, ex_tasks, f"{ex_path}.tasks", "id")
    tasks: list[_Task] = []
    for task_id, i in _index(chk, spec_tasks, f"{spec_path}.tasks", "id").items():
        path, item = f"{spec_path}.tasks[{i}]", spec_tasks[i]
        if task_id not in records:
            chk.fail(f"{path}.id", f"task {_show(task_id)} has no entry in {ex_path}.tasks")
        name = chk.text(chk.get(item, "name", path), f"{path}.name")
        category = chk.opt_text(item, "category", path)
        task = _Task(step_id=task_id, step=category or step_name(name), path=path,
                     parents=chk.texts(chk.get(item, "parents", path), f"{path}.parents"),
                     children=chk.texts(chk.get(item, "children", path), f"{path}.children"))
        if category:
            task.attributes["task_name"] = name
        for key, attr in (("inputFiles", "input_files"), ("outputFiles", "output_files")):
            if item.get(key) is not None:
                task.attributes[attr] = len(chk.texts(item[key], f"{path}.{key}"))
        j = records.pop(task_id)
        _read_execution(chk, ex_tasks[j], f"{ex_path}.tasks[{j}]", task, cores="coreCount",
                        energy="energyInKWh", power="avgPowerInW", runtime_required=True)
        tasks.append(task)
    for task_id, j in records.items():  # left over: executed but not specified
        chk.fail(f"{ex_path}.tasks[{j}].id", f"task {_show(task_id)} is not in {spec_path}.tasks")
    return _Instance(
        executed_at=chk.get(ex, "executedAt", ex_path), executed_path=f"{ex_path}.executedAt",
        makespan_s=chk.number(chk.get(ex, "makespanInSeconds", ex_path),
                              f"{ex_path}.makespanInSeconds", maximum=_MAX_SECONDS),
        machines=_machines(chk, ex.get("machines"), f"{ex_path}.machines"), tasks=tasks,
        refs={task.step_id: task.step_id for task in tasks},
        attributes=_metadata(chk, root, "runtimeSystem", wf))


def _read_v14(chk: _Checker, root: dict[str, Any]) -> _Instance:
    wf = chk.object(chk.get(root, "workflow", "$"), "$.workflow")
    items = chk.array(chk.get(wf, "tasks", "$.workflow"), "$.workflow.tasks", nonempty=True)
    tasks: list[_Task] = []
    ids: dict[str, list[str]] = {}
    # 1.4 tasks refer to each other by name (the id is optional), so the name is the step_id.
    for name, i in _index(chk, items, "$.workflow.tasks", "name").items():
        path, item = f"$.workflow.tasks[{i}]", items[i]
        category = chk.opt_text(item, "category", path)
        task = _Task(step_id=name, step=category or step_name(name), path=path,
                     parents=chk.texts(item.get("parents") or [], f"{path}.parents"),
                     children=chk.texts(item.get("children") or [], f"{path}.children"))
        task.attributes["type"] = chk.text(chk.get(item, "type", path), f"{path}.type")
        if category:
            task.attributes["task_name"] = name
        if task_id := chk.opt_text(item, "id", path):
            task.attributes["task_id"] = task_id
            ids.setdefault(task_id, []).append(name)
        links = [str(chk.object(f, f"{path}.files[{k}]").get("link", "")).lower()
                 for k, f in enumerate(chk.array(item.get("files") or [], f"{path}.files"))]
        if links:
            task.attributes["input_files"] = links.count("input")
            task.attributes["output_files"] = len(links) - links.count("input")
        _read_execution(chk, item, path, task, cores="cores", energy="energy",
                        power="avgPower", runtime_required=False)
        tasks.append(task)
    refs = {task.step_id: task.step_id for task in tasks}
    for task_id, names in ids.items():  # an id is a usable reference only if unambiguous
        if len(names) == 1:
            refs.setdefault(task_id, names[0])
    return _Instance(
        executed_at=chk.get(wf, "executedAt", "$.workflow"), executed_path="$.workflow.executedAt",
        makespan_s=chk.number(chk.get(wf, "makespanInSeconds", "$.workflow"),
                              "$.workflow.makespanInSeconds", maximum=_MAX_SECONDS),
        machines=_machines(chk, wf.get("machines"), "$.workflow.machines"), tasks=tasks,
        refs=refs, attributes=_metadata(chk, root, "wms", wf))


def _index(chk: _Checker, items: list[Any], path: str, key: str) -> dict[str, int]:
    """Map each item's ``key`` (a non-empty string, unique) to the item's position."""
    positions: dict[str, int] = {}
    for i, item in enumerate(items):
        value = chk.text(chk.get(chk.object(item, f"{path}[{i}]"), key, f"{path}[{i}]"),
                         f"{path}[{i}].{key}")
        if value in positions:
            chk.fail(f"{path}[{i}].{key}", f"duplicate task {key} {_show(value)} "
                                           f"(also at [{positions[value]}])")
        if len(value) > MAX_NAME_LENGTH:
            chk.fail(f"{path}[{i}].{key}", f"longer than {MAX_NAME_LENGTH} characters")
        positions[value] = i
    return positions


def _read_execution(chk: _Checker, item: Any, path: str, task: _Task, *, cores: str,
                    energy: str, power: str, runtime_required: bool) -> None:
    """Read a task's measurements (key names differ between 1.4 and 1.5)."""
    item = chk.object(item, path)

    def number(key: str, minimum: float | None = 0.0) -> float | None:
        value = item.get(key)
        return None if value is None else chk.number(value, f"{path}.{key}", minimum=minimum)

    if item.get("runtimeInSeconds") is None and not runtime_required:
        task.attributes["runtime_missing"] = True  # optional in 1.4: schedule it as 0 s
    else:
        task.runtime_s = chk.number(chk.get(item, "runtimeInSeconds", path),
                                    f"{path}.runtimeInSeconds", maximum=_MAX_SECONDS)
    task.avg_cpu, task.memory = number("avgCPU"), number("memoryInBytes")
    task.read, task.written = number("readBytes"), number("writtenBytes")
    for attr, key, minimum in (("core_count", cores, 0.0), ("avg_cpu_percent", "avgCPU", 0.0),
                               ("energy_kwh", energy, 0.0), ("avg_power_w", power, 0.0),
                               ("priority", "priority", None)):
        value = number(key, minimum)
        if value is not None:
            task.attributes[attr] = value
    if item.get("machines") is not None:      # what the 1.5 samples write
        task.machines = list(dict.fromkeys(chk.texts(item["machines"], f"{path}.machines")))
    elif item.get("machine") is not None:     # what the 1.4 and 1.5 schemas say
        task.machines = [chk.text(item["machine"], f"{path}.machine")]
    if item.get("command") is not None:
        program = chk.object(item["command"], f"{path}.command").get("program")
        if isinstance(program, str) and program.strip():
            program = program.strip()
            task.attributes["program"] = (program if len(program) <= _PROGRAM_LIMIT
                                          else program[: _PROGRAM_LIMIT - 1] + "…")
    if item.get("executedAt") is not None:
        task.started_us, assumed = _timestamp(chk, item["executedAt"], f"{path}.executedAt")
        if assumed:
            task.attributes["executed_at_assumed_utc"] = True
    if len(task.step) > MAX_NAME_LENGTH:
        chk.fail(task.path, f"step name longer than {MAX_NAME_LENGTH} characters")


def _metadata(chk: _Checker, root: dict[str, Any], system_key: str,
              wf: dict[str, Any]) -> dict[str, Any]:
    """Run attributes from the descriptive fields (1.4 calls the runtime system ``wms``)."""
    attributes: dict[str, Any] = {}
    for key, attr in ((system_key, "runtime_system"), ("author", "author")):
        if root.get(key) is not None:  # name/version/url, name/email/institution/country
            obj = chk.object(root[key], f"$.{key}")
            attributes[attr] = {k: v for k, v in obj.items() if isinstance(v, str)}
    if "name" in attributes.get("runtime_system", {}):
        attributes["wms"] = attributes["runtime_system"]["name"]
    for key, attr in (("createdAt", "created_at"), ("description", "description")):
        if isinstance(root.get(key), str):
            attributes[attr] = root[key]
    for key, attr in (("repo", "workflow_repo"), ("runName", "workflow_run_name")):
        if isinstance(wf.get(key), str):   # written by the Nextflow tracer
            attributes[attr] = wf[key]
    return attributes


def _machines(chk: _Checker, value: Any, path: str) -> list[str]:
    if value is None:
        return []
    return [chk.text(chk.get(chk.object(m, f"{path}[{k}]"), "nodeName", f"{path}[{k}]"),
                     f"{path}[{k}].nodeName") for k, m in enumerate(chk.array(value, path))]


def _resolve(chk: _Checker, tasks: list[_Task], refs: dict[str, str]) -> list[list[int]]:
    """Each task's parents as task indices: its own ``parents`` first, then any task that
    names it among its ``children`` (older files declare an edge on one end only)."""
    index = {task.step_id: i for i, task in enumerate(tasks)}
    parents: list[list[int]] = [[] for _ in tasks]
    for key in ("parents", "children"):
        for i, task in enumerate(tasks):
            for k, ref in enumerate(getattr(task, key)):
                if ref not in refs:
                    chk.fail(f"{task.path}.{key}[{k}]", f"unknown task {_show(ref)}")
                parent, child = (index[refs[ref]], i) if key == "parents" else (i, index[refs[ref]])
                if parent not in parents[child]:
                    parents[child].append(parent)
    return parents


def _schedule(chk: _Checker, tasks: list[_Task], parents: list[list[int]],
              run_start: int) -> tuple[list[int], list[int]]:
    """Start and end (µs since epoch) of every task; a dependency cycle is an error."""
    order, cycle = topological_order(parents)
    if cycle:
        names = " -> ".join(tasks[i].step_id for i in [*cycle, cycle[0]])
        chk.fail(f"{tasks[cycle[0]].path}.parents", f"dependency cycle: {names}")
    starts, ends = [0] * len(tasks), [0] * len(tasks)
    for i in order:
        recorded = tasks[i].started_us
        starts[i] = (recorded if recorded is not None
                     else max([run_start, *(ends[p] for p in parents[i])]))
        ends[i] = starts[i] + _us(tasks[i].runtime_s)
    return starts, ends


def _timestamp(chk: _Checker, value: Any, path: str) -> tuple[int, bool]:
    """Parse a WfFormat timestamp -> (µs since epoch, whether UTC was assumed).

    Accepts ISO 8601 (extended or basic, e.g. ``20200401T035043+0000``) and Pegasus 5.0's
    ``MM-DD-YYTHH:MM:SSZ``. Without an offset the time is taken as UTC.
    """
    text = chk.text(value, path).strip()
    match = _MONTH_DAY_YEAR.fullmatch(text)
    if match:
        month, day, year, clock, zone = match.groups()
        text = f"20{year}-{month}-{day}T{clock}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        chk.fail(path, f"expected an ISO-8601 timestamp, got {_show(value)}")
    assumed = moment.utcoffset() is None
    if assumed:
        moment = moment.replace(tzinfo=UTC)
    return epoch_us(moment), assumed


class _Checker:
    """Typed access to parsed JSON that fails with the file name and the JSON path."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, path: str, problem: str) -> NoReturn:
        raise ImportFormatError(self.file, path, problem, json_path=path)

    def get(self, obj: dict[str, Any], key: str, path: str) -> Any:
        if obj.get(key) is None:
            # keys asked for are identifiers, so "path.key" is a valid JSON path
            self.fail(f"{path}.{key}", "required but missing" if key not in obj
                      else "required, got null")
        return obj[key]

    def object(self, value: Any, path: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(path, f"expected an object, got {_show(value)}")
        return value

    def array(self, value: Any, path: str, *, nonempty: bool = False) -> list[Any]:
        if not isinstance(value, list):
            self.fail(path, f"expected an array, got {_show(value)}")
        if nonempty and not value:
            self.fail(path, "expected at least one item, got []")
        return value

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"expected a non-empty string, got {_show(value)}")
        return value

    def opt_text(self, obj: dict[str, Any], key: str, path: str) -> str | None:
        return None if obj.get(key) is None else self.text(obj[key], f"{path}.{key}")

    def texts(self, value: Any, path: str) -> list[str]:
        return [self.text(item, f"{path}[{k}]") for k, item in enumerate(self.array(value, path))]

    def number(self, value: Any, path: str, *, minimum: float | None = 0.0,
               maximum: float = 2.0**62) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.fail(path, f"expected a number, got {_show(value)}")
        if not math.isfinite(value):
            self.fail(path, f"expected a finite number, got {_show(value)}")
        if minimum is not None and value < minimum:
            self.fail(path, f"expected a number >= {minimum:g}, got {_show(value)}")
        if abs(value) > maximum:
            # Byte counts become 64-bit integers and seconds microseconds: past this they
            # overflow deep in the frame builder instead of naming the field.
            self.fail(path, f"expected a number at most {maximum:.3g}, got {_show(value)}")
        return value


def _us(seconds: float) -> int:
    return round(seconds * 1_000_000)


def _int(value: float | None) -> int | None:
    return None if value is None else round(value)
