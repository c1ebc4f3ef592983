"""A served warehouse over HTTP, with the methods of :class:`~warehouse.Warehouse`.

>>> wh = Warehouse("http://127.0.0.1:8000", token="...")   # a RemoteWarehouse
>>> wh.write_points(frame)          # an Arrow IPC body: one all-or-nothing batch
>>> wh.write_frame(wide, label_columns=["host"])          # a column per metric, the same way
>>> with wh.recipe_run("etl") as run: ...                  # the recorder works unchanged

``WAREHOUSE_URL=http://...`` (and ``WAREHOUSE_TOKEN``) does the same for ``Warehouse()``.
Errors come back as the same exceptions a direct connection raises: ValidationError (with
its problems), ReadOnlyError, UnknownNameError; an unreachable or restarting server raises
:class:`~warehouse.errors.TransientError`, so the recorder spills and replays as it does
when a database is down.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode
from urllib.request import getproxies

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
from sqlalchemy.engine import make_url

from warehouse.backends.base import Capabilities
from warehouse.client.wire import (
    ARROW,
    NDJSON,
    arrow_to_frame,
    frame_to_arrow,
)
from warehouse.errors import (
    FieldProblem,
    QueryTimeoutError,
    ReadOnlyError,
    ResultTooLargeError,
    RetentionPolicyError,
    TerminalError,
    TransientError,
    UnknownNameError,
    ValidationError,
    WarehouseError,
)

if TYPE_CHECKING:  # imported lazily: the client should not load ingest to connect
    from warehouse.ingest.writer import WriteResult

API = "/api/v1"


class RemoteRequestError(WarehouseError, ValueError):
    """The server refused a request as bad (400): an unknown aggregate, a malformed interval,
    a SQL error. A ValueError, as the same mistake is through a direct connection."""


class AccessDenied(WarehouseError, PermissionError):
    """No credentials, expired or revoked ones (401), or too little scope (403)."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _RemoteBackend:
    """What callers ask of ``wh.backend`` that makes sense over HTTP: its capabilities (a
    served warehouse is shared by many clients, whatever engine the server uses)."""

    dialect: str = "http"
    capabilities: Capabilities = Capabilities(
        native_partitions=False, binary_copy=False, advisory_locks=False, single_writer=False)

    @staticmethod
    def is_transient(exc: BaseException) -> bool:
        return isinstance(exc, TransientError)


def _plain(value):
    """A JSON-able query/bind value: times as ISO-8601, numpy scalars as Python ones."""
    if isinstance(value, (datetime, date, pd.Timestamp)):
        return value.isoformat()
    if isinstance(value, (timedelta, pd.Timedelta)):
        return f"{int(pd.Timedelta(value).total_seconds() * 1_000_000)}us"
    if isinstance(value, np.generic):
        return value.item()
    return value


def _query_text(value) -> str:
    """A query parameter as httpx writes it (true/false for booleans)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)


def _proxied_from_environment(url: str) -> bool:
    """Whether a proxy for ``url``'s scheme (HTTP_PROXY, HTTPS_PROXY) or ALL_PROXY is set:
    httpx then sends through it."""
    proxies = getproxies()
    return bool(proxies.get(url.split("://", 1)[0].lower()) or proxies.get("all"))


def _labels_as_text(column: pd.Series) -> pd.Series:
    """A ``labels`` column of dicts as JSON text (one dumps per distinct label set)."""
    cache: dict = {}

    def encode(value):
        if not isinstance(value, dict):
            return value
        try:
            key = tuple(value.items())
            if key not in cache:
                cache[key] = json.dumps(value, sort_keys=True)
            return cache[key]
        except TypeError:  # unhashable values: the server names the problem
            return json.dumps(value, sort_keys=True, default=str)

    return column.map(encode).astype(object)


def _times_as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns holding datetimes as ISO-8601 text, so the server judges each value
    (Arrow would coerce a mix of naive and aware times to one kind, hiding the naive ones)."""
    changed = {}
    for name in frame.columns:
        column = frame[name]
        if column.dtype == object and column.map(lambda v: isinstance(v, datetime)).any():
            changed[name] = column.map(
                lambda v: v.isoformat() if isinstance(v, datetime) else v).astype(object)
    return frame.assign(**changed) if changed else frame


