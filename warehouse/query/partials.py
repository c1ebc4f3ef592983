"""Per-series partial aggregates merged into one wide answer in NumPy.

A bucketed ``wh.frame`` asks the engine for one row per (bucket, series) with the partial
of its aggregate (max, min, sum, count, or sum and count for a mean), then merges those rows
here: each series belongs to a label group and a metric, so a partial lands in one cell of
the (group, bucket) × metric answer. Done in SQL, the merge was a join with the series
mapping and ten FILTER aggregates over the partials: on TSBS double-groupby-all (DuckDB,
13,000 partials) that outer step cost as much as the scan of 4.3M points itself
(docs/tsbs.md). Here it is a few passes over the partials.

The semantics are SQL's: a cell with no partial is missing (NaN); NULL partials are
ignored; an output row exists where any metric has a partial.
"""

from __future__ import annotations

import numpy as np

#: Per-series partial SELECT list for each mergeable aggregate (``p``, and ``n`` for mean).
PARTIALS = {
    "max": "max(value) AS p", "min": "min(value) AS p", "sum": "sum(value) AS p",
    "count": "count(value) AS p", "mean": "sum(value) AS p, count(value) AS n",
}


def merge_partials(agg: str, rows: dict[str, np.ndarray], series_ids: np.ndarray,
                   groups: np.ndarray, metrics: np.ndarray, width: int) -> dict[str, np.ndarray]:
    """Columns ``t, grp, v0 .. v{width-1}`` sorted by (grp, t) from partial rows
    (``t`` bucket start in µs, ``series_id``, ``p`` and for a mean ``n``).

    ``series_ids[i]`` belongs to label group ``groups[i]`` and metric ``metrics[i]``."""
    t = np.asarray(rows["t"], dtype="i8")
    p = np.asarray(rows["p"], dtype="f8")
    order = np.argsort(series_ids, kind="stable")
    at = order[np.searchsorted(series_ids[order], np.asarray(rows["series_id"], dtype="i8"))]
    times, t_index = np.unique(t, return_inverse=True)
    key = groups[at].astype("i8") * len(times) + t_index
    keys, row = np.unique(key, return_inverse=True)  # sorted: by group, then time
    cell = row * width + metrics[at]
    size = len(keys) * width
    known = ~np.isnan(p)
    present = np.bincount(cell, weights=known, minlength=size) > 0
    if agg in ("max", "min"):
        values = _extreme(np.fmax if agg == "max" else np.fmin, cell, p, size)
    else:
        values = np.bincount(cell, weights=np.where(known, p, 0.0), minlength=size)
        if agg == "mean":
            n = np.asarray(rows["n"], dtype="f8")
            count = np.bincount(cell, weights=np.nan_to_num(n), minlength=size)
            present &= count > 0
            values = np.divide(values, count, out=np.full(size, np.nan), where=present)
    values = np.where(present, values, np.nan).reshape(len(keys), width)
    out = {"t": times[keys % len(times)], "grp": keys // len(times)}
    out.update({f"v{i}": values[:, i] for i in range(width)})
    return out


def _extreme(reduce: np.ufunc, cell: np.ndarray, p: np.ndarray, size: int) -> np.ndarray:
    """max/min of the partials per cell (NaN where a cell has none or only NULLs)."""
    values = np.full(size, np.nan)
    if np.bincount(cell, minlength=size).max(initial=0) <= 1:  # no merging: a scatter
        values[cell] = p
        return values
    order = np.argsort(cell, kind="stable")
    sorted_cells = cell[order]
    starts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    values[sorted_cells[starts]] = reduce.reduceat(p[order], starts)
    return values


def passing(op: str, column: np.ndarray, value: float) -> np.ndarray:
    """Rows whose ``column`` passes ``op value`` as SQL would (a missing value never does)."""
    compare = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal,
               "=": np.equal, "<>": np.not_equal}[op]
    with np.errstate(invalid="ignore"):
        return compare(column, value) & ~np.isnan(column)


__all__ = ["PARTIALS", "merge_partials", "passing"]
