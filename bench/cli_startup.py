"""How long `warehouse --help` (and a first real command's imports) take, from a cold
process: the issue's goal is <= 0.3 s for --help. Prints a table and writes
bench/results/cli.json.

    python bench/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import print_table, write_results  # noqa: E402

GOAL_S = 0.3


def entry_point() -> list[str]:
    """The installed `warehouse` script beside this Python, else `python -m warehouse.cli`."""
    script = Path(sys.executable).with_name("warehouse")
    if script.exists():
        return [str(script)]
    found = shutil.which("warehouse")
    return [found] if found else [sys.executable, "-m", "warehouse.cli"]


def time_command(argv: list[str], repeat: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU (user + system) seconds of each run. CPU time is what the command
    itself costs; wall time also counts waiting for a core on a shared machine."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return walls, cpus


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    cli = entry_point()
    cases = [
        ("python -c pass (floor)", [sys.executable, "-c", "pass"]),
        ("warehouse --help", [*cli, "--help"]),
        ("warehouse query --help", [*cli, "query", "--help"]),
        ("warehouse forecast --help", [*cli, "forecast", "--help"]),
    ]
    rows = []
    for name, argv in cases:
        times, cpus = time_command(argv, args.repeat)
        rows.append({"command": name, "median_s": round(statistics.median(times), 3),
                     "min_s": round(min(times), 3), "max_s": round(max(times), 3),
                     "cpu_median_s": round(statistics.median(cpus), 3), "runs": len(times)})
    print_table(rows, ["command", "median_s", "min_s", "max_s", "cpu_median_s", "runs"])
    print(f"load average at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    help_median = next(r["median_s"] for r in rows if r["command"] == "warehouse --help")
    verdict = "met" if help_median <= GOAL_S else "missed"
    print(f"\nwarehouse --help: median {help_median:.3f} s, goal <= {GOAL_S} s: {verdict}")
    path = write_results("cli", rows, {"goal_s": GOAL_S, "help_median_s": help_median,
                                       "goal": verdict, "load_average": os.getloadavg()[0]})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
