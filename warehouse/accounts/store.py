"""Running the accounts SQL (``sql/<dialect>/accounts/`` or ``sql/common/accounts/``)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy import Connection, Engine, text

from warehouse.backends.base import Backend


class HasDatabase(Protocol):
    """What the accounts area needs of the warehouse it is handed."""

    engine: Engine
    backend: Backend


def run(conn: Connection, backend: Backend, name: str, params: dict | None = None):
    """Execute ``accounts/<name>.sql`` with binds; returns the SQLAlchemy result."""
    return conn.execute(text(backend.sql(f"accounts/{name}")), params or {})


def utcnow() -> datetime:
    """The present, aware and in UTC."""
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """A driver's timestamp as an aware UTC datetime (both engines return UTC)."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def credential_row(wh: HasDatabase, kind: str, key_hash: str, query: str) -> dict:
    """The row of a token or session (with its user's ``role``) by its digest, remembered
    for a few seconds (:mod:`warehouse.accounts.cache`); :class:`CredentialsError` "invalid
    <kind>" when it is unknown or its user is gone (remembered too, briefly)."""
    from warehouse.accounts import cache
    from warehouse.accounts.roles import CredentialsError

    row = remembered_row(wh, kind, key_hash)
    if row is None:
        database = str(wh.engine.url)
        with wh.engine.connect() as conn:
            found = run(conn, wh.backend, query, {f"{kind}_hash": key_hash}).mappings().first()
        if found is None or found["role"] is None:
            cache.put_unknown(database, kind, key_hash)
            raise CredentialsError(f"invalid {kind}")
        row = dict(found)
        cache.put(database, kind, key_hash, row)
    return row


def remembered_row(wh: HasDatabase, kind: str, key_hash: str) -> dict | None:
    """What :func:`credential_row` would answer from memory alone, without a query: the
    remembered row, :class:`CredentialsError` for a digest remembered as unknown, or None
    when the database must be asked."""
    from warehouse.accounts import cache
    from warehouse.accounts.roles import CredentialsError

    database = str(wh.engine.url)
    if cache.known_unknown(database, kind, key_hash):
        raise CredentialsError(f"invalid {kind}")
    return cache.get(database, kind, key_hash)
