"""Reading and writing the alert tables through ``sql/common/alerts/`` (migration 0009)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd
from sqlalchemy import Connection, text

from warehouse.alerts.rules import Rule, parse_rule
from warehouse.alerts.state import Instance, Transition
from warehouse.errors import UnknownNameError

if TYPE_CHECKING:
    from warehouse.core import Warehouse


def run(conn: Connection, wh: Warehouse, name: str, params: dict | None = None):
    """Execute ``alerts/<name>.sql`` with binds."""
    return conn.execute(text(wh.backend.sql(f"alerts/{name}")), params or {})


def aware(value) -> datetime | None:
    """A driver's timestamp as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, pd.Timestamp):
        value = value.to_pydatetime()
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def new_id() -> str:
    return uuid.uuid4().hex


# -- rules ---------------------------------------------------------------------------------
def save_rule(wh: Warehouse, rule: Rule, now: datetime) -> None:
    """Insert or replace ``rule`` (keeping when it was first created)."""
    with wh.engine.begin() as conn:
        created = run(conn, wh, "rule_created", {"name": rule.name}).scalar()
        run(conn, wh, "rule_delete", {"name": rule.name})
        run(conn, wh, "rule_insert", {
            "name": rule.name, "kind": rule.kind, "spec": rule.to_json(),
            "enabled": rule.enabled, "created_at": aware(created) or now, "updated_at": now})


def delete_rule(wh: Warehouse, name: str) -> None:
    """Remove a rule and its instances; UnknownNameError if there is no such rule."""
    with wh.engine.begin() as conn:
        if run(conn, wh, "rule_created", {"name": name}).scalar() is None:
            raise UnknownNameError(f"no alert rule named {name!r}")
        run(conn, wh, "rule_delete", {"name": name})
        run(conn, wh, "instances_delete_rule", {"rule_name": name})


def load_rules(wh: Warehouse) -> list[Rule]:
    """Every stored rule (validated again: a rule stored by an older version that no longer
    validates raises, naming it)."""
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "rules_all").mappings().all()
    return [parse_rule(json.loads(row["spec"])) for row in rows]


# -- instances and events -------------------------------------------------------------------
_TIME_FIELDS = ("active_at", "fired_at", "resolved_at", "last_active_at", "last_eval_at",
                "notified_at")


def load_instances(wh: Warehouse) -> list[Instance]:
    """Every stored alert instance."""
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "instances_all").mappings().all()
    out = []
    for row in rows:
        data = dict(row)
        data["labels"] = json.loads(data["labels"])
        data["annotations"] = json.loads(data["annotations"] or "{}")
        for key in _TIME_FIELDS:
            data[key] = aware(data[key])
        data["value"] = None if data["value"] is None else float(data["value"])
        out.append(Instance(**data))
    return out


def save_evaluation(wh: Warehouse, changed: Iterable[Instance], gone: Iterable[str],
                    transitions: Iterable[Transition], now: datetime,
                    notified: Iterable[tuple[str, str]] = ()) -> None:
    """Store one evaluation's outcome in one transaction: changed instances, forgotten
    ones, a history row per state change, and the ``(fingerprint, state)`` pairs about to
    be delivered (one commit on the way from a write to its notification, not two). A
    statement per kind whatever the number of instances (10,000 flapping instances are one
    evaluation; executemany costs a round trip per row, over a millisecond each on DuckDB)."""
    changed, gone, transitions, notified = (list(changed), list(gone), list(transitions),
                                            list(notified))
    with wh.engine.begin() as conn:
        doomed = [*gone, *(i.fingerprint for i in changed)]
        if doomed:
            run(conn, wh, "instances_delete", {"fingerprints": doomed})
        if changed:
            rows = [_instance_params(i) for i in changed]
            run(conn, wh, "instances_insert", {k: [r[k] for r in rows] for k in rows[0]})
        if transitions:
            rows = [{"event_id": new_id(), "changed_at": now,
                     "rule_name": tr.instance.rule_name, "fingerprint": tr.instance.fingerprint,
                     "labels": json.dumps(tr.instance.labels, sort_keys=True),
                     "from_state": tr.from_state, "to_state": tr.to_state,
                     "value": _finite(tr.instance.value), "reason": tr.reason or None}
                    for tr in transitions]
            run(conn, wh, "events_insert", {k: [r[k] for r in rows] for k in rows[0]})
        _mark_notified(conn, wh, notified, now)


