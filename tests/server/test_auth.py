"""Users, passwords, tokens, sessions, CSRF and login rate limits (issue 11; docs/security.md).

Storage tests run on DuckDB and PostgreSQL (the ``wh`` fixture); the HTTP side goes through
starlette's TestClient against a small app guarded by ``require`` — the real app's routes
are covered by test_permissions.py.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner
from fastapi import Depends, FastAPI
from sqlalchemy import text
from starlette.testclient import TestClient

from warehouse import accounts
from warehouse.accounts.hashing import TOKEN_PREFIX
from warehouse.errors import UnknownNameError, ValidationError
from warehouse.server.auth import (
    CSRF_COOKIE,
    CSRF_HEADER,
    SESSION_COOKIE,
    AuthState,
    auth_router,
    is_loopback,
    require,
    serving_allowed,
)

PASSWORD = "correct horse battery"


def small_app(wh, *, listen_host: str | None = None, limiter=None) -> FastAPI:
    """An app with one route per scope, the auth routes, and ``wh`` as its warehouse."""
    from warehouse.server import problems  # the API's problem+json rendering of errors

    app = FastAPI()
    problems.install(app, problems.Redactor())
    app.state.warehouse = wh
    app.state.auth = AuthState(wh, listen_host, limiter)
    app.include_router(auth_router())

    @app.get("/t/read")
    def read(principal=Depends(require("read"))):  # noqa: B008 - FastAPI's idiom
        return {"name": principal.name, "via": principal.via}

    @app.post("/t/write")
    def write(principal=Depends(require("write"))):  # noqa: B008
        return {"name": principal.name}

    @app.post("/t/admin")
    def admin(principal=Depends(require("admin"))):  # noqa: B008
        return {"name": principal.name}

    return app


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def login(client: TestClient, name: str, password: str = PASSWORD):
    return client.post("/api/v1/auth/login", json={"name": name, "password": password})


def table_text(wh, table: str) -> str:
    """Every value of ``table`` as one string (to look for secrets that must not be there)."""
    with wh.engine.connect() as conn:
        return repr(conn.execute(text(f"SELECT * FROM {table}")).fetchall())


# -- passwords ------------------------------------------------------------------------------
def test_passwords_are_stored_as_argon2id_hashes(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    stored = table_text(wh, "users")
    assert "$argon2id$" in stored and PASSWORD not in stored
    assert accounts.check_login(wh, "ann", PASSWORD).role == "viewer"
    assert accounts.check_login(wh, "ann", PASSWORD + "x") is None
    assert accounts.check_login(wh, "nobody", PASSWORD) is None
    listed = accounts.list_users(wh)
    assert list(listed["name"]) == ["ann"] and "password_hash" not in listed.columns


def test_bad_users_are_refused_with_the_field_named(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    with pytest.raises(ValidationError, match="exists"):
        accounts.add_user(wh, "ann", "admin", PASSWORD)
    with pytest.raises(ValidationError, match="'name'"):
        accounts.add_user(wh, "bad name; drop table users", "viewer", PASSWORD)
    with pytest.raises(ValidationError, match="'password'.*at least 8"):
        accounts.add_user(wh, "bob", "viewer", "short")
    with pytest.raises(ValueError, match="unknown role"):
        accounts.add_user(wh, "bob", "root", PASSWORD)
    with pytest.raises(UnknownNameError):
        accounts.remove_user(wh, "bob")
    assert list(accounts.list_users(wh)["name"]) == ["ann"]


# -- tokens ---------------------------------------------------------------------------------
def test_tokens_are_shown_once_and_stored_as_a_digest(wh):
    accounts.add_user(wh, "ed", "editor", PASSWORD)
    made = accounts.create_token(wh, "ed", "write", expires="30d", name="ci")
    assert made.token.startswith(TOKEN_PREFIX) and len(made.token) > 40
    stored = table_text(wh, "api_tokens")
    assert made.token not in stored and made.token[len(TOKEN_PREFIX):] not in stored
    assert hashlib.sha256(made.token.encode()).hexdigest() in stored
    listed = accounts.list_tokens(wh)
    assert list(listed["token_id"]) == [made.token_id]
    assert not any(made.token in str(v) for v in listed.to_numpy().ravel())
    who = accounts.authenticate_token(wh, made.token)
    assert (who.name, who.role, who.scopes) == ("ed", "editor", frozenset({"read", "write"}))
    assert accounts.list_tokens(wh)["last_used_at"].notna().all()


def test_token_scope_never_exceeds_the_role(wh):
    accounts.add_user(wh, "vic", "viewer", PASSWORD)
    with pytest.raises(ValidationError, match="'scope'.*more than 'vic' may do as viewer"):
        accounts.create_token(wh, "vic", "write")
    with pytest.raises(ValidationError, match="'expires'"):
        accounts.create_token(wh, "vic", "read", expires="soon")
    with pytest.raises(UnknownNameError):
        accounts.create_token(wh, "nobody", "read")
    assert accounts.list_tokens(wh).empty


def test_expired_and_revoked_tokens_answer_401(wh):
    accounts.add_user(wh, "ann", "admin", PASSWORD)
    old = accounts.create_token(wh, "ann", "read", expires="1d",
                                now=datetime.now(UTC) - timedelta(days=2))
    live = accounts.create_token(wh, "ann", "admin", expires="never")
    client = TestClient(small_app(wh))
    response = client.get("/t/read", headers=bearer(old.token))
    assert response.status_code == 401 and "expired" in response.json()["detail"]
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.post("/t/admin", headers=bearer(live.token)).status_code == 200
    accounts.revoke_token(wh, live.token_id)
    response = client.post("/t/admin", headers=bearer(live.token))
    assert response.status_code == 401 and "revoked" in response.json()["detail"]
    for header in ({"Authorization": "Bearer " + TOKEN_PREFIX + "x" * 43},
                   {"Authorization": "Basic YW5uOnB3"}, {"Authorization": "Bearer"}):
        assert client.get("/t/read", headers=header).status_code == 401


def test_removing_a_user_ends_its_tokens_and_sessions(wh):
    accounts.add_user(wh, "ann", "editor", PASSWORD)
    token = accounts.create_token(wh, "ann", "write").token
    client = TestClient(small_app(wh))
    assert login(client, "ann").status_code == 200
    accounts.remove_user(wh, "ann")
    assert client.get("/t/read").status_code == 401  # the session cookie
    assert client.get("/t/read", headers=bearer(token)).status_code == 401
    assert accounts.list_tokens(wh).empty


# -- sessions, cookies, CSRF ----------------------------------------------------------------
def test_session_cookie_flags(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    for base, secure in (("http://testserver", False), ("https://testserver", True)):
        response = login(TestClient(small_app(wh), base_url=base), "ann")
        assert response.status_code == 200
        cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
        session, csrf = cookies[SESSION_COOKIE], cookies[CSRF_COOKIE]
        assert "httponly" in session and "samesite=lax" in session and "path=/" in session
        assert "httponly" not in csrf  # the page's script reads it to echo it back
        assert ("secure" in session) is secure and ("secure" in csrf) is secure
        assert response.json()["csrf_token"] in csrf
    stored = table_text(wh, "web_sessions")
    assert response.cookies[SESSION_COOKIE] not in stored


def test_cookie_changes_need_the_csrf_token(wh):
    accounts.add_user(wh, "ed", "editor", PASSWORD)
    client = TestClient(small_app(wh))
    csrf = login(client, "ed").json()["csrf_token"]
    assert client.get("/t/read").json() == {"name": "ed", "via": "session"}  # reads need none
    response = client.post("/t/write")
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert client.post("/t/write", headers={CSRF_HEADER: "0" * 64}).status_code == 403
    assert client.post("/t/write", headers={CSRF_HEADER: csrf}).status_code == 200
    assert client.post("/t/write", data={"csrf_token": csrf}).status_code == 200  # HTML form
    assert client.post("/t/write", data={"csrf_token": "nope"}).status_code == 403
    # A token in the Authorization header needs no CSRF token: browsers never add it.
    token = accounts.create_token(wh, "ed", "write").token
    fresh = TestClient(small_app(wh))
    assert fresh.post("/t/write", headers=bearer(token)).status_code == 200
    # The editor's session still lacks the admin scope, CSRF token or not.
    assert client.post("/t/admin", headers={CSRF_HEADER: csrf}).status_code == 403


def test_login_from_another_site_is_refused(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    client = TestClient(small_app(wh))
    body = {"name": "ann", "password": PASSWORD}
    for origin in ("https://evil.example", "null"):
        response = client.post("/api/v1/auth/login", data=body, headers={"Origin": origin})
        assert response.status_code == 403 and SESSION_COOKIE not in response.cookies
    same = client.post("/api/v1/auth/login", data=body, headers={"Origin": "http://testserver"})
    assert same.status_code == 200 and same.json()["name"] == "ann"


def test_logout_and_password_change_end_sessions(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    client = TestClient(small_app(wh))
    csrf = login(client, "ann").json()["csrf_token"]
    assert client.post("/api/v1/auth/logout").status_code == 403  # logout is CSRF-guarded too
    assert client.post("/api/v1/auth/logout", headers={CSRF_HEADER: csrf}).status_code == 204
    assert client.get("/t/read").status_code == 401
    login(client, "ann")
    accounts.set_password(wh, "ann", "another password")
    assert client.get("/t/read").status_code == 401
    assert login(client, "ann").status_code == 401
    assert login(client, "ann", "another password").status_code == 200


def test_expired_session_is_refused(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    session = accounts.open_session(wh, "ann", now=datetime.now(UTC) - timedelta(days=1))
    client = TestClient(small_app(wh))
    client.cookies.set(SESSION_COOKIE, session.session_id)
    response = client.get("/t/read")
    assert response.status_code == 401 and "expired" in response.json()["detail"]


# -- failed logins --------------------------------------------------------------------------
class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_password_is_401_and_repeated_failures_429(wh):
    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    clock = Clock()
    limiter = accounts.LoginLimiter(per_user=3, per_address=4, window=60, clock=clock)
    client = TestClient(small_app(wh, limiter=limiter))
    for _ in range(3):
        response = login(client, "ann", "guess")
        assert response.status_code == 401 and response.json()["detail"] == (
            "wrong user name or password")
    response = login(client, "ann")  # even the right password waits
    assert response.status_code == 429 and int(response.headers["retry-after"]) == 60
    assert login(client, "nobody", "x" * 8).status_code == 401  # other names: the address
    assert login(client, "nobody2", "x" * 8).status_code == 429  # ... has 4 failures now
    clock.now += 61
    assert login(client, "ann").status_code == 200
    assert login(client, "ann", "").status_code == 422  # empty fields are bad input


def test_login_limiter_memory_is_bounded():
    clock = Clock()
    limiter = accounts.LoginLimiter(per_user=2, per_address=1000, window=60, max_keys=100,
                                    clock=clock)
    for i in range(5000):
        limiter.failed(f"user{i}", f"10.0.{i // 250}.{i % 250}")
    assert len(limiter) <= 200
    limiter.failed("user4999", "10.0.0.1")
    assert limiter.retry_after("USER4999", "10.9.9.9") == 60  # user names: case-insensitive
    limiter.succeeded("user4999")
    assert limiter.retry_after("user4999", "10.9.9.9") is None


# -- open mode ------------------------------------------------------------------------------
def test_open_mode_only_on_loopback_without_users(wh):
    loopback = TestClient(small_app(wh, listen_host="127.0.0.1"), base_url="http://127.0.0.1")
    assert loopback.post("/t/admin").json() == {"name": "anonymous"}
    assert loopback.get("/t/read").json()["via"] == "open"
    assert loopback.post("/t/admin", headers={"Origin": "http://127.0.0.1"}).status_code == 200
    for foreign in ({"X-Forwarded-For": "203.0.113.9"},  # a proxy in front: nobody is local
                    {"Host": "rebound.example:8000"},  # DNS rebinding to 127.0.0.1
                    {"Origin": "https://evil.example"},  # another site's page, in a browser
                    {"Sec-Fetch-Site": "cross-site"}):
        assert loopback.post("/t/admin", headers=foreign).status_code == 401, foreign
    assert TestClient(small_app(wh, listen_host="0.0.0.0")).get("/t/read").status_code == 401
    assert TestClient(small_app(wh)).get("/t/read").status_code == 401  # "testserver"
    # The open-mode admin adds the first user through the API: open mode ends at once.
    created = loopback.post("/api/v1/auth/users",
                            json={"name": "root", "role": "admin", "password": PASSWORD})
    assert created.status_code == 201
    assert loopback.get("/t/read").status_code == 401


def test_serving_refused_on_a_public_address_without_users(wh, caplog):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org")
    message = serving_allowed(wh, "0.0.0.0")
    assert message and "no users exist" in message
    with caplog.at_level("WARNING", logger="warehouse.server.auth"):
        assert serving_allowed(wh, "127.0.0.1") is None
    assert "open mode" in caplog.text
    accounts.add_user(wh, "root", "admin", PASSWORD)
    assert serving_allowed(wh, "0.0.0.0") is None


# -- tokens through the API -----------------------------------------------------------------
def test_token_routes_self_service_and_admin(wh):
    accounts.add_user(wh, "vic", "viewer", PASSWORD)
    accounts.add_user(wh, "root", "admin", PASSWORD)
    client = TestClient(small_app(wh))
    vic = bearer(accounts.create_token(wh, "vic", "read").token)
    root = bearer(accounts.create_token(wh, "root", "admin").token)
    made = client.post("/api/v1/auth/tokens", json={"scope": "read", "expires": "1d"},
                       headers=vic)
    assert made.status_code == 201 and made.json()["token"].startswith(TOKEN_PREFIX)
    assert client.get("/t/read", headers=bearer(made.json()["token"])).status_code == 200
    assert client.post("/api/v1/auth/tokens", json={"scope": "write"},
                       headers=vic).status_code == 403
    assert client.post("/api/v1/auth/tokens", json={"scope": "read", "user": "root"},
                       headers=vic).status_code == 403
    listed = client.get("/api/v1/auth/tokens", headers=vic).json()
    assert {t["user_name"] for t in listed} == {"vic"} and all("token" not in t for t in listed)
    root_token_id = client.get("/api/v1/auth/tokens?user=root", headers=root).json()[0]["token_id"]
    assert client.delete(f"/api/v1/auth/tokens/{root_token_id}", headers=vic).status_code == 404
    assert client.delete(f"/api/v1/auth/tokens/{made.json()['token_id']}",
                         headers=root).status_code == 204
    assert client.get("/t/read", headers=bearer(made.json()["token"])).status_code == 401
    # A read-scoped token of an admin cannot mint an admin token.
    weak = bearer(accounts.create_token(wh, "root", "read").token)
    assert client.post("/api/v1/auth/tokens", json={"scope": "admin"},
                       headers=weak).status_code == 403
    assert client.get("/api/v1/auth/users", headers=weak).status_code == 403


# -- CLI ------------------------------------------------------------------------------------
def run_cli(group, args, url, stdin=None):
    result = CliRunner().invoke(group, [*args, "--url", url], input=stdin,
                                catch_exceptions=False)
    return result


def test_cli_users_and_tokens(wh):
    from warehouse.server.auth_commands import tokens, users

    url = wh.url
    wh.close()  # the CLI opens the database itself (DuckDB: one process at a time)
    added = run_cli(users, ["add", "ann", "--role", "editor", "--password-stdin"], url,
                    PASSWORD + "\n")
    assert added.exit_code == 0, added.output
    prompted = run_cli(users, ["add", "bob", "--role", "viewer"], url,
                       f"{PASSWORD}\n{PASSWORD}\n")
    assert prompted.exit_code == 0, prompted.output
    listed = run_cli(users, ["list", "--format", "json"], url)
    assert '"ann"' in listed.output and "argon2" not in listed.output
    created = CliRunner().invoke(tokens, ["create", "--user", "ann", "--scope", "write",
                                          "--expires", "30d", "--url", url])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert token.startswith(TOKEN_PREFIX)
    shown = run_cli(tokens, ["list", "--format", "json"], url)
    assert token not in shown.output and '"write"' in shown.output
    from warehouse import Warehouse

    with Warehouse(url) as again:
        token_id = accounts.authenticate_token(again, token).token_id
    assert run_cli(tokens, ["revoke", token_id], url).exit_code == 0
    assert run_cli(users, ["passwd", "bob", "--password-stdin"], url,
                   "a new password\n").exit_code == 0
    assert run_cli(users, ["remove", "bob"], url).exit_code == 0
    with Warehouse(url) as again:
        with pytest.raises(accounts.CredentialsError, match="revoked"):
            accounts.authenticate_token(again, token)
        assert list(accounts.list_users(again)["name"]) == ["ann"]


def test_cli_through_a_served_warehouse(wh, monkeypatch):
    """With an http:// URL the commands go through /api/v1/auth with WAREHOUSE_TOKEN."""
    import httpx

    from warehouse.server.auth_commands import tokens, users

    app = small_app(wh, listen_host="127.0.0.1")
    monkeypatch.setattr(httpx, "Client", lambda base_url, headers, timeout: TestClient(
        app, base_url=base_url, headers=headers))
    url = "http://127.0.0.1:8000"
    # The first user of a served DuckDB file (which no other process may open) is added
    # through the server, by a local caller in open mode.
    monkeypatch.delenv("WAREHOUSE_TOKEN", raising=False)
    assert run_cli(users, ["add", "root", "--role", "admin", "--password-stdin"], url,
                   PASSWORD + "\n").exit_code == 0
    monkeypatch.setenv("WAREHOUSE_TOKEN", "wht_not-a-token")
    refused = CliRunner().invoke(users, ["list", "--url", url])
    assert refused.exit_code != 0 and "401" in str(refused.exception)
    monkeypatch.setenv("WAREHOUSE_TOKEN", accounts.create_token(wh, "root", "admin").token)
    assert run_cli(users, ["add", "ann", "--role", "viewer", "--password-stdin"], url,
                   PASSWORD + "\n").exit_code == 0
    created = CliRunner().invoke(tokens, ["create", "--user", "ann", "--scope", "read",
                                          "--url", url])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[0]
    assert accounts.authenticate_token(wh, token).name == "ann"
    listed = run_cli(tokens, ["list", "--user", "ann", "--format", "json"], url)
    assert '"ann"' in listed.output and token not in listed.output
    token_id = accounts.authenticate_token(wh, token).token_id
    assert run_cli(tokens, ["revoke", token_id], url).exit_code == 0
    assert run_cli(users, ["passwd", "ann", "--password-stdin"], url,
                   "a new password\n").exit_code == 0
    assert accounts.check_login(wh, "ann", "a new password") is not None
    assert run_cli(users, ["remove", "ann"], url).exit_code == 0
    assert list(accounts.list_users(wh)["name"]) == ["root"]


