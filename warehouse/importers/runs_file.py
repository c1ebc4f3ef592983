"""Generic runs file (CSV or NDJSON) importer, and the frame contract every importer shares.

A runs file holds records of two kinds, told apart by a ``kind`` field: ``run`` records carry
``runs`` columns, ``step`` records carry ``step_runs`` columns (docs/data-model.md). The
format is documented in docs/importers.md. Parsing is pure: no database is touched; the
ingest layer validates further and writes.

The frame contract (``RUN_COLUMNS``, ``STEP_COLUMNS``, ``build_frames``) lives here because a
runs file *is* the data model written out; other importers map their format onto it.
"""

from __future__ import annotations

import csv
import json
import math
import os
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from warehouse.config import MAX_ERROR_MESSAGE_LENGTH, MAX_NAME_LENGTH
from warehouse.errors import WarehouseError
from warehouse.model import STATUSES
from warehouse.timeparse import epoch_us


class ImportFormatError(WarehouseError, ValueError):
    """An input file an importer cannot read. Nothing of the file is returned.

    The message is ``"<file name>: <where>: <problem>"``, where *where* is a JSON path
    (``$.workflow.execution.tasks[3].runtimeInSeconds``) or a line and field
    (``line 3, field 'started_at'``). The parts are also kept as attributes.
    """

    def __init__(self, file: str, where: str, problem: str, *, line: int | None = None,
                 field: str | None = None, json_path: str | None = None) -> None:
        self.file = file
        self.where = where
        self.problem = problem
        self.line = line
        self.field = field
        self.json_path = json_path
        super().__init__(f"{file}: {where}: {problem}")


# ---------------------------------------------------------------------------------------------
# Frame contract. Column order follows docs/data-model.md. Kinds of column, and the dtype each
# becomes: text -> str, uuid -> str (canonical), ts -> datetime64[us, UTC], int -> Int64,
# object -> Python dict, list -> Python list of str.
TEXT, UUID, TS, INT, OBJECT, LIST = "text", "uuid", "ts", "int", "object", "list"

_RESOURCES = {"cpu_user_us": INT, "cpu_system_us": INT, "peak_rss_bytes": INT,
              "read_bytes": INT, "written_bytes": INT}

RUN_COLUMNS: dict[str, str] = {
    "run_id": UUID, "recipe": TEXT, "started_at": TS, "finished_at": TS, "duration_us": INT,
    "status": TEXT, "error_type": TEXT, "error_message": TEXT, "host": TEXT,
    "params": OBJECT, "attributes": OBJECT, **_RESOURCES, "last_seen_at": TS,
}
STEP_COLUMNS: dict[str, str] = {
    "run_id": UUID, "step_id": TEXT, "parent_step_id": TEXT, "step": TEXT, "ordinal": INT,
    "attempt": INT, "started_at": TS, "finished_at": TS, "duration_us": INT, "status": TEXT,
    "error_type": TEXT, "error_message": TEXT, "host": TEXT, "depends_on": LIST,
    "attributes": OBJECT, **_RESOURCES,
}

# pandas 3 has a real string dtype ("str", missing = NaN); before 3, "str" would turn None
# into the text "None", so older pandas keeps text as object columns.
_TEXT_DTYPE = "str" if int(pd.__version__.split(".")[0]) >= 3 else "object"


