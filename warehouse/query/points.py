"""``Warehouse.points``: raw or time-bucketed points of one metric as a DataFrame.

Buckets are computed in integer µs from the common origin (2000-01-03 UTC) with the same
SQL arithmetic on every engine, so the same data gives the same buckets everywhere.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sqlalchemy import Connection

from warehouse.backends.base import AGGREGATES, PERCENTILES, Backend, floor_to_bucket
from warehouse.query.answer import (
    LabelTaker,
    frame_from_columns,
    row_positions,
    run_id_texts,
    utc_from_us,
    utc_times,
)
from warehouse.query.archive_read import (
    archived_units,
    compressed_segments,
    points_relation,
    with_archived_rows,
)
from warehouse.query.catalog import (
    QueryState,
    Selection,
    query_state,
    select,
    series_filter,
    state_checked,
)
from warehouse.query.partials import PARTIALS
from warehouse.query.tiers import plan_tier, raw_overlaps, read_tier
from warehouse.timeparse import aware_timestamp, epoch_us, interval_us

FILLS = (None, "null", "previous", "linear", "zero")
# Aggregates that merge from per-series partials: (partial columns, merge over them).
_PARTIALS = {agg: (PARTIALS[agg], merge) for agg, merge in {
    "max": "max(p)", "min": "min(p)", "sum": "sum(p)", "count": "sum(p)",
    "mean": "sum(p) / sum(n)"}.items()}
_RESERVED = {"ts", "value", "series_id", "labels", "run_id", "metric"}


def metric_list(metric) -> tuple[list[str], bool]:
    """The metrics asked for and whether a list was given (the answer then says which
    metric each row is of)."""
    if isinstance(metric, str):
        return [metric], False
    if not isinstance(metric, (list, tuple)) or not metric:
        raise ValueError("metric must be a name or a non-empty list of names")
    names = list(metric)
    for i, name in enumerate(names):
        if not isinstance(name, str) or not name:
            raise ValueError(f"metric {i}: expected a non-empty name, got {name!r}")
    if len(set(names)) != len(names):
        raise ValueError("metric: each metric may be listed once")
    return names, True


def check_options(agg: str, fill, with_labels) -> None:
    """Refuse unknown aggregates, fills and label options with a message naming them."""
    if agg not in AGGREGATES:
        raise ValueError(f"unknown aggregate {agg!r}; choose one of {', '.join(AGGREGATES)}")
    if fill not in FILLS and (isinstance(fill, bool) or not isinstance(fill, (int, float))):
        raise ValueError(f"unknown fill {fill!r}; choose one of null, previous, linear, zero "
                         f"or a number")
    if not isinstance(with_labels, bool) and not (
            isinstance(with_labels, (list, tuple))
            and all(isinstance(n, str) for n in with_labels)):
        raise ValueError("with_labels must be True, False or a list of label names")


def time_range(start, end) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """Aware UTC bounds, with end after start, raised to the next whole µs (points are
    stored in µs, so ``ts >= start`` and ``ts < end`` keep the same rows): a bound with
    nanoseconds was truncated by DuckDB and by psycopg's server-side binds but rounded by
    PostgreSQL when rendered as text (the one-message call), so a call and its repeat
    differed (tests/storage/test_review_s4_query.py)."""
    start_ts, end_ts = aware_timestamp(start, "start"), aware_timestamp(end, "end")
    if start_ts is not None and end_ts is not None and end_ts <= start_ts:
        raise ValueError(f"end ({end_ts}) must be after start ({start_ts})")
    return _whole_us(start_ts), _whole_us(end_ts)


def _whole_us(ts: pd.Timestamp | None) -> pd.Timestamp | None:
    if ts is None:
        return None
    if ts.unit != "ns":
        return ts.as_unit("us")
    us, ns = divmod(int(ts.value), 1000)  # Python ints: no overflow at Timestamp.min/max
    return pd.Timestamp(us + (1 if ns else 0), unit="us", tz="UTC")


@state_checked
def query_points(conn: Connection, backend: Backend, metric, start=None, end=None, *,
                 labels: dict | None = None, every=None, agg: str = "mean",
                 by: list[str] | None = None, fill: str | float | None = None,
                 rollups: bool = True, with_labels: bool | list[str] = True,
                 last: int | None = None) -> pd.DataFrame:
    """See :meth:`warehouse.Warehouse.points`.

    Before its SQL, a query runs one state statement (warehouse/query/catalog.py): series
    come from a cache checked by it, rollup watermarks and archive presence come with it.
    Bucketed queries that a rollup answers exactly read the rollup plus raw points for what
    it lacks (warehouse/jobs/tiers.py). Archived ranges whose rows left the hot table are
    read from their Parquet files: in SQL where the engine scans Parquet, else in Python.
    """
    backend.read_snapshot(conn)  # rollups, invalidations and raw points: one state
    metrics, multi = metric_list(metric)
    check_options(agg, fill, with_labels)
    start_ts, end_ts = time_range(start, end)
    every_us = interval_us(every) if every is not None else None
    if by is not None and every_us is None:
        raise ValueError("'by' groups buckets across series: give 'every' as well")
    state = query_state(conn, backend)
    sel = select(conn, backend, metrics, labels, state)
    query = PointsQuery(conn, backend, state, sel, multi, every_us, agg, by, rollups)
    if last is not None:
        from warehouse.query.newest import newest

        frame = newest(query, start_ts, end_ts, last, fill)
    else:
        frame = query.run(start_ts, end_ts, fill)
    return query.shape(frame, with_labels)


class PointsQuery:
    """One points question over chosen series, answerable for any time range (the
    newest-first plans ask it for growing windows)."""

    def __init__(self, conn: Connection, backend: Backend, state: QueryState, sel: Selection,
                 multi: bool, every_us: int | None, agg: str, by: list[str] | None,
                 rollups: bool):
        self.conn, self.backend, self.state, self.sel = conn, backend, state, sel
        self.multi, self.every_us, self.agg, self.by, self.rollups = (
            multi, every_us, agg, by, rollups)
        memo_key = ("grouping", tuple(by) if by is not None else None, multi)
        if memo_key not in sel.memo:
            sel.memo[memo_key] = _grouping(sel, by, multi)
        self.group, self.join, self.keys, self.codes = sel.memo[memo_key]

    def run(self, start_ts, end_ts, fill=None) -> dict[str, np.ndarray]:
        """Raw rows (ts, series_id, value, run_id) or buckets (bucket_us, grp, value), as
        typed columns by name: no DataFrame is made before the answer's own."""
        conn, backend, sel, every_us, agg = (self.conn, self.backend, self.sel, self.every_us,
                                             self.agg)
        series_ids = [int(s) for s in sel.ids]
        where = [series_filter(backend, series_ids)] if series_ids else ["1 = 0"]
        params = {}
        if start_ts is not None:
            where.append("ts >= :start")
            params["start"] = start_ts
        if end_ts is not None:
            where.append("ts < :end")
            params["end"] = end_ts
        condition = " AND ".join(where)
        archived = (archived_units(conn, backend, None if self.multi else str(sel.metrics[0]),
                                   start_ts, end_ts, schema=True)
                    if series_ids and self.state.archived else [])
        in_python = bool(archived) and not backend.capabilities.parquet_scan
        compressed = compressed_segments(conn, backend)
        source, source_params = points_relation([] if in_python else archived, series_ids,
                                                compressed=compressed, start=start_ts, end=end_ts)
        params.update(source_params)

        if every_us is None:
            if in_python:
                return _raw_rows(_with_archive(conn, backend, archived, series_ids, source,
                                               condition, params, start_ts, end_ts
                                               ).sort_values(["series_id", "ts"]))
            return _raw_rows(backend.fetch_columns(
                conn, f"SELECT ts, series_id, value, run_id FROM {source} WHERE {condition} "
                      f"ORDER BY series_id, ts", params))
        group, join = self.group, self.join
        plan = plan_tier(conn, backend, series_ids,
                         epoch_us(start_ts) if start_ts is not None else None,
                         epoch_us(end_ts) if end_ts is not None else None, every_us, agg,
                         schema=self.state.jobs_schema,
                         marks=self.state) if self.rollups else None
        if plan is not None and not raw_overlaps(plan, [(u.start_us, u.end_us)
                                                        for u in archived]):
            frame = read_tier(conn, backend, plan, agg, every_us, series_ids, group, join,
                              compressed=compressed)
        elif in_python:
            rows = _with_archive(conn, backend, archived, series_ids, source, condition, params,
                                 start_ts, end_ts)
            frame = _buckets(_aggregate(rows, every_us, agg, sel, self.codes, self.by))
        elif self.keys is not None and len(self.keys) == 1:
            # Every chosen series in one group (by=[], or by a label they share): the
            # aggregate over all their points, with no join mapping series to groups. DuckDB
            # spent more planning that join (100 pairs of VALUES) than running the query:
            # groupby-orderby-limit's statement 6.0 -> 3.4 ms (bench/tsbs, load 3.6).
            sql = (f"SELECT {backend.bucket_start('ts', every_us)} AS bucket_us, 0 AS grp, "
                   f"{backend.aggregate(agg)} AS value FROM {source} WHERE {condition} "
                   f"GROUP BY {backend.bucket_key('ts', every_us)} ORDER BY 1")
            frame = _buckets(backend.fetch_columns(conn, sql, params))
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
            frame = _buckets(backend.fetch_columns(conn, sql, params))
        else:
            sql = (f"SELECT {backend.bucket_start('ts', every_us)} AS bucket_us, "
                   f"{group} AS grp, {backend.aggregate(agg)} AS value FROM {source} {join} "
                   f"WHERE {condition} GROUP BY {backend.bucket_key('ts', every_us)}, 2 "
                   f"ORDER BY 2, 1")
            frame = _buckets(backend.fetch_columns(conn, sql, params))
        if fill is not None:
            frame = _buckets(_fill_gaps(pd.DataFrame(frame), every_us, start_ts, end_ts, fill))
        return frame

    def shape(self, frame, with_labels) -> pd.DataFrame:
        """The answer from :meth:`run`'s columns (or a DataFrame of them): ts first, then
        metric (a list was asked), then series_id and labels, or the ``by`` labels, then
        value (and run_id for raw rows). Every column is an array made once (no per-column
        index to align) and the DataFrame built once: each pandas step here runs with the
        CPU caches cold from the statement, at several times its cost in a tight loop."""
        if self.every_us is None:
            out = {"ts": utc_times(frame["ts"])}
            sids = np.asarray(frame["series_id"], dtype="i8")
            rest = {"series_id": sids,
                    "value": np.asarray(frame["value"], dtype="f8"),
                    "run_id": run_id_texts(np.asarray(frame["run_id"], dtype=object))}
            return self._with_series(out, sids, rest, with_labels)
        out = {"ts": utc_from_us(np.asarray(frame["bucket_us"], dtype="i8"))}
        grp = np.asarray(frame["grp"], dtype="i8")
        if self.by is None:
            return self._with_series(out, grp, {"series_id": grp,
                                                "value": np.asarray(frame["value"], dtype="f8")},
                                     with_labels)
        keys = self.keys
        groups = LabelTaker(len(keys), grp)
        for name in (["metric"] if self.multi else []) + list(self.by):
            out[name] = groups.column(name, keys[name].to_numpy(dtype=object))
        out["value"] = np.asarray(frame["value"], dtype="f8")
        return frame_from_columns(out)

    def _with_series(self, out: dict, sids: np.ndarray, rest: dict, with_labels
                     ) -> pd.DataFrame:
        sel = self.sel
        memo = sel.memo
        pos = row_positions(sel, sids)
        labels = LabelTaker(len(sel.ids), pos, memo)
        if self.multi:
            out["metric"] = labels.column("metric", sel.metrics)
        out.update(rest)
        if with_labels is not False:
            if with_labels is True:
                if "labels_array" not in memo:
                    every = np.empty(len(sel.labels), dtype=object)
                    every[:] = list(sel.labels)
                    memo["labels_array"] = every
                out["labels"] = memo["labels_array"][pos]
                names = [n for n in sel.label_names() if n not in _RESERVED]
            else:
                names = [n for n in with_labels if n not in _RESERVED]
            if "label_values" not in memo:
                memo["label_values"] = {n: sel.table[n].to_numpy(dtype=object)
                                        for n in sel.table.columns}
            values = memo["label_values"]
            for name in names:
                out[name] = labels.column(name, values.get(name))
        return frame_from_columns(out)


