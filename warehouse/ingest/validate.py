"""Column checks shared by every ingest path. Each check is vectorised over a pandas column
and, on failure, reports the first bad row, the field, what was wrong and how many rows.

Rules (documented in docs/ingest.md):
- names (metric, recipe, step, label keys) match ``NAME_PATTERN`` and are at most
  ``MAX_NAME_LENGTH`` (label keys ``MAX_LABEL_KEY_LENGTH``) characters;
- timestamps are timezone-aware (datetime values, or ISO-8601 strings with an offset) and
  within ``TS_MIN``..``TS_MAX`` (years 1 to 9999, what every engine and Python can hold);
- numbers are real and finite (no complex, NaN, ±inf or booleans); a point's value is at
  most ``MAX_VALUE_MAGNITUDE`` (1e100) in magnitude, so sums of squares stay finite, and
  0 or at least ``MIN_VALUE_MAGNITUDE`` (1e-150), so squares do not underflow;
- every text — names, label keys and values, run and step text columns, error messages and
  every string inside params/attributes JSON — is valid UTF-8 without NUL characters
  (PostgreSQL refuses both; a lone surrogate cannot even be encoded), see :func:`text_problem`.

The small checks are public so other entry points (the recorder, the HTTP API) can refuse the
same values before buffering them: :func:`check_text` here for a column,
:func:`~warehouse.ingest.text.text_problem` and :func:`~warehouse.ingest.text.json_problem`
in ``warehouse.ingest.text`` for one value.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable

import numpy as np
import pandas as pd

from warehouse.config import (
    MAX_LABEL_KEY_LENGTH,
    MAX_NAME_LENGTH,
    MAX_VALUE_MAGNITUDE,
    MIN_VALUE_MAGNITUDE,
)
from warehouse.errors import FieldProblem, ValidationError
from warehouse.ingest.text import json_problem, shown, text_problem
from warehouse.schema import TS_MAX_US, TS_MIN_US

# Letters, digits and a few separators; no quotes, spaces or semicolons, so a name is safe
# to show in any UI or file name. SQL never sees a name outside a bind parameter anyway.
# Patterns end in \Z, not $: "$" also matches before a trailing newline ("cpu\n").
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.:/@+-]*\Z")
LABEL_KEY_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*\Z")
#: The canonical JSON of one label set, in UTF-8 bytes. It is part of the unique key of
#: ``series``; PostgreSQL refuses B-tree entries over ~2,700 bytes ("index row size exceeds
#: maximum", https://www.postgresql.org/docs/15/btree-implementation.html), so refuse first.
MAX_LABELS_BYTES = 2048
_OFFSET_PATTERN = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)


class Problems:
    """Collects problems for one batch; :meth:`raise_if_any` rejects the whole batch."""

    def __init__(self, what: str):
        self.what = what
        self.items: list[FieldProblem] = []
        self.bad_rows: set = set()

    def add(self, rows: Iterable, field: str, message: str) -> None:
        rows = list(rows)
        if not rows:
            return
        self.bad_rows.update(rows)
        suffix = f" ({len(rows)} rows)" if len(rows) > 1 else ""
        self.items.append(FieldProblem(_plain(rows[0]), field, message + suffix))

    def add_where(self, mask: np.ndarray | pd.Series, index: pd.Index, field: str, message: str):
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            self.add(index[mask], field, message)

    def raise_if_any(self) -> None:
        if self.items:
            raise ValidationError(self.what, self.items, count=len(self.bad_rows))


def _plain(row):
    return row.item() if hasattr(row, "item") else row


def check_columns(frame: pd.DataFrame, required: Iterable[str], allowed: Iterable[str],
                  problems: Problems) -> None:
    """Missing required columns and unknown columns are batch-level problems."""
    required, allowed = set(required), set(allowed) | set(required)
    for name in sorted(required - set(frame.columns)):
        problems.items.append(FieldProblem(None, name, "required column is missing"))
    unknown = [c for c in frame.columns if c not in allowed]
    if unknown:
        problems.items.append(FieldProblem(
            None, ", ".join(map(str, unknown)),
            f"unknown column(s); allowed: {', '.join(sorted(allowed))}"))


def _distinct_problems(column: pd.Series, judge) -> dict[str, list]:
    """Rows grouped by what ``judge(value)`` says is wrong with them. Each distinct value is
    judged once (a hash pass, no Python step per row), which keeps this cheap on
    million-row batches; unhashable values (lists, dicts) are judged row by row."""
    try:
        uniques = column.unique()
    except TypeError:
        bad: dict[str, list] = {}
        for row, value in zip(column.index, column.to_numpy(dtype=object)):
            if message := judge(value):
                bad.setdefault(message, []).append(row)
        return bad
    bad_values: dict[str, list] = {}
    for value in uniques:
        if message := judge(value):
            bad_values.setdefault(message, []).append(value)
    return {message: list(column.index[column.isin(values).to_numpy(dtype=bool)])
            for message, values in bad_values.items()}


def check_text(column: pd.Series, field: str, problems: Problems, *, required: bool = False,
               max_length: int | None = None) -> None:
    """Every present value of ``column`` must be text the databases can store
    (:func:`text_problem`); with ``required``, missing values are problems too."""
    present = ~column.isna().to_numpy(dtype=bool)
    if required:
        problems.add_where(~present, column.index, field, "is missing")
    for message, rows in _distinct_problems(
            column[present], lambda v: text_problem(v, max_length=max_length)).items():
        problems.add(rows, field, message)


def check_names(column: pd.Series, field: str, problems: Problems, *, required: bool = True,
                max_length: int = MAX_NAME_LENGTH, pattern: re.Pattern = NAME_PATTERN) -> None:
    """Names must be strings matching ``pattern`` and at most ``max_length`` characters."""
    missing = column.isna().to_numpy(dtype=bool)
    if required:
        problems.add_where(missing, column.index, field, "is missing")

    def judge(value) -> str | None:
        if not isinstance(value, str):
            return f"must be a string, got {type(value).__name__} {shown(value)}"
        if not value:
            return "must not be empty"
        if len(value) > max_length:
            return f"is {len(value)} characters long; the limit is {max_length}"
        if not pattern.match(value):
            return (f"{shown(value, 60)} has characters that are not allowed "
                    f"(pattern {pattern.pattern})")
        return None

    for message, rows in _distinct_problems(column[~missing], judge).items():
        problems.add(rows, field, message)


def to_utc_timestamps(column: pd.Series, field: str, problems: Problems,
                      *, required: bool = True) -> pd.Series:
    """Timezone-aware timestamps as datetime64[us, UTC]; naive ones are rejected."""
    index = column.index
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        result = column.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(column.dtype):
        problems.add_where(column.notna(), index, field,
                           "timestamps are naive (no time zone); give them a zone, e.g. UTC")
        return pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]")
    else:
        values = column.to_numpy(dtype=object)
        present = ~pd.isna(column).to_numpy()
        naive = np.zeros(len(values), dtype=bool)
        wrong = np.zeros(len(values), dtype=bool)
        for i in np.flatnonzero(present):
            v = values[i]
            if isinstance(v, str):
                naive[i] = not _OFFSET_PATTERN.search(v.strip())
            elif hasattr(v, "tzinfo"):
                try:
                    naive[i] = v.tzinfo is None or v.tzinfo.utcoffset(v) is None
                except Exception:  # noqa: BLE001 - a broken tzinfo is a bad value, not a crash
                    wrong[i] = True
            else:
                wrong[i] = True
        problems.add_where(wrong, index, field, "must be a timestamp (datetime or ISO-8601 text)")
        problems.add_where(naive, index, field,
                           "timestamp is naive (no time zone); give an offset, e.g. +00:00 or Z")
        ok = present & ~naive & ~wrong
        result = pd.Series(pd.NaT, index=index, dtype="datetime64[us, UTC]")
        if ok.any():
            try:
                parsed = pd.to_datetime(column[ok], utc=True, format="ISO8601")
            except (ValueError, TypeError, OverflowError):
                parsed = pd.to_datetime(column[ok], utc=True, format="ISO8601", errors="coerce")
                problems.add_where(parsed.isna(), parsed.index, field,
                                   "is not a valid ISO-8601 timestamp")
            result[ok] = parsed.dt.as_unit("us")
    result = result.dt.as_unit("us")
    if required:
        problems.add_where(column.isna().to_numpy(), index, field, "is missing")
    us = result.to_numpy(dtype="datetime64[us]").view("i8")
    present = ~np.isnat(result.to_numpy(dtype="datetime64[us]"))
    problems.add_where(present & ((us < TS_MIN_US) | (us > TS_MAX_US)), index, field,
                       "is outside the range the warehouse stores "
                       "(0001-01-01 to 9999-12-31T23:59:59.999999 UTC)")
    return result


def to_finite_floats(column: pd.Series, field: str, problems: Problems) -> np.ndarray:
    """Finite float64 values within ±MAX_VALUE_MAGNITUDE, 0 or at least MIN_VALUE_MAGNITUDE
    in magnitude; text, booleans, complex numbers, NaN, ±inf and other magnitudes are
    rejected."""
    index = column.index
    if pd.api.types.is_bool_dtype(column.dtype):
        problems.add(index, field, "must be a number, got booleans")
        return np.zeros(len(column))
    if pd.api.types.is_complex_dtype(column.dtype):
        # Casting would keep the real part silently: 1+2j must not be stored as 1.0. The
        # column may be complex only because pandas widened real numbers of other rows.
        raw = column.to_numpy(dtype="c16", na_value=np.nan)
        problems.add_where(raw.imag != 0, index, field,
                           "must be a real number, got a complex number")
        column = pd.Series(raw.real, index=index)
    if pd.api.types.is_numeric_dtype(column.dtype):
        values = column.to_numpy(dtype="f8", na_value=np.nan)
        wrong = np.zeros(len(values), dtype=bool)
    else:
        objects = column.to_numpy(dtype=object)
        complex_ = np.array([isinstance(v, (complex, np.complexfloating)) for v in objects],
                            dtype=bool)
        numeric = np.array([isinstance(v, (int, float, np.integer, np.floating))
                            and not isinstance(v, bool) for v in objects], dtype=bool)
        values = np.full(len(objects), np.nan)
        try:
            values[numeric] = objects[numeric].astype("f8")
        except OverflowError:  # a Python int beyond float range
            for i in np.flatnonzero(numeric):
                try:
                    values[i] = float(objects[i])
                except OverflowError:
                    values[i] = np.inf
        wrong = ~numeric & ~pd.isna(column).to_numpy()
        problems.add_where(complex_, index, field, "must be a real number, got a complex number")
        problems.add_where(wrong & ~complex_, index, field, "must be a number")
    problems.add_where(np.isnan(values) & ~wrong, index, field, "is missing or NaN")
    problems.add_where(np.isinf(values), index, field, "is infinite")
    problems.add_where(np.isfinite(values) & (np.abs(values) > MAX_VALUE_MAGNITUDE), index,
                       field, f"is beyond ±{MAX_VALUE_MAGNITUDE:g} (the largest magnitude stored)")
    problems.add_where((values != 0) & (np.abs(values) < MIN_VALUE_MAGNITUDE), index, field,
                       f"is closer to 0 than ±{MIN_VALUE_MAGNITUDE:g} (the smallest non-zero "
                       f"magnitude stored: its square would underflow)")
    return values


def to_optional_ints(column: pd.Series, field: str, problems: Problems,
                     *, minimum: int | None = 0) -> pd.Series:
    """Nullable Int64; fractional, non-finite, complex, boolean or out-of-range values are
    rejected."""
    index = column.index
    if column.isna().all():  # an absent optional column: nothing to check (~0.5 ms saved)
        return pd.Series(pd.NA, index=index, dtype="Int64")
    if pd.api.types.is_complex_dtype(column.dtype) or pd.api.types.is_bool_dtype(column.dtype):
        problems.add_where(column.notna().to_numpy(), index, field,
                           f"must be an integer, got {column.dtype}")
        return pd.Series(pd.NA, index=index, dtype="Int64")
    if column.dtype == object:
        # Only plain numbers and numeric text go on to to_numeric (which would accept
        # booleans and complex numbers, and raise on containers).
        plain = column.map(lambda v: isinstance(v, (int, float, str, np.integer, np.floating))
                           and not isinstance(v, (bool, np.bool_))).to_numpy(dtype=bool)
        problems.add_where(~plain & column.notna().to_numpy(), index, field,
                           "must be an integer")
        column = column.where(plain, other=None)
    numeric = pd.to_numeric(column, errors="coerce")
    not_number = numeric.isna() & column.notna()
    problems.add_where(not_number.to_numpy(), index, field, "must be an integer")
    values = numeric.to_numpy(dtype="f8", na_value=np.nan)
    problems.add_where(np.isinf(values), index, field, "is infinite")
    finite = np.isfinite(values)
    problems.add_where(finite & (values != np.round(values)), index, field,
                       "must be a whole number")
    if minimum is not None:
        problems.add_where(finite & (values < minimum), index, field, f"must be ≥ {minimum}")
    in_range = np.abs(values) <= 2**62
    problems.add_where(finite & ~in_range, index, field, "is out of range")
    # Out-of-range values become NA here (the batch is refused anyway): casting them would
    # raise pandas' own TypeError before the problems name the row and field.
    clean = np.where(finite & in_range, values, np.nan)
    return pd.Series(clean, index=index).round().astype("Int64")


def to_uuid_strings(column: pd.Series, field: str, problems: Problems,
                    *, required: bool) -> pd.Series:
    """Canonical UUID text (or None)."""
    present = column.notna().to_numpy()
    if required:
        problems.add_where(~present, column.index, field, "is missing")
    canonical = {}
    for value in pd.unique(column[present].to_numpy(dtype=object)):
        try:
            canonical[value] = str(value if isinstance(value, uuid.UUID) else uuid.UUID(str(value)))
        except (ValueError, TypeError, AttributeError):
            canonical[value] = None
    result = column.map(lambda v: canonical.get(v) if v is not None and v == v else None)
    problems.add_where(present & result.isna().to_numpy(), column.index, field,
                       "is not a valid UUID")
    return result.astype(object)


def to_json_text(column: pd.Series, field: str, problems: Problems, *, kind: type) -> pd.Series:
    """JSON text of dicts (or lists); JSON text input is parsed to check it."""
    out = []
    bad = np.zeros(len(column), dtype=bool)
    texts: dict[str, list] = {}
    for i, value in enumerate(column.to_numpy(dtype=object)):
        if value is None or (isinstance(value, float) and np.isnan(value)):
            out.append(None)
            continue
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                bad[i] = True
                out.append(None)
                continue
        if isinstance(value, np.ndarray):
            value = value.tolist()
        if not isinstance(value, kind):
            bad[i] = True
            out.append(None)
            continue
        try:
            # Checked as given, then as it will be stored (default=str makes text of objects).
            message = json_problem(value)
            dumped = json.dumps(value, sort_keys=True, allow_nan=False, default=str)
            message = message or json_problem(json.loads(dumped))
        except (ValueError, TypeError, RecursionError):
            bad[i] = True
            out.append(None)
            continue
        if message:
            texts.setdefault(message, []).append(column.index[i])
            out.append(None)
            continue
        out.append(dumped)
    problems.add_where(bad, column.index, field,
                       f"must be a JSON {'object' if kind is dict else 'array'} of finite values")
    for message, rows in texts.items():
        problems.add(rows, field, message)
    return pd.Series(out, index=column.index, dtype=object)


def label_problems(labels: dict) -> str | None:
    """What is wrong with one label set, or None."""
    from warehouse.config import MAX_LABELS_PER_SERIES

    if not isinstance(labels, dict):
        return f"must be a dict of label name to value, got {type(labels).__name__}"
    if len(labels) > MAX_LABELS_PER_SERIES:
        return f"has {len(labels)} labels; the limit is {MAX_LABELS_PER_SERIES}"
    for key, value in labels.items():
        if not isinstance(key, str) or not LABEL_KEY_PATTERN.match(key):
            return f"label name {shown(key)} must match {LABEL_KEY_PATTERN.pattern}"
        if len(key) > MAX_LABEL_KEY_LENGTH:
            return f"label name {key[:20]!r}… is longer than {MAX_LABEL_KEY_LENGTH} characters"
        if key == "run_id":
            return "label 'run_id' is not allowed: run ids explode series cardinality; " \
                   "pass run_id as a column instead"
        if not isinstance(value, str):
            return f"label {key!r} must be a string, got {type(value).__name__}"
        if message := text_problem(value):
            return f"label {key!r} {message}"
        if len(value) > MAX_NAME_LENGTH:
            return f"label {key!r} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}"
        if not value:
            return f"label {key!r} is empty"
    return None
