"""Validate runs and step runs into frames shaped like their tables (see docs/data-model.md)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from warehouse.config import MAX_ERROR_MESSAGE_LENGTH
from warehouse.ingest.points import as_frame, unique_index
from warehouse.ingest.validate import (
    Problems,
    check_columns,
    check_names,
    check_text,
    to_json_text,
    to_optional_ints,
    to_utc_timestamps,
    to_uuid_strings,
)
from warehouse.model import STATUSES
from warehouse.schema import RESOURCE_COLUMNS, RUN_COLUMNS, STEP_COLUMNS

_TEXT_COLUMNS = ("error_type", "host")


def _common(frame: pd.DataFrame, problems: Problems) -> dict[str, pd.Series]:
    """Checks shared by runs and steps; returns cleaned columns."""
    out: dict[str, pd.Series] = {}
    out["run_id"] = to_uuid_strings(frame["run_id"], "run_id", problems, required=True)
    out["started_at"] = to_utc_timestamps(frame["started_at"], "started_at", problems)
    finished = frame.get("finished_at", pd.Series(None, index=frame.index, dtype=object))
    out["finished_at"] = to_utc_timestamps(finished, "finished_at", problems, required=False)
    late = (out["finished_at"] < out["started_at"]).fillna(False).to_numpy(dtype=bool)
    problems.add_where(late, frame.index, "finished_at", "is before started_at")

    status = frame["status"]
    known = status.map(lambda v: isinstance(v, str) and v in STATUSES).to_numpy(dtype=bool)
    problems.add_where(~known, frame.index, "status", f"must be one of {', '.join(STATUSES)}")
    out["status"] = status.astype(object)

    for name in ("duration_us", *RESOURCE_COLUMNS):
        column = frame.get(name, pd.Series(None, index=frame.index, dtype=object))
        out[name] = to_optional_ints(column, name, problems)
    # A missing duration is derived from the timestamps when the step or run has finished.
    derived = (out["finished_at"] - out["started_at"]).dt.total_seconds() * 1e6
    out["duration_us"] = out["duration_us"].fillna(derived.round().astype("Int64"))

    for name in _TEXT_COLUMNS:
        column = frame.get(name, pd.Series(None, index=frame.index, dtype=object))
        check_text(column, name, problems)
        out[name] = column.astype(object).where(column.notna(), None)
    message = frame.get("error_message", pd.Series(None, index=frame.index, dtype=object))
    check_text(message, "error_message", problems)
    # Long messages (stack dumps) are cut rather than refused: the run still gets recorded.
    # Built as objects: pandas would store text as Arrow, which cannot even hold the bad
    # values reported above.
    out["error_message"] = pd.Series(
        [v if not isinstance(v, str) or len(v) <= MAX_ERROR_MESSAGE_LENGTH
         else v[: MAX_ERROR_MESSAGE_LENGTH - 1] + "…" for v in message.to_numpy(dtype=object)],
        index=frame.index, dtype=object)
    out["attributes"] = to_json_text(
        frame.get("attributes", pd.Series(None, index=frame.index, dtype=object)),
        "attributes", problems, kind=dict)
    return out


def _finish(columns: dict[str, pd.Series], order: tuple[str, ...], keys: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({name: columns[name] for name in order})
    if len(frame) == 1:  # nothing to de-duplicate; the sorts cost ~3 ms of a one-run write
        return frame.reset_index(drop=True)
    # Inside one batch a terminal row beats a 'running' one for the same key, then last wins.
    rank = (frame["status"] != "running").astype(int)
    frame = frame.assign(_rank=rank.to_numpy(), _pos=np.arange(len(frame)))
    frame = frame.sort_values(["_rank", "_pos"]).drop_duplicates(keys, keep="last")
    return frame.sort_values("_pos").drop(columns=["_rank", "_pos"]).reset_index(drop=True)


def prepare_runs(data) -> pd.DataFrame:
    """Validated ``runs`` rows; raise ValidationError naming each bad row and field."""
    frame = unique_index(as_frame(data, "runs batch"))
    problems = Problems("runs batch")
    check_columns(frame, ("run_id", "recipe", "started_at", "status"), RUN_COLUMNS, problems)
    problems.raise_if_any()
    columns = _common(frame, problems)
    check_names(frame["recipe"], "recipe", problems)
    columns["recipe"] = frame["recipe"].astype(object)
    columns["params"] = to_json_text(frame.get("params", pd.Series(None, index=frame.index,
                                                                   dtype=object)),
                                     "params", problems, kind=dict)
    last_seen = frame.get("last_seen_at", pd.Series(None, index=frame.index, dtype=object))
    columns["last_seen_at"] = to_utc_timestamps(last_seen, "last_seen_at", problems,
                                                required=False)
    problems.raise_if_any()
    return _finish(columns, RUN_COLUMNS, ["run_id"])


def prepare_steps(data) -> pd.DataFrame:
    """Validated ``step_runs`` rows; raise ValidationError naming each bad row and field."""
    frame = unique_index(as_frame(data, "steps batch"))
    problems = Problems("steps batch")
    check_columns(frame, ("run_id", "step_id", "step", "started_at", "status"), STEP_COLUMNS,
                  problems)
    problems.raise_if_any()
    columns = _common(frame, problems)
    check_names(frame["step"], "step", problems)
    columns["step"] = frame["step"].astype(object)
    for name in ("step_id", "parent_step_id"):
        column = frame.get(name, pd.Series(None, index=frame.index, dtype=object))
        column = pd.Series([str(v) if isinstance(v, (int, np.integer)) else v
                            for v in column.to_numpy(dtype=object)], index=frame.index,
                           dtype=object)
        check_names(column, name, problems, required=name == "step_id")
        columns[name] = column.astype(object).where(column.notna(), None)
    columns["attempt"] = to_optional_ints(
        frame.get("attempt", pd.Series(None, index=frame.index, dtype=object)), "attempt",
        problems, minimum=1).fillna(1)
    ordinal = to_optional_ints(
        frame.get("ordinal", pd.Series(None, index=frame.index, dtype=object)), "ordinal",
        problems)
    problems.raise_if_any()
    # Missing ordinals: order of start within the run (ties by step_id).
    order = (pd.DataFrame({"run": columns["run_id"], "t": columns["started_at"],
                           "id": columns["step_id"]})
             .sort_values(["run", "t", "id"]).groupby("run").cumcount())
    columns["ordinal"] = ordinal.fillna(order.sort_index().astype("Int64"))
    columns["depends_on"] = to_json_text(
        frame.get("depends_on", pd.Series(None, index=frame.index, dtype=object)),
        "depends_on", problems, kind=list)
    problems.raise_if_any()
    return _finish(columns, STEP_COLUMNS, ["run_id", "step_id"])
