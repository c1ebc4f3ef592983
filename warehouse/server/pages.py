"""The web dashboard (issue 12; docs/dashboard.md): server-rendered pages whose URL holds their
state (time range, filters), so a link can be shared.

- ``/`` Overview, ``/recipes/{recipe}``, ``/runs/{run_id}``, ``/recipes/{recipe}/steps/{step}``,
  ``/metrics`` explorer, ``/dashboards``, ``/alerts``, ``/login``;
- every page answers ``?format=json`` (its data, used by the live refresh) and
  ``?format=csv|json&table=NAME`` (one of its tables: the export links);
- ``/static/...`` the page scripts and styles, ``/static/plotly.min.js`` from the installed
  ``plotly`` package (no CDN: the dashboard works offline).

Pages read only through the Warehouse's public API and the documented views. They follow
the API's authentication (:func:`warehouse.server.auth.authenticate`): no credentials ->
the login page; every role may read; edit controls are shown only to callers whose scopes
allow them (the API still checks every change).
"""

from __future__ import annotations

import io
import json
import math
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import quote, urlencode

import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from warehouse.errors import WarehouseError
from warehouse.server.auth import Principal, authenticate
from warehouse.timeparse import interval_us

HERE = Path(__file__).parent
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
          "30d": timedelta(days=30)}
DEFAULT_RANGE = "7d"
PAGE_SIZE = 50
STATUS_FILTERS = ("", "running", "succeeded", "failed", "cancelled")
AGGS = ("mean", "min", "max", "sum", "count", "p50", "p95", "p99", "first", "last")
EVERY = ("auto", "raw", "1m", "5m", "1h", "1d")
#: 'auto' buckets of the metrics explorer: the widest window each width serves (<= ~720 points)
AUTO_EVERY = ((timedelta(hours=6), None), (timedelta(days=2), "5m"), (timedelta(days=31), "1h"))
MAX_EXPORT_ROWS = 100_000
BINARY_FORMATS = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                  "parquet": "application/vnd.apache.parquet"}

_templates = Environment(loader=FileSystemLoader(HERE / "templates"),
                         autoescape=select_autoescape(["html"]))


def _duration(ms) -> str:
    """1234.5 -> '1.23 s'; 95000 -> '1 min 35 s'; None -> '–'."""
    if ms is None or (isinstance(ms, float) and not math.isfinite(ms)):
        return "–"
    ms = float(ms)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.3g} s"
    minutes, seconds = divmod(round(ms / 1000), 60)
    if minutes < 60:
        return f"{minutes} min {seconds} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _when(value) -> str:
    if value in (None, ""):
        return "–"
    return pd.Timestamp(value).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S")


def _bytes(value) -> str:
    if value is None:
        return "–"
    value = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return "–"


_templates.filters.update(duration=_duration, when=_when, bytes=_bytes)
_templates.globals.update(rows=lambda frame: _records(frame))


class PageError(ValueError):
    """Bad page parameters: shown on the page as a message (400)."""


# -- request state ------------------------------------------------------------------------
def time_window(params) -> dict:
    """The page's time range from ``range`` (1h/24h/7d/30d) or ``from``/``to`` (custom: ISO
    with a zone or relative ``now-2d``)."""
    name = params.get("range") or DEFAULT_RANGE
    now = datetime.now(UTC)
    if params.get("from") or params.get("to") or name == "custom":
        start = _parse_when(params.get("from") or "now-7d", "from", now)
        end = _parse_when(params.get("to") or "now", "to", now)
        if start >= end:
            raise PageError(f"'from' ({start:%Y-%m-%d %H:%M}) must be before 'to' "
                            f"({end:%Y-%m-%d %H:%M})")
        return {"name": "custom", "start": start, "end": end}
    if name not in RANGES:
        raise PageError(f"range must be one of {', '.join(RANGES)} or custom, not {name!r}")
    return {"name": name, "start": now - RANGES[name], "end": now}


def _parse_when(text: str, field: str, now: datetime) -> datetime:
    text = text.strip()
    if text.startswith("now"):
        rest = text[3:].strip()
        if not rest:
            return now
        sign = -1 if rest[0] == "-" else 1 if rest[0] == "+" else 0
        try:
            delta = timedelta(microseconds=interval_us(rest[1:].strip())) if sign else None
        except (ValueError, OverflowError):
            delta = None
        if delta is None:
            raise PageError(f"{field!r}: {text!r} is not 'now', 'now-7d' or 'now-12h'")
        try:
            return now + sign * delta
        except OverflowError:
            raise PageError(f"{field!r}: {text!r} is out of range") from None
    try:
        stamp = pd.Timestamp(text)
    except ValueError:
        raise PageError(f"{field!r}: {text!r} is not a time (ISO-8601 or now-7d)") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")  # the picker's datetime-local inputs are UTC
    return stamp.to_pydatetime()


