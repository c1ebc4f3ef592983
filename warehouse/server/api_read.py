"""Read routes: points, runs, steps, read-only SQL, the documented views, info."""

from __future__ import annotations

import json
import uuid
from urllib.parse import parse_qsl

import pandas as pd
from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from warehouse.backends.readonly import ReadOnlyLimits
from warehouse.client.wire import frame_to_json
from warehouse.errors import ResultTooLargeError, UnknownNameError, WarehouseError
from warehouse.server import problems
from warehouse.server.auth import authenticate, require
from warehouse.server.deps import TABLE_RESPONSES, settings, split_list, table_response, warehouse
from warehouse.timeparse import aware_timestamp, interval_us


async def no_nul(request: Request) -> None:
    """Refuse a NUL character in the query string or path (400): PostgreSQL cannot take one
    in text, and the database error would otherwise answer 500. (``async``: FastAPI runs a
    plain ``def`` dependency in the threadpool, a round trip per request for a string scan.)"""
    values = [*request.query_params.values(), *map(str, request.path_params.values())]
    for value in values:
        if "\x00" in value:
            raise ValueError(f"a parameter contains a NUL character: {value[:100]!r}")


router = APIRouter(tags=["read"], dependencies=[Depends(require("read")), Depends(no_nul)])

#: The analyst views of docs/views.md (a test keeps the two in step).
VIEWS = {
    "recipe_daily_stats": "runs, success rate and duration percentiles per recipe and UTC day",
    "step_stats": "executions, failures and duration percentiles per recipe and step",
    "run_timeline": "each run's steps with offsets from the run's start",
    "error_patterns": "errors grouped by type and normalised message",
    "resource_usage": "CPU, memory and I/O per recipe and step",
    "slow_runs": "finished runs slower than their recipe's trailing p95",
    "series_latest": "the last point of every series",
    "all_points": "every stored point: hot rows, compressed segments and archived Parquet",
}
_TIME_HELP = "ISO-8601 with a zone, or relative ('now-7d')"
#: Rows a points answer holds at most (raw points or buckets); more is a 400
#: result-too-large rather than an answer of any size. ``ServerSettings.points_max_rows``
#: overrides it where the settings have it.
POINTS_MAX_ROWS = 1_000_000
#: Bytes a read-only SQL result holds at most in memory (the row cap does not bound a few
#: rows of huge values, e.g. repeat('x', 10^9)); the JSON answer is about as large.
SQL_MAX_RESULT_BYTES = 256 * 1024 * 1024


def _labels(text: str | None) -> dict | None:
    if not text:
        return None
    try:
        labels = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"labels must be a JSON object, e.g. {{\"recipe\": \"etl\"}}: {exc}") from None
    if not isinstance(labels, dict):
        raise ValueError("labels must be a JSON object, e.g. {\"recipe\": \"etl\"}")
    return labels


def _fill(text: str | None):
    if text is None or text in ("null", "previous", "linear", "zero"):
        return text
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"fill must be null, previous, linear, zero or a number, not {text!r}") from None


@router.get("/points", summary="Query points of one metric (or several)",
            responses=TABLE_RESPONSES)
def points(request: Request,
           metric: str = Query(..., min_length=1,
                               description="metric name; comma-separated for several (the "
                                           "answer then has a metric column)"),
           start: str | None = Query(None, description=_TIME_HELP),
           end: str | None = Query(None, description=_TIME_HELP),
           labels: str | None = Query(None, description='JSON object, e.g. {"recipe": "etl"}; '
                                                         "a list value matches any of its values"),
           every: str | None = Query(None, description="bucket width: 1m, 1h, 1d ..."),
           agg: str = Query("mean", description="mean, min, max, sum, count, first, last, "
                                                "p50, p95, p99"),
           by: str | None = Query(None, description="comma-separated label names to group by; "
                                                    "empty: one series across all"),
           fill: str | None = Query(None, description="null, previous, linear, zero or a number"),
           rollups: bool = Query(True, description="false: read raw points only"),
           with_labels: str = Query("true", description="true, false, or comma-separated "
                                                        "label names to add as columns"),
           last: int | None = Query(None, ge=1, le=POINTS_MAX_ROWS,
                                    description="only the N newest buckets (points) before end")):
    """Points in [start, end): raw rows, or one row per bucket with ``every``."""
    return points_answer(request, metric=metric, start=start, end=end, labels=labels,
                         every=every, agg=agg, by=by, fill=fill, rollups=rollups,
                         with_labels=with_labels, last=last)


