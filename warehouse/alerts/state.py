"""Alert instance state: one instance per rule and label set, moving
inactive -> pending (``for``) -> firing -> resolved, with ``keep_firing_for`` (docs/alerts.md).

:func:`advance` is the whole state machine: a pure function of the instance, whether its
condition holds now, and the time — so the semantics are tested without a database and a
restart (which reloads the instances) continues exactly where it was.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

INACTIVE, PENDING, FIRING, RESOLVED = "inactive", "pending", "firing", "resolved"
STATES = (INACTIVE, PENDING, FIRING, RESOLVED)
#: A resolved instance is kept this long (so the resolution can be delivered), then forgotten.
RESOLVED_RETENTION = timedelta(minutes=15)
UNDELIVERED_RETENTION = timedelta(days=1)


def fingerprint(rule: str, labels: Mapping[str, str]) -> str:
    """A stable hash of the rule name and the label set: the identity of an alert instance
    across evaluations, restarts and replays (Alertmanager's fingerprint, with the rule)."""
    text = json.dumps([rule, sorted((str(k), str(v)) for k, v in labels.items())],
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Instance:
    """The stored state of one alert instance."""

    fingerprint: str
    rule_name: str
    labels: dict
    state: str = INACTIVE
    value: float | None = None
    annotations: dict = field(default_factory=dict)
    active_at: datetime | None = None  # when the condition started holding (pending)
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    last_active_at: datetime | None = None  # last evaluation at which the condition held
    last_eval_at: datetime | None = None
    notified_state: str | None = None  # what was last delivered: firing | resolved
    notified_at: datetime | None = None

    @property
    def run_id(self) -> str | None:
        return self.labels.get("run_id") or self.annotations.get("run_id")


@dataclass(frozen=True)
class Transition:
    """A state change to record in alert_events."""

    instance: Instance
    from_state: str
    to_state: str
    reason: str = ""


def advance(inst: Instance, active: bool, now: datetime, *, for_: timedelta,
            keep_firing_for: timedelta, value: float | None = None,
            annotations: dict | None = None, reason: str = "") -> tuple[Instance, str | None]:
    """The instance after one evaluation at ``now``, and the state it left (None when the
    state did not change). ``active``: the rule's condition holds for this label set now."""
    old = inst.state
    if active:
        inst = replace(inst, value=value, last_active_at=now, last_eval_at=now,
                       annotations=annotations if annotations is not None else inst.annotations)
        if old in (INACTIVE, RESOLVED):
            inst = replace(inst, active_at=now, resolved_at=None, fired_at=None)
            if for_ <= timedelta(0):
                return replace(inst, state=FIRING, fired_at=now), old
            return replace(inst, state=PENDING), old
        if old == PENDING and now - inst.active_at >= for_:
            return replace(inst, state=FIRING, fired_at=now), old
        return inst, None
    inst = replace(inst, last_eval_at=now)
    if value is not None:
        inst = replace(inst, value=value)
    if old == PENDING:
        return replace(inst, state=INACTIVE, active_at=None), old
    if old == FIRING:
        if keep_firing_for > timedelta(0) and inst.last_active_at is not None \
                and now - inst.last_active_at < keep_firing_for:
            return inst, None
        return replace(inst, state=RESOLVED, resolved_at=now), old
    return inst, None


def expired(inst: Instance, now: datetime) -> bool:
    """A resolved instance whose resolution was delivered (or that nobody needs to hear
    about) and is old enough to forget."""
    if inst.state != RESOLVED or inst.resolved_at is None:
        return inst.state == INACTIVE
    age = now - inst.resolved_at
    # Kept until its resolution was delivered (or nobody had heard it fire) — but not
    # forever when no route takes it.
    delivered = inst.notified_state in (RESOLVED, None)
    return (delivered and age >= RESOLVED_RETENTION) or age >= UNDELIVERED_RETENTION