def _raw_rows(columns) -> dict[str, np.ndarray]:
    """Raw point rows (ts, series_id, value, run_id) from fetched columns (or a frame)."""
    return {"ts": columns["ts"],
            "series_id": np.asarray(columns["series_id"], dtype="i8"),
            "value": np.asarray(columns["value"], dtype="f8"),
            "run_id": np.asarray(columns["run_id"], dtype=object)}


def _buckets(columns) -> dict[str, np.ndarray]:
    """bucket_us, grp, value with fixed dtypes from fetched columns (or a frame of them)."""
    return {"bucket_us": np.asarray(columns["bucket_us"], dtype="i8"),
            "grp": np.asarray(columns["grp"], dtype="i8"),
            "value": np.asarray(columns["value"], dtype="f8")}


def _with_archive(conn: Connection, backend: Backend, archived, series_ids: list[int],
                  source: str, condition: str, params: dict, start, end) -> pd.DataFrame:
    """Raw rows from the hot relation ``source`` and from archive files (engines that cannot
    read Parquet in SQL); a row restored into the hot table while its file is still listed
    counts once."""
    hot = backend.fetch_frame(conn, f"SELECT ts, series_id, value, run_id FROM {source} "
                                    f"WHERE {condition}", params)
    return with_archived_rows(hot, archived, series_ids, start, end)


