"""Turn a wide frame (a row per instant and label set, a column per metric) into a validated
points batch, and keep its rows for the pivoted copy (``Warehouse.write_frame``).

Wide input is how most metrics arrive (TSBS's ``cpu`` rows, a Telegraf line with several
fields, a ``wh.frame`` answer written back): one row per label set and instant, one column
per metric. Validating it as rows is ten times less work for the times and labels than the
same data one row per point, and its rows are already what the pivoted copy of DuckDB stores
(``readings``, migration 0016), so the writer can keep that copy current instead of leaving
it to the compress job (``DuckDBWrites.insert_points``).

Columns: ``ts`` (timezone-aware), the label columns named in ``label_columns``, optionally
``run_id`` (UUID, for every value of the row), and every other column is a metric named as
the column. A missing cell (None, NaN, NA) is no point: a row need not have every metric;
±inf and values that are not numbers are refused as in :func:`prepare_points`. Rows of one
label set at one instant given twice are merged as points are, the last value of each
metric winning (there the batch goes the long way, without rows for the copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from warehouse.config import MAX_NAME_LENGTH
from warehouse.errors import FieldProblem
from warehouse.ingest.keys import (
    first_rows,
    has_repeats,
    keys_increase,
    newest_rows,
    series_codes,
)
from warehouse.ingest.points import (
    PointsBatch,
    _check_label_columns,
    _label_column_codes,
    _label_keys_of_series,
    _no_run_ids,
    as_frame,
    prepare_points,
    unique_index,
)
from warehouse.ingest.validate import (
    Problems,
    check_names,
    to_finite_floats,
    to_utc_timestamps,
    to_uuid_strings,
)

#: Columns of a wide frame that are neither labels nor metrics.
RESERVED = ("ts", "run_id")


@dataclass(frozen=True)
class WideRows:
    """The batch's rows holding at least one value, for the pivoted copy: ``ts_us`` (µs),
    ``label_set`` (an index into ``labels_keys``), ``values`` (metrics × rows, NaN where a
    row has no value of a metric) and the ``metrics`` they are."""

    ts_us: np.ndarray
    label_set: np.ndarray
    labels_keys: np.ndarray
    values: np.ndarray
    metrics: list[str]
    gaps: np.ndarray  # per metric: whether some row lacks its value


def prepare_wide(data, label_columns: Sequence[str] = ()) -> tuple[PointsBatch, WideRows | None]:
    """Validate a wide frame; the points batch it holds and its rows for the copy (None when
    rows repeat a label set and instant: then the points were merged the long way). Raises
    ValidationError naming row and field."""
    frame = unique_index(as_frame(data, "frame batch"))
    problems = Problems("frame batch")
    label_columns = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    # a wide frame has no metric or value column: labels may take those names, as in a
    # labels dict
    _check_label_columns(frame, label_columns, problems, reserved=(*RESERVED, "labels"))
    metrics = [c for c in frame.columns if c not in (*RESERVED, *label_columns)]
    if "ts" not in frame.columns:
        problems.items.append(FieldProblem(None, "ts", "required column is missing"))
    if "labels" in metrics:
        problems.items.append(FieldProblem(None, "labels", (
            "a wide frame takes labels as plain columns named in label_columns, not as a "
            "'labels' column")))
    if not metrics:
        problems.items.append(FieldProblem(None, "(columns)", (
            "no metric column: every column other than ts, run_id and the label columns is "
            "a metric")))
    # a bad name is reported at its column (the "row" of the problem)
    check_names(pd.Series(metrics, index=pd.Index(metrics, dtype=object), dtype=object),
                "metric column", problems, max_length=MAX_NAME_LENGTH)
    problems.raise_if_any()
    if frame.empty:
        return prepare_points(pd.DataFrame(columns=["metric", "ts", "value"])), None
    ts = to_utc_timestamps(frame["ts"], "ts", problems)
    run_id = (to_uuid_strings(frame["run_id"], "run_id", problems, required=False)
              if "run_id" in frame.columns else None)
    values = np.full((len(metrics), len(frame)), np.nan)
    for j, metric in enumerate(metrics):
        column = frame[metric]
        present = column.notna().to_numpy(dtype=bool)
        if present.all():
            values[j] = to_finite_floats(column, metric, problems)
        elif present.any():
            values[j, present] = to_finite_floats(column[present], metric, problems)
    label_parts = _label_column_codes(frame, label_columns, problems) if label_columns else []
    if label_parts is None:
        problems.raise_if_any()
    sets = series_codes(label_parts, len(frame))
    firsts = first_rows(sets)
    keys = (_label_keys_of_series(frame, label_columns, sets, firsts, problems)
            if label_columns else np.full(len(firsts), "{}", dtype=object))
    problems.raise_if_any()
    ts_us = ts.to_numpy(dtype="datetime64[us]").view("i8")
    if not keys_increase(sets, ts_us, len(firsts)) and has_repeats(sets, ts_us):
        return _the_long_way(frame, metrics, label_columns), None
    missing = np.isnan(values)
    gaps = missing.any(axis=1)
    points = _points(ts.reset_index(drop=True), ts_us, sets, keys, values,
                     None if not gaps.any() else ~missing.ravel(), metrics, run_id)
    if gaps.any():
        keep = ~missing.all(axis=0)
        ts_us, sets, values = ts_us[keep], sets[keep], values[:, keep]
    return points, WideRows(ts_us, sets, keys, values, metrics, gaps)


def _points(ts: pd.Series, ts_us: np.ndarray, sets: np.ndarray, keys: np.ndarray,
            values: np.ndarray, present: np.ndarray | None, metrics: list[str],
            run_id: pd.Series | None) -> PointsBatch:
    """The batch's points metric by metric, each in the rows' order (the order of a long
    batch grouped by metric, what the zone maps on ``points.ts`` like), cells not
    ``present`` (None: all are) left out. Series are numbered by metric, then label set,
    among those with a point. (A day of TSBS is 8.6M points: every array made here costs
    ~0.1 s, mostly the first touch of its pages, so as few are made as possible.)"""
    width, n = values.shape
    full = present is None
    codes = (np.arange(width, dtype="i4")[:, None] * np.int32(len(keys))
             + sets.astype("i4")).ravel()
    point_ts = pd.concat([ts] * width, ignore_index=True)  # keeps the tz-aware dtype
    point_us = point_ts.to_numpy(dtype="datetime64[us]").view("i8")  # a view, no copy
    value = values.ravel()
    runs = (_no_run_ids(pd.RangeIndex(len(codes))) if run_id is None
            else pd.concat([run_id.reset_index(drop=True)] * width, ignore_index=True))
    if not full:
        codes, point_us, value = codes[present], point_us[present], value[present]
        point_ts = point_ts[present].reset_index(drop=True)
        runs = runs[present].reset_index(drop=True)
    used = np.flatnonzero(np.bincount(codes, minlength=len(keys) * width))
    if len(used) < len(keys) * width:  # number only the series with a point
        number = np.full(len(keys) * width, -1, dtype="i4")
        number[used] = np.arange(len(used))
        codes = number[codes]
    if full:  # the newest point of each series is its label set's newest row
        newest = (np.arange(width, dtype="i8")[:, None] * n
                  + newest_rows(sets, ts_us, len(keys))).ravel()
    else:
        newest = newest_rows(codes, point_us, len(used))
    out = pd.DataFrame({"ts": point_ts, "value": value, "run_id": runs, "series_code": codes},
                       copy=False)
    series = pd.DataFrame({"metric": np.asarray(metrics, dtype=object)[used // len(keys)],
                           "labels_key": keys[used % len(keys)]})
    return PointsBatch(out, series, len(codes), point_us, newest)


def _the_long_way(frame: pd.DataFrame, metrics: list[str],
                  label_columns: list[str]) -> PointsBatch:
    """Rows repeating a label set and instant: one row per point, merged as a points batch
    merges them (the last value of each series and instant wins)."""
    ids = [c for c in frame.columns if c not in metrics]
    long = frame.melt(id_vars=ids, value_vars=metrics, var_name="metric", value_name="value",
                      ignore_index=False)
    # Per metric in row order: a later row of the same key is later in the melted frame.
    long = long[long["value"].notna()]
    return prepare_points(long.reset_index(drop=True), label_columns)


__all__ = ["RESERVED", "WideRows", "prepare_wide"]
