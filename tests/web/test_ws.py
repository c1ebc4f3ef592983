"""The /ws protocol without a browser, on DuckDB and PostgreSQL: only matching changes,
bursts merged, a resync for a client that fell behind, the API's authentication, and no
subscription left behind by a closed socket."""

from __future__ import annotations

import json
import time
from contextlib import ExitStack

import pandas as pd
import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

from tests.web.conftest import Served
from warehouse import accounts
from warehouse.changes import Change
from warehouse.server import ws as live
from warehouse.server.app import ServerSettings
from warehouse.server.auth import ANONYMOUS_ADMIN, Principal


def receive(socket, timeout: float = 10.0) -> dict:
    return json.loads(socket.recv(timeout=timeout))


def reply(socket) -> dict:
    """The next answer to what the client sent, past pushed changes (a flood's tail)."""
    while (message := receive(socket))["type"] in ("change", "resync", "ping"):
        pass
    return message


def until_closed_subscriptions(wh, count: int) -> int:
    deadline = time.monotonic() + 10  # closing is asynchronous on the server side
    while wh.changes.subscribers != count and time.monotonic() < deadline:
        time.sleep(0.05)
    return wh.changes.subscribers


def test_pushes_matching_changes_merged_and_resyncs(wh):
    with Served(wh) as served, connect(served.url.replace("http", "ws") + "/ws") as socket:
        assert receive(socket)["type"] == "hello"
        socket.send(json.dumps({"type": "subscribe", "kinds": ["points"], "metrics": ["a"]}))
        assert receive(socket) == {"type": "subscribed"}

        # A real write of the metric shown.
        wh.write_points(pd.DataFrame({"metric": ["a"], "labels": [{"k": "v"}],
                                      "ts": [pd.Timestamp.now(tz="UTC")], "value": [1.0]}))
        message = receive(socket)
        assert message["type"] == "change" and message["metrics"] == ["a"]
        assert message["kinds"] == ["points"] and message["start"]

        # A burst: other metrics and run changes are left out; the rest come merged.
        wh.changes.publish(Change(kind="points", metrics=("b",)))
        wh.changes.publish(Change(kind="runs", run_ids=("r",), recipes=("x",)))
        for _ in range(20):
            wh.changes.publish(Change(kind="points", metrics=("a",)))
        merged = []
        while sum(m["changes"] for m in merged) < 20:
            merged.append(receive(socket))
        assert len(merged) < 20
        assert all(m["metrics"] == ["a"] and m["kinds"] == ["points"] for m in merged)

        # A flood beyond the per-client queue: the client is told to reload.
        for _ in range(live.QUEUE_SIZE * 8):
            wh.changes.publish(Change(kind="points", metrics=("a",)))
        seen = [receive(socket)]
        while seen[-1]["type"] == "change" and len(seen) < 10:  # what came before the flood
            seen.append(receive(socket))
        assert seen[-1] == {"type": "resync", "reason": "changes were dropped"}

        socket.send("not json")
        answer = reply(socket)
        assert answer["type"] == "error" and answer["status"] == 400
        socket.send(json.dumps({"type": "subscribe", "kinds": ["nope"]}))
        assert "kinds" in reply(socket)["detail"]
    assert until_closed_subscriptions(wh, 0) == 0


def test_same_authentication_as_the_api(wh):
    accounts.add_user(wh, "viewer", "viewer", "correct horse battery")
    token = accounts.create_token(wh, "viewer", "read").token
    with Served(wh) as served:
        url = served.url.replace("http", "ws") + "/ws"
        with connect(url) as socket:
            refused = receive(socket)
            assert refused["type"] == "error" and refused["status"] == 401
        with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as socket:
            assert receive(socket) == {"type": "hello", "user": "viewer", "role": "viewer"}
        with connect(url, additional_headers={"Authorization": "Bearer wrong"}) as socket:
            assert receive(socket)["status"] == 401
        # Another site's page cannot open it with the user's cookie.
        with pytest.raises(InvalidStatus), connect(url, origin="http://evil.example"):
            pass
    assert until_closed_subscriptions(wh, 0) == 0


def test_merge_caps_id_lists():
    changes = [Change(kind="runs", run_ids=(f"r{i}",), statuses=("running",))
               for i in range(live.MAX_IDS + 5)]
    message = live.merge(changes)
    assert len(message["run_ids"]) == live.MAX_IDS and message["truncated"] is True
    assert message["statuses"] == ["running"] and message["changes"] == live.MAX_IDS + 5


