"""API tokens: random, shown once, stored as a SHA-256 digest, with a scope and an expiry.

A token looks like ``wht_<43 URL-safe characters>`` (256 random bits). Its public
``token_id`` (listed, used to revoke) is separate random text, so a listing never carries
anything that authenticates.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from warehouse.accounts import cache
from warehouse.accounts.hashing import TOKEN_PREFIX, digest, new_secret
from warehouse.accounts.roles import ROLE_SCOPES, SCOPES, CredentialsError, Identity, scopes_of
from warehouse.accounts.store import (
    HasDatabase,
    aware,
    credential_row,
    remembered_row,
    run,
    utcnow,
)
from warehouse.errors import FieldProblem, UnknownNameError, ValidationError
from warehouse.timeparse import interval_us

DEFAULT_EXPIRY = "90d"
MAX_EXPIRY = timedelta(days=3650)
MAX_TOKEN_NAME = 100
#: last_used_at is written at most this often per token: a write per API call would make
#: every read a write (and contend on DuckDB's single writer) for a timestamp nobody needs
#: to the second.
TOUCH_EVERY = timedelta(seconds=60)


@dataclass(frozen=True)
class NewToken:
    """A token just made. ``token`` is the secret: shown once, stored nowhere."""

    token_id: str
    token: str
    user: str
    scope: str
    name: str | None
    expires_at: datetime | None


def create_token(wh: HasDatabase, user: str, scope: str, *, expires: str | timedelta | None
                 = DEFAULT_EXPIRY, name: str | None = None,
                 now: datetime | None = None) -> NewToken:
    """Make a token for ``user`` with ``scope`` (read, write, admin; at most what the user's
    role allows) that expires after ``expires`` ('30d', a timedelta; None or 'never': no
    expiry). Returns the secret once."""
    now = now or utcnow()
    expires_at = _expiry(expires, now)
    problems = []
    if scope not in SCOPES:
        problems.append(FieldProblem(None, "scope", f"must be one of read, write, admin, not {scope!r}"))
    if name is not None and (not isinstance(name, str) or len(name) > MAX_TOKEN_NAME
                             or not name.isprintable()):
        problems.append(FieldProblem(None, "name", f"must be printable text of at most "
                                                   f"{MAX_TOKEN_NAME} characters"))
    if problems:
        raise ValidationError("token", problems)
    token = TOKEN_PREFIX + new_secret()
    token_id = secrets.token_hex(8)
    with wh.engine.begin() as conn:
        row = run(conn, wh.backend, "user_get", {"name": user}).mappings().first()
        if row is None:
            raise UnknownNameError(f"no user named {user!r}")
        allowed = ROLE_SCOPES[row["role"]]
        if not scopes_of(scope) <= allowed:
            raise ValidationError("token", [FieldProblem(None, "scope", (
                f"{scope!r} is more than {user!r} may do as {row['role']} "
                f"(allowed: {', '.join(s for s in SCOPES if s in allowed)})"))])
        run(conn, wh.backend, "token_insert", {
            "token_id": token_id, "token_hash": digest(token), "user_name": user, "name": name,
            "scope": scope, "now": now, "expires_at": expires_at})
    return NewToken(token_id, token, user, scope, name, expires_at)


def authenticate_token(wh: HasDatabase, token: str, now: datetime | None = None) -> Identity:
    """Who ``token`` belongs to, with its scopes narrowed to the user's role; raises
    :class:`CredentialsError` for an unknown, expired or revoked token."""
    now = now or utcnow()
    row = credential_row(wh, "token", _token_digest(token), "token_by_hash")
    identity = _identity(row, now)
    if _touch_due(row, now):
        _touch(wh, row["token_id"], now)
        row["last_used_at"] = now  # the remembered row too, or it would touch on every call
    return identity


def remembered_token(wh: HasDatabase, token: str, now: datetime | None = None
                     ) -> Identity | None:
    """What :func:`authenticate_token` answers, when memory alone decides it (no query, no
    write: safe on an event loop): the identity, or :class:`CredentialsError`; None when the
    database must be asked (the token is not remembered, or its last use is due to be
    written)."""
    now = now or utcnow()
    row = remembered_row(wh, "token", _token_digest(token))
    if row is None:
        return None
    identity = _identity(row, now)  # a revoked or expired token is refused from memory too
    return None if _touch_due(row, now) else identity


def _token_digest(token: str) -> str:
    if not isinstance(token, str) or not token.startswith(TOKEN_PREFIX) or len(token) > 200:
        raise CredentialsError("invalid token")
    return digest(token)


def _identity(row: dict, now: datetime) -> Identity:
    if row["revoked_at"] is not None:
        raise CredentialsError("token revoked")
    expires_at = aware(row["expires_at"])
    if expires_at is not None and expires_at <= now:
        raise CredentialsError("token expired")
    return Identity(row["user_name"], row["role"],
                    scopes_of(row["scope"]) & ROLE_SCOPES[row["role"]],
                    via="token", token_id=row["token_id"], expires_at=expires_at)


def _touch_due(row: dict, now: datetime) -> bool:
    last_used = aware(row["last_used_at"])
    return last_used is None or now - last_used >= TOUCH_EVERY


def list_tokens(wh: HasDatabase, user: str | None = None) -> pd.DataFrame:
    """Tokens (never secrets or digests), newest first: token_id, user_name, name, scope,
    created_at, expires_at, revoked_at, last_used_at."""
    with wh.engine.connect() as conn:
        return wh.backend.fetch_frame(conn, wh.backend.sql("accounts/tokens_list"),
                                      {"user_name": user})


def token_owner(wh: HasDatabase, token_id: str) -> str:
    """The user a token belongs to (UnknownNameError if there is no such token)."""
    with wh.engine.connect() as conn:
        row = run(conn, wh.backend, "token_get", {"token_id": token_id}).mappings().first()
    if row is None:
        raise UnknownNameError(f"no token with id {token_id!r}")
    return row["user_name"]


def revoke_token(wh: HasDatabase, token_id: str, now: datetime | None = None) -> bool:
    """Revoke a token from now on; False if it was revoked already."""
    with wh.engine.begin() as conn:
        if run(conn, wh.backend, "token_get", {"token_id": token_id}).first() is None:
            raise UnknownNameError(f"no token with id {token_id!r}")
        revoked = run(conn, wh.backend, "token_revoke",
                      {"token_id": token_id, "now": now or utcnow()}).rowcount > 0
    cache.forget_all()
    return revoked


def _touch(wh: HasDatabase, token_id: str, now: datetime) -> None:
    # Best effort: two requests touching one token at once may conflict (DuckDB's optimistic
    # transactions), and a failed timestamp must never fail the request it describes.
    try:
        with wh.engine.begin() as conn:
            run(conn, wh.backend, "token_touch", {"token_id": token_id, "now": now})
    except Exception:  # noqa: BLE001 - see above
        pass


def _expiry(expires, now: datetime) -> datetime | None:
    if expires is None or expires == "never":
        return None
    try:
        span = timedelta(microseconds=interval_us(expires))
    except (ValueError, TypeError) as exc:
        raise ValidationError("token", [FieldProblem(None, "expires", (
            f"{expires!r} is not a duration such as 30d, 12h or 'never' ({exc})"))]) from exc
    if span <= timedelta(0) or span > MAX_EXPIRY:
        raise ValidationError("token", [FieldProblem(None, "expires", (
            f"must be more than 0 and at most {MAX_EXPIRY.days} days"))])
    return now + span
