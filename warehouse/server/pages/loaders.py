"""The data each dashboard page reads (blocking: run in the threadpool), from its URL
parameters, through the Warehouse's public API and the documented views only."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pandas as pd
from fastapi import HTTPException

from warehouse.server.pages.render import MAX_EXPORT_ROWS, PageError, records
from warehouse.timeparse import interval_us

HOUR = pd.Timedelta(hours=1)
RANGES = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7),
          "30d": timedelta(days=30)}
DEFAULT_RANGE = "7d"
PAGE_SIZE = 50
STATUS_FILTERS = ("", "running", "succeeded", "failed", "cancelled")
AGGS = ("mean", "min", "max", "sum", "count", "p50", "p95", "p99", "first", "last")
EVERY = ("auto", "raw", "1m", "5m", "1h", "1d")
#: 'auto' buckets of the metrics explorer: the widest window each width serves (<= ~720 points)
AUTO_EVERY = ((timedelta(hours=6), None), (timedelta(days=2), "5m"), (timedelta(days=31), "1h"))


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
    latest failures. Two queries: the window with the one before it (the trend's basis), and
    the runs in progress now (whenever they started)."""
    window = time_window(params)
    start, end = window["start"], window["end"]
    both = wh.runs(start=start - (end - start), end=end)
    running = wh.runs(status="running")
    runs, before = both[both["started_at"] >= start], both[both["started_at"] < start]
    recipes = _recipe_stats(runs, before, running)
    failures = runs[runs["status"] == "failed"].sort_values("started_at", ascending=False)
    columns = ["run_id", "recipe", "started_at", "duration_us", "status", "error_type",
               "error_message"]
    return {"window": window, "tables": {
        "recipes": recipes,
        "running": running.sort_values("started_at", ascending=False)[
            ["run_id", "recipe", "started_at", "host", "last_seen_at"]].head(100),
        "failures": failures[columns].head(20)},
        "subscribe": {"kinds": ["runs", "steps"]}}


def _recipe_stats(runs: pd.DataFrame, before: pd.DataFrame, running: pd.DataFrame
                  ) -> pd.DataFrame:
    """One row per recipe with runs in the window, computed per column over all recipes at
    once (a loop over recipes cost as much as the queries)."""
    by = runs.groupby("recipe", sort=True)
    stats = pd.DataFrame({"runs": by.size()})
    stats.index.name = "recipe"
    for status in ("succeeded", "failed"):
        stats[status] = (runs["status"] == status).groupby(runs["recipe"]).sum()
    stats["running"] = running.groupby("recipe").size().reindex(stats.index, fill_value=0)
    done = runs[runs["status"] != "running"]
    done_ms = _ms(done).groupby(done["recipe"])
    stats["success_pct"] = (100.0 * (done["status"] == "succeeded")
                            .groupby(done["recipe"]).mean()).round(1)
    stats["p50_ms"], stats["p95_ms"] = done_ms.quantile(0.5), done_ms.quantile(0.95)
    previous = before[before["status"] != "running"]
    stats["previous_p50_ms"] = _ms(previous).groupby(previous["recipe"]).quantile(0.5)
    stats = stats.astype({"runs": "int64", "succeeded": "int64", "failed": "int64",
                          "running": "int64"})
    optional = ["success_pct", "p50_ms", "p95_ms", "previous_p50_ms"]
    stats[optional] = stats[optional].astype(object).where(stats[optional].notna(), None)
    stats["trend"] = [_trend(old, new) for old, new in
                      zip(stats["previous_p50_ms"], stats["p50_ms"], strict=True)]
    return stats.reset_index()[["recipe", "runs", "succeeded", "failed", "running",
                                "success_pct", "p50_ms", "p95_ms", "trend", "previous_p50_ms"]]


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
    # Bounded by the run's time (an hour of slack each side for points stamped just
    # outside it): run_id has no index, and the bound lets the engine read only the chunks
    # of the run instead of every point. Hot points only: a run old enough for its chunk to
    # be compressed or archived shows none here (the Metrics page reads those too).
    started = pd.Timestamp(run["started_at"].iloc[0])
    finished = run["finished_at"].iloc[0] if "finished_at" in run else None
    finished = pd.Timestamp.now(tz="UTC") if pd.isna(finished) else pd.Timestamp(finished)
    metrics = wh.sql("SELECT s.metric, p.ts, p.value FROM points AS p JOIN series AS s "
                     "ON s.series_id = p.series_id WHERE p.run_id = :run_id "
                     "AND p.ts >= :start AND p.ts <= :end "
                     "ORDER BY s.metric, p.ts LIMIT 1000",
                     {"run_id": run_id, "start": (started - HOUR).to_pydatetime(),
                      "end": (finished + HOUR).to_pydatetime()})
    return {"run": records(run)[0], "recipe": run["recipe"].iloc[0],
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
