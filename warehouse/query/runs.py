"""``Warehouse.runs`` and ``Warehouse.steps``: run and step rows as DataFrames."""

from __future__ import annotations

import json
import uuid

import pandas as pd
from sqlalchemy import Connection

from warehouse.backends.base import Backend
from warehouse.model import STATUSES
from warehouse.schema import RUN_COLUMNS, STEP_COLUMNS
from warehouse.timeparse import aware_timestamp

_JSON = ("params", "attributes", "depends_on")
_TIMES = ("started_at", "finished_at", "last_seen_at")


def optional_text(column: pd.Series) -> pd.Series:
    """Values as str, nulls as None (pandas would turn None back into NaN in a str column)."""
    return pd.Series([None if v is None or v is pd.NA or v != v else str(v) for v in column],
                     index=column.index, dtype=object)


def _tidy(frame: pd.DataFrame) -> pd.DataFrame:
    """Same Python types from every engine: UTC timestamps, str UUIDs, JSON as dicts/lists."""
    for name in frame.columns:
        if name in _TIMES:
            frame[name] = pd.to_datetime(frame[name], utc=True)
        elif name == "run_id":
            frame[name] = optional_text(frame[name])
        elif name in _JSON:
            frame[name] = frame[name].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return frame


def _started_between(where: list[str], params: dict, column: str, start, end) -> None:
    """Add ``start <= column < end`` (each bound optional) to a WHERE list."""
    if (start_ts := aware_timestamp(start, "start")) is not None:
        where.append(f"{column} >= :start")
        params["start"] = start_ts
    if (end_ts := aware_timestamp(end, "end")) is not None:
        where.append(f"{column} < :end")
        params["end"] = end_ts


def query_runs(conn: Connection, backend: Backend, *, recipe: str | None = None, start=None,
               end=None, status: str | None = None, limit: int | None = None) -> pd.DataFrame:
    """Runs that started in [start, end), newest last."""
    where, params = [], {}
    if recipe is not None:
        where.append("recipe = :recipe")
        params["recipe"] = recipe
    if status is not None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}; choose one of {', '.join(STATUSES)}")
        where.append("status = :status")
        params["status"] = status
    _started_between(where, params, "started_at", start, end)
    sql = f"SELECT {', '.join(RUN_COLUMNS)} FROM runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY started_at, run_id"
    if limit is not None:
        sql += " LIMIT :limit"
        params["limit"] = int(limit)
    return _tidy(backend.fetch_frame(conn, sql, params))


def query_steps(conn: Connection, backend: Backend, run_id: str | None = None, *,
                recipe: str | None = None, start=None, end=None) -> pd.DataFrame:
    """Steps of one run, or of every run of ``recipe`` started in [start, end), in start
    order (with the run's ``recipe`` column when selected by recipe)."""
    columns = ", ".join(f"s.{c}" for c in STEP_COLUMNS)
    if run_id is not None:
        sql = (f"SELECT {columns} FROM step_runs AS s WHERE s.run_id = :run_id "
               f"ORDER BY s.started_at, s.ordinal, s.step_id")
        try:  # the database would fail the cast with a driver error naming no field
            run_id = str(uuid.UUID(str(run_id)))
        except ValueError:
            raise ValueError(f"run_id: {str(run_id)[:100]!r} is not a UUID") from None
        return _tidy(backend.fetch_frame(conn, sql, {"run_id": run_id}))
    if recipe is None:
        raise ValueError("give a run_id or a recipe")
    where, params = ["r.recipe = :recipe"], {"recipe": recipe}
    _started_between(where, params, "r.started_at", start, end)
    sql = (f"SELECT r.recipe, {columns} FROM step_runs AS s JOIN runs AS r "
           f"ON r.run_id = s.run_id WHERE {' AND '.join(where)} "
           f"ORDER BY s.run_id, s.started_at, s.ordinal, s.step_id")
    return _tidy(backend.fetch_frame(conn, sql, params))
