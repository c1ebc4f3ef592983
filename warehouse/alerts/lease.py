"""One alert evaluator per database: the lease that a running evaluator (and the ``alerts``
job) must hold before it evaluates, so two processes never record a transition twice or
notify twice (docs/alerts.md, "One evaluator per database").

- PostgreSQL: a session advisory lock (``sql/postgresql/alerts/lease_lock.sql``) on a
  dedicated connection kept open while the evaluator runs; the server frees it when that
  connection ends, also when the process is killed, and a standby evaluator takes over.
- DuckDB: one process opens the file read-write, so the lease only has to exclude a second
  evaluator inside that process: ``flock`` on ``<database file>.alerts-evaluator.lock``
  (flock locks belong to the open file, so two managers of one process exclude each other;
  the kernel frees it if the process dies).
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import text

from warehouse.backends.paths import database_file

if TYPE_CHECKING:
    from warehouse.core import Warehouse

#: How often a held PostgreSQL lease checks that its connection (and so the lock) is alive.
CHECK_EVERY_S = 5.0


class EvaluatorLease:
    """Claim (without waiting) and release the database's evaluator lease."""

    def __init__(self, wh: Warehouse):
        self.wh = wh
        self._conn = None  # PostgreSQL: the connection whose session holds the lock
        self._handle: int | None = None  # DuckDB: the open, flock-ed lock file
        self._checked = 0.0
        self._lock = threading.Lock()

    @property
    def held(self) -> bool:
        return self._conn is not None or self._handle is not None

    def claim(self) -> bool:
        """Take the lease if nobody holds it; True if this evaluator holds it now (a held
        PostgreSQL lease is checked to be alive at most every CHECK_EVERY_S seconds)."""
        with self._lock:
            if self._conn is not None and time.monotonic() - self._checked >= CHECK_EVERY_S:
                self._check_alive()
            if not self.held:
                self._take()
            return self.held

    def release(self) -> None:
        """Give the lease up (another evaluator may take it)."""
        with self._lock:
            if self._conn is not None:
                try:
                    self._conn.execute(text(self.wh.backend.sql("alerts/lease_unlock")))
                except Exception:  # noqa: BLE001,S110 - closing the session frees it anyway
                    pass
                self._close_conn()
            if self._handle is not None:
                os.close(self._handle)  # closing releases the flock
                self._handle = None

    @contextmanager
    def hold(self) -> Iterator[bool]:
        """The lease for a block (the ``alerts`` job): yields whether it is held; released
        after the block only if the block took it (a running evaluator keeps its own)."""
        had = self.held
        held = self.claim()
        try:
            yield held
        finally:
            if held and not had:
                self.release()

    def _take(self) -> None:
        if self.wh.backend.capabilities.advisory_locks:
            conn = self.wh.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                taken = bool(conn.execute(text(self.wh.backend.sql("alerts/lease_lock")))
                             .scalar_one())
            except Exception:
                conn.close()
                raise
            if taken:
                self._conn, self._checked = conn, time.monotonic()
            else:
                conn.close()
            return
        handle = os.open(lock_path(self.wh), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(handle)
            return
        self._handle = handle

    def _check_alive(self) -> None:
        try:
            self._conn.execute(text(self.wh.backend.sql("alerts/lease_alive")))
            self._checked = time.monotonic()
        except Exception:  # noqa: BLE001 - the session (and the lock with it) is gone
            self._close_conn()

    def _close_conn(self) -> None:
        try:
            self._conn.close()
        except Exception:  # noqa: BLE001,S110 - a dead connection may refuse to close
            pass
        self._conn = None


def lock_path(wh: Warehouse) -> Path:
    """``<database file>.alerts-evaluator.lock`` beside the database (in-memory: a temp
    file of this engine, which no other process can open anyway)."""
    db_file = database_file(wh.engine, wh.backend)
    if db_file is None:
        return Path(tempfile.gettempdir()) / (
            f"warehouse-{os.getpid()}-{id(wh.engine)}.alerts-evaluator.lock")
    return db_file.with_name(f"{db_file.name}.alerts-evaluator.lock")
