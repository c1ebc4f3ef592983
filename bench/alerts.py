"""Alerts benchmark (issue 14): time from the write that breaches a rule to the webhook
received, with many rules active and background ingest; evaluation cost per write batch;
memory with many flapping instances.

    python bench/alerts.py [--engine duckdb|postgresql] [--url URL] [--rules 1000]
                           [--rate 10000] [--batch 5000] [--trials 30] [--flapping 10000]
                           [--rounds 6]

- Latency: ``--rules`` rules (all threshold rules on their own metric, plus 10 run-failed
  rules) in one running AlertManager following ``wh.changes``; a thread writes ``--rate``
  points/s (batches of ``--batch``, values below every threshold, on the rules' metrics so
  each batch triggers evaluations). Each trial writes one breaching point (or one failed
  run) and waits for the webhook on a local HTTP server: latency = receipt - just before
  the write. The points/s actually written are reported next to the target. On DuckDB the
  background writer and the trials share the one writer of the file; on PostgreSQL
  (``--engine postgresql``: a throwaway local server) the background writer is another
  client in another process, whose changes reach the evaluator by NOTIFY, heard by the
  ChangeListener that ``warehouse serve`` runs.
- Evaluation cost per write batch: in the same process without background ingest, one
  batch of ``--batch`` points written, then the rules it touches evaluated incrementally
  (``on_changes``, what the evaluator does) and, as the baseline, whole
  (``evaluate_all`` of the same rules, what it did before); and the rounds the running
  evaluator made under ingest (wall time, points covered).
- Flapping: one threshold rule over ``--flapping`` series whose values cross the threshold
  every round (fake clock): instances in memory / table and traced Python memory per round.

Prints tables and writes bench/results/alerts.json. Wall times on a shared 2-core machine
include waiting for the CPU (the load average is recorded).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import tempfile
import threading
import time
import tracemalloc
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import print_table, write_results  # noqa: E402

from warehouse import Warehouse  # noqa: E402
from warehouse.alerts import AlertManager, NotifyConfig  # noqa: E402


class Receiver:
    """Local webhook receiver: trial key -> perf_counter at receipt."""

    def __init__(self):
        self.received: dict[str, float] = {}
        self.event = threading.Condition()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                import json

                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.perf_counter()
                with outer.event:
                    for alert in body["alerts"]:
                        key = alert["labels"].get("trial") or alert["labels"].get("run_id")
                        if alert["status"] == "firing" and key:
                            outer.received.setdefault(key, now)
                    outer.event.notify_all()
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, key: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        with self.event:
            while key not in self.received:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.event.wait(left)
            return self.received[key]


def pct(values, q):
    return float(np.percentile(values, q)) * 1000 if values else float("nan")


def background_batch(n_metric_rules: int, batch: int, rng) -> pd.DataFrame:
    """``batch`` points below every threshold on random rule metrics, 10 hosts each."""
    ts = pd.Timestamp.now(tz="UTC")
    metrics = rng.integers(0, n_metric_rules, batch)
    hosts = [{"host": f"h{k}"} for k in range(10)]
    return pd.DataFrame({"metric": [f"m{k}" for k in metrics],
                         "labels": [hosts[k % 10] for k in range(batch)],
                         "ts": ts - pd.to_timedelta(np.arange(batch), unit="us"),
                         "value": rng.uniform(0, 50, batch)})


def write_steadily(wh, n_metric_rules: int, rate: int, batch: int, stop, written) -> None:
    """Write ``rate`` points/s in batches of ``batch`` until ``stop`` is set, counting them in
    ``written`` (a shared Value). ``wh``: a Warehouse, or a URL to open one (in a process).
    Batches are built beforehand, only their times renewed: the CPU goes to writing. Each
    write is sent when the schedule says; one that runs late is not made up by a burst."""
    if isinstance(wh, str):
        wh = Warehouse(wh)
    rng = np.random.default_rng(0)
    frames = [background_batch(n_metric_rules, batch, rng) for _ in range(8)]
    offsets = pd.to_timedelta(np.arange(batch), unit="us")
    next_at, n = time.perf_counter(), 0
    while not stop.is_set():
        wh.write_points(frames[n % len(frames)].assign(ts=pd.Timestamp.now(tz="UTC") - offsets))
        n += 1
        with written.get_lock():
            written.value += batch
        next_at = max(next_at + batch / rate, time.perf_counter() - batch / rate)
        stop.wait(max(0.0, next_at - time.perf_counter()))


def with_rules(wh: Warehouse, n_rules: int) -> AlertManager:
    """An AlertManager with ``n_rules`` rules: threshold rules m<i>_high on metrics m<i>
    (each written first, on 10 hosts) and 10 run-failed rules r<j>_failed."""
    n_metric_rules = n_rules - 10
    now = pd.Timestamp.now(tz="UTC")
    wh.write_points(pd.DataFrame({"metric": [f"m{i}" for i in range(n_metric_rules)
                                             for _ in range(10)],
                                  "labels": [{"host": f"h{k}"} for _ in range(n_metric_rules)
                                             for k in range(10)],
                                  "ts": [now - pd.Timedelta("10s")] * n_metric_rules * 10,
                                  "value": [1.0] * n_metric_rules * 10}))
    am = AlertManager(wh)
    for i in range(n_metric_rules):
        am.add_rule({"name": f"m{i}_high", "kind": "threshold", "metric": f"m{i}",
                     "op": ">", "threshold": 100, "window": "1m", "interval": "1h"},
                    check=False)
    for j in range(10):
        am.add_rule({"name": f"r{j}_failed", "kind": "run_failed", "recipe": f"r{j}",
                     "interval": "1h"}, check=False)
    return am


def batch_cost(url: str, n_rules: int, batch: int, repeats: int) -> dict:
    """Evaluation cost of one write batch: incremental (on_changes) against whole
    (evaluate_all of the rules the batch touches), measured alternately in one process."""
    wh = Warehouse(url)
    am = with_rules(wh, n_rules)
    am.evaluate_all()  # first full round: every rule has been evaluated once
    rng = np.random.default_rng(1)
    incremental, whole, touched = [], [], []
    for _ in range(repeats):
        with wh.changes.subscribe() as sub:
            wh.write_points(background_batch(n_rules - 10, batch, rng))
            changes = sub.drain()
        rules = am.index.touched(changes)
        touched.append(len(rules))
        started = time.perf_counter()
        am.on_changes(changes)
        incremental.append(time.perf_counter() - started)
        started = time.perf_counter()
        am.evaluate_all(rules=rules)
        whole.append(time.perf_counter() - started)
    wh.close()
    return {"batch_points": batch, "repeats": repeats,
            "rules_touched_median": float(np.median(touched)),
            "incremental_p50_ms": pct(incremental, 50), "incremental_p95_ms": pct(incremental, 95),
            "whole_p50_ms": pct(whole, 50), "whole_p95_ms": pct(whole, 95),
            "load_average": os.getloadavg()}


def latency(url: str, n_rules: int, rate: int, batch: int, trials: int
            ) -> tuple[list[dict], dict]:
    wh = Warehouse(url)
    receiver = Receiver()
    n_metric_rules = n_rules - 10
    load_before = os.getloadavg()
    am = with_rules(wh, n_rules)
    am.set_notify(NotifyConfig.from_dict({
        "receivers": [{"name": "hook", "channels": [{"type": "webhook", "url": receiver.url}]}],
        "routes": [{"receiver": "hook", "group_by": ["alertname", "run_id", "trial"],
                    "group_wait": "0s", "group_interval": "0s"}]}))
    rounds: dict[str, list[tuple[float, int]]] = {"quick": [], "metric": []}
    original = am.evaluate_changes

    def timed(changes, now=None, *, quick):
        start = time.perf_counter()
        try:
            return original(changes, now, quick=quick)
        finally:
            rounds["quick" if quick else "metric"].append(
                (time.perf_counter() - start,
                 sum(c.rows for c in changes if c.kind == "points")))

    am.evaluate_changes = timed
    stop = threading.Event()
    am.start(tick=0.05)
    if wh.backend.capabilities.single_writer:
        # one writer per DuckDB file: the background writer is a thread of this process
        written = multiprocessing.Value("q", 0)
        background = threading.Thread(target=write_steadily, daemon=True, args=(
            wh, n_metric_rules, rate, batch, stop, written))
    else:
        # another client in another process (its own interpreter), whose changes reach this
        # evaluator by NOTIFY, as they reach a served warehouse
        from warehouse.server.listener import ChangeListener

        listener = ChangeListener(wh)
        listener.start()
        listener.listening.wait(30)
        spawn = multiprocessing.get_context("spawn")
        written, stop = spawn.Value("q", 0), spawn.Event()
        background = spawn.Process(target=write_steadily, daemon=True, args=(
            url, n_metric_rules, rate, batch, stop, written))
    if rate > 0:  # --rate 0: no background ingest (the baseline)
        background.start()
        deadline = time.monotonic() + 120
        while written.value == 0 and time.monotonic() < deadline:
            time.sleep(0.1)  # a spawned writer takes seconds to import and connect
    time.sleep(2.0)
    results = {"threshold": [], "run_failed": []}
    missed = {"threshold": 0, "run_failed": 0}
    started_all, written_before = time.perf_counter(), written.value
    # the write call itself (waiting for the background writer's batch: one writer per
    # DuckDB file) and what follows its commit, apart: the evaluator's share is the second
    write_calls = {"threshold": [], "run_failed": []}
    after_commit = {"threshold": [], "run_failed": []}

    def trial(kind: str, key: str, write) -> None:
        before = time.perf_counter()
        write()
        committed = time.perf_counter()
        got = receiver.wait_for(key, 30)
        write_calls[kind].append(committed - before)
        if got:
            results[kind].append(got - before)
            after_commit[kind].append(got - committed)
        missed[kind] += got is None

    for t in range(trials):
        key = f"t{t}"
        trial("threshold", key, lambda key=key, t=t: wh.write_points(pd.DataFrame({
            "metric": [f"m{t % n_metric_rules}"], "labels": [{"trial": key}],
            "ts": [pd.Timestamp.now(tz="UTC")], "value": [500.0]})))
        run_id, now = str(uuid.uuid4()), pd.Timestamp.now(tz="UTC")
        trial("run_failed", run_id, lambda run_id=run_id, now=now, t=t: wh.write_runs([{
            "run_id": run_id, "recipe": f"r{t % 10}", "status": "failed",
            "started_at": now - pd.Timedelta("1s"), "finished_at": now}]))
    elapsed = time.perf_counter() - started_all
    load_after = os.getloadavg()
    stop.set()
    if rate > 0:
        background.join()
    am.stop()
    if not wh.backend.capabilities.single_writer:
        listener.stop()
    rows = [{"rule kind": kind, "trials": len(v) + missed[kind], "missed": missed[kind],
             "p50 ms": pct(v, 50), "p95 ms": pct(v, 95), "p99 ms": pct(v, 99),
             "max ms": max(v) * 1000 if v else float("nan"),
             "write call p50 ms": pct(write_calls[kind], 50),
             "write call p95 ms": pct(write_calls[kind], 95),
             "after commit p50 ms": pct(after_commit[kind], 50),
             "after commit p95 ms": pct(after_commit[kind], 95)}
            for kind, v in results.items()]
    metric = [seconds for seconds, _ in rounds["metric"]]
    # the rounds that judged background batches (the others judged a trial's one point)
    ingest_rounds = [(seconds, n) for seconds, n in rounds["metric"] if n >= batch]
    quick = [seconds for seconds, _ in rounds["quick"]]
    extra = {"rules": n_rules, "target_points_per_s": rate, "batch_points": batch,
             "achieved_points_per_s": (written.value - written_before) / elapsed,
             "metric_rounds": len(metric), "metric_round_p50_ms": pct(metric, 50),
             "metric_round_p95_ms": pct(metric, 95),
             "metric_round_max_ms": max(metric) * 1000 if metric else None,
             "batch_rounds": len(ingest_rounds),
             "batch_round_p50_ms": pct([t for t, _ in ingest_rounds], 50),
             "batch_round_p95_ms": pct([t for t, _ in ingest_rounds], 95),
             "points_per_batch_round_p50": float(np.median([n for _, n in ingest_rounds]))
             if ingest_rounds else None,
             "run_rounds": len(quick), "run_round_p50_ms": pct(quick, 50),
             "run_round_p95_ms": pct(quick, 95),
             "load_average_before": load_before, "load_average_after": load_after,
             "errors": dict(list(am.errors.items())[:5])}
    wh.close()
    return rows, extra


def flapping(url: str, n_series: int, rounds: int) -> list[dict]:
    wh = Warehouse(url)
    t0 = pd.Timestamp("2026-11-25T00:00:00Z")
    labels = [{"host": f"h{i}"} for i in range(n_series)]
    clock = [t0.to_pydatetime()]
    am = AlertManager(wh, clock=lambda: clock[0])
    rows = []
    tracemalloc.start()
    for r in range(rounds):
        ts = t0 + pd.Timedelta(minutes=20 * r)  # resolved ones expire in between
        wh.write_points(pd.DataFrame({"metric": "flap", "labels": labels,
                                      "ts": [ts] * n_series,
                                      "value": [100.0 if r % 2 == 0 else 0.0] * n_series}))
        if r == 0:
            am.add_rule({"name": "flap", "kind": "threshold", "metric": "flap", "op": ">",
                         "threshold": 50, "window": "30s"})
        clock[0] = (ts + pd.Timedelta(seconds=1)).to_pydatetime()
        started = time.perf_counter()
        transitions = am.evaluate("flap")
        seconds = time.perf_counter() - started
        current, peak = tracemalloc.get_traced_memory()
        stored = int(wh.sql("SELECT count(*) AS n FROM alert_instances")["n"][0])
        rows.append({"round": r, "transitions": len(transitions),
                     "instances in memory": len(am.instances), "rows stored": stored,
                     "eval s": seconds, "traced MB": current / 1e6,
                     "error": am.errors.get("flap", "")})
    tracemalloc.stop()
    wh.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=("duckdb", "postgresql"), default="duckdb",
                        help="temporary databases: DuckDB files, or a throwaway local "
                             "PostgreSQL server (warehouse.pgserver)")
    parser.add_argument("--url", default=None, help="one existing database for every part")
    parser.add_argument("--rules", type=int, default=1000)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--batch", type=int, default=5_000,
                        help="points per background write (bigger batches: less overhead)")
    parser.add_argument("--repeats", type=int, default=20,
                        help="write batches timed for the evaluation cost per batch")
    parser.add_argument("--trials", type=int, default=30)
    parser.add_argument("--flapping", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=6)
    args = parser.parse_args()
    server = None
    parts = ("cost", "latency", "flapping")
    if args.url:
        urls = dict.fromkeys(parts, args.url)
    elif args.engine == "postgresql":
        from warehouse.pgserver import LocalPostgres

        server = LocalPostgres().start()
        urls = {part: server.create_database(f"bench_alerts_{part}") for part in parts}
    else:
        folder = tempfile.mkdtemp(prefix="bench-alerts-")
        urls = {part: f"duckdb:///{folder}/{part}.duckdb" for part in parts}
    try:
        run_all(args, urls)
    finally:
        if server is not None:
            server.stop()


def run_all(args, urls: dict[str, str]) -> None:
    url = urls["latency"]
    cost = batch_cost(urls["cost"], args.rules, args.batch, args.repeats)
    print(f"\nevaluation cost of one write batch of {args.batch:,} points "
          f"({cost['rules_touched_median']:.0f} rules touched, median), no background ingest\n")
    print_table([{"evaluation": "incremental (on_changes)", "p50 ms": cost["incremental_p50_ms"],
                  "p95 ms": cost["incremental_p95_ms"]},
                 {"evaluation": "whole (evaluate_all, baseline)", "p50 ms": cost["whole_p50_ms"],
                  "p95 ms": cost["whole_p95_ms"]}], ["evaluation", "p50 ms", "p95 ms"])
    print(f"load average {cost['load_average']}")
    rows, extra = latency(url, args.rules, args.rate, args.batch, args.trials)
    print(f"\nwrite -> webhook latency, {args.rules} rules, {args.rate:,} points/s target "
          f"({extra['achieved_points_per_s']:,.0f} achieved, batches of {args.batch:,})\n")
    print_table(rows, ["rule kind", "trials", "missed", "p50 ms", "p95 ms", "p99 ms", "max ms"])
    print("\nof which the write call (waits for the background batch being written) and what "
          "follows its commit (the evaluator, the channel)\n")
    print_table(rows, ["rule kind", "write call p50 ms", "write call p95 ms",
                       "after commit p50 ms", "after commit p95 ms"])
    print(f"\nmetric rounds under ingest: {extra['metric_rounds']}, p50 "
          f"{extra['metric_round_p50_ms']:.1f} ms, p95 {extra['metric_round_p95_ms']:.1f} ms; "
          f"those judging background batches: {extra['batch_rounds']}, p50 "
          f"{extra['batch_round_p50_ms']:.1f} ms, p95 {extra['batch_round_p95_ms']:.1f} ms, "
          f"{extra['points_per_batch_round_p50']} points (median); run rounds p50 "
          f"{extra['run_round_p50_ms']:.1f} ms, p95 {extra['run_round_p95_ms']:.1f} ms; "
          f"load average before {extra['load_average_before']}, after "
          f"{extra['load_average_after']}")
    flap = flapping(urls["flapping"], args.flapping, args.rounds)
    print(f"\n{args.flapping:,} flapping instances\n")
    print_table(flap, ["round", "transitions", "instances in memory", "rows stored", "eval s",
                       "traced MB"])
    engine = url.split(":", 1)[0].split("+")[0]
    path = write_results("alerts" if engine == "duckdb" else f"alerts_{engine}", rows,
                         {**extra, "batch_cost": cost, "flapping": flap, "engine": engine})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
