"""Text the databases can store: valid UTF-8 without NUL characters, in plain values and
inside JSON. Small pure functions (no pandas), for every entry point (ingest validation, the
recorder, the HTTP API) to refuse the same values with the same words.

PostgreSQL refuses NUL in text and ``\\u0000`` in jsonb
(https://www.postgresql.org/docs/15/datatype-json.html), and no engine can store a lone
surrogate: Python text holding one (e.g. bytes decoded with ``surrogateescape``) is not
UTF-8 and cannot even be encoded.
"""

from __future__ import annotations

import numpy as np

#: Nesting depth of params/attributes/depends_on JSON (deeper is refused, not recursed into).
MAX_JSON_DEPTH = 64


def text_problem(value, *, max_length: int | None = None) -> str | None:
    """What is wrong with one text value, or None: not a str, a NUL character, a lone
    surrogate (invalid UTF-8, e.g. from bytes decoded with ``surrogateescape``), or longer
    than ``max_length`` characters."""
    if not isinstance(value, str):
        return f"must be text, got {type(value).__name__}"
    if "\x00" in value:
        return (f"contains a NUL character (\\x00) at position {value.index(chr(0))}, which "
                f"the databases cannot store")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        return (f"is not valid UTF-8: lone surrogate {value[exc.start]!r} at position "
                f"{exc.start}")
    if max_length is not None and len(value) > max_length:
        return f"is {len(value)} characters long; the limit is {max_length}"
    return None


def json_problem(value, depth: int = 0) -> str | None:
    """What is wrong with a JSON-able value (dict/list tree), or None: every key and string
    must pass :func:`text_problem`, numbers must be finite and real, depth at most
    ``MAX_JSON_DEPTH``."""
    if depth > MAX_JSON_DEPTH:
        return f"is nested deeper than {MAX_JSON_DEPTH} levels"
    if isinstance(value, str):
        return text_problem(value)
    if isinstance(value, dict):
        for key, item in value.items():
            message = (text_problem(key) if isinstance(key, str) else None) or \
                json_problem(item, depth + 1)
            if message:
                return f"{str(key)[:40]!r}: {message}" if isinstance(key, str) else message
        return None
    if isinstance(value, (list, tuple, np.ndarray)):
        for position, item in enumerate(value):
            message = json_problem(item, depth + 1)
            if message:
                return f"[{position}]: {message}"
        return None
    if isinstance(value, (complex, np.complexfloating)):
        return f"holds a complex number {value!r}, not a JSON value"
    return None


def shown(value, width: int = 40) -> str:
    """A short, printable repr for messages (reprs escape NUL, surrogates and newlines)."""
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a hostile __repr__ must not hide the real problem
        text = f"<{type(value).__name__}>"
    return text if len(text) <= width else text[:width - 1] + "…"
