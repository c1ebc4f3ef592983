"""Bottlenecks of recipe runs: the critical path through the step DAG and a ranked table.

Pure functions over the ``runs`` / ``step_runs`` frames described in
``docs/data-model.md`` (durations in µs, tz-aware timestamps, ``depends_on`` lists).
The query layer fetches the frames; nothing here touches a database.

Impact score used for the ranking (documented in ``docs/analytics.md``)::

    impact = mean_share * critical_path_freq * (1 + growth)

``mean_share`` is the step's mean fraction of run time, ``critical_path_freq`` the
fraction of runs where it lies on the critical path (speeding up a step off the
critical path does not shorten the run), and ``growth`` the projected relative
slowdown over the next 30 days when the trend is significantly positive (capped at
1, so a slowing step weighs at most double), else 0.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

__all__ = ["CriticalPath", "bottlenecks", "critical_path"]

_ALPHA = 0.05
_TREND_MIN_RUNS = 5
_TREND_MAX_POINTS = 2_000  # Theil-Sen is O(n^2): subsample longer histories evenly
_GROWTH_HORIZON_DAYS = 30
_US_PER_S = 1e6


class CriticalPath(list):
    """Step ids on the critical path, first to last (a plain ``list`` otherwise).

    Attributes
    ----------
    inferred : bool
        True when no step had ``depends_on`` and edges were inferred from timing.
    length_us : int
        Sum of the durations of the steps on the path.
    """

    inferred: bool = False
    length_us: int = 0


def critical_path(steps_df: pd.DataFrame) -> CriticalPath:
    """Longest path by duration through the step DAG of one run.

    Parameters
    ----------
    steps_df : DataFrame
        ``step_runs`` rows of one run: ``step_id``, ``duration_us`` (or
        ``started_at``/``finished_at``), ``depends_on`` (list of step ids, JSON text
        or null) and ``parent_step_id``. Nested steps (non-null parent) are left out:
        their time is already inside their parent.

    Returns
    -------
    CriticalPath
        The step ids on the longest path, in execution order. When no top-level step
        declares ``depends_on``, each step is taken to depend on the latest-finishing
        step that ended before it started, and ``result.inferred`` is True.
    """
    top = _top_level(steps_df)
    return _longest_path(top["step_id"].astype(str).tolist(), _durations_us(top).tolist(),
                         [_as_list(d) for d in top["depends_on"]] if "depends_on" in top
                         else [[] for _ in range(len(top))],
                         _col_ns(top, "started_at").tolist(), _col_ns(top, "finished_at").tolist())


def _longest_path(ids: list[str], durs: list[float], deps: list[list], starts: list[float],
                  finishes: list[float]) -> CriticalPath:
    """Core of :func:`critical_path` on plain lists (one entry per top-level step)."""
    if not ids:
        return CriticalPath()
    dur = {sid: (d if np.isfinite(d) else 0.0) for sid, d in zip(ids, durs, strict=True)}
    start = dict(zip(ids, starts, strict=True))
    finish = dict(zip(ids, finishes, strict=True))
    known = set(ids)
    edges = {sid: [str(d) for d in dl if str(d) in known and str(d) != sid]
             for sid, dl in zip(ids, deps, strict=True)}
    inferred = not any(edges.values())
    if inferred:
        edges = _infer_edges(ids, starts, finishes)
    best: dict[str, float] = {}
    prev: dict[str, str | None] = {}
    for sid in _topological(ids, edges, start):
        preds = [u for u in edges[sid] if u in best]
        # ties go to the predecessor that finished last: it is the one that gated us
        u = max(preds, key=lambda v: (best[v], np.nan_to_num(finish[v])), default=None)
        best[sid] = dur[sid] + (best[u] if u is not None else 0.0)
        prev[sid] = u
    end = max(best, key=lambda v: (best[v], np.nan_to_num(finish[v])))
    path = CriticalPath()
    node: str | None = end
    while node is not None:
        path.append(node)
        node = prev[node]
    path.reverse()
    path.inferred = inferred
    path.length_us = int(best[end])
    return path


def bottlenecks(runs_df: pd.DataFrame, steps_df: pd.DataFrame) -> pd.DataFrame:
    """Rank steps by how much they hold runs back.

    Parameters
    ----------
    runs_df : DataFrame
        ``runs`` rows: ``run_id``, ``started_at``, ``duration_us`` (optional ``recipe``,
        ``status``). Runs still running (no duration) are ignored.
    steps_df : DataFrame
        ``step_runs`` rows of those runs (see :func:`critical_path`).

    Returns
    -------
    DataFrame
        One row per step name (and recipe, when runs of several recipes are given),
        highest impact first: ``recipe``, ``step``, ``nested``, ``runs``, ``mean_s``,
        ``p95_s``, ``mean_share``, ``critical_path_freq``, ``slope_s_per_day``,
        ``slope_pct_per_day``, ``trend_p_value``, ``getting_slower``, ``impact``,
        ``inferred_edges`` and ``recommendation``. Nested steps get the
        critical-path frequency of their top-level ancestor.
    """
    out_cols = ["recipe", "step", "nested", "runs", "mean_s", "p95_s", "mean_share",
                "critical_path_freq", "slope_s_per_day", "slope_pct_per_day", "trend_p_value",
                "getting_slower", "impact", "inferred_edges", "recommendation"]
    runs = runs_df.copy()
    if "recipe" not in runs:
        runs["recipe"] = ""
    runs = runs[runs["run_id"].isin(steps_df["run_id"])]
    run_dur = _durations_us(runs)
    runs = runs.assign(run_us=run_dur)[np.isfinite(run_dur) & (run_dur > 0)]
    if runs.empty or steps_df.empty:
        return pd.DataFrame(columns=out_cols)
    steps = steps_df[steps_df["run_id"].isin(runs["run_id"])].copy()
    steps["dur_us"] = _durations_us(steps)
    steps["nested"] = steps["parent_step_id"].notna() if "parent_step_id" in steps else False
    steps["top_id"] = _top_ancestor(steps)
    # columns converted once; the per-run loop then works on plain lists (fast)
    top = steps[~steps["nested"]]
    cols = {"id": top["step_id"].astype(str).tolist(), "dur": top["dur_us"].tolist(),
            "deps": [_as_list(d) for d in top["depends_on"]] if "depends_on" in top
            else [[] for _ in range(len(top))],
            "start": _col_ns(top, "started_at").tolist(),
            "finish": _col_ns(top, "finished_at").tolist()}
    on_path, inferred_runs = set(), set()
    for run_id, ix in top.groupby("run_id", sort=False).indices.items():
        path = _longest_path(*([cols[k][i] for i in ix] for k in
                               ("id", "dur", "deps", "start", "finish")))
        on_path.update((run_id, sid) for sid in path)
        if path.inferred:
            inferred_runs.add(run_id)
    steps["on_path"] = [(r, t) in on_path for r, t in zip(steps["run_id"], steps["top_id"],
                                                          strict=True)]
    per_run = (steps.groupby(["run_id", "step"], sort=False)
               .agg(dur_us=("dur_us", "sum"), on_path=("on_path", "any"),
                    nested=("nested", "all"))
               .reset_index()
               .merge(runs[["run_id", "recipe", "started_at", "run_us"]], on="run_id"))
    n_runs = runs.groupby("recipe")["run_id"].nunique()
    rows = [_step_row(key, g, int(n_runs[key[0]]), g["run_id"].isin(inferred_runs).any())
            for key, g in per_run.groupby(["recipe", "step"], sort=False)]
    table = pd.DataFrame(rows).sort_values("impact", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    table["recommendation"] = [_recommend(r, i == 0) for i, r in enumerate(table.to_dict("records"))]
    return table[out_cols]


def _step_row(key: tuple[str, str], g: pd.DataFrame, n_runs: int, inferred: bool) -> dict:
    recipe, step = key
    secs = g["dur_us"].to_numpy(float) / _US_PER_S
    share = float(np.nanmean(g["dur_us"] / g["run_us"]))
    cp = float(g["on_path"].sum()) / n_runs
    slope, p_value = _trend(g["started_at"], secs)
    median = float(np.nanmedian(secs))
    pct = 100.0 * slope / median if median > 0 and np.isfinite(slope) else np.nan
    slower = bool(np.isfinite(p_value) and p_value < _ALPHA and slope > 0)
    growth = min(1.0, pct * _GROWTH_HORIZON_DAYS / 100.0) if slower else 0.0
    return {
        "recipe": recipe, "step": step, "nested": bool(g["nested"].all()), "runs": len(g),
        "mean_s": float(np.nanmean(secs)), "p95_s": float(np.nanpercentile(secs, 95)),
        "mean_share": share, "critical_path_freq": cp, "slope_s_per_day": slope,
        "slope_pct_per_day": pct, "trend_p_value": p_value, "getting_slower": slower,
        "impact": share * cp * (1.0 + growth), "inferred_edges": bool(inferred),
        "since": pd.Timestamp(g["started_at"].min()),
    }


def _trend(started: pd.Series, secs: np.ndarray) -> tuple[float, float]:
    """Theil-Sen slope (s/day) of duration over run start, with Kendall's tau p-value."""
    days = (_ns(started) - np.nanmin(_ns(started))) / 86_400e9
    ok = np.isfinite(days) & np.isfinite(secs)
    days, secs = days[ok], secs[ok]
    if len(days) < _TREND_MIN_RUNS or np.ptp(days) <= 0:
        return np.nan, np.nan
    if len(days) > _TREND_MAX_POINTS:
        keep = np.linspace(0, len(days) - 1, _TREND_MAX_POINTS).astype(int)
        order = np.argsort(days, kind="stable")[keep]
        days, secs = days[order], secs[order]
    slope = stats.theilslopes(secs, days).slope
    # Kendall's tau is the rank test that goes with the Theil-Sen slope
    p_value = stats.kendalltau(days, secs).pvalue
    return float(slope), float(p_value) if np.isfinite(p_value) else np.nan


