"""slow_runs answers its documented definition at the edges, on both engines (DuckDB has
computed it as a window since migration 0011, PostgreSQL still as a self-join): the run
itself and runs that started at the same instant are not in its trailing window, a run
exactly 30 days earlier is, running runs count nowhere, fewer than 5 earlier runs give no
row, and recipes do not mix."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2026-10-01", tz="UTC")


def _run(recipe: str, started: pd.Timestamp, seconds: float | None) -> dict:
    row = {"run_id": str(uuid.uuid4()), "recipe": recipe, "started_at": started,
           "status": "running" if seconds is None else "succeeded"}
    if seconds is not None:
        row["finished_at"] = started + pd.Timedelta(seconds=seconds)
    return row


def _runs() -> list[dict]:
    rng = np.random.default_rng(7)
    rows = [_run("etl", T0 + pd.Timedelta(hours=6 * i), float(rng.integers(50, 70)))
            for i in range(200)]
    rows[120]["finished_at"] = rows[120]["started_at"] + pd.Timedelta(seconds=500)
    # Two runs at one instant: neither is in the other's trailing window.
    tied = T0 + pd.Timedelta(hours=6 * 150)
    rows += [_run("etl", tied, 400.0), _run("etl", tied, 55.0)]
    # A run exactly 30 days after an earlier one (the bound is inclusive), and a slow one.
    rows.append(_run("etl", T0 + pd.Timedelta(days=30), 900.0))
    rows.append(_run("etl", T0 + pd.Timedelta(days=40, minutes=7), None))  # running
    # Another recipe with too little history for the first rows, and its own p95.
    rows += [_run("report", T0 + pd.Timedelta(days=d), 10.0 * (d + 1)) for d in range(8)]
    return rows


def _expected(runs: pd.DataFrame) -> pd.DataFrame:
    """The view's definition, run by run."""
    done = runs[runs["duration_us"].notna()]
    out = []
    for r in done.itertuples():
        trailing = done[(done["recipe"] == r.recipe)
                        & (done["started_at"] >= r.started_at - pd.Timedelta(days=30))
                        & (done["started_at"] < r.started_at)]["duration_us"].to_numpy(float)
        if len(trailing) < 5:
            continue
        p95 = np.percentile(trailing, 95)
        if r.duration_us > p95:
            out.append({"run_id": str(r.run_id), "trailing_p95_ms": p95 / 1000,
                        "trailing_runs": len(trailing), "duration_ms": r.duration_us / 1000})
    return pd.DataFrame(out).sort_values("run_id").reset_index(drop=True)


def test_slow_runs_matches_its_definition(wh):
    wh.write_runs(_runs())
    runs = wh.runs()
    expected = _expected(runs)
    got = wh.sql("SELECT run_id, trailing_p95_ms, trailing_runs, duration_ms, slowdown "
                 "FROM slow_runs")
    got = got.assign(run_id=got["run_id"].astype(str)).sort_values("run_id").reset_index(
        drop=True)
    assert len(expected) >= 3
    assert got["run_id"].tolist() == expected["run_id"].tolist()
    assert got["trailing_runs"].tolist() == expected["trailing_runs"].tolist()
    np.testing.assert_allclose(got["trailing_p95_ms"], expected["trailing_p95_ms"], rtol=1e-12)
    np.testing.assert_allclose(got["slowdown"], got["duration_ms"] / got["trailing_p95_ms"],
                               rtol=1e-12)


def test_slow_runs_filtered_by_recipe_and_time_is_the_same_rows(wh):
    # The dashboard filters the view; a window view must not compute the trailing window
    # from the filtered rows only.
    wh.write_runs(_runs())
    everything = wh.sql("SELECT run_id FROM slow_runs WHERE recipe = 'etl'")
    start = T0 + pd.Timedelta(days=35)
    late = wh.sql("SELECT run_id, trailing_runs FROM slow_runs WHERE recipe = :r "
                  "AND started_at >= :s", {"r": "etl", "s": start.to_pydatetime()})
    runs = wh.runs(recipe="etl")
    after = set(runs.loc[runs["started_at"] >= start, "run_id"].astype(str))
    assert set(late["run_id"].astype(str)) == set(everything["run_id"].astype(str)) & after
    assert (late["trailing_runs"] >= 100).all()
