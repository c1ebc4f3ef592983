"""Browser sessions: a random id in an HttpOnly cookie, stored as its SHA-256 digest.

The CSRF token of a session is derived from the session id (an HMAC keyed by it), so it
needs no storage, changes with every login, and cannot be computed without the cookie that
a cross-site page cannot read.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from warehouse.accounts import cache
from warehouse.accounts.hashing import digest, new_secret
from warehouse.accounts.roles import ROLE_SCOPES, CredentialsError, Identity
from warehouse.accounts.store import (
    HasDatabase,
    aware,
    credential_row,
    remembered_row,
    run,
    utcnow,
)

SESSION_LIFETIME = timedelta(hours=12)  # absolute: a stolen cookie is useful for a day at most
IDLE_TIMEOUT = timedelta(hours=2)  # a session unused this long ends
TOUCH_EVERY = timedelta(seconds=60)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class NewSession:
    """A session just opened: the id goes into the cookie, the CSRF token to the page."""

    session_id: str
    csrf_token: str
    expires_at: datetime


def open_session(wh: HasDatabase, user: str, now: datetime | None = None) -> NewSession:
    """Open a session for ``user`` (after a successful login); expired sessions are pruned."""
    now = now or utcnow()
    session_id = new_secret()
    expires_at = now + SESSION_LIFETIME
    with wh.engine.begin() as conn:
        run(conn, wh.backend, "sessions_prune", {"now": now})
        run(conn, wh.backend, "session_insert", {"session_hash": digest(session_id),
                                                 "user_name": user, "now": now,
                                                 "expires_at": expires_at})
    return NewSession(session_id, csrf_token_for(session_id), expires_at)


def session_identity(wh: HasDatabase, session_id: str, now: datetime | None = None) -> Identity:
    """Who the session belongs to; :class:`CredentialsError` if it is unknown or over."""
    now = now or utcnow()
    session_hash = _session_digest(session_id)
    row = credential_row(wh, "session", session_hash, "session_get")
    if _over(row, now):
        close_session(wh, session_id)
        raise CredentialsError("session expired")
    if _touch_due(row, now):
        try:  # best effort, as for tokens: a timestamp must not fail the request
            with wh.engine.begin() as conn:
                run(conn, wh.backend, "session_touch",
                    {"session_hash": session_hash, "now": now})
            row["last_seen_at"] = now
        except Exception:  # noqa: BLE001
            pass
    return _identity(row)


def remembered_session(wh: HasDatabase, session_id: str, now: datetime | None = None
                       ) -> Identity | None:
    """What :func:`session_identity` answers, when memory alone decides it (no query, no
    write: safe on an event loop): the identity, or :class:`CredentialsError`; None when the
    database must be asked or written (not remembered, over, or its last use due)."""
    now = now or utcnow()
    row = remembered_row(wh, "session", _session_digest(session_id))
    if row is None or _over(row, now) or _touch_due(row, now):
        return None
    return _identity(row)


def _session_digest(session_id: str) -> str:
    if not isinstance(session_id, str) or not 20 <= len(session_id) <= 100:
        raise CredentialsError("invalid session")
    return digest(session_id)


def _over(row: dict, now: datetime) -> bool:
    """Past its absolute lifetime, or idle too long (the caller closes it)."""
    return aware(row["expires_at"]) <= now or now - aware(row["last_seen_at"]) >= IDLE_TIMEOUT


def _touch_due(row: dict, now: datetime) -> bool:
    return now - aware(row["last_seen_at"]) >= TOUCH_EVERY


def _identity(row: dict) -> Identity:
    return Identity(row["user_name"], row["role"], ROLE_SCOPES[row["role"]], via="session",
                    expires_at=aware(row["expires_at"]))


def close_session(wh: HasDatabase, session_id: str) -> None:
    """End a session (logout). Unknown ids are ignored."""
    with wh.engine.begin() as conn:
        run(conn, wh.backend, "session_delete", {"session_hash": digest(session_id)})
    cache.forget_all()


def csrf_token_for(session_id: str) -> str:
    """The CSRF token that goes with a session (double-submit: header or form field)."""
    return hmac.new(session_id.encode("utf-8"), b"warehouse csrf", hashlib.sha256).hexdigest()


def csrf_matches(session_id: str, presented: str | None) -> bool:
    """Whether ``presented`` is the session's CSRF token (constant-time comparison)."""
    return bool(presented) and hmac.compare_digest(csrf_token_for(session_id), presented)
