"""Change notification: what each committed write changed, for live dashboards and alerts.

The writer publishes one :class:`Change` per committed write to the :class:`ChangeFeed` of its
Warehouse (``wh.changes``). Subscribers read from their own bounded queue, so a slow
subscriber loses its oldest changes (counted in ``dropped``) and never blocks the writer.

On an engine that can notify other processes (PostgreSQL ``NOTIFY``), the writer also sends
:meth:`Change.to_json` inside the write's transaction; ``warehouse serve`` listens and
republishes changes whose ``origin`` is not its own feed.

>>> sub = wh.changes.subscribe()
>>> wh.write_points(frame)
>>> sub.get(timeout=1.0)
Change(kind='points', metrics=('cpu',), ...)
"""

from __future__ import annotations

import json
import queue
import threading
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

KINDS = ("points", "runs", "steps")
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
#: (https://www.postgresql.org/docs/15/sql-notify.html); leave room for the envelope.
MAX_PAYLOAD_BYTES = 7900


@dataclass(frozen=True)
class Change:
    """One committed write: what kind of rows, which series/metrics, what time range, which
    runs and statuses. ``truncated`` means the id lists were too long to carry and were left
    out (a subscriber should then refresh everything of ``metrics`` or of the kind)."""

    kind: str
    rows: int = 0
    series_ids: tuple[int, ...] = ()
    metrics: tuple[str, ...] = ()
    start: datetime | None = None  # earliest ts (points) or started_at (runs, steps) written
    end: datetime | None = None  # latest one (inclusive)
    run_ids: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    recipes: tuple[str, ...] = ()  # runs only
    origin: str = ""  # the feed that published it first (skips echoes of our own NOTIFY)
    truncated: bool = False
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"change kind must be one of {', '.join(KINDS)}, not {self.kind!r}")

    def to_json(self, limit: int = MAX_PAYLOAD_BYTES) -> str:
        """Compact JSON; the id lists are dropped (``truncated``) if it would exceed ``limit``."""
        text = _dumps(self)
        if len(text.encode()) > limit:
            text = _dumps(replace(self, series_ids=(), run_ids=(), truncated=True))
        if len(text.encode()) > limit:
            text = _dumps(replace(self, series_ids=(), run_ids=(), metrics=(), statuses=(),
                                  recipes=(), truncated=True))
        return text

    @classmethod
    def from_json(cls, text: str | bytes) -> Change:
        """The change a :meth:`to_json` payload describes; ValueError if it is not one."""
        try:
            data = json.loads(text)
            kind = data["kind"]
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"not a change payload: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("not a change payload: expected a JSON object")
        return cls(
            kind=kind, rows=int(data.get("rows") or 0),
            series_ids=tuple(int(s) for s in data.get("series_ids") or ()),
            metrics=tuple(str(m) for m in data.get("metrics") or ()),
            start=_parse_time(data.get("start")), end=_parse_time(data.get("end")),
            run_ids=tuple(str(r) for r in data.get("run_ids") or ()),
            statuses=tuple(str(s) for s in data.get("statuses") or ()),
            recipes=tuple(str(r) for r in data.get("recipes") or ()),
            origin=str(data.get("origin") or ""), truncated=bool(data.get("truncated")),
            at=_parse_time(data.get("at")) or datetime.now(UTC))


def _dumps(change: Change) -> str:
    data = asdict(change)
    for key in ("start", "end", "at"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False)


def _parse_time(value) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


class Subscription:
    """One subscriber's bounded queue of changes. Iterate it, or call :meth:`get`."""

    def __init__(self, feed: ChangeFeed, maxsize: int, wake: Callable[[], None] | None):
        self._feed = feed
        self._queue: queue.Queue[Change] = queue.Queue(maxsize)
        self._wake = wake
        self.dropped = 0  # changes lost because this subscriber fell behind

    def _offer(self, change: Change) -> None:
        # Never blocks: when full, the oldest change makes room (the newest matters most
        # to a live view); the loss is counted.
        while True:
            try:
                self._queue.put_nowait(change)
                break
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass
        if self._wake is not None:
            try:
                self._wake()
            except Exception:  # noqa: BLE001 - a subscriber's hook must not break the writer
                pass

    def get(self, timeout: float | None = None) -> Change | None:
        """The next change, waiting up to ``timeout`` seconds (None: forever); None on timeout."""
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            return None

    def drain(self) -> list[Change]:
        """Every change waiting now, without blocking."""
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out

    def close(self) -> None:
        """Stop receiving changes."""
        self._feed.unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class ChangeFeed:
    """Fan-out of changes to subscribers; thread-safe, and publishing never blocks."""

    def __init__(self, maxsize: int = 1000):
        self.origin = uuid.uuid4().hex  # identifies changes this feed published first
        self.maxsize = maxsize
        #: Changes published so far: a cache of what the warehouse holds is current while
        #: this has not moved (it moves before subscribers hear of the change).
        self.version = 0
        self._subscribers: list[Subscription] = []
        self._lock = threading.Lock()

    def subscribe(self, maxsize: int | None = None,
                  wake: Callable[[], None] | None = None) -> Subscription:
        """A new subscription holding at most ``maxsize`` changes. ``wake`` (optional) is
        called after each change is queued, from the writer's thread: it must not block
        (e.g. ``lambda: loop.call_soon_threadsafe(event.set)`` for an asyncio consumer)."""
        sub = Subscription(self, maxsize or self.maxsize, wake)
        with self._lock:
            self._subscribers = [*self._subscribers, sub]
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscription (no error if it is already gone)."""
        with self._lock:
            self._subscribers = [s for s in self._subscribers if s is not sub]

    @property
    def subscribers(self) -> int:
        """How many subscriptions are open."""
        return len(self._subscribers)

    def publish(self, change: Change) -> None:
        """Give ``change`` to every subscriber; stamps this feed as origin if it has none."""
        if not change.origin:
            change = replace(change, origin=self.origin)
        with self._lock:
            self.version += 1
        for sub in self._subscribers:  # a copy-on-write list: no lock held while offering
            sub._offer(change)

    def __len__(self) -> int:
        return self.subscribers


def distinct(values: Iterable, limit: int = 10_000) -> tuple:
    """Distinct non-null values in first-seen order (at most ``limit``; a change record
    stays small)."""
    out = dict.fromkeys(v for v in values if v is not None and v == v)
    return tuple(list(out)[:limit])
