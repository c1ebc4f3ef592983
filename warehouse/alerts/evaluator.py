"""The alert evaluator: rules in, instance state and notifications out (docs/alerts.md).

:class:`AlertManager` holds the rules and instances of one warehouse (loaded from the
database, so a new process resumes where the last one stopped), evaluates a rule when a
committed write touches its series or recipe (:meth:`AlertManager.on_changes`, fed by
``wh.changes``) and on each rule's interval (:meth:`AlertManager.evaluate_due`), stores
every state change, and hands firing/resolved instances to the :class:`Notifier`. Time
comes from an injectable clock, so tests drive it with a fake one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from warehouse.alerts import kinds, store
from warehouse.alerts.notify import Notifier, NotifyConfig, matchers
from warehouse.alerts.rules import Rule, RuleError, parse_rule, render
from warehouse.alerts.state import (
    FIRING,
    INACTIVE,
    PENDING,
    Instance,
    Transition,
    advance,
    expired,
    fingerprint,
)
from warehouse.errors import WarehouseError

if TYPE_CHECKING:
    from warehouse.core import Warehouse

POINT_KINDS = ("threshold", "anomaly", "forecast")
RUN_KINDS = ("run_failed", "run_duration", "dead_man")


def system_clock() -> datetime:
    return datetime.now(UTC)


class AlertManager:
    """Rules, state and evaluation of one warehouse's alerts."""

    def __init__(self, wh: Warehouse, *, notify: NotifyConfig | Notifier | None = None,
                 clock: Callable[[], datetime] = system_clock):
        self.wh, self.clock = wh, clock
        if isinstance(notify, NotifyConfig):
            notify = Notifier(wh, notify)
        self.notifier = notify
        self._lock = threading.RLock()  # one evaluation at a time: state is read-modify-write
        self._last_eval: dict[str, datetime] = {}
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.errors: dict[str, str] = {}  # rule -> last evaluation error
        self.reload()

    def set_notify(self, notify: NotifyConfig | Notifier | None) -> None:
        """Route notifications with ``notify`` (None: keep state, send nothing)."""
        self.notifier = Notifier(self.wh, notify) if isinstance(notify, NotifyConfig) else notify

    # -- rules -----------------------------------------------------------------------------
    def reload(self) -> None:
        """Read rules and instances from the database (what a restart does)."""
        with self._lock:
            self.rules = {r.name: r for r in store.load_rules(self.wh)}
            self.instances = {i.fingerprint: i for i in store.load_instances(self.wh)}

    def add_rule(self, rule: Rule | dict, *, check: bool = True) -> Rule:
        """Validate (against the warehouse too, with ``check``) and store a rule; replaces
        one of the same name."""
        rule = rule if isinstance(rule, Rule) else parse_rule(rule)
        if check:
            check_against_data(self.wh, rule)
        store.save_rule(self.wh, rule, self.clock())
        with self._lock:
            self.rules[rule.name] = rule
        return rule

    def remove_rule(self, name: str) -> None:
        """Delete a rule and its instances."""
        store.delete_rule(self.wh, name)
        with self._lock:
            self.rules.pop(name, None)
            self.instances = {fp: i for fp, i in self.instances.items() if i.rule_name != name}

    # -- evaluation ------------------------------------------------------------------------
    def evaluate(self, rule: Rule | str, now: datetime | None = None, *,
                 notify: bool = True) -> list[Transition]:
        """Evaluate one rule now; store its state changes; send what is due."""
        rule = self.rules[rule] if isinstance(rule, str) else rule
        return self.evaluate_all(now, [rule], notify=notify)

    def evaluate_all(self, now: datetime | None = None, rules: Iterable[Rule] | None = None,
                     *, notify: bool = True) -> list[Transition]:
        """Evaluate several rules (default: every enabled rule) as one round: their queries
        batched, their state changes stored in one transaction; then notify once."""
        now = now or self.clock()
        with self._lock:
            rules = [r for r in (rules if rules is not None else self.rules.values())
                     if r.enabled]
            outcomes = kinds.evaluate_many(self.wh, rules, now)
            by_rule: dict[str, dict[str, Instance]] = {}
            for fp, inst in self.instances.items():
                by_rule.setdefault(inst.rule_name, {})[fp] = inst
            changed, gone, transitions = [], [], []
            for rule in rules:
                c, g, t = self._apply(rule, *outcomes[rule.name], now,
                                      by_rule.get(rule.name, {}))
                changed += c
                gone += g
                transitions += t
                self._last_eval[rule.name] = now
            if changed or gone or transitions:
                store.save_evaluation(self.wh, changed, gone, transitions, now)
            if notify:
                self.notify(now)
        return transitions

    def evaluate_due(self, now: datetime | None = None) -> list[Transition]:
        """Evaluate the rules whose interval has passed since their last evaluation."""
        now = now or self.clock()
        due = [r for r in self.rules.values()
               if r.enabled and (r.name not in self._last_eval or now - self._last_eval[r.name]
                                 >= timedelta(microseconds=r.interval_us))]
        return self.evaluate_all(now, due)

    def on_changes(self, changes: Iterable, now: datetime | None = None) -> list[Transition]:
        """Evaluate the rules that the committed writes ``changes`` touch (Change records of
        :mod:`warehouse.changes`, or anything with the same attributes)."""
        changes = list(changes)
        touched = [r for r in self.rules.values() if r.enabled and any(
            touches(r, c) for c in changes)]
        # Run and step rules are cheap and the most urgent ("a recipe failed"): they are
        # evaluated and notified first, not behind a round of metric rules.
        quick = [r for r in touched if r.kind in RUN_KINDS or r.kind == "step_error_rate"]
        rest = [r for r in touched if not (r.kind in RUN_KINDS or r.kind == "step_error_rate")]
        out = self.evaluate_all(now, quick) if quick else []
        return out + (self.evaluate_all(now, rest) if rest else [])

    def notify(self, now: datetime | None = None) -> list:
        """Send the notifications that are due (group timers) — also with no new data."""
        now = now or self.clock()
        with self._lock:
            if self.notifier is None:
                self._forget_expired(now)
                return []
            sent = self.notifier.process(list(self.instances.values()), now)
            for delivery in sent:
                for fp, state in delivery.fingerprints:
                    if fp in self.instances:
                        inst = self.instances[fp]
                        self.instances[fp] = _replace(inst, notified_state=state,
                                                      notified_at=now)
            self._forget_expired(now)
        return sent

    def _forget_expired(self, now: datetime) -> None:
        gone = [fp for fp, inst in self.instances.items() if expired(inst, now)]
        if gone:
            store.save_evaluation(self.wh, (), gone, (), now)
            for fp in gone:
                del self.instances[fp]

    def _apply(self, rule: Rule, outcome, error: str | None, now: datetime,
               existing: dict[str, Instance]):
        """Advance the rule's ``existing`` instances by one outcome:
        (changed, gone, transitions)."""
        mode = ("error" if error is not None else "nodata" if not outcome.has_data else None)
        policy = {"error": rule.error_state, "nodata": rule.no_data_state}.get(mode)
        active: dict[str, tuple[dict, float | None, str | None]] = {}
        keep = set()
        if mode is None:
            for sample in outcome.samples:
                labels = {**{k: str(v) for k, v in sample.labels.items()}, **rule.labels,
                          "alertname": rule.name}
                active[fingerprint(rule.name, labels)] = (labels, sample.value, sample.run_id)
        elif policy == "keep_last":
            keep = set(existing)
        elif policy == "alerting":
            labels = {**rule.labels, "alertname": rule.name, "alertstate": mode}
            active[fingerprint(rule.name, labels)] = (labels, None, None)
            keep = {fp for fp, i in existing.items() if "alertstate" not in i.labels}
        changed, gone, transitions = [], [], []
        reason = error if error is not None else ("no data" if mode == "nodata" else "")
        for fp in sorted(set(existing) | set(active)):
            if fp in keep and fp not in active:
                continue
            labels, value, run_id = active.get(fp) or (existing[fp].labels, None, None)
            inst = existing.get(fp) or Instance(fp, rule.name, labels)
            annotations = None
            if fp in active:
                annotations = {k: render(t, rule=rule.name, value=value, labels=labels,
                                         run_id=run_id) for k, t in rule.annotations.items()}
                if run_id:
                    annotations["run_id"] = run_id
            new, left = advance(inst, fp in active, now, for_=_td(rule.for_us),
                                keep_firing_for=_td(rule.keep_firing_for_us), value=value,
                                annotations=annotations)
            if left is not None:
                transitions.append(Transition(new, left, new.state, reason))
            if new.state == INACTIVE:
                if fp in existing:
                    gone.append(fp)
                self.instances.pop(fp, None)
                continue
            if left is not None or new.state in (PENDING, FIRING):
                changed.append(new)
            self.instances[fp] = new
        if error is not None:
            self.errors[rule.name] = error
        else:
            self.errors.pop(rule.name, None)
        return changed, gone, transitions

    # -- what would fire -------------------------------------------------------------------
    def test(self, rule: Rule | str, now: datetime | None = None) -> pd.DataFrame:
        """What the rule's condition selects now (labels, value, run link), without
        changing state or notifying. Raises the evaluation error, if any."""
        rule = self.rules[rule] if isinstance(rule, str) else rule
        # the same path as evaluation (batched reads, the last-value fast path)
        outcome, error = kinds.evaluate_many(self.wh, [rule], now or self.clock())[rule.name]
        if error is not None:
            raise WarehouseError(f"alert rule {rule.name!r}: {error}")
        rows = [{"rule": rule.name, "labels": {**s.labels, **rule.labels},
                 "value": s.value, "run_url": f"/runs/{s.run_id}" if s.run_id else None}
                for s in outcome.samples]
        frame = pd.DataFrame(rows, columns=["rule", "labels", "value", "run_url"])
        frame.attrs["no_data"] = not outcome.has_data
        return frame

    def state(self) -> pd.DataFrame:
        """Current instances: rule, state, labels, value, since, fingerprint."""
        rows = [{"rule": i.rule_name, "state": i.state, "labels": i.labels, "value": i.value,
                 "active_at": i.active_at, "fired_at": i.fired_at,
                 "resolved_at": i.resolved_at, "fingerprint": i.fingerprint}
                for i in sorted(self.instances.values(),
                                key=lambda i: (i.rule_name, i.fingerprint))]
        return pd.DataFrame(rows, columns=["rule", "state", "labels", "value", "active_at",
                                           "fired_at", "resolved_at", "fingerprint"])

    # -- checks, silences and history (here so that wh.alerts over HTTP offers the same) -----
    def check(self, rule: Rule | dict) -> Rule:
        """Validate a rule, against the warehouse too (metric, window, SQL); store nothing."""
        rule = rule if isinstance(rule, Rule) else parse_rule(rule)
        check_against_data(self.wh, rule)
        return rule

    def add_silence(self, match, *, ends_at: datetime, author: str, comment: str,
                    starts_at: datetime | None = None) -> store.Silence:
        """Mute the alerts whose labels meet every matcher of ``match`` ("recipe=etl",
        (label, op, value) or {label: value}) from ``starts_at`` (default now) to ``ends_at``."""
        now = self.clock()
        starts = starts_at or now
        parsed = matchers(match)
        if not parsed:
            raise ValueError("a silence needs at least one matcher")
        if ends_at <= starts:
            raise ValueError("the silence ends before it starts")
        silence = store.Silence(store.new_id(), tuple((m.label, m.op, m.value) for m in parsed),
                                starts, ends_at, author, comment)
        store.add_silence(self.wh, silence, now)
        return silence

    def silences(self) -> list[store.Silence]:
        """Silences that have not ended."""
        return store.current_silences(self.wh, self.clock())

    def expire_silence(self, silence_id: str) -> bool:
        """End a silence now; False if it had already ended or does not exist."""
        return store.expire_silence(self.wh, silence_id, self.clock())

    def history(self, rule: str | None = None, since: datetime | None = None,
                limit: int = 100) -> pd.DataFrame:
        """State changes (alert_events), newest first."""
        return store.history(self.wh, rule, since, limit)

    def notifications(self, limit: int = 100) -> pd.DataFrame:
        """Delivery attempts, newest first."""
        return store.notifications(self.wh, limit)

    # -- running in the background -------------------------------------------------------------
    def start(self, tick: float = 1.0) -> None:
        """Evaluate on the change feed and on intervals in a daemon thread until
        :meth:`stop`."""
        if self._thread is not None:
            return
        self._stop.clear()
        sub = self.wh.changes.subscribe(maxsize=10_000)
        self._thread = threading.Thread(target=self._loop, args=(sub, tick), daemon=True,
                                        name="alerts-evaluator")
        self._thread.start()

    def _loop(self, sub, tick: float, reload_every: float = 10.0) -> None:
        import time

        reloaded = time.monotonic()
        try:
            while not self._stop.is_set():
                first = sub.get(timeout=tick)
                changes = ([first] + sub.drain()) if first is not None else []
                try:
                    if time.monotonic() - reloaded >= reload_every:
                        # rules added or removed by other processes (CLI, another server)
                        reloaded = time.monotonic()
                        self.reload()
                    if changes:
                        self.on_changes(changes)
                    self.evaluate_due()
                    self.notify()
                except Exception as exc:  # noqa: BLE001 - the loop outlives a bad round
                    self.errors["<loop>"] = f"{type(exc).__name__}: {exc}"
        finally:
            sub.close()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background thread (deliveries already queued go on)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None


