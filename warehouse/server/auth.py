"""Who is asking: users, roles, API tokens and browser sessions (issue 11).

CONTRACT used by the HTTP API modules (keep these names stable):

- ``ROLES``: ``("viewer", "editor", "admin")``; ``SCOPES``: ``("read", "write", "admin")``.
  viewer -> read; editor -> read, write; admin -> read, write, admin.
- ``Principal``: the authenticated caller (``name``, ``role``, ``scopes``).
- ``require(scope)``: a FastAPI dependency factory. ``Depends(require("read"))`` returns the
  ``Principal`` or raises ``HTTPException`` 401 (no/expired/revoked credentials) or 403
  (authenticated but lacking the scope). Routes never check roles any other way.
- ``auth_router()``: an ``APIRouter`` with the login/logout/session routes, mounted by the app.

SKELETON: until the auth work lands, every caller is an anonymous admin.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from fastapi import APIRouter, Request

ROLES = ("viewer", "editor", "admin")
SCOPES = ("read", "write", "admin")
ROLE_SCOPES = {"viewer": frozenset({"read"}), "editor": frozenset({"read", "write"}),
               "admin": frozenset({"read", "write", "admin"})}


@dataclass(frozen=True)
class Principal:
    """The authenticated caller."""

    name: str
    role: str
    scopes: frozenset[str] = field(default_factory=frozenset)


def require(scope: str):
    """FastAPI dependency: the caller, if it holds ``scope`` (401/403 otherwise)."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def dependency(request: Request) -> Principal:
        return Principal("anonymous", "admin", ROLE_SCOPES["admin"])

    return dependency


def auth_router() -> APIRouter:
    """Login, logout and session routes."""
    return APIRouter()
