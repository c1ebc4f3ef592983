"""schemathesis over the served OpenAPI schema (bounded: 20 examples per operation): no
request the schema allows makes the server answer 500, and every error is RFC 9457
problem+json; requests that break the schema on purpose are refused as problems too.
Runs against a fresh DuckDB warehouse served in-process (ASGI)."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from warehouse import Warehouse
from warehouse.server.app import ServerSettings, create_app

pytestmark = pytest.mark.slow
#: Examples per operation: schema-valid ones, and ones that break the schema on purpose.
EXAMPLES = {schemathesis.GenerationMode.POSITIVE: 20, schemathesis.GenerationMode.NEGATIVE: 5}


def check(case) -> None:
    response = case.call()
    assert response.status_code < 500, (case.as_curl_command(), response.text[:500])
    if response.status_code >= 400:
        kind = response.headers.get("content-type")
        kind = kind[0] if isinstance(kind, list) else kind
        assert kind.startswith("application/problem+json"), (case.as_curl_command(), kind)
        body = response.json()
        assert body["status"] == response.status_code and body["type"] and body["title"]


def test_no_server_errors_and_every_error_is_a_problem(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # anything a job writes (archive files) stays in tmp_path
    wh = Warehouse(f"duckdb:///{tmp_path / 'fuzz.duckdb'}")
    app = create_app(wh, listen_host="127.0.0.1", settings=ServerSettings(
        max_body_bytes=1_000_000, max_json_body_bytes=200_000, sql_timeout=5.0))
    try:
        schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 15
        for operation in operations:
            for mode, examples in EXAMPLES.items():
                test = settings(max_examples=examples, deadline=None, derandomize=True,
                                database=None, suppress_health_check=list(HealthCheck))(
                    given(case=operation.as_strategy(mode))(check))
                try:
                    test()
                except Unsatisfiable:  # nothing to break: an operation without inputs
                    assert mode is schemathesis.GenerationMode.NEGATIVE
    finally:
        wh.close()
