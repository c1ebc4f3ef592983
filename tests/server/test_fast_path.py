"""GET /api/v1/points through the fast path (api_read.PointsFastPath) answers exactly what
FastAPI's route answers — rows, Arrow bytes, problems, authentication — on DuckDB and
PostgreSQL; requests it cannot take as they are go on to FastAPI's route. On the client's
side, table reads go straight to the connection pool with the same request and errors."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest
from starlette.testclient import TestClient

from tests.server.conftest import free_port
from warehouse import accounts
from warehouse.client import AccessDenied, RemoteRequestError, RemoteWarehouse
from warehouse.client.wire import ARROW, arrow_to_frame, frame_to_arrow
from warehouse.errors import TerminalError, TransientError
from warehouse.server import api_read
from warehouse.server.api_read import _plain_points_params
from warehouse.server.app import create_app

API = "/api/v1"
T0 = pd.Timestamp("2026-11-01T00:00:00Z")
#: A repeated parameter FastAPI ignores: the fast path leaves such a request to FastAPI.
TO_FASTAPI = [("ignored", "1"), ("ignored", "2")]


@pytest.fixture
def routes_taken(monkeypatch) -> list[str]:
    """Which path answered each GET /points: "fastapi" (its router matched the request,
    which sets the scope's endpoint) or "fast"."""
    taken: list[str] = []
    answer = api_read.points_answer

    def recording(request, **params):
        taken.append("fastapi" if "endpoint" in request.scope else "fast")
        return answer(request, **params)

    monkeypatch.setattr(api_read, "points_answer", recording)
    return taken


def write_two_hosts(wh) -> None:
    wh.write_points(pd.DataFrame({
        "metric": "cpu", "host": ["a"] * 90 + ["b"] * 90,
        "ts": list(pd.date_range(T0, periods=90, freq="1min")) * 2,
        "value": [float(i) for i in range(180)]}), label_columns=["host"])


QUERIES = [
    {"metric": "cpu", "labels": '{"host": "a"}', "start": "2026-11-01T00:00:00Z",
     "end": "2026-11-01T01:00:00Z"},
    {"metric": "cpu", "every": "1h", "agg": "max", "by": "host"},
    {"metric": "cpu", "every": "10m", "fill": "zero", "start": "2026-11-01T00:00:00Z",
     "end": "2026-11-01T03:00:00Z", "with_labels": "false"},
    {"metric": "cpu", "last": "5", "rollups": "false", "with_labels": "host"},
    {"metric": "cpu,nosuch", "by": ""},
    {"metric": "nosuch"},
    # Refused by the warehouse: problems named as FastAPI's route names them.
    {"metric": "cpu", "agg": "bogus", "every": "1h"},
    {"metric": "cpu", "labels": "[1]"},
    {"metric": "cpu", "fill": "sideways", "every": "1h"},
    {"metric": "cpu", "start": "yesterday-ish"},
    {"metric": "cpu", "every": "1us", "fill": "zero", "start": "2026-01-01T00:00:00Z",
     "end": "2026-12-01T00:00:00Z"},
]


@pytest.mark.parametrize("accept", [None, ARROW])
def test_the_fast_path_answers_what_fastapi_answers(client, wh, routes_taken, accept):
    write_two_hosts(wh)
    headers = {"Accept": accept} if accept else {}
    for params in QUERIES:
        fast = client.get(f"{API}/points", params=params, headers=headers)
        slow = client.get(f"{API}/points", params=[*params.items(), *TO_FASTAPI],
                          headers=headers)
        assert routes_taken[-2:] == ["fast", "fastapi"], params
        assert (fast.status_code, fast.headers["content-type"], fast.content) == (
            slow.status_code, slow.headers["content-type"], slow.content), params
    arrow = client.get(f"{API}/points", params=QUERIES[0], headers={"Accept": ARROW})
    pd.testing.assert_frame_equal(arrow_to_frame(arrow.content), wh.points(
        "cpu", "2026-11-01T00:00:00Z", "2026-11-01T01:00:00Z", labels={"host": "a"}))


def test_requests_it_cannot_take_as_they_are_go_to_fastapi(client, wh, routes_taken):
    write_two_hosts(wh)
    # FastAPI's own answers: a missing or empty metric and a malformed `last` are 422s
    # naming the parameter; a NUL is a 400.
    for params, status in [({}, 422), ({"metric": ""}, 422), ({"metric": "cpu", "last": "0"}, 422),
                           ({"metric": "cpu", "last": "x"}, 422),
                           ({"metric": "cpu", "rollups": "maybe"}, 422),
                           ({"metric": "cpu\x00"}, 400)]:
        response = client.get(f"{API}/points", params=params)
        assert response.status_code == status, (params, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
    assert routes_taken == []  # refused before any answer was made
    # Spellings FastAPI accepts that the fast path leaves to it: the same rows.
    for params in [{"metric": "cpu", "rollups": "0"}, {"metric": "cpu", "rollups": "TRUE"}]:
        assert client.get(f"{API}/points", params=params).status_code == 200
    assert routes_taken == ["fastapi", "fastapi"]
    assert client.request("GET", f"{API}/points", params={"metric": "cpu"}, content=b"x",
                          headers={"Content-Type": "text/plain"}).status_code == 200
    assert routes_taken[-1] == "fastapi"  # a GET with a body: BodyLimit's and FastAPI's


def test_plain_parameters_as_fastapi_reads_them():
    parsed = _plain_points_params(b"metric=cpu&labels=%7B%22a%22%3A+1%7D&last=10&x=&by=")
    assert parsed == {"metric": "cpu", "start": None, "end": None, "labels": '{"a": 1}',
                      "every": None, "agg": "mean", "by": "", "fill": None,
                      "with_labels": "true", "rollups": True, "last": 10}
    assert _plain_points_params(b"metric=cpu&rollups=false")["rollups"] is False
    for query in [b"", b"metric=", b"metric=a&metric=b", b"metric=a&x=1&x=2", b"metric=a%00",
                  b"metric=a&rollups=1", b"metric=a&last=0", b"metric=a&last=1000001",
                  b"metric=a&last=-1", b"metric=a&last=%C2%B2", b"metric=a&last=" + b"9" * 5000]:
        assert _plain_points_params(query) is None, query


def test_the_fast_path_reads_every_parameter_of_the_route():
    """A parameter added to the route must reach the fast path too (or it would be ignored
    there): the parameters it parses are exactly the route's."""
    import inspect

    route = set(inspect.signature(api_read.points).parameters) - {"request"}
    assert set(_plain_points_params(b"metric=cpu")) == route


def test_the_fast_path_authenticates_as_fastapi_does(wh, routes_taken):
    write_two_hosts(wh)
    accounts.add_user(wh, "vic", "viewer", "correct horse battery")
    token = accounts.create_token(wh, "vic", "read").token
    client = TestClient(create_app(wh, listen=False), base_url="http://127.0.0.1",
                        raise_server_exceptions=False)
    params = {"metric": "cpu", "labels": '{"host": "b"}'}
    for headers in [{}, {"Authorization": "Bearer nosuch"}, {"Authorization": "Basic x"}]:
        fast = client.get(f"{API}/points", params=params, headers=headers)
        slow = client.get(f"{API}/points", params=[*params.items(), *TO_FASTAPI],
                          headers=headers)
        assert fast.status_code == slow.status_code == 401, fast.text
        assert fast.json() == slow.json()
        assert fast.headers["www-authenticate"] == slow.headers["www-authenticate"]
    assert routes_taken == []
    for _ in range(2):  # first from the database, then remembered
        answer = client.get(f"{API}/points", params=params,
                            headers={"Authorization": f"Bearer {token}"})
        assert answer.status_code == 200 and len(answer.json()) == 90
    assert routes_taken == ["fast", "fast"]


# -- the client's side: table reads handed straight to the connection pool --------------------
def _recording_server(status: int = 200, body: bytes | None = None):
    """A RemoteWarehouse over a MockTransport answering every request alike, and the list
    of requests it saw."""
    seen: list[httpx.Request] = []
    empty = frame_to_arrow(pd.DataFrame({"ts": pd.Series([], dtype="datetime64[us, UTC]"),
                                         "value": pd.Series([], dtype=float)}))

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if status >= 400:
            return httpx.Response(status, json={"type": "https://x/problems/bad-request",
                                                "title": "t", "status": status,
                                                "detail": "what went wrong"},
                                  headers={"Content-Type": "application/problem+json"})
        return httpx.Response(200, content=body or empty, headers={"Content-Type": ARROW})

    remote = RemoteWarehouse("http://server.test", token="tok",
                             transport=httpx.MockTransport(answer))
    return remote, seen


def test_a_table_read_sends_what_the_http_client_sent():
    remote, seen = _recording_server()
    frame = remote.points("cpu", "2026-11-01T00:00:00Z", pd.Timestamp("2026-11-01T01:00:00Z"),
                          labels={"host": "a b"}, by=[], rollups=False, last=3)
    assert frame.empty and list(frame.columns) == ["ts", "value"]
    remote.job_runs(limit=5)
    points, runs = seen
    assert (points.method, points.url.path) == ("GET", "/api/v1/points")
    assert dict(points.url.params) == {
        "metric": "cpu", "start": "2026-11-01T00:00:00Z", "end": "2026-11-01T01:00:00+00:00",
        "agg": "mean", "by": "", "labels": '{"host": "a b"}', "last": "3",
        "rollups": "false", "with_labels": "true"}
    assert points.headers["accept"] == ARROW and points.headers["authorization"] == "Bearer tok"
    assert points.headers["user-agent"] == "warehouse-client/1"
    assert dict(runs.url.params) == {"limit": "5"} and runs.url.path == "/api/v1/jobs/runs"


@pytest.mark.parametrize("status, expected", [(400, RemoteRequestError), (401, AccessDenied),
                                              (503, TransientError), (500, TerminalError)])
def test_table_read_problems_are_the_same_exceptions(status, expected):
    remote, _ = _recording_server(status)
    with pytest.raises(expected, match="what went wrong"):
        remote.points("cpu")


def test_a_table_read_of_an_unreachable_server_is_transient():
    with RemoteWarehouse(f"http://127.0.0.1:{free_port()}") as remote:
        with pytest.raises(TransientError, match="unreachable"):
            remote.points("cpu")


def test_a_proxy_from_the_environment_still_carries_table_reads(remote, monkeypatch):
    wh, served = remote
    write_two_hosts(wh)
    assert len(served.points("cpu")) == 180  # straight to the server
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{free_port()}")  # nobody listens
    with RemoteWarehouse(served.url) as proxied:
        with pytest.raises(TransientError, match="unreachable"):
            proxied.points("cpu")  # sent to the proxy, as httpx sends every request
        with pytest.raises(TransientError, match="unreachable"):
            proxied.sql("SELECT 1")


def test_table_reads_through_a_served_warehouse(remote):
    wh, served = remote
    write_two_hosts(wh)
    for _ in range(3):  # one connection, reused
        pd.testing.assert_frame_equal(served.points("cpu", labels={"host": "a"}, last=5),
                                      wh.points("cpu", labels={"host": "a"}, last=5))
    with pytest.raises(RemoteRequestError, match="agg"):
        served.points("cpu", every="1h", agg="bogus")
