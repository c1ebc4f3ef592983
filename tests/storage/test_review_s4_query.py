"""Review (session 4): query answers that must not depend on the engine nor on whether a
PostgreSQL call sent its state with its statement (one simple-protocol message, parameters
rendered as text) or read it first (server-side binds)."""

from __future__ import annotations

import numpy as np
import pandas as pd

T0 = pd.Timestamp("2026-11-02T00:00:00Z")


def test_bounds_with_nanoseconds_give_the_same_rows_every_call(wh):
    """Points are µs; bounds with ns keep ``ts >= start`` and ``ts < end`` exactly. The first
    PostgreSQL call (binds) and DuckDB truncated them to [0, 1, 2]; a repeat call (literal
    text, rounded by the server) answered [1, 2, 3]."""
    ts = pd.date_range(T0, periods=5, freq="1us", unit="us")
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": ts, "host": "a",
                                  "value": np.arange(5.0)}), label_columns=["host"])
    start, end = T0 + pd.Timedelta(nanoseconds=900), T0 + pd.Timedelta(nanoseconds=3900)
    for _ in range(3):  # the first call reads its state, the next ones assume it
        assert wh.points("cpu", start, end, with_labels=False)["value"].tolist() == [1, 2, 3]
        assert wh.frame(["cpu"], start, end)["cpu"].tolist() == [1, 2, 3]
    low, high = T0 + pd.Timedelta(nanoseconds=400), T0 + pd.Timedelta(nanoseconds=2400)
    for _ in range(2):
        assert wh.points("cpu", low, high, with_labels=False)["value"].tolist() == [1, 2]
    # pandas' own extremes (ns past a whole µs) are bounds too: raising them must not overflow
    lowest, highest = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
    for _ in range(2):
        assert len(wh.points("cpu", lowest, highest, with_labels=False)) == 5
        assert len(wh.frame(["cpu"], lowest, highest)) == 5


HOSTILE = ["cpu'; DROP TABLE points; --", "%(start)s", "50%", "a\\'b", "x' OR '1'='1",
           "$$;SELECT 1;$$", "\"quoted\""]
METRICS = [f"m{i}" for i in range(len(HOSTILE))]


def test_hostile_label_values_and_metric_names_are_data(wh):
    """Label values never become SQL text (and metric names asked for are bound): on
    PostgreSQL a repeat call sends its statement in one simple-protocol message with
    parameters rendered client-side."""
    from warehouse.errors import UnknownNameError

    ts = pd.date_range(T0, periods=3, freq="1min", unit="us")
    frames = [pd.DataFrame({"metric": metric, "ts": ts, "host": name, "value": [1.0, 2.0, 3.0]})
              for metric, name in zip(METRICS, HOSTILE)]
    wh.write_points(pd.concat(frames, ignore_index=True), label_columns=["host"])
    end = T0 + pd.Timedelta("1h")
    for _ in range(2):  # the first call reads its state, the second assumes it
        for metric, name in zip(METRICS, HOSTILE):
            got = wh.points(metric, T0, end, labels={"host": name})
            assert got["value"].tolist() == [1.0, 2.0, 3.0] and set(got["host"]) == {name}
            assert wh.points(metric, T0, end, labels={"host": [name, "%s"]}).shape[0] == 3
        wide = wh.frame(METRICS, T0, end, every="1h", agg="sum", by=["host"])
        assert sorted(wide["host"]) == sorted(HOSTILE)
        assert np.nansum(wide[METRICS].to_numpy()) == 6.0 * len(HOSTILE)
        hits = wh.frame(METRICS[:2], T0, end, where="m1 >= 2")
        assert hits["m1"].tolist() == [2.0, 3.0] and set(hits["host"]) == {HOSTILE[1]}
        for name in HOSTILE:
            try:
                wh.points(name, T0, end)
            except UnknownNameError:
                continue
            raise AssertionError(name)
    assert int(wh.sql("SELECT count(*) AS n FROM points")["n"].iloc[0]) == 3 * len(HOSTILE)


def test_where_text_that_is_not_a_comparison_is_refused(wh):
    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": [T0], "host": "a", "value": [1.0]}),
                    label_columns=["host"])
    for where in ["cpu > 1; DROP TABLE points", "cpu > 1 OR 1=1", "cpu > nan", "cpu > inf",
                  "cpu > 1e999", "cpu>'1'", "cpu > (1)", "cpu > 1 --"]:
        try:
            wh.frame(["cpu"], T0, T0 + pd.Timedelta("1h"), where=where)
        except ValueError:
            continue
        raise AssertionError(f"where={where!r} was accepted")


def test_another_writers_late_write_refresh_and_new_series_are_seen(wh, database_url):
    """Two Warehouses that count commits apart (PostgreSQL: another URL for the same
    database, as another process would): a tiered answer assumed by one is checked against
    the other's late write (invalidation), its refresh and a new series."""
    from warehouse import Warehouse, jobs

    now = pd.Timestamp("2026-11-05T00:00:00Z")
    ts = pd.date_range(T0, periods=3 * 144, freq="10min", unit="us")
    wh.write_points(pd.concat([pd.DataFrame({"metric": m, "ts": ts, "host": h, "value": 1.0})
                               for m in ("cpu", "mem") for h in "ab"], ignore_index=True),
                    label_columns=["host"])
    assert jobs.run_job(wh, "refresh_rollups", now=now, retries=0).status == "succeeded"
    other = wh if database_url.startswith("duckdb") else Warehouse(
        database_url.replace("@127.0.0.1:", "@localhost:"))
    start, end = T0, T0 + pd.Timedelta("2D")

    def answers():
        wide = wh.frame(["cpu", "mem"], start, end, every="1d", agg="sum", by=[])
        long = wh.points("cpu", start, end, every="1d", agg="sum", by=[])
        return wide[["cpu", "mem"]].to_numpy().tolist(), long["value"].tolist()

    def late(ts, value, host="a"):
        other.write_points(pd.DataFrame({"metric": ["cpu"], "ts": [pd.Timestamp(ts)],
                                         "host": [host], "value": [value]}),
                           label_columns=["host"])

    try:
        assert answers() == answers() == ([[288.0, 288.0], [288.0, 288.0]], [288.0, 288.0])
        late("2026-11-02T01:00:00.5Z", 100.0)
        assert answers() == ([[388.0, 288.0], [288.0, 288.0]], [388.0, 288.0])
        assert jobs.run_job(other, "refresh_rollups", now=now, retries=0).status == "succeeded"
        assert answers() == ([[388.0, 288.0], [288.0, 288.0]], [388.0, 288.0])
        late("2026-11-02T01:00:00.7Z", 1000.0)
        assert answers() == ([[1388.0, 288.0], [288.0, 288.0]], [1388.0, 288.0])
        late("2026-11-03T01:00:00.7Z", 7.0, host="zz")
        assert answers() == ([[1388.0, 288.0], [295.0, 288.0]], [1388.0, 295.0])
    finally:
        if other is not wh:
            other.close()
