"""Deprecated: the jobs commands moved to :mod:`warehouse.cli.jobs` and are listed in the
CLI's one command registry (``warehouse/cli/__init__.py``). ``register`` is kept, doing
nothing, until tests/storage/test_jobs_runner.py stops calling it; an area does not import
the CLI (docs/architecture.md)."""

from __future__ import annotations


def register(group):
    """No-op: every jobs command is already on the ``warehouse`` group."""
    return group
