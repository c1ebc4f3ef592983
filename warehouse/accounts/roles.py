"""Roles, scopes and who a request turned out to be.

A role is what a user may do; a scope is what one credential may do. A token's scope never
reaches beyond its user's role, checked when the token is made and again on every use (a
user demoted after making a token loses the difference at once).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from warehouse.errors import WarehouseError

ROLES = ("viewer", "editor", "admin")
SCOPES = ("read", "write", "admin")
#: viewer reads; editor also writes data and edits dashboards; admin also manages users,
#: jobs and retention.
ROLE_SCOPES: dict[str, frozenset[str]] = {
    "viewer": frozenset({"read"}),
    "editor": frozenset({"read", "write"}),
    "admin": frozenset({"read", "write", "admin"}),
}


def scopes_of(scope: str) -> frozenset[str]:
    """What a credential of ``scope`` may do: each scope includes the ones before it."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; known: {', '.join(SCOPES)}")
    return frozenset(SCOPES[: SCOPES.index(scope) + 1])


def check_role(role: str) -> str:
    """``role`` if it is one of :data:`ROLES`, else a ValueError naming them."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; known: {', '.join(ROLES)}")
    return role


class CredentialsError(WarehouseError):
    """A credential that does not authenticate anyone: unknown, expired, revoked, or its
    user is gone. ``reason`` is safe to show to the caller (it says nothing about others)."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Identity:
    """Who a credential belongs to and what it may do (``scopes`` already narrowed to the
    user's role). ``via`` is ``token``, ``session`` or ``open`` (no users, loopback)."""

    name: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)
    via: str = "token"
    token_id: str | None = None
    expires_at: datetime | None = None
