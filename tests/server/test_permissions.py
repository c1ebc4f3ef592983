"""The permission matrix of the real app: each credential x each API route -> allowed or 403,
missing, expired and revoked credentials -> 401, on DuckDB and PostgreSQL.

Routes and the scope each requires are read from the app itself (``route_scopes``), so a
route added later is in the matrix at once — and one added without ``require`` fails
``test_every_route_is_guarded`` unless it is deliberately public.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from starlette.testclient import TestClient

from warehouse import accounts
from warehouse.server.app import create_app
from warehouse.server.auth import ROLE_SCOPES, route_scopes

PASSWORD = "correct horse battery"
#: Routes anyone may call without marking them ``Depends(public)``: liveness, readiness.
PUBLIC = {("GET", "/healthz"), ("GET", "/readyz")}
#: State-changing routes that only need "read": read-only SQL (a query in a body), and a
#: caller's own tokens (never with more scope than the caller has: test_auth.py).
READ_CHANGES = {("POST", "/api/v1/sql"), ("POST", "/api/v1/auth/tokens"),
                ("DELETE", "/api/v1/auth/tokens/{token_id}")}
#: What only admins may do: run jobs, change retention and chunks, manage users.
ADMIN_ONLY = re.compile(r"^(POST /api/v1/jobs/|POST /api/v1/rollups/|(PUT|DELETE) "
                        r"/api/v1/retention|DELETE /api/v1/chunks|\w+ /api/v1/auth/users)")
#: Credentials: (user, role, token scope).
CREDENTIALS = [("vic", "viewer", "read"), ("ed", "editor", "write"), ("ed", "editor", "read"),
               ("root", "admin", "admin"), ("root", "admin", "read")]


@pytest.fixture
def served(wh):
    """The real app over ``wh`` with a token per credential, plus an expired and a revoked."""
    for user, role in dict((user, role) for user, role, _ in CREDENTIALS).items():
        accounts.add_user(wh, user, role, PASSWORD)
    tokens = {(user, scope): accounts.create_token(wh, user, scope, expires="1d").token
              for user, _, scope in CREDENTIALS}
    expired = accounts.create_token(wh, "root", "admin", expires="1h",
                                    now=datetime.now(UTC) - timedelta(hours=2)).token
    revoked = accounts.create_token(wh, "root", "admin")
    accounts.revoke_token(wh, revoked.token_id)
    client = TestClient(create_app(wh, listen=False), raise_server_exceptions=False)
    return client, tokens, {"expired": expired, "revoked": revoked.token}


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "nosuch", path)


def call(client, method: str, path: str, token: str | None = None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, concrete(path), headers=headers)


def test_every_route_is_guarded(served):
    client, _, _ = served
    routes = route_scopes(client.app)
    assert len(routes) > 20  # the real app, not an empty one
    unguarded = {(m, p) for m, p, scope in routes if scope is None} - PUBLIC
    assert not unguarded, f"routes without require(): {sorted(unguarded)}"
    public = {(m, p) for m, p, scope in routes if scope == "public"}
    assert {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/logout")} <= public
    for method, path, scope in routes:
        if scope in (None, "public"):
            continue
        if ADMIN_ONLY.match(f"{method} {path}"):
            assert scope == "admin", (method, path, scope)
        elif method not in ("GET", "HEAD") and (method, path) not in READ_CHANGES:
            assert scope in ("write", "admin"), f"{method} {path} changes data with {scope!r}"


def test_permission_matrix(served):
    client, tokens, _ = served
    outcomes = {}
    for method, path, scope in route_scopes(client.app):
        if scope in (None, "public"):
            continue
        for user, role, token_scope in CREDENTIALS:
            allowed = scope in (accounts.scopes_of(token_scope) & ROLE_SCOPES[role])
            response = call(client, method, path, tokens[user, token_scope])
            outcomes[method, path, role, token_scope] = response.status_code
            if allowed:
                assert response.status_code not in (401, 403), (
                    method, path, role, token_scope, response.text)
            else:
                assert response.status_code == 403, (method, path, role, token_scope)
                assert response.headers["content-type"].startswith("application/problem+json")
    # The matrix exercised each answer: a viewer is refused writes and jobs, an admin is not.
    assert outcomes["POST", "/api/v1/points", "viewer", "read"] == 403
    assert outcomes["POST", "/api/v1/jobs/{name}/run", "viewer", "read"] == 403
    assert outcomes["POST", "/api/v1/jobs/{name}/run", "editor", "write"] == 403
    assert outcomes["POST", "/api/v1/jobs/{name}/run", "admin", "read"] == 403
    assert outcomes["POST", "/api/v1/points", "editor", "write"] not in (401, 403)
    assert outcomes["GET", "/api/v1/info", "viewer", "read"] == 200


@pytest.mark.parametrize("credential", ["none", "expired", "revoked", "garbage"])
def test_bad_credentials_are_401_on_every_guarded_route(served, credential):
    client, _, bad = served
    token = {"none": None, "garbage": "wht_" + "A" * 43}.get(credential) or bad.get(credential)
    for method, path, scope in route_scopes(client.app):
        if scope in (None, "public"):
            continue
        response = call(client, method, path, token)
        assert response.status_code == 401, (method, path, credential, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.headers["www-authenticate"].startswith("Bearer")


def test_public_routes_answer_without_credentials(served):
    client, _, _ = served
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.post("/api/v1/auth/logout").status_code == 204
    response = client.post("/api/v1/auth/login", json={"name": "vic", "password": "wrong pw"})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
