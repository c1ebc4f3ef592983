"""Runs slower than their recipe's trailing p95: the documented view ``slow_runs``
(docs/views.md) computed from the runs the query API returns.

The definition, exactly the view's: a finished run ``r`` (its duration is known) is slow
when at least 5 finished runs ``p`` of its recipe started in
``r.started_at - 30 days <= p.started_at < r.started_at`` and its duration exceeds their
continuous 95th percentile (``percentile_cont`` / ``quantile_cont``: linear interpolation
between the two nearest ranks). Runs that started at the same instant are not in each
other's window; a run exactly 30 days earlier is.

Why not the view: PostgreSQL cannot use ``percentile_cont`` as a window function, so the
view joins each run to every run of its recipe in the 30 days before it, and a year of
hourly runs of one recipe takes 8-25 s there. Here the runs are sorted once, each run's
window is two binary searches, and one sorted list follows the windows forward: about
20 ms for the same year, plus reading the runs (60 ms on PostgreSQL).
"""

from __future__ import annotations

import math
from bisect import bisect_left, insort

import numpy as np
import pandas as pd

from warehouse.timeparse import aware_timestamp

TRAILING = pd.Timedelta(days=30)
QUANTILE = 0.95
MIN_TRAILING_RUNS = 5
#: The columns of ``runs`` the definition needs, read through ``wh.sql``: ``wh.runs`` reads
#: every column (parameters and attributes parsed from JSON, error text), 0.3 s for a year of
#: one hourly recipe on PostgreSQL against 0.06 s for these five.
_RUNS_SQL = "SELECT run_id, recipe, started_at, status, duration_us FROM runs"


def slow_runs(source, recipe: str | None = None, start=None, end=None) -> pd.DataFrame:
    """The view's rows for the runs of ``recipe`` (every recipe if None) that started in
    [start, end), slowest (largest slowdown) first, then by start time and run id.

    ``source`` is a Warehouse, whose runs are read from 30 days before ``start`` (the
    trailing windows of the first runs reach back that far; read-only SQL's row limit
    applies, 1M runs by default), or a frame of runs with the columns of ``wh.runs`` that
    holds those 30 days itself.
    """
    start = aware_timestamp(start, "start")  # resolved once: "now-30d" must not move
    end = aware_timestamp(end, "end")
    if isinstance(source, pd.DataFrame):
        runs = source if recipe is None else source[source["recipe"] == recipe]
    else:
        runs = _read_runs(source, recipe, None if start is None else start - TRAILING, end)
    finished = runs[runs["duration_us"].notna()]
    parts = [part for _, group in finished.groupby("recipe", sort=True)
             if len(part := _slow_runs_of_recipe(group, start, end))]
    if not parts:
        return _empty()
    out = pd.concat(parts, ignore_index=True)
    # PostgreSQL's ORDER BY slowdown DESC puts a NULL slowdown (a trailing p95 of 0) first.
    return (out.sort_values(["slowdown", "started_at", "run_id"],
                            ascending=[False, True, True], na_position="first", kind="stable")
            .reset_index(drop=True))


def _read_runs(wh, recipe: str | None, start, end) -> pd.DataFrame:
    """Runs (the five columns) of ``recipe`` that started in [start, end), each bound
    optional."""
    where, binds = [], {}
    for column, op, name, value in (("recipe", "=", "recipe", recipe),
                                    ("started_at", ">=", "start", start),
                                    ("started_at", "<", "end", end)):
        if value is not None:
            where.append(f"{column} {op} :{name}")
            binds[name] = value.to_pydatetime() if isinstance(value, pd.Timestamp) else value
    return wh.sql(_RUNS_SQL + (f" WHERE {' AND '.join(where)}" if where else ""), binds)


