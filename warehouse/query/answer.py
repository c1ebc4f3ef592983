"""The answer of a points query as a DataFrame, built once from typed columns.

Everything here runs after the query's statement, when the CPU caches hold the engine's
work rather than pandas': each pandas step costs several times what it does in a tight
loop, so the answer is made with as few as possible (bench/query_overhead.py; docs/query.md
"What one call runs"). Label columns are typed once per series and taken by row position;
what a repeated query needs again is remembered on its cached selection.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from pandas.arrays import DatetimeArray

from warehouse.query.catalog import Selection

#: The largest answer whose label columns are remembered for the next identical one.
TAKEN_MAX_ROWS = 10_000


class LabelTaker:
    """Columns of per-key values (one per series, or per group) at the rows' positions
    ``pos``, each typed as pandas infers the values present (text: its string dtype; only
    missing values: object), as building the column from the row values would. The type is
    inferred from one value per key, not per row, and, given a ``memo``, remembered there
    when every key is present (the usual answer). Given a ``memo``, each column returned
    is a copy of what is remembered: the answer may be changed in place."""

    def __init__(self, count: int, pos: np.ndarray, memo: dict | None = None):
        self.pos, self.memo = pos, memo
        # The columns taken for the last answer, reused when this one's rows are the same
        # series in the same order (a repeated query: a dashboard refresh, a polling loop).
        # Each answer gets copies (an Arrow string array's copy shares only its immutable
        # buffers), so an answer changed in place leaves the next one as it was.
        self.taken = None
        # Small answers only: a large one's positions and columns would stay in the cache
        # (up to 512 selections) after the answer is gone (21 MB for 1M rows, in review).
        if memo is not None and len(pos) <= TAKEN_MAX_ROWS:
            last = memo.get("taken")
            if last is not None and np.array_equal(last[0], pos):
                self.taken = last[1]
            else:
                self.taken = {}
                memo["taken"] = (pos, self.taken)
        present = np.bincount(pos, minlength=count) > 0 if len(pos) else None
        self.every_key = present is not None and bool(present.all())
        if self.every_key:
            self.present, self.inverse = None, pos
        elif present is not None:
            self.present = np.flatnonzero(present)
            self.inverse = np.searchsorted(self.present, pos)

    def column(self, name: str, values: np.ndarray | None):
        if len(self.pos) == 0:
            return object_column(np.empty(0, dtype=object))
        if values is None:
            return object_column(np.full(len(self.pos), None, dtype=object))
        if self.taken is not None and name in self.taken:
            return self.taken[name].copy()  # (Arrow text: a new array on the same buffers)
        key = ("label_array", name)
        remember = self.every_key and self.memo is not None
        distinct = self.memo.get(key) if remember else None
        if distinct is None:
            distinct = pd.Series(values if self.every_key else values[self.present]).array
            if remember:
                self.memo[key] = distinct
        column = distinct.take(self.inverse)
        if self.taken is not None:
            self.taken[name] = column
            return column.copy()
        return column


def row_positions(sel: Selection, sids: np.ndarray) -> np.ndarray:
    """Each row's position in the selection, from its series id (numpy only: a pandas index
    lookup cost more than the rest of a small answer's label columns)."""
    if len(sids) == 0:
        return np.array([], dtype="i8")
    if len(sel.ids) == 1:
        return np.zeros(len(sids), dtype="i8")
    if "id_order" not in sel.memo:
        order = np.argsort(sel.ids, kind="stable")
        sel.memo["id_order"] = (order, sel.ids[order])
    order, ordered = sel.memo["id_order"]
    return order[np.searchsorted(ordered, sids)]


UTC_US = pd.DatetimeTZDtype("us", "UTC")


def utc_from_us(us: np.ndarray):
    """µs since the epoch as a UTC datetime array (as ``pd.to_datetime(us, unit="us",
    utc=True)``, without its parsing machinery)."""
    return _utc_array(us.view("datetime64[us]"))


def utc_times(values):
    """Fetched times (UTC ``datetime64[us]``, aware datetimes, a column of either) as a UTC
    datetime array."""
    if isinstance(values, np.ndarray) and values.dtype == "datetime64[us]":
        return _utc_array(values)
    if len(values) == 0:  # pandas would infer seconds for nothing: every answer is in µs
        return _utc_array(np.empty(0, dtype="datetime64[us]"))
    return pd.to_datetime(values, utc=True).array


def _utc_array(values: np.ndarray):
    """A UTC datetime array over ``values`` (``datetime64[us]``, made for this answer: it is
    not copied). ``DatetimeArray._simple_new`` takes them as they are; ``pd.array`` checks
    and converts first, 25x the time for a 60-row answer (30 against 1.2 µs warm)."""
    try:
        return DatetimeArray._simple_new(values, dtype=UTC_US)
    except (AttributeError, TypeError):  # a pandas without this private constructor
        return pd.array(values, dtype=UTC_US)


def frame_from_columns(columns: dict) -> pd.DataFrame:
    """The answer from its columns: 1-D arrays of one length, each already of its final
    type (object columns stay object: no text inference) and shared with nothing kept.
    ``DataFrame._from_arrays`` without the integrity pass, which is what the dict
    constructor adds on top (index extraction, inference, a copy of every column): run
    after the statement, with the CPU caches cold, that pass cost ~0.3 ms, as much as all
    the rest of shaping a small answer (bench/query_overhead.py). The checks kept: every
    column one-dimensional and of the rows' length.
    tests/storage/test_points.py compares the dtypes with the dict constructor's."""
    arrays = list(columns.values())
    rows = len(arrays[0]) if arrays else 0
    try:
        return pd.DataFrame._from_arrays(arrays, columns=_column_names(tuple(columns)).copy(),
                                         index=pd.RangeIndex(rows), verify_integrity=False)
    except (AttributeError, TypeError):  # a pandas without this private constructor
        return pd.DataFrame(columns, copy=False)


@lru_cache(maxsize=256)
def _column_names(names: tuple[str, ...]) -> pd.Index:
    """The columns index of an answer (copied for each: an index's ``name`` can be set)."""
    return pd.Index(list(names))


def object_column(values: np.ndarray) -> pd.Series:
    """An object column kept as such: pandas would infer text as its string dtype, turning
    None into NaN (run_id has always held None, labels holds dicts). A Series: the
    DataFrame constructor infers that dtype even for an object extension array."""
    return pd.Series(values, dtype=object)


def run_id_texts(values: np.ndarray) -> np.ndarray:
    """run_id values as text, None where missing (as ``query.runs.optional_text``, vectorised)."""
    out = np.full(len(values), None, dtype=object)
    present = pd.notna(values)
    if present.any():
        out[present] = [str(v) for v in values[present]]
    return out
