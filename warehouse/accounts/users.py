"""Users: a name, a role and an Argon2id password hash."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from sqlalchemy.exc import IntegrityError

from warehouse.accounts import cache
from warehouse.accounts.hashing import (
    check_user_name,
    hash_password,
    needs_rehash,
    verify_password,
)
from warehouse.accounts.roles import ROLE_SCOPES, Identity, check_role
from warehouse.accounts.store import HasDatabase, run, utcnow
from warehouse.errors import FieldProblem, UnknownNameError, ValidationError


def add_user(wh: HasDatabase, name: str, role: str, password: str,
             now: datetime | None = None) -> None:
    """Add user ``name`` with ``role`` (viewer, editor, admin). Raises ValidationError for a
    bad name or password or a name already taken."""
    check_user_name(name)
    check_role(role)
    password_hash = hash_password(password)
    try:
        with wh.engine.begin() as conn:
            if run(conn, wh.backend, "user_get", {"name": name}).first() is not None:
                raise _taken(name)
            run(conn, wh.backend, "user_insert", {
                "name": name, "role": role, "password_hash": password_hash,
                "now": now or utcnow()})
    except IntegrityError as exc:  # a concurrent add of the same name won the race
        raise _taken(name) from exc


def list_users(wh: HasDatabase, now: datetime | None = None) -> pd.DataFrame:
    """Users (never their hashes): name, role, created_at, password_changed_at, tokens
    (active), sessions (open)."""
    with wh.engine.connect() as conn:
        return wh.backend.fetch_frame(conn, wh.backend.sql("accounts/users_list"),
                                      {"now": now or utcnow()})


def remove_user(wh: HasDatabase, name: str) -> None:
    """Remove a user with every token and session it has (one transaction)."""
    with wh.engine.begin() as conn:
        _require_user(conn, wh, name)
        run(conn, wh.backend, "tokens_delete_user", {"user_name": name})
        run(conn, wh.backend, "sessions_delete_user", {"user_name": name})
        run(conn, wh.backend, "user_delete", {"name": name})
    cache.forget_all()


def set_password(wh: HasDatabase, name: str, password: str, now: datetime | None = None) -> None:
    """Change a user's password; the user's browser sessions end (tokens stay valid: they
    are revoked one by one, ``warehouse tokens revoke``)."""
    password_hash = hash_password(password)
    with wh.engine.begin() as conn:
        _require_user(conn, wh, name)
        run(conn, wh.backend, "user_set_password",
            {"name": name, "password_hash": password_hash, "now": now or utcnow()})
        run(conn, wh.backend, "sessions_delete_user", {"user_name": name})
    cache.forget_all()


def user_count(wh: HasDatabase) -> int:
    """How many users exist (0: nobody can log in; the server may run in open mode)."""
    with wh.engine.connect() as conn:
        return int(run(conn, wh.backend, "user_count").scalar_one())


def check_login(wh: HasDatabase, name: str, password: str) -> Identity | None:
    """The user if ``password`` is theirs, else None. Takes as long for an unknown name as
    for a wrong password; upgrades an old hash to today's parameters on success."""
    row = None
    if isinstance(name, str) and len(name) <= 64:
        with wh.engine.connect() as conn:
            row = run(conn, wh.backend, "user_get", {"name": name}).mappings().first()
    if not verify_password(row["password_hash"] if row else None, password) or row is None:
        return None
    if needs_rehash(row["password_hash"]):
        with wh.engine.begin() as conn:
            run(conn, wh.backend, "user_set_password",
                {"name": name, "password_hash": hash_password(password),
                 "now": row["password_changed_at"]})
    return Identity(row["name"], row["role"], ROLE_SCOPES[row["role"]], via="password")


def get_role(wh: HasDatabase, name: str) -> str:
    """The role of user ``name`` (UnknownNameError if there is no such user)."""
    with wh.engine.connect() as conn:
        return _require_user(conn, wh, name)["role"]


def _require_user(conn, wh: HasDatabase, name: str):
    row = run(conn, wh.backend, "user_get", {"name": name}).mappings().first()
    if row is None:
        raise UnknownNameError(f"no user named {name!r}")
    return row


def _taken(name: str) -> ValidationError:
    return ValidationError("user", [FieldProblem(None, "name", f"a user named {name!r} exists")])
