"""What a points query must know before its own SQL runs, at the cost of one round trip.

A query needs the series of its metric(s) with their labels, the rollup watermarks and
whether any archived files must be read. Asking for each costs a statement (and parsing the
labels JSON of every series a pandas step); this module asks ONE statement
(``sql/common/query/state.sql``) and keeps the series per metric in a cache.

Why the cache is safe: series are only ever added (nothing deletes a series row), so the
series of a metric cached when the table held ``n`` series with newest id ``v`` are
complete while ``(count(*), max(series_id))`` is still ``(n, v)``. The count matters on
PostgreSQL: a sequence value drawn before another's may commit after it, so a new series
can appear below the newest id. When either has changed, the series of the metrics asked
for are read again (in the query's snapshot). The check is part of the state statement every query runs
anyway, so a series written by any process (another writer on PostgreSQL, the server) is
seen by the next query. The cache lives in ``backend.schema_facts``, which
:meth:`Warehouse.migrate` and ``downgrade`` clear (a downgrade to base drops series and
restarts the sequence).

Where the engine knows every commit (DuckDB: one writer process, commits counted by the
backend), the state statement's answer itself is remembered until the next commit, so the
usual query runs no statement before its own.

Where it cannot (PostgreSQL: other writers) a call wrapped in :func:`state_checked` assumes
the state read last and builds its statement from it; the state statement goes to the server
with that statement, in its round trip and its snapshot (``Backend.defer_statement``: on
PostgreSQL one pipeline that is a whole transaction), and when the state read there differs
from the one assumed, the call is answered again, reading its state first. So the answer is
always that of the snapshot's own state, at one round trip instead of four.
"""

from __future__ import annotations

import functools
import json
import threading
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sqlalchemy import Connection, bindparam, text
from sqlalchemy.exc import DBAPIError

from warehouse.backends.base import Backend, SnapshotEnded
from warehouse.errors import UnknownNameError
from warehouse.sqlfiles import sql_fragment
from warehouse.timeparse import ts_to_us

_CATALOG_KEY = "query_catalog"  # in backend.schema_facts
_STATE_KEY = "query_state"  # (commit generation, QueryState) in backend.schema_facts
# (backend.local_commits() before it was read, the QueryState read last) in schema_facts:
_ASSUMED_KEY = "query_state_assumed"
# In conn.info during a state_checked call: whether query_state may assume the state read
# last (False once the assumption failed), and the state it assumed.
_MAY_ASSUME = "query_state_may_assume"
_ASSUMED = "query_state_assumed_by_call"
_LOCK = threading.Lock()
_MAX_SELECTIONS = 512  # cached (metrics, labels) selections before the cache starts over


@dataclass(frozen=True)
class QueryState:
    """One statement's view of the database: newest series id, dropped archive units of
    points, rollup watermarks (µs, None = nothing materialised) and pending invalidations."""

    series_max: int
    series_count: int = 0
    archived: int = 0
    watermarks: dict[str, int | None] = field(default_factory=dict)
    pending: int = 0
    jobs_schema: bool = False

    @property
    def version(self) -> tuple[int, int]:
        """What the cached series are valid for: (number of series, newest id)."""
        return (self.series_count, self.series_max)


@dataclass(frozen=True)
class MetricSeries:
    """The series of one metric: ids (sorted int64), their label dicts and a label table
    (one object column per label name, None where a series lacks it), row-aligned."""

    ids: np.ndarray
    labels: tuple[dict, ...]
    table: pd.DataFrame
    version: tuple[int, int]  # (series_count, series_max) when this was read