def _int_param(params, name: str, default: int, low: int, high: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise PageError(f"{name!r} must be a whole number, not {raw!r}") from None
    return min(max(value, low), high)


def _choice(params, name: str, allowed, default: str = "") -> str:
    value = params.get(name, default) or default
    if value not in allowed:
        raise PageError(f"{name!r} must be one of {', '.join(a or '(none)' for a in allowed)}, "
                        f"not {value!r}")
    return value


# -- data of each page (blocking: run in the threadpool) ------------------------------------
def _ms(frame: pd.DataFrame, column: str = "duration_us") -> pd.Series:
    return frame[column].astype("float64") / 1000.0


def overview_data(wh, params) -> dict:
    """Every recipe's runs in the window with success %, p50/p95, trend; running runs; the
    latest failures."""
    window = time_window(params)
    start, end = window["start"], window["end"]
    runs = wh.runs(start=start, end=end)
    before = wh.runs(start=start - (end - start), end=start)
    running = wh.runs(status="running")
    rows = []
    for recipe, part in runs.groupby("recipe", sort=True):
        done = part[part["status"] != "running"]
        ms = _ms(done) if len(done) else pd.Series(dtype="float64")
        previous = before[(before["recipe"] == recipe) & (before["status"] != "running")]
        p50 = float(ms.quantile(0.5)) if len(ms) else None
        old = float(_ms(previous).quantile(0.5)) if len(previous) else None
        rows.append({
            "recipe": recipe, "runs": len(part),
            "succeeded": int((part["status"] == "succeeded").sum()),
            "failed": int((part["status"] == "failed").sum()),
            "running": int((running["recipe"] == recipe).sum()),
            "success_pct": round(100.0 * (done["status"] == "succeeded").mean(), 1)
            if len(done) else None,
            "p50_ms": p50, "p95_ms": float(ms.quantile(0.95)) if len(ms) else None,
            "trend": _trend(old, p50), "previous_p50_ms": old})
    recipes = pd.DataFrame(rows, columns=["recipe", "runs", "succeeded", "failed", "running",
                                          "success_pct", "p50_ms", "p95_ms", "trend",
                                          "previous_p50_ms"])
    failures = runs[runs["status"] == "failed"].sort_values("started_at", ascending=False)
    columns = ["run_id", "recipe", "started_at", "duration_us", "status", "error_type",
               "error_message"]
    return {"window": window, "tables": {
        "recipes": recipes,
        "running": running.sort_values("started_at", ascending=False)[
            ["run_id", "recipe", "started_at", "host", "last_seen_at"]].head(100),
        "failures": failures[columns].head(20)},
        "subscribe": {"kinds": ["runs", "steps"]}}


def _trend(old: float | None, new: float | None) -> str:
    """'up' (slower by over 10%), 'down' (faster by over 10%), 'flat', or '' (no basis)."""
    if old is None or new is None or old <= 0:
        return ""
    ratio = new / old
    return "up" if ratio > 1.1 else "down" if ratio < 1 / 1.1 else "flat"


def recipe_data(wh, params, recipe: str) -> dict:
    """A recipe's runs (chart and a page of the table) and its steps ranked by time share."""
    window = time_window(params)
    status = _choice(params, "status", STATUS_FILTERS)
    runs = wh.runs(recipe=recipe, start=window["start"], end=window["end"],
                   status=status or None).sort_values("started_at", ascending=False)
    pages = max(1, math.ceil(len(runs) / PAGE_SIZE))
    page = _int_param(params, "page", 1, 1, pages)
    # A run in progress has no duration yet: chart it at its elapsed time so far.
    elapsed = (pd.Timestamp.now(tz="UTC") - runs["started_at"]).dt.total_seconds() * 1000.0
    runs = runs.assign(duration_ms=_ms(runs).where(runs["status"] != "running", elapsed))
    steps = wh.steps(recipe=recipe, start=window["start"], end=window["end"])
    steps = steps[steps["run_id"].isin(runs["run_id"])]
    total = float(runs["duration_us"].sum()) or 1.0
    ranked = (steps.groupby("step").agg(executions=("step_id", "size"),
                                        failed=("status", lambda s: int((s == "failed").sum())),
                                        total_us=("duration_us", "sum"),
                                        p50_us=("duration_us", "median"))
              .reset_index())
    ranked["share_pct"] = (100.0 * ranked["total_us"].astype("float64") / total).round(1)
    ranked["p50_ms"] = ranked["p50_us"].astype("float64") / 1000.0
    ranked = ranked.sort_values("share_pct", ascending=False)[
        ["step", "executions", "failed", "share_pct", "p50_ms"]]
    chart = runs[["run_id", "started_at", "duration_ms", "status"]]
    table = runs[["run_id", "started_at", "finished_at", "duration_ms", "status", "host",
                  "error_type"]]
    return {"window": window, "recipe": recipe, "status": status, "page": page,
            "pages": pages, "total_runs": len(runs),
            "tables": {"runs": table.iloc[(page - 1) * PAGE_SIZE: page * PAGE_SIZE],
                       "all_runs": chart, "steps": ranked},
            "subscribe": {"kinds": ["runs"], "recipes": [recipe]}}


def run_data(wh, params, run_id: str) -> dict:
    """One run: its row, the Gantt timeline of its steps, their resources, its metrics."""
    try:
        run_id = str(uuid.UUID(run_id))
    except ValueError:
        raise HTTPException(404, f"no run with id {run_id!r} (run ids are UUIDs)") from None
    run = wh.sql("SELECT * FROM runs WHERE run_id = :run_id", {"run_id": run_id})
    if run.empty:
        raise HTTPException(404, f"no run with id {run_id!r}")
    timeline = wh.sql("SELECT step_id, step, ordinal, attempt, status, host, start_offset_ms, "
                      "end_offset_ms, duration_ms FROM run_timeline WHERE run_id = :run_id "
                      "ORDER BY ordinal, attempt", {"run_id": run_id})
    steps = wh.steps(run_id)
    resources = steps.sort_values(["started_at", "step"])[[
        "step", "attempt", "status", "cpu_user_us", "cpu_system_us", "peak_rss_bytes",
        "read_bytes", "written_bytes", "error_type", "error_message"]]
    metrics = wh.sql("SELECT s.metric, p.ts, p.value FROM points AS p JOIN series AS s "
                     "ON s.series_id = p.series_id WHERE p.run_id = :run_id "
                     "ORDER BY s.metric, p.ts LIMIT 1000", {"run_id": run_id})
    return {"run": _records(run)[0], "recipe": run["recipe"].iloc[0],
            "tables": {"timeline": timeline, "resources": resources, "metrics": metrics},
            "subscribe": {"kinds": ["runs", "steps"], "run_ids": [run_id]}}


def step_data(wh, params, recipe: str, step: str) -> dict:
    """One step of a recipe across runs in the window: duration, status, resources."""
    window = time_window(params)
    steps = wh.steps(recipe=recipe, start=window["start"], end=window["end"])
    steps = steps[steps["step"] == step].sort_values("started_at", ascending=False)
    steps = steps.assign(duration_ms=_ms(steps))
    table = steps[["run_id", "started_at", "duration_ms", "attempt", "status", "host",
                   "cpu_user_us", "peak_rss_bytes", "error_type"]]
    return {"window": window, "recipe": recipe, "step": step,
            "tables": {"executions": table.head(1000)},
            "subscribe": {"kinds": ["steps"], "recipes": [recipe]}}


def metrics_data(wh, params) -> dict:
    """The metrics explorer: one metric, label filters, every/agg/by, the window."""
    window = time_window(params)
    names = wh.sql("SELECT DISTINCT metric FROM series ORDER BY metric")["metric"].tolist()
    metric = params.get("metric") or (names[0] if names else "")
    every = _choice(params, "every", EVERY, "auto")
    width = {"auto": _auto_every(window), "raw": None}.get(every, every)
    agg = _choice(params, "agg", AGGS, "mean")
    labels = {}
    for item in (params.get("labels") or "").split(","):
        if item.strip():
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise PageError(f"labels: {item.strip()!r} is not name=value")
            labels[key.strip()] = value.strip()
    by = [b.strip() for b in (params.get("by") or "").split(",") if b.strip()]
    points = pd.DataFrame(columns=["ts", "value"])
    if metric:
        points = wh.points(metric, window["start"], window["end"], labels=labels or None,
                           every=width, agg=agg, by=by or None)
    keys = by or sorted({k for row in points.get("labels", []) for k in (row or {})})
    points = points.assign(series=_series_names(points, keys)).sort_values(["series", "ts"])
    shown = points[["series", "ts", "value"]].head(MAX_EXPORT_ROWS)
    return {"window": window, "metrics": names, "metric": metric, "every": every,
            "bucket": width, "agg": agg,
            "labels": params.get("labels") or "", "by": ",".join(by),
            "tables": {"points": shown},
            "subscribe": {"kinds": ["points"], "metrics": [metric] if metric else []}}


def _auto_every(window: dict) -> str | None:
    span = window["end"] - window["start"]
    return next((every for widest, every in AUTO_EVERY if span <= widest), "1d")


def _series_names(points: pd.DataFrame, keys: list[str]) -> list[str]:
    """'host=worker-1,recipe=etl' per row: from the group-by columns, else the labels of
    each series (named once per series, not per point)."""
    if points.empty:
        return []
    if "series_id" not in points.columns:  # grouped: one series per combination of keys
        return [",".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
                for values in points[keys].astype(str).itertuples(index=False)]
    named = {}
    for series_id, labels in points.drop_duplicates("series_id")[
            ["series_id", "labels"]].itertuples(index=False):
        labels = labels if isinstance(labels, dict) else {}
        named[series_id] = ",".join(f"{k}={labels.get(k, '')}" for k in keys) or str(series_id)
    return points["series_id"].map(named).tolist()


# -- rendering -----------------------------------------------------------------------------
def _plain(value):
    if value is None or value is pd.NaT:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, datetime | pd.Timestamp):
        return pd.Timestamp(value).isoformat()
    if hasattr(value, "item"):
        return _plain(value.item())
    return value


