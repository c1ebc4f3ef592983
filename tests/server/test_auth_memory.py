"""Open mode answered from memory (docs/server.md, "Where the time goes"): a "no users" answer
is reused for a few seconds instead of a query per request, without weakening open mode's
rules. On DuckDB and PostgreSQL."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.server.test_auth import PASSWORD, small_app
from warehouse import accounts
from warehouse.server import auth as auth_module


@pytest.fixture
def counted(monkeypatch):
    """How many times the users table is counted."""
    calls = []
    real = accounts.user_count

    def user_count(wh):
        calls.append(1)
        return real(wh)

    monkeypatch.setattr(accounts, "user_count", user_count)
    return calls


def open_client(wh) -> tuple[TestClient, auth_module.AuthState]:
    app = small_app(wh, listen_host="127.0.0.1")
    return TestClient(app, base_url="http://127.0.0.1"), app.state.auth


def test_open_mode_asks_once_then_answers_from_memory(wh, counted):
    client, _ = open_client(wh)
    for _ in range(5):
        assert client.get("/t/read").json() == {"name": "anonymous", "via": "open"}
    assert len(counted) == 1


def test_memory_never_lets_a_foreign_or_credentialed_request_through(wh, counted):
    client, state = open_client(wh)
    assert client.get("/t/read").status_code == 200
    assert state._no_users_known(state.NO_USERS_TTL)
    for headers in ({"X-Forwarded-For": "203.0.113.9"}, {"Host": "rebound.example:8000"},
                    {"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"},
                    {"Authorization": "Bearer wht_not-a-token"}, {"Authorization": ""},
                    {"Cookie": f"{auth_module.SESSION_COOKIE}=" + "x" * 40}):
        assert client.post("/t/admin", headers=headers).status_code == 401, headers


def test_the_first_user_added_through_the_server_ends_open_mode_at_once(wh):
    client, _ = open_client(wh)
    assert client.get("/t/read").status_code == 200  # "no users" now remembered
    created = client.post("/api/v1/auth/users",
                          json={"name": "root", "role": "admin", "password": PASSWORD})
    assert created.status_code == 201
    assert client.get("/t/read").status_code == 401
    assert client.post("/t/admin").status_code == 401


def test_a_user_added_elsewhere_ends_open_mode_when_the_memory_ages(wh, counted):
    client, state = open_client(wh)
    assert client.get("/t/read").status_code == 200
    accounts.add_user(wh, "root", "admin", PASSWORD)  # another process, straight to the database
    assert client.get("/t/read").status_code == 200  # still remembered (at most NO_USERS_TTL)
    state._no_users_at -= state.NO_USERS_TTL + 1  # the memory ages
    assert client.get("/t/read").status_code == 401
    assert len(counted) == 2
    state._no_users_at = None  # and once users exist, open mode never comes back
    assert state.users_exist(max_age=state.NO_USERS_TTL)
    assert client.get("/t/read").status_code == 401
    assert len(counted) == 2


def test_a_stale_no_never_overrides_a_yes(wh):
    _, state = open_client(wh)
    assert not state.users_exist()
    accounts.add_user(wh, "root", "admin", PASSWORD)
    assert state.users_exist()  # what the users route asks after adding one
    assert state.users_exist(max_age=state.NO_USERS_TTL)
    assert not state._no_users_known(state.NO_USERS_TTL)
