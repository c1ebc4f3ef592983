"""Turn caller input into a validated points batch: one row per point with its series key.

Accepted input: a pandas DataFrame, a pyarrow Table, or an iterable of dict records, with
columns ``metric``, ``ts``, ``value`` and optionally ``labels`` (dict or JSON text per row)
and ``run_id``. Labels can instead be given as plain columns named in ``label_columns`` —
the fast path for big batches, since it needs no Python work per row.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa

from warehouse.config import MAX_NAME_LENGTH
from warehouse.errors import FieldProblem, ValidationError
from warehouse.ingest.keys import (
    first_rows,
    has_repeats,
    keys_increase,
    newest_rows,
    series_codes,
)
from warehouse.ingest.text import text_problem
from warehouse.ingest.validate import (
    LABEL_KEY_PATTERN,
    MAX_LABELS_BYTES,
    Problems,
    check_columns,
    check_names,
    label_problems,
    to_finite_floats,
    to_utc_timestamps,
    to_uuid_strings,
)

REQUIRED = ("metric", "ts", "value")
OPTIONAL = ("labels", "run_id")


@dataclass
class PointsBatch:
    """A validated batch: ``frame`` has ts, value, run_id and ``series_code`` (an index into
    ``series``, which lists each distinct (metric, labels_key) once, in order of first
    appearance). Keys (series, ts) are unique. ``ts_us`` is ``ts`` in µs since the epoch;
    ``newest`` per series the row of its newest point."""

    frame: pd.DataFrame
    series: pd.DataFrame
    received: int
    ts_us: np.ndarray
    newest: np.ndarray


def as_frame(data, what: str = "points batch") -> pd.DataFrame:
    """A DataFrame view of any accepted input; any other shape is a ValidationError (a list
    element that is not a record names its position)."""
    def refuse(row, message: str):
        return ValidationError(what, [FieldProblem(row, "(record)", message)])

    if isinstance(data, pd.DataFrame):
        frame = data
    elif isinstance(data, (pa.Table, pa.RecordBatch)):
        frame = data.to_pandas(maps_as_pydicts="strict")
    elif isinstance(data, dict):
        _check_column_names(data, refuse)
        try:
            frame = _frame_of(data)
        except (ValueError, TypeError) as exc:
            raise refuse(None, f"a dict must map column names to equal-length columns: "
                               f"{exc}") from None
    elif isinstance(data, Iterable) and not isinstance(data, (str, bytes, bytearray)):
        records = list(data)
        for position, record in enumerate(records):
            if not isinstance(record, dict):
                raise refuse(position, f"must be a record (a dict of column to value), got "
                                       f"{type(record).__name__}")
        _check_column_names({k: None for r in records for k in r}, refuse)
        frame = _frame_of(records) if records else pd.DataFrame()
    else:
        raise refuse(None, f"expected a pandas DataFrame, a pyarrow Table or a list of "
                           f"records, got {type(data).__name__}")
    columns = list(frame.columns)
    odd = [c for c in columns if not isinstance(c, str)]
    if odd:
        raise refuse(None, f"column names must be text, got {odd[0]!r:.40}")
    repeated = sorted({c for c in columns if columns.count(c) > 1})
    if repeated:
        raise refuse(None, f"column(s) given more than once: {', '.join(repeated)}")
    return frame


def _check_column_names(names, refuse) -> None:
    """Column names that are text must be valid text: pandas keeps names as Arrow strings,
    which cannot hold a lone surrogate (a UnicodeEncodeError, not a problem naming it)."""
    for name in names:
        problem = text_problem(name) if isinstance(name, str) else None
        if problem:
            raise refuse(None, f"column name {name!r:.60} {problem}")


def _frame_of(data) -> pd.DataFrame:
    try:
        return pd.DataFrame(data)
    except UnicodeEncodeError:
        # pandas stores text as Arrow (UTF-8), which cannot hold a lone surrogate; keep
        # Python objects so validation can name the row and field instead of crashing.
        return pd.DataFrame(data, dtype=object)


def _no_run_ids(index: pd.Index) -> pd.Series:
    """An all-null run_id column that costs nothing per row (an Arrow array of the null
    type, which has no buffer at all: no Python None per row to build, copy, test or
    reorder; typed as text it would zero 4 bytes of offsets a row, 95 ms for a TSBS day)."""
    return pd.Series(pd.arrays.ArrowExtensionArray(pa.nulls(len(index))), index=index)


def unique_index(frame: pd.DataFrame) -> pd.DataFrame:
    """Keep the caller's index (it names rows in error messages) unless it has repeats."""
    return frame if frame.index.is_unique else frame.reset_index(drop=True)