def _records(frame: pd.DataFrame) -> list[dict]:
    return [{str(k): _plain(v) for k, v in row.items()}
            for row in frame.to_dict(orient="records")]


def page_json(data: dict) -> dict:
    """A page's data as plain JSON values (frames as lists of records)."""
    out = {}
    for key, value in data.items():
        if key == "tables":
            out[key] = {name: _records(frame) for name, frame in value.items()}
        elif key == "window":
            out[key] = {"name": value["name"], "start": value["start"].isoformat(),
                        "end": value["end"].isoformat()}
        else:
            out[key] = value
    return out


def _script_json(value) -> str:
    # Inside <script type="application/json">: "</script>" in data must not close the tag.
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def export(data: dict, table: str, fmt: str, filename: str) -> Response:
    """One table of a page as CSV, JSON, XLSX or Parquet (a download)."""
    tables = data["tables"]
    if table not in tables:
        raise PageError(f"table must be one of {', '.join(tables)}, not {table!r}")
    frame = tables[table].head(MAX_EXPORT_ROWS)
    disposition = {"Content-Disposition": f'attachment; filename="{filename}-{table}.{fmt}"'}
    if fmt == "csv":
        buffer = io.StringIO()
        frame.map(_csv_cell).to_csv(buffer, index=False)
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                        headers=disposition)
    if fmt in BINARY_FORMATS:
        # The export area's writers (typed XLSX cells, never formulas; zstd Parquet).
        from warehouse import export as exporter

        buffer = io.BytesIO()
        try:
            if fmt == "xlsx":
                exporter.to_xlsx({table: frame}, buffer)
            else:
                exporter.to_parquet(frame, buffer)
        except ValueError as exc:  # e.g. more rows than a sheet holds
            raise PageError(str(exc)) from None
        return Response(buffer.getvalue(), media_type=BINARY_FORMATS[fmt], headers=disposition)
    return Response(json.dumps(_records(frame), default=str), media_type="application/json",
                    headers=disposition)