def build_frames(runs: list[dict[str, Any]],
                 steps: list[dict[str, Any]]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Turn run and step records into the typed ``runs`` and ``steps`` DataFrames.

    Records hold timestamps as integer microseconds since the epoch (exact, no float
    rounding), integers as ``int``, text as ``str``, missing values as ``None`` or absent.
    """
    return _frame(runs, RUN_COLUMNS), _frame(steps, STEP_COLUMNS)


def _frame(records: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for name, kind in columns.items():
        values = [record.get(name) for record in records]
        if kind == TS:
            data[name] = pd.Series(pd.to_datetime(pd.array(values, dtype="Int64"), unit="us",
                                                  utc=True)).astype("datetime64[us, UTC]")
        elif kind == INT:
            data[name] = pd.Series(pd.array(values, dtype="Int64"))
        elif kind in (OBJECT, LIST):
            data[name] = pd.Series(values, dtype=object)
        else:
            data[name] = pd.Series(values, dtype=object).astype(_TEXT_DTYPE)
    return pd.DataFrame(data, columns=list(columns))


def topological_order(parents: list[list[int]]) -> tuple[list[int], list[int]]:
    """Order the nodes of a graph, given as each node's parent indices, parents first (Kahn).

    Returns ``(order, cycle)``: ``cycle`` is empty for a DAG, else one cycle of node indices,
    each a parent of the next and the last a parent of the first.
    """
    children: list[list[int]] = [[] for _ in parents]
    pending = [len(p) for p in parents]
    for child, ps in enumerate(parents):
        for parent in ps:
            children[parent].append(child)
    ready = deque(i for i, count in enumerate(pending) if count == 0)
    order: list[int] = []
    while ready:
        node = ready.popleft()
        order.append(node)
        for child in children[node]:
            pending[child] -= 1
            if pending[child] == 0:
                ready.append(child)
    if len(order) == len(parents):
        return order, []
    # Every node left over has a left-over parent, so walking up parents from one of them
    # must come back to a node already walked: that loop is a cycle.
    stuck = {i for i, count in enumerate(pending) if count > 0}
    position: dict[int, int] = {}
    walk: list[int] = []
    node = min(stuck)
    while node not in position:
        position[node] = len(walk)
        walk.append(node)
        node = next(p for p in parents[node] if p in stuck)
    return order, walk[position[node]:][::-1]


# ---------------------------------------------------------------------------------------------
# Runs file.
RUN_REQUIRED = ("run_id", "recipe", "started_at", "status")
STEP_REQUIRED = ("run_id", "step_id", "step", "started_at", "status")
_NAMES = ("recipe", "step", "step_id", "parent_step_id")  # 1..MAX_NAME_LENGTH characters
_COUNTERS = ("duration_us", "ordinal", "cpu_user_us", "cpu_system_us", "peak_rss_bytes",
             "read_bytes", "written_bytes")              # never negative
_KINDS = {"run": RUN_COLUMNS, "step": STEP_COLUMNS}


def parse_runs_file(path: str | os.PathLike[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Parse a generic runs file into ``(runs, steps)`` DataFrames (columns: ``RUN_COLUMNS``,
    ``STEP_COLUMNS``).

    The format is chosen by extension: ``.csv``, or ``.ndjson``/``.jsonl`` (one JSON object a
    line). Every record has ``kind`` = ``run`` or ``step``. Required: for runs ``run_id,
    recipe, started_at, status``; for steps ``run_id, step_id, step, started_at, status``.
    Timestamps are ISO-8601 with a UTC offset (naive ones are rejected). In CSV an empty cell
    is missing and ``params``/``attributes``/``depends_on`` are JSON text. Defaults: params
    and attributes ``{}``, depends_on ``[]``, attempt 1, duration_us = finished - started,
    ordinals by (started_at, step_id) when no step of the run gives one.

    Raises ImportFormatError naming the file, line and field of the first problem: unknown
    column or key, a field of the other kind, bad value, duplicate id, a step whose run or
    dependency is not in the file.
    """
    file = Path(path)
    suffix = file.suffix.lower()
    if suffix == ".csv":
        records = _read_csv(file)
    elif suffix in (".ndjson", ".jsonl"):
        records = _read_ndjson(file)
    else:
        raise ImportFormatError(file.name, "file name",
                                f"unknown extension {suffix!r}: expected .csv, .ndjson or .jsonl")
    runs: list[dict[str, Any]] = []
    steps: list[dict[str, Any]] = []
    lines: dict[int, int] = {}  # id(record) -> line, for errors found after conversion
    for line, raw, from_text in records:
        record = _convert(file.name, line, raw, from_text)
        lines[id(record)] = line
        (runs if raw["kind"] == "run" else steps).append(record)
    _check_references(file.name, runs, steps, lines)
    _derive(steps)
    return build_frames(runs, steps)


def _read_csv(file: Path) -> Iterator[tuple[int, dict[str, Any], bool]]:
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, strict=True)
            header = [name.strip() for name in next(reader, [])]
            if not header:
                raise ImportFormatError(file.name, "line 1", "empty file: expected a header row",
                                        line=1)
            for name in header:
                if name != "kind" and name not in RUN_COLUMNS and name not in STEP_COLUMNS:
                    raise ImportFormatError(file.name, f"line 1, column {name!r}",
                                            "unknown column", line=1, field=name)
                if header.count(name) > 1:
                    raise ImportFormatError(file.name, f"line 1, column {name!r}",
                                            "duplicate column", line=1, field=name)
            if "kind" not in header:
                raise ImportFormatError(file.name, "line 1", "missing the 'kind' column", line=1)
            start = reader.line_num + 1
            for row in reader:
                # csv counts physical lines: a quoted cell may span several, so a record
                # starts on the line after the previous record ended.
                line, start = start, reader.line_num + 1
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise ImportFormatError(file.name, f"line {line}",
                                            f"expected {len(header)} fields, got {len(row)}",
                                            line=line)
                # An empty (or blank) cell is a missing value: CSV cannot tell "" from null.
                yield line, {k: v for k, v in zip(header, row, strict=True) if v.strip()}, True
    except csv.Error as exc:
        raise ImportFormatError(file.name, f"line {reader.line_num}", f"not valid CSV: {exc}",
                                line=reader.line_num) from exc
    except UnicodeDecodeError as exc:
        raise ImportFormatError(file.name, "file", f"not UTF-8 text: {exc}") from exc