def _aggregate(rows: pd.DataFrame, every_us: int, agg: str, sel: Selection, codes,
               by: list[str] | None) -> pd.DataFrame:
    """bucket_us, grp, value computed in pandas with the SQL's semantics (percentiles are
    percentile_cont: linear interpolation)."""
    ts_us = rows["ts"].to_numpy(dtype="datetime64[us]").view("i8")
    rows = rows.assign(bucket_us=floor_to_bucket(ts_us, every_us))
    if by is None or sel.empty:
        rows["grp"] = rows["series_id"].astype("int64")
    else:
        rows["grp"] = rows["series_id"].map(dict(zip(sel.ids.tolist(), codes.tolist())))
    rows = rows.sort_values("ts", kind="stable")
    grouped = rows.groupby(["grp", "bucket_us"], sort=True)["value"]
    if agg in PERCENTILES:
        values = grouped.quantile(PERCENTILES[agg], interpolation="linear")
    else:
        values = grouped.agg(agg)
    return values.reset_index()[["bucket_us", "grp", "value"]]


def group_keys(sel: Selection, names: list[str], multi: bool) -> tuple[pd.DataFrame, np.ndarray]:
    """Groups of the chosen series by (metric if ``multi``) + the label ``names``: a table of
    the distinct keys (columns ``[metric,] *names, grp``), numbered in the order of their
    values (missing labels last) so results come out in the same order whatever series ids
    the engine assigned; and each series' group number. Memoised on the selection."""
    memo_key = ("groups", tuple(names), multi)
    if memo_key in sel.memo:
        return sel.memo[memo_key]
    columns = (["metric"] if multi else []) + list(names)
    values = [sel.metrics] if multi else []
    for name in names:
        column = sel.table.get(name)
        values.append(column.to_numpy(dtype=object) if column is not None
                      else np.full(len(sel.ids), None, dtype=object))
    tuples = list(zip(*values)) if values else [()] * len(sel.ids)
    distinct = set(tuples) or {()}
    try:
        ordered = sorted(distinct, key=_missing_last)
    except TypeError:  # label values of mixed types: order by their text
        ordered = sorted(distinct, key=lambda t: tuple((v is None, str(v)) for v in t))
    number = {t: i for i, t in enumerate(ordered)}
    codes = np.fromiter((number[t] for t in tuples), dtype="i8", count=len(tuples))
    keys = pd.DataFrame(ordered, columns=columns) if columns else pd.DataFrame(index=range(1))
    keys["grp"] = np.arange(len(keys))
    sel.memo[memo_key] = (keys, codes)
    return keys, codes


