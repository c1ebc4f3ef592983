"""Per-row series codes and the (series, ts) key facts of a points batch, in a few O(n) numpy
passes: no Python per row, no hashing of text per row, no sort.

A TSBS day is 8.6M rows of 1,000 series with 11 categorical columns (metric + 10 tags); every
pass over it costs milliseconds to tens of milliseconds, so each fact takes as few passes as
possible. Measured on 8.6M rows (CPU ms, load ~7): in-place multiply + add 10, hash
factorisation into 1,000 codes 73 (but 1,400 into 8.6M distinct keys: the table leaves the
cache), stable radix argsort of 16-bit codes 112, one int64 column gathered through it 46,
``np.bincount`` 8, ``np.maximum.at`` into 1,000 slots 11.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Mixed-radix codes stay well inside int64; past this the partial code is re-factorised.
_RADIX_LIMIT = 2**62
# numpy's stable argsort is a radix sort (O(n)) for keys of 16 bits or fewer.
_RADIX_SORT_CODES = 2**16


def series_codes(parts: list[tuple[np.ndarray, int]], rows: int) -> np.ndarray:
    """One code per row for the combination of per-row code columns, numbered in order of
    first appearance (0, 1, 2, ...).

    ``parts`` holds (codes, width) per column, codes in ``[-1, width - 1)`` (a categorical's
    codes with -1 for missing, or factorised codes): the digits of a mixed-radix number. Each
    column costs two in-place passes (multiply, add) and the combination one hash pass; the
    constant a -1 digit shifts every number by cannot make two combinations equal."""
    if not parts:
        return np.zeros(rows, dtype="i8")
    combined = parts[0][0].astype("i8")
    cardinality = parts[0][1]
    for codes, width in parts[1:]:
        if cardinality * width >= _RADIX_LIMIT:
            combined, seen = pd.factorize(combined)
            combined = combined.astype("i8", copy=False)
            cardinality = max(len(seen), 1)
        combined *= width
        combined += codes
        cardinality *= width
    codes, _ = pd.factorize(combined)
    return codes


def first_rows(codes: np.ndarray) -> np.ndarray:
    """The first row of each code, for codes numbered in order of first appearance: a code is
    new exactly where the running maximum grows (no hashing, no sort)."""
    if not len(codes):
        return np.zeros(0, dtype="i8")
    running = np.maximum.accumulate(codes)
    return np.concatenate(([0], np.flatnonzero(running[1:] != running[:-1]) + 1))


def keys_increase(codes: np.ndarray, ts_us: np.ndarray, series: int) -> bool:
    """Whether every series' times increase strictly in input order (the usual batch), which
    proves that no (series, ts) key repeats: times grouped by series with a stable radix sort
    of the codes, series boundaries from their counts (no second gather)."""
    if len(codes) < 2:
        return True
    if series >= 2**16:  # beyond a radix sort: the exact hash test decides instead
        return False
    ts_sorted = ts_us[np.argsort(codes.astype("u2"), kind="stable")]
    rising = ts_sorted[1:] > ts_sorted[:-1]
    rising[np.cumsum(np.bincount(codes, minlength=series))[:-1] - 1] = True  # series changes
    return bool(rising.all())


def has_repeats(codes: np.ndarray, ts_us: np.ndarray) -> bool:
    """Exact test for a repeated (series, ts) key, for batches whose times do not increase
    per series: hash both into one int64; real repeats always collide, so False is exact,
    and a collision is confirmed on the real pair."""
    with np.errstate(over="ignore"):
        mixed = ts_us * np.int64(1_000_003) + codes.astype("i8")
    if not pd.Series(mixed).duplicated().any():
        return False
    return bool(pd.DataFrame({"c": codes, "t": ts_us}).duplicated().any())


def newest_rows(codes: np.ndarray, ts_us: np.ndarray, series: int) -> np.ndarray:
    """Per series code (0..series-1), the row of its newest point; keys must be unique, so
    exactly one row of each series holds its maximum."""
    newest = np.full(series, np.iinfo("i8").min, dtype="i8")
    np.maximum.at(newest, codes, ts_us)
    rows = np.flatnonzero(ts_us == newest[codes])
    out = np.empty(series, dtype="i8")
    out[codes[rows]] = rows
    return out
