"""``Warehouse.points``: raw or time-bucketed points of one metric as a DataFrame.

Buckets are computed in integer µs from the common origin (2000-01-03 UTC) with the same
SQL arithmetic on every engine, so the same data gives the same buckets everywhere.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from sqlalchemy import Connection, text

from warehouse.backends.base import AGGREGATES, PERCENTILES, Backend, floor_to_bucket
from warehouse.errors import UnknownNameError
from warehouse.query.archive_read import archived_units, points_relation, with_archived_rows
from warehouse.query.runs import optional_text
from warehouse.query.tiers import plan_tier, raw_overlaps, tier_sql
from warehouse.timeparse import aware_timestamp, epoch_us, interval_us

FILLS = (None, "null", "previous", "linear", "zero")
# Aggregates that merge from per-series partials: (partial columns, merge over them).
_PARTIALS = {
    "max": ("max(value) AS p", "max(p)"), "min": ("min(value) AS p", "min(p)"),
    "sum": ("sum(value) AS p", "sum(p)"), "count": ("count(value) AS p", "sum(p)"),
    "mean": ("sum(value) AS p, count(value) AS n", "sum(p) / sum(n)"),
}
_RESERVED = {"ts", "value", "series_id", "labels", "run_id"}


def select_series(conn: Connection, metric: str, labels: dict | None) -> pd.DataFrame:
    """Series of ``metric`` whose labels include every ``labels`` pair: series_id, labels."""
    rows = conn.execute(text("SELECT series_id, labels_key FROM series WHERE metric = :m"),
                        {"m": metric}).fetchall()
    if not rows:
        raise UnknownNameError(f"unknown metric {metric!r}: no series has been written for it")
    # A value may be a set of values (list, tuple, set): the label must be one of them.
    wanted = {str(k): ({str(x) for x in v} if isinstance(v, (list, tuple, set, frozenset))
                       else {str(v)}) for k, v in (labels or {}).items()}
    series = [(sid, json.loads(key)) for sid, key in rows]
    chosen = [(sid, lab) for sid, lab in series
              if all(lab.get(k) in v for k, v in wanted.items())]
    return pd.DataFrame(chosen, columns=["series_id", "labels"])


def query_points(conn: Connection, backend: Backend, metric: str, start=None, end=None, *,
                 labels: dict | None = None, every=None, agg: str = "mean",
                 by: list[str] | None = None, fill: str | float | None = None,
                 rollups: bool = True) -> pd.DataFrame:
    """See :meth:`warehouse.Warehouse.points`.

    Bucketed queries that a rollup answers exactly read the rollup plus raw points for what
    it lacks (warehouse/jobs/tiers.py). Archived ranges whose rows left the hot table are
    read from their Parquet files: in SQL where the engine scans Parquet, else in Python.
    """
    backend.read_snapshot(conn)  # rollups, invalidations and raw points: one state
    if agg not in AGGREGATES:
        raise ValueError(f"unknown aggregate {agg!r}; choose one of {', '.join(AGGREGATES)}")
    if fill not in FILLS and not isinstance(fill, (int, float)):
        raise ValueError(f"unknown fill {fill!r}; choose one of null, previous, linear, zero "
                         f"or a number")
    start_ts, end_ts = aware_timestamp(start, "start"), aware_timestamp(end, "end")
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise ValueError(f"end ({end_ts}) must be after start ({start_ts})")
    series = select_series(conn, metric, labels)
    every_us = interval_us(every) if every is not None else None
    if by is not None and every_us is None:
        raise ValueError("'by' groups buckets across series: give 'every' as well")

    ids = ",".join(str(int(sid)) for sid in series["series_id"])  # integers from our table
    where, params = ([f"series_id IN ({ids})"] if ids else ["1 = 0"]), {}
    if start_ts is not None:
        where.append("ts >= :start")
        params["start"] = start_ts
    if end_ts is not None:
        where.append("ts < :end")
        params["end"] = end_ts
    condition = " AND ".join(where)
    series_ids = [int(s) for s in series["series_id"]]
    schema = backend.jobs_schema_present(conn)  # rollups and archive exist (migration 0003)
    archived = archived_units(conn, backend, metric, start_ts, end_ts, schema=schema) if ids else []
    in_python = bool(archived) and not backend.capabilities.parquet_scan
    source, source_params = points_relation(archived, series_ids) if not in_python else ("", {})
    params.update(source_params)

    if every_us is None:
        if in_python:
            frame = _with_archive(conn, backend, archived, series_ids, condition, params,
                                  start_ts, end_ts).sort_values(["series_id", "ts"])
        else:
            frame = backend.fetch_frame(conn, f"SELECT ts, series_id, value, run_id FROM "
                                              f"{source} WHERE {condition} "
                                              f"ORDER BY series_id, ts", params)
        frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
        frame["run_id"] = optional_text(frame["run_id"])
        return _attach_labels(frame, series)

    group, join, keys = _grouping(series, by)
    plan = plan_tier(conn, backend, series_ids,
                     epoch_us(start_ts) if start_ts is not None else None,
                     epoch_us(end_ts) if end_ts is not None else None, every_us, agg,
                     schema=schema) if rollups else None
    if plan is not None and not raw_overlaps(plan, [(u.start_us, u.end_us) for u in archived]):
        sql, tier_params = tier_sql(plan, backend, agg, every_us, series_ids, group, join)
        frame = backend.fetch_frame(conn, sql, tier_params)
    elif in_python:
        rows = _with_archive(conn, backend, archived, series_ids, condition, params,
                             start_ts, end_ts)
        frame = _aggregate(rows, every_us, agg, series, keys, by)
    elif join and agg in _PARTIALS:
        # Aggregate per series first, then merge the partials per group: the join that
        # maps series to groups then meets buckets × series rows instead of every point
        # (on DuckDB the join over raw points was a third of the query).
        partials, merge = _PARTIALS[agg]
        sql = (f"SELECT bucket_us, {group} AS grp, {merge} AS value FROM ("
               f"SELECT {backend.bucket_start('ts', every_us)} AS bucket_us, series_id, "
               f"{partials} FROM {source} WHERE {condition} "
               f"GROUP BY {backend.bucket_key('ts', every_us)}, 2) AS points {join} "
               f"GROUP BY 1, 2 ORDER BY 2, 1")
        frame = backend.fetch_frame(conn, sql, params)
    else:
        sql = (f"SELECT {backend.bucket_start('ts', every_us)} AS bucket_us, {group} AS grp, "
               f"{backend.aggregate(agg)} AS value FROM {source} {join} WHERE {condition} "
               f"GROUP BY {backend.bucket_key('ts', every_us)}, 2 ORDER BY 2, 1")
        frame = backend.fetch_frame(conn, sql, params)
    frame["bucket_us"] = frame["bucket_us"].astype("int64")
    frame["value"] = frame["value"].astype("float64")
    if fill is not None:
        frame = _fill_gaps(frame, every_us, start_ts, end_ts, fill)
    frame.insert(0, "ts", pd.to_datetime(frame["bucket_us"], unit="us", utc=True))
    frame = frame.drop(columns="bucket_us")
    if by is None:
        frame = frame.rename(columns={"grp": "series_id"})
        return _attach_labels(frame[["ts", "series_id", "value"]], series)
    named = keys.set_index("grp")
    for name in by:
        frame[name] = frame["grp"].map(named[name])
    return frame[["ts", *by, "value"]].reset_index(drop=True)


def _with_archive(conn: Connection, backend: Backend, archived, series_ids: list[int],
                  condition: str, params: dict, start, end) -> pd.DataFrame:
    """Raw rows from the hot table and from archive files (engines that cannot read Parquet
    in SQL); a row restored into the hot table while its file is still listed counts once."""
    hot = backend.fetch_frame(conn, f"SELECT ts, series_id, value, run_id FROM points "
                                    f"WHERE {condition}", params)
    return with_archived_rows(hot, archived, series_ids, start, end)


def _aggregate(rows: pd.DataFrame, every_us: int, agg: str, series: pd.DataFrame, keys,
               by: list[str] | None) -> pd.DataFrame:
    """bucket_us, grp, value computed in pandas with the SQL's semantics (percentiles are
    percentile_cont: linear interpolation)."""
    ts_us = rows["ts"].to_numpy(dtype="datetime64[us]").view("i8")
    rows = rows.assign(bucket_us=floor_to_bucket(ts_us, every_us))
    if by is None or series.empty:
        rows["grp"] = rows["series_id"].astype("int64")
    else:
        code = {tuple(r[:-1]): r[-1] for r in keys.itertuples(index=False, name=None)}
        grp_of = {sid: code[tuple(lab.get(n) for n in by)]
                  for sid, lab in zip(series["series_id"], series["labels"])}
        rows["grp"] = rows["series_id"].map(grp_of)
    rows = rows.sort_values("ts", kind="stable")
    grouped = rows.groupby(["grp", "bucket_us"], sort=True)["value"]
    if agg in PERCENTILES:
        values = grouped.quantile(PERCENTILES[agg], interpolation="linear")
    else:
        values = grouped.agg(agg)
    return values.reset_index()[["bucket_us", "grp", "value"]]


def _grouping(series: pd.DataFrame, by: list[str] | None):
    """SQL expression for the group of a row, a join that maps series to groups, and keys."""
    if by is None or series.empty:
        return "series_id", "", None
    key_rows = [tuple(lab.get(name) for name in by) for lab in series["labels"]]
    # Groups are numbered in the order of their label values, so results come out in the
    # same order whatever series ids the engine assigned.
    keys = (pd.DataFrame(key_rows, columns=by).drop_duplicates()
            .sort_values(by, na_position="last").reset_index(drop=True))
    keys["grp"] = np.arange(len(keys))
    code = {tuple(row[:-1]): row[-1] for row in keys.itertuples(index=False, name=None)}
    pairs = ", ".join(f"({sid}, {code[k]})" for sid, k in zip(series["series_id"], key_rows))
    join = f"JOIN (VALUES {pairs}) AS g(g_series_id, g_grp) ON g.g_series_id = points.series_id"
    return "g_grp", join, keys


def _fill_gaps(frame: pd.DataFrame, every_us: int, start, end, fill) -> pd.DataFrame:
    """Add a row for every empty bucket between start and end (or the data's own range)."""
    filled = []
    for grp, part in frame.groupby("grp", sort=True):
        lo = (floor_to_bucket(epoch_us(start), every_us) if start is not None
              else part["bucket_us"].min())
        hi = epoch_us(end) - 1 if end is not None else part["bucket_us"].max()
        full = np.arange(lo, floor_to_bucket(hi, every_us) + every_us, every_us, dtype="i8")
        part = part.set_index("bucket_us").reindex(full)
        part["grp"] = grp
        if fill == "previous":
            part["value"] = part["value"].ffill()
        elif fill == "linear":
            part["value"] = part["value"].interpolate(limit_area="inside")
        elif fill == "zero":
            part["value"] = part["value"].fillna(0.0)
        elif isinstance(fill, (int, float)):
            part["value"] = part["value"].fillna(float(fill))
        filled.append(part.rename_axis("bucket_us").reset_index())
    if not filled:
        return frame
    return pd.concat(filled, ignore_index=True)[["bucket_us", "grp", "value"]]


def _attach_labels(frame: pd.DataFrame, series: pd.DataFrame) -> pd.DataFrame:
    """Add the labels dict and one column per label name (names clashing with columns skipped)."""
    labels = dict(zip(series["series_id"], series["labels"]))
    frame = frame.reset_index(drop=True)
    frame["labels"] = frame["series_id"].map(labels)
    names = sorted({k for lab in labels.values() for k in lab} - _RESERVED)
    for name in names:
        # Mapped per series, not per row: one dict lookup table per label name.
        per_series = pd.Series({sid: lab.get(name) for sid, lab in labels.items()}, dtype=object)
        frame[name] = frame["series_id"].map(per_series)
    return frame
