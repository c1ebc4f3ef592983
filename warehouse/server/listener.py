"""Republish changes that other processes NOTIFY (PostgreSQL) on the served warehouse's feed."""

from __future__ import annotations

import logging
import threading

from warehouse.changes import Change

log = logging.getLogger("warehouse.server")


class ChangeListener:
    """A background thread listening for other processes' changes, where the engine can
    notify (``capabilities.change_notify``); elsewhere start/stop do nothing. Changes this
    warehouse published itself (same ``origin``) are already on the feed and are skipped."""

    def __init__(self, wh):
        self.wh = wh
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.received = 0  # changes republished (for tests and /info)
        self.listening = threading.Event()  # set once LISTEN is in force (again)

    @property
    def active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if self.active or not self.wh.backend.capabilities.change_notify:
            return
        self._stop.clear()
        self._thread = threading.Thread(
            target=self.wh.backend.listen_changes,
            args=(self._on_payload, self._stop, self.listening.set),
            name="warehouse-change-listener", daemon=True)
        self._thread.start()

    def _on_payload(self, payload: str) -> None:
        try:
            change = Change.from_json(payload)
        except ValueError as exc:  # someone else's NOTIFY on our channel: ignore it
            log.warning("ignoring a malformed change notification: %s", exc)
            return
        if change.origin == self.wh.changes.origin:
            return
        self.received += 1
        self.wh.changes.publish(change)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self.listening.clear()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
