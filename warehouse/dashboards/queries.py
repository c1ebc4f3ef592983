"""Evaluating a panel's query through the public API: ``wh.points``, ``wh.runs``,
``wh.steps``, ``wh.sql`` (views and panel SQL) and :mod:`warehouse.analytics`.

Variables arrive resolved (typed values); a ``"$name"`` anywhere in the query is replaced by
its value before the call. Values reach SQL only as binds; the identifiers of a view query
come from the table of documented views in :mod:`warehouse.dashboards.definition`.
"""

from __future__ import annotations

import datetime as dt
import decimal
from typing import TYPE_CHECKING

import pandas as pd

from warehouse import analytics
from warehouse.analytics.compare import compare as compare_runs
from warehouse.analytics.sources import Selection, runs_of, series_frame
from warehouse.dashboards.analysis_cache import CACHE, data_version
from warehouse.dashboards.checks import reference, sql_binds
from warehouse.dashboards.definition import MAX_ROWS, VIEWS, DashboardError
from warehouse.timeparse import aware_timestamp, interval_us

if TYPE_CHECKING:
    from warehouse.core import Warehouse


def substitute(value, variables: dict):
    """``value`` with every whole ``"$name"`` string replaced by the variable's value."""
    if isinstance(value, dict):
        return {k: substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    name = reference(value)
    return variables.get(name) if name is not None else value


def evaluate(wh: Warehouse, query, variables: dict) -> pd.DataFrame:
    """The DataFrame of one panel query (a model of definition.py) with ``variables``."""
    spec = substitute(query.model_dump(), variables)
    kind = spec.pop("kind")
    frame = _sql(wh, query.sql, variables) if kind == "sql" else _KINDS[kind](wh, spec)
    return _decimals_as_floats(frame)


def _decimals_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    # PostgreSQL's numeric arrives as Decimal objects where DuckDB gives floats: the same
    # panel must give the same numbers (and JSON, Excel) on both engines.
    for column in frame.columns:
        if frame[column].dtype == object:
            values = frame[column].dropna()
            if len(values) and all(isinstance(v, decimal.Decimal) for v in values):
                frame[column] = frame[column].astype(float)
    return frame


def _points(wh: Warehouse, spec: dict) -> pd.DataFrame:
    aggs = spec["agg"] if isinstance(spec["agg"], list) else [spec["agg"]]
    labels = {k: v for k, v in (spec.get("labels") or {}).items() if v is not None}
    frames = []
    for agg in aggs:
        frame = wh.points(spec["metric"], spec.get("start"), spec.get("end"),
                          labels=labels or None, every=spec.get("every"), agg=agg,
                          by=spec.get("by"), fill=spec.get("fill"))
        frames.append(_with_series(frame, spec.get("by")))
    if len(frames) == 1:
        return frames[0]
    keys = ["ts", "series"]
    merged = frames[0].rename(columns={"value": aggs[0]})
    for agg, frame in zip(aggs[1:], frames[1:], strict=True):
        merged = merged.merge(frame[[*keys, "value"]].rename(columns={"value": agg}),
                              on=keys, how="outer")
    return merged.sort_values(keys, kind="stable").reset_index(drop=True)


def _with_series(frame: pd.DataFrame, by: list[str] | None) -> pd.DataFrame:
    """A ``series`` column naming each line: the ``by`` labels, else the series' labels."""
    frame = frame.copy()
    if by:
        # Column-wise (a row-wise join took seconds on 15k rows).
        names = frame[by[0]].astype(str)
        for column in by[1:]:
            names = names + "," + frame[column].astype(str)
        frame["series"] = names
    elif "labels" in frame.columns:
        frame["series"] = [",".join(f"{k}={v}" for k, v in sorted((lab or {}).items()))
                           for lab in frame["labels"]]
        frame = frame.drop(columns=["labels"])
    else:
        frame["series"] = ""
    return frame


def _runs(wh: Warehouse, spec: dict) -> pd.DataFrame:
    frame = wh.runs(recipe=spec.get("recipe"), start=spec.get("start"), end=spec.get("end"),
                    status=spec.get("status"), limit=spec.get("limit"))
    return frame.assign(duration_s=frame["duration_us"] / 1e6)


def _steps(wh: Warehouse, spec: dict) -> pd.DataFrame:
    frame = wh.steps(recipe=spec["recipe"], start=spec.get("start"), end=spec.get("end"))
    if spec.get("step") is not None:
        frame = frame[frame["step"] == spec["step"]].reset_index(drop=True)
    return frame.assign(duration_s=frame["duration_us"] / 1e6)


def _view(wh: Warehouse, spec: dict) -> pd.DataFrame:
    # Identifiers come from VIEWS (checked when the document was parsed); values are binds.
    view = spec["view"]
    known, time_column, is_date = VIEWS[view]
    columns = spec.get("columns") or list(known)
    where, binds = [], {}
    for i, (column, value) in enumerate(sorted((spec.get("filters") or {}).items())):
        if column not in known:
            raise DashboardError(f"view {view} has no column {column!r}")
        if value is None:  # an unset optional variable filters nothing
            continue
        where.append(f"{column} = :f{i}")
        binds[f"f{i}"] = value
    if time_column is not None:
        for bound, op in (("start", ">="), ("end", "<")):
            value = spec.get(bound)
            if value is not None:
                where.append(f"{time_column} {op} :{bound}")
                binds[bound] = _as_date(value, bound) if is_date else value
    order = []
    for item in spec.get("order_by") or []:
        column, _, direction = item.strip().partition(" ")
        if column not in known:
            raise DashboardError(f"view {view} has no column {column!r}")
        order.append(f"{column} {'DESC' if direction.strip().lower() == 'desc' else 'ASC'}")
    limit = min(int(spec.get("limit") or MAX_ROWS), MAX_ROWS)
    sql = (f"SELECT {', '.join(columns)} FROM {view}"
           + (f" WHERE {' AND '.join(where)}" if where else "")
           + (f" ORDER BY {', '.join(order)}" if order else "")
           + f" LIMIT {limit}")
    return wh.sql(sql, binds)


def _as_date(value, name: str) -> dt.date:
    """A day column is compared with the UTC date of a time bound (a DATE >= a DATE)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
    if name == "end" and stamp != stamp.normalize():
        stamp = stamp.normalize() + pd.Timedelta(days=1)  # a partial last day is included
    return stamp.date()


def _sql(wh: Warehouse, sql: str, variables: dict) -> pd.DataFrame:
    binds = {}
    for name in sql_binds(sql):
        if name not in variables:
            raise DashboardError(f"bind :{name} is not a variable of the dashboard")
        value = variables[name]
        binds[name] = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
    return wh.sql(sql, binds)


def _analytics(wh: Warehouse, spec: dict) -> pd.DataFrame:
    frame = _analysis(wh, spec)
    limit = spec.get("limit")
    return frame if limit is None else frame.head(limit).reset_index(drop=True)


def _analysis(wh: Warehouse, spec: dict) -> pd.DataFrame:
    # The input is read through the query API on every render; the analysis runs only when
    # that input changed (analysis_cache.py), since it costs far more than the read.
    function = spec["function"]
    if function == "slow_runs":
        # Not cached: finding the slow runs takes about as long as digesting its input.
        return analytics.slow_runs(wh, spec["recipe"], spec.get("start"), spec.get("end"))
    if function == "compare":
        return _compare(wh, spec)
    if function == "bottlenecks":
        runs, steps = runs_of(wh, spec["recipe"], spec.get("start"), spec.get("end"))
        return CACHE.get_or_compute(("bottlenecks", data_version(runs, steps)),
                                    lambda: analytics.bottlenecks(runs, steps=steps))
    start = spec.get("start")
    if spec.get("history") is not None:
        end = aware_timestamp(spec.get("end") or "now", "end")
        earliest = end - pd.Timedelta(microseconds=interval_us(spec["history"]))
        start = earliest if start is None else max(aware_timestamp(start, "start"), earliest)
    select = {"start": start, "end": spec.get("end"), "every": spec.get("every"),
              "agg": spec.get("agg") or "mean"}
    if spec.get("metric") is not None:
        select.update(metric=spec["metric"],
                      labels={k: v for k, v in (spec.get("labels") or {}).items()
                              if v is not None})
    else:
        select.update(recipe=spec["recipe"], step=spec.get("step"))
    selection = Selection(**select)
    if function == "trends" and selection.recipe is not None and not selection.every:
        frame = _durations(wh, selection)
    else:
        frame = series_frame(wh, selection)
    if function == "forecast":
        horizon = spec.get("horizon") or 24
        return CACHE.get_or_compute(("forecast", horizon, data_version(frame)),
                                    lambda: analytics.forecast(frame, horizon))
    method = analytics.anomalies if function == "anomalies" else analytics.trends
    return CACHE.get_or_compute((function, data_version(frame)), lambda: method(frame))


def _compare(wh: Warehouse, spec: dict) -> pd.DataFrame:
    sides = []
    for key in ("a", "b"):
        side = {k: v for k, v in spec[key].items() if v is not None}
        side.setdefault("label", _period_label(side))
        side["start"] = aware_timestamp(side.get("start"), "start")
        side["end"] = aware_timestamp(side.get("end"), "end")
        sides.append(side)
    (ra, sa), (rb, sb) = _compare_inputs(wh, *sides)
    la, lb = sides[0]["label"], sides[1]["label"]
    if la == lb:  # as analytics.compare names two sides that carry the same label
        la, lb = f"a: {la}", f"b: {lb}"
    return CACHE.get_or_compute(
        ("compare", la, lb, data_version(ra, sa, rb, sb)),
        lambda: compare_runs(ra, rb, labels=(la, lb), a_steps=sa, b_steps=sb))


#: What compare reads of a side, through ``wh.sql``: ``wh.runs``/``wh.steps`` parse every
#: column (parameters, attributes, error text), which cost ~2 s per half year of hourly
#: runs on PostgreSQL. Steps: the same runs as ``wh.steps(recipe, start, end)``.
#: Run ids as text: they only pair steps with runs, and building (then digesting) a UUID
#: object per row took half of a warm render's comparison on DuckDB.
_COMPARE_RUNS_SQL = ("SELECT CAST(r.run_id AS VARCHAR) AS run_id, r.started_at, r.status, "
                     "r.duration_us FROM runs AS r WHERE r.recipe = :recipe")
_COMPARE_STEPS_SQL = ("SELECT CAST(s.run_id AS VARCHAR) AS run_id, s.step, s.duration_us "
                      "FROM step_runs AS s JOIN runs AS r ON r.run_id = s.run_id "
                      "WHERE r.recipe = :recipe")


def _compare_inputs(wh: Warehouse, a: dict, b: dict) -> list[tuple[pd.DataFrame, pd.DataFrame]]:
    """(runs, steps) of each side: its recipe's runs started in [start, end) and steps.

    Two periods of one recipe that meet or overlap (the trend dashboard's last period
    against the one before) are read in one pass and split by start time: PostgreSQL
    then scans each step partition once instead of twice. Both sides get all the steps
    read; compare keeps those of the side's runs."""
    if a["recipe"] != b["recipe"] or not (_before(a["start"], b["end"])
                                          and _before(b["start"], a["end"])):
        return [_compare_input(wh, side["recipe"], side["start"], side["end"])
                for side in (a, b)]
    start = None if None in (a["start"], b["start"]) else min(a["start"], b["start"])
    end = None if None in (a["end"], b["end"]) else max(a["end"], b["end"])
    runs, steps = _compare_input(wh, a["recipe"], start, end, check=False)
    started = pd.to_datetime(runs["started_at"], utc=True)
    out = []
    for side in (a, b):
        keep = pd.Series(True, index=runs.index)
        if side["start"] is not None:
            keep &= started >= side["start"]
        if side["end"] is not None:
            keep &= started < side["end"]
        if not keep.any():
            raise ValueError(f"no runs of recipe {side['recipe']!r} in that period")
        out.append((runs[keep].reset_index(drop=True), steps))
    return out


def _before(start, end) -> bool:
    """Whether a period from ``start`` reaches one that ends at ``end`` (None: unbounded)."""
    return start is None or end is None or start <= end


def _compare_input(wh: Warehouse, recipe: str, start, end, *,
                   check: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Runs of ``recipe`` started in [start, end) and their steps: the columns compare uses."""
    where, step_bound, binds = _run_bounds(recipe, start, end)
    # ordered as wh.runs/wh.steps: the analysis cache keys on a digest of the rows, and an
    # unordered scan (DuckDB reads in parallel) would change it on every render
    runs = wh.sql(f"{_COMPARE_RUNS_SQL}{where} ORDER BY r.started_at, r.run_id", binds)
    if check and runs.empty:
        raise ValueError(f"no runs of recipe {recipe!r} in that period")
    return runs, wh.sql(f"{_COMPARE_STEPS_SQL}{where}{step_bound} "
                        "ORDER BY s.run_id, s.started_at, s.ordinal, s.step_id", binds)


#: A recipe's (or one step's) finished durations for trends: the rows and order of
#: ``series_frame`` over ``wh.runs``/``wh.steps``, two columns instead of every one (a year
#: of hourly runs: ~0.35 s of a warm render on PostgreSQL went to wh.runs).
_RUN_DURATIONS_SQL = ("SELECT r.started_at AS ts, r.duration_us FROM runs AS r "
                      "WHERE r.recipe = :recipe AND r.duration_us IS NOT NULL{where} "
                      "ORDER BY r.started_at, r.run_id")
_STEP_DURATIONS_SQL = ("SELECT s.started_at AS ts, s.duration_us FROM step_runs AS s "
                       "JOIN runs AS r ON r.run_id = s.run_id WHERE r.recipe = :recipe "
                       "AND s.step = :step AND s.duration_us IS NOT NULL{where} "
                       "ORDER BY s.run_id, s.started_at, s.ordinal, s.step_id")


def _durations(wh: Warehouse, selection: Selection) -> pd.DataFrame:
    """``series_frame(wh, selection)`` for the durations of a recipe or step, unbucketed."""
    where, step_bound, binds = _run_bounds(selection.recipe, selection.start, selection.end)
    if selection.step is None:
        frame = wh.sql(_RUN_DURATIONS_SQL.format(where=where), binds)
        key = selection.recipe
    else:
        frame = wh.sql(_STEP_DURATIONS_SQL.format(where=where + step_bound),
                       {**binds, "step": selection.step})
        key = f"{selection.recipe}/{selection.step}"
    if frame.empty:
        raise ValueError(f"no finished runs for {selection.describe()} in that period")
    return pd.DataFrame({"ts": pd.to_datetime(frame["ts"], utc=True),
                         "value": frame["duration_us"].astype(float) / 1e6, "key": key})


def _run_bounds(recipe: str, start, end) -> tuple[str, str, dict]:
    """``AND`` clauses for runs (``r``) started in [start, end), the start bound for their
    steps (``s``; a step never starts before its run, so PostgreSQL prunes partitions) and
    the binds."""
    binds = {"recipe": recipe}
    where, step_bound = "", ""
    for name, value, op in (("start", start, ">="), ("end", end, "<")):
        value = aware_timestamp(value, name)
        if value is not None:
            binds[name] = value.to_pydatetime()
            where += f" AND r.started_at {op} :{name}"
            if name == "start":
                step_bound = " AND s.started_at >= :start"
    return where, step_bound, binds


def _period_label(side: dict) -> str:
    def day(value):
        return pd.Timestamp(value).strftime("%Y-%m-%d") if value is not None else ""

    return f"{side['recipe']} {day(side.get('start'))}..{day(side.get('end'))}"


_KINDS = {"points": _points, "runs": _runs, "steps": _steps, "view": _view,
          "analytics": _analytics}

__all__ = ["evaluate", "substitute"]
