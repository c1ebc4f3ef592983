"""The ``alerts`` job: evaluate every enabled rule at the job's time (no-data and dead man's
switches need time to pass, not writes) and send what is due.

Notification routes come from the YAML/JSON file named by ``WAREHOUSE_ALERTS_CONFIG``;
without it, state and history are kept and nothing is sent.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from warehouse.jobs.runner import JobContext

CONFIG_ENV = "WAREHOUSE_ALERTS_CONFIG"


def notify_config_from_env():
    """The NotifyConfig in the file named by WAREHOUSE_ALERTS_CONFIG, or None."""
    path = os.environ.get(CONFIG_ENV)
    if not path:
        return None
    import yaml

    from warehouse.alerts.notify import NotifyConfig

    with open(path, encoding="utf-8") as handle:
        return NotifyConfig.from_dict(yaml.safe_load(handle) or {})


def alerts_job(ctx: JobContext) -> int:
    """Evaluate all rules once; returns the number of state changes.

    Uses the warehouse's own manager (``wh.alerts``): inside ``warehouse serve`` that is the
    one following the change feed, so the job and the thread share state, lock and lease.
    Elsewhere the job evaluates only if it can claim the evaluator lease (warehouse/alerts/
    lease.py): a running evaluator of the same database does the work, not both."""
    manager = ctx.wh.alerts
    with manager.lease.hold() as held:
        if not held:
            ctx.note("another evaluator (warehouse serve, or another scheduler) holds this "
                     "database's alert evaluator lease: nothing evaluated here")
            return 0
        manager.reload()  # rules added or removed by other processes since the last run
        if manager.notifier is None:
            manager.set_notify(notify_config_from_env())
        now = ctx.now.to_pydatetime()
        transitions = manager.evaluate_all(now)
        if manager.notifier is not None:
            manager.notifier.dispatcher.wait(timeout=60.0)
    for rule, error in manager.errors.items():
        ctx.note(f"rule {rule}: {error}")
    return len(transitions)