@dataclass(frozen=True)
class Selection:
    """Series chosen for a query, possibly of several metrics: row-aligned arrays."""

    ids: np.ndarray  # int64
    metrics: np.ndarray  # object: the metric of each series
    labels: tuple[dict, ...]
    table: pd.DataFrame  # label columns
    #: Derived per-query structures (groupings), kept while the selection is cached.
    memo: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def empty(self) -> bool:
        return len(self.ids) == 0

    def label_names(self) -> list[str]:
        """Names of labels that at least one chosen series has, sorted."""
        if "label_names" not in self.memo:
            self.memo["label_names"] = sorted(
                {k for lab in self.labels for k, v in lab.items() if v is not None})
        return self.memo["label_names"]


def query_state(conn: Connection, backend: Backend) -> QueryState:
    """The state statement's answer (one round trip), or, where the engine counts every
    commit (:meth:`Backend.commit_generation`: DuckDB, one writer process), the answer
    remembered from the last call while no commit has happened since: nothing to run.

    The count is read before ``conn``'s transaction begins (a transaction already begun
    may hold an older snapshot, so neither reads nor stores the remembered state); a commit
    counted after that read makes the stored answer stale at once.

    Elsewhere, inside a :func:`state_checked` call, the state read last is assumed (and
    checked in the query's snapshot) unless this process has committed since it was read."""
    generation = None if conn.in_transaction() else backend.commit_generation()
    if generation is not None:
        remembered = backend.schema_facts.get(_STATE_KEY)
        if remembered is not None and remembered[0] == generation:
            return remembered[1]
    else:
        commits = backend.local_commits()  # before the state is read: see local_commits
        remembered = backend.schema_facts.get(_ASSUMED_KEY)
        if (conn.info.get(_MAY_ASSUME) and remembered is not None and remembered[0] == commits
                and backend.defer_statement(conn, _state_sql(backend,
                                                             remembered[1].jobs_schema))):
            conn.info[_ASSUMED] = remembered[1]
            return remembered[1]
    state = _read_state(conn, backend)
    if generation is not None:
        backend.schema_facts[_STATE_KEY] = (generation, state)
    else:
        backend.schema_facts[_ASSUMED_KEY] = (commits, state)
    return state


def state_checked(run):
    """``run(conn, backend, ...)``, a query that reads its state with :func:`query_state`,
    allowed to assume the state read last, checked in its own snapshot (module docstring):
    if the state read with its statement differs from the one assumed, or it failed before
    any statement (an unknown metric may have been written since), or it needed another
    statement after a message that ended its transaction (:class:`SnapshotEnded`), it runs
    again, reading its state first. Calls inside a checked call are part of it; engines
    that remember their state per commit (DuckDB) have nothing to check."""

    @functools.wraps(run)
    def checked(conn: Connection, backend: Backend, *args, **kwargs):
        if _MAY_ASSUME in conn.info or backend.commit_generation() is not None:
            return run(conn, backend, *args, **kwargs)
        conn.info[_MAY_ASSUME] = True
        try:
            try:
                answer = run(conn, backend, *args, **kwargs)
            except SnapshotEnded:
                pass  # it needed a statement after the message that ended its transaction
            except DBAPIError:
                raise  # from the database: its transaction may be unusable, nothing to check
            except Exception:
                if _assumption_held(conn, backend):
                    raise
            else:
                if _assumption_held(conn, backend):
                    return answer
            conn.info[_MAY_ASSUME] = False
            conn.info.pop(_ASSUMED, None)
            backend.new_snapshot(conn)
            return run(conn, backend, *args, **kwargs)
        finally:
            conn.info.pop(_MAY_ASSUME, None)
            conn.info.pop(_ASSUMED, None)
            backend.new_snapshot(conn)

    return checked


def _assumption_held(conn: Connection, backend: Backend) -> bool:
    """Whether the state this call assumed (if it did) is the state of its snapshot; the
    state read there becomes the one the next call assumes."""
    assumed = conn.info.pop(_ASSUMED, None)
    if assumed is None:
        return True
    commits = backend.local_commits()
    actual = _parse_state(backend.deferred_rows(conn), assumed.jobs_schema)
    backend.schema_facts[_ASSUMED_KEY] = (commits, actual)
    return actual == assumed