def _csv_cell(value):
    """A CSV cell; text that a spreadsheet would run as a formula (a recipe name or an error
    message starting with '=', '+', '-', '@') is prefixed with a quote (OWASP CSV injection)."""
    value = _plain(value)
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    if isinstance(value, dict | list):
        return json.dumps(value, default=str)
    return value


def _filters(request: Request, **changes) -> str:
    """This page's query string with ``changes`` applied (None removes a key)."""
    params = dict(request.query_params)
    params.pop("format", None)
    params.pop("table", None)
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return "?" + urlencode(params) if params else ""


async def page_reader(request: Request) -> Principal | None:
    """FastAPI dependency of every page: the caller if it may read (403 otherwise). A browser
    without credentials (it asks for HTML and sends no Authorization header) gets None, and
    the page sends it to the login page; any other caller gets the API's 401 problem."""
    try:
        principal = await authenticate(request)
    except HTTPException as exc:
        browser = "text/html" in request.headers.get("accept", "")
        if exc.status_code == 401 and browser and "authorization" not in request.headers:
            return None
        raise
    if "read" not in principal.scopes:
        raise HTTPException(403, f"{principal.name!r} ({principal.role}) lacks the 'read' "
                                 f"scope pages need")
    return principal


page_reader.required_scope = "read"  # read by auth.required_scope (permission tests)
Reader = Annotated[Principal | None, Depends(page_reader)]


