"""Giving the space of deleted or rewritten rows back after a job, as a best effort.

DuckDB frees those blocks only at a CHECKPOINT, and a plain CHECKPOINT is refused while
another connection of the process holds a transaction older than a committed UPDATE or
ALTER TABLE ("Cannot CHECKPOINT: there are other write transactions active"): a frame being
read while the compress job ran, for one. The job's own work is committed by then, so the
job must not fail for it. The reclaim is tried again briefly (such readers are short), then
deferred with a note in the run's record: nothing is lost, the next CHECKPOINT gives the
space back (the next run that changes rows, DuckDB's automatic checkpoint once the
write-ahead log passes ``checkpoint_threshold``, or closing the database). FORCE CHECKPOINT
is no way round: it stops new transactions from starting until the old one ends, and that
one may belong to the thread waiting for it. Any other error still fails the job.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.jobs.runner import JobContext

#: Seconds to wait before each further attempt; a frame's transaction lasts milliseconds.
RETRY_DELAYS = (0.05, 0.25)

log = logging.getLogger(__name__)


def reclaim_space(wh: Warehouse, transaction: Callable[[], AbstractContextManager[Connection]]
                  | None = None) -> str | None:
    """``backend.reclaim_space`` in ``transaction()`` (default: one holding the write
    fence), retried while the engine refuses it for another transaction; None once done,
    else why it was deferred (also logged), for the run's notes."""
    transaction = transaction or (lambda: _fenced_transaction(wh))
    backend = wh.backend
    for delay in (*RETRY_DELAYS, None):
        try:
            with transaction() as conn:
                backend.reclaim_space(conn)
            return None
        except Exception as exc:
            refusal = backend.reclaim_refused(exc)
            if refusal is None:
                raise
        if delay is not None:
            time.sleep(delay)
    deferred = (f"space reclaim deferred after {len(RETRY_DELAYS) + 1} attempts ({refusal}); "
                "the next checkpoint gives it back")
    log.warning(deferred)
    return deferred


def reclaim_after_job(ctx: JobContext) -> None:
    """:func:`reclaim_space` in the job's own transactions (the watchdog can interrupt
    them); a deferral goes into the run's notes (job_runs.error of a succeeded run)."""
    deferred = reclaim_space(ctx.wh, lambda: ctx.transaction(exclusive=True))
    if deferred:
        ctx.note(deferred)


@contextmanager
def _fenced_transaction(wh: Warehouse):
    with wh.backend.job_fence(), wh.engine.begin() as conn:
        yield conn