def _json_value(value):
    """A cell json cannot write itself: times as ISO-8601, numpy scalars as Python ones,
    pandas' missing markers as null, anything else as its text (for the server to judge)."""
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def _json_lines(frame: pd.DataFrame) -> bytes:
    """``frame`` as NDJSON, each value as the server should judge it. Python's json rather
    than ``DataFrame.to_json``: that writes ±inf as null (a missing cell, which a wide frame
    takes as no point, where a direct write refuses the value) and fails on integers wider
    than 64 bits; json writes ±inf as the Infinity token the server's parser reads back, and
    integers exactly. Missing cells (NaN, None, NA, NaT) are null."""
    cells = frame.reset_index(drop=True).astype(object)
    cells = cells.where(cells.notna(), None)
    return "\n".join(json.dumps(record, default=_json_value)
                     for record in cells.to_dict("records")).encode()


#: Warehouse methods that need the database itself (the facade must not be imported here:
#: it imports this module).
def _names(names: str | list[str]) -> str:
    """Metric or label names as the API takes them: comma-separated."""
    return names if isinstance(names, str) else ",".join(names)


def _labels_json(labels: dict | None) -> str | None:
    if not labels:
        return None
    return json.dumps({k: sorted(v) if isinstance(v, (set, frozenset)) else v
                       for k, v in labels.items()})


LOCAL_ONLY = frozenset({"downgrade", "head_revision", "set_chunk_interval", "maintain",
                        "restore_archive"})