def canonical_labels(labels: dict) -> str:
    """The labels' identity: compact JSON with sorted keys."""
    return json.dumps(labels, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _parse_labels(value) -> tuple[dict | None, str | None]:
    """A label dict from a dict or JSON text, or the reason it is not one."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None, "must be a JSON object (text is not valid JSON)"
    message = label_problems(value)
    return (None, message) if message else (value, None)


def _label_keys_from_dicts(column: pd.Series, problems: Problems):
    """(codes, keys): per row an index into ``keys``, the distinct canonical label sets.

    Each distinct label set is checked and serialised once (cached on its items)."""
    cache: dict = {}
    keys = np.empty(len(column), dtype=object)
    bad: dict[str, list] = {}
    for i, value in enumerate(column.to_numpy(dtype=object)):
        if value is None or (isinstance(value, float) and value != value):
            keys[i] = "{}"
            continue
        try:
            cache_key = value if isinstance(value, str) else tuple(value.items())
            keys[i] = cache[cache_key]
            continue
        except (KeyError, TypeError, AttributeError):
            pass
        parsed, message = _parse_labels(value)
        key = canonical_labels(parsed) if not message else "{}"
        message = message or _labels_size_problem(key)
        if message:
            bad.setdefault(message, []).append(column.index[i])
            keys[i] = "{}"
            continue
        keys[i] = key
        try:
            cache[cache_key] = key
        except TypeError:  # unhashable label values were already reported above
            pass
    for message, rows in bad.items():
        problems.add(rows, "labels", message)
    codes, uniques = pd.factorize(keys)
    return codes, np.asarray(uniques, dtype=object)


def _column_codes(column: pd.Series) -> tuple[np.ndarray, int]:
    """Per-row codes of one column and how many values they take (see
    :func:`~warehouse.ingest.keys.series_codes`): a categorical's codes are free (-1 is
    missing); anything else is factorised, missing values getting a code of their own."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return column.cat.codes.to_numpy(), len(column.cat.categories) + 1
    codes, uniques = pd.factorize(column, use_na_sentinel=False)
    return codes, max(len(uniques), 1)


def _label_column_codes(frame: pd.DataFrame, names: Sequence[str], problems: Problems):
    """Per label column its (codes, width), or None (and a problem) if a column holds values
    that cannot be label text (lists, dicts: unhashable)."""
    parts = []
    for name in names:
        try:
            parts.append(_column_codes(frame[name]))
        except TypeError:
            column = frame[name]
            problems.add(frame.index[column.map(lambda v: not isinstance(
                v, (str, int, float, type(None)))).to_numpy(dtype=bool)], "labels",
                f"label column {name!r} must hold text")
            return None
    return parts


def _label_keys_of_series(frame: pd.DataFrame, names: Sequence[str], codes: np.ndarray,
                          firsts: np.ndarray, problems: Problems) -> np.ndarray:
    """The canonical labels of each series (labels as plain columns), built from the series'
    first row: the work is per distinct label set, never per row. A bad label set is one
    problem naming every row that carries it, whatever the metric."""
    keys = np.empty(len(firsts), dtype=object)
    label_sets: dict[tuple, tuple[str, str | None, list[int]]] = {}
    rows = frame[list(names)].iloc[firsts].itertuples(index=False, name=None)
    for position, values in enumerate(rows):
        labels = {n: v for n, v in zip(names, values) if not pd.api.types.is_scalar(v)
                  or not pd.isna(v)}
        identity = tuple(sorted(labels.items()))
        if identity not in label_sets:
            message = label_problems(labels)
            key = canonical_labels(labels) if not message else "{}"
            label_sets[identity] = key, message or _labels_size_problem(key), []
        key, message, positions = label_sets[identity]
        keys[position] = key
        positions.append(position)
    for _, message, positions in label_sets.values():
        if message:
            bad = np.zeros(len(firsts), dtype=bool)
            bad[positions] = True
            problems.add(frame.index[bad[codes]], "labels", message)
    return keys


def _labels_size_problem(key: str) -> str | None:
    size = len(key.encode("utf-8"))
    if size > MAX_LABELS_BYTES:
        return f"labels take {size} bytes as JSON; the limit is {MAX_LABELS_BYTES}"
    return None