def _read_ndjson(file: Path) -> Iterator[tuple[int, dict[str, Any], bool]]:
    try:
        text = file.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportFormatError(file.name, "file", f"not UTF-8 text: {exc}") from exc
    # split on "\n" only: splitlines() would also break inside strings holding U+2028 etc.
    for line, source in enumerate(text.split("\n"), start=1):
        if not source.strip():
            continue
        try:
            value = json.loads(source)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(file.name, f"line {line}",
                                    f"not valid JSON: {exc.msg} (column {exc.colno})",
                                    line=line) from exc
        except RecursionError as exc:  # nesting deeper than the parser's stack
            raise ImportFormatError(file.name, f"line {line}", "not valid JSON: nested too "
                                    "deeply", line=line) from exc
        if not isinstance(value, dict):
            raise ImportFormatError(file.name, f"line {line}",
                                    f"expected a JSON object, got {show_value(value)}", line=line)
        for key in value:
            if key != "kind" and key not in RUN_COLUMNS and key not in STEP_COLUMNS:
                raise ImportFormatError(file.name, f"line {line}, field {key!r}",
                                        "unknown field", line=line, field=key)
        yield line, {k: v for k, v in value.items() if v is not None}, False


def _convert(file: str, line: int, raw: dict[str, Any], from_text: bool) -> dict[str, Any]:
    """Check and convert one record's fields to their internal types (see build_frames)."""

    def fail(field: str, problem: str) -> ImportFormatError:
        return ImportFormatError(file, f"line {line}, field {field!r}", problem,
                                 line=line, field=field)

    kind = raw.get("kind")
    if kind not in _KINDS:
        raise fail("kind", f"expected 'run' or 'step', got {show_value(kind)}")
    columns = _KINDS[kind]
    record: dict[str, Any] = {}
    for field, value in raw.items():
        if field == "kind":
            continue
        if field not in columns:
            raise fail(field, f"not a {kind} field (leave it empty on kind={kind} records)")
        try:
            record[field] = _value(columns[field], value, from_text)
        except (TypeError, ValueError) as exc:
            raise fail(field, str(exc)) from None
    for field in RUN_REQUIRED if kind == "run" else STEP_REQUIRED:
        if field not in record:
            raise fail(field, f"required for kind={kind} records")
    if record["status"] not in STATUSES:
        raise fail("status", f"expected one of {', '.join(STATUSES)}, got {show_value(raw['status'])}")
    for field in _NAMES:
        if field in record and not 1 <= len(record[field]) <= MAX_NAME_LENGTH:
            raise fail(field, f"must be 1 to {MAX_NAME_LENGTH} characters long")
    if len(record.get("error_message") or "") > MAX_ERROR_MESSAGE_LENGTH:
        raise fail("error_message", f"longer than {MAX_ERROR_MESSAGE_LENGTH} characters")
    for field in _COUNTERS:
        if (record.get(field) or 0) < 0:
            raise fail(field, f"must not be negative, got {record[field]}")
    if (record.get("attempt") or 1) < 1:
        raise fail("attempt", f"must be 1 or more, got {record['attempt']}")
    if any(not isinstance(item, str) or not item for item in record.get("depends_on", [])):
        raise fail("depends_on", "expected a JSON array of step_id strings")
    finished = record.get("finished_at")
    if finished is not None and finished < record["started_at"]:
        raise fail("finished_at", "earlier than started_at")
    if finished is not None and "duration_us" not in record:
        record["duration_us"] = finished - record["started_at"]
    record.setdefault("attributes", {})
    if kind == "run":
        record.setdefault("params", {})
    else:
        record.setdefault("attempt", 1)
        record.setdefault("depends_on", [])
    return record


