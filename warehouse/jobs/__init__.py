"""Jobs: rollups, retention and archival as scheduled SQL jobs (docs/jobs.md).

Job bodies are SQL files in ``sql/<dialect>/jobs/``; this package orchestrates them, locks
one runner per job, records every run in ``job_runs``, writes Parquet where SQL cannot, and
schedules (``warehouse scheduler``, ``warehouse jobs run-due``, or pg_cron).

Public functions take a :class:`~warehouse.Warehouse` (see :mod:`warehouse.jobs.api`):

>>> from warehouse import jobs
>>> jobs.set_retention(wh, "points", "30d", archive=True)
>>> jobs.run_job(wh, "refresh_rollups"); jobs.run_job(wh, "archive"); jobs.run_job(wh, "retention")
>>> jobs.restore_archive(wh, "2026-10-01T00:00:00Z", "2026-10-02T00:00:00Z")

Attributes load lazily: ingest imports :mod:`warehouse.ingest.invalidation` on its hot path,
and the rest of the package imports ingest.
"""

from __future__ import annotations

import importlib

_API = ("run_job", "run_due", "due_jobs", "list_jobs", "job_runs", "set_retention",
        "remove_retention", "retention_policies", "restore_archive", "archive_manifest",
        "rollup_state", "install_pg_cron")

__all__ = list(_API)


def __getattr__(name: str):
    if name in _API:
        return getattr(importlib.import_module("warehouse.jobs.api"), name)
    raise AttributeError(f"module 'warehouse.jobs' has no attribute {name!r}")