def _state_sql(backend: Backend, jobs_schema: bool) -> str:
    return backend.sql("query/state" if jobs_schema else "query/state_series")


def _read_state(conn: Connection, backend: Backend) -> QueryState:
    jobs = backend.jobs_schema_present(conn)
    return _parse_state(backend.fetch_rows(conn, _state_sql(backend, jobs), {}), jobs)


def _parse_state(rows: list[tuple], jobs_schema: bool) -> QueryState:
    """The state from the rows of ``query/state`` (or, without the jobs schema,
    ``query/state_series``)."""
    return _parsed_state(tuple(rows), jobs_schema)


@functools.lru_cache(maxsize=16)
def _parsed_state(rows: tuple[tuple, ...], jobs_schema: bool) -> QueryState:
    # Remembered by the rows themselves: between writes every query reads the same state,
    # and turning its watermarks into µs through pandas cost ~0.1 ms of a 2.9 ms wh.frame
    # (TSBS single-groupby-1-1-1 on PostgreSQL, which reads the state with every call).
    # A QueryState is frozen and its watermarks are only read.
    if not jobs_schema:
        series_max, series_count = rows[0]
        return QueryState(int(series_max or 0), int(series_count or 0))
    facts, marks = {}, {}
    for key, number, mark in rows:
        if key.startswith("points_"):
            marks[key] = None if mark is None else ts_to_us(mark)
        else:
            facts[key] = int(number or 0)
    return QueryState(facts.get("series_max", 0), facts.get("series_count", 0),
                      facts.get("archived", 0), marks, facts.get("pending", 0), True)


def metric_series(conn: Connection, backend: Backend, metrics: list[str],
                  state: QueryState) -> dict[str, MetricSeries]:
    """The series of each metric as of ``state`` (cached while the series table is
    unchanged; read again otherwise)."""
    version = state.version
    with _LOCK:
        cache: dict[str, MetricSeries] = backend.schema_facts.setdefault(_CATALOG_KEY, {})
        known = {m: cache.get(m) for m in metrics}
    stale = [m for m, entry in known.items() if entry is None or entry.version != version]
    if stale:
        query = text(backend.sql("query/metric_series")).bindparams(
            bindparam("metrics", expanding=True))
        rows = conn.execute(query, {"metrics": sorted(stale)}).fetchall()
        new: dict[str, list[tuple[int, dict]]] = {m: [] for m in stale}
        for sid, metric, key in rows:
            new[metric].append((int(sid), json.loads(key)))
        for metric in stale:
            known[metric] = _table(new[metric], version)
        with _LOCK:
            for metric in stale:
                cache[metric] = known[metric]
    return known  # type: ignore[return-value]


def _table(pairs: list[tuple[int, dict]], version: tuple[int, int]) -> MetricSeries:
    pairs.sort(key=lambda p: p[0])
    ids = np.array([p[0] for p in pairs], dtype="i8")
    labels = tuple(p[1] for p in pairs)
    names = sorted({k for lab in labels for k in lab})
    table = pd.DataFrame({n: pd.Series([lab.get(n) for lab in labels], dtype=object)
                          for n in names}, index=range(len(labels)))
    return MetricSeries(ids, labels, table, version)


