"""Dashboard benchmark (issue 12): write -> update visible latency, Overview time to first
chart, and server memory with a stalled WebSocket client.

    .venv/bin/python bench/dashboard.py [--writes 40] [--stall-seconds 60] [--days 7]

`warehouse serve` runs in its own process on a DuckDB demo warehouse. Measured:

- ``ws-N``: N headless WebSocket clients subscribed to one metric; a point is written
  through the API (POST /api/v1/points); latency = from just before the POST to the
  client receiving the change message (p50/p95/p99 over writes x clients);
- ``browser``: one Chromium page on the metrics explorer; latency = from just before the
  POST until the chart holds the new point (read by Playwright's polling, which adds up to
  one animation frame);
- ``post-N``: the write's own HTTP round trip during ``ws-N`` (the change is published when
  the write commits, before the response: most of the latency is the write itself);
- ``overview``: navigation start to the first chart drawn, in Chromium (the first load also
  fetches Plotly.js, 4.8 MB); ``overview-html``: the server's answer alone;
- ``stall``: server RSS before and after ``--stall-seconds`` of writes with a client that
  subscribed and never reads.

Prints a table and writes bench/results/dashboard.json.
"""

from __future__ import annotations

import argparse
import asyncio
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
import pandas as pd
import psutil
import websockets

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "dashboard.json"
METRIC = "bench.latency"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def quantiles(values: list[float]) -> dict:
    if not values:
        return {"n": 0}
    ordered = sorted(values)

    def q(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))], 2)

    return {"n": len(values), "p50_ms": q(0.50), "p95_ms": q(0.95), "p99_ms": q(0.99),
            "mean_ms": round(statistics.fmean(values), 2)}


POST_MS: list[float] = []  # the write's own round trip (the change is published before it ends)
#: One pooled keep-alive client for every write, as a recorder's RemoteWarehouse holds.
#: (httpx.post() would build a client per call: ~40 ms of SSL set-up on a loaded machine,
#: which earlier runs of this bench counted as part of the write's latency.)
HTTP = httpx.Client(timeout=30)


def write_point(url: str, value: float) -> None:
    point = {"metric": METRIC, "labels": {"bench": "1"}, "value": value,
             "ts": pd.Timestamp.now(tz="UTC").isoformat()}
    began = time.perf_counter()
    response = HTTP.post(url + "/api/v1/points", json=[point])
    POST_MS.append((time.perf_counter() - began) * 1000)
    response.raise_for_status()


def page_times(url: str, path: str, repeat: int = 5) -> dict:
    """Server time to answer a page (HTML), without the browser."""
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        HTTP.get(url + path, timeout=60).raise_for_status()
        times.append((time.perf_counter() - began) * 1000)
    return quantiles(times)


def ws_latency(url: str, clients: int, writes: int) -> dict:
    """Latency of change messages to ``clients`` subscribers over ``writes`` writes."""
    received: list[list[float]] = [[] for _ in range(clients)]
    ready = threading.Event()
    done = threading.Event()

    async def client(index: int, opened: list) -> None:
        async with websockets.connect(url.replace("http", "ws") + "/ws",
                                      max_queue=None) as socket_:
            await socket_.recv()  # hello
            await socket_.send(json.dumps({"type": "subscribe", "kinds": ["points"],
                                           "metrics": [METRIC]}))
            await socket_.recv()  # subscribed
            opened.append(index)
            if len(opened) == clients:
                ready.set()
            while not done.is_set():
                try:
                    message = json.loads(await asyncio.wait_for(socket_.recv(), 1.0))
                except TimeoutError:
                    continue
                if message.get("type") == "change":
                    received[index].append(time.perf_counter())

    async def run_clients() -> None:
        opened: list = []
        await asyncio.gather(*(client(i, opened) for i in range(clients)))

    thread = threading.Thread(target=lambda: asyncio.run(run_clients()), daemon=True)
    thread.start()
    if not ready.wait(60):
        raise RuntimeError("clients did not connect")
    sent = []
    for i in range(writes):
        before = [len(r) for r in received]
        sent.append(time.perf_counter())
        write_point(url, float(i))
        deadline = time.monotonic() + 10
        while any(len(r) == b for r, b in zip(received, before, strict=True)):
            if time.monotonic() > deadline:
                break
            time.sleep(0.002)
        time.sleep(0.1)  # separate writes: each is its own change, not a merged burst
    done.set()
    thread.join(10)
    latencies = []
    for times in received:
        for start, end in zip(sent, times, strict=False):
            latencies.append((end - start) * 1000)
    return quantiles(latencies)


