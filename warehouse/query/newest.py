"""Newest-first plans: "the last N buckets before T" and "the newest N points per series".

Instead of aggregating all history before T and keeping the tail, the question is asked for
a window that ends at T and just covers N buckets; only when that window holds fewer than N
(gaps in the data) is it widened, geometrically, down to the oldest point of the chosen
series. Each window is an ordinary time-bounded query, so PostgreSQL prunes partitions and
DuckDB prunes row groups by their ``ts`` zone maps: the common case reads the newest
chunk only. Answers equal the full computation's tail (tests/storage/test_query_newest.py).
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import text

from warehouse.backends.base import floor_to_bucket
from warehouse.sqlfiles import sql_fragment
from warehouse.timeparse import epoch_us, ts_to_us, us_to_ts

#: First window of a raw newest-N query, and how much each retry widens it.
_RAW_FIRST_US = 3_600_000_000
_GROWTH = 8
#: A window of at most this many series × µs (100 series-hours: 36,000 points at TSBS's 10 s
#: step) is read without parallel workers (sql/<engine>/query/newest_workers.sql).
_SERIAL_SERIES_US = 100 * 3_600_000_000


def check_last(n) -> int:
    """``n`` if it is a valid ``last=`` (a positive int, not a bool), else ValueError."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"last must be a positive whole number, not {n!r}")
    return n


def newest(query, start_ts, end_ts, n: int, fill) -> dict[str, np.ndarray]:
    """The rows of ``query`` (a :class:`~warehouse.query.points.PointsQuery`) for the ``n``
    newest buckets with data (bucketed), or the ``n`` newest points of each series (raw),
    in [start, end), as columns by name (as :meth:`PointsQuery.run` gives them).
    With ``fill``, the ``n`` buckets ending at ``end`` are returned, empty ones filled."""
    check_last(n)
    every = query.every_us
    if fill is not None and every is None:
        raise ValueError("fill needs every (it fills empty buckets)")
    hi = epoch_us(end_ts) if end_ts is not None else _newest_us(query)
    if hi is None:  # no point at all: the ordinary (empty) answer
        return query.run(start_ts, end_ts, fill)
    lo_bound = epoch_us(start_ts) if start_ts is not None else None
    if every is not None:
        lo = int(floor_to_bucket(hi - 1, every)) - (n - 1) * every
        if fill is not None:
            lo = lo if lo_bound is None else max(lo, lo_bound)
            _workers(query, lo, hi, False)
            return query.run(us_to_ts(lo), us_to_ts(hi), fill)
    else:
        lo = hi - _RAW_FIRST_US
    oldest = None
    serial = False
    while True:
        clipped = lo if lo_bound is None else max(lo, lo_bound)
        serial = _workers(query, clipped, hi, serial)
        columns = query.run(us_to_ts(clipped), us_to_ts(hi))
        if _enough(columns, n, every, query) or clipped == lo_bound:
            break
        if oldest is None:
            oldest = _oldest_us(query)
        if oldest is None or clipped <= oldest:
            break
        span = (hi - lo) * _GROWTH
        lo = hi - span if every is None else int(floor_to_bucket(hi - span, every))
    # The tail in NumPy, on the columns as fetched: a DataFrame made, filtered and taken
    # apart again here cost ~1 ms of a 5-bucket answer (cProfile, groupby-orderby-limit).
    if every is not None:
        buckets = np.unique(columns["bucket_us"])
        keep = columns["bucket_us"] >= (buckets[-n] if len(buckets) >= n else
                                        buckets[0] if len(buckets) else 0)
    else:
        keep = _last_of_each(np.asarray(columns["series_id"]), n)
    return {name: np.asarray(column)[keep] for name, column in columns.items()}


def _workers(query, lo: int, hi: int, serial: bool) -> bool:
    """Read the window [lo, hi) µs without parallel workers if it is small, else as the
    engine plans; ``serial``: how the previous window was read. Returns how this one is."""
    small = (hi - lo) * max(len(query.sel.ids), 1) <= _SERIAL_SERIES_US
    if small != serial:
        statement = sql_fragment(query.backend.sql_folders, "query/newest_workers")
        if statement:
            query.conn.exec_driver_sql(statement.format(workers="0" if small else "DEFAULT"))
    return small


def _last_of_each(series_ids: np.ndarray, n: int) -> np.ndarray:
    """Mask of the last ``n`` rows of each run of equal ``series_ids`` (raw rows come
    ordered by series, then time)."""
    if len(series_ids) == 0:
        return np.zeros(0, dtype=bool)
    starts = np.flatnonzero(np.r_[True, series_ids[1:] != series_ids[:-1]])
    ends = np.r_[starts[1:], len(series_ids)]
    run_end = np.repeat(ends, ends - starts)
    return run_end - np.arange(len(series_ids)) <= n


def _enough(columns: dict, n: int, every, query) -> bool:
    if every is not None:
        return len(np.unique(columns["bucket_us"])) >= n
    _, counts = np.unique(np.asarray(columns["series_id"]), return_counts=True)
    return len(counts) == len(query.sel.ids) and bool((counts >= n).all())


def _newest_us(query) -> int | None:
    """µs just after the newest point of the chosen series (series_last, kept by ingest;
    the points table where that table is missing)."""
    ids = ",".join(str(int(s)) for s in query.sel.ids) or "NULL"
    table = "series_last" if query.backend.table_exists(query.conn, "series_last") else "points"
    newest = query.conn.execute(text(
        f"SELECT max(ts) FROM {table} WHERE series_id IN ({ids})")).scalar()
    return None if newest is None else ts_to_us(newest) + 1


def _oldest_us(query) -> int | None:
    """µs of the oldest hot or compressed point of the chosen series, or an archived
    unit's start."""
    ids = ",".join(str(int(s)) for s in query.sel.ids) or "NULL"
    oldest = query.conn.execute(text(
        f"SELECT min(ts) FROM points WHERE series_id IN ({ids})")).scalar()
    found = [] if oldest is None else [ts_to_us(oldest)]
    from warehouse.query.archive_read import oldest_compressed_us

    compressed = oldest_compressed_us(query.conn, query.backend, list(query.sel.ids))
    found += [] if compressed is None else [compressed]
    if query.state.archived:
        from warehouse.query.archive_read import archived_units

        found += [u.start_us for u in archived_units(query.conn, query.backend, schema=True)]
    return min(found) if found else None
