"""What keeps recording from breaking the recipe, and bad text from reaching a spill file.

Two policies, chosen by who produced the value (see docs/recording.md, "Bad text"):

- What the **recorder itself** produces (exception type and message, traceback, host,
  ``run.attributes`` as changed during the run) is *sanitised*: NUL characters and lone
  surrogates (invalid UTF-8 decoded with ``surrogateescape``) become U+FFFD, and text is cut
  to its limit. An exception message with ``\\x00`` must not cost the run its record.
- What the **user passes explicitly** (names, label keys and values, ``params``,
  ``attributes`` and ``depends_on`` given when a run or step is created) is *checked*: a
  value the engines would refuse raises :class:`~warehouse.errors.ValidationError` (a
  ``ValueError``) at the line that wrote it, before anything is buffered.

PostgreSQL refuses NUL in ``text`` and ``\\u0000`` in ``jsonb`` and any text that is not
valid UTF-8 ("invalid byte sequence for encoding UTF8"); DuckDB refuses invalid UTF-8
("Invalid unicode"). Python strings cannot hold invalid UTF-8 except as lone surrogates,
which is what this module looks for.

:func:`internal_failure` is how the recorder reports its own failures: one warning per kind
of failure and process (then debug lines), never an exception into the recipe.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from typing import Any

from warehouse.config import MAX_ERROR_MESSAGE_LENGTH, MAX_NAME_LENGTH
from warehouse.errors import FieldProblem, ValidationError

log = logging.getLogger("warehouse.recorder")

#: Characters no engine stores in text: NUL, and UTF-16 surrogates (a Python string holds
#: one only when it came from bytes that were not valid UTF-8, or was built by hand).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
REPLACEMENT = "\ufffd"

#: Limit of a ``params``/``attributes`` object as JSON text. The engines take far more
#: (PostgreSQL jsonb ~255 MB), but a run row is buffered, spilled and replayed as one line:
#: 1 MiB keeps every line small enough to read back in one go.
MAX_JSON_CHARS = 2**20
#: Limit of ``error_type`` (a module-qualified class name).
MAX_ERROR_TYPE_LENGTH = MAX_NAME_LENGTH
#: Limit of a ``depends_on`` entry: a step id, "<ordinal>:<name>" cut to the name limit.
MAX_STEP_ID_LENGTH = MAX_NAME_LENGTH


# -- the recorder's own failures ----------------------------------------------------------
_reported: set[str] = set()
_reported_lock = threading.Lock()
failure_counts: dict[str, int] = {}


def internal_failure(kind: str, exc: BaseException | None = None) -> None:
    """Report a failure of the recorder itself (not of the recipe): a warning with the
    traceback the first time ``kind`` happens in this process, a debug line afterwards.
    Never raises; counted in :data:`failure_counts`."""
    try:
        with _reported_lock:
            failure_counts[kind] = failure_counts.get(kind, 0) + 1
            first = kind not in _reported
            _reported.add(kind)
        if first:
            log.warning("recorder: %s failed; the recipe goes on, recording may be incomplete "
                        "(further failures of this kind are logged at debug level)", kind,
                        exc_info=exc)
        else:
            log.debug("recorder: %s failed again: %r", kind, exc)
    except Exception:  # noqa: BLE001 - logging itself failed (closed stream...): nothing left
        pass


# -- text the recorder produces: sanitised --------------------------------------------------
def clean_text(value: str | None, limit: int | None = None) -> str | None:
    """``value`` with NUL and lone surrogates replaced by U+FFFD, cut to ``limit``
    characters (the last one then is "…")."""
    if value is None:
        return None
    if not isinstance(value, str):
        value = str(value)
    if _UNSTORABLE.search(value):
        value = _UNSTORABLE.sub(REPLACEMENT, value)
    if limit is not None and len(value) > limit:
        value = value[:limit - 1] + "…"
    return value


def clean_json(value: Any, depth: int = 0) -> Any:
    """A JSON-ready copy of ``value`` with every key and string cleaned (see
    :func:`clean_text`); non-JSON values become their ``str``; nesting deeper than 64 levels
    becomes text."""
    if isinstance(value, str):
        return clean_text(value)
    if value is None or isinstance(value, (bool, int)):
        return value
    if isinstance(value, float):
        return value if value - value == 0.0 else str(value)  # NaN/inf are not JSON
    if depth >= 64:
        return clean_text(repr(value)[:1000])
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v, depth + 1) for v in value]
    return clean_text(str(value))


def clean_object(value: Any) -> dict | None:
    """A dict the recorder stores at the end of a run or step (``run.attributes``, which the
    user may have changed): cleaned and, when its JSON is longer than
    :data:`MAX_JSON_CHARS`, replaced by ``{"truncated": <the start of its JSON>}``. Never
    raises: whatever cannot be stored becomes text."""
    if value is None:
        return None
    try:
        if not isinstance(value, dict):
            value = {"value": value}
        cleaned = clean_json(value)
        text = json.dumps(cleaned)
    except Exception:  # noqa: BLE001 - a __str__ that raises, a recursion error...
        try:
            return {"unstorable": clean_text(repr(value)[:1000])}
        except Exception:  # noqa: BLE001
            return {"unstorable": type(value).__name__}
    if len(text) > MAX_JSON_CHARS:
        return {"truncated": text[:MAX_JSON_CHARS // 2]}
    return cleaned


# -- text the user passes: checked ----------------------------------------------------------
def text_problem(value: str, limit: int | None = None) -> str | None:
    """What makes a string unstorable, or None."""
    found = _UNSTORABLE.search(value)
    if found:
        where = found.start()
        if found.group() == "\x00":
            return f"contains a NUL character (at {where})"
        return f"is not valid UTF-8 text (lone surrogate {found.group()!r} at {where})"
    if limit is not None and len(value) > limit:
        return f"is {len(value)} characters long; the limit is {limit}"
    return None


def reject(what: str, field: str, message: str) -> ValidationError:
    """The ValidationError raised at the call site for a bad argument."""
    return ValidationError(what, [FieldProblem(None, field, message)])


def check_text(value: Any, what: str, field: str, limit: int | None = None) -> str:
    """``value`` if it is storable text, else ValidationError naming ``what`` and ``field``."""
    if not isinstance(value, str):
        raise reject(what, field, f"must be text, got {type(value).__name__}")
    problem = text_problem(value, limit)
    if problem:
        raise reject(what, field, problem)
    return value


def check_json_text(value: Any, what: str, field: str, path: str = "") -> None:
    """Every key and string inside a JSON-ready value is storable (ValidationError naming the
    key path, e.g. ``params.files[2]``, otherwise)."""
    stack = [(path or field, value)]
    while stack:
        where, item = stack.pop()
        if isinstance(item, str):
            problem = text_problem(item)
            if problem:
                raise reject(what, where, problem)
        elif isinstance(item, dict):
            for key, inner in item.items():
                problem = text_problem(key)
                if problem:
                    raise reject(what, f"{where} key {key!r:.40}", problem)
                stack.append((f"{where}.{key}", inner))
        elif isinstance(item, list):
            stack.extend((f"{where}[{i}]", inner) for i, inner in enumerate(item))


def check_json_object(value: Any, what: str, field: str) -> dict | None:
    """A JSON-safe copy of a dict the user passes (``params``, ``attributes``): non-JSON
    values become text; NaN/inf, unstorable text and objects longer than
    :data:`MAX_JSON_CHARS` raise ValidationError (a ValueError) naming the field."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise reject(what, field, f"must be a dict, got {type(value).__name__}")
    try:
        text = json.dumps(value, default=str, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        raise reject(what, field, f"cannot be stored as JSON: {exc}") from None
    if len(text) > MAX_JSON_CHARS:
        raise reject(what, field, f"is {len(text)} characters as JSON; the limit is "
                                  f"{MAX_JSON_CHARS}")
    copy = json.loads(text)
    check_json_text(copy, what, field)
    return copy


__all__ = [
    "MAX_ERROR_MESSAGE_LENGTH",
    "MAX_ERROR_TYPE_LENGTH",
    "MAX_JSON_CHARS",
    "check_json_object",
    "check_text",
    "clean_json",
    "clean_object",
    "clean_text",
    "internal_failure",
    "reject",
    "text_problem",
]
