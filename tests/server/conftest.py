"""Fixtures of the server tests: the app in-process (TestClient) and a real uvicorn server
in a thread with a RemoteWarehouse pointed at it — on DuckDB and PostgreSQL alike."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import warnings

import httpx
import pytest
import uvicorn

from warehouse.client import RemoteWarehouse
from warehouse.server.app import ServerSettings, create_app

with warnings.catch_warnings():  # starlette's notice about httpx; the client still works
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_serve(args: list[str], log_path) -> subprocess.Popen:
    """``python -m warehouse.cli serve ARGS`` with its output appended to ``log_path``."""
    with open(log_path, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "warehouse.cli", "serve", *args],
                                stdout=log, stderr=log, env={**os.environ, "WAREHOUSE_URL": ""})


def wait_ready(proc: subprocess.Popen, url: str, log_path) -> None:
    """Wait until the served warehouse at ``url`` answers /readyz (or its process died)."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"serve exited: {log_path.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"serve did not become ready: {log_path.read_text(errors='replace')[-2000:]}")


class ThreadServer:
    """uvicorn serving ``app`` on a free loopback port in a background thread."""

    def __init__(self, app):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port,
                                                    log_level="warning", lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> ThreadServer:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture
def app(wh):
    """The API app over the test's warehouse (small limits, so they can be tested)."""
    return create_app(wh, settings=ServerSettings(max_body_bytes=2_000_000,
                                                  max_json_body_bytes=1_000_000))


@pytest.fixture
def client(app):
    """An in-process client; 127.0.0.1 so the open (no users yet) mode applies."""
    with TestClient(app, base_url="http://127.0.0.1") as test_client:
        yield test_client


#: The widest token scope of each role.
ROLE_SCOPE = {"viewer": "read", "editor": "write", "admin": "admin"}


def clients_by_user(wh, users: dict[str, str], password: str) -> dict[str, TestClient]:
    """A TestClient per user of ``users`` (name -> role), each made with a bearer token of
    its role's widest scope, over one app on ``wh``; server errors come back as 500s."""
    from warehouse import accounts

    app = create_app(wh, listen=False)
    clients = {}
    for name, role in users.items():
        accounts.add_user(wh, name, role, password)
        token = accounts.create_token(wh, name, ROLE_SCOPE[role]).token
        clients[name] = TestClient(app, headers={"Authorization": f"Bearer {token}"},
                                   raise_server_exceptions=False)
    return clients


@pytest.fixture
def remote(wh):
    """(direct Warehouse, RemoteWarehouse) — the second through a real uvicorn server."""
    with ThreadServer(create_app(wh)) as server, RemoteWarehouse(server.url) as remote_wh:
        yield wh, remote_wh
