"""Server benchmark: HTTP against the direct Python API in the same run, on DuckDB.

- ingest with Arrow bodies through ``RemoteWarehouse.write_points`` vs direct ``write_points``
  (goal: >= 1M points/s over HTTP);
- ingest with NDJSON bodies (goal: >= 100k points/s);
- query overhead of a 1-series 1-hour query over HTTP vs direct (goal: <= 5 ms at p50),
  direct and HTTP queries interleaved one by one so both see the same machine load;
- 1,000 small writes from 20 concurrent clients (goal: no error, no loss).

The server is a real ``warehouse serve`` process on a free port; the direct warehouse is a
second DuckDB file loaded with the same points. Prints a Markdown table and writes
bench/results/server.json, with the load average before and after (the machine is shared:
under load every figure is slower, and the spread between runs grows).

    python bench/server.py [--points 2000000] [--batch 500000]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, timer, write_results  # noqa: E402

from warehouse import Warehouse  # noqa: E402
from warehouse.client import RemoteWarehouse  # noqa: E402

HOSTS, METRICS = 100, 10
START = pd.Timestamp("2026-10-01", tz="UTC")


def make_points(n: int, day: int, seed: int) -> pd.DataFrame:
    """n points over HOSTS x METRICS series every 10 s (labels as a plain 'host' column)."""
    series = HOSTS * METRICS
    per = max(n // series, 1)
    rng = np.random.default_rng(seed)
    ts = pd.date_range(START + pd.Timedelta(days=day), periods=per, freq="10s")
    return pd.DataFrame({
        "metric": pd.Categorical(np.repeat([f"cpu.usage_{i}" for i in range(METRICS)],
                                           HOSTS * per)),
        "host": pd.Categorical(np.tile(np.repeat([f"host_{h}" for h in range(HOSTS)], per),
                                       METRICS)),
        "ts": np.tile(ts, series),
        "value": rng.normal(50, 10, series * per),
    })


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(db: Path, port: int, log: Path) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "warehouse.cli", "serve", "--url",
                             f"duckdb:///{db}", "--port", str(port), "--log-level", "warning"],
                            stdout=log.open("wb"), stderr=subprocess.STDOUT,
                            env={**os.environ, "WAREHOUSE_URL": ""})
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(log.read_text()[-2000:])


def ingest(write, n: int, batch: int, day0: int) -> tuple[float, int]:
    """Seconds spent in ``write`` for n points in batches (frames made outside the clock)."""
    spent, written = 0.0, 0
    for i, start in enumerate(range(0, n, batch)):
        frame = make_points(min(batch, n - start), day=day0 + i, seed=i)
        with timer() as t:
            written += write(frame).written
        spent += t()
    return spent, written


def ndjson_ingest(url: str, n: int, batch: int, day0: int) -> tuple[float, int]:
    """Seconds for n points posted as NDJSON bodies (encoded outside the clock)."""
    spent, written = 0.0, 0
    with httpx.Client(base_url=url + "/api/v1", timeout=600) as http:
        for i, start in enumerate(range(0, n, batch)):
            frame = make_points(min(batch, n - start), day=day0 + i, seed=i)
            body = frame.assign(metric=frame["metric"].astype(str),
                                host=frame["host"].astype(str)).to_json(
                orient="records", lines=True, date_format="iso", date_unit="us").encode()
            with timer() as t:
                response = http.post("/points", content=body, params={"label_columns": "host"},
                                     headers={"Content-Type": "application/x-ndjson"})
            response.raise_for_status()
            written += response.json()["written"]
            spent += t()
    return spent, written


def query_latency(wh, repeats: int) -> list[float]:
    """ms per 1-series 1-hour raw query."""
    start = START  # the first batch covers 83 minutes of every series from START
    out = []
    for i in range(repeats):
        with timer() as t:
            frame = wh.points("cpu.usage_3", start, start + pd.Timedelta(hours=1),
                              labels={"host": f"host_{i % HOSTS}"})
        assert len(frame) == 360, len(frame)
        out.append(t() * 1000)
    return out


def interleaved(direct, remote, repeats: int, server_pid: int) -> dict:
    """Direct and HTTP queries alternating (so load that comes and goes hits both): ms of
    wall time per query, and CPU ms per query — this process's for both, the server's
    for HTTP (a sum over all queries: /proc counts CPU in 10 ms ticks). CPU time does not
    grow with the machine's load as wall time does, so it shows what HTTP costs on an idle
    machine."""
    server = psutil.Process(server_pid)
    load_before = load_average()
    d, r, d_cpu, r_cpu, server_cpu = [], [], [], [], 0.0
    for _ in range(repeats):
        cpu = time.process_time()
        d += query_latency(direct, 1)
        d_cpu.append((time.process_time() - cpu) * 1000)
        before = sum(server.cpu_times()[:2])
        cpu = time.process_time()
        r += query_latency(remote, 1)
        r_cpu.append((time.process_time() - cpu) * 1000)
        server_cpu += sum(server.cpu_times()[:2]) - before
    return {"direct": d, "http": r, "direct_cpu": d_cpu, "client_cpu": r_cpu,
            "server_cpu_mean": server_cpu * 1000 / repeats,
            "load_average": [load_before, load_average()]}


def tokens_for(url: str) -> dict[str, str]:
    """A read and a write token of a new admin, made through the API (this ends the server's
    open mode: requests without a token are refused from then on)."""
    password = "bench password 1"
    with httpx.Client(base_url=url + "/api/v1/auth", timeout=60) as http:
        http.post("/users", json={"name": "bench", "role": "admin", "password": password}
                  ).raise_for_status()
        login = http.post("/login", json={"name": "bench", "password": password})
        login.raise_for_status()
        tokens = {}
        for scope in ("read", "write"):
            made = http.post("/tokens", json={"scope": scope},
                             headers={"X-CSRF-Token": login.json()["csrf_token"]})
            made.raise_for_status()
            tokens[scope] = made.json()["token"]
        return tokens


def query_rows(case: str, q: dict) -> list[dict]:
    """The direct and HTTP rows of an interleaved query measurement."""
    d, r = q["direct"], q["http"]
    direct_cpu = statistics.mean(q["direct_cpu"])
    http_cpu = statistics.mean(q["client_cpu"]) + q["server_cpu_mean"]
    return [{"case": f"{case}, direct", "p50_ms": statistics.median(d),
             "p95_ms": float(np.percentile(d, 95)), "cpu_ms": direct_cpu, "goal": ""},
            {"case": f"{case}, HTTP", "p50_ms": statistics.median(r),
             "p95_ms": float(np.percentile(r, 95)),
             "overhead_p50_ms": statistics.median(r) - statistics.median(d),
             "paired_overhead_p50_ms": statistics.median(
                 [h - q for h, q in zip(r, d, strict=True)]),
             "cpu_ms": http_cpu, "client_cpu_ms": statistics.mean(q["client_cpu"]),
             "server_cpu_ms": q["server_cpu_mean"], "cpu_overhead_ms": http_cpu - direct_cpu,
             "load_average": q["load_average"], "goal": "overhead <= 5 ms p50"}]


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def concurrent_writes(url: str, token: str, clients: int, writes: int,
                      points_each: int) -> dict:
    errors: list[str] = []

    def client(k: int) -> None:
        with RemoteWarehouse(url, token=token) as remote:
            for w in range(writes):
                ts = START + pd.Timedelta(days=300) + pd.to_timedelta(
                    np.arange(points_each) + w * points_each, unit="s")
                try:
                    remote.write_points(pd.DataFrame({
                        "metric": "concurrent", "client": f"c{k}", "ts": ts,
                        "value": np.arange(points_each, dtype=float)}), label_columns=["client"])
                except Exception as exc:  # noqa: BLE001 - counted, reported
                    errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    with timer() as t:
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    return {"seconds": t(), "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2_000_000)
    parser.add_argument("--batch", type=int, default=500_000)
    parser.add_argument("--ndjson-points", type=int, default=200_000)
    parser.add_argument("--queries", type=int, default=200)
    args = parser.parse_args()
    rows: list[dict] = []
    load_before = load_average()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        proc = serve(tmp / "served.duckdb", port, tmp / "serve.log")
        direct = Warehouse(f"duckdb:///{tmp / 'direct.duckdb'}")
        remote = RemoteWarehouse(url)
        try:
            # Warm both paths (imports, series registration) outside the clock.
            warm = make_points(1000, day=200, seed=99)
            direct.write_points(warm, label_columns=["host"])
            remote.write_points(warm, label_columns=["host"])

            seconds, n = ingest(lambda f: direct.write_points(f, label_columns=["host"]),
                                args.points, args.batch, 0)
            rows.append({"case": "ingest, direct write_points", "points": n,
                         "seconds": seconds, "per_second": n / seconds, "goal": ""})
            seconds, n = ingest(lambda f: remote.write_points(f, label_columns=["host"]),
                                args.points, args.batch, 0)
            rows.append({"case": "ingest, HTTP Arrow body", "points": n, "seconds": seconds,
                         "per_second": n / seconds, "goal": ">= 1,000,000/s"})
            seconds, n = ndjson_ingest(url, args.ndjson_points, 50_000, 100)
            rows.append({"case": "ingest, HTTP NDJSON body", "points": n, "seconds": seconds,
                         "per_second": n / seconds, "goal": ">= 100,000/s"})

            query_latency(direct, 20), query_latency(remote, 20)  # warm
            rows += query_rows("1-series 1-hour query",
                               interleaved(direct, remote, args.queries, proc.pid))

            # Then with a token (what real users run; it ends open mode), right after the
            # open-mode measurement so both meet the server in the same state. Measured after
            # the 1,000 concurrent writes below (as until 2026-11-30), its HTTP overhead was
            # 0.6-1.6 ms above open mode's, its direct side slower too: the server's state
            # after 20 writers, not the token check (8 µs). Every query now authenticates a
            # token (remembered after its first use: checked on the event loop).
            tokens = tokens_for(url)
            with RemoteWarehouse(url, token=tokens["read"]) as with_token:
                query_latency(with_token, 20)
                rows += query_rows("the same query with a token",
                                   interleaved(direct, with_token, args.queries, proc.pid))
                result = concurrent_writes(url, tokens["write"], clients=20, writes=50,
                                           points_each=10)
                stored = int(with_token.sql(
                    "SELECT count(*) AS n FROM points p JOIN series s USING (series_id) "
                    "WHERE s.metric = 'concurrent'")["n"][0])
            rows.append({"case": "1,000 writes from 20 clients", "points": stored,
                         "seconds": result["seconds"], "per_second": 1000 / result["seconds"],
                         "errors": len(result["errors"]), "lost": 10_000 - stored,
                         "goal": "no error, no loss"})
        finally:
            remote.close()
            direct.close()
            proc.terminate()
            proc.wait(30)
    load_after = load_average()
    print_table(rows, ["case", "points", "seconds", "per_second", "p50_ms", "p95_ms",
                       "overhead_p50_ms", "paired_overhead_p50_ms", "cpu_ms",
                       "cpu_overhead_ms", "errors", "lost", "goal"])
    print(f"\nload average (1, 5, 15 min) before: {load_before}, after: {load_after} "
          f"on {os.cpu_count()} CPUs")
    path = write_results("server", rows, {"args": vars(args), "load_average": {
        "before": load_before, "after": load_after}})
    print(f"\nwrote {path}")
    if any(r.get("errors") for r in rows):
        print(json.dumps(result["errors"][:5], indent=2))


if __name__ == "__main__":
    main()
