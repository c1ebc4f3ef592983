"""TSBS queries over compressed PostgreSQL chunks: the raw-read decode of migration 0013
against 0012's, and both against TSBS's raw wide table, in one process (issue 15;
docs/tsbs.md "Closed-chunk compression").

Loads ``--hosts`` × ``--days`` of TSBS cpu data into a warehouse and into the wide ``cpu``
table on a throwaway PostgreSQL 15 (or ``--url``'s server: two new databases), runs
refresh_rollups and the compress job on the warehouse, then times every query type three
ways, one instance each, alternating the order every round:

* ``before``: raw reads decode as under 0012 — one inlined ``wh_segment_points`` per
  segment, both timestamp forms in one UNION ALL. Its 0012 body is re-created here as
  ``bench_segment_points_0012`` and ``points_relation`` is swapped for that form in this
  process only (the segments are the same rows either way);
* ``after``: the code as it is (0013: one function per timestamp form, parallel-capable);
* ``raw``: TSBS's statement on the wide table.

Every answer is checked against the raw one first. Medians and p95 of wall ms per system go
to bench/results/compress_reads.json with the load average at the start and end of each
query type. A query whose ``before`` median passes 3 s stops after 3 rounds.

    .venv/bin/python bench/compress_reads.py [--hosts 100] [--days 1] [--runs 9]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE / "tsbs"), str(HERE), str(HERE.parent)]

import psycopg  # noqa: E402
from common import RESULTS  # noqa: E402
from data import Dataset, host_tags  # noqa: E402
from queries import QUERY_TYPES, canonical, draw_instances, same_answer  # noqa: E402
from systems import PostgresBaseline, WarehouseSystem, libpq_dsn  # noqa: E402

import warehouse.query.archive_read as archive_read  # noqa: E402
from warehouse.query import frame, frame_where, points, tiers  # noqa: E402

# wh_segment_points as migration 0012 created it (0013 replaced its body; its down migration
# puts that body back), under a name of its own
_DOWN_0013 = (HERE.parent / "sql/postgresql/migrations/0013_segment_decode.down.sql").read_text()
DECODE_0012 = re.search(r"CREATE OR REPLACE FUNCTION wh_segment_points\(.*?\$\$;", _DOWN_0013,
                        re.S).group(0).replace("CREATE OR REPLACE FUNCTION wh_segment_points",
                                               "CREATE FUNCTION bench_segment_points_0012")

CURRENT_RELATION = archive_read.points_relation
READERS = (frame, frame_where, points, tiers)  # modules that imported points_relation


def relation_0012(units, series_ids, *, compressed=False, start=None, end=None, spans_us=None):
    """points_relation as it was under 0012 (no archive units in this benchmark; it had no
    spans: they are ignored)."""
    if not compressed:
        return CURRENT_RELATION(units, series_ids, compressed=False, start=start, end=end)
    ids = ",".join(str(int(s)) for s in series_ids) or "NULL"
    bounds, params = archive_read._segment_bounds("c", start, end)
    return ("(SELECT ts, series_id, value, run_id FROM points UNION ALL "
            "SELECT s.ts, c.series_id, s.value, s.run_id FROM points_compressed c "
            "CROSS JOIN LATERAL bench_segment_points_0012(c.ts_min, c.ts_step, c.ts_deltas, "
            "c.vals, c.vals_real, c.vals_int, c.vals_decimals, c.run_ids) s "
            f"WHERE c.series_id IN ({ids}){bounds}) AS points"), params


def reading_with(relation) -> None:
    for module in READERS:
        if hasattr(module, "points_relation"):
            module.points_relation = relation


def time_query(name: str, wh: WarehouseSystem, raw: PostgresBaseline, data: Dataset,
               hostnames: dict, runs: int) -> dict:
    query = QUERY_TYPES[name]
    p = draw_instances(query, data, 1)[0]
    sql, binds = query.baseline("postgresql", p)

    def warehouse_with(relation):
        def answer():
            reading_with(relation)
            return query.warehouse(wh.wh, "postgresql", p, "engine")
        return answer

    systems = {"before": warehouse_with(relation_0012), "after": warehouse_with(CURRENT_RELATION),
               "raw": lambda: raw.query(sql, binds)}
    expected = canonical(query, systems["raw"](), hostnames)
    for label in ("before", "after"):
        problem = same_answer(canonical(query, systems[label](), hostnames), expected)
        assert problem is None, f"{name} {label}: {problem}"
    times: dict[str, list[float]] = {label: [] for label in systems}
    load_start = os.getloadavg()
    for round_ in range(runs):
        for label in list(systems) if round_ % 2 == 0 else reversed(list(systems)):
            t0 = time.perf_counter()
            systems[label]()
            times[label].append((time.perf_counter() - t0) * 1000)
        if round_ >= 2 and statistics.median(times["before"]) > 3000:
            break
    row = {"query": name, "runs": len(times["raw"]), "load_average_start": load_start,
           "load_average_end": os.getloadavg()}
    for label, values in times.items():
        ordered = sorted(values)
        row[f"{label}_median_ms"] = statistics.median(ordered)
        row[f"{label}_p95_ms"] = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    for label in ("before", "after"):
        row[f"{label}_ratio"] = row[f"{label}_median_ms"] / row["raw_median_ms"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=100)
    parser.add_argument("--days", type=int, default=1)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--queries", default=",".join(QUERY_TYPES))
    parser.add_argument("--url", default=None, help="a PostgreSQL server URL whose role may "
                                                    "create databases (default: a throwaway one)")
    args = parser.parse_args()
    data = Dataset(args.hosts, args.days)
    tags = host_tags(data.hosts, data.seed)
    hostnames = dict(zip(tags["tags_id"], tags["hostname"]))
    stamp = time.strftime("%Y%m%d%H%M%S")
    server = None
    if args.url is None:
        from warehouse.pgserver import LocalPostgres

        server = LocalPostgres().start()
        urls = [server.create_database(f"compress_reads_{n}_{stamp}") for n in ("wh", "raw")]
    else:
        base = args.url.rsplit("/", 1)[0]
        with psycopg.connect(libpq_dsn(args.url), autocommit=True) as conn:
            for n in ("wh", "raw"):
                conn.execute(f'CREATE DATABASE "compress_reads_{n}_{stamp}"')
        urls = [f"{base}/compress_reads_{n}_{stamp}" for n in ("wh", "raw")]
    wh, raw = WarehouseSystem("postgresql", urls[0]), PostgresBaseline(urls[1])
    try:
        for system in (wh, raw):
            system.load(data)
            system.settle()
        compress_seconds = wh.compress(data)
        wh.settle()
        with psycopg.connect(libpq_dsn(urls[0]), autocommit=True) as conn:
            conn.execute(DECODE_0012)
        rows = []
        for name in args.queries.split(","):
            rows.append(time_query(name, wh, raw, data, hostnames, args.runs))
            r = rows[-1]
            print(f"{name:22s} before {r['before_median_ms']:8.1f} / {r['before_p95_ms']:8.1f}  "
                  f"after {r['after_median_ms']:8.1f} / {r['after_p95_ms']:8.1f}  "
                  f"raw {r['raw_median_ms']:7.1f} / {r['raw_p95_ms']:7.1f}  wh/raw "
                  f"{r['before_ratio']:5.2f} -> {r['after_ratio']:5.2f}  (load "
                  f"{r['load_average_start'][0]:.1f}-{r['load_average_end'][0]:.1f})", flush=True)
    finally:
        reading_with(CURRENT_RELATION)
        wh.close()
        raw.close()
        if server is not None:
            server.stop()
    result = {"hosts": args.hosts, "days": args.days, "compress_seconds": compress_seconds,
              "queries": rows}
    out = RESULTS / "compress_reads.json"
    out.write_text(json.dumps(result, indent=2, default=str) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
