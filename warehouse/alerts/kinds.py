"""What each rule kind reads and which label sets breach it now.

Each ``eval_<kind>(wh, rule, now)`` returns an :class:`Outcome`: whether there was data at
all (NoData otherwise) and the samples whose condition holds — one per label set, as a
Prometheus alerting rule's query returns only the series that match. Metrics are read
through the query API, runs and steps through ``sql/common/alerts/``, SQL rules through
``wh.sql`` (read-only by construction) and anomalies/forecasts through
:mod:`warehouse.analytics` only.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from warehouse.alerts.rules import Rule, compare
from warehouse.alerts.store import aware, run
from warehouse.errors import UnknownNameError

if TYPE_CHECKING:
    from warehouse.core import Warehouse

#: How far back a run may have started and still be looked at (partition pruning on
#: started_at; a run longer than this is not seen finishing by run rules).
RUN_LOOKBACK = timedelta(days=7)


@dataclass(frozen=True)
class Sample:
    """One label set whose condition holds now, with its value (and run for the link)."""

    labels: dict
    value: float | None
    run_id: str | None = None


@dataclass
class Outcome:
    """The result of evaluating one rule once. ``scope``: the label sets this evaluation
    judged (None: all of the rule's); an incremental evaluation judges only the series or
    runs a write touched, and leaves the rule's other instances as they are."""

    has_data: bool
    samples: list[Sample] = field(default_factory=list)
    scope: list[dict] | None = None


def evaluate(wh: Warehouse, rule: Rule, now: datetime) -> Outcome:
    """Evaluate ``rule`` at ``now``; raises whatever reading the data raised (an
    evaluation error, handled by the rule's ``error_state``)."""
    return _KINDS[rule.kind](wh, rule, pd.Timestamp(now).tz_convert("UTC"))


def _us(value: str) -> timedelta:
    from warehouse.timeparse import interval_us

    return timedelta(microseconds=interval_us(value))


def series_values(wh: Warehouse, rule: Rule, now: pd.Timestamp,
                  start: pd.Timestamp | None = None, metrics: list[str] | None = None
                  ) -> pd.DataFrame:
    """The rule's metric (or ``metrics``, for rules batched together) in its window: ts,
    metric, value, labels (dict), run_id, key (JSON labels)."""
    spec = rule.spec
    start = start if start is not None else now - _us(spec["window"])
    end = now + pd.Timedelta(microseconds=1)  # the query reads [start, end): include now
    columns = ["ts", "metric", "value", "labels", "run_id", "key"]
    try:
        frame = wh.points(metrics or spec["metric"], start, end, labels=spec.get("match"),
                          every=spec.get("every"), agg=spec.get("agg") or "mean")
    except UnknownNameError:
        if metrics and len(metrics) > 1:
            raise  # which one is unknown: the batch falls back to one query per rule
        return pd.DataFrame(columns=columns)  # no series yet: NoData, not an error
    if frame.empty:
        return pd.DataFrame(columns=columns)
    frame = frame.sort_values("ts")
    # one key per series: its id (cheap), else its labels
    frame["key"] = (frame["series_id"] if "series_id" in frame.columns
                    else frame["labels"].map(lambda lab: json.dumps(lab, sort_keys=True)))
    if "metric" not in frame.columns:
        frame["metric"] = spec["metric"]
    if "run_id" not in frame.columns:
        frame["run_id"] = None
    return frame[columns].reset_index(drop=True)


def eval_threshold(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    return threshold_outcome(rule, series_values(wh, rule, now))


def threshold_outcome(rule: Rule, frame: pd.DataFrame) -> Outcome:
    """Which series of ``frame`` (the rule's window) breach the threshold."""
    return threshold_outcomes([rule], frame)[rule.name]


def threshold_outcomes(rules: list[Rule], frame: pd.DataFrame) -> dict[str, Outcome]:
    """Threshold rules sharing window/every/agg/match, over one frame of all their metrics:
    one groupby per (metric, series) for all of them, then a comparison per series."""
    if frame.empty:
        return {r.name: Outcome(False) for r in rules}
    spec = rules[0].spec
    frame = frame.assign(value=frame["value"].astype(float))
    groups = frame.groupby(["metric", "key"], sort=True)
    # with every: the newest bucket, already aggregated; first/last skip missing values
    how = "last" if spec.get("every") else spec["agg"]
    values = (groups["value"].quantile(int(how[1:]) / 100) if how.startswith("p")
              else groups["value"].agg(how))
    labels = groups["labels"].first()
    run_ids = groups["run_id"].last()  # newest non-null run of the series, for the link
    by_metric: dict[str, list] = {}
    for (metric, _series), value, lab, run_id in zip(values.index, values.to_numpy(),
                                                 labels.to_numpy(), run_ids.to_numpy()):
        by_metric.setdefault(metric, []).append(
            (float(value), lab, None if pd.isna(run_id) else str(run_id)))
    out = {}
    for rule in rules:
        series = by_metric.get(rule.metric)
        op, threshold = rule.spec["op"], rule.spec["threshold"]
        out[rule.name] = Outcome(series is not None, [
            Sample(dict(lab), value, run_id) for value, lab, run_id in series or ()
            if compare(op, value, threshold)])
    return out


def evaluate_many(wh: Warehouse, rules: list[Rule], now: datetime
                  ) -> dict[str, tuple[Outcome | None, str | None]]:
    """Evaluate several rules: rule name -> (outcome, None) or (None, error text).

    Threshold rules with the same window, every, agg and match read their metrics in one
    query (a write batch touching hundreds of rules costs a few queries, not hundreds); if
    that query fails, each rule is evaluated alone so one bad rule cannot fail the rest."""
    now = pd.Timestamp(now).tz_convert("UTC")
    out: dict[str, tuple[Outcome | None, str | None]] = {}
    batches: dict[tuple, list[Rule]] = {}
    for rule in rules:
        if rule.kind == "threshold":
            spec = rule.spec
            key = (spec["window"], spec.get("every"), spec["agg"],
                   json.dumps(spec.get("match"), sort_keys=True))
            batches.setdefault(key, []).append(rule)
        else:
            out[rule.name] = _safe(wh, rule, now)
    for group in batches.values():
        metrics = sorted({r.metric for r in group})
        spec = group[0].spec
        if spec["agg"] == "last" and not spec.get("every"):
            try:
                frame = newest_points(wh, group[0], metrics, now)
            except Exception:  # noqa: BLE001 - the general path below still answers
                frame = None
            if frame is not None:
                out.update({name: (outcome, None)
                            for name, outcome in threshold_outcomes(group, frame).items()})
                continue
        if len(group) == 1:
            out[group[0].name] = _safe(wh, group[0], now)
            continue
        try:
            frame = series_values(wh, group[0], now, metrics=metrics)
        except Exception:  # noqa: BLE001 - fall back to one query per rule
            out.update({r.name: _safe(wh, r, now) for r in group})
            continue
        out.update({name: (outcome, None)
                    for name, outcome in threshold_outcomes(group, frame).items()})
    return out


def newest_points(wh: Warehouse, rule: Rule, metrics: list[str], now: pd.Timestamp
                  ) -> pd.DataFrame | None:
    """For ``agg: last`` without ``every``: the newest point of each series, if it is in
    the window — one row per series from ``series_last`` instead of every point of the
    window. None (use the general query) when a series has a point after ``now`` (a
    replay of the past, a clock ahead), where the newest point is not the one to judge."""
    start = now - _us(rule.spec["window"])
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "series_last_of", {
            "metrics": metrics, "start": start.to_pydatetime(),
            "end": datetime(9999, 12, 31, tzinfo=now.tzinfo)}).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows],
                         columns=["metric", "series_id", "labels", "ts", "value"])
    if frame.empty:
        return frame.assign(run_id=None, key=None)
    if (pd.to_datetime(frame["ts"], utc=True) > now).any():
        return None
    frame["labels"] = frame["labels"].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    match = rule.spec.get("match") or {}
    if match:
        frame = frame[frame["labels"].map(
            lambda lab: all(str(lab.get(k)) == v for k, v in match.items()))]
    return frame.assign(run_id=None, key=frame["series_id"])


