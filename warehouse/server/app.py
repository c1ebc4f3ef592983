"""The ASGI application: one :class:`~warehouse.Warehouse` served over HTTP.

>>> app = create_app(Warehouse("duckdb:///w.duckdb"))      # uvicorn.run(app, ...)

- ``/healthz`` (the process answers) and ``/readyz`` (the database answers);
- ``/api/v1/...`` the versioned API (``/api/v1/openapi.json``, ``/api/v1/docs``), routes in
  :mod:`.api_write`, :mod:`.api_read`, :mod:`.api_admin`;
- every error is problem+json (:mod:`.problems`); request bodies are size-limited.

Warehouse calls block, so routes run them in the threadpool; writes go through the
Warehouse, whose write fence serialises them (DuckDB's single writer is this process).
``app.state.changes`` is the change feed (in-process writes, and on PostgreSQL the
changes other processes NOTIFY, republished by :class:`.listener.ChangeListener`).
"""

from __future__ import annotations

import logging
import threading
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.engine import make_url

from warehouse.server import (
    api_admin,
    api_alerts,
    api_dashboard_render,
    api_dashboards,
    api_read,
    api_write,
    auth,
    problems,
)
from warehouse.server.listener import ChangeListener

log = logging.getLogger("warehouse.server")
API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class ServerSettings:
    """Limits of a served warehouse (``create_app`` keywords; docs/server.md)."""

    #: Largest request body; an all-or-nothing batch is one request, so this is also the
    #: largest batch (an Arrow body of 1M points with one label column is ~30 MB).
    max_body_bytes: int = 512 * 1024 * 1024
    #: Largest JSON or NDJSON body: parsed JSON takes ~10x its size in memory.
    max_json_body_bytes: int = 64 * 1024 * 1024
    #: Read-only SQL: statements running longer are cancelled; results longer are refused.
    sql_timeout: float = 30.0
    sql_max_rows: int = 1_000_000
    #: Rows a view read returns at most.
    view_max_rows: int = 100_000
    #: Open dashboard WebSockets (/ws) at most, per server and per user (ws.ConnectionLimits);
    #: beyond them a socket is closed with code 1013 and the page retries later.
    ws_max_connections: int = 1000
    ws_max_per_principal: int = 100


class BodyLimit:
    """ASGI middleware: refuse bodies over ``limit`` bytes — at once when Content-Length says
    so, else when the stream passes the limit (chunked uploads)."""

    def __init__(self, app, limit: int):
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    too_big = int(value) > self.limit
                except ValueError:
                    too_big = False
                if too_big:
                    response = problems.problem(
                        413, f"request body larger than the limit of {self.limit} bytes",
                        kind="too-large")
                    await response(scope, receive, send)
                    return
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise problems.BodyTooLarge(self.limit)
            return message

        await self.app(scope, counted, send)


def create_app(wh, *, settings: ServerSettings | None = None, listen: bool = True,
               close_on_shutdown: bool = False, listen_host: str | None = None,
               run_jobs: bool = False, run_alerts: bool = False) -> FastAPI:
    """The HTTP app over ``wh``.

    ``listen``: on an engine that notifies (PostgreSQL), republish changes other processes
    make on ``app.state.changes``. ``close_on_shutdown``: close ``wh`` when the app stops
    (``warehouse serve`` owns its Warehouse; a test or an embedding program may not).
    ``listen_host``: the address served on, for the auth module's open-mode decision.
    ``run_jobs``: run due jobs (rollups, retention, archive...) in a background scheduler
    while serving — with DuckDB the server is the only process that can.
    ``run_alerts``: evaluate alert rules on every committed write (the change feed) and
    deliver notifications (routes from ``WAREHOUSE_ALERTS_CONFIG``; docs/alerts.md).
    """
    settings = settings or ServerSettings()
    url = make_url(wh.url)
    redact = problems.Redactor([url.password] if url.password else [])
    listener = ChangeListener(wh)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        if listen:
            listener.start()
        scheduler = _start_scheduler(wh) if run_jobs else None
        app.state.scheduler = scheduler
        if run_alerts:
            await run_in_threadpool(_start_alerts, wh)
        try:
            yield
        finally:
            listener.stop()
            if run_alerts:
                await run_in_threadpool(wh.alerts.stop)
            if scheduler is not None:
                # Running jobs stop at their next step and are recorded as cancelled.
                await run_in_threadpool(_stop_scheduler, scheduler)
            if close_on_shutdown:
                await run_in_threadpool(wh.close)
                log.info("warehouse closed")

    app = FastAPI(
        title="Recipe Analytics Warehouse", version="1",
        summary="Write and query recipe runs, steps and metric points.",
        openapi_url=f"{API_PREFIX}/openapi.json", docs_url=f"{API_PREFIX}/docs",
        redoc_url=None, lifespan=lifespan,
        responses={"default": {"description": "An error (RFC 9457 problem)",
                               "content": {"application/problem+json": {
                                   "schema": problems.PROBLEM_SCHEMA}}}},
    )
    app.state.warehouse = wh
    app.state.changes = wh.changes
    app.state.settings = settings
    app.state.redact = redact
    app.state.listener = listener
    app.state.listen_host = listen_host
    problems.install(app, redact)
    # Each middleware added wraps the ones before: CatchAll outermost, then BodyLimit, then
    # the fast path of GET /points (a body over the limit is refused before it).
    app.add_middleware(api_read.PointsFastPath, path=f"{API_PREFIX}/points", redact=redact)
    app.add_middleware(BodyLimit, limit=settings.max_body_bytes)
    app.add_middleware(problems.CatchAll, redact=redact)

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"], summary="Readiness: the database answers")
    def readyz(request: Request):
        try:
            revision = wh.revision()
        except Exception as exc:  # noqa: BLE001 - any failure means "not ready"
            return problems.problem(503, f"database not ready: {redact(str(exc).splitlines()[0])}",
                                    kind="not-ready", title="Not ready")
        return {"status": "ready", "revision": revision}

    for module in (api_write, api_read, api_admin, api_dashboards, api_dashboard_render,
                   api_alerts):
        app.include_router(module.router, prefix=API_PREFIX)
    # The auth module chooses its own paths (login pages, /api/v1/tokens ...).
    app.include_router(auth.auth_router())
    # The web dashboard (pages, /ws live updates, /static): docs/dashboard.md.
    from warehouse.server import pages, ws

    app.include_router(pages.router())
    app.include_router(pages.dashboards.builder_router())  # the dashboard builder's forms
    app.include_router(ws.router())
    app.mount("/static", pages.static_files(), name="static")
    return app


def _start_alerts(wh) -> None:
    from warehouse.alerts.job import notify_config_from_env

    wh.alerts.set_notify(notify_config_from_env())
    wh.alerts.start()
    log.info("alert evaluation started (%d rules)", len(wh.alerts.rules))


def _start_scheduler(wh):
    from warehouse.jobs.scheduler import Scheduler

    scheduler = Scheduler(wh)
    scheduler.thread = threading.Thread(target=scheduler.run, kwargs={"install_signals": False},
                                        name="warehouse-scheduler", daemon=True)
    scheduler.thread.start()
    return scheduler


def _stop_scheduler(scheduler) -> None:
    scheduler.stop()
    scheduler.thread.join(scheduler.grace + 5)
    log.info("scheduler stopped")