def _recommend(r: dict[str, Any], first: bool) -> str:
    name = f"'{r['step']}'"
    text = (f"{name} is on the critical path in {r['critical_path_freq']:.0%} of runs and "
            f"takes {r['mean_share']:.0%} of run time (p95 {r['p95_s']:.3g} s)")
    if r["getting_slower"]:
        text += (f"; it has slowed by {r['slope_pct_per_day']:.1f}%/day since "
                 f"{r['since']:%Y-%m-%d} ({_p_text(r['trend_p_value'])})")
    elif np.isfinite(r["trend_p_value"]) and r["trend_p_value"] < _ALPHA:
        text += f"; it has sped up by {-r['slope_pct_per_day']:.1f}%/day ({_p_text(r['trend_p_value'])})"
    elif not np.isfinite(r["trend_p_value"]):
        text += "; too few runs for a trend"
    else:
        text += "; no significant trend"
    if r["inferred_edges"]:
        text += " [dependencies inferred from timing]"
    if r["critical_path_freq"] < 0.2:
        return text + " — rarely on the critical path: speeding it up would barely shorten runs."
    if first and r["impact"] > 0:
        return text + " — optimise or parallelise it first."
    if r["getting_slower"]:
        return text + " — watch it: its slowdown will lengthen runs."
    return text + "."