def _safe(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> tuple[Outcome | None, str | None]:
    try:
        return evaluate(wh, rule, now), None
    except Exception as exc:  # noqa: BLE001 - an evaluation error is a rule state
        return None, f"{type(exc).__name__}: {exc}"[:1000]


def _runs(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> pd.DataFrame:
    start = now - _us(rule.spec["window"])
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "runs_in_window", {
            "since": (start - RUN_LOOKBACK).to_pydatetime(), "start": start.to_pydatetime(),
            "end": now.to_pydatetime(), "recipe": rule.spec.get("recipe")}).mappings().all()
    return pd.DataFrame([dict(r) for r in rows],
                        columns=["run_id", "recipe", "status", "started_at", "finished_at",
                                 "duration_us"])


def eval_run_failed(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    runs = _runs(wh, rule, now)
    failed = runs[runs["status"] == "failed"]
    return Outcome(True, [Sample({"recipe": r.recipe, "run_id": r.run_id}, 1.0, r.run_id)
                          for r in failed.itertuples()])


def eval_run_duration(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    spec = rule.spec
    runs = _runs(wh, rule, now)
    if runs.empty:
        return Outcome(True)
    # A running run counts with the time it has taken so far: a stuck run alerts too.
    seconds = [(d / 1e6 if d is not None and d == d and status != "running"
                else (now - pd.Timestamp(aware(started))).total_seconds())
               for d, status, started in zip(runs["duration_us"], runs["status"],
                                             runs["started_at"])]
    runs = runs.assign(seconds=seconds)
    limits: dict[str, float] = {}
    if spec["max_duration"] is not None:
        limits = dict.fromkeys(runs["recipe"], _us(spec["max_duration"]).total_seconds())
    else:
        baseline_end = now - _us(spec["window"])
        with wh.engine.connect() as conn:
            rows = run(conn, wh, "recipe_durations", {
                "since": (baseline_end - _us(spec["baseline"])).to_pydatetime(),
                "until": baseline_end.to_pydatetime(),
                "recipe": spec.get("recipe")}).mappings().all()
        base = pd.DataFrame([dict(r) for r in rows], columns=["recipe", "duration_us"])
        for recipe, group in base.groupby("recipe"):
            if len(group) >= spec["min_runs"]:
                p95 = float(np.percentile(group["duration_us"].astype(float) / 1e6, 95))
                limits[recipe] = p95 * spec["p95_factor"]
    samples = [Sample({"recipe": r.recipe, "run_id": r.run_id}, float(r.seconds), r.run_id)
               for r in runs.itertuples()
               if r.recipe in limits and r.seconds > limits[r.recipe]]
    return Outcome(True, samples)


def eval_dead_man(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    within = _us(rule.spec["within"])
    with wh.engine.connect() as conn:
        last_ok = run(conn, wh, "last_success", {
            "recipe": rule.spec["recipe"],
            "since": (now - within - RUN_LOOKBACK).to_pydatetime()}).scalar()
    last_ok = aware(last_ok)
    age = math.nan if last_ok is None else (now.to_pydatetime() - last_ok).total_seconds()
    if last_ok is not None and age <= within.total_seconds():
        return Outcome(True)
    return Outcome(True, [Sample({"recipe": rule.spec["recipe"]}, age)])


def eval_step_error_rate(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    spec = rule.spec
    start = now - _us(spec["window"])
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "step_errors", {
            "recipe": spec["recipe"], "step": spec.get("step"),
            "start": start.to_pydatetime(), "end": now.to_pydatetime(),
            "since": (start - RUN_LOOKBACK).to_pydatetime()}).mappings().all()
    samples = []
    for row in rows:
        total, failed = int(row["total"]), int(row["failed"] or 0)
        if total < spec["min_runs"]:
            continue
        rate = failed / total
        if compare(spec["op"], rate, spec["threshold"]):
            samples.append(Sample({"recipe": spec["recipe"], "step": row["step"]}, rate))
    return Outcome(bool(rows), samples)


def eval_sql(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    spec = rule.spec
    frame = wh.sql(spec["query"], {"now": now.to_pydatetime()}
                   if ":now" in spec["query"] else None)
    if "value" not in frame.columns:
        raise ValueError(f"alert rule {rule.name!r}: the query returns no 'value' column")
    label_columns = [c for c in frame.columns if c != "value"]
    samples = []
    for row in frame.itertuples(index=False):
        data = row._asdict() if hasattr(row, "_asdict") else dict(zip(frame.columns, row))
        raw = data.get("value")
        value = None if raw is None or pd.isna(raw) else float(raw)
        if spec["op"] is not None and not compare(spec["op"], value, spec["threshold"]):
            continue
        labels = {c: _label_text(data.get(c)) for c in label_columns}
        samples.append(Sample(labels, value, labels.get("run_id") or None))
    # Rows are the instances: an empty result is "nothing breaches", unless the rule tests
    # a condition on values it expects to see (then no rows is NoData).
    return Outcome(not frame.empty or spec["op"] is None, samples)


def _label_text(value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, (pd.Timestamp, datetime)):
        return pd.Timestamp(value).isoformat()
    return str(value)


def eval_anomaly(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    from warehouse import analytics

    frame = series_values(wh, rule, now)
    if frame.empty:
        return Outcome(False)
    scored = analytics.anomalies(frame[["ts", "value", "key"]].assign(
        value=frame["value"].astype(float)), only_anomalies=False, mode="streaming",
        **({"threshold": rule.spec["score"]} if rule.spec["score"] is not None else {}))
    labels_of = dict(zip(frame["key"], frame["labels"]))
    samples = []
    for key, group in scored.groupby("key", sort=True):
        latest = group.sort_values("ts").tail(rule.spec["last"])
        flagged = latest[latest["is_anomaly"].astype(bool)]
        if len(flagged):
            samples.append(Sample(dict(labels_of[key]), float(flagged["value"].iloc[-1])))
    return Outcome(True, samples)


def eval_forecast(wh: Warehouse, rule: Rule, now: pd.Timestamp) -> Outcome:
    from warehouse import analytics

    spec = rule.spec
    frame = series_values(wh, rule, now)
    if frame.empty:
        return Outcome(False)
    steps = max(1, int(_us(spec["horizon"]) / _us(spec["every"])))
    labels_of = dict(zip(frame["key"], frame["labels"]))
    samples = []
    for key, group in frame.groupby("key", sort=True):
        if len(group) < 3:
            continue  # too short to forecast: not a breach
        result = analytics.forecast(group[["ts", "value"]].assign(
            value=group["value"].astype(float)), horizon=steps)
        bound = result[spec["bound"]].astype(float)
        hits = [v for v in bound if compare(spec["op"], float(v), spec["threshold"])]
        if hits:
            samples.append(Sample(dict(labels_of[key]), float(hits[0])))
    return Outcome(True, samples)


_KINDS = {"threshold": eval_threshold, "run_failed": eval_run_failed,
          "run_duration": eval_run_duration, "dead_man": eval_dead_man,
          "step_error_rate": eval_step_error_rate, "sql": eval_sql,
          "anomaly": eval_anomaly, "forecast": eval_forecast}