def mark_notified(wh: Warehouse, sent: Iterable[tuple[str, str]], now: datetime) -> None:
    """Remember that ``(fingerprint, state)`` pairs were delivered at ``now``."""
    sent = list(sent)
    if sent:
        with wh.engine.begin() as conn:
            _mark_notified(conn, wh, sent, now)


def _mark_notified(conn: Connection, wh: Warehouse, sent: list[tuple[str, str]],
                   now: datetime) -> None:
    if sent:
        run(conn, wh, "instances_notified", {"fingerprints": [fp for fp, _ in sent],
                                             "states": [st for _, st in sent],
                                             "notified_at": now})


def _instance_params(inst: Instance) -> dict:
    return {"fingerprint": inst.fingerprint, "rule_name": inst.rule_name,
            "labels": json.dumps(inst.labels, sort_keys=True), "state": inst.state,
            "value": _finite(inst.value), "annotations": json.dumps(inst.annotations),
            **{key: getattr(inst, key) for key in _TIME_FIELDS},
            "notified_state": inst.notified_state}


def _finite(value) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def history(wh: Warehouse, rule: str | None = None, since: datetime | None = None,
            limit: int = 100) -> pd.DataFrame:
    """State changes, newest first: changed_at, rule_name, fingerprint, labels, from_state,
    to_state, value, reason."""
    since = since or datetime(1970, 1, 1, tzinfo=UTC)
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "events_recent",
                   {"rule_name": rule, "since": since, "limit": int(limit)}).mappings().all()
    return pd.DataFrame([dict(r) for r in rows],
                        columns=["changed_at", "rule_name", "fingerprint", "labels", "from_state",
                                 "to_state", "value", "reason"])


# -- silences and notifications --------------------------------------------------------------
@dataclass(frozen=True)
class Silence:
    """Mutes the alerts its matchers select between ``starts_at`` and ``ends_at``."""

    silence_id: str
    matchers: tuple  # ((label, op, value), ...)
    starts_at: datetime
    ends_at: datetime
    author: str
    comment: str

    def active(self, now: datetime) -> bool:
        return self.starts_at <= now < self.ends_at


def add_silence(wh: Warehouse, silence: Silence, now: datetime) -> None:
    with wh.engine.begin() as conn:
        run(conn, wh, "silence_insert", {
            "silence_id": silence.silence_id, "matchers": json.dumps(list(silence.matchers)),
            "starts_at": silence.starts_at, "ends_at": silence.ends_at,
            "author": silence.author, "comment": silence.comment, "created_at": now})


def expire_silence(wh: Warehouse, silence_id: str, now: datetime) -> bool:
    """End a silence now; False if it had already ended or does not exist."""
    with wh.engine.begin() as conn:
        return run(conn, wh, "silence_expire",
                   {"silence_id": silence_id, "now": now}).rowcount > 0


def current_silences(wh: Warehouse, now: datetime) -> list[Silence]:
    """Silences that have not ended at ``now``."""
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "silences_current", {"now": now}).mappings().all()
    return [Silence(r["silence_id"], tuple(tuple(m) for m in json.loads(r["matchers"])),
                    aware(r["starts_at"]), aware(r["ends_at"]), r["author"], r["comment"])
            for r in rows]


def record_attempt(wh: Warehouse, *, receiver: str, channel: str, group_key: str,
                   fingerprints: list[str], status: str, attempt: int, error: str | None,
                   now: datetime) -> None:
    """One delivery attempt, for the record (and for ``warehouse alerts history``)."""
    with wh.engine.begin() as conn:
        run(conn, wh, "notification_insert", {
            "notification_id": new_id(), "attempted_at": now, "receiver": receiver, "channel": channel,
            "group_key": group_key, "fingerprints": json.dumps(fingerprints),
            "status": status, "attempt": int(attempt),
            "error": (error or "")[:2000] or None})


def notifications(wh: Warehouse, limit: int = 100) -> pd.DataFrame:
    """Delivery attempts, newest first."""
    with wh.engine.connect() as conn:
        rows = run(conn, wh, "notifications_recent", {"limit": int(limit)}).mappings().all()
    return pd.DataFrame([dict(r) for r in rows],
                        columns=["attempted_at", "receiver", "channel", "group_key", "fingerprints",
                                 "status", "attempt", "error"])
