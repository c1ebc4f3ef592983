"""The alert evaluator: rules in, instance state and notifications out (docs/alerts.md).

:class:`AlertManager` holds the rules and instances of one warehouse (loaded from the
database, so a new process resumes where the last one stopped), evaluates a rule when a
committed write touches its series or recipe (:meth:`AlertManager.on_changes`, fed by
``wh.changes``; incrementally where it can, :mod:`warehouse.alerts.incremental`) and on each
rule's interval (:meth:`AlertManager.evaluate_due`), stores every state change, and hands
firing/resolved instances to the :class:`Notifier`. Reading the data runs outside the state
lock, so the run rules of a write are never held up by a round of metric rules. Time comes
from an injectable clock, so tests drive it with a fake one.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pandas as pd

from warehouse.alerts import incremental, kinds, store
from warehouse.alerts.background import Background
from warehouse.alerts.checks import check_against_data
from warehouse.alerts.incremental import QUICK_KINDS, RuleIndex
from warehouse.alerts.lease import EvaluatorLease
from warehouse.alerts.notify import Notifier, NotifyConfig, matchers
from warehouse.alerts.rules import Rule, parse_rule, render
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
        # Applying outcomes to the instances is read-modify-write: one at a time. Reading the
        # data for an outcome is not under it.
        self._lock = threading.RLock()
        self._last_eval: dict[str, datetime] = {}
        self._series_labels: dict = {}  # series id -> labels, for incremental evaluation
        self._background: Background | None = None
        self.lease = EvaluatorLease(wh)
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
            self.index = RuleIndex(self.rules.values())
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
            self.index = RuleIndex(self.rules.values())
        return rule

    def remove_rule(self, name: str) -> None:
        """Delete a rule and its instances."""
        store.delete_rule(self.wh, name)
        with self._lock:
            self.rules.pop(name, None)
            self.index = RuleIndex(self.rules.values())
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
        rules = [r for r in (rules if rules is not None else list(self.rules.values()))
                 if r.enabled]
        transitions = self._commit(rules, kinds.evaluate_many(self.wh, rules, now), now,
                                   notify="always" if notify else "never")
        self._last_eval.update(dict.fromkeys((r.name for r in rules), now))
        return transitions

    def _commit(self, rules: list[Rule], outcomes: dict, now: datetime, *,
                notify: str) -> list[Transition]:
        """Apply the ``outcomes`` of ``rules`` read at ``now``, then send what is due at once
        (no wait for a polling tick): the state changes and the deliveries about to be
        handed to the channels are stored in one transaction. ``notify``: ``always`` (group
        timers too), ``on_change`` (only if a state changed: the change feed's rounds, whose
        timers the evaluator's loop sends) or ``never``."""
        with self._lock:
            by_rule: dict[str, dict[str, Instance]] = {}
            for fp, inst in self.instances.items():
                by_rule.setdefault(inst.rule_name, {})[fp] = inst
            changed, gone, transitions = [], [], []
            for rule in rules:
                if rule.name not in outcomes:
                    continue
                c, g, t = self._apply(rule, *outcomes[rule.name], now,
                                      by_rule.get(rule.name, {}))
                changed += c
                gone += g
                transitions += t
            send = self.notifier is not None and (
                notify == "always" or (notify == "on_change" and bool(transitions)))
            due = self.notifier.plan(list(self.instances.values()), now) if send else []
            delivered = [pair for delivery in due for pair in delivery.fingerprints]
            if changed or gone or transitions or delivered:
                store.save_evaluation(self.wh, changed, gone, transitions, now,
                                      notified=delivered)
            self._dispatch(due, now)
            if notify == "always":
                self._forget_expired(now)
        return transitions

    def evaluate_due(self, now: datetime | None = None) -> list[Transition]:
        """Evaluate the rules whose interval has passed since their last evaluation."""
        now = now or self.clock()
        due = [r for r in self.rules.values()
               if r.enabled and (r.name not in self._last_eval or now - self._last_eval[r.name]
                                 >= timedelta(microseconds=r.interval_us))]
        return self.evaluate_all(now, due) if due else []

    def on_changes(self, changes: Iterable, now: datetime | None = None) -> list[Transition]:
        """Evaluate the rules that the committed writes ``changes`` touch (Change records of
        :mod:`warehouse.changes`, or anything with the same attributes)."""
        changes = list(changes)
        # Run and step rules are cheap and the most urgent ("a recipe failed"): they are
        # evaluated and notified first, not behind a round of metric rules.
        return (self.evaluate_changes(changes, now, quick=True)
                + self.evaluate_changes(changes, now, quick=False))

    def evaluate_changes(self, changes: list, now: datetime | None = None, *,
                         quick: bool) -> list[Transition]:
        """The rules of one lane that ``changes`` touch: the run and step rules
        (``quick``), or the metric and SQL rules. Rules that can be judged on what the
        writes carry get a scoped outcome; the others are evaluated whole."""
        now = now or self.clock()
        touched = [r for r in self.index.touched(changes) if (r.kind in QUICK_KINDS) == quick]
        if not touched:
            return []
        outcomes, whole = incremental.scoped(self.wh, touched, changes, now,
                                             self._series_labels)
        outcomes.update(kinds.evaluate_many(self.wh, whole, now))
        transitions = self._commit(touched, outcomes, now, notify="on_change")
        self._last_eval.update(dict.fromkeys((r.name for r in whole), now))
        return transitions

    def notify(self, now: datetime | None = None) -> list:
        """Send the notifications that are due (group timers) — also with no new data."""
        now = now or self.clock()
        with self._lock:
            due = (self.notifier.plan(list(self.instances.values()), now)
                   if self.notifier is not None else [])
            store.mark_notified(self.wh, [pair for d in due for pair in d.fingerprints], now)
            self._dispatch(due, now)
            self._forget_expired(now)
        return due

    def _dispatch(self, due: list, now: datetime) -> None:
        """Hand ``due`` (already stored as delivered: at most once, never twice) to the
        channels' worker threads, and remember it in memory."""
        for delivery in due:
            for fp, state in delivery.fingerprints:
                if fp in self.instances:
                    self.instances[fp] = _replace(self.instances[fp], notified_state=state,
                                                  notified_at=now)
            self.notifier.dispatch(delivery)

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
        scope = outcome.scope if error is None else None
        mode = ("error" if error is not None else "nodata"
                if not outcome.has_data and scope is None else None)
        policy = {"error": rule.error_state, "nodata": rule.no_data_state}.get(mode)
        active: dict[str, tuple[dict, float | None, str | None]] = {}
        keep = set()
        if mode is None:
            for sample in outcome.samples:
                labels = _instance_labels(rule, sample.labels)
                active[fingerprint(rule.name, labels)] = (labels, sample.value, sample.run_id)
            if scope is not None and existing:
                # A scoped outcome judges only the label sets the write touched (and, with
                # data, ends a NoData or error instance); the others keep their state.
                judged = {fingerprint(rule.name, _instance_labels(rule, lab)) for lab in scope}
                if outcome.has_data:
                    judged |= {fp for fp, i in existing.items() if "alertstate" in i.labels}
                keep = set(existing) - judged
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
            if fp in existing and existing[fp].last_eval_at is not None \
                    and existing[fp].last_eval_at > now:
                continue  # a newer evaluation already judged it (the other lane, on a write)
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
        """Evaluate on the change feed and on intervals in daemon threads until :meth:`stop`,
        while this process holds the database's evaluator lease (:mod:`.lease`); another
        evaluator of the same database waits as a standby."""
        if self._background is not None:
            return
        self.claim()
        self._background = Background(self, tick)
        self._background.start()

    def claim(self) -> bool:
        """Hold the database's evaluator lease (True), or not: another evaluator has it.
        Taking it over reloads the state, which the previous holder kept changing."""
        with self._lock:
            had = self.lease.held
            held = self.lease.claim()
            if held and not had:
                self.reload()
            return held

    @property
    def running(self) -> bool:
        """Whether the background evaluator runs (it may be a standby: see ``lease.held``)."""
        return self._background is not None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the background threads and give up the lease (deliveries already queued go
        on)."""
        if self._background is not None:
            self._background.stop(timeout)
            self._background = None
        self.lease.release()


def _instance_labels(rule: Rule, labels: dict) -> dict:
    """An instance's label set: the query's labels, the rule's, and ``alertname``."""
    return {**{k: str(v) for k, v in labels.items()}, **rule.labels, "alertname": rule.name}


def _td(us: int) -> timedelta:
    return timedelta(microseconds=us)


def _replace(inst: Instance, **changes) -> Instance:
    from dataclasses import replace

    return replace(inst, **changes)
