"""The HTTP API in-process (TestClient), on DuckDB and PostgreSQL: writes in every body format,
queries, all-or-nothing batches, and problem+json for every kind of error."""

from __future__ import annotations

import json
import uuid

import pandas as pd
import pyarrow as pa
import pytest

from warehouse.client.wire import ARROW, NDJSON, arrow_to_frame, frame_to_arrow

API = "/api/v1"
T0 = pd.Timestamp("2026-11-01T00:00:00Z")


def points_records(n: int, metric: str = "cpu", host: str = "a") -> list[dict]:
    return [{"metric": metric, "labels": {"host": host},
             "ts": (T0 + pd.Timedelta(minutes=i)).isoformat(), "value": float(i)}
            for i in range(n)]


def assert_problem(response, status: int, kind: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"].startswith("https://")
    if kind:
        assert body["type"].endswith("/" + kind), body
    return body


def count(wh, table: str = "points") -> int:
    return int(wh.sql(f"SELECT count(*) AS n FROM {table}")["n"][0])


def test_health_and_readiness(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["revision"]


def test_write_points_as_json_ndjson_and_arrow(client, wh):
    response = client.post(f"{API}/points", json=points_records(3))
    assert response.json() == {"received": 3, "written": 3, "skipped": 0}
    # The same batch again changes nothing (idempotent replays).
    assert client.post(f"{API}/points", json=points_records(3)).json()["written"] == 0
    lines = "\n".join(json.dumps(r) for r in points_records(4, host="b")) + "\n"
    response = client.post(f"{API}/points", content=lines, headers={"Content-Type": NDJSON})
    assert response.json()["written"] == 4
    frame = pd.DataFrame({"metric": ["cpu"] * 5, "host": ["c"] * 5,
                          "ts": [T0 + pd.Timedelta(minutes=i) for i in range(5)],
                          "value": [1.0, 2, 3, 4, 5]})
    response = client.post(f"{API}/points", params={"label_columns": "host"},
                           content=frame_to_arrow(frame), headers={"Content-Type": ARROW})
    assert response.json()["written"] == 5
    assert count(wh) == 12
    got = wh.points("cpu", labels={"host": "c"})
    assert got["value"].tolist() == [1.0, 2, 3, 4, 5]


def test_a_bad_row_rejects_the_whole_batch_naming_row_and_field(client, wh):
    records = points_records(5)
    records[3]["value"] = "not a number"
    body = assert_problem(client.post(f"{API}/points", json=records), 422, "validation")
    assert {"row": 3, "field": "value"}.items() <= body["errors"][0].items()
    assert count(wh) == 0
    bad_runs = [{"run_id": str(uuid.uuid4()), "recipe": "etl", "started_at": T0.isoformat(),
                 "status": "running"}, {"run_id": "nope", "recipe": "etl",
                                        "started_at": T0.isoformat(), "status": "bogus"}]
    body = assert_problem(client.post(f"{API}/runs", json=bad_runs), 422, "validation")
    assert {e["field"] for e in body["errors"]} >= {"run_id", "status"}
    assert all(e["row"] == 1 for e in body["errors"])
    assert count(wh, "runs") == 0


def test_bad_bodies_are_problems(client, wh):
    assert_problem(client.post(f"{API}/points", content=b"[{", headers={
        "Content-Type": "application/json"}), 422, "validation")
    body = assert_problem(client.post(f"{API}/points", content=b'{"metric": "x"}\n{oops\n',
                                      headers={"Content-Type": NDJSON}), 422)
    assert body["errors"][0]["row"] == 1 and "line 2" in body["errors"][0]["message"]
    assert_problem(client.post(f"{API}/points", content=b"garbage", headers={
        "Content-Type": ARROW}), 422, "validation")
    assert_problem(client.post(f"{API}/points", json={"not": "a list"}), 422)
    assert_problem(client.post(f"{API}/points", json=[1, 2]), 422)
    assert_problem(client.post(f"{API}/points", content=b"a,b", headers={
        "Content-Type": "text/csv"}), 415, "media-type")
    assert count(wh) == 0


def test_body_size_limits_answer_413(client):
    big = points_records(1) * 20_000  # ~2.4 MB of JSON: over both limits of the fixture
    assert_problem(client.post(f"{API}/points", json=big), 413)
    medium = json.dumps(points_records(1) * 14_000).encode()  # ~1.5 MB: over the JSON limit
    assert_problem(client.post(f"{API}/points", content=medium, headers={
        "Content-Type": "application/json"}), 413)

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(30):
            yield b" " * 100_000

    assert_problem(client.post(f"{API}/runs", content=chunks(), headers={
        "Content-Type": "application/json"}), 413)


def test_query_points_runs_and_steps(client, wh):
    wh.write_points(points_records(120, host="a") + points_records(120, host="b"))
    run_id, step_id = str(uuid.uuid4()), str(uuid.uuid4())
    wh.write_runs([{"run_id": run_id, "recipe": "etl", "started_at": T0,
                    "finished_at": T0 + pd.Timedelta(seconds=5), "status": "succeeded"}])
    wh.write_steps([{"run_id": run_id, "step_id": step_id, "step": "extract", "ordinal": 0,
                     "started_at": T0, "finished_at": T0 + pd.Timedelta(seconds=2),
                     "status": "succeeded"}])
    rows = client.get(f"{API}/points", params={"metric": "cpu", "labels": '{"host": "a"}',
                                               "start": "2026-11-01T00:00:00Z",
                                               "end": "2026-11-01T01:00:00Z"}).json()
    assert len(rows) == 60 and rows[0]["value"] == 0.0 and rows[0]["ts"].startswith("2026-11-01T00:00")
    buckets = client.get(f"{API}/points", params={"metric": "cpu", "every": "1h", "agg": "max",
                                                  "by": "host"}).json()
    assert sorted((r["host"], r["value"]) for r in buckets) == [
        ("a", 59.0), ("a", 119.0), ("b", 59.0), ("b", 119.0)]
    response = client.get(f"{API}/points", params={"metric": "cpu", "every": "1h"},
                          headers={"Accept": ARROW})
    assert response.headers["content-type"] == ARROW
    pd.testing.assert_frame_equal(arrow_to_frame(response.content),
                                  wh.points("cpu", every="1h"))
    runs = client.get(f"{API}/runs", params={"recipe": "etl"}).json()
    assert [r["run_id"] for r in runs] == [run_id] and runs[0]["status"] == "succeeded"
    steps = client.get(f"{API}/steps", params={"run_id": run_id}).json()
    assert [s["step"] for s in steps] == ["extract"]
    assert_problem(client.get(f"{API}/points", params={"metric": "cpu", "agg": "bogus",
                                                       "every": "1h"}), 400)
    assert_problem(client.get(f"{API}/points", params={"metric": "cpu", "labels": "[1]"}), 400)
    assert_problem(client.get(f"{API}/runs", params={"limit": "x"}), 422, "request-validation")
    assert_problem(client.get(f"{API}/points"), 422, "request-validation")


def test_read_only_sql(client, wh):
    wh.write_points(points_records(10))
    rows = client.post(f"{API}/sql", json={"sql": "SELECT count(*) AS n FROM points "
                                                  "WHERE value >= :v", "params": {"v": 5}}).json()
    assert rows == [{"n": 5}]
    assert_problem(client.post(f"{API}/sql", json={"sql": "DELETE FROM points"}), 403, "read-only")
    assert_problem(client.post(f"{API}/sql", json={"sql": "SELEC 1"}), 400)
    assert_problem(client.post(f"{API}/sql", json={"sql": ""}), 422)
    assert count(wh) == 10


def test_views_jobs_retention_chunks_info(client, wh):
    wh.write_points(points_records(10))
    names = [v["name"] for v in client.get(f"{API}/views").json()]
    assert "recipe_daily_stats" in names and "series_latest" in names
    latest = client.get(f"{API}/views/series_latest", params={"limit": 5}).json()
    assert latest[0]["metric"] == "cpu" and latest[0]["value"] == 9.0
    every = client.get(f"{API}/views/all_points", params={"limit": 100}).json()
    assert len(every) == 10 and {"ts", "series_id", "value", "run_id"} <= set(every[0])
    assert_problem(client.get(f"{API}/views/points"), 404, "unknown-name")
    assert {j["job"] for j in client.get(f"{API}/jobs").json()} >= {"refresh_rollups", "retention"}
    run = client.post(f"{API}/jobs/refresh_rollups/run", json={}).json()
    assert run["job"] == "refresh_rollups" and run["status"] == "succeeded"
    history = client.get(f"{API}/jobs/runs", params={"job": "refresh_rollups"}).json()
    assert history[0]["status"] == "succeeded"
    assert_problem(client.post(f"{API}/jobs/no_such_job/run"), 404, "unknown-name")
    assert client.put(f"{API}/retention", json={"table": "points", "keep": "30d"}).status_code == 200
    assert [p["keep"] for p in client.get(f"{API}/retention").json()] == ["30d"]
    assert_problem(client.put(f"{API}/retention", json={"table": "nope", "keep": "30d"}), 404)
    assert client.delete(f"{API}/retention", params={"table": "points"}).json() == {"removed": True}
    chunks = client.get(f"{API}/chunks", params={"table": "points"}).json()
    assert sum(c["rows"] for c in chunks) == 10
    assert_problem(client.get(f"{API}/chunks", params={"table": "nope"}), 404)
    dropped = client.delete(f"{API}/chunks", params={"table": "points",
                                                     "older_than": "2026-12-01T00:00:00Z"}).json()
    assert len(dropped["dropped"]) == len(chunks) and count(wh) == 0
    info = client.get(f"{API}/info").json()
    assert info["backend"] == wh.backend.dialect and {t["table"] for t in info["tables"]} >= {
        "points", "runs"}


def test_unknown_routes_and_methods_are_problems(client):
    assert_problem(client.get(f"{API}/nothing-here"), 404)
    assert_problem(client.get("/no-such-page"), 404)
    assert_problem(client.put(f"{API}/points"), 405)


def test_openapi_schema_is_served(client):
    schema = client.get(f"{API}/openapi.json").json()
    assert {"/api/v1/points", "/api/v1/sql", "/api/v1/runs"} <= set(schema["paths"])
    write = schema["paths"]["/api/v1/points"]["post"]["requestBody"]["content"]
    assert set(write) >= {"application/json", NDJSON, ARROW}
    assert client.get(f"{API}/docs").status_code == 200


def test_arrow_frames_round_trip_dicts_and_types():
    frame = pd.DataFrame({"ts": pd.to_datetime(["2026-11-01T00:00:00Z", None], utc=True),
                          "n": pd.array([1, None], dtype="Int64"),
                          "labels": [{"a": "b"}, {"c": "d", "e": "f"}], "s": ["x", None]})
    back = arrow_to_frame(frame_to_arrow(frame))
    assert back["labels"].tolist() == [{"a": "b"}, {"c": "d", "e": "f"}]
    pd.testing.assert_frame_equal(back.drop(columns="labels"), frame.drop(columns="labels"))
    assert isinstance(pa.ipc.open_stream(frame_to_arrow(frame)).read_all(), pa.Table)


@pytest.mark.storage
def test_the_database_password_never_leaves_the_server(postgres_server, caplog):
    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from tests.server.conftest import TestClient
    from warehouse import Warehouse
    from warehouse.server.app import create_app

    database_url = postgres_server.create_database(f"wh_secret_{uuid.uuid4().hex[:8]}")
    secret = "s3cret-Pw-" + uuid.uuid4().hex[:8]
    url = make_url(database_url)
    plain = Warehouse(database_url)
    with plain.engine.begin() as conn:  # the test server trusts local users: any password works
        conn.execute(text(f"ALTER ROLE \"{url.username}\" PASSWORD '{secret}'"))
    plain.close()
    wh = Warehouse(url.set(password=secret).render_as_string(hide_password=False))
    try:
        with TestClient(create_app(wh), base_url="http://127.0.0.1",
                        raise_server_exceptions=False) as client:
            bodies = [client.get(p).text for p in ("/readyz", f"{API}/info", f"{API}/nothing")]
            bodies.append(client.post(f"{API}/sql", json={"sql": "SELECT :x", "params": {}}).text)
            bodies.append(client.post(f"{API}/sql", json={
                "sql": f"SELECT '{secret}' AS leaked"}).text)  # the caller's own text comes back

            def failing_info():
                raise RuntimeError(f"could not reach {wh.url}")  # a driver-style message

            wh.info = failing_info
            response = client.get(f"{API}/info")
            assert_problem(response, 500, "internal")
            bodies.append(response.text)
        assert all(secret not in body for body in bodies[:4] + bodies[5:]), bodies
        assert secret not in caplog.text
    finally:
        wh.close()


def test_sql_statement_timeout_and_row_cap_are_problems(wh):
    from tests.server.conftest import TestClient
    from warehouse.server.app import ServerSettings, create_app

    app = create_app(wh, settings=ServerSettings(sql_timeout=0.5, sql_max_rows=10))
    with TestClient(app, base_url="http://127.0.0.1") as client:
        slow = ("SELECT count(*) AS n FROM generate_series(1, 200000) AS a, "
                "generate_series(1, 200000) AS b")
        body = assert_problem(client.post(f"{API}/sql", json={"sql": slow}), 400, "sql-timeout")
        assert "0.5" in body["detail"] or "time" in body["detail"]
        many = "SELECT * FROM generate_series(1, 20) AS g"
        assert_problem(client.post(f"{API}/sql", json={"sql": many}), 400, "result-too-large")
        few = client.post(f"{API}/sql", json={"sql": "SELECT * FROM generate_series(1, 10) AS g"})
        assert len(few.json()) == 10


def test_big_ndjson_batches_keep_ingest_time_rules(client, wh):
    # Over 1,000 rows the server parses zoned times in one go; naive ones must still be
    # named by row, and other zones still mean the same instant.
    records = points_records(1500)
    records[7]["ts"] = "2026-11-01T00:07:00+02:00"
    lines = "\n".join(json.dumps(r) for r in records)
    bad = [dict(r) for r in records]
    bad[1200]["ts"] = "2026-11-01T20:00:00"
    body = assert_problem(client.post(f"{API}/points", content="\n".join(
        json.dumps(r) for r in bad), headers={"Content-Type": NDJSON}), 422, "validation")
    assert body["errors"][0]["row"] == 1200 and body["errors"][0]["field"] == "ts"
    assert count(wh) == 0
    response = client.post(f"{API}/points", content=lines, headers={"Content-Type": NDJSON})
    assert response.json()["written"] == 1500
    moved = wh.sql("SELECT min(ts) AS t FROM points WHERE value = 7")["t"][0]
    assert pd.Timestamp(moved) == pd.Timestamp("2026-10-31T22:07:00Z")
