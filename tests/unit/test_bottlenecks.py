"""Critical path and bottleneck ranking on synthetic recipes with known answers."""
from __future__ import annotations

import json
import uuid

import numpy as np
import pandas as pd

from warehouse.analytics.bottlenecks import bottlenecks, critical_path

T0 = pd.Timestamp("2026-11-01", tz="UTC")


def _steps(spec: list[tuple[str, float, float, list[str]]], t0=T0, deps=True) -> pd.DataFrame:
    """Rows of step_runs from (step_id, start s, duration s, depends_on)."""
    return pd.DataFrame([{
        "step_id": sid, "step": sid, "parent_step_id": None,
        "started_at": t0 + pd.Timedelta(seconds=st),
        "finished_at": t0 + pd.Timedelta(seconds=st + du),
        "duration_us": int(du * 1e6), "depends_on": dp if deps else None,
    } for sid, st, du, dp in spec])


def _diamond(a: float, b: float, c: float, d: float, t0=T0, deps=True) -> pd.DataFrame:
    # a -> (b || c) -> d
    return _steps([("a", 0, a, []), ("b", a, b, ["a"]), ("c", a, c, ["a"]),
                   ("d", a + max(b, c), d, ["b", "c"])], t0, deps)


def test_critical_path_of_a_diamond_follows_the_longer_branch():
    assert critical_path(_diamond(1, 3, 2, 1)) == ["a", "b", "d"]
    path = critical_path(_diamond(1, 2, 5, 1))
    assert path == ["a", "c", "d"]
    assert path.length_us == 7_000_000 and not path.inferred


def test_edges_are_inferred_from_timing_without_depends_on():
    path = critical_path(_diamond(1, 2, 5, 1, deps=False))
    assert path == ["a", "c", "d"] and path.inferred


def test_nested_steps_stay_out_of_the_dag_and_json_depends_on_parses():
    steps = _diamond(1, 3, 2, 1)
    steps["depends_on"] = steps["depends_on"].map(json.dumps)
    child = _steps([("b.inner", 1, 2.9, [])]).assign(parent_step_id="b")
    path = critical_path(pd.concat([steps, child], ignore_index=True))
    assert path == ["a", "b", "d"]


def test_cycles_and_unknown_dependencies_do_not_lose_steps():
    steps = _steps([("x", 0, 1, ["y"]), ("y", 1, 2, ["x"]), ("z", 3, 1, ["nope"])])
    path = critical_path(steps)
    assert set(path) <= {"x", "y", "z"} and path.length_us >= 2_000_000


def _recipe(n_runs: int = 40, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """extract -> (transform || enrich) -> load; transform slows 2% per run (twice a day)."""
    rng = np.random.default_rng(seed)
    runs, steps = [], []
    for i in range(n_runs):
        run_id = str(uuid.UUID(int=rng.integers(2**62)))
        t0 = T0 + pd.Timedelta(hours=12 * i)
        e, t = rng.uniform(1, 2), 10 * (1 + 0.02 * i) * rng.uniform(0.9, 1.1)
        n, ld = rng.uniform(3, 6), rng.uniform(1, 2)
        s = _diamond(e, t, n, ld, t0).assign(run_id=run_id)
        s["step"] = ["extract", "transform", "enrich", "load"]
        steps.append(s)
        total = e + max(t, n) + ld
        runs.append({"run_id": run_id, "recipe": "etl", "started_at": t0,
                     "finished_at": t0 + pd.Timedelta(seconds=total),
                     "duration_us": int(total * 1e6), "status": "succeeded"})
    return pd.DataFrame(runs), pd.concat(steps, ignore_index=True)


def test_progressively_slower_step_is_ranked_first_and_marked():
    runs, steps = _recipe()
    table = bottlenecks(runs, steps)
    top = table.iloc[0]
    assert top["step"] == "transform"
    assert top["getting_slower"] and top["trend_p_value"] < 0.001
    assert top["critical_path_freq"] == 1.0 and top["runs"] == 40
    assert 2.0 < top["slope_pct_per_day"] < 6.0  # 2%/run, 2 runs/day, vs the median
    assert "critical path in 100% of runs" in top["recommendation"]
    assert "slowed by" in top["recommendation"] and "since 2026-11-01" in top["recommendation"]
    assert top["recommendation"].endswith("optimise or parallelise it first.")
    enrich = table.set_index("step").loc["enrich"]
    assert enrich["critical_path_freq"] == 0.0 and enrich["impact"] == 0.0
    assert "rarely on the critical path" in enrich["recommendation"]
    assert not table.set_index("step").loc["load", "getting_slower"]
    assert table["impact"].is_monotonic_decreasing


def test_nested_steps_inherit_the_parents_critical_path_frequency():
    runs, steps = _recipe(10)
    inner = steps[steps["step"] == "transform"].copy()
    inner["parent_step_id"] = inner["step_id"]
    inner["step_id"] = "transform.join"
    inner["step"] = "join"
    inner["duration_us"] = inner["duration_us"] // 2
    table = bottlenecks(runs, pd.concat([steps, inner], ignore_index=True)).set_index("step")
    assert table.loc["join", "nested"] and table.loc["join", "critical_path_freq"] == 1.0
    assert not table.loc["transform", "nested"]


def test_empty_inputs_give_an_empty_table():
    runs, steps = _recipe(3)
    table = bottlenecks(runs.iloc[:0], steps)
    assert table.empty and "recommendation" in table.columns
    few = bottlenecks(runs, steps)
    assert few["trend_p_value"].isna().all()
    assert "too few runs for a trend" in few["recommendation"].iloc[0]