def points_answer(request: Request, *, metric: str, start: str | None, end: str | None,
                  labels: str | None, every: str | None, agg: str, by: str | None,
                  fill: str | None, rollups: bool, with_labels: str,
                  last: int | None) -> Response:
    """The answer of GET /points for parameters already validated (by FastAPI, or by
    :class:`PointsFastPath`): blocking, run in the threadpool."""
    cap = getattr(settings(request), "points_max_rows", POINTS_MAX_ROWS)
    if fill is not None and every is not None and last is None:
        _check_fill_buckets(start, end, every, cap)
    metrics = split_list(metric)
    frame = warehouse(request).points(metrics if len(metrics) > 1 else metric, start, end,
                                      labels=_labels(labels), every=every, agg=agg,
                                      by=[] if by == "" else split_list(by), fill=_fill(fill),
                                      rollups=rollups, with_labels=_with_labels(with_labels),
                                      last=last)
    if len(frame) > cap:
        raise ResultTooLargeError(
            f"the answer has {len(frame):,} rows, more than the server's limit of {cap:,} "
            f"for points; narrow start/end, or aggregate with every/agg")
    return table_response(request, frame)


#: Query parameters of GET /points taken as text, as FastAPI takes them (no constraint but
#: metric's min_length, checked in :func:`_plain_points_params`), with their defaults.
_POINTS_TEXT = {"metric": None, "start": None, "end": None, "labels": None, "every": None,
                "agg": "mean", "by": None, "fill": None, "with_labels": "true"}


def _plain_points_params(query_string: bytes) -> dict | None:
    """The GET /points parameters of a query string FastAPI would accept as they are — no
    repeated name, no NUL, a non-empty metric, rollups spelled true/false, last a plain
    number in range — else None: the request then takes FastAPI's route, which names what
    is wrong exactly as it always has. Parsed as Starlette parses query strings."""
    given: dict[str, str] = {}
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name in given or "\x00" in value:
            return None
        given[name] = value
    if not given.get("metric"):
        return None
    params = {name: given.get(name, default) for name, default in _POINTS_TEXT.items()}
    rollups = given.get("rollups", "true")
    last = given.get("last")
    if rollups not in ("true", "false"):
        return None
    if last is not None:
        if not (last.isascii() and last.isdigit() and len(last) <= 7
                and 1 <= int(last) <= POINTS_MAX_ROWS):
            return None
        last = int(last)
    return {**params, "rollups": rollups == "true", "last": last}


class PointsFastPath:
    """ASGI middleware: ``GET /api/v1/points``, the hot read of every remote client and
    dashboard, answered without FastAPI's per-request machinery (route matching, dependency
    solving, a pydantic validation per parameter: 1.4 -> 0.7 ms CPU per request beyond the
    query, measured in-process). Same authentication (:func:`~.auth.authenticate`, the read
    scope), the same answer (:func:`points_answer`, one threadpool hop) and the same
    problems (:mod:`.problems`). A request it cannot take exactly as FastAPI would — anything
    but plain parameters, a body, a caller without the read scope — goes on to FastAPI's
    route."""

    def __init__(self, app, path: str, redact: problems.Redactor):
        self.app = app
        self.path = path
        self.redact = redact

    async def __call__(self, scope, receive, send):
        params = None
        if (scope["type"] == "http" and scope["method"] == "GET" and scope["path"] == self.path
                and not scope.get("root_path") and not _has_body(scope)):
            params = _plain_points_params(scope.get("query_string", b""))
        if params is None:
            await self.app(scope, receive, send)
            return
        request = Request(scope, receive)
        try:
            principal = await authenticate(request)
        except Exception as exc:  # noqa: BLE001 - 401/429, or the database down
            await self._problem(exc)(scope, receive, send)
            return
        if "read" not in principal.scopes:
            # FastAPI's route answers the 403 (the principal is remembered on the request).
            await self.app(scope, receive, send)
            return
        try:
            response = await run_in_threadpool(points_answer, request, **params)
        except Exception as exc:  # noqa: BLE001 - answered as below
            response = self._problem(exc)
        await response(scope, receive, send)

    def _problem(self, exc: Exception) -> Response:
        """The problem the app's exception handlers (or CatchAll) answer for ``exc``."""
        if isinstance(exc, StarletteHTTPException):
            return problems.http_error_response(exc, self.redact)
        return problems.error_response(exc, self.redact)


