"""Analyst views: same names, columns and answers on DuckDB and PostgreSQL."""

from __future__ import annotations

import pandas as pd
import pytest

from tests.conftest import load_both_engines
from warehouse import Warehouse

VIEWS = {
    "recipe_daily_stats": ["recipe", "day"],
    "step_stats": ["recipe", "step"],
    "run_timeline": ["run_id", "step_id"],
    "error_patterns": ["error_type", "pattern"],
    "resource_usage": ["recipe", "step"],
    "slow_runs": ["run_id"],
    "series_latest": ["series_id"],
}


@pytest.fixture(scope="module")
def both(postgres_server, tmp_path_factory):
    pair, data = load_both_engines(postgres_server, tmp_path_factory, "views", days=8, seed=5)
    yield pair, data
    for wh in pair:
        wh.close()


def normalise(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    frame = frame.copy()
    for column in frame.columns:
        if column == "labels":
            frame[column] = frame[column].map(lambda v: v if isinstance(v, str) else
                                              __import__("json").dumps(v, sort_keys=True))
            frame[column] = frame[column].map(lambda v: __import__("json").dumps(
                __import__("json").loads(v), sort_keys=True))
        elif column in ("run_id",):
            frame[column] = frame[column].astype(str)
        elif pd.api.types.is_datetime64_any_dtype(frame[column]):
            frame[column] = pd.to_datetime(frame[column], utc=True)
        elif column == "day":
            frame[column] = pd.to_datetime(frame[column]).dt.date
        elif frame[column].dtype == object and frame[column].map(
                lambda v: isinstance(v, (int, float)) or v is None).all():
            frame[column] = pd.to_numeric(frame[column]).astype(float)
        elif pd.api.types.is_numeric_dtype(frame[column]):
            frame[column] = frame[column].astype(float)
    return frame.sort_values(keys).reset_index(drop=True)


@pytest.mark.storage
@pytest.mark.parametrize("view", sorted(VIEWS))
def test_view_is_identical_on_both_engines(both, view):
    (duck, pg), _ = both
    a = normalise(duck.sql(f"SELECT * FROM {view}"), VIEWS[view])
    b = normalise(pg.sql(f"SELECT * FROM {view}"), VIEWS[view])
    assert len(a) > 0
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a, b, check_dtype=False, rtol=1e-9)


@pytest.mark.storage
def test_views_tell_what_the_demo_injected(both):
    (duck, _), data = both
    stats = duck.sql("SELECT * FROM step_stats WHERE recipe = 'etl-hourly'").set_index("step")
    assert stats.loc["load", "failed"] == sum(
        1 for r in data.truth["failed_runs"])  # every injected failure is in load
    patterns = duck.sql("SELECT * FROM error_patterns")
    assert len(patterns) == 1  # 'timeout after <n>s connecting to db-<n>:<n> (attempt <n>)'
    assert patterns["pattern"].iloc[0] == "timeout after <n>s connecting to db-<n>:<n> (attempt <n>)"
    assert patterns["occurrences"].iloc[0] == len(data.truth["failed_runs"])
    slow = set(duck.sql("SELECT run_id FROM slow_runs")["run_id"].astype(str))
    runs = data.runs.set_index("run_id")
    # An outlier is 6x slower; it is "slow" once its recipe has a trailing window
    # (>= 5 earlier runs) and unless it failed early in load.
    judged = [r for r in data.truth["outlier_runs"] if runs.loc[r, "status"] == "succeeded"
              and runs.loc[r, "started_at"] > data.truth["start"] + pd.Timedelta("6h")]
    assert judged and set(judged) <= slow
    daily = duck.sql("SELECT sum(runs) AS n FROM recipe_daily_stats")["n"].iloc[0]
    assert daily == len(data.runs)


def test_series_latest_follows_writes_and_ignores_late_older_points(database_url):
    wh = Warehouse(database_url)
    t0 = pd.Timestamp("2026-11-25T10:00:00Z")
    wh.write_points(pd.DataFrame({"metric": "q", "labels": [{"h": "a"}, {"h": "a"}, {"h": "b"}],
                                  "ts": [t0, t0 + pd.Timedelta("1min"), t0],
                                  "value": [1.0, 2.0, 3.0]}))
    # an older point arriving late does not move "latest" back; a newer one does
    wh.write_points(pd.DataFrame({"metric": "q", "labels": [{"h": "a"}, {"h": "b"}],
                                  "ts": [t0 - pd.Timedelta("1h"), t0 + pd.Timedelta("5min")],
                                  "value": [9.0, 4.0]}))
    latest = wh.sql("SELECT labels, ts, value FROM series_latest ORDER BY value")
    assert latest["value"].tolist() == [2.0, 4.0]
    assert pd.to_datetime(latest["ts"], utc=True).tolist() == [t0 + pd.Timedelta("1min"),
                                                               t0 + pd.Timedelta("5min")]
    wh.close()
