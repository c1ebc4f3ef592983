"""Machine facts and the Markdown tables of a TSBS run."""

from __future__ import annotations

import math
import os
import platform
import subprocess
from pathlib import Path

import duckdb
import pandas as pd

REPO = Path(__file__).resolve().parents[2]


def machine() -> dict:
    """nproc, CPU model, RAM and load: what a reader needs to judge the numbers."""
    cpu = next((line.split(":", 1)[1].strip() for line in _lines("/proc/cpuinfo")
                if line.startswith("model name")), platform.processor())
    mem_kb = next((int(line.split()[1]) for line in _lines("/proc/meminfo")
                   if line.startswith("MemTotal:")), 0)
    return {
        "nproc": os.cpu_count(), "cpu_model": cpu, "ram_gib": round(mem_kb / 2**20, 1),
        "load_average": os.getloadavg(), "python": platform.python_version(),
        "duckdb": duckdb.__version__, "pandas": pd.__version__, "platform": platform.platform(),
        "git": _git(),
    }


def _lines(path: str) -> list[str]:
    try:
        return Path(path).read_text().splitlines()
    except OSError:
        return []


def _git() -> dict:
    """The commit the warehouse code came from and whether the tree had local changes
    (read-only git commands)."""
    def run(*args):
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""
    return {"commit": run("rev-parse", "--short", "HEAD"),
            "dirty_files": len(run("status", "--porcelain").splitlines())}


def _geomean(values: list[float]) -> float:
    return math.exp(sum(math.log(v) for v in values) / len(values)) if values else float("nan")


def _ms(value) -> str:
    if value is None or value != value:
        return "–"
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _ratio(row: dict | None) -> str:
    if not row or row.get("ratio") is None:
        return "–"
    mark = "" if row["verified"] else " ✗"
    return f"**{row['ratio']:.2f}**{mark}" if row["ratio"] > 2 else f"{row['ratio']:.2f}{mark}"


def ingest_table(rows: list[dict]) -> str:
    """Load time covers the write calls; settle (CHECKPOINT / VACUUM ANALYZE) and the
    optional rollup refresh are untimed for metrics/s and shown on their own."""
    compressed = any("compress_seconds" in r for r in rows)
    extra = (" compress s | bytes/point before compress | points alone, bytes/point |"
             if compressed else "")
    lines = ["| engine | system | rows | metric values | load s | metrics/s | settle s | "
             "rollups s | size MiB | bytes/point |" + extra,
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if compressed
                                                                else "")]
    for r in rows:
        rollups = f"{r['rollups_seconds']:.1f}" if "rollups_seconds" in r else "–"
        line = (f"| {r['engine']} | {r['system']} | {r['rows']:,} | {r['values']:,} | "
                f"{r['seconds']:.1f} | {r['metrics_per_s']:,.0f} | "
                f"{r['settle_seconds']:.1f} | {rollups} | {r['bytes'] / 2**20:,.0f} | "
                f"{r['bytes'] / r['values']:.2f} |")
        if compressed:
            line += (f" {r['compress_seconds']:.1f} | "
                     f"{r['bytes_before_compress'] / r['values']:.2f} | "
                     f"{r['points_bytes'] / r['values']:.2f} |"
                     if "compress_seconds" in r else " – | – | – |")
        lines.append(line)
    return "\n".join(lines)


def query_table(rows: list[dict], engines: list[str]) -> str:
    """One line per query: warehouse and baseline medians (ms) and their ratio per engine,
    and for an embedded engine the ratio of CPU time (steadier on a loaded machine).
    Ratios above 2 are bold; ✗ marks an answer that did not match the baseline."""
    def cpu_column(engine: str) -> bool:  # embedded engines: the process's CPU is the work
        return any(r.get("cpu_ratio") is not None for r in rows if r["engine"] == engine)

    head = "| query |" + "".join(f" {e} wh ms | {e} raw ms | {e} wh/raw |"
                                 + (f" {e} CPU wh/raw |" if cpu_column(e) else "")
                                 for e in engines)
    columns = sum(4 if cpu_column(e) else 3 for e in engines)
    lines = [head, "|---|" + "---:|" * columns]
    names = list(dict.fromkeys(r["query"] for r in rows))
    for name in names:
        cells = []
        for engine in engines:
            row = next((r for r in rows if r["query"] == name and r["engine"] == engine), None)
            cells += [_ms(row and row["wh_median_ms"]), _ms(row and row["raw_median_ms"]),
                      _ratio(row)]
            if cpu_column(engine):
                ratio = row and row.get("cpu_ratio")
                cells.append("–" if ratio is None else f"{ratio:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def goals(ingest: list[dict], queries: list[dict]) -> list[str]:
    """The targets of issue 15, each with its measured value and verdict."""
    out = []
    floor = {"duckdb": 5_000_000, "postgresql": 1_000_000}
    for r in ingest:
        if r["system"] == "warehouse":
            ok = r["metrics_per_s"] >= floor[r["engine"]]
            out.append(f"ingest {r['engine']} ≥ {floor[r['engine']]:,} metrics/s: "
                       f"{r['metrics_per_s']:,.0f} — {'met' if ok else 'MISSED'}")
        if r["system"] == "warehouse" and r["engine"] == "postgresql" and "points_bytes" in r:
            per_point = r["points_bytes"] / r["values"]
            speed = r["values"] / r["compress_seconds"]
            out.append(f"postgresql points after compression ≤ 3 bytes/point: {per_point:.2f} — "
                       f"{'met' if per_point <= 3 else 'MISSED'}")
            out.append(f"postgresql compression ≥ 1,000,000 points/s: {speed:,.0f} — "
                       f"{'met' if speed >= 1_000_000 else 'MISSED'}")
    slow = [f"{r['query']} ({r['engine']} {r['ratio']:.1f}×)" for r in queries
            if r["ratio"] is not None and r["ratio"] > 2]
    out.append("every query within 2× of the raw baseline: "
               + ("met" if not slow else f"MISSED by {len(slow)}: " + ", ".join(slow)))
    for engine in dict.fromkeys(r["engine"] for r in queries):
        mine = [r for r in queries if r["engine"] == engine]
        line = (f"geometric mean of wh/raw on {engine} ≤ 1.3: "
                f"{_geomean([r['ratio'] for r in mine]):.2f}")
        if all(r.get("cpu_ratio") for r in mine):
            line += f" (CPU time: {_geomean([r['cpu_ratio'] for r in mine]):.2f})"
        out.append(line + (" — met" if _geomean([r["ratio"] for r in mine]) <= 1.3
                           else " — MISSED"))
    for name, engine, limit in (("single-groupby-1-1-1", "duckdb", 5),
                                ("groupby-orderby-limit", "postgresql", 20)):
        row = next((r for r in queries if r["query"] == name and r["engine"] == engine), None)
        if row:
            ok = row["wh_median_ms"] <= limit
            out.append(f"{name} on {engine} ≤ {limit} ms: {row['wh_median_ms']:.1f} ms — "
                       f"{'met' if ok else 'MISSED'}")
    if any(not r["verified"] for r in queries):
        out.append("answers that differ from the baseline: " + ", ".join(
            f"{r['query']} ({r['engine']}): {r['mismatch']}" for r in queries
            if not r["verified"]))
    return out