def _has_body(scope) -> bool:
    """Whether a request declares a body (FastAPI's route, behind BodyLimit, reads it)."""
    for name, value in scope.get("headers", ()):
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def _with_labels(text: str) -> bool | list[str]:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes", ""):
        return True
    if lowered in ("false", "0", "no"):
        return False
    return split_list(text)


@router.get("/frame", summary="Several metrics side by side, from one statement",
            responses=TABLE_RESPONSES)
def frame(request: Request,
          metrics: str = Query(..., min_length=1, description="comma-separated metric names"),
          start: str | None = Query(None, description=_TIME_HELP),
          end: str | None = Query(None, description=_TIME_HELP),
          labels: str | None = Query(None, description="JSON object of label filters"),
          every: str | None = Query(None, description="bucket width: 1m, 1h, 1d ..."),
          agg: str = Query("mean", description="aggregate of each metric per bucket"),
          by: str | None = Query(None, description="comma-separated label names to group by"),
          where: str | None = Query(None, max_length=200,
                                    description='a value filter such as "cpu.user > 90"')):
    """``Warehouse.frame``: ts, labels, one column per metric (docs/query.md)."""
    cap = getattr(settings(request), "points_max_rows", POINTS_MAX_ROWS)
    result = warehouse(request).frame(split_list(metrics), start, end, labels=_labels(labels),
                                      every=every, agg=agg,
                                      by=None if by is None else split_list(by), where=where)
    if len(result) > cap:
        raise ResultTooLargeError(
            f"the answer has {len(result):,} rows, more than the server's limit of {cap:,}; "
            f"narrow start/end, or aggregate with every/agg")
    return table_response(request, result)


def _check_fill_buckets(start: str | None, end: str | None, every: str, cap: int) -> None:
    """Refuse a filled query whose range holds more buckets than ``cap`` before any is
    made: ``fill`` adds a row per empty bucket, so `every=1us` over a year would build
    trillions of rows. (A range left open is the data's own; see docs/server.md.)"""
    start_ts, end_ts = aware_timestamp(start, "start"), aware_timestamp(end, "end")
    if start_ts is None or end_ts is None or end_ts <= start_ts:
        return  # the query layer names a bad range; an open one spans the data only
    buckets = (end_ts - start_ts) // pd.Timedelta(microseconds=interval_us(every))
    if buckets > cap:
        raise ResultTooLargeError(
            f"fill over {buckets:,} buckets of {every} is more than the server's limit of "
            f"{cap:,} rows for points; use a wider every or a shorter start/end")


@router.get("/runs", summary="Query runs", responses=TABLE_RESPONSES)
def runs(request: Request, recipe: str | None = None,
         start: str | None = Query(None, description=_TIME_HELP),
         end: str | None = Query(None, description=_TIME_HELP),
         status: str | None = None, limit: int | None = Query(None, ge=1, le=1_000_000)):
    """Runs that started in [start, end), optionally of one recipe and status."""
    return table_response(request, warehouse(request).runs(
        recipe=recipe, start=start, end=end, status=status, limit=limit))


