"""``/ws``: live updates for the dashboard pages, one WebSocket per page (docs/dashboard.md).

Protocol (JSON text frames):

- page -> server: ``{"type": "subscribe", "kinds": ["runs", "steps", "points"],
  "recipes": [...], "run_ids": [...], "metrics": [...]}`` (sent again to change it); an
  empty or missing list means "any".
- server -> page: ``{"type": "hello", "user": ..., "role": ...}`` once;
  ``{"type": "change", "kinds", "metrics", "run_ids", "recipes", "statuses", "start",
  "end", "changes", "truncated"}``: the changes that match — the first at once, then those
  arriving within ``COALESCE_S`` of a message merged into one (a burst is a few messages);
  ``{"type": "resync"}`` when this client fell behind and lost changes (the page reloads
  its data); ``{"type": "ping"}`` when idle;
  ``{"type": "error", "status": 401|403, "detail": ...}`` then close;
  ``{"type": "error", "status": 429, "detail": ..., "retry_after": s}`` then close with code
  1013 (Try Again Later) when the server's or the principal's limit of open sockets is
  reached (:class:`ConnectionLimits`; the page says so and backs off).

Memory stays bounded whatever the client does: each connection reads the change feed through
its own bounded :class:`~warehouse.changes.Subscription` (oldest dropped, then a resync); a
merged message carries at most ``MAX_IDS`` ids per list; a send that does not finish within
``SEND_TIMEOUT_S`` closes the connection (the page reconnects and reloads).

Authentication follows the API's rules (token or session cookie, open mode on loopback);
every role may read. A browser connection from another site is refused (its Origin must
match the Host), since the session cookie would otherwise let any page listen in.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import OrderedDict
from urllib.parse import urlsplit

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect

from warehouse.changes import KINDS, Change
from warehouse.server.auth import Principal, authenticate_connection

log = logging.getLogger("warehouse.server.ws")

QUEUE_SIZE = 256  # changes held per connection before the oldest are dropped (-> resync)
COALESCE_S = 0.05  # changes within this long after a message are merged into the next one
MAX_IDS = 500  # ids per list in one message; beyond: truncated (the page reloads all)
SEND_TIMEOUT_S = 10.0  # a client that cannot take a message this long is dropped
PING_S = 25.0  # idle keep-alive
REAUTH_S = 300.0  # credentials are checked again this often (sessions expire, are revoked)
MAX_MESSAGE_BYTES = 16_384  # a subscribe message is small
MEMO_ENTRIES = 256  # merged messages remembered for other pages of the same shape
#: Open sockets beyond a limit are closed with this code: 1013 "Try Again Later" (RFC 6455
#: registry, https://www.iana.org/assignments/websocket) — the page backs off and retries.
BUSY_CLOSE_CODE = 1013
BUSY_RETRY_S = 10  # the least time a refused page waits before trying again


class ConnectionLimits:
    """Open sockets of one app, bounded per server and per principal (each socket holds a
    queue and two tasks: without a bound, one user's reloading tabs or a script could take
    the server's memory). Used from the event loop only: no lock needed. Open mode's
    anonymous admin (loopback only, no users) counts only against the server's limit."""

    def __init__(self, total: int, per_principal: int):
        self.total = total
        self.per_principal = per_principal
        self.open = 0
        self.by_principal: dict[str, int] = {}

    @staticmethod
    def _key(principal: Principal) -> str | None:
        return None if principal.via == "open" else principal.name

    def acquire(self, principal: Principal) -> str | None:
        """Count a new socket of ``principal``; or why it is refused (nothing counted)."""
        if self.open >= self.total:
            return f"too many live connections: this server holds at most {self.total}"
        key = self._key(principal)
        if key is not None and self.by_principal.get(key, 0) >= self.per_principal:
            return (f"too many live connections: {principal.name!r} may hold at most "
                    f"{self.per_principal} (close other dashboard tabs)")
        self.open += 1
        if key is not None:
            self.by_principal[key] = self.by_principal.get(key, 0) + 1
        return None

    def release(self, principal: Principal) -> None:
        """Forget a socket counted by :meth:`acquire`."""
        self.open -= 1
        key = self._key(principal)
        if key is not None:
            left = self.by_principal.pop(key) - 1
            if left:
                self.by_principal[key] = left


def limits_of(app) -> ConnectionLimits:
    """The app's :class:`ConnectionLimits`, made on first use from ``app.state.settings``
    (``ws_max_connections``, ``ws_max_per_principal``)."""
    limits = getattr(app.state, "ws_limits", None)
    if limits is None:
        settings = getattr(app.state, "settings", None)
        limits = ConnectionLimits(getattr(settings, "ws_max_connections", 1000),
                                  getattr(settings, "ws_max_per_principal", 100))
        app.state.ws_limits = limits
    return limits


class Interest:
    """What one page shows: a change matches when its kind is wanted and it names one of
    the page's recipes / runs / metrics (an empty filter matches everything)."""

    def __init__(self, message: dict | None = None):
        message = message or {}
        self.kinds = self._names(message, "kinds") or set(KINDS)
        unknown = self.kinds - set(KINDS)
        if unknown:
            raise ValueError(f"kinds: unknown {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.recipes = self._names(message, "recipes")
        self.run_ids = self._names(message, "run_ids")
        self.metrics = self._names(message, "metrics")
        #: Equal for pages that want the same: they get the same messages (MessageMemo).
        self.key = tuple(frozenset(names) for names in (self.kinds, self.recipes,
                                                         self.run_ids, self.metrics))

    @staticmethod
    def _names(message: dict, key: str) -> set[str]:
        value = message.get(key) or []
        if not isinstance(value, list) or len(value) > 1000 or not all(
                isinstance(v, str) and len(v) <= 500 for v in value):
            raise ValueError(f"{key}: expected a list of at most 1000 strings")
        return set(value)

    def matches(self, change: Change) -> bool:
        if change.kind not in self.kinds:
            return False
        if change.truncated:
            return True  # ids were left out: it may concern us
        if change.kind == "points":
            return not self.metrics or bool(self.metrics & set(change.metrics))
        if self.run_ids:
            return bool(self.run_ids & set(change.run_ids))
        if self.recipes and change.recipes:
            return bool(self.recipes & set(change.recipes))
        return True  # step changes carry no recipe: the page checks its runs


def merge(changes: list[Change]) -> dict:
    """One ``change`` message for a burst of matching changes."""
    def union(attr: str) -> tuple[list[str], bool]:
        seen = dict.fromkeys(v for c in changes for v in getattr(c, attr))
        values = [str(v) for v in seen]
        return values[:MAX_IDS], len(values) > MAX_IDS

    message: dict = {"type": "change", "changes": len(changes),
                     "kinds": sorted({c.kind for c in changes})}
    truncated = any(c.truncated for c in changes)
    for attr in ("metrics", "run_ids", "recipes", "statuses"):
        message[attr], cut = union(attr)
        truncated = truncated or cut
    starts = [c.start for c in changes if c.start is not None]
    ends = [c.end for c in changes if c.end is not None]
    message["start"] = min(starts).isoformat() if starts else None
    message["end"] = max(ends).isoformat() if ends else None
    message["truncated"] = truncated
    return message


class MessageMemo:
    """The text of the message for a burst of changes, built once per subscription shape:
    the pages that want the same (an Interest key) and drained the same changes get the
    same text, so a write seen by 100 open tabs is merged and encoded once, not 100 times.
    Used from the event loop only; holds the last :data:`MEMO_ENTRIES` messages (and their
    changes, so an id of a freed change is never mistaken for a new one)."""

    def __init__(self):
        self._texts: OrderedDict[tuple, tuple[tuple[Change, ...], str]] = OrderedDict()

    def text(self, interest: Interest, changes: list[Change]) -> str:
        key = (interest.key, tuple(map(id, changes)))
        entry = self._texts.get(key)
        if entry is not None and all(a is b for a, b in zip(entry[0], changes, strict=True)):
            return entry[1]
        text = json.dumps(merge(changes))
        self._texts[key] = (tuple(changes), text)
        while len(self._texts) > MEMO_ENTRIES:
            self._texts.popitem(last=False)
        return text


def memo_of(app) -> MessageMemo:
    """The app's :class:`MessageMemo`, made on first use."""
    memo = getattr(app.state, "ws_messages", None)
    if memo is None:
        memo = app.state.ws_messages = MessageMemo()
    return memo


def _same_origin(ws: WebSocket) -> bool:
    origin = ws.headers.get("origin")
    if origin is None:
        return True  # not a browser (browsers always send Origin on a WebSocket)
    return urlsplit(origin).netloc.lower() == ws.headers.get("host", "").lower()


async def _identify(ws: WebSocket):
    """The caller's principal, or an (status, detail) error."""
    try:
        return await authenticate_connection(ws), None
    except HTTPException as exc:
        return None, (exc.status_code, exc.detail)


class Connection:
    """One page's socket: reads subscribe messages, pushes merged changes."""

    def __init__(self, ws: WebSocket):
        self.ws = ws
        self.interest = Interest()
        self.wakeup = asyncio.Event()
        self.loop = asyncio.get_running_loop()
        self.sub = ws.app.state.changes.subscribe(maxsize=QUEUE_SIZE, wake=self._wake)
        self.messages = memo_of(ws.app)
        self.seen_dropped = 0
        self.sent_at = float("-inf")  # when the last change message went out

    def _wake(self) -> None:  # the writer's thread: must not block
        self.loop.call_soon_threadsafe(self.wakeup.set)

    async def send(self, message: dict | str) -> None:
        text = message if isinstance(message, str) else json.dumps(message)
        # asyncio.timeout rather than wait_for: no task made per message and client.
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await self.ws.send_text(text)
        except RuntimeError as exc:
            # The client closed while a push was on its way: the ASGI server refuses a send
            # after the close ("Unexpected ASGI message 'websocket.send'"). A disconnect.
            raise WebSocketDisconnect(code=1006, reason=str(exc)) from None

    async def receive(self) -> None:
        while True:
            text = await self.ws.receive_text()
            try:
                if len(text) > MAX_MESSAGE_BYTES:
                    raise ValueError(f"message longer than {MAX_MESSAGE_BYTES} bytes")
                message = json.loads(text)
                if not isinstance(message, dict) or message.get("type") != "subscribe":
                    raise ValueError("expected {\"type\": \"subscribe\", ...}")
                self.interest = Interest(message)
            except ValueError as exc:
                await self.send({"type": "error", "status": 400, "detail": str(exc)})
                continue
            await self.send({"type": "subscribed"})

    async def push(self) -> None:
        checked = self.loop.time()
        while True:
            try:
                await asyncio.wait_for(self.wakeup.wait(), PING_S)
                woken = True
            except TimeoutError:
                woken = False
            if self.loop.time() - checked >= REAUTH_S:
                checked = self.loop.time()
                if (await _identify(self.ws))[0] is None:  # expired, revoked, user removed
                    await self.send({"type": "error", "status": 401,
                                     "detail": "credentials expired: log in again"})
                    return
            if not woken:
                await self.send({"type": "ping"})
                continue
            # Leading edge at once (an isolated write shows without delay); within
            # COALESCE_S of the last message, wait out the window so a burst goes as one.
            wait = self.sent_at + COALESCE_S - self.loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.wakeup.clear()
            changes = self.sub.drain()
            if self.sub.dropped != self.seen_dropped:
                self.seen_dropped = self.sub.dropped
                await self.send({"type": "resync", "reason": "changes were dropped"})
                continue
            matching = [c for c in changes if self.interest.matches(c)]
            if matching:
                await self.send(self.messages.text(self.interest, matching))
                self.sent_at = self.loop.time()

    def close(self) -> None:
        self.sub.close()


def router() -> APIRouter:
    """The ``/ws`` route."""
    live = APIRouter()

    @live.websocket("/ws")
    async def websocket(ws: WebSocket):
        if not _same_origin(ws):
            await ws.close(code=1008, reason="cross-site WebSocket refused")
            return
        principal, error = await _identify(ws)
        await ws.accept()
        if principal is None or "read" not in principal.scopes:
            status, detail = error or (403, "the read scope is needed")
            await ws.send_text(json.dumps({"type": "error", "status": status, "detail": detail}))
            await ws.close(code=4000 + status)
            return
        limits = limits_of(ws.app)
        refusal = limits.acquire(principal)
        if refusal is not None:
            await ws.send_text(json.dumps({"type": "error", "status": 429, "detail": refusal,
                                           "retry_after": BUSY_RETRY_S}))
            # The close reason is at most 123 bytes (RFC 6455 5.5): the message has the rest.
            await ws.close(code=BUSY_CLOSE_CODE, reason="too many live connections")
            return
        try:
            connection = Connection(ws)
        except BaseException:
            limits.release(principal)
            raise
        tasks = []
        try:
            await connection.send({"type": "hello", "user": principal.name,
                                   "role": principal.role})
            tasks = [asyncio.create_task(connection.receive()),
                     asyncio.create_task(connection.push())]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                exc = task.exception()
                if exc is not None and not isinstance(exc, WebSocketDisconnect | TimeoutError):
                    log.warning("websocket closed by %s: %s", type(exc).__name__, exc)
        except (WebSocketDisconnect, TimeoutError):
            pass
        finally:
            for task in tasks:
                task.cancel()
            limits.release(principal)  # first: a test sees the count when subscribers drop
            connection.close()
            with contextlib.suppress(Exception):
                await ws.close()

    return live