def _slow_runs_of_recipe(runs: pd.DataFrame, start, end) -> pd.DataFrame:
    runs = runs.assign(started_at=pd.to_datetime(runs["started_at"], utc=True))
    runs = runs.sort_values("started_at", kind="stable")
    started_us = _epoch_us(runs["started_at"])
    durations = runs["duration_us"].to_numpy(dtype=np.float64)
    # Each run's window is the slice [first, stop) of runs sorted by start: from the first
    # run at or after start - 30 days up to (not including) the first run at the same start.
    first = np.searchsorted(started_us, started_us - _us(TRAILING), side="left")
    stop = np.searchsorted(started_us, started_us, side="left")
    counts = stop - first
    judged = counts >= MIN_TRAILING_RUNS
    if start is not None:
        judged &= started_us >= _us(start)
    if end is not None:
        judged &= started_us < _us(end)
    rows = np.flatnonzero(judged)
    p95 = _trailing_p95(durations, first, stop, rows)
    slow = durations[rows] > p95
    rows, p95 = rows[slow], p95[slow]
    picked = runs.iloc[rows]
    with np.errstate(divide="ignore", invalid="ignore"):
        slowdown = np.where(p95 == 0, np.nan, durations[rows] / p95)
    return pd.DataFrame({
        "run_id": picked["run_id"].astype(str).to_numpy(),
        "recipe": picked["recipe"].to_numpy(),
        "started_at": picked["started_at"].to_numpy(),
        "status": picked["status"].to_numpy(),
        "duration_ms": durations[rows] / 1000.0,
        "trailing_p95_ms": p95 / 1000.0,
        "trailing_runs": counts[rows].astype(np.int64),
        "slowdown": slowdown,
    })


def _trailing_p95(durations: np.ndarray, first: np.ndarray, stop: np.ndarray,
                  rows: np.ndarray) -> np.ndarray:
    """The 95th percentile of ``durations[first[i]:stop[i]]`` for each i in ``rows``.

    The windows only move forward (``first`` and ``stop`` never decrease), so one sorted
    list follows them: each run enters once and leaves once (a binary search and a
    memmove of at most a month of runs), instead of a partial sort of the whole window per
    run (0.3 s for a year of hourly runs, against tens of ms).
    """
    values, first, stop = durations.tolist(), first.tolist(), stop.tolist()
    window: list[float] = []
    entered = left = 0
    out = np.empty(len(rows))
    for k, i in enumerate(rows.tolist()):
        while entered < stop[i]:
            insort(window, values[entered])
            entered += 1
        while left < first[i]:
            del window[bisect_left(window, values[left])]
            left += 1
        out[k] = _percentile_cont(window)
    return out


def _percentile_cont(ordered: list[float]) -> float:
    """The 95th percentile of sorted values as PostgreSQL's percentile_cont computes it,
    bit for bit: rank q*(n-1), then lo + (hi - lo) * fraction. np.percentile takes
    hi - (hi - lo) * (1 - fraction) when the fraction is >= 0.5, and DuckDB's quantile_cont
    (2.0) yet another rounding: both can differ from PostgreSQL in the last bit."""
    rank = QUANTILE * (len(ordered) - 1)
    below = math.floor(rank)
    lo, hi = ordered[below], ordered[math.ceil(rank)]
    return lo + (hi - lo) * (rank - below)


_EPOCH = pd.Timestamp(0, tz="UTC")
_MICROSECOND = pd.Timedelta(microseconds=1)


def _epoch_us(times: pd.Series) -> np.ndarray:
    """µs since the epoch as int64: exact comparisons, as the database compares them."""
    return ((times - _EPOCH) // _MICROSECOND).to_numpy(dtype=np.int64)


def _us(value: pd.Timestamp | pd.Timedelta) -> int:
    return (value - _EPOCH if isinstance(value, pd.Timestamp) else value) // _MICROSECOND


def _empty() -> pd.DataFrame:
    return pd.DataFrame({
        "run_id": pd.Series(dtype=object), "recipe": pd.Series(dtype=object),
        "started_at": pd.Series(dtype="datetime64[us, UTC]"), "status": pd.Series(dtype=object),
        "duration_ms": pd.Series(dtype=float), "trailing_p95_ms": pd.Series(dtype=float),
        "trailing_runs": pd.Series(dtype=np.int64), "slowdown": pd.Series(dtype=float)})
