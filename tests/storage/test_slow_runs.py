"""warehouse.analytics.slow_runs gives exactly the rows of the view slow_runs, on DuckDB and
PostgreSQL, for a recipe and a time range: at the edges of its definition (runs at the same
instant, a run exactly 30 days earlier, running runs, fewer than 5 earlier runs, equal
durations, a trailing p95 of 0) and at the edges of the range (a run starting exactly at
start is in, one at end is out). The performance overview's slow_runs panel is that
function, slowest first, at most 50 rows."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from warehouse import analytics
from warehouse.dashboards import render, template

pytestmark = pytest.mark.storage

T0 = pd.Timestamp("2026-06-01", tz="UTC")
COLUMNS = ["run_id", "recipe", "started_at", "status", "duration_ms", "trailing_p95_ms",
           "trailing_runs", "slowdown"]


def _run(recipe: str, started: pd.Timestamp, seconds: float | None,
         status: str = "succeeded") -> dict:
    row = {"run_id": str(uuid.uuid4()), "recipe": recipe, "started_at": started,
           "status": "running" if seconds is None else status}
    if seconds is not None:
        row["finished_at"] = started + pd.Timedelta(seconds=seconds)
    return row


def _edges() -> list[dict]:
    """One recipe per edge of the definition."""
    rng = np.random.default_rng(13)
    rows = [_run("etl", T0 + pd.Timedelta(hours=6 * i), float(rng.integers(50, 70)),
                 "failed" if i % 17 == 0 else "succeeded") for i in range(200)]
    rows[120]["finished_at"] = rows[120]["started_at"] + pd.Timedelta(seconds=500)
    tied = T0 + pd.Timedelta(hours=6 * 150)  # neither is in the other's window
    rows += [_run("etl", tied, 400.0), _run("etl", tied, 55.0)]
    rows.append(_run("etl", T0 + pd.Timedelta(days=30), 900.0))  # 30 days after the first
    rows.append(_run("etl", T0 + pd.Timedelta(days=40, minutes=7), None))  # running
    rows.append(_run("etl", T0 + pd.Timedelta(days=41, minutes=7), 2000.0, "cancelled"))
    # Too little history for the first runs.
    rows += [_run("report", T0 + pd.Timedelta(days=d), 10.0 * (d + 1)) for d in range(8)]
    # Equal durations: the p95 is that duration, and a run as slow as it is not slower.
    rows += [_run("flat", T0 + pd.Timedelta(hours=h), 30.0) for h in range(10)]
    rows += [_run("flat", T0 + pd.Timedelta(hours=10), 30.0),
             _run("flat", T0 + pd.Timedelta(hours=11), 30.000001)]
    # A trailing p95 of 0: slower, with no slowdown ratio (NULL).
    rows += [_run("instant", T0 + pd.Timedelta(minutes=m), 0.0) for m in range(6)]
    rows.append(_run("instant", T0 + pd.Timedelta(minutes=6), 1.0))
    # A p95 where PostgreSQL's lo + (hi - lo) * f and np.percentile's or DuckDB's rounding
    # differ in the last bit (f = 0.8 between 42846034 and 48625078 µs).
    for minute, us in enumerate([10_000_000, 20_000_000, 30_000_000, 42_846_034, 48_625_078,
                                 60_000_000]):
        row = _run("last_bit", T0 + pd.Timedelta(minutes=minute), 0.0)
        row["finished_at"] = row["started_at"] + pd.Timedelta(microseconds=us)
        rows.append(row)
    return rows


def _view(wh, recipe: str, start=None, end=None) -> pd.DataFrame:
    where, binds = ["recipe = :recipe"], {"recipe": recipe}
    if start is not None:
        where.append("started_at >= :start")
        binds["start"] = start.to_pydatetime()
    if end is not None:
        where.append("started_at < :end")
        binds["end"] = end.to_pydatetime()
    frame = wh.sql(f"SELECT * FROM slow_runs WHERE {' AND '.join(where)}", binds)
    return frame.assign(run_id=frame["run_id"].astype(str))


def _by_run(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame[COLUMNS].sort_values("run_id").reset_index(drop=True)
    # The engines return text and numbers in their own dtypes; the values must be equal.
    return frame.astype({"run_id": str, "recipe": str, "status": str, "trailing_runs": "int64",
                         "started_at": "datetime64[us, UTC]", "duration_ms": "float64",
                         "trailing_p95_ms": "float64", "slowdown": "float64"})


def _assert_same_rows(got: pd.DataFrame, expected: pd.DataFrame, wh=None) -> None:
    """Equal rows; the p95 bit for bit unless ``expected`` came from DuckDB's view."""
    got, expected = _by_run(got), _by_run(expected)
    if wh is not None and wh.backend.dialect == "duckdb":
        # The function interpolates as PostgreSQL's percentile_cont does; DuckDB's
        # quantile_cont rounds the interpolation differently: at most 1 ulp apart.
        for column in ("trailing_p95_ms", "slowdown"):
            np.testing.assert_allclose(got.pop(column), expected.pop(column), rtol=4.5e-16)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)


