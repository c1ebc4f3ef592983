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


# -- tokens and sessions answered from memory; failed credentials limited per address ------
@pytest.fixture
def lookups(monkeypatch):
    """Credential lookups in the database (by query name) and threadpool round trips of
    the authentication."""
    from warehouse.accounts import cache, store

    cache.forget_all()
    seen = {"queries": [], "hops": 0}
    real_run, real_hop = store.run, auth_module.run_in_threadpool

    def run(conn, backend, name, params=None):
        seen["queries"].append(name)
        return real_run(conn, backend, name, params)

    async def hop(*args, **kwargs):
        seen["hops"] += 1
        return await real_hop(*args, **kwargs)

    monkeypatch.setattr(store, "run", run)
    monkeypatch.setattr(auth_module, "run_in_threadpool", hop)
    return seen


def test_a_known_token_is_checked_from_memory_without_a_threadpool_hop(wh, lookups):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    token = accounts.create_token(wh, "ann", "read").token
    client, _ = open_client(wh)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/t/read", headers=headers).json() == {"name": "ann", "via": "token"}
    asked, hops = lookups["queries"].count("token_by_hash"), lookups["hops"]
    assert (asked, hops) == (1, 1)  # the first use: looked up (and its last use written)
    for _ in range(5):
        assert client.get("/t/read", headers=headers).status_code == 200
        assert client.post("/t/write", headers=headers).status_code == 403  # scope still checked
    assert lookups["queries"].count("token_by_hash") == asked and lookups["hops"] == hops


def test_an_unknown_token_is_looked_up_once_then_refused_from_memory(wh, lookups):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    client, _ = open_client(wh)
    guess = {"Authorization": "Bearer wht_" + "A" * 43}
    for _ in range(5):
        refused = client.get("/t/read", headers=guess)
        assert refused.status_code == 401 and refused.json()["detail"] == "invalid token"
    assert lookups["queries"].count("token_by_hash") == 1


def test_failed_credentials_from_one_address_are_limited_without_a_lookup(wh, lookups):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    token = accounts.create_token(wh, "ann", "read").token
    client, state = open_client(wh)
    state.failures = accounts.FailureLimiter(limit=3, window=60.0)
    good = {"Authorization": f"Bearer {token}"}
    assert client.get("/t/read", headers=good).status_code == 200  # remembered from now on
    guesses = [{"Authorization": f"Bearer wht_{i:043d}"} for i in range(5)]
    assert [client.get("/t/read", headers=g).status_code for g in guesses[:3]] == [401] * 3
    asked = lookups["queries"].count("token_by_hash")
    refused = client.get("/t/read", headers=guesses[3])
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert refused.headers["content-type"].startswith("application/problem+json")
    cookie = {"Cookie": f"{auth_module.SESSION_COOKIE}=" + "s" * 40}
    assert client.get("/t/read", headers=cookie).status_code == 429  # sessions too
    assert lookups["queries"].count("token_by_hash") == asked  # refused before any lookup
    assert lookups["queries"].count("session_get") == 0
    # A remembered answer costs nothing and is still given: the good token works, and a
    # guess already known to be wrong is 401, not 429.
    assert client.get("/t/read", headers=good).status_code == 200
    assert client.get("/t/read", headers=guesses[0]).status_code == 401


def test_a_revoked_token_is_refused_from_memory_at_once(wh, lookups):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    made = accounts.create_token(wh, "ann", "read")
    client, _ = open_client(wh)
    headers = {"Authorization": f"Bearer {made.token}"}
    assert client.get("/t/read", headers=headers).status_code == 200
    accounts.revoke_token(wh, made.token_id)  # through this process: the memory is cleared
    refused = client.get("/t/read", headers=headers)
    assert refused.status_code == 401 and refused.json()["detail"] == "token revoked"


def test_a_known_session_is_checked_from_memory(wh, lookups):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    client, _ = open_client(wh)
    assert client.post("/api/v1/auth/login",
                       json={"name": "ann", "password": PASSWORD}).status_code == 200
    assert client.get("/t/read").json() == {"name": "ann", "via": "session"}
    asked, hops = lookups["queries"].count("session_get"), lookups["hops"]
    for _ in range(3):
        assert client.get("/t/read").status_code == 200
    assert (lookups["queries"].count("session_get"), lookups["hops"]) == (asked, hops)
