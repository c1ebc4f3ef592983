"""The remote client without a database: dispatch from Warehouse, error mapping, and an
unreachable server as a TransientError."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import free_port
from warehouse import Warehouse
from warehouse.client import AccessDenied, RemoteRequestError, RemoteWarehouse
from warehouse.errors import (
    QueryTimeoutError,
    ReadOnlyError,
    ResultTooLargeError,
    TransientError,
    UnknownNameError,
    ValidationError,
)
from warehouse.server.api_read import VIEWS


def test_warehouse_of_an_http_url_is_remote_and_takes_the_token_from_the_environment(monkeypatch):
    monkeypatch.setenv("WAREHOUSE_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("WAREHOUSE_TOKEN", "wht_secret")
    wh = Warehouse(create=False, migrate=False)  # keywords of the local path are ignored
    assert isinstance(wh, RemoteWarehouse) and wh.url == "http://127.0.0.1:9"
    assert wh._http.headers["Authorization"] == "Bearer wht_secret"
    explicit = Warehouse("https://example.invalid/", token="t2")
    assert explicit.url == "https://example.invalid"
    assert explicit._http.headers["Authorization"] == "Bearer t2"
    with pytest.raises(AttributeError, match="not available over HTTP"):
        wh.downgrade()
    wh.close(), explicit.close()


def test_an_unreachable_server_is_transient():
    with RemoteWarehouse(f"http://127.0.0.1:{free_port()}") as wh:
        with pytest.raises(TransientError, match="unreachable"):
            wh.write_points([{"metric": "m", "ts": "2026-11-01T00:00:00Z", "value": 1}])
        assert not wh.ready()


def _answering(status: int, body: dict) -> RemoteWarehouse:
    transport = httpx.MockTransport(lambda request: httpx.Response(
        status, json=body, headers={"Content-Type": "application/problem+json"}))
    return RemoteWarehouse("http://server.test", transport=transport)


@pytest.mark.parametrize("status, kind, expected", [
    (403, "read-only", ReadOnlyError), (404, "unknown-name", UnknownNameError),
    (400, "bad-request", RemoteRequestError), (401, "401", AccessDenied),
    (403, "403", AccessDenied), (503, "unavailable", TransientError),
    (502, "502", TransientError), (400, "sql-timeout", QueryTimeoutError),
    (400, "result-too-large", ResultTooLargeError),
])
def test_problems_map_back_to_the_same_exceptions(status, kind, expected):
    wh = _answering(status, {"type": f"https://x/problems/{kind}", "title": "t",
                             "status": status, "detail": "what went wrong"})
    with pytest.raises(expected, match="what went wrong"):
        wh.sql("SELECT 1")


def test_validation_problems_keep_rows_and_fields():
    wh = _answering(422, {"type": "https://x/problems/validation", "title": "Invalid input",
                          "status": 422, "what": "points batch", "count": 7, "errors": [
                              {"row": 3, "field": "value", "message": "must be a number"}]})
    with pytest.raises(ValidationError) as info:
        wh.write_points([{"metric": "m", "ts": "2026-11-01T00:00:00Z", "value": 1}])
    problem = info.value.problems[0]
    assert (problem.row, problem.field, problem.message) == (3, "value", "must be a number")
    assert info.value.count == 7 and info.value.what == "points batch"


def test_the_views_served_are_the_documented_ones():
    text = (Path(__file__).resolve().parents[2] / "docs" / "views.md").read_text()
    assert set(VIEWS) == set(re.findall(r"^## `(\w+)`", text, flags=re.M))
