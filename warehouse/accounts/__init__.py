"""Accounts of a served warehouse: users with roles, API tokens and browser sessions.

Stored in the warehouse database (migration 0007: ``users``, ``api_tokens``,
``web_sessions``); secrets are never stored, only their hashes. Every function takes the
caller's warehouse (anything with ``engine`` and ``backend``). The HTTP side (headers,
cookies, CSRF, status codes) lives in :mod:`warehouse.server.auth`; docs/security.md.
"""

from __future__ import annotations

from warehouse.accounts.ratelimit import FailureLimiter, LoginLimiter
from warehouse.accounts.roles import (
    ROLE_SCOPES,
    ROLES,
    SCOPES,
    CredentialsError,
    Identity,
    scopes_of,
)
from warehouse.accounts.sessions import (
    NewSession,
    close_session,
    open_session,
    remembered_session,
    session_identity,
)
from warehouse.accounts.tokens import (
    NewToken,
    authenticate_token,
    create_token,
    list_tokens,
    remembered_token,
    revoke_token,
    token_owner,
)
from warehouse.accounts.users import (
    add_user,
    check_login,
    list_users,
    remove_user,
    set_password,
    user_count,
)

__all__ = [
    "CredentialsError", "FailureLimiter", "Identity", "LoginLimiter", "NewSession", "NewToken",
    "ROLES", "ROLE_SCOPES", "SCOPES", "add_user", "authenticate_token", "check_login",
    "close_session", "create_token", "list_tokens", "list_users", "open_session",
    "remembered_session", "remembered_token", "remove_user", "revoke_token", "scopes_of",
    "session_identity", "set_password", "token_owner", "user_count",
]