def _p_text(p: float) -> str:
    return "p<0.001" if p < 0.001 else f"p={p:.3f}"


def _top_level(steps: pd.DataFrame) -> pd.DataFrame:
    if "parent_step_id" not in steps:
        return steps
    return steps[steps["parent_step_id"].isna()]


def _top_ancestor(steps: pd.DataFrame) -> list[str]:
    """Top-level ancestor step id of every step (itself for top-level steps)."""
    if "parent_step_id" not in steps:
        return steps["step_id"].astype(str).tolist()
    parent = {(r, str(s)): (None if pd.isna(p) else str(p)) for r, s, p in
              zip(steps["run_id"], steps["step_id"], steps["parent_step_id"], strict=True)}
    out = []
    for r, s in zip(steps["run_id"], steps["step_id"].astype(str), strict=True):
        seen = {s}
        while parent.get((r, s)) is not None and parent[(r, s)] not in seen:
            s = parent[(r, s)]
            seen.add(s)
        out.append(s)
    return out


def _col_ns(df: pd.DataFrame, col: str) -> np.ndarray:
    return _ns(df[col]) if col in df else np.full(len(df), np.nan)


def _ns(ts: pd.Series) -> np.ndarray:
    """Timestamps as float ns since the epoch (NaN when missing)."""
    s = pd.to_datetime(pd.Series(ts).reset_index(drop=True), utc=True)
    out = s.dt.tz_localize(None).to_numpy(dtype="datetime64[ns]").astype("int64").astype(float)
    out[s.isna().to_numpy()] = np.nan
    return out


def _durations_us(df: pd.DataFrame) -> np.ndarray:
    """duration_us, filled from finished_at - started_at where it is missing."""
    dur = (pd.to_numeric(df["duration_us"], errors="coerce").to_numpy(float)
           if "duration_us" in df else np.full(len(df), np.nan))
    span = (_col_ns(df, "finished_at") - _col_ns(df, "started_at")) / 1e3
    return np.where(np.isfinite(dur), dur, span)


def _as_list(value: Any) -> list:
    """depends_on as a list, whether it arrives as list, array, JSON text or null."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return [value]
        return value if isinstance(value, list) else [value]
    return list(value) if isinstance(value, Iterable) else [value]


def _infer_edges(ids: list[str], starts: list[float], finishes: list[float]) -> dict:
    """Each step depends on the latest-finishing step that ended before it started."""
    start, finish = np.asarray(starts, float), np.asarray(finishes, float)
    edges: dict[str, list[str]] = {}
    for i, sid in enumerate(ids):
        before = np.flatnonzero(np.isfinite(finish) & (finish <= start[i]))
        before = before[before != i]
        edges[sid] = [ids[int(before[np.argmax(finish[before])])]] if len(before) else []
    return edges


def _topological(ids: list[str], edges: dict[str, list[str]], start: dict) -> list[str]:
    """Kahn's order, earliest start first; steps caught in a cycle go last by start time."""
    indeg = {sid: len(edges[sid]) for sid in ids}
    children: dict[str, list[str]] = {sid: [] for sid in ids}
    for sid in ids:
        for u in edges[sid]:
            children[u].append(sid)
    key = lambda v: (np.nan_to_num(start[v], nan=np.inf), v)  # noqa: E731
    ready = sorted((v for v in ids if indeg[v] == 0), key=key)
    order: list[str] = []
    while ready:
        v = ready.pop(0)
        order.append(v)
        for c in children[v]:
            indeg[c] -= 1
            if indeg[c] == 0:
                ready.append(c)
                ready.sort(key=key)
    # a cycle (bad data) must not lose steps: keep only edges from steps already placed
    rest = sorted((v for v in ids if v not in set(order)), key=key)
    return order + rest
