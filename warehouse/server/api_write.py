"""Write routes: points, wide frames, runs and steps. Each request is one all-or-nothing batch."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Query, Request
from fastapi.concurrency import run_in_threadpool

from warehouse.server.api_read import no_nul
from warehouse.server.auth import require
from warehouse.server.bodies import body_doc, read_rows, zoned_times_parsed
from warehouse.server.deps import settings, split_list, warehouse

router = APIRouter(tags=["write"], dependencies=[Depends(no_nul)])

_TIME = {"type": "string", "description": "ISO-8601 with a zone, e.g. 2026-11-01T00:00:00Z"}
POINT_RECORD = {"type": "object", "required": ["metric", "ts", "value"], "properties": {
    "metric": {"type": "string"}, "ts": _TIME, "value": {"type": "number"},
    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
    "run_id": {"type": "string", "format": "uuid"}}}
#: A row of a wide frame: ``ts``, optionally ``run_id``, the label columns (text, named in
#: ``label_columns``); every other property is a metric named as it, null (or absent) where
#: the row has no value of it. (Text is allowed beside numbers only for the label columns,
#: which a schema cannot name: they come from the query string.)
FRAME_RECORD = {"type": "object", "required": ["ts"], "properties": {
    "ts": _TIME, "run_id": {"type": "string", "format": "uuid"}},
    "additionalProperties": {"anyOf": [
        {"type": ["number", "null"], "description": "a metric; null: no value in this row"},
        {"type": "string", "description": "a label column named in label_columns"}]}}
RUN_RECORD = {"type": "object", "required": ["run_id", "recipe", "started_at", "status"],
              "properties": {"run_id": {"type": "string", "format": "uuid"},
                             "recipe": {"type": "string"}, "started_at": _TIME,
                             "finished_at": _TIME, "status": {"type": "string"}},
              "additionalProperties": True}
STEP_RECORD = {"type": "object", "required": ["run_id", "step_id", "step", "started_at", "status"],
               "properties": {"run_id": {"type": "string", "format": "uuid"},
                              "step_id": {"type": "string", "format": "uuid"},
                              "step": {"type": "string"}, "started_at": _TIME,
                              "status": {"type": "string"}},
               "additionalProperties": True}
WRITE_RESULT = {"received": 0, "written": 0, "skipped": 0}


def _result(result) -> dict:
    return {"received": result.received, "written": result.written, "skipped": result.skipped}


@router.post("/points", summary="Write points (JSON, NDJSON or Arrow IPC)",
             openapi_extra=body_doc(POINT_RECORD), dependencies=[Depends(require("write"))],
             responses={200: {"content": {"application/json": {"example": WRITE_RESULT}}}})
async def write_points(
    request: Request,
    label_columns: str | None = Query(
        None, description="comma-separated columns that are labels (instead of a 'labels' "
                          "object per row; the fast path for big Arrow batches)"),
) -> dict:
    """Write a batch of points: all or nothing; points already stored are skipped."""
    rows = await read_rows(request, "points batch", settings(request).max_json_body_bytes)
    # One round trip into the threadpool for the whole write (each costs ~1 ms, more on a
    # loaded machine: a live dashboard waits for this request).
    result = await run_in_threadpool(_write_with_labels, warehouse(request).write_points, rows,
                                     split_list(label_columns) or ())
    return _result(result)


def _write_with_labels(write, rows, label_columns):
    """``write`` (write_points or write_frame) of a body's rows, JSON times parsed."""
    if isinstance(rows, list):
        rows = zoned_times_parsed(rows, "ts")
    return write(rows, label_columns=label_columns)


@router.post("/frames", summary="Write a wide frame: a row per label set and instant, a column "
                                "per metric (JSON, NDJSON or Arrow IPC)",
             openapi_extra=body_doc(FRAME_RECORD), dependencies=[Depends(require("write"))],
             responses={200: {"content": {"application/json": {"example": WRITE_RESULT}}}})
async def write_frame(
    request: Request,
    label_columns: str | None = Query(
        None, description="comma-separated columns that are labels; every column other than "
                          "ts, run_id and these is a metric"),
) -> dict:
    """Write a wide frame as points (``Warehouse.write_frame``): all or nothing; the result
    counts points, and points already stored are skipped."""
    rows = await read_rows(request, "frame batch", settings(request).max_json_body_bytes)
    result = await run_in_threadpool(_write_with_labels, warehouse(request).write_frame, rows,
                                     split_list(label_columns) or ())
    return _result(result)


@router.post("/runs", summary="Write runs (insert or update)", openapi_extra=body_doc(RUN_RECORD),
             dependencies=[Depends(require("write"))])
async def write_runs(request: Request) -> dict:
    """Insert or update runs (columns of the ``runs`` table): all or nothing."""
    rows = await read_rows(request, "runs batch", settings(request).max_json_body_bytes)
    return _result(await run_in_threadpool(warehouse(request).write_runs, rows))


@router.post("/steps", summary="Write step runs (insert or update)",
             openapi_extra=body_doc(STEP_RECORD), dependencies=[Depends(require("write"))])
async def write_steps(request: Request) -> dict:
    """Insert or update step runs (columns of ``step_runs``): all or nothing."""
    rows = await read_rows(request, "steps batch", settings(request).max_json_body_bytes)
    return _result(await run_in_threadpool(warehouse(request).write_steps, rows))
