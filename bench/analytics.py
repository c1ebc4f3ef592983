"""Analytics benchmark (issue goals): one 10k-point forecast, 500 series in one call, and
anomalies over 1M points. Runs the two method benchmarks one after the other:

    python bench/analytics.py            # = analytics_forecast.py + analytics_anomalies.py

Each prints its table and writes bench/results/analytics_{forecast,anomalies}.json.
"""

from __future__ import annotations

import runpy
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

if __name__ == "__main__":
    for name in ("analytics_forecast.py", "analytics_anomalies.py"):
        print(f"\n## {name}\n", flush=True)
        sys.argv = [name]
        runpy.run_path(str(HERE / name), run_name="__main__")
