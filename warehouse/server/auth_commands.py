"""CLI commands for users, API tokens and database roles (registered in the CLI's list).

SKELETON: filled in by the auth work (issue 11).
"""

from __future__ import annotations

import click


@click.group()
def users() -> None:
    """Users of a served warehouse: add, list, remove, passwd."""


@click.group()
def tokens() -> None:
    """API tokens: create (shown once), list, revoke."""
