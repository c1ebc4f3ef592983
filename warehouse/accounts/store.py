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