async def _page(request: Request, principal: Principal | None, template: str, loader, *args,
                title: str) -> Response:
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(target, safe=""), status_code=303)
    params = request.query_params
    fmt = params.get("format")
    context = {"request": request, "title": title, "principal": principal,
               "can_write": "write" in principal.scopes, "can_admin": "admin" in principal.scopes,
               "filters": lambda **c: _filters(request, **c), "ranges": list(RANGES),
               "path": request.url.path}
    try:
        data = await run_in_threadpool(loader, request.app.state.warehouse, params, *args)
    except (PageError, HTTPException, WarehouseError) as exc:  # e.g. an unknown metric
        status, detail = (exc.status_code, exc.detail) if isinstance(exc, HTTPException) \
            else (400, str(exc))
        if fmt:
            raise HTTPException(status, detail) from None
        context.update(error=detail, data={"tables": {}}, page_data="{}")
        return HTMLResponse(_templates.get_template("error.html").render(context),
                            status_code=status)
    try:
        if fmt in ("csv", "json", *BINARY_FORMATS) and params.get("table"):
            return export(data, params["table"], fmt, template.removesuffix(".html"))
        if fmt == "json":
            return Response(json.dumps(page_json(data), default=str),
                            media_type="application/json")
        if fmt:
            raise PageError(f"format must be csv, json, xlsx or parquet, not {fmt!r}")
    except PageError as exc:
        raise HTTPException(400, str(exc)) from None
    context.update(data=data, page_data=_script_json(page_json(data)))
    return HTMLResponse(_templates.get_template(template).render(context))


def router() -> APIRouter:
    """The dashboard's pages (HTML; excluded from the OpenAPI document)."""
    pages = APIRouter(include_in_schema=False)

    @pages.get("/")
    async def overview(request: Request, principal: Reader):
        return await _page(request, principal, "overview.html", overview_data, title="Overview")

    # Recipe and step names may hold '/' (ingest allows it): path parameters, steps first.
    @pages.get("/recipes/{recipe:path}/steps/{step:path}")
    async def step(request: Request, recipe: str, step: str, principal: Reader):
        return await _page(request, principal, "step.html", step_data, recipe, step,
                           title=f"{recipe} / {step}")

    @pages.get("/recipes/{recipe:path}")
    async def recipe(request: Request, recipe: str, principal: Reader):
        return await _page(request, principal, "recipe.html", recipe_data, recipe, title=recipe)

    @pages.get("/runs/{run_id}")
    async def run(request: Request, run_id: str, principal: Reader):
        return await _page(request, principal, "run.html", run_data, run_id, title=f"Run {run_id[:8]}")

    @pages.get("/metrics")
    async def metrics(request: Request, principal: Reader):
        return await _page(request, principal, "metrics.html", metrics_data, title="Metrics")

    @pages.get("/dashboards")
    async def dashboards(request: Request, principal: Reader):
        return await _page(request, principal, "dashboards.html", dashboards_data, principal,
                           title="Dashboards")

    @pages.get("/dashboards/{dashboard_id}")
    async def dashboard(request: Request, dashboard_id: str, principal: Reader):
        return await _page(request, principal, "dashboard.html", dashboard_data, principal,
                           dashboard_id, title=dashboard_id)

    @pages.get("/alerts")
    async def alerts(request: Request, principal: Reader):
        return await _page(request, principal, "alerts.html", alerts_data, title="Alerts")

    # Public by design (plain routes, like the API docs page): the login form, Plotly.js.
    pages.add_route("/login", login_page, methods=["GET"], include_in_schema=False)
    pages.add_route("/static/plotly.min.js", plotly_js, methods=["GET"], include_in_schema=False)
    return pages