def test_revocation_by_another_process_is_seen_after_the_cache_ttl(wh, monkeypatch):
    """Another process revoking straight in the database (simulated by SQL here) is seen
    once the in-process memory of the lookup is older than cache.TTL."""
    from warehouse.accounts import cache

    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    made = accounts.create_token(wh, "ann", "read")
    assert accounts.authenticate_token(wh, made.token).name == "ann"  # now remembered
    with wh.engine.begin() as conn:
        conn.execute(text("UPDATE api_tokens SET revoked_at = :now WHERE token_id = :id"),
                     {"now": datetime.now(UTC), "id": made.token_id})
    monkeypatch.setattr(cache, "TTL", 0.0)
    with pytest.raises(accounts.CredentialsError, match="revoked"):
        accounts.authenticate_token(wh, made.token)


@pytest.mark.parametrize("table", ["users", "api_tokens", "web_sessions"])
def test_read_only_sql_cannot_read_the_credentials_tables(wh, table):
    """A viewer may run read-only SQL; password hashes and digests stay out of its reach."""
    from warehouse.errors import ReadOnlyError

    accounts.add_user(wh, "ann", "viewer", PASSWORD)
    with pytest.raises(ReadOnlyError):
        wh.sql(f"SELECT * FROM {table}")
    with pytest.raises(ReadOnlyError):
        wh.sql(f"SELECT count(*) AS n FROM recipes WHERE EXISTS (SELECT 1 FROM {table})")


def test_grant_analyst(wh):
    """PostgreSQL: the role reads the analyst tables, never the credentials; DuckDB: a clear
    refusal (it has no roles)."""
    from warehouse.server.auth_commands import grant

    result = CliRunner().invoke(grant, ["analyst", "grafana_reader", "--url", wh.url])
    if wh.backend.capabilities.single_writer:  # the embedded engine has no database roles
        assert result.exit_code != 0
        assert "roles" in f"{result.output} {result.exception}"
        return
    assert result.exit_code == 0, result.output
    with wh.engine.connect() as conn:
        may = {table: conn.execute(text("SELECT has_table_privilege('grafana_reader', :t, "
                                        "'SELECT')"), {"t": table}).scalar_one()
               for table in ("runs", "points", "users", "api_tokens", "web_sessions")}
    assert may == {"runs": True, "points": True, "users": False, "api_tokens": False,
                   "web_sessions": False}