def select(conn: Connection, backend: Backend, metrics: list[str], labels: dict | None,
           state: QueryState) -> Selection:
    """Series of ``metrics`` whose labels include every ``labels`` pair (a value may be a
    list/tuple/set: any of them matches; values compare as text). An unknown metric raises
    :class:`~warehouse.errors.UnknownNameError`. Cached per (metrics, labels) while no
    series has been added."""
    wanted = {str(k): (tuple(sorted({str(x) for x in v}))
                       if isinstance(v, (list, tuple, set, frozenset)) else (str(v),))
              for k, v in (labels or {}).items()}
    key = ("selection", tuple(metrics), tuple(sorted(wanted.items())))
    with _LOCK:
        cache = backend.schema_facts.setdefault(_CATALOG_KEY, {})
        hit = cache.get(key)
    if hit is not None and hit[0] == state.version:
        return hit[1]
    found = metric_series(conn, backend, metrics, state)
    parts_ids, parts_metric, parts_labels, parts_table = [], [], [], []
    for metric in metrics:
        entry = found[metric]
        if entry is None or len(entry.ids) == 0:
            raise UnknownNameError(
                f"unknown metric {metric!r}: no series has been written for it")
        mask = np.ones(len(entry.ids), dtype=bool)
        for name, values in wanted.items():
            column = entry.table.get(name)
            mask &= (column.isin(values).to_numpy() if column is not None
                     else np.zeros(len(mask), dtype=bool))
        chosen = np.flatnonzero(mask)
        parts_ids.append(entry.ids[chosen])
        parts_metric.append(np.full(len(chosen), metric, dtype=object))
        parts_labels.extend(entry.labels[i] for i in chosen)
        parts_table.append(entry.table.iloc[chosen].reset_index(drop=True))
    if len(parts_table) == 1:
        table = parts_table[0]
    else:  # label names differ between metrics: missing ones are None, as in one metric
        table = pd.concat(parts_table, ignore_index=True).astype(object)
        table = table.where(table.notna(), None)
    selection = Selection(np.concatenate(parts_ids).astype("i8"),
                          np.concatenate(parts_metric), tuple(parts_labels), table)
    with _LOCK:
        if len(cache) > _MAX_SELECTIONS:
            for stale in [k for k in cache if isinstance(k, tuple)]:
                del cache[stale]
        cache[key] = (state.version, selection)
    return selection


__all__ = ["MetricSeries", "QueryState", "Selection", "metric_series", "query_state", "select",
           "state_checked"]


def id_ranges(series_ids: list[int], column: str = "series_id") -> str:
    """``column`` (series_id) in the list, with long runs of consecutive ids as ranges:
    series created together (the fields of a host, the hosts of a fleet) have consecutive
    ids, and DuckDB filters a range faster than a list of a thousand (TSBS
    double-groupby-all: the scan and partials 27 -> 23 ms). See :func:`series_filter` for
    where it is used."""
    if not series_ids:
        return f"{column} IN (NULL)"
    if len(series_ids) < _RANGE_MIN:  # no run can be long enough: the list (NumPy's passes
        # over a few ids cost ~0.1 ms of a small wh.frame)
        return f"{column} IN ({','.join(map(str, sorted({int(s) for s in series_ids})))})"
    ids = np.unique(np.asarray(series_ids, dtype="i8"))
    starts = np.flatnonzero(np.r_[True, np.diff(ids) != 1])
    ends = np.r_[starts[1:], len(ids)] - 1
    long = (ends - starts + 1) >= _RANGE_MIN
    parts = [f"{column} BETWEEN {ids[a]} AND {ids[b]}"
             for a, b in zip(starts[long], ends[long])]
    singles = np.concatenate([ids[a:b + 1] for a, b in zip(starts[~long], ends[~long])]) \
        if (~long).any() else []
    if len(singles):
        parts.append(f"{column} IN ({','.join(map(str, singles))})")
    return parts[0] if len(parts) == 1 else f"({' OR '.join(parts)})"


#: Consecutive series ids filtered as one range from this many on (fewer stay listed).
_RANGE_MIN = 32


def series_filter(backend: Backend, series_ids: list[int]) -> str:
    """The condition choosing ``series_ids`` in a scan of points, in the engine's form
    (``sql/<dialect>/query/series_filter.sql``): ranges where they help (DuckDB), the list
    where the primary key is probed once per id (PostgreSQL)."""
    form = sql_fragment(backend.sql_folders, "query/series_filter")
    if "{ranges}" in form:
        return form.format(ranges=id_ranges(series_ids))
    return form.format(ids=",".join(str(int(s)) for s in series_ids) or "NULL")