def _value(kind: str, value: Any, from_text: bool) -> Any:
    """Convert one field; raise TypeError/ValueError with a message to follow the field name."""
    if kind == TS:
        return epoch_us(parse_aware_timestamp(value))
    if kind == UUID:
        if not isinstance(value, str):
            raise TypeError(f"expected a UUID string, got {show_value(value)}")
        try:
            return str(uuid.UUID(value))
        except ValueError:
            raise ValueError(f"expected a UUID, got {show_value(value)}") from None
    if kind == INT:
        if from_text:
            try:
                number = int(value.strip())
            except ValueError:
                raise ValueError(f"expected an integer, got {show_value(value)}") from None
        else:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"expected an integer, got {show_value(value)}")
            if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
                raise ValueError(f"expected an integer, got {show_value(value)}")
            number = int(value)
        if abs(number) > 2**62:  # the columns are 64-bit: larger ones overflow in pandas
            raise ValueError(f"expected an integer of at most 2**62, got {show_value(value)}")
        return number
    if kind in (OBJECT, LIST):
        if from_text:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"not valid JSON text: {exc.msg}") from None
        wanted = dict if kind == OBJECT else list
        if not isinstance(value, wanted):
            what = "a JSON object" if kind == OBJECT else "a JSON array"
            raise TypeError(f"expected {what}, got {show_value(value)}")
        return value
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {show_value(value)}")
    return value


def parse_aware_timestamp(value: Any) -> datetime:
    """Parse an ISO-8601 timestamp that carries a UTC offset; naive ones are rejected.

    Digits beyond microseconds are truncated (Python's ``fromisoformat`` does so).
    """
    if not isinstance(value, str):
        raise TypeError(f"expected an ISO-8601 timestamp string, got {show_value(value)}")
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(f"expected an ISO-8601 timestamp, got {show_value(value)}") from None
    if moment.tzinfo is None or moment.utcoffset() is None:
        # A naive time is ambiguous (whose local time?), so we refuse to guess.
        raise ValueError(f"timestamp without a UTC offset: {show_value(value)} "
                         "(write e.g. 2024-05-01T12:00:00Z or +02:00)")
    return moment


def _check_references(file: str, runs: list[dict[str, Any]], steps: list[dict[str, Any]],
                      lines: dict[int, int]) -> None:
    """Ids are unique, and every step's run and dependencies are in the same file."""

    def fail(record: dict[str, Any], field: str, problem: str) -> ImportFormatError:
        line = lines[id(record)]
        return ImportFormatError(file, f"line {line}, field {field!r}", problem,
                                 line=line, field=field)

    run_lines: dict[str, int] = {}
    for run in runs:
        if run["run_id"] in run_lines:
            raise fail(run, "run_id", f"duplicate run {run['run_id']} "
                                      f"(first on line {run_lines[run['run_id']]})")
        run_lines[run["run_id"]] = lines[id(run)]
    step_lines: dict[tuple[str, str], int] = {}
    for step in steps:
        key = (step["run_id"], step["step_id"])
        if step["run_id"] not in run_lines:
            raise fail(step, "run_id", f"no kind=run record for run {step['run_id']} in this file")
        if key in step_lines:
            raise fail(step, "step_id", f"duplicate step {key[1]!r} in run {key[0]} "
                                        f"(first on line {step_lines[key]})")
        step_lines[key] = lines[id(step)]
    by_run: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_run.setdefault(step["run_id"], []).append(step)
    for run_id, members in by_run.items():
        index = {step["step_id"]: i for i, step in enumerate(members)}
        for step in members:
            for parent in step["depends_on"]:
                if parent not in index:
                    raise fail(step, "depends_on", f"unknown step_id {parent!r} in run {run_id}")
        _, cycle = topological_order([[index[p] for p in step["depends_on"]] for step in members])
        if cycle:
            names = " -> ".join(members[i]["step_id"] for i in [*cycle, cycle[0]])
            raise fail(members[cycle[0]], "depends_on", f"dependency cycle: {names}")


def _derive(steps: list[dict[str, Any]]) -> None:
    """Number the steps of runs that give no ordinal at all, in order of start."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for step in steps:
        by_run.setdefault(step["run_id"], []).append(step)
    for members in by_run.values():
        if all(step.get("ordinal") is None for step in members):
            members.sort(key=lambda step: (step["started_at"], step["step_id"]))
            for ordinal, step in enumerate(members):
                step["ordinal"] = ordinal


def show_value(value: Any, limit: int = 60) -> str:
    """A short JSON rendering of a bad value, for error messages."""
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
