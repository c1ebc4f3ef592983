"""Auth through a real ``warehouse serve`` process (DuckDB file and PostgreSQL): open mode on
loopback until the first user, refusal of a public address without users, tokens, login
cookies and CSRF over real HTTP, and the users/tokens CLI from another process."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from tests.server.conftest import free_port, start_serve, wait_ready
from warehouse import Warehouse, accounts

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


def cli(*args: str, url: str, token: str | None = None, stdin: str | None = None):
    env = {**os.environ, "WAREHOUSE_URL": url}
    env.pop("WAREHOUSE_TOKEN", None)
    if token:
        env["WAREHOUSE_TOKEN"] = token
    return subprocess.run([sys.executable, "-m", "warehouse.cli", *args], env=env, input=stdin,
                          capture_output=True, text=True, timeout=120)


class Served:
    """``warehouse serve`` on a free loopback port, ready when /readyz answers."""

    def __init__(self, database_url: str, log_path, host: str = "127.0.0.1"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.proc = start_serve(["--url", database_url, "--host", host, "--port",
                                 str(self.port), "--no-jobs", "--log-level", "info"], log_path)

    def ready(self) -> Served:
        wait_ready(self.proc, self.url, self.log_path)
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(30)


@pytest.fixture
def empty_url(database_url):
    """A migrated warehouse with no users, closed so that the server can own it."""
    Warehouse(database_url).close()
    return database_url


def test_open_mode_until_the_first_user_then_tokens(empty_url, tmp_path):
    server = Served(empty_url, tmp_path / "serve.log").ready()
    try:
        assert "open mode" in server.log()
        assert httpx.get(server.url + "/api/v1/info").status_code == 200  # anonymous admin
        added = cli("users", "add", "root", "--role", "admin", "--password-stdin",
                    url=server.url, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stderr
        refused = httpx.get(server.url + "/api/v1/info")
        assert refused.status_code == 401
        assert refused.headers["content-type"].startswith("application/problem+json")

        # An admin logs in over HTTP, makes a token with the session (CSRF token required).
        browser = httpx.Client(base_url=server.url)
        login = browser.post("/api/v1/auth/login", json={"name": "root", "password": PASSWORD})
        assert login.status_code == 200 and "httponly" in login.headers["set-cookie"].lower()
        assert browser.get("/api/v1/auth/whoami").json()["via"] == "session"
        body = {"scope": "admin", "expires": "1d", "name": "ops"}
        assert browser.post("/api/v1/auth/tokens", json=body).status_code == 403
        made = browser.post("/api/v1/auth/tokens", json=body,
                            headers={"X-CSRF-Token": login.json()["csrf_token"]})
        assert made.status_code == 201
        token = made.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(server.url + "/api/v1/info", headers=auth).status_code == 200

        # The CLI from another process, through the server, with that token.
        listed = cli("tokens", "list", "--format", "json", url=server.url, token=token)
        assert listed.returncode == 0 and '"ops"' in listed.stdout and token not in listed.stdout
        anonymous = cli("users", "list", url=server.url)
        assert anonymous.returncode != 0 and "401" in anonymous.stderr
        revoked = cli("tokens", "revoke", made.json()["token_id"], url=server.url, token=token)
        assert revoked.returncode == 0, revoked.stderr
        assert httpx.get(server.url + "/api/v1/info", headers=auth).status_code == 401
    finally:
        server.stop()
    assert PASSWORD not in server.log() and token not in server.log()


def test_public_address_without_users_is_refused(empty_url, tmp_path):
    server = Served(empty_url, tmp_path / "serve.log", host="0.0.0.0")
    assert server.proc.wait(90) != 0
    assert "no users exist" in server.log()
    with Warehouse(empty_url) as wh:
        accounts.add_user(wh, "root", "admin", PASSWORD)
    server = Served(empty_url, tmp_path / "serve2.log", host="0.0.0.0").ready()
    try:
        assert httpx.get(server.url + "/api/v1/info").status_code == 401
    finally:
        server.stop()