def _missing_last(key: tuple) -> tuple:
    return tuple((v is None, "" if v is None else v) for v in key)


def _grouping(sel: Selection, by: list[str] | None, multi: bool):
    """SQL expression for the group of a row, a join that maps series to groups, the keys
    and each series' group."""
    if by is None or sel.empty:
        return "series_id", "", None, None
    keys, codes = group_keys(sel, list(by), multi)
    pairs = ", ".join(f"({int(sid)}, {int(c)})" for sid, c in zip(sel.ids, codes))
    join = f"JOIN (VALUES {pairs}) AS g(g_series_id, g_grp) ON g.g_series_id = points.series_id"
    return "g_grp", join, keys, codes


#: Rows ``fill`` may create in one answer (bounded memory whatever the data's span).
MAX_FILLED_BUCKETS = 20_000_000


def _fill_gaps(frame: pd.DataFrame, every_us: int, start, end, fill) -> pd.DataFrame:
    """Add a row for every empty bucket between start and end (or the data's own range)."""
    filled, total = [], 0
    for grp, part in frame.groupby("grp", sort=True):
        lo = (floor_to_bucket(epoch_us(start), every_us) if start is not None
              else part["bucket_us"].min())
        hi = epoch_us(end) - 1 if end is not None else part["bucket_us"].max()
        # Counted before anything is allocated: every=1us over the data's years would
        # otherwise try to build trillions of rows.
        total += max(0, (int(floor_to_bucket(hi, every_us)) - int(lo)) // every_us + 1)
        if total > MAX_FILLED_BUCKETS:
            raise ValueError(
                f"fill would make more than {MAX_FILLED_BUCKETS:,} buckets of {every_us} µs; "
                f"give a shorter start/end or a wider every")
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
