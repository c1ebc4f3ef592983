"""Routing, grouping, silencing, inhibition and delivery of alert notifications, as
Alertmanager does it (docs/alerts.md).

Group timers are derived from the stored instances (``fired_at``, ``notified_state``,
``notified_at``), not held in memory, so a restarted process computes the same next send
time as the one that stopped and never repeats a notification early. Deliveries run on one
worker thread per channel: a channel that hangs or fails delays only itself; each attempt
is recorded in ``notifications``.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from warehouse.alerts import store
from warehouse.alerts.channels import Channel, channel_from_dict
from warehouse.alerts.state import FIRING, RESOLVED, Instance
from warehouse.timeparse import interval_us

MATCHER = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*(.*?)\s*$")


@dataclass(frozen=True)
class Matcher:
    """``label op value`` with op ``=``, ``!=``, ``=~`` or ``!~`` (regex, fully anchored)."""

    label: str
    op: str
    value: str

    @classmethod
    def parse(cls, text: str) -> Matcher:
        match = MATCHER.match(text or "")
        if not match:
            raise ValueError(f"matcher {text!r}: expected label=value, label!=value, "
                             "label=~regex or label!~regex")
        label, op, value = match.groups()
        value = value.strip('"')
        if op in ("=~", "!~"):
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"matcher {text!r}: bad regex: {exc}") from None
        return cls(label, op, value)

    def matches(self, labels: Mapping[str, str]) -> bool:
        actual = str(labels.get(self.label, ""))
        if self.op == "=":
            return actual == self.value
        if self.op == "!=":
            return actual != self.value
        found = re.fullmatch(self.value, actual) is not None
        return found if self.op == "=~" else not found


def matchers(items: Iterable) -> tuple[Matcher, ...]:
    """Matchers from text (``"recipe=etl"``), triples or a ``{label: value}`` mapping."""
    if isinstance(items, Mapping):
        return tuple(Matcher(str(k), "=", str(v)) for k, v in items.items())
    out = []
    for item in items or ():
        if isinstance(item, Matcher):
            out.append(item)
        elif isinstance(item, str):
            out.append(Matcher.parse(item))
        else:
            out.append(Matcher.parse(f"{item[0]}{item[1]}{item[2]}"))
    return tuple(out)


def all_match(ms: Iterable[Matcher], labels: Mapping[str, str]) -> bool:
    return all(m.matches(labels) for m in ms)


def _td(value, where: str = "duration") -> timedelta:
    """A duration from config; zero ("0s") is allowed (e.g. no group_wait)."""
    if isinstance(value, timedelta):
        return value
    if not value or re.fullmatch(r"0+[a-z]*", str(value)):
        return timedelta(0)
    try:
        return timedelta(microseconds=interval_us(value))
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


@dataclass(frozen=True)
class MuteTime:
    """A recurring window (UTC) in which a route sends nothing: ``weekdays`` (empty: every
    day) and ``start``-``end`` times of day; a window that ends before it starts wraps past
    midnight ("22:00"-"06:00"). Notifications due inside it are sent when it ends."""

    weekdays: tuple[int, ...] = ()
    start: tuple[int, int] = (0, 0)
    end: tuple[int, int] = (24, 0)

    @classmethod
    def from_dict(cls, data: Mapping, where: str = "mute_times") -> MuteTime:
        days = []
        for day in data.get("weekdays") or ():
            if str(day).lower()[:3] not in WEEKDAYS:
                raise ValueError(f"{where}.weekdays: {day!r} is not a weekday")
            days.append(WEEKDAYS.index(str(day).lower()[:3]))
        return cls(tuple(days), _clock_time(data.get("start", "00:00"), f"{where}.start"),
                   _clock_time(data.get("end", "24:00"), f"{where}.end"))

    def covers(self, when: datetime) -> bool:
        minute = when.hour * 60 + when.minute
        start, end = self.start[0] * 60 + self.start[1], self.end[0] * 60 + self.end[1]
        if start <= end:
            return (not self.weekdays or when.weekday() in self.weekdays) and \
                start <= minute < end
        # wraps midnight: the part after midnight belongs to the previous day's window
        if minute >= start:
            return not self.weekdays or when.weekday() in self.weekdays
        day_before = (when.weekday() - 1) % 7
        return minute < end and (not self.weekdays or day_before in self.weekdays)


def _clock_time(text, where: str) -> tuple[int, int]:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", str(text))
    if not match or int(match[1]) > 24 or int(match[2]) > 59 or \
            (int(match[1]) == 24 and int(match[2]) != 0):
        raise ValueError(f"{where}: {text!r} is not a time of day HH:MM")
    return int(match[1]), int(match[2])


@dataclass(frozen=True)
class Route:
    """Alerts matching ``matchers`` go to ``receiver``, grouped by ``group_by`` labels.
    ``continue_``: keep looking for further matching routes."""

    receiver: str
    matchers: tuple[Matcher, ...] = ()
    group_by: tuple[str, ...] = ("alertname",)
    group_wait: timedelta = timedelta(seconds=30)
    group_interval: timedelta = timedelta(minutes=5)
    repeat_interval: timedelta = timedelta(hours=4)
    continue_: bool = False
    mute_times: tuple[MuteTime, ...] = ()


@dataclass(frozen=True)
class InhibitRule:
    """While an alert matching ``source`` fires, alerts matching ``target`` that have the
    same values of the ``equal`` labels are muted (a recipe-down alert mutes its step
    alerts)."""

    source: tuple[Matcher, ...]
    target: tuple[Matcher, ...]
    equal: tuple[str, ...] = ()


@dataclass
class NotifyConfig:
    """Routes (first match wins unless ``continue``), receivers and inhibition rules."""

    routes: list[Route] = field(default_factory=list)
    receivers: dict[str, list[Channel]] = field(default_factory=dict)
    inhibit_rules: list[InhibitRule] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: Mapping) -> NotifyConfig:
        """From a YAML/JSON document: ``receivers: [{name, channels: [{type, ...}]}]``,
        ``routes: [{receiver, match: [...], group_by, group_wait, ...}]``,
        ``inhibit_rules: [{source: [...], target: [...], equal: [...]}]``."""
        receivers = {}
        for item in data.get("receivers") or ():
            name = item.get("name")
            if not name:
                raise ValueError("receiver: a name is required")
            receivers[name] = [channel_from_dict(c) for c in item.get("channels") or ()]
        routes = []
        for i, item in enumerate(data.get("routes") or ()):
            if item.get("receiver") not in receivers:
                raise ValueError(f"routes[{i}].receiver: {item.get('receiver')!r} is not a "
                                 "receiver")
            routes.append(Route(
                item["receiver"], matchers(item.get("match") or ()),
                tuple(item.get("group_by") or ("alertname",)),
                _td(item.get("group_wait", "30s"), f"routes[{i}].group_wait"),
                _td(item.get("group_interval", "5m"), f"routes[{i}].group_interval"),
                _td(item.get("repeat_interval", "4h"), f"routes[{i}].repeat_interval"),
                bool(item.get("continue", False)),
                tuple(MuteTime.from_dict(m, f"routes[{i}].mute_times[{j}]")
                      for j, m in enumerate(item.get("mute_times") or ()))))
        inhibit = [InhibitRule(matchers(r.get("source") or ()), matchers(r.get("target") or ()),
                               tuple(r.get("equal") or ()))
                   for r in data.get("inhibit_rules") or ()]
        return cls(routes, receivers, inhibit)


@dataclass(frozen=True)
class Delivery:
    """One notification of one group to one receiver (before it goes to its channels)."""

    receiver: str
    group_key: str
    message: dict
    fingerprints: tuple[tuple[str, str], ...]  # (fingerprint, state) delivered


def message_for(receiver: str, group_key: str, group_labels: dict,
                alerts: list[Instance]) -> dict:
    """An Alertmanager-style webhook document for a group."""
    items = []
    for inst in alerts:
        items.append({
            "status": inst.state, "labels": inst.labels, "annotations": inst.annotations,
            "startsAt": inst.fired_at.isoformat() if inst.fired_at else None,
            "endsAt": inst.resolved_at.isoformat() if inst.resolved_at else None,
            "fingerprint": inst.fingerprint, "value": inst.value,
            "runURL": f"/runs/{inst.run_id}" if inst.run_id else None})
    common = dict(set.intersection(*(set(i.labels.items()) for i in alerts))) if alerts else {}
    status = FIRING if any(i.state == FIRING for i in alerts) else RESOLVED
    return {"version": "1", "receiver": receiver, "status": status, "groupKey": group_key,
            "groupLabels": group_labels, "commonLabels": common, "alerts": items}


class Notifier:
    """Decides which groups are due (:meth:`plan`) and hands them to the dispatcher
    (:meth:`dispatch`)."""

    def __init__(self, wh, config: NotifyConfig, *, dispatcher: Dispatcher | None = None):
        self.wh, self.config = wh, config
        self.dispatcher = dispatcher or Dispatcher(wh)

    def muted(self, instances: list[Instance], now: datetime) -> dict[str, str]:
        """Fingerprint -> why it is muted (``silenced by <id>`` or ``inhibited``)."""
        silences = [s for s in store.current_silences(self.wh, now) if s.active(now)]
        out = {}
        firing = [i for i in instances if i.state == FIRING]
        for inst in instances:
            for silence in silences:
                if all_match(matchers(silence.matchers), inst.labels):
                    out[inst.fingerprint] = f"silenced by {silence.silence_id}"
                    break
            else:
                for rule in self.config.inhibit_rules:
                    if not all_match(rule.target, inst.labels):
                        continue
                    if any(src.fingerprint != inst.fingerprint
                           and all_match(rule.source, src.labels)
                           and all(src.labels.get(k) == inst.labels.get(k) for k in rule.equal)
                           for src in firing):
                        out[inst.fingerprint] = "inhibited"
                        break
        return out

    def plan(self, instances: list[Instance], now: datetime) -> list[Delivery]:
        """The notifications due at ``now`` (nothing is sent)."""
        muted = self.muted(instances, now)
        groups: dict[tuple[str, str], tuple[Route, dict, list[Instance]]] = {}
        for inst in instances:
            wanted = inst.state == FIRING or (inst.state == RESOLVED
                                              and inst.notified_state == FIRING)
            if not wanted or inst.fingerprint in muted:
                continue
            for route in self.config.routes:
                if not all_match(route.matchers, inst.labels):
                    continue
                labels = {k: inst.labels.get(k, "") for k in route.group_by}
                key = route.receiver + ":" + ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
                groups.setdefault((route.receiver, key), (route, labels, []))[2].append(inst)
                if not route.continue_:
                    break
        due = []
        for (receiver, key), (route, labels, alerts) in sorted(groups.items()):
            if any(m.covers(now) for m in route.mute_times):
                continue  # still due when the mute window ends
            if self._due(route, alerts, now):
                due.append(Delivery(receiver, key, message_for(receiver, key, labels, alerts),
                                    tuple((a.fingerprint, a.state) for a in alerts)))
        return due

    @staticmethod
    def _due(route: Route, alerts: list[Instance], now: datetime) -> bool:
        sent = [a.notified_at for a in alerts if a.notified_at is not None]
        if not sent:  # a new group: wait for more alerts to join it
            first = min((a.fired_at or now) for a in alerts)
            return now >= first + route.group_wait
        last = max(sent)
        changed = any(a.notified_state != a.state for a in alerts)
        if changed:
            return now >= last + route.group_interval
        return any(a.state == FIRING for a in alerts) and now >= last + route.repeat_interval

    def dispatch(self, delivery: Delivery) -> None:
        """Hand a planned delivery to its receiver's channels (returns at once). The caller
        has stored it as delivered first (``notified_state``), so a restart never sends it
        again."""
        self.dispatcher.submit(delivery, self.config.receivers.get(delivery.receiver, []))


@dataclass
class _Job:
    delivery: Delivery
    channel: Channel


class Dispatcher:
    """One worker thread and queue per channel; each message is retried with exponential
    backoff (``backoff`` x 2^n seconds) up to ``retries`` times; every attempt is recorded."""

    def __init__(self, wh, *, retries: int = 3, backoff: float = 1.0,
                 clock: Callable[[], datetime] | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.wh, self.retries, self.backoff = wh, int(retries), float(backoff)
        self.clock = clock or (lambda: datetime.now().astimezone())
        self.sleep = sleep
        self._queues: dict[int, queue.Queue] = {}
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._pending = 0
        self._idle = threading.Condition(self._lock)

    def submit(self, delivery: Delivery, channels: list[Channel]) -> None:
        """Queue ``delivery`` for each channel; returns at once."""
        for channel in channels:
            with self._lock:
                q = self._queues.get(id(channel))
                if q is None:
                    q = self._queues[id(channel)] = queue.Queue()
                    thread = threading.Thread(target=self._work, args=(q,), daemon=True,
                                              name=f"alerts-{channel.name}")
                    self._threads.append(thread)
                    thread.start()
                self._pending += 1
            q.put(_Job(delivery, channel))

    def _work(self, q: queue.Queue) -> None:
        while True:
            job = q.get()
            if job is None:
                return
            try:
                self._deliver(job)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def _deliver(self, job: _Job) -> None:
        fps = [fp for fp, _ in job.delivery.fingerprints]
        for attempt in range(1, self.retries + 2):
            try:
                job.channel.send(job.delivery.message)
                status, error = "sent", None
            except Exception as exc:  # noqa: BLE001 - any channel failure is recorded
                status = "failed" if attempt > self.retries else "retrying"
                error = f"{type(exc).__name__}: {exc}"
            try:
                store.record_attempt(self.wh, receiver=job.delivery.receiver,
                                     channel=job.channel.name,
                                     group_key=job.delivery.group_key, fingerprints=fps,
                                     status=status, attempt=attempt, error=error,
                                     now=self.clock())
            except Exception:  # noqa: BLE001,S110 - the record must not stop the delivery
                pass
            if status != "retrying":
                return
            self.sleep(self.backoff * 2 ** (attempt - 1))

    def wait(self, timeout: float = 10.0) -> bool:
        """Block until every queued delivery is done (tests, shutdown); False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._idle.wait(left)
        return True

    def close(self) -> None:
        """Stop the workers after the queued deliveries."""
        for q in self._queues.values():
            q.put(None)
