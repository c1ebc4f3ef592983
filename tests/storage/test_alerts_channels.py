"""Alert channels against real local receivers on both engines: an SMTP server (aiosmtpd)
and an HTTP server in a thread; HMAC signatures verified; a channel that is down is retried,
recorded as failed, and never holds up evaluation or the other channels."""

from __future__ import annotations

import json
import socket
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from warehouse.alerts import AlertManager, NotifyConfig, verify_signature
from warehouse.alerts.channels import SIGNATURE_HEADER, TIMESTAMP_HEADER, Channel
from warehouse.alerts.notify import Dispatcher, Notifier
from warehouse.alerts.store import notifications

T0 = pd.Timestamp("2026-11-25T00:00:00Z")
SECRET = "hook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """A local HTTP server recording each POST (headers and body)."""

    def __init__(self, status: int = 200):
        self.requests: list[tuple[dict, bytes]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.requests.append((dict(self.headers), body))
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def smtp():
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self):
            self.messages = []

        async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
            self.messages.append((envelope.rcpt_tos, envelope.content.decode()))
            return "250 OK"

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


class Hanging(Channel):
    """A channel that blocks until released: it must not hold up anything else."""

    kind = "hanging"

    def __init__(self):
        super().__init__("hanging")
        self.release, self.entered = threading.Event(), threading.Event()

    def send(self, message):
        self.entered.set()
        self.release.wait(30)


def firing_manager(wh, config: dict, *, retries=2):
    clock = [T0.to_pydatetime() + timedelta(seconds=1)]
    wh.write_points(pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}],
                                  "ts": [T0], "value": [99.0]}))
    notify = NotifyConfig.from_dict(config)
    notifier = Notifier(wh, notify, dispatcher=Dispatcher(wh, retries=retries, backoff=0.01,
                                                          clock=lambda: clock[0]))
    am = AlertManager(wh, notify=notifier, clock=lambda: clock[0])
    am.add_rule({"name": "cpu_high", "kind": "threshold", "metric": "cpu", "op": ">",
                 "threshold": 90, "annotations": {"summary": "cpu {value} on {labels.host}"}})
    return am


def route(receivers: list[dict]) -> dict:
    return {"receivers": receivers,
            "routes": [{"receiver": r["name"], "group_wait": "0s", "continue": True}
                       for r in receivers]}


def test_webhook_signed_and_slack(wh, receiver):
    slack = Receiver()
    try:
        am = firing_manager(wh, route([
            {"name": "hook", "channels": [{"type": "webhook", "url": receiver.url,
                                           "secret": SECRET}]},
            {"name": "chat", "channels": [{"type": "slack", "url": slack.url}]}]))
        am.evaluate("cpu_high")
        assert am.notifier.dispatcher.wait(10)
        (headers, body), = receiver.requests
        assert verify_signature(SECRET, headers[TIMESTAMP_HEADER], body,
                                headers[SIGNATURE_HEADER])
        assert not verify_signature("wrong", headers[TIMESTAMP_HEADER], body,
                                    headers[SIGNATURE_HEADER])
        payload = json.loads(body)
        assert payload["status"] == "firing" and payload["alerts"][0]["labels"]["host"] == "a"
        (_, text), = slack.requests
        assert "cpu 99 on a" in json.loads(text)["text"]
    finally:
        slack.close()


def test_email_over_smtp(wh, smtp):
    controller, inbox = smtp
    am = firing_manager(wh, route([{"name": "mail", "channels": [{
        "type": "email", "host": "127.0.0.1", "port": controller.port,
        "sender": "alerts@example.org", "to": ["ops@example.org"]}]}]))
    am.evaluate("cpu_high")
    assert am.notifier.dispatcher.wait(10)
    (rcpt, content), = inbox.messages
    assert rcpt == ["ops@example.org"]
    assert "[FIRING:1] cpu_high" in content and "cpu 99 on a" in content


def test_channel_down_is_retried_then_recorded_and_others_go_on(wh, receiver, tmp_path):
    down = f"http://127.0.0.1:{free_port()}/nothing-listens"
    log = tmp_path / "alerts.jsonl"
    am = firing_manager(wh, route([
        {"name": "broken", "channels": [{"type": "webhook", "url": down}]},
        {"name": "ok", "channels": [{"type": "webhook", "url": receiver.url},
                                    {"type": "file", "path": str(log)}]}]), retries=2)
    am.evaluate("cpu_high")
    assert am.notifier.dispatcher.wait(10)
    attempts = notifications(wh).sort_values(["receiver", "attempt"])
    broken = attempts[attempts["receiver"] == "broken"]
    assert broken["status"].tolist() == ["retrying", "retrying", "failed"]
    assert broken["error"].str.contains("cannot reach").all()
    assert attempts[attempts["receiver"] == "ok"]["status"].tolist() == ["sent", "sent"]
    assert len(receiver.requests) == 1 and len(log.read_text().splitlines()) == 1


def test_hanging_channel_does_not_block_evaluation(wh, receiver):
    hanging = Hanging()
    am = firing_manager(wh, route([{"name": "hook", "channels": [
        {"type": "webhook", "url": receiver.url}]}]))
    am.notifier.config.receivers["hook"].insert(0, hanging)
    am.evaluate("cpu_high")  # returns although the first channel never finishes
    assert hanging.entered.wait(10) and not hanging.release.is_set()
    deadline = time.monotonic() + 10
    while not receiver.requests and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(receiver.requests) == 1  # the other channel was not held up
    assert not am.notifier.dispatcher.wait(0.05)  # the hanging delivery is still pending
    assert am.state()["state"].tolist() == ["firing"]
    hanging.release.set()
    assert am.notifier.dispatcher.wait(10)


def test_background_evaluator_follows_the_change_feed(wh, receiver):
    import uuid

    wh.alerts.set_notify(NotifyConfig.from_dict(route([
        {"name": "hook", "channels": [{"type": "webhook", "url": receiver.url,
                                       "secret": SECRET}]}])))
    wh.alerts.add_rule({"name": "etl_failed", "kind": "run_failed", "recipe": "etl",
                        "interval": "1h", "annotations": {"summary": "failed: {run_url}"}})
    wh.alerts.start(tick=0.05)
    try:
        run_id = str(uuid.uuid4())
        now = pd.Timestamp.now(tz="UTC")
        wh.write_runs([{"run_id": run_id, "recipe": "etl", "status": "failed",
                        "started_at": now - pd.Timedelta("1s"), "finished_at": now}])
        deadline = time.monotonic() + 20
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        wh.alerts.stop()
    (headers, body), = receiver.requests
    assert verify_signature(SECRET, headers[TIMESTAMP_HEADER], body, headers[SIGNATURE_HEADER])
    alert, = json.loads(body)["alerts"]
    assert alert["labels"]["run_id"] == run_id
    assert alert["annotations"]["summary"] == f"failed: /runs/{run_id}"
    assert wh.alerts.errors == {}