class RemoteWarehouse:
    """The :class:`~warehouse.Warehouse` API against ``warehouse serve`` at ``url``.

    ``token``: an API token (default ``WAREHOUSE_TOKEN``). ``timeout``: seconds to wait for
    an answer (jobs and big batches may take a while). Other keyword arguments of
    :class:`Warehouse` (``migrate``, ``create``) are accepted and ignored: the server owns
    its database and its schema.
    """

    def __init__(self, url: str, token: str | None = None, *, timeout: float = 300.0,
                 transport: httpx.BaseTransport | None = None, **_ignored):
        self.url = url.rstrip("/")
        self.backend = _RemoteBackend()
        self.changes = None  # subscribe on the server (app.state.changes), not here
        token = token if token is not None else os.environ.get("WAREHOUSE_TOKEN")
        headers = {"User-Agent": "warehouse-client/1"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        timeout = httpx.Timeout(timeout, connect=10.0)
        # One connection pool for everything; table reads hand their request to it directly
        # (_read_frame) — unless a proxy from the environment applies: only the client knows
        # how to reach it (and it reads the environment only when it makes the transport).
        if transport is None and not _proxied_from_environment(self.url):
            transport = httpx.HTTPTransport()
        self._transport = transport
        self._http = httpx.Client(base_url=self.url + API, headers=headers, transport=transport,
                                  timeout=timeout)
        self._read_headers = httpx.Headers({**headers, "Accept": ARROW})
        self._read_extensions = {"timeout": timeout.as_dict()}

    # -- transport ------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:  # refused, reset, timed out: try again later
            raise TransientError(f"warehouse server at {self.url} unreachable: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return response

    def _error(self, response: httpx.Response) -> Exception:
        try:
            body = response.json()
        except ValueError:
            body = {}
        if not isinstance(body, dict):
            body = {}
        status = response.status_code
        kind = str(body.get("type", "")).rsplit("/", 1)[-1]
        detail = str(body.get("detail") or body.get("title") or response.reason_phrase)
        if kind in ("validation", "request-validation"):
            problems = [FieldProblem(p.get("row"), str(p.get("field")), str(p.get("message")))
                        for p in body.get("errors") or [] if isinstance(p, dict)]
            return ValidationError(body.get("what") or "request", problems, body.get("count"))
        if kind == "read-only":
            return ReadOnlyError(detail)
        if kind == "sql-timeout":
            return QueryTimeoutError(detail)
        if kind == "result-too-large":
            return ResultTooLargeError(detail)
        if kind == "retention-policy":
            return RetentionPolicyError(str(body.get("table")), list(body.get("chunks") or []),
                                        dict(body.get("reasons") or {}))
        if kind == "unknown-name":
            return UnknownNameError(detail)
        if status in (401, 403):
            return AccessDenied(detail, status)
        if status in (502, 503, 504):
            return TransientError(detail)
        if status == 400:
            return RemoteRequestError(detail)
        if status >= 500:
            return TerminalError(f"server error {status}: {detail}")
        return WarehouseError(f"{status} {detail}")

    def _frame(self, method: str, path: str, **kwargs) -> pd.DataFrame:
        if method == "GET" and self._transport is not None:
            return self._read_frame(path, kwargs.get("params") or {})
        response = self._request(method, path, headers={"Accept": ARROW}, **kwargs)
        return arrow_to_frame(response.content)

    def _read_frame(self, path: str, params: dict) -> pd.DataFrame:
        """GET a table straight from the connection pool: the same request, timeouts,
        errors and connection reuse as through ``self._http``, without the client's
        per-request work (URL merging and parsing, auth, redirect and cookie handling: ~0.3
        ms of a 1-hour query's ~1 ms of HTTP on the client side), which a table read
        needs none of (the server never redirects or sets cookies for the API)."""
        url = f"{self.url}{API}{path}"
        if params:
            url += "?" + urlencode({k: _query_text(v) for k, v in params.items()})
        request = httpx.Request("GET", url, headers=self._read_headers,
                                extensions=self._read_extensions)
        try:
            response = self._transport.handle_request(request)
            try:
                response.read()
            finally:
                response.close()
        except httpx.TransportError as exc:
            raise TransientError(f"warehouse server at {self.url} unreachable: "
                                 f"{type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise self._error(response)
        return arrow_to_frame(response.content)

    @staticmethod
    def _params(**params) -> dict:
        return {k: _plain(v) for k, v in params.items() if v is not None}

    # -- ingest ---------------------------------------------------------------------------
    def _write(self, path: str, data, label_columns=()) -> WriteResult:
        from warehouse.ingest.points import as_frame
        from warehouse.ingest.writer import WriteResult

        if isinstance(data, (pa.Table, pa.RecordBatch)):
            data = as_frame(data)
        frame = as_frame(data) if not isinstance(data, pd.DataFrame) else data
        if "labels" in frame.columns and frame["labels"].dtype == object:
            frame = frame.assign(labels=_labels_as_text(frame["labels"]))
        frame = _times_as_text(frame)
        params = {"label_columns": ",".join(label_columns)} if label_columns else {}
        try:
            body, kind = frame_to_arrow(frame, preserve_index=None), ARROW
        except (pa.ArrowException, TypeError, ValueError, OverflowError):
            # Values Arrow cannot type (a text in a number column, an integer wider than 64
            # bits...): send JSON lines, so the server names the bad row and field as a
            # direct write would.
            body, kind = _json_lines(frame), NDJSON
        result = self._request("POST", path, content=body, params=params,
                               headers={"Content-Type": kind}).json()
        return WriteResult(int(result["received"]), int(result["written"]),
                           int(result["skipped"]))

    def write_points(self, data, *, label_columns=()) -> WriteResult:
        """Write points (one all-or-nothing batch); see :meth:`Warehouse.write_points`."""
        return self._write("/points", data, label_columns)

    def write_frame(self, data, *, label_columns=()) -> WriteResult:
        """Write a wide frame (a row per label set and instant, a column per metric; one
        all-or-nothing batch of points); see :meth:`Warehouse.write_frame`. A missing cell
        (None, NaN, NA) travels as an Arrow null (a JSON null when the frame goes as JSON
        lines), which the server reads as NaN: no point."""
        return self._write("/frames", data, label_columns)

    def write_runs(self, data) -> WriteResult:
        """Insert or update runs; see :meth:`Warehouse.write_runs`."""
        return self._write("/runs", data)

    def write_steps(self, data) -> WriteResult:
        """Insert or update step runs; see :meth:`Warehouse.write_steps`."""
        return self._write("/steps", data)

    def recipe_run(self, name: str, **options):
        """Record one run of recipe ``name`` over HTTP (docs/recording.md)."""
        from warehouse.recorder import recipe_run

        return recipe_run(self, name, **options)

    # -- query ----------------------------------------------------------------------------
    def points(self, metric: str | list[str], start=None, end=None, *,
               labels: dict | None = None, every=None, agg: str = "mean",
               by: list[str] | None = None, fill=None, rollups: bool = True,
               with_labels: bool | list[str] = True, last: int | None = None) -> pd.DataFrame:
        """Points of ``metric`` (or several) in [start, end); see :meth:`Warehouse.points`."""
        if isinstance(by, str):
            by = [by]
        if last is not None:
            from warehouse.query.newest import check_last

            check_last(last)  # the same refusal as a direct call (everything is text here)
        params = self._params(metric=_names(metric), start=start, end=end, every=every,
                              agg=agg, fill=fill, by=",".join(by) if by is not None else None,
                              labels=_labels_json(labels), last=last)
        params["rollups"] = "true" if rollups else "false"
        params["with_labels"] = (_names(with_labels) if isinstance(with_labels, list)
                                 else "true" if with_labels else "false")
        return self._frame("GET", "/points", params=params)

    def frame(self, metrics: list[str], start=None, end=None, *, labels: dict | None = None,
              every=None, agg: str = "mean", by: list[str] | None = None,
              where: str | None = None) -> pd.DataFrame:
        """Several metrics side by side; see :meth:`Warehouse.frame`."""
        return self._frame("GET", "/frame", params=self._params(
            metrics=_names(metrics), start=start, end=end, every=every, agg=agg,
            by=",".join([by] if isinstance(by, str) else by) if by is not None else None,
            labels=_labels_json(labels), where=where))

    def runs(self, *, recipe: str | None = None, start=None, end=None,
             status: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Runs that started in [start, end); see :meth:`Warehouse.runs`."""
        return self._frame("GET", "/runs", params=self._params(
            recipe=recipe, start=start, end=end, status=status, limit=limit))

    def steps(self, run_id: str | None = None, *, recipe: str | None = None, start=None,
              end=None) -> pd.DataFrame:
        """Step runs of one run, or of a recipe's runs; see :meth:`Warehouse.steps`."""
        return self._frame("GET", "/steps", params=self._params(
            run_id=run_id, recipe=recipe, start=start, end=end))

    def sql(self, sql: str, params: dict | None = None) -> pd.DataFrame:
        """Run one read-only statement with ``:name`` binds (refused if it would write)."""
        binds = {k: _plain(v) for k, v in (params or {}).items()}
        return self._frame("POST", "/sql", json={"sql": sql, "params": binds})

    def views(self) -> pd.DataFrame:
        """The documented analyst views: name, description."""
        return pd.DataFrame(self._request("GET", "/views").json())

    def view(self, name: str, limit: int = 1000) -> pd.DataFrame:
        """The first ``limit`` rows of a documented view."""
        return self._frame("GET", f"/views/{name}", params={"limit": int(limit)})

    # -- dashboards and alerts (warehouse.client.remote_objects) ----------------------------
    @property
    def dashboards(self):
        """``wh.dashboards`` over HTTP (a RemoteDashboards)."""
        from warehouse.client.remote_objects import RemoteDashboards

        return RemoteDashboards(self)

    @property
    def alerts(self):
        """``wh.alerts`` over HTTP (a RemoteAlerts; evaluation runs in the server)."""
        from warehouse.client.remote_objects import RemoteAlerts

        return RemoteAlerts(self)

    # -- chunks and housekeeping ---------------------------------------------------------
    def show_chunks(self, table: str = "points") -> pd.DataFrame:
        """Chunks of a hypertable: chunk_name, range_start, range_end, rows."""
        return self._frame("GET", "/chunks", params={"table": table})

    def drop_chunks(self, table: str, older_than, **options) -> list[str]:
        """Drop whole chunks of ``table`` that end at or before ``older_than``."""
        params = self._params(table=table, older_than=older_than, **options)
        return list(self._request("DELETE", "/chunks", params=params).json()["dropped"])

    def run_job(self, name: str, **options):
        """Run one job now on the server; returns its JobRun."""
        from warehouse.jobs.runner import JobRun

        body = {k: _plain(v) for k, v in options.items() if v is not None}
        result = self._request("POST", f"/jobs/{name}/run", json=body or None).json()
        return JobRun(**result)

    def refresh_rollups(self, now=None):
        """Bring points_1m/1h/1d up to date on the server."""
        return self.run_job("refresh_rollups", now=now)

    def job_runs(self, job: str | None = None, limit: int = 50) -> pd.DataFrame:
        """Recent job runs, newest first."""
        return self._frame("GET", "/jobs/runs", params=self._params(job=job, limit=limit))

    def list_jobs(self) -> pd.DataFrame:
        """Registered jobs and when they are next due (``warehouse.jobs.list_jobs``)."""
        return self._frame("GET", "/jobs")

    def rollup_state(self) -> pd.DataFrame:
        """Per rollup tier: watermark, rows, pending invalidations."""
        return self._frame("GET", "/rollups")

    def archive_manifest(self) -> pd.DataFrame:
        """Every archived unit of the server's Parquet archive."""
        return self._frame("GET", "/archive")

    def set_retention(self, table: str, keep, *, archive: bool = False,
                      metric: str | None = None):
        """Keep ``table`` (or one metric of points) for ``keep``."""
        return self._request("PUT", "/retention", json={
            "table": table, "keep": _plain(keep), "archive": archive, "metric": metric}).json()

    def remove_retention(self, table: str, metric: str | None = None) -> bool:
        """Remove a retention policy; returns whether one existed."""
        return bool(self._request("DELETE", "/retention", params=self._params(
            table=table, metric=metric)).json()["removed"])

    def retention_policies(self) -> pd.DataFrame:
        """The retention policies in force."""
        return self._frame("GET", "/retention")

    def info(self) -> dict:
        """Backend, schema revision, and per table: rows, bytes and chunk count."""
        details = self._request("GET", "/info").json()
        tables = pd.DataFrame(details.get("tables") or [])
        if "chunks" in tables.columns:
            tables["chunks"] = tables["chunks"].astype("Int64")
        details["tables"] = tables
        return details

    def revision(self) -> str | None:
        """The server database's schema revision."""
        return self.info()["revision"]

    def ready(self) -> bool:
        """Whether the server answers and its database does."""
        try:
            response = self._http.get(self.url + "/readyz")
        except httpx.TransportError:
            return False
        return response.status_code == 200

    def migrate(self, revision: str = "head") -> None:
        """The server migrates its own database when it opens it; nothing to do here."""
        return None

    def close(self) -> None:
        """Close the HTTP connections (the server and its database stay up)."""
        self._http.close()

    def __enter__(self) -> RemoteWarehouse:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str):
        # Methods that only make sense next to the database.
        if name == "engine":
            raise AttributeError(
                f"a served warehouse ({self.url}) has no database engine in this process: use "
                f"its methods (run_job, job_runs, jobs, set_retention, remove_retention, "
                f"retention_policies, rollup_state, archive_manifest, ...) or run this where "
                f"the server runs")
        if name in LOCAL_ONLY:
            raise AttributeError(f"Warehouse.{name} is not available over HTTP; run it "
                                 f"where the server runs")
        raise AttributeError(name)

    def __repr__(self) -> str:
        return f"RemoteWarehouse({make_url(self.url).render_as_string(hide_password=True)!r})"
