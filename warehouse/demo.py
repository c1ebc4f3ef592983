"""Realistic demo data: several recipes with steps, seasonality, failures, a slowly
regressing step and a few outliers — deterministic for a seed, so re-running the demo
writes nothing new.

What is injected (so the analytics can be checked against it):
- ``etl-hourly``: hourly runs extract → transform → load (+ validate after transform);
  durations follow a daily cycle (busier during the working day) and a weekly one
  (lighter at weekends); ``transform`` slows by ``REGRESSION_PER_DAY`` every day;
  ~3% of runs fail in ``load`` with a timeout; three runs (at 40%, 65% and 85% of
  the period) are 6× slower (outliers).
- ``ml-train``: daily fetch → featurize → train → evaluate; train has heavy variance.
- ``report-build``: every 4 hours, query-sales and query-stock in parallel, then render.
- points: per run ``recipe.duration_ms``; per step ``step.duration_ms``; per host a
  ``host.cpu_percent`` sample every minute with a daily cycle and two CPU spikes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

REGRESSION_PER_DAY = 0.02  # transform gets 2% slower per day
_NAMESPACE = uuid.UUID("6f1d2c3e-9a8b-4c5d-8e7f-0a1b2c3d4e5f")
HOSTS = ("worker-1", "worker-2", "worker-3")


@dataclass
class DemoData:
    runs: pd.DataFrame
    steps: pd.DataFrame
    points: pd.DataFrame
    truth: dict = field(default_factory=dict)


# recipe -> (period in hours, steps as (name, base seconds, depends_on))
RECIPES = {
    "etl-hourly": (1, [("extract", 40.0, []), ("transform", 90.0, ["extract"]),
                       ("validate", 15.0, ["transform"]), ("load", 30.0, ["transform"])]),
    "ml-train": (24, [("fetch", 120.0, []), ("featurize", 300.0, ["fetch"]),
                      ("train", 1800.0, ["featurize"]), ("evaluate", 200.0, ["train"])]),
    "report-build": (4, [("query-sales", 60.0, []), ("query-stock", 45.0, []),
                         ("render", 20.0, ["query-sales", "query-stock"])]),
}


def _cycle(ts: pd.Timestamp) -> float:
    """Load factor: a daily curve peaking mid-afternoon, lighter at weekends."""
    hour = ts.hour + ts.minute / 60
    daily = 1.0 + 0.35 * np.sin((hour - 9) / 24 * 2 * np.pi)
    weekly = 0.75 if ts.day_of_week >= 5 else 1.0
    return daily * weekly


def generate(days: int = 30, *, end: pd.Timestamp | None = None, seed: int = 7) -> DemoData:
    """Generate ``days`` days of executions ending at ``end`` (default: today 00:00 UTC)."""
    rng = np.random.default_rng(seed)
    end = (end or pd.Timestamp.now(tz="UTC").floor("D")).tz_convert("UTC")
    start = end - pd.Timedelta(days=days)
    runs, steps, points = [], [], []
    outliers, failures = [], []
    for recipe, (period_h, plan) in RECIPES.items():
        starts = pd.date_range(start, end, freq=f"{period_h}h", inclusive="left")
        outlier_at = {int(len(starts) * f) for f in (0.4, 0.65, 0.85)}
        for i, run_start in enumerate(starts):
            run_id = str(uuid.uuid5(_NAMESPACE, f"{seed}/{recipe}/{run_start.isoformat()}"))
            host = HOSTS[(i + len(recipe)) % len(HOSTS)]
            load = _cycle(run_start)
            age_days = (run_start - start) / pd.Timedelta(days=1)
            outlier = recipe == "etl-hourly" and i in outlier_at
            failing = recipe == "etl-hourly" and rng.random() < 0.03 and not outlier
            fail_at = "load" if failing else None
            ends: dict[str, pd.Timestamp] = {}
            status = "succeeded"
            error = (None, None)
            for ordinal, (name, base, deps) in enumerate(plan):
                begin = max([ends[d] for d in deps], default=run_start + pd.Timedelta(seconds=1))
                seconds = base * load * rng.lognormal(0, 0.12 if name != "train" else 0.3)
                if recipe == "etl-hourly" and name == "transform":
                    seconds *= (1 + REGRESSION_PER_DAY) ** age_days
                if outlier:
                    seconds *= 6
                step_status = "succeeded"
                step_error = (None, None)
                if fail_at == name:
                    seconds = 30.0
                    step_status = status = "failed"
                    step_error = error = ("TimeoutError", f"timeout after 30s connecting to "
                                          f"db-{rng.integers(1, 40)}:5432 (attempt {i % 3 + 1})")
                duration = pd.Timedelta(microseconds=int(seconds * 1e6))
                ends[name] = begin + duration
                cpu = seconds * rng.uniform(0.3, 0.9)
                steps.append({
                    "run_id": run_id, "step_id": f"{ordinal}-{name}", "step": name,
                    "ordinal": ordinal, "attempt": 1, "started_at": begin,
                    "finished_at": ends[name], "duration_us": int(duration / pd.Timedelta("1us")),
                    "status": step_status, "error_type": step_error[0],
                    "error_message": step_error[1], "host": host,
                    "depends_on": [f"{plan.index(next(p for p in plan if p[0] == d))}-{d}"
                                   for d in deps],
                    "cpu_user_us": int(cpu * 0.8e6), "cpu_system_us": int(cpu * 0.2e6),
                    "peak_rss_bytes": int(rng.uniform(200, 2000) * 2**20),
                    "read_bytes": int(rng.uniform(1, 500) * 2**20),
                    "written_bytes": int(rng.uniform(1, 200) * 2**20),
                })
                points.append(("step.duration_ms", {"recipe": recipe, "step": name}, ends[name],
                               seconds * 1000, run_id))
                if step_status == "failed":
                    break
            finished = max(ends.values())
            duration_us = int((finished - run_start) / pd.Timedelta("1us"))
            runs.append({
                "run_id": run_id, "recipe": recipe, "started_at": run_start,
                "finished_at": finished, "duration_us": duration_us, "status": status,
                "error_type": error[0], "error_message": error[1], "host": host,
                "params": {"batch": i}, "attributes": {"source": "demo", "seed": seed},
                "last_seen_at": finished,
            })
            points.append(("recipe.duration_ms", {"recipe": recipe}, finished,
                           duration_us / 1000, run_id))
            if outlier:
                outliers.append(run_id)
            if status == "failed":
                failures.append(run_id)

    minutes = pd.date_range(start, end, freq="1min", inclusive="left")
    hours = minutes.hour.to_numpy() + minutes.minute.to_numpy() / 60
    spikes = {}
    for host in HOSTS:
        cpu = 35 + 20 * np.sin((hours - 9) / 24 * 2 * np.pi) + rng.normal(0, 3, len(minutes))
        spike_at = int(rng.integers(len(minutes) // 3, len(minutes) - 60))
        cpu[spike_at: spike_at + 5] += 45
        spikes[host] = minutes[spike_at]
        points_frame = pd.DataFrame({"metric": "host.cpu_percent", "host": host,
                                     "ts": minutes, "value": np.clip(cpu, 0, 100)})
        points.append(points_frame)

    event_points = pd.DataFrame(
        [p for p in points if isinstance(p, tuple)],
        columns=["metric", "labels", "ts", "value", "run_id"])
    cpu_points = pd.concat([p for p in points if isinstance(p, pd.DataFrame)], ignore_index=True)
    cpu_points["labels"] = [{"host": h} for h in cpu_points.pop("host")]
    cpu_points["run_id"] = None
    all_points = pd.concat([event_points, cpu_points], ignore_index=True)
    runs_frame, steps_frame = pd.DataFrame(runs), pd.DataFrame(steps)
    resources = ["cpu_user_us", "cpu_system_us", "read_bytes", "written_bytes"]
    totals = steps_frame.groupby("run_id")[resources].sum()
    totals["peak_rss_bytes"] = steps_frame.groupby("run_id")["peak_rss_bytes"].max()
    runs_frame = runs_frame.join(totals, on="run_id")
    truth = {"regressing_step": ("etl-hourly", "transform"), "outlier_runs": outliers,
             "failed_runs": failures, "cpu_spikes": spikes, "start": start, "end": end}
    return DemoData(runs_frame, steps_frame, all_points, truth)


def load(wh, data: DemoData) -> dict[str, int]:
    """Write the demo data; returns rows written per kind (0 on a re-run)."""
    return {
        "runs": wh.write_runs(data.runs).written,
        "steps": wh.write_steps(data.steps).written,
        "points": wh.write_points(data.points).written,
    }


def summarize(wh, data: DemoData, console) -> None:
    """Print what the warehouse now holds for the demo period, read back through the API."""
    from rich.table import Table

    runs = wh.runs(start=data.truth["start"], end=data.truth["end"])
    table = Table(title="runs per recipe (read back from the warehouse)")
    for column in ("recipe", "runs", "failed", "success %", "p50 s", "p95 s"):
        table.add_column(column, justify="right" if column != "recipe" else "left")
    for recipe, part in runs.groupby("recipe"):
        seconds = part["duration_us"].astype(float) / 1e6
        failed = int((part["status"] == "failed").sum())
        table.add_row(recipe, str(len(part)), str(failed),
                      f"{100 * (1 - failed / len(part)):.1f}", f"{seconds.median():.1f}",
                      f"{seconds.quantile(0.95):.1f}")
    console.print(table)

    daily = wh.points("step.duration_ms", data.truth["start"], data.truth["end"],
                      labels={"recipe": "etl-hourly", "step": "transform"}, every="1d",
                      agg="p50")
    first, last = daily["value"].iloc[0], daily["value"].iloc[-1]
    console.print(f"etl-hourly/transform daily p50: {first / 1000:.1f} s on day 1 → "
                  f"{last / 1000:.1f} s on day {len(daily)} (injected: +{REGRESSION_PER_DAY:.0%}/day)")
    report_findings(wh, data, console)
    info = wh.info()
    console.print(f"storage: {info['backend']} — " + ", ".join(
        f"{r.table} {r.rows:,} rows" for r in info["tables"].itertuples()))


#: Alert rules the demo defines; its injected failures, outliers and CPU spikes fire them
#: (the dashboard's Alerts page shows them; docs/alerts.md).
DEMO_RULES = (
    {"name": "demo_etl_failed", "kind": "run_failed", "recipe": "etl-hourly", "window": "1d",
     "labels": {"severity": "page"},
     "annotations": {"summary": "{labels.recipe} failed: {run_url}"}},
    {"name": "demo_etl_slow", "kind": "run_duration", "recipe": "etl-hourly", "window": "7d",
     "p95_factor": 3, "baseline": "21d",
     "annotations": {"summary": "{labels.recipe} run took {value} s (over 3x p95)"}},
    {"name": "demo_cpu_spike", "kind": "threshold", "metric": "host.cpu_percent",
     "window": "30d", "agg": "max", "op": ">", "threshold": 72,
     "annotations": {"summary": "{labels.host} CPU reached {value}%"}},
)


def define_alerts(wh, data: DemoData) -> pd.DataFrame:
    """Store the demo's alert rules and evaluate them at the end of the demo period; returns
    the alert instances (rule, state, labels, value...)."""
    for rule in DEMO_RULES:
        wh.alerts.add_rule(rule)
    wh.alerts.evaluate_all(now=data.truth["end"])
    state = wh.alerts.state()
    return state[state["rule"].isin([r["name"] for r in DEMO_RULES])]


def report_findings(wh, data: DemoData, console) -> None:
    """What the analytics find in the demo data, set against what was injected."""
    from warehouse import analytics

    start, end = data.truth["start"], data.truth["end"]
    ranked = analytics.bottlenecks(wh, "etl-hourly", start, end)
    console.print("[bold]bottlenecks[/bold] (etl-hourly): " + ranked["recommendation"].iloc[0])

    durations = analytics.anomalies(wh, recipe="etl-hourly", start=start, end=end)
    runs = wh.runs(recipe="etl-hourly", start=start, end=end).set_index("started_at")
    flagged = set(runs.loc[runs.index.intersection(durations["ts"]), "run_id"])
    hit = len(flagged & set(data.truth["outlier_runs"]))
    console.print(f"[bold]anomalies[/bold] (etl-hourly run durations): {len(flagged)} runs "
                  f"flagged, {hit} of the {len(data.truth['outlier_runs'])} injected 6× outliers")
    cpu = analytics.anomalies(wh, metric="host.cpu_percent", start=start, end=end, every="5m",
                              agg="max")
    for host, spike in data.truth["cpu_spikes"].items():
        near = cpu[(cpu["key"] == f"host={host}")
                   & ((cpu["ts"] - spike).abs() <= pd.Timedelta("10min"))]
        console.print(f"  host.cpu_percent {host}: injected spike at {spike:%Y-%m-%d %H:%M} — "
                      f"{'found' if len(near) else 'missed'}")
    ahead = analytics.forecast(wh, recipe="etl-hourly", start=start, end=end, every="1h",
                               horizon=24)
    console.print(f"[bold]forecast[/bold] etl-hourly duration, next 24 h: mean "
                  f"{ahead['forecast'].mean():.0f} s, 95% interval "
                  f"{ahead['lo_95'].min():.0f}–{ahead['hi_95'].max():.0f} s "
                  f"({ahead['model'].iloc[0]})")
    alerts = define_alerts(wh, data)
    firing = alerts[alerts["state"] == "firing"].groupby("rule").size()
    console.print("[bold]alerts[/bold] at the end of the period: " + (", ".join(
        f"{rule} {n} firing" for rule, n in firing.items()) or "none firing") +
        " (warehouse alerts state; the dashboard's Alerts page)")
