"""TSBS cpu-only queries: random parameters, the warehouse's answer and the baseline's SQL.

Semantics follow TSBS's query generator (cmd/tsbs_generate_queries/uses/devops and the
TimescaleDB flavour in databases/timescaledb/devops.go):

=======================  ===========================================================
single-groupby-M-H-D     max of M metrics per minute, for H random hosts, over D hours
cpu-max-all-8            max of all 10 metrics per hour, for 8 random hosts, over 8 hours
double-groupby-M         mean of M metrics per hour and host, all hosts, over 12 hours
high-cpu-1 / -all        every reading with usage_user > 90 in 12 hours, 1 host / all
lastpoint                the last reading of every metric for every host
groupby-orderby-limit    max usage_user per minute, the last 5 minutes before a random end
=======================  ===========================================================

Each query type draws ``instances`` parameter sets (hosts, windows) from its own seeded
stream, so every system answers exactly the same questions. Each side returns a frame that
:func:`canonical` turns into one shape — ``ts`` (µs since the epoch, int64), ``hostname``
where the answer has one, one column per TSBS field — sorted, so answers compare with a
numeric tolerance.

How the warehouse answers (``--api engine``, the default):

- single-groupby, cpu-max-all-8, double-groupby: ``wh.frame`` (one statement for every
  field, the engine pivots), hosts chosen with a list-valued ``labels``;
- high-cpu: ``wh.frame`` of the 10 fields with ``where="cpu.usage_user > 90"``;
- groupby-orderby-limit: ``wh.points(by=[], last=5)`` (newest-first window);
- lastpoint: ``wh.sql`` on the documented ``series_latest`` view.

``--api proposed`` / ``current`` keep the older forms (one ``wh.points`` per field, ``wh.sql``
for high-cpu) for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from data import METRICS, Dataset

HOUR = pd.Timedelta(hours=1)
_MINUTE_US, _HOUR_US = 60_000_000, 3_600_000_000


@dataclass(frozen=True)
class Params:
    """One instance of a query: a time window (``start`` may be None) and hosts."""

    start: pd.Timestamp | None
    end: pd.Timestamp | None
    hosts: tuple[str, ...] = ()

    def binds(self) -> dict:
        return {k: v for k, v in (("start", self.start), ("end", self.end)) if v is not None}


@dataclass(frozen=True)
class QueryType:
    name: str
    description: str
    via: str  # how the warehouse answers it, for the report
    draw: Callable[[Dataset, np.random.Generator], Params]
    warehouse: Callable  # (Warehouse, engine, Params, api) -> DataFrame
    baseline: Callable  # (engine, Params) -> (sql with :binds, binds)
    keys: tuple[str, ...] = ("ts",)
    metrics: tuple[str, ...] = field(default=METRICS)


# -- random parameters (TSBS: Interval.MustRandWindow and Core.GetRandomHosts) -----------------
def _window(data: Dataset, rng: np.random.Generator, length: pd.Timedelta):
    slack = int((data.end - data.start - length).total_seconds())
    start = data.start + pd.Timedelta(seconds=int(rng.integers(0, slack + 1)))
    return start, start + length


def _hosts(data: Dataset, rng: np.random.Generator, n: int) -> tuple[str, ...]:
    return tuple(f"host_{i}" for i in rng.choice(data.hosts, size=min(n, data.hosts),
                                                  replace=False))


def _draw_window(hours: int, hosts: int):
    def draw(data, rng):
        start, end = _window(data, rng, hours * HOUR)
        return Params(start, end, _hosts(data, rng, hosts) if hosts else ())
    return draw


def _draw_end(data, rng):
    _, end = _window(data, rng, HOUR)  # TSBS: the end of a random 1-hour window
    return Params(None, end)


def _draw_nothing(data, rng):
    return Params(None, None)


# -- the warehouse's answers ------------------------------------------------------------------
def _series(frame: pd.DataFrame, keys: list[str]) -> pd.Series:
    return frame.set_index(keys)["value"]


def _hosts_label(hosts: tuple[str, ...]) -> dict:
    return {"hostname": list(hosts)} if hosts else {}


def _wh_max_by_time(metrics, every):
    def run(wh, engine, p: Params, api: str = "current") -> pd.DataFrame:
        if api == "engine":
            # One statement for every field: the engine pivots (wh.frame).
            return wh.frame([f"cpu.{m}" for m in metrics], p.start, p.end,
                            labels=_hosts_label(p.hosts), every=every, agg="max", by=[])
        columns = {}
        for m in metrics:
            if api == "proposed" and len(p.hosts) > 1:
                # --api proposed: a label matching any of a list of values (docs/tsbs.md, fix S).
                frame = wh.points(f"cpu.{m}", p.start, p.end, labels={"hostname": list(p.hosts)},
                                  every=every, agg="max", by=[])
                columns[m] = _series(frame, ["ts"])
            elif len(p.hosts) == 1:
                frame = wh.points(f"cpu.{m}", p.start, p.end, labels={"hostname": p.hosts[0]},
                                  every=every, agg="max")
                columns[m] = _series(frame, ["ts"])
            else:
                frame = wh.points(f"cpu.{m}", p.start, p.end, every=every, agg="max",
                                  by=["hostname"])
                columns[m] = frame[frame["hostname"].isin(p.hosts)].groupby("ts")["value"].max()
        return pd.DataFrame(columns).reset_index()
    return run


def _wh_mean_by_host(metrics):
    def run(wh, engine, p: Params, api: str = "current") -> pd.DataFrame:
        if api == "engine":
            return wh.frame([f"cpu.{m}" for m in metrics], p.start, p.end,
                            every="1h", agg="mean", by=["hostname"])
        columns = {m: _series(wh.points(f"cpu.{m}", p.start, p.end, every="1h", agg="mean",
                                        by=["hostname"]), ["ts", "hostname"])
                   for m in metrics}
        return pd.DataFrame(columns).reset_index()
    return run


def _pivot(alias: str) -> str:
    # CASE rather than FILTER: the same on DuckDB, 1.6x faster on PostgreSQL here.
    return ", ".join(f"max(CASE WHEN s.metric = 'cpu.{m}' THEN {alias}.value END) AS {m}"
                     for m in METRICS)


def _host_filter(hosts: tuple[str, ...], column: str) -> str:
    # Host names are ours (host_<n>); checked anyway since they are written into the SQL.
    assert all(h.startswith("host_") and h[5:].isdigit() for h in hosts)
    return f" AND {column} IN ({', '.join(repr(h) for h in hosts)})" if hosts else ""


def _wh_high_cpu(wh, engine, p: Params, api: str = "current") -> pd.DataFrame:
    if api == "engine":
        # The readings of the 10 fields, pivoted in SQL, where usage_user > 90 (a bound value).
        return wh.frame([f"cpu.{m}" for m in METRICS], p.start, p.end,
                        labels=_hosts_label(p.hosts), where="cpu.usage_user > 90")
    # Readings are one row per metric: find the (ts, host) where usage_user > 90, then
    # gather that host's 10 values at that ts (the primary key / zone maps find them).
    cpu_metrics = ", ".join(f"'cpu.{m}'" for m in METRICS)
    sql = f"""
        WITH s AS (
            SELECT series_id, metric, labels->>'hostname' AS hostname FROM series
            WHERE metric IN ({cpu_metrics}){_host_filter(p.hosts, "labels->>'hostname'")}
        ), hot AS (
            SELECT p.ts, s.hostname FROM points p JOIN s ON p.series_id = s.series_id
            WHERE s.metric = 'cpu.usage_user' AND p.value > 90.0
              AND p.ts >= :start AND p.ts < :end
        )
        SELECT hot.ts, hot.hostname, {_pivot("p")}
        FROM hot JOIN s ON s.hostname = hot.hostname
        JOIN points p ON p.series_id = s.series_id AND p.ts = hot.ts
        WHERE p.ts >= :start AND p.ts < :end
        GROUP BY hot.ts, hot.hostname"""
    return wh.sql(sql, p.binds())


def _wh_lastpoint(wh, engine, p: Params, api: str = "current") -> pd.DataFrame:
    # The documented view series_latest (last point of every series): one text for both
    # engines; DuckDB computes it with arg_max over points, PostgreSQL with one primary-key
    # probe per series.
    pivot = ", ".join(f"max(CASE WHEN metric = 'cpu.{m}' THEN value END) AS {m}" for m in METRICS)
    return wh.sql(f"SELECT labels->>'hostname' AS hostname, max(ts) AS ts, {pivot} "
                  f"FROM series_latest WHERE metric LIKE 'cpu.%' GROUP BY 1")


def _wh_groupby_orderby_limit(wh, engine, p: Params, api: str = "current") -> pd.DataFrame:
    if api == "engine":
        # Newest-first: only the window holding the last 5 minutes is read.
        return wh.points("cpu.usage_user", None, p.end, every="1m", agg="max", by=[],
                         last=5)
    frame = wh.points("cpu.usage_user", None, p.end, every="1m", agg="max", by=[])
    return frame.tail(5).rename(columns={"value": "usage_user"})


# -- the baselines: TSBS's SQL on its wide table -----------------------------------------------
def bucket(engine: str, every_us: int) -> str:
    """The bucket of ``time``, in the fastest correct form on each engine. TSBS writes
    time_bucket(); on DuckDB date_trunc/time_bucket on TIMESTAMPTZ go through ICU and cost
    several times more than integer arithmetic on epoch_us (answer in µs), on PostgreSQL
    date_trunc is the fast native form (answer a timestamptz; sessions are in UTC)."""
    if engine == "duckdb":
        return f"(epoch_us(time) // {every_us} * {every_us})"
    unit = {_MINUTE_US: "minute", _HOUR_US: "hour"}[every_us]
    return f"date_trunc('{unit}', time)"


def _hosts_where(hosts) -> str:
    return f"tags_id IN (SELECT id FROM tags WHERE hostname IN " \
           f"({', '.join(repr(h) for h in hosts)}))"


def _base_max_by_time(metrics, every_us):
    def sql(engine, p: Params):
        aggs = ", ".join(f"max({m}) AS {m}" for m in metrics)
        return (f"SELECT {bucket(engine, every_us)} AS ts, {aggs} FROM cpu "
                f"WHERE {_hosts_where(p.hosts)} AND time >= :start AND time < :end "
                f"GROUP BY 1 ORDER BY 1"), p.binds()
    return sql


def _base_mean_by_host(metrics):
    def sql(engine, p: Params):
        aggs = ", ".join(f"avg({m}) AS {m}" for m in metrics)
        return (f"WITH cpu_avg AS (SELECT {bucket(engine, _HOUR_US)} AS ts, tags_id, {aggs} "
                f"FROM cpu WHERE time >= :start AND time < :end GROUP BY 1, 2) "
                f"SELECT ts, tags.hostname, {', '.join(metrics)} FROM cpu_avg "
                f"JOIN tags ON cpu_avg.tags_id = tags.id ORDER BY ts, tags.hostname"), p.binds()
    return sql


def _base_high_cpu(engine, p: Params):
    hosts = f" AND {_hosts_where(p.hosts)}" if p.hosts else ""
    return (f"SELECT * FROM cpu WHERE usage_user > 90.0 AND time >= :start AND time < :end"
            f"{hosts}"), p.binds()


def _base_lastpoint(engine, p: Params):
    # TSBS's form (UseTags): the newest row per tags_id through LATERAL ... LIMIT 1.
    return ("SELECT DISTINCT ON (t.hostname) * FROM tags t INNER JOIN LATERAL "
            "(SELECT * FROM cpu c WHERE c.tags_id = t.id ORDER BY time DESC LIMIT 1) AS b "
            "ON true ORDER BY t.hostname, b.time DESC"), {}


def _base_groupby_orderby_limit(engine, p: Params):
    return (f"SELECT {bucket(engine, _MINUTE_US)} AS ts, max(usage_user) AS usage_user "
            f"FROM cpu WHERE time < :end GROUP BY 1 ORDER BY 1 DESC LIMIT 5"), p.binds()


def _single(m: int, h: int, hours: int) -> QueryType:
    metrics = METRICS[:m]
    return QueryType(
        f"single-groupby-{m}-{h}-{hours}",
        f"max of {m} metric(s) per minute, {h} host, {hours} h",
        f"wh.frame ×{m} fields (labels={{hostname}}, every=1m, agg=max, by=[])",
        _draw_window(hours, h), _wh_max_by_time(metrics, "1m"),
        _base_max_by_time(metrics, _MINUTE_US), metrics=metrics)


QUERY_TYPES: dict[str, QueryType] = {q.name: q for q in [
    _single(1, 1, 1),
    _single(1, 1, 12),
    _single(5, 1, 12),
    QueryType("cpu-max-all-8", "max of all 10 metrics per hour, 8 hosts, 8 h",
              "wh.frame ×10 fields (labels={hostname: 8 hosts}, every=1h, agg=max, by=[])",
              _draw_window(8, 8), _wh_max_by_time(METRICS, "1h"),
              _base_max_by_time(METRICS, _HOUR_US)),
    QueryType("double-groupby-1", "mean of 1 metric per hour per host, all hosts, 12 h",
              "wh.frame ×1 field (by=[hostname], every=1h, agg=mean)",
              _draw_window(12, 0), _wh_mean_by_host(METRICS[:1]),
              _base_mean_by_host(METRICS[:1]), keys=("ts", "hostname"), metrics=METRICS[:1]),
    QueryType("double-groupby-all", "mean of 10 metrics per hour per host, all hosts, 12 h",
              "wh.frame ×10 fields (by=[hostname], every=1h, agg=mean)",
              _draw_window(12, 0), _wh_mean_by_host(METRICS), _base_mean_by_host(METRICS),
              keys=("ts", "hostname")),
    QueryType("high-cpu-1", "readings of 1 host with usage_user > 90, 12 h",
              "wh.frame ×10 fields (where='cpu.usage_user > 90')",
              _draw_window(12, 1), _wh_high_cpu, _base_high_cpu, keys=("hostname", "ts")),
    QueryType("high-cpu-all", "readings of all hosts with usage_user > 90, 12 h",
              "wh.frame ×10 fields (where='cpu.usage_user > 90')",
              _draw_window(12, 0), _wh_high_cpu, _base_high_cpu, keys=("hostname", "ts")),
    QueryType("lastpoint", "last reading of every metric for every host",
              "wh.sql (view series_latest, pivot)",
              _draw_nothing, _wh_lastpoint, _base_lastpoint, keys=("hostname",)),
    QueryType("groupby-orderby-limit", "max usage_user per minute, last 5 minutes before "
              "a random end", "wh.points (by=[], every=1m, agg=max, last=5)",
              _draw_end, _wh_groupby_orderby_limit, _base_groupby_orderby_limit,
              metrics=METRICS[:1]),
]}


def draw_instances(query: QueryType, data: Dataset, count: int) -> list[Params]:
    """``count`` parameter sets for ``query``, the same for a given dataset seed."""
    index = list(QUERY_TYPES).index(query.name)
    rng = np.random.default_rng([data.seed, 3, index])
    return [query.draw(data, rng) for _ in range(1 if query.draw is _draw_nothing else count)]


# -- one shape for every answer ----------------------------------------------------------------
def canonical(query: QueryType, frame: pd.DataFrame, hostnames: dict[int, str]) -> pd.DataFrame:
    """``frame`` (either side's answer) as keys + TSBS field columns, sorted, plain dtypes."""
    frame = frame.reset_index(drop=True)
    if "time" in frame.columns and "ts" not in frame.columns:
        frame = frame.rename(columns={"time": "ts"})
    if "hostname" in query.keys and "hostname" not in frame.columns:
        frame["hostname"] = frame["tags_id"].map(hostnames)
    out = pd.DataFrame({"hostname": frame["hostname"].astype(str)}
                       if "hostname" in query.keys else {})
    if "ts" in query.keys or "ts" in frame.columns:
        out["ts"] = _epoch_us(frame["ts"])
    for m in query.metrics:
        # wh.frame names its columns by metric (cpu.usage_user), wh.points of one metric
        # calls it value: renamed here, untimed, rather than in the timed call, which would
        # charge pandas' rename to the warehouse.
        column = next(frame[c] for c in (m, f"cpu.{m}", "value") if c in frame.columns)
        out[m] = pd.to_numeric(column).astype("f8").to_numpy()
    keys = [k for k in query.keys]
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


def _epoch_us(column: pd.Series) -> np.ndarray:
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.to_numpy(dtype="i8")
    stamps = pd.to_datetime(column, utc=True)
    return stamps.dt.as_unit("us").to_numpy(dtype="datetime64[us]").view("i8")


def same_answer(a: pd.DataFrame, b: pd.DataFrame, rtol: float = 1e-9) -> str | None:
    """None when the canonical answers agree, else what differs."""
    if list(a.columns) != list(b.columns):
        return f"columns {list(a.columns)} != {list(b.columns)}"
    if len(a) != len(b):
        return f"{len(a)} rows != {len(b)} rows"
    for column in a.columns:
        x, y = a[column].to_numpy(), b[column].to_numpy()
        if x.dtype.kind == "f":
            if not np.allclose(x, y, rtol=rtol, atol=1e-9, equal_nan=True):
                bad = int(np.flatnonzero(~np.isclose(x, y, rtol=rtol, atol=1e-9,
                                                      equal_nan=True))[0])
                return f"{column} differs at row {bad}: {x[bad]!r} != {y[bad]!r}"
        elif not (x == y).all():
            bad = int(np.flatnonzero(x != y)[0])
            return f"{column} differs at row {bad}: {x[bad]!r} != {y[bad]!r}"
    return None
