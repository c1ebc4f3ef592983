"""The running evaluator: two threads over one subscription to the change feed.

- ``alerts-changes`` takes each batch of changes as it arrives and at once evaluates the
  run and step rules they touch (a failed run is judged from the change itself), then
  notifies: never behind a round of metric rules.
- ``alerts-evaluator`` evaluates the metric and SQL rules of the changes gathered since its
  last round (all of them in one round: a busy feed makes bigger rounds, not a backlog),
  the rules whose interval has passed, and sends what the group timers make due.

Both evaluate only while this process holds the database's evaluator lease; without it the
evaluator is a standby that claims the lease every tick (the holder stopped or died).
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING

from warehouse.changes import Change

if TYPE_CHECKING:
    from warehouse.alerts.evaluator import AlertManager

#: Rules added or removed by other processes (CLI, another server) are read this often.
RELOAD_EVERY_S = 10.0
#: Group timers (group_wait, group_interval, repeat, silences ending) are checked this often;
#: a state change is sent by the round that made it, without waiting for this.
TIMERS_EVERY_S = 1.0


class Background:
    """The threads of one running :class:`AlertManager` (``manager.start()``)."""

    def __init__(self, manager: AlertManager, tick: float):
        self.manager, self.tick = manager, tick
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._pending: list[Change] = []  # for the next metric round, merged (bounded)
        self._pending_lock = threading.Lock()
        self._sub = manager.wh.changes.subscribe(maxsize=10_000)
        self._threads = [
            threading.Thread(target=self._follow_changes, daemon=True, name="alerts-changes"),
            threading.Thread(target=self._rounds, daemon=True, name="alerts-evaluator")]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self, timeout: float) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        self._sub.close()

    def _follow_changes(self) -> None:
        while not self._stop.is_set():
            first = self._sub.get(timeout=self.tick)
            if first is None:
                continue
            changes = [first, *self._sub.drain()]
            with self._pending_lock:
                self._pending = merge_points([*self._pending, *changes])
            self._wake.set()
            if self.manager.lease.held:
                self._guarded(functools.partial(self.manager.evaluate_changes, changes,
                                                quick=True))

    def _rounds(self) -> None:
        reloaded = timers = time.monotonic()
        while not self._stop.is_set():
            self._wake.wait(self.tick)
            self._wake.clear()
            with self._pending_lock:
                changes, self._pending = self._pending, []
            if self._stop.is_set() or not self._guarded(self.manager.claim):
                continue  # a standby: another evaluator holds the lease
            if time.monotonic() - reloaded >= RELOAD_EVERY_S:
                reloaded = time.monotonic()
                self._guarded(self.manager.reload)
            if changes:
                self._guarded(functools.partial(self.manager.evaluate_changes, changes,
                                                quick=False))
            self._guarded(self.manager.evaluate_due)
            if time.monotonic() - timers >= TIMERS_EVERY_S:
                timers = time.monotonic()
                self._guarded(self.manager.notify)

    def _guarded(self, step):
        """Run one step; a failure is recorded (``errors['<loop>']``) and the loop goes on."""
        try:
            return step()
        except Exception as exc:  # noqa: BLE001 - the evaluator outlives a bad round
            self.manager.errors["<loop>"] = f"{type(exc).__name__}: {exc}"
            return None


def merge_points(changes: list[Change]) -> list[Change]:
    """What a metric round needs of ``changes``, bounded however many writes came in
    meanwhile: the point changes as one (their series, metrics and time range), and of the
    others the last of each kind (a metric round evaluates only SQL rules for those, and
    any change touches them)."""
    others = list({c.kind: c for c in changes if c.kind != "points"}.values())
    points = [c for c in changes if c.kind == "points"]
    if len(points) <= 1:
        return others + points
    truncated = any(c.truncated or not c.series_ids for c in points)
    merged = replace(
        points[-1], rows=sum(c.rows for c in points), truncated=truncated,
        series_ids=() if truncated else tuple(sorted({i for c in points for i in c.series_ids})),
        metrics=() if any(not c.metrics for c in points)
        else tuple(dict.fromkeys(m for c in points for m in c.metrics)),
        start=min((c.start for c in points if c.start is not None), default=None),
        end=max((c.end for c in points if c.end is not None), default=None))
    return [*others, merged]
