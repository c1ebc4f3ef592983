"""The change feed: what committed writes changed, in-process on both engines, and from
other processes through PostgreSQL LISTEN/NOTIFY into a served warehouse's feed."""

from __future__ import annotations

import threading
import uuid

import pandas as pd
import pytest

from warehouse import Warehouse
from warehouse.changes import Change, ChangeFeed
from warehouse.errors import ValidationError
from warehouse.server.app import create_app

T0 = pd.Timestamp("2026-11-01T00:00:00Z")


def points(n: int, metric: str = "cpu", host: str = "a", start=T0) -> pd.DataFrame:
    return pd.DataFrame({"metric": metric, "labels": [{"host": host}] * n,
                         "ts": [start + pd.Timedelta(minutes=i) for i in range(n)],
                         "value": [float(i) for i in range(n)]})


# -- the feed itself (no database) ----------------------------------------------------------
def test_a_slow_subscriber_loses_its_oldest_changes_and_never_blocks_the_writer():
    feed = ChangeFeed()
    slow, other = feed.subscribe(maxsize=3), feed.subscribe(maxsize=100)
    for i in range(10):
        feed.publish(Change("points", rows=i))
    assert [c.rows for c in slow.drain()] == [7, 8, 9] and slow.dropped == 7
    assert [c.rows for c in other.drain()] == list(range(10)) and other.dropped == 0
    other.close()
    feed.publish(Change("runs"))
    assert other.get(timeout=0) is None and feed.subscribers == 1


def test_publishing_from_many_threads_delivers_every_change_once():
    feed = ChangeFeed()
    sub = feed.subscribe(maxsize=10_000)

    def writer(k):
        for i in range(500):
            feed.publish(Change("points", rows=k * 1000 + i))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = sorted(c.rows for c in sub.drain())
    assert got == sorted(k * 1000 + i for k in range(8) for i in range(500))


def test_change_json_round_trips_and_stays_under_the_notify_limit():
    change = Change("runs", rows=2, run_ids=("r1", "r2"), statuses=("failed",),
                    recipes=("etl",), start=T0, end=T0 + pd.Timedelta("1h"), origin="o")
    back = Change.from_json(change.to_json())
    assert (back.kind, back.run_ids, back.statuses, back.recipes, back.origin) == (
        "runs", ("r1", "r2"), ("failed",), ("etl",), "o")
    assert back.start == T0 and back.end == T0 + pd.Timedelta("1h")
    huge = Change("points", rows=10**6, series_ids=tuple(range(100_000)), metrics=("cpu",))
    text = huge.to_json()
    assert len(text.encode()) < 8000
    small = Change.from_json(text)
    assert small.truncated and small.series_ids == () and small.metrics == ("cpu",)
    with pytest.raises(ValueError):
        Change.from_json("not json")
    with pytest.raises(ValueError):
        Change("bogus")


# -- in-process, both engines ---------------------------------------------------------------
def test_each_committed_write_publishes_one_change(wh):
    sub = wh.changes.subscribe()
    wh.write_points(pd.concat([points(3, host="a"), points(2, host="b")]))
    change = sub.get(timeout=5)
    assert change.kind == "points" and change.rows == 5 and change.metrics == ("cpu",)
    assert len(change.series_ids) == 2 and change.origin == wh.changes.origin
    assert change.start == T0 and change.end == T0 + pd.Timedelta(minutes=2)
    wh.write_points(points(3, host="a"))  # a replay: nothing changed, nothing published
    with pytest.raises(ValidationError):  # rejected: nothing committed, nothing published
        wh.write_points([{"metric": "cpu", "ts": "2026-11-01T00:00:00", "value": 1}])
    run_id = str(uuid.uuid4())
    wh.write_runs([{"run_id": run_id, "recipe": "etl", "started_at": T0, "status": "failed",
                    "finished_at": T0 + pd.Timedelta("1s")}])
    change = sub.get(timeout=5)
    assert (change.kind, change.run_ids, change.statuses, change.recipes) == (
        "runs", (run_id,), ("failed",), ("etl",))
    wh.write_steps([{"run_id": run_id, "step_id": str(uuid.uuid4()), "step": "load",
                     "started_at": T0, "status": "running"}])
    change = sub.get(timeout=5)
    assert (change.kind, change.run_ids, change.statuses) == ("steps", (run_id,), ("running",))
    assert sub.get(timeout=0.2) is None


def test_writes_through_the_api_reach_app_state_changes(client, app, wh):
    sub = app.state.changes.subscribe()
    response = client.post("/api/v1/points", json=[
        {"metric": "mem", "ts": "2026-11-01T00:00:00Z", "value": 1.0}])
    assert response.status_code == 200
    change = sub.get(timeout=5)
    assert change.kind == "points" and change.metrics == ("mem",)


# -- other processes, PostgreSQL LISTEN/NOTIFY ---------------------------------------------
@pytest.mark.storage
def test_the_server_republishes_changes_other_writers_notify(postgres_server):
    from tests.server.conftest import TestClient

    database_url = postgres_server.create_database(f"wh_notify_{uuid.uuid4().hex[:8]}")

    served = Warehouse(database_url)
    other = Warehouse(database_url)  # another writer: same database, its own feed
    app = create_app(served)
    try:
        with TestClient(app, base_url="http://127.0.0.1") as client:
            sub = app.state.changes.subscribe()
            assert app.state.listener.listening.wait(15), "the server never started listening"
            other.write_points(points(4, metric="disk"))
            change = sub.get(timeout=10)
            assert change is not None, "no NOTIFY arrived"
            assert (change.kind, change.rows, change.metrics) == ("points", 4, ("disk",))
            assert change.origin == other.changes.origin != served.changes.origin
            # The server's own writes are published once (in-process), not echoed back.
            client.post("/api/v1/points", json=[
                {"metric": "own", "ts": "2026-11-01T00:00:00Z", "value": 1.0}])
            own = sub.get(timeout=5)
            assert own.metrics == ("own",) and own.origin == served.changes.origin
            assert sub.get(timeout=1.0) is None
            assert app.state.listener.received == 1
    finally:
        other.close()
        served.close()
