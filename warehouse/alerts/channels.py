"""Notification channels: webhook (JSON, HMAC-SHA256 signed), Slack-compatible incoming
webhook, email over SMTP, and a file (JSON lines). A channel's :meth:`Channel.send` raises
on failure; retries, backoff and the record of attempts are the dispatcher's job
(:mod:`warehouse.alerts.notify`)."""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlparse

SIGNATURE_HEADER = "X-Warehouse-Signature"
TIMESTAMP_HEADER = "X-Warehouse-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``sha256=<hex>``: HMAC-SHA256 with ``secret`` over ``timestamp + "." + body`` (the
    timestamp is signed too, so a receiver can refuse replays of old messages)."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, signature: str,
                     max_age_s: float | None = 300.0, now: float | None = None) -> bool:
    """What a receiver does: recompute the signature (constant-time compare) and check the
    timestamp is recent."""
    if max_age_s is not None:
        try:
            age = (now if now is not None else time.time()) - float(timestamp)
        except ValueError:
            return False
        if abs(age) > max_age_s:
            return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature or "")


class Channel(ABC):
    """Where a receiver's notifications go. ``name`` identifies it in the record."""

    kind = "channel"

    def __init__(self, name: str | None = None):
        self.name = name or self.kind

    @abstractmethod
    def send(self, message: dict) -> None:
        """Deliver one notification (Alertmanager-like JSON document); raise on failure."""


def _check_url(url: str, field: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ValueError(f"{field}: {url!r} is not an http(s) URL")
    return url


def _post(url: str, body: bytes, headers: dict, timeout: float) -> None:
    request = urllib.request.Request(url, data=body, method="POST",
                                     headers={"Content-Type": "application/json", **headers})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - checked scheme
            response.read(1024)
    except urllib.error.HTTPError as exc:
        raise ConnectionError(f"HTTP {exc.code} from {urlparse(url).netloc}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ConnectionError(f"cannot reach {urlparse(url).netloc}: {reason}") from None


class WebhookChannel(Channel):
    """POST the notification as JSON; with a ``secret``, signed (:func:`sign`) in the
    ``X-Warehouse-Signature`` header over the ``X-Warehouse-Timestamp`` header and body."""

    kind = "webhook"

    def __init__(self, url: str, *, secret: str | None = None, timeout: float = 5.0,
                 name: str | None = None):
        super().__init__(name)
        self.url = _check_url(url, "webhook url")
        self.secret, self.timeout = secret, float(timeout)

    def send(self, message: dict) -> None:
        body = json.dumps(message, sort_keys=True, default=str).encode()
        headers = {}
        if self.secret:
            stamp = f"{time.time():.3f}"
            headers = {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: sign(self.secret, stamp, body)}
        _post(self.url, body, headers, self.timeout)


class SlackChannel(Channel):
    """A Slack-compatible incoming webhook (Mattermost, Rocket.Chat...): ``{"text": ...}``."""

    kind = "slack"

    def __init__(self, url: str, *, timeout: float = 5.0, name: str | None = None):
        super().__init__(name)
        self.url, self.timeout = _check_url(url, "slack url"), float(timeout)

    def send(self, message: dict) -> None:
        body = json.dumps({"text": summary_text(message)}).encode()
        _post(self.url, body, {}, self.timeout)


class EmailChannel(Channel):
    """Email over SMTP (smtplib): one message per notification, plain text."""

    kind = "email"

    def __init__(self, *, host: str, to: list[str] | str, sender: str, port: int = 25,
                 username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout: float = 10.0, name: str | None = None):
        super().__init__(name)
        self.to = [to] if isinstance(to, str) else list(to)
        if not self.to or not all(isinstance(a, str) and "@" in a for a in self.to):
            raise ValueError(f"email to: {to!r} is not a list of addresses")
        for address in [*self.to, sender]:
            if any(c in address for c in "\r\n"):
                raise ValueError("email addresses cannot contain line breaks")
        self.host, self.port, self.sender = host, int(port), sender
        self.username, self.password = username, password
        self.starttls, self.timeout = bool(starttls), float(timeout)

    def send(self, message: dict) -> None:
        mail = EmailMessage()
        # Header values built from alert labels: line breaks are removed so a label can
        # never inject a header.
        mail["Subject"] = " ".join(subject(message).split())[:200]
        mail["From"], mail["To"] = self.sender, ", ".join(self.to)
        mail.set_content(summary_text(message) + "\n\n" + json.dumps(message, indent=2,
                                                                     default=str))
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.username:
                    smtp.login(self.username, self.password or "")
                smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise ConnectionError(f"SMTP {self.host}:{self.port}: {exc}") from None


class FileChannel(Channel):
    """Append each notification as one JSON line to a file (also a log of what was sent)."""

    kind = "file"

    def __init__(self, path: str | Path, *, name: str | None = None):
        super().__init__(name)
        self.path = Path(path)
        self._lock = threading.Lock()

    def send(self, message: dict) -> None:
        line = json.dumps(message, sort_keys=True, default=str)
        with self._lock, self.path.open("a", encoding="utf-8") as out:
            out.write(line + "\n")


def subject(message: dict) -> str:
    firing = sum(1 for a in message["alerts"] if a["status"] == "firing")
    names = sorted({a["labels"].get("alertname", "") for a in message["alerts"]})
    state = f"FIRING:{firing}" if firing else "RESOLVED"
    return f"[{state}] {', '.join(names)} {json.dumps(message.get('groupLabels', {}))}"


def summary_text(message: dict) -> str:
    """Human-readable text of a notification: one line per alert."""
    lines = [subject(message)]
    for alert in message["alerts"]:
        summary = alert["annotations"].get("summary") or ", ".join(
            f"{k}={v}" for k, v in sorted(alert["labels"].items()))
        link = f" ({alert['runURL']})" if alert.get("runURL") else ""
        lines.append(f"- {alert['status']}: {summary}{link}")
    return "\n".join(lines)


def channel_from_dict(data: dict) -> Channel:
    """A channel from configuration: ``{type: webhook|slack|email|file, ...}``."""
    data = dict(data)
    kind = data.pop("type", None)
    classes = {"webhook": WebhookChannel, "slack": SlackChannel, "email": EmailChannel,
               "file": FileChannel}
    if kind not in classes:
        raise ValueError(f"channel type {kind!r} is not one of {', '.join(classes)}")
    try:
        if kind in ("webhook", "slack"):
            return classes[kind](data.pop("url", None), **data)
        if kind == "file":
            return FileChannel(data.pop("path"), **data)
        return EmailChannel(**data)
    except (TypeError, KeyError) as exc:
        raise ValueError(f"{kind} channel: {exc}") from None
