"""Bucketed frames from a rollup tier fetch their partials in bulk (issue 15, session 8).

``tier_partials`` gives each partial's bucket start in µs: on PostgreSQL from date_part's
float8 seconds, exact because those buckets start at whole seconds
(sql/postgresql/query/tier_bucket_us.sql), where wh_epoch_us's numeric arithmetic on every
partial was half of TSBS single-groupby-5-1-12's statement. The partials come as one row of
arrays in the binary format (``Backend.fetch_number_columns``), not as a tuple per row.
These tests compare such frames with raw aggregation (wh.points(rollups=False)) where the
conversions would go wrong first: far from 1970 (float8 µs lose exactness past 2255; int4
seconds end in 2038), windows with no partial at all (the arrays are NULL), several
aggregates and label groups; and the fetch itself on both engines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs
from warehouse.query import frame as frame_module

METRICS = ["m.a", "m.b"]
HOSTS = ["h0", "h1", "h2"]
T0 = pd.Timestamp("2400-02-28T21:00:00Z")  # across a leap day, far past float8's exact µs
NOW = T0 + pd.Timedelta("3D")


def far_points() -> pd.DataFrame:
    """3 hosts × 2 metrics every 7 s for a day and a half from T0 (an odd step: buckets hold
    different counts), values with decimals; m.b of h1 pauses for two hours."""
    rng = np.random.default_rng(8)
    ticks = pd.date_range(T0, periods=18_000, freq="7s")
    parts = []
    for host in HOSTS:
        for metric in METRICS:
            ts = ticks
            if host == "h1" and metric == "m.b":
                ts = ticks[(ticks < T0 + pd.Timedelta("3h")) | (ticks >= T0 + pd.Timedelta("5h"))]
            parts.append(pd.DataFrame({
                "metric": metric, "ts": ts, "labels": [{"host": host}] * len(ts),
                "value": np.round(rng.normal(40, 15, len(ts)), 2)}))
    return pd.concat(parts, ignore_index=True)


@pytest.fixture
def tier_calls(monkeypatch) -> list:
    """The rollup tables wh.frame read partials from."""
    calls = []
    original = frame_module.tier_partials

    def spy(conn, backend, plan, *args, **kwargs):
        calls.append(plan.table)
        return original(conn, backend, plan, *args, **kwargs)

    monkeypatch.setattr(frame_module, "tier_partials", spy)
    return calls


def raw_frame(wh, start, end, every, agg, by) -> pd.DataFrame:
    keys = ["ts", *(by if by is not None else ["host"])]
    merged = None
    for metric in METRICS:
        part = wh.points(metric, start, end, every=every, agg=agg, by=by, rollups=False)
        part = part[keys + ["value"]].rename(columns={"value": metric})
        merged = part if merged is None else merged.merge(part, on=keys, how="outer")
    return merged.sort_values(keys[1:] + ["ts"]).reset_index(drop=True)[keys + METRICS]


@pytest.fixture
def far_wh(wh):
    written = wh.write_points(far_points())
    assert written.written == 6 * 18_000 - 2 * 3600 // 7 - 1
    run = jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0)
    assert run.status == "succeeded", run.error
    return wh


@pytest.mark.parametrize("every, agg, by, table", [
    ("1m", "max", None, "points_1m"),
    ("1m", "mean", [], "points_1m"),
    ("5m", "count", ["host"], "points_1m"),
    ("1h", "min", None, "points_1h"),
    ("2h", "sum", [], "points_1h"),
])
def test_tier_frame_far_from_1970_equals_raw(far_wh, tier_calls, every, agg, by, table):
    # Unaligned edges at both ends (raw points) around whole tier buckets.
    start, end = T0 + pd.Timedelta("1h 13min 17s"), T0 + pd.Timedelta("27h 41min 3s")
    got = far_wh.frame(METRICS, start, end, every=every, agg=agg, by=by)
    assert tier_calls == [table]
    want = raw_frame(far_wh, start, end, every, agg, by)
    assert len(got) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want, check_dtype=False,
                                  check_exact=False, rtol=1e-12)
    assert (got["ts"].dt.second == 0).all() and (got["ts"].dt.microsecond == 0).all()


def test_tier_frame_with_no_partial(far_wh, tier_calls):
    # Whole tier buckets with no point at all (after the data, before NOW's watermark):
    # no row of partials, so the one row of arrays holds NULLs.
    start, end = T0 + pd.Timedelta("2D"), T0 + pd.Timedelta("2D 3h")
    got = far_wh.frame(METRICS, start, end, every="1m", agg="max", by=[])
    assert tier_calls == ["points_1m"]
    assert got.empty and list(got.columns) == ["ts", *METRICS]
    assert str(got["ts"].dtype) == "datetime64[us, UTC]"


def test_fetch_number_columns(wh):
    # The i-th element of every column is of one row, NULL numbers NaN once typed, no row
    # gives empty columns, on both engines.
    backend = wh.backend
    rows = ("SELECT * FROM (VALUES (3, 1.5, 30), (1, CAST(NULL AS DOUBLE PRECISION), 10), "
            "(2, 2.5, 20)) AS v(k, x, y)")
    with wh.engine.connect() as conn:
        got = backend.fetch_number_columns(conn, rows, {}, ["k", "x", "y"])
        none = backend.fetch_number_columns(conn, f"{rows} WHERE k > :k", {"k": 5},
                                            ["k", "x", "y"])
        conn.execute(text("SELECT 1"))  # the connection is still usable
    k = np.asarray(got["k"], dtype="i8")
    order = np.argsort(k)
    assert k[order].tolist() == [1, 2, 3]
    assert np.asarray(got["y"], dtype="i8")[order].tolist() == [10, 20, 30]
    x = np.asarray(got["x"], dtype="f8")[order]
    assert np.isnan(x[0]) and x[1:].tolist() == [2.5, 1.5]
    assert [len(none[name]) for name in ("k", "x", "y")] == [0, 0, 0]