@router.get("/steps", summary="Query step runs", responses=TABLE_RESPONSES)
def steps(request: Request, run_id: str | None = None, recipe: str | None = None,
          start: str | None = Query(None, description=_TIME_HELP),
          end: str | None = Query(None, description=_TIME_HELP)):
    """Steps of one run (``run_id``), or of every run of ``recipe`` started in [start, end)."""
    if run_id is not None:
        try:  # the database would fail the cast (a 500); the caller's mistake is a 400
            run_id = str(uuid.UUID(run_id))
        except ValueError:
            raise ValueError(f"run_id: {run_id[:100]!r} is not a UUID") from None
    return table_response(request, warehouse(request).steps(run_id, recipe=recipe, start=start,
                                                            end=end))


class SqlRequest(BaseModel):
    """One read-only statement with ``:name`` binds."""

    sql: str = Field(..., min_length=1, max_length=100_000)
    params: dict[str, str | int | float | bool | None] = Field(default_factory=dict)


def run_read_only(wh, sql: str, params: dict, limits: ReadOnlyLimits):
    """``wh.sql`` with the server's limits: the backend cancels a statement past
    ``limits.timeout_s`` (QueryTimeoutError) and refuses more than ``limits.max_rows`` rows
    (ResultTooLargeError); any other database error is the caller's SQL (400)."""
    with wh.engine.connect() as conn:
        try:
            return wh.backend.read_only_query(conn, sql, params, limits=limits)
        except WarehouseError:
            raise
        except Exception as exc:  # the driver's error for the caller's SQL: bad input
            if wh.backend.is_transient(exc):
                raise
            message = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
            raise WarehouseError(f"SQL error: {message}") from None
        finally:
            conn.rollback()


@router.post("/sql", summary="Run one read-only SQL statement", responses=TABLE_RESPONSES)
def sql(request: Request, query: SqlRequest):
    """Run one statement that does not write (403 problem if it would), with ``:name`` binds
    from ``params``; cancelled after the server's timeout, refused past its row cap."""
    limits = settings(request)
    frame = run_read_only(warehouse(request), query.sql, query.params, ReadOnlyLimits(
        timeout_s=limits.sql_timeout, max_rows=limits.sql_max_rows))
    size = int(frame.memory_usage(index=False, deep=True).sum())
    if size > SQL_MAX_RESULT_BYTES:
        raise ResultTooLargeError(
            f"the result holds {size:,} bytes, more than the server's limit of "
            f"{SQL_MAX_RESULT_BYTES:,}; select fewer or shorter columns")
    try:
        return table_response(request, frame)
    except (MemoryError, OverflowError):
        # Few rows but huge values (repeat('x', 10^9)): the row cap does not bound bytes.
        raise ResultTooLargeError("the result is too large to send (huge values); select "
                                  "fewer or shorter columns") from None


@router.get("/views", summary="The documented analyst views")
def views() -> list[dict]:
    """Name and description of each view (docs/views.md)."""
    return [{"name": name, "description": text} for name, text in VIEWS.items()]


@router.get("/views/{name}", summary="Read a documented view", responses=TABLE_RESPONSES)
def read_view(request: Request, name: str = Path(..., description="a view of GET /views"),
              limit: int = Query(1000, ge=1, description="rows at most")):
    """The first ``limit`` rows of a documented view."""
    if name not in VIEWS:
        raise UnknownNameError(f"unknown view {name!r}; known: {', '.join(VIEWS)}")
    limit = min(limit, settings(request).view_max_rows)
    # The name was checked against the fixed list above; the limit is a bind.
    frame = warehouse(request).sql(f'SELECT * FROM "{name}" LIMIT :limit', {"limit": limit})
    return table_response(request, frame)


@router.get("/info", summary="Backend, schema revision and table sizes")
def info(request: Request) -> dict:
    """Backend, schema revision, URL (password hidden) and per table rows, bytes, chunks."""
    details = warehouse(request).info()
    details["tables"] = json.loads(frame_to_json(details["tables"]))
    details["change_subscribers"] = request.app.state.changes.subscribers
    return details