RANGES = [(None, None),
          (T0 + pd.Timedelta(days=35), None),
          (None, T0 + pd.Timedelta(days=37, hours=12)),  # a run starts exactly at end
          (T0 + pd.Timedelta(hours=6 * 150), T0 + pd.Timedelta(days=45)),  # one exactly at start
          (T0 + pd.Timedelta(days=100), T0 + pd.Timedelta(days=101))]  # no runs


@pytest.mark.parametrize("recipe", ["etl", "report", "flat", "instant", "last_bit"])
def test_rows_equal_the_view_for_a_recipe_and_range(wh, recipe):
    wh.write_runs(_edges())
    nonempty = 0
    for start, end in RANGES:
        got = analytics.slow_runs(wh, recipe, start, end)
        expected = _view(wh, recipe, start, end)
        _assert_same_rows(got, expected, wh)
        assert list(got.columns) == COLUMNS
        nonempty += len(expected) > 0
    assert nonempty >= 2  # the comparison is not of empty frames only


def test_the_edges_are_exercised(wh):
    # What test_rows_equal_the_view_for_a_recipe_and_range relies on the data to contain.
    wh.write_runs(_edges())
    etl = analytics.slow_runs(wh, "etl")
    runs = wh.runs(recipe="etl")
    tied = runs[runs["started_at"] == T0 + pd.Timedelta(hours=6 * 150)]
    slow_tied = tied[tied["duration_us"] == 400e6]["run_id"].iloc[0]
    assert slow_tied in set(etl["run_id"])
    assert set(etl["status"]) >= {"succeeded", "cancelled"}
    assert etl["slowdown"].is_monotonic_decreasing
    flat = analytics.slow_runs(wh, "flat")
    assert len(flat) == 1 and flat["duration_ms"].iloc[0] == 30_000.001
    instant = analytics.slow_runs(wh, "instant")
    assert len(instant) == 1 and np.isnan(instant["slowdown"].iloc[0])
    assert instant["trailing_p95_ms"].iloc[0] == 0.0
    assert analytics.slow_runs(wh, "report")["trailing_runs"].min() >= 5
    assert analytics.slow_runs(wh, "last_bit")["trailing_p95_ms"].tolist() == [
        47_469_269.2 / 1000]  # PostgreSQL's percentile_cont; np.percentile: 47469269.199999996


def test_a_frame_of_runs_gives_the_same_rows_as_the_warehouse(wh):
    wh.write_runs(_edges())
    start = T0 + pd.Timedelta(days=35)
    from_frame = analytics.slow_runs(wh.runs(), start=start)
    from_warehouse = pd.concat([analytics.slow_runs(wh, r, start) for r in
                                ("etl", "report", "flat", "instant", "last_bit")],
                               ignore_index=True)
    _assert_same_rows(from_frame, from_warehouse)
    assert len(from_frame) >= 1


def _many_slow_runs() -> list[dict]:
    """180 days of two-hourly runs with heavy-tailed durations: more than 50 slow ones."""
    rng = np.random.default_rng(5)
    seconds = 60 * rng.lognormal(0, 0.4, 12 * 180)
    return [_run("busy", T0 + pd.Timedelta(hours=2 * i), float(round(s, 3)))
            for i, s in enumerate(seconds)]


def test_the_dashboard_panel_is_the_view_slowest_first_at_most_50(wh):
    wh.write_runs(_many_slow_runs())
    start, end = T0 + pd.Timedelta(days=35), T0 + pd.Timedelta(days=180)
    result = render(wh, template("performance-overview"),
                    {"recipe": "busy", "start": start.isoformat(), "end": end.isoformat()},
                    panels=["slow_runs"])
    assert result.errors == {}
    panel = result.panel("slow_runs").frame
    everything = _view(wh, "busy", start, end)
    assert len(everything) > 50
    expected = everything.sort_values("slowdown", ascending=False).head(50)
    assert panel["run_id"].tolist() == expected["run_id"].tolist()
    _assert_same_rows(panel, expected, wh)