def _check_label_columns(frame: pd.DataFrame, names: list[str], problems: Problems,
                         reserved: tuple[str, ...] = (*REQUIRED, *OPTIONAL)) -> None:
    """``label_columns`` must name existing, distinct columns that are valid label names and
    not ``reserved`` (the batch's own columns)."""
    seen = set()
    for name in names:
        if not isinstance(name, str) or not LABEL_KEY_PATTERN.match(name):
            problems.items.append(FieldProblem(None, "label_columns", (
                f"{name!r:.40} is not a valid label name ({LABEL_KEY_PATTERN.pattern})")))
        elif name in reserved:
            problems.items.append(FieldProblem(None, "label_columns", (
                f"{name!r} is a column of the batch itself, not a label")))
        elif name not in frame.columns:
            problems.items.append(FieldProblem(None, "label_columns", (
                f"names column {name!r}, which the data does not have; columns: "
                f"{', '.join(map(str, frame.columns))}")))
        elif name in seen:
            problems.items.append(FieldProblem(None, "label_columns", (
                f"{name!r} is named twice")))
        seen.add(name)


def prepare_points(data, label_columns: Sequence[str] = ()) -> PointsBatch:
    """Validate input and return a :class:`PointsBatch`; raise ValidationError on any problem.

    Duplicate (metric, labels, ts) rows inside the batch are collapsed, the last one winning.
    """
    frame = as_frame(data)
    problems = Problems("points batch")
    # A single name is one label column, not a sequence of one-letter names.
    label_columns = [label_columns] if isinstance(label_columns, str) else list(label_columns)
    _check_label_columns(frame, label_columns, problems)
    check_columns(frame, REQUIRED, (*OPTIONAL, *label_columns), problems)
    if label_columns and "labels" in frame.columns:
        problems.add([None], "labels", "give labels either as a 'labels' column or as "
                                       "label_columns, not both")
    problems.raise_if_any()
    if frame.empty:
        empty = np.zeros(0, dtype="i8")
        return PointsBatch(pd.DataFrame(columns=["ts", "value", "run_id", "series_code"]),
                           pd.DataFrame(columns=["metric", "labels_key"]), 0, empty, empty)
    frame = unique_index(frame)
    check_names(frame["metric"], "metric", problems, max_length=MAX_NAME_LENGTH)
    ts = to_utc_timestamps(frame["ts"], "ts", problems)
    value = to_finite_floats(frame["value"], "value", problems)
    run_id = (to_uuid_strings(frame["run_id"], "run_id", problems, required=False)
              if "run_id" in frame.columns else _no_run_ids(frame.index))
    label_parts = []
    if label_columns:
        label_parts = _label_column_codes(frame, label_columns, problems)
        if label_parts is None:
            problems.raise_if_any()
    elif "labels" in frame.columns:
        key_codes, keys = _label_keys_from_dicts(frame["labels"], problems)
        label_parts = [(key_codes, len(keys))]
    # A series is a (metric, label set) pair: one code per row for the combination, numbered
    # in order of first appearance; names and labels are then built per series. (With bad
    # metrics the codes cover the labels only, to name the rows of bad label sets too.)
    metric_ok = not any(p.field == "metric" for p in problems.items)
    metric_parts = [_column_codes(frame["metric"])] if metric_ok else []
    codes = series_codes([*metric_parts, *label_parts], len(frame))
    firsts = first_rows(codes)
    if label_columns:
        labels_key = _label_keys_of_series(frame, label_columns, codes, firsts, problems)
    elif "labels" in frame.columns:
        labels_key = keys[key_codes[firsts]]
    else:
        labels_key = np.full(len(firsts), "{}", dtype=object)
    problems.raise_if_any()
    series = pd.DataFrame({"metric": frame["metric"].iloc[firsts].to_numpy(dtype=object),
                           "labels_key": labels_key})
    ts_us = ts.to_numpy(dtype="datetime64[us]").view("i8")
    if not keys_increase(codes, ts_us, len(series)) and has_repeats(codes, ts_us):
        keep = ~pd.DataFrame({"c": codes, "t": ts_us}).duplicated(keep="last").to_numpy()
        ts, value, run_id = ts[keep], value[keep], run_id[keep]
        codes, ts_us = codes[keep], ts_us[keep]
    out = pd.DataFrame({"ts": ts, "value": value, "run_id": run_id, "series_code": codes},
                       copy=False)
    return PointsBatch(out, series, len(frame), ts_us, newest_rows(codes, ts_us, len(series)))
