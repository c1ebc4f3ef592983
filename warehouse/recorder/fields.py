"""What goes into a run or step row: ids, timestamps, names, labels, JSON objects, outcome.

Names, labels and the objects given when a run or step is created are the user's: checked,
and refused at the call site (ValidationError, a ValueError). The outcome (error type,
message, traceback) and objects read at exit time are the recorder's own: cleaned, never
refused (see ``safety.py``).
"""

from __future__ import annotations

import os
import time
import traceback
import uuid
from typing import Any

from warehouse.config import MAX_ERROR_MESSAGE_LENGTH, MAX_NAME_LENGTH
from warehouse.ingest.validate import NAME_PATTERN, label_problems
from warehouse.recorder.safety import (
    MAX_ERROR_TYPE_LENGTH,
    check_json_object,
    clean_object,
    clean_text,
    reject,
    text_problem,
)

TRACEBACK_FRAMES = 8  # the innermost frames are the ones that explain a failure
TRACEBACK_CHARS = 4000

#: Names already checked (a set add is atomic: threads may share it).
_valid_names: set[str] = set()
_perf_ns = time.perf_counter_ns


def check_name(value: str, what: str) -> str:
    """Return ``value`` if it is a valid recipe/step/metric name, else raise ValueError.

    Checked when the run, step or metric is created (cached), so that a bad name fails at the
    line that wrote it instead of rejecting a whole batch later on the writer thread."""
    if value in _valid_names:
        return value
    if not isinstance(value, str) or not value or len(value) > MAX_NAME_LENGTH \
            or not NAME_PATTERN.match(value):
        raise ValueError(f"{what} name {value!r:.80} is invalid: 1-{MAX_NAME_LENGTH} characters "
                         f"matching {NAME_PATTERN.pattern}")
    _valid_names.add(value)
    return value


def check_labels(labels: dict | None, what: str = "labels") -> tuple[tuple[str, str], ...]:
    """Labels as a tuple of pairs, or ValidationError (a ValueError) saying what is wrong:
    the rules of ingest, and values must be storable text (no NUL, valid UTF-8)."""
    if not labels:
        return ()
    problem = label_problems(labels)
    if problem:
        raise reject(what, "labels", problem)
    for key, value in labels.items():
        problem = text_problem(value)
        if problem:
            raise reject(what, f"labels.{key}", problem)
    return tuple(labels.items())


def as_json_object(value: Any, what: str, *, strict: bool = True) -> dict | None:
    """A JSON-safe copy of a dict (non-JSON values become text). With ``strict`` (what the
    user passes when creating a run or step) a value that cannot be stored raises
    ValidationError; otherwise (at exit time, when a recording problem must not replace the
    recipe's own outcome) it is cleaned, cut or replaced by text, never refused."""
    if strict:
        return check_json_object(value, what, what)
    return clean_object(value)


def status_of(exc_type, exc) -> str:
    """succeeded, failed or cancelled for a context exit (SystemExit(0) is a success)."""
    if exc_type is None:
        return "succeeded"
    if issubclass(exc_type, SystemExit) and getattr(exc, "code", 1) in (None, 0):
        return "succeeded"
    if issubclass(exc_type, (KeyboardInterrupt, GeneratorExit)) or \
            exc_type.__name__ == "CancelledError":
        return "cancelled"
    return "failed"


def outcome(exc_type, exc, tb) -> tuple[str, str | None, str | None, str | None]:
    """(status, error_type, error_message, short traceback) for a context exit.

    The texts are the recorder's own: cleaned of what no engine stores (NUL, lone
    surrogates) and cut to their limits, so a strange exception never costs the run its
    record; an exception whose ``str()`` raises gets a placeholder message."""
    status = status_of(exc_type, exc)
    if status == "succeeded":
        return status, None, None, None
    module = getattr(exc_type, "__module__", None)
    name = exc_type.__qualname__ if module == "builtins" else f"{module}.{exc_type.__qualname__}"
    name = clean_text(name, MAX_ERROR_TYPE_LENGTH)
    try:
        message = str(exc) or None
    except Exception:  # noqa: BLE001 - the exception's own __str__ failed
        message = f"<{name}: str() failed>"
    message = clean_text(message, MAX_ERROR_MESSAGE_LENGTH)
    try:
        text = "".join(traceback.format_exception(exc_type, exc, tb, limit=-TRACEBACK_FRAMES))
    except Exception:  # noqa: BLE001
        text = f"{name}: (traceback could not be formatted)"
    return status, name, message, clean_text(text[-TRACEBACK_CHARS:])


def uuid7() -> uuid.UUID:
    """A time-ordered UUID (RFC 9562 version 7): 48 bits of Unix ms, then 74 random bits.

    Ids made later sort later, which keeps index inserts local (Python 3.11 has no uuid7)."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = ((ms & (2**48 - 1)) << 80) | (0x7 << 76) | (((rand >> 62) & 0xFFF) << 64) \
        | (0b10 << 62) | (rand & (2**62 - 1))
    return uuid.UUID(int=value)


class Clock:
    """Wall-clock µs anchored once at a run's start, advanced by the monotonic perf counter."""

    __slots__ = ("last", "perf0", "wall0")

    def __init__(self) -> None:
        self.perf0 = _perf_ns()
        self.wall0 = time.time_ns() // 1000
        self.last = 0

    def at(self, perf_ns: int) -> int:
        return self.wall0 + (perf_ns - self.perf0) // 1000

    def point_ts(self) -> int:
        # Points are keyed by (series, ts): two values of one series in the same µs would
        # collapse into one, so each point of a run gets a strictly later µs than the last.
        ts = self.wall0 + (_perf_ns() - self.perf0) // 1000
        if ts <= self.last:
            ts = self.last + 1
        self.last = ts
        return ts