def test_a_burst_is_encoded_once_per_subscription_shape():
    memo = live.MessageMemo()
    burst = [Change("points", metrics=("cpu",)), Change("points", metrics=("mem",))]
    wants_cpu = live.Interest({"kinds": ["points"], "metrics": ["cpu", "mem"]})
    same = live.Interest({"metrics": ["mem", "cpu"], "kinds": ["points"]})
    other = live.Interest({"kinds": ["points"]})
    text = memo.text(wants_cpu, burst)
    assert json.loads(text) == live.merge(burst)
    assert memo.text(same, list(burst)) is text  # another page of the same shape
    assert memo.text(other, burst) is not text
    later = [*burst, Change("points", metrics=("cpu",))]
    assert json.loads(memo.text(wants_cpu, later))["changes"] == 3  # other changes: new text


def test_open_socket_ends_when_its_credentials_are_revoked(wh, monkeypatch):
    monkeypatch.setattr(live, "REAUTH_S", 0.0)  # check on every wake-up
    accounts.add_user(wh, "viewer", "viewer", "correct horse battery")
    token = accounts.create_token(wh, "viewer", "read")
    with Served(wh) as served, connect(
            served.url.replace("http", "ws") + "/ws",
            additional_headers={"Authorization": f"Bearer {token.token}"}) as socket:
        assert receive(socket)["type"] == "hello"
        wh.changes.publish(Change(kind="runs", run_ids=("r1",)))
        assert receive(socket)["type"] == "change"
        accounts.revoke_token(wh, token.token_id)
        wh.changes.publish(Change(kind="runs", run_ids=("r2",)))
        assert receive(socket) == {"type": "error", "status": 401,
                                   "detail": "credentials expired: log in again"}
    assert until_closed_subscriptions(wh, 0) == 0


def refused_as_busy(socket) -> str:
    """The 429 error a socket over a limit gets, then its close with 1013; returns the
    detail."""
    message = receive(socket)
    assert message["type"] == "error" and message["status"] == 429, message
    assert message["retry_after"] == live.BUSY_RETRY_S
    with pytest.raises(ConnectionClosed) as closed:
        socket.recv(timeout=10)
    assert closed.value.rcvd.code == live.BUSY_CLOSE_CODE == 1013
    assert closed.value.rcvd.reason == "too many live connections"
    return message["detail"]


def test_open_sockets_are_bounded_per_server_and_per_principal(wh):
    bearer = {}
    for name in ("viewer", "editor"):
        accounts.add_user(wh, name, name, "correct horse battery")
        bearer[name] = {"Authorization": f"Bearer {accounts.create_token(wh, name, 'read').token}"}
    settings = ServerSettings(ws_max_connections=3, ws_max_per_principal=2)
    with Served(wh, settings=settings) as served, ExitStack() as stack:
        url = served.url.replace("http", "ws") + "/ws"

        def open_as(name: str):
            return stack.enter_context(connect(url, additional_headers=bearer[name]))

        viewer = [open_as("viewer"), open_as("viewer")]
        assert all(receive(s)["type"] == "hello" for s in viewer)
        assert "'viewer' may hold at most 2" in refused_as_busy(open_as("viewer"))
        editor = open_as("editor")
        assert receive(editor)["type"] == "hello"
        assert "this server holds at most 3" in refused_as_busy(open_as("editor"))

        # The open sockets still work, and a closed one frees its place.
        wh.changes.publish(Change(kind="runs", run_ids=("r1",)))
        assert receive(editor)["type"] == "change" and receive(viewer[1])["type"] == "change"
        viewer[0].close()
        assert until_closed_subscriptions(wh, 2) == 2
        assert receive(open_as("editor"))["type"] == "hello"
    assert until_closed_subscriptions(wh, 0) == 0


def test_limits_count_open_mode_only_against_the_server():
    limits = live.ConnectionLimits(total=3, per_principal=1)
    user = Principal("ann", "viewer", frozenset({"read"}))
    assert limits.acquire(ANONYMOUS_ADMIN) is None and limits.acquire(ANONYMOUS_ADMIN) is None
    assert limits.acquire(user) is None
    assert "this server holds at most 3" in limits.acquire(user)
    limits.release(ANONYMOUS_ADMIN)
    assert "'ann' may hold at most 1" in limits.acquire(user)
    limits.release(user)
    limits.release(ANONYMOUS_ADMIN)
    assert (limits.open, limits.by_principal) == (0, {})