async def login_page(request: Request) -> Response:
    """The login form; it posts to ``/api/v1/auth/login`` and then opens ``next``."""
    target = request.query_params.get("next") or "/"
    if not target.startswith("/") or target.startswith(("//", "/\\")):
        target = "/"  # only this site's pages: no open redirect
    return HTMLResponse(_templates.get_template("login.html").render(
        {"request": request, "title": "Log in", "next": target, "principal": None,
         "data": {"tables": {}}, "page_data": "{}", "ranges": []}))


async def plotly_js(request: Request) -> Response:
    """Plotly.js from the installed ``plotly`` package (no CDN: works offline)."""
    import plotly

    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return FileResponse(path, media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


def dashboards_data(wh, params, principal) -> dict:
    """The built-in templates and the stored dashboards this caller may read."""
    try:
        from warehouse.dashboards import templates
    except ImportError as exc:  # the dashboards area is not installed
        return {"available": False, "reason": str(exc), "tables": {}, "subscribe": {}}
    built_in = pd.DataFrame([{"id": t.id, "title": t.title, "description": t.description}
                             for t in templates()])
    stored = wh.dashboards.list(user=principal.name, role=principal.role)
    return {"available": True, "tables": {"built_in": built_in, "stored": stored},
            "subscribe": {}}


def dashboard_data(wh, params, principal, dashboard_id: str) -> dict:
    """One dashboard (stored, if the caller may read it, or built-in) rendered with the
    variables in the URL; the page's window fills its start/end variables."""
    from warehouse.dashboards import BUILT_IN, DashboardError, template

    store = wh.dashboards
    if store.exists(dashboard_id):
        stored = store.get(dashboard_id)
        if not stored.readable_by(principal.name, principal.role):
            raise HTTPException(404, f"no dashboard {dashboard_id!r} you may read")
        document = stored.document
    elif dashboard_id in BUILT_IN:
        document = template(dashboard_id)
    else:
        raise HTTPException(404, f"no dashboard {dashboard_id!r}")
    window = time_window(params)
    variables = {v.name: params[v.name] for v in document.variables if params.get(v.name)}
    names = {v.name for v in document.variables}
    for name in ("start", "end"):
        if name in names:
            variables.setdefault(name, window[name].isoformat())
    panels, tables, problem = [], {}, None
    try:
        rendered = store.render(document, variables).panels
    except (DashboardError, ValueError) as exc:  # e.g. a required variable not given yet
        rendered, problem = [], str(exc)
    for panel in rendered:
        if panel.frame is not None:
            tables[panel.id] = panel.frame
        panels.append({"id": panel.id, "title": panel.title, "type": panel.type,
                       "grid": panel.grid, "error": panel.error, "value": _plain(panel.value),
                       "figure": json.loads(json.dumps(panel.figure, default=str))
                       if panel.figure else None})
    inputs = [{"name": v.name, "label": v.label or v.name, "value": variables.get(v.name, "")}
              for v in document.variables if v.name not in ("start", "end")]
    title = document.title
    for name, value in variables.items():
        title = title.replace("${" + name + "}", str(value))
    return {"window": window, "dashboard": {"id": dashboard_id, "title": title,
                                            "description": document.description},
            "variables": inputs, "panels": panels, "tables": tables, "problem": problem,
            "subscribe": {"kinds": ["runs", "points"]}}


def alerts_data(wh, params) -> dict:
    """Alert rules and their current (firing/pending) instances, if the alerts area is
    installed; else an 'available: False' state saying why."""
    try:
        from warehouse.alerts import store
    except ImportError as exc:
        return {"available": False, "reason": str(exc), "tables": {}, "subscribe": {}}
    rules = pd.DataFrame([{"name": r.name, "kind": r.kind} for r in store.load_rules(wh)],
                         columns=["name", "kind"])
    columns = ["rule", "state", "value", "labels", "active_at", "fired_at"]
    instances = pd.DataFrame(
        [{"rule": i.rule_name, "state": i.state, "value": i.value,
          "labels": json.dumps(i.labels, default=str, sort_keys=True),
          "active_at": i.active_at, "fired_at": i.fired_at}
         for i in store.load_instances(wh) if i.state != "inactive"], columns=columns)
    return {"available": True, "tables": {"rules": rules, "instances": instances},
            "subscribe": {}}


def static_files() -> StaticFiles:
    """The page scripts and styles (``/static``)."""
    return StaticFiles(directory=HERE / "static")
