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
from warehouse.ingest.validate import (
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
    ``series``, which lists each distinct (metric, labels_key, labels) once)."""

    frame: pd.DataFrame
    series: pd.DataFrame
    received: int


def as_frame(data) -> pd.DataFrame:
    """A DataFrame view of any accepted input."""
    if isinstance(data, pd.DataFrame):
        return data
    if isinstance(data, (pa.Table, pa.RecordBatch)):
        return data.to_pandas(maps_as_pydicts="strict")
    if isinstance(data, dict):
        return pd.DataFrame(data)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        return pd.DataFrame.from_records(list(data))
    raise TypeError(
        f"expected a pandas DataFrame, a pyarrow Table or a list of records, got {type(data).__name__}"
    )


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


def _label_keys_from_dicts(column: pd.Series, problems: Problems) -> np.ndarray:
    """Canonical label keys for a column of dicts / JSON text / nulls (cached per label set)."""
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
        if message:
            bad.setdefault(message, []).append(column.index[i])
            keys[i] = None
            continue
        key = canonical_labels(parsed)
        keys[i] = key
        try:
            cache[cache_key] = key
        except TypeError:  # unhashable label values were already reported above
            pass
    for message, rows in bad.items():
        problems.add(rows, "labels", message)
    return keys


def _label_keys_from_columns(frame: pd.DataFrame, names: Sequence[str],
                             problems: Problems) -> np.ndarray:
    """Canonical label keys when labels are plain columns: work per distinct combination."""
    combos = frame[list(names)].drop_duplicates()
    key_of = {}
    for row in combos.itertuples(index=True, name=None):
        index, values = row[0], row[1:]
        labels = {n: v for n, v in zip(names, values) if v is not None and v == v}
        message = label_problems(labels)
        if message:
            problems.add([index], "labels", message)
        key_of[tuple(values)] = canonical_labels(labels)
    codes = frame.groupby(list(names), sort=False, dropna=False).ngroup().to_numpy()
    firsts = frame.groupby(list(names), sort=False, dropna=False).head(1)
    lookup = np.array([key_of.get(tuple(r), "{}") for r in
                       firsts[list(names)].itertuples(index=False, name=None)], dtype=object)
    return lookup[codes]


def prepare_points(data, label_columns: Sequence[str] = ()) -> PointsBatch:
    """Validate input and return a :class:`PointsBatch`; raise ValidationError on any problem.

    Duplicate (metric, labels, ts) rows inside the batch are collapsed, the last one winning.
    """
    frame = as_frame(data)
    problems = Problems("points batch")
    label_columns = list(label_columns)
    check_columns(frame, REQUIRED, (*OPTIONAL, *label_columns), problems)
    if label_columns and "labels" in frame.columns:
        problems.add([None], "labels", "give labels either as a 'labels' column or as "
                                       "label_columns, not both")
    problems.raise_if_any()
    if frame.empty:
        return PointsBatch(pd.DataFrame(columns=["ts", "value", "run_id", "series_code"]),
                           pd.DataFrame(columns=["metric", "labels_key"]), 0)
    frame = unique_index(frame)
    check_names(frame["metric"], "metric", problems, max_length=MAX_NAME_LENGTH)
    ts = to_utc_timestamps(frame["ts"], "ts", problems)
    value = to_finite_floats(frame["value"], "value", problems)
    run_id = (to_uuid_strings(frame["run_id"], "run_id", problems, required=False)
              if "run_id" in frame.columns else pd.Series(None, index=frame.index, dtype=object))
    if label_columns:
        keys = _label_keys_from_columns(frame, label_columns, problems)
    elif "labels" in frame.columns:
        keys = _label_keys_from_dicts(frame["labels"], problems)
    else:
        keys = np.full(len(frame), "{}", dtype=object)
    problems.raise_if_any()

    identity = pd.DataFrame({"metric": frame["metric"].to_numpy(dtype=object), "labels_key": keys})
    grouped = identity.groupby(["metric", "labels_key"], sort=False)
    codes = grouped.ngroup().to_numpy(dtype="i8")
    series = grouped.head(1).reset_index(drop=True)
    out = pd.DataFrame({"ts": ts, "value": value, "run_id": run_id, "series_code": codes})
    duplicated = out.duplicated(["series_code", "ts"], keep="last").to_numpy()
    if duplicated.any():
        out = out[~duplicated]
    return PointsBatch(out, series, len(frame))
