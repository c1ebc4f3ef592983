"""How secrets are kept: Argon2id for passwords, SHA-256 for random tokens and session ids.

Passwords are chosen by people and may be guessable, so they get a slow, memory-hard hash
(Argon2id, argon2-cffi's RFC 9106 low-memory profile: t=3, m=64 MiB, p=4; ~0.1 s here) that
makes each guess against a stolen table expensive. Tokens and session ids are 256 random
bits from :mod:`secrets`: no guess list exists, so a fast hash is as safe as a slow one, and
a deterministic digest can be looked up by index on every request (Argon2 would cost 0.1 s of
CPU per API call and need a scan). A stolen table of digests gives no usable credential.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from warehouse.errors import FieldProblem, ValidationError

_HASHER = PasswordHasher()  # argon2id, RFC 9106 low-memory parameters
# Each Argon2 computation takes 64 MiB and a core for ~0.1 s: at most two at a time, so a
# burst of logins queues instead of exhausting memory (the rate limiter stops floods).
_ARGON2_SLOTS = threading.BoundedSemaphore(2)
# Verified against when a login names no user, so that answer takes as long as a wrong
# password (the timing does not tell which user names exist).
_DUMMY_HASH = _HASHER.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024  # Argon2 accepts more; a cap keeps a request from hashing megabytes
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
TOKEN_PREFIX = "wht_"  # recognisable by secret scanners and in logs


def hash_password(password: str) -> str:
    """The Argon2id hash (PHC string, parameters and salt included) of a valid password."""
    check_password(password)
    with _ARGON2_SLOTS:
        return _HASHER.hash(password)


def verify_password(stored_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``stored_hash``; with no hash, spend the same time and
    say no."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    with _ARGON2_SLOTS:
        try:
            return _HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False


def needs_rehash(stored_hash: str) -> bool:
    """Whether a hash was made with weaker parameters than today's (rehash at next login)."""
    return _HASHER.check_needs_rehash(stored_hash)


def check_password(password: str) -> None:
    """Raise ValidationError unless ``password`` is a string of acceptable length."""
    if not isinstance(password, str):
        problem = "must be text"
    elif len(password) < MIN_PASSWORD_LENGTH:
        problem = f"must be at least {MIN_PASSWORD_LENGTH} characters"
    elif len(password) > MAX_PASSWORD_LENGTH:
        problem = f"must be at most {MAX_PASSWORD_LENGTH} characters"
    else:
        return
    raise ValidationError("password", [FieldProblem(None, "password", problem)])


def check_user_name(name: str) -> str:
    """``name`` if it is a valid user name (letters, digits, ``._@-``, at most 64)."""
    if not isinstance(name, str) or not USER_NAME.fullmatch(name):
        raise ValidationError("user", [FieldProblem(None, "name", (
            "must be 1-64 characters: letters, digits and . _ @ - (starting with a letter "
            "or digit)"))])
    return name


def new_secret() -> str:
    """A fresh token or session id: 32 random bytes, URL-safe."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """SHA-256 hex digest of a token or session id: what the database stores."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()