def browser_runs(url: str, writes: int) -> tuple[dict, dict]:
    """(write -> visible in the chart, Overview time to first chart) in Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        overview = []
        for _ in range(5):
            began = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_selector("#chart-recipes .main-svg")
            overview.append((time.perf_counter() - began) * 1000)
        page.goto(url + f"/metrics?metric={METRIC}&range=1h&every=raw")
        page.wait_for_selector("#live.on")
        latencies = []
        for i in range(writes):
            shown = int(page.evaluate("document.querySelector('#chart-metrics').dataset.points"
                                      " || '0'"))
            began = time.perf_counter()
            write_point(url, 1000.0 + i)
            page.wait_for_function(
                f"Number(document.querySelector('#chart-metrics').dataset.points) > {shown}",
                polling="raf", timeout=10_000)
            latencies.append((time.perf_counter() - began) * 1000)
            time.sleep(0.1)
        browser.close()
    return quantiles(latencies), quantiles(overview)


def stalled_client(url: str, server_pid: int, seconds: float, stalled: bool = True) -> dict:
    """Server RSS while a client that never reads stays subscribed and points keep coming;
    with ``stalled=False`` the same writes with no client (the control: what the writes
    themselves add)."""
    process = psutil.Process(server_pid)
    sock = socket.create_connection(("127.0.0.1", int(url.rsplit(":", 1)[1])))
    if stalled:
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        sock.sendall((f"GET /ws HTTP/1.1\r\nHost: {url.split('//')[1]}\r\n"
                      f"Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # and never read again
    before = process.memory_info().rss
    samples = []
    began = time.monotonic()
    end = began + seconds
    trajectory, next_mark = [], began  # (seconds, writes, MiB) every ~minute: flat or growing?
    i = 0
    while time.monotonic() < end:
        write_point(url, float(i))
        i += 1
        if i % 20 == 0:
            samples.append(process.memory_info().rss)
            if time.monotonic() >= next_mark:
                trajectory.append((round(time.monotonic() - began), i,
                                   round(samples[-1] / 2**20, 1)))
                next_mark += 60
    after = process.memory_info().rss
    sock.close()
    return {"seconds": seconds, "writes": i, "rss_before_mib": round(before / 2**20, 1),
            "rss_after_mib": round(after / 2**20, 1),
            "rss_max_mib": round(max(samples or [after]) / 2**20, 1),
            "rss_every_minute": trajectory}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=40)
    parser.add_argument("--clients", type=int, nargs="+", default=[10, 100])
    parser.add_argument("--stall-seconds", type=float, default=60.0)
    parser.add_argument("--days", type=int, default=7)
    options = parser.parse_args()

    from warehouse import Warehouse, demo

    folder = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    db_url = f"duckdb:///{folder / 'w.duckdb'}"
    with Warehouse(db_url) as wh:
        demo.load(wh, demo.generate(days=options.days,
                                    end=pd.Timestamp.now(tz="UTC").floor("h")))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "warehouse.cli", "serve", "--url", db_url, "--port", str(port),
         "--no-jobs", "--log-level", "warning"], cwd=ROOT, env={**os.environ})
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("warehouse serve did not start")
            time.sleep(0.2)
        write_point(url, 0.0)  # the metric exists before the pages open
        results: dict = {"days": options.days, "writes": options.writes,
                         "cpus": os.cpu_count(), "load_before": os.getloadavg()}
        results["overview-html"] = page_times(url, "/?range=7d")
        for clients in options.clients:
            POST_MS.clear()
            results[f"ws-{clients}"] = ws_latency(url, clients, options.writes)
            results[f"post-{clients}"] = quantiles(POST_MS)
        if Path(CHROMIUM).exists():
            results["browser"], results["overview"] = browser_runs(url, options.writes)
        results["stall"] = stalled_client(url, server.pid, options.stall_seconds)
        results["no_client"] = stalled_client(url, server.pid, options.stall_seconds,
                                              stalled=False)
        results["load_after"] = os.getloadavg()
    finally:
        server.terminate()
        server.wait(30)

    print(f"{'case':<10} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    cases = [x for c in options.clients for x in (f"ws-{c}", f"post-{c}")]
    for case in cases + ["browser", "overview", "overview-html"]:
        row = results.get(case)
        if row and row.get("n"):
            print(f"{case:<10} {row['n']:>5} {row['p50_ms']:>8} {row['p95_ms']:>8} "
                  f"{row['p99_ms']:>8}")
    print(f"load average (1, 5, 15 min) before: {results['load_before']}, after: "
          f"{results['load_after']} on {os.cpu_count()} CPUs")
    stall = results["stall"]
    print(f"stalled client: {stall['writes']} writes in {stall['seconds']} s, server RSS "
          f"{stall['rss_before_mib']} -> {stall['rss_after_mib']} MiB "
          f"(max {stall['rss_max_mib']}); (s, writes, MiB) every minute: "
          f"{stall['rss_every_minute']}")
    control = results["no_client"]
    print(f"control, no client: {control['writes']} writes in {control['seconds']} s, server "
          f"RSS {control['rss_before_mib']} -> {control['rss_after_mib']} MiB; every minute: "
          f"{control['rss_every_minute']}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
