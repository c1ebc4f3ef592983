"""A tier plan's raw edges after compression, asked again and again (issue 15, session 7).

TSBS single-groupby-1-1-1 asks one host's hour per minute: the 1m tier answers the whole
minutes, raw points the two unaligned edges, read from hot rows, regular and irregular
compressed segments. On PostgreSQL the statement and the state statement go in one pipeline
as prepared statements (backends/postgresql.py ``_with_deferred``): a text run five times is
planned once, and PostgreSQL may then run its generic plan with other bound values. These
tests ask the same shape many times with other windows, hosts, late writes and hot rows, and
compare every answer with pandas over the points written, on both engines.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import text

from warehouse import jobs
from warehouse.jobs import compress

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
START = pd.Timestamp("2026-11-01T00:00:00Z")
REGULAR = ("a", "b")  # every 20 s: regular segments
IRREGULAR = "odd"  # gaps of 1 to 40 s: irregular segments


def written_points() -> pd.DataFrame:
    """Two days of cpu for hosts a, b (regular) and odd (irregular), values with 3 decimals."""
    rng = np.random.default_rng(7)
    parts = []
    for i, host in enumerate(REGULAR):
        ts = pd.date_range(START + pd.Timedelta(seconds=i), periods=2 * 4320, freq="20s")
        parts.append(_points(host, ts, rng))
    gaps = rng.integers(1_000_000, 40_000_000, size=12_000)  # µs
    ts = START + pd.to_timedelta(np.cumsum(gaps), unit="us")
    parts.append(_points(IRREGULAR, ts[ts < START + pd.Timedelta("2D")], rng))
    return pd.concat(parts, ignore_index=True)


def _points(host: str, ts, rng) -> pd.DataFrame:
    return pd.DataFrame({"metric": "cpu", "labels": [{"host": host}] * len(ts), "ts": ts,
                         "value": np.round(rng.normal(50, 20, len(ts)), 3)})


def expected(points: pd.DataFrame, host: str, start, end) -> pd.DataFrame:
    """max per minute of ``host``'s points in [start, end), from what was written."""
    mine = points[(points["labels"].map(lambda lab: lab["host"]) == host)
                  & (points["ts"] >= start) & (points["ts"] < end)]
    minute = mine["ts"].dt.floor("1min")
    answer = mine.groupby(minute)["value"].max()
    return pd.DataFrame({"ts": answer.index.as_unit("us"), "cpu": answer.to_numpy()})


def ask(wh, host: str, start, end) -> pd.DataFrame:
    return wh.frame(["cpu"], start, end, labels={"host": host}, every="1m", agg="max", by=[])


def assert_answers(wh, points: pd.DataFrame, windows) -> None:
    for host, start, end in windows:
        got = ask(wh, host, start, end)
        want = expected(points, host, start, end)
        assert len(got) == len(want), (host, start, end)
        pd.testing.assert_series_equal(
            got["ts"].reset_index(drop=True), want["ts"], check_names=False,
            obj=f"ts of {host} [{start}, {end})")
        np.testing.assert_array_equal(got["cpu"].to_numpy(), want["cpu"].to_numpy(),
                                      err_msg=f"{host} [{start}, {end})")


def windows(seed: int, count: int, hosts, first=START, span="40h"):
    """Hours starting at random seconds (never on a minute) within ``span`` of ``first``."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        start = first + pd.Timedelta(seconds=int(rng.integers(0, pd.Timedelta(span)
                                                                .total_seconds())) // 60 * 60
                                     + int(rng.integers(1, 59)))
        out.append((hosts[k % len(hosts)], start, start + pd.Timedelta("1h")))
    return out


def run(wh, name: str) -> None:
    result = jobs.run_job(wh, name, now=NOW, retries=0)
    assert result.status == "succeeded", result.error


@pytest.fixture
def compressed_wh(wh):
    points = written_points()
    wh.write_points(points)
    run(wh, "refresh_rollups")
    compress.compress_now(wh, "1d", now=NOW)
    return wh, points


def test_repeated_edges_of_one_shape_answer_every_window(compressed_wh):
    """Twelve hours per host, each asked twice: more than enough runs of one statement text
    for PostgreSQL to plan it once and bind the next windows into that plan."""
    wh, points = compressed_wh
    asked = windows(1, 12, [*REGULAR, IRREGULAR])
    assert_answers(wh, points, asked + asked[::-1])


def test_late_writes_at_an_edge_and_inside_after_the_plans_are_made(compressed_wh):
    """A point written into a compressed chunk at a window's edge second and one inside its
    whole minutes (a stale tier bucket): the next answers hold both, before and after the
    rollups are refreshed."""
    wh, points = compressed_wh
    host, start, end = "a", START + pd.Timedelta("5h10min17s"), START + pd.Timedelta("6h10min17s")
    assert_answers(wh, points, [(host, start, end)] * 6)
    late = _points(host, pd.DatetimeIndex([start + pd.Timedelta(seconds=2),  # edge minute
                                           start + pd.Timedelta("20min5s")]),  # whole minute
                   np.random.default_rng(0)).assign(value=[1000.5, 2000.25])
    assert wh.write_points(late).written == 2
    points = pd.concat([points, late], ignore_index=True)
    assert_answers(wh, points, [(host, start, end)] * 6)
    run(wh, "refresh_rollups")
    assert_answers(wh, points, [(host, start, end)] * 6 + windows(2, 6, REGULAR))


def test_windows_across_compressed_and_hot_rows(compressed_wh):
    """Hot rows after the compressed days (written after the compress job) and hot rows of a
    decoded range: hours that span both answer as the points written."""
    wh, points = compressed_wh
    rng = np.random.default_rng(3)
    tail = pd.concat([_points(host, pd.date_range(START + pd.Timedelta("2D"), periods=540,
                                                  freq="20s"), rng) for host in REGULAR])
    wh.write_points(tail)
    points = pd.concat([points, tail], ignore_index=True)
    edge = START + pd.Timedelta("2D") - pd.Timedelta("30min")
    across = [(host, edge + pd.Timedelta(seconds=s), edge + pd.Timedelta(seconds=s + 3600))
              for s in (7, 19, 31, 43, 55) for host in REGULAR]
    assert_answers(wh, points, across + windows(4, 6, [*REGULAR, IRREGULAR]))


def test_postgresql_runs_the_repeated_statement_prepared(compressed_wh, database_url):
    """The mechanism the answers above go through: after a few calls of one shape the
    connection holds it as a prepared statement (psycopg prepares a text from its sixth run)
    and runs it again with each call's bound values."""
    if not database_url.startswith("postgresql"):
        pytest.skip("an embedded engine has no statements to prepare")
    wh, points = compressed_wh
    wh.engine.dispose()  # one pooled connection from here on: the calls' and the check's
    start = START + pd.Timedelta("3h7min13s")
    asked = [("b", start + pd.Timedelta(minutes=k), start + pd.Timedelta(minutes=k + 60))
             for k in range(14)]
    assert_answers(wh, points, asked)
    with wh.engine.connect() as conn:
        runs = conn.execute(text(
            "SELECT max(generic_plans + custom_plans) FROM pg_prepared_statements "
            "WHERE statement LIKE '%points_1m%'")).scalar()
        conn.rollback()
    assert runs is not None and runs >= 5