def touches(rule: Rule, change) -> bool:
    """Whether a committed write may change what ``rule`` selects."""
    kind = getattr(change, "kind", None)
    if rule.kind in POINT_KINDS:
        metrics = tuple(getattr(change, "metrics", ()) or ())
        return kind == "points" and (rule.metric in metrics or not metrics)
    if rule.kind in RUN_KINDS:
        recipes = tuple(getattr(change, "recipes", ()) or ())
        return kind == "runs" and (rule.recipe is None or not recipes or rule.recipe in recipes)
    if rule.kind == "step_error_rate":
        return kind in ("steps", "runs")
    return rule.kind == "sql"


def check_against_data(wh: Warehouse, rule: Rule) -> None:
    """Checks on save that need the warehouse: the metric exists, a window is not shorter
    than the metric's data interval, SQL parses and returns a ``value`` column."""
    if rule.metric is not None:
        with wh.engine.connect() as conn:
            n = store.run(conn, wh, "metric_exists", {"metric": rule.metric}).scalar()
            recent = [store.aware(r[0]) for r in store.run(
                conn, wh, "metric_recent_ts", {"metric": rule.metric, "limit": 50})]
        if not n:
            raise RuleError(rule.name, "metric", f"unknown metric {rule.metric!r}")
        gaps = sorted((a - b).total_seconds() for a, b in zip(recent, recent[1:]) if a > b)
        window = rule.spec.get("window")
        if gaps and window:
            interval = gaps[len(gaps) // 2]
            if timedelta(microseconds=rule.us("window")).total_seconds() < interval:
                raise RuleError(rule.name, "window", f"{window} is shorter than the data "
                                f"interval of {rule.metric!r} (about {interval:g} s): "
                                "most windows would hold no point")
    if rule.kind == "sql":
        try:
            frame = wh.sql(rule.spec["query"], {"now": datetime.now(UTC)}
                           if ":now" in rule.spec["query"] else None)
        except Exception as exc:  # noqa: BLE001 - any refusal names the field
            raise RuleError(rule.name, "query", str(exc).splitlines()[0][:500]) from None
        if "value" not in frame.columns:
            raise RuleError(rule.name, "query", "the query must return a 'value' column")


def _td(us: int) -> timedelta:
    return timedelta(microseconds=us)


def _replace(inst: Instance, **changes) -> Instance:
    from dataclasses import replace

    return replace(inst, **changes)
