"""Buffer items as DataFrames for the warehouse's writers (on the writer thread only).

Items are what runs and steps push: ``("runs"|"steps", row dict)`` with timestamps as µs since
the epoch, and ``("points", metric, value, ts_us, run_id, labels tuple)``.
"""

from __future__ import annotations

from operator import itemgetter

import numpy as np
import pandas as pd

from warehouse.recorder.spill import TIME_COLUMNS

_RESERVED = frozenset(("metric", "ts", "value", "run_id", "labels"))


def _times(values: list) -> pd.Series:
    return pd.to_datetime(pd.Series(pd.array(values, dtype="Int64")), unit="us", utc=True)


def rows_frame(rows: list[dict]) -> pd.DataFrame:
    """Run or step rows (timestamps as µs since the epoch) as a frame for write_runs/steps."""
    frame = pd.DataFrame.from_records(rows)
    for name in TIME_COLUMNS:
        if name in frame.columns:
            frame[name] = _times(frame[name].tolist())
    return frame


def _factorize(values) -> tuple[np.ndarray, np.ndarray]:
    codes, uniques = pd.factorize(np.fromiter(values, dtype=object, count=len(values)))
    return codes, np.asarray(uniques, dtype=object)


def points_frame(points: list[tuple]) -> tuple[pd.DataFrame, list[str]]:
    """Point items ``("points", metric, value, ts_us, run_id, labels)`` as a frame whose labels
    are categorical columns (the writer's fast path; categories make per-row checks run per
    distinct value) and the names of those columns."""
    n = len(points)
    metrics, values, stamps, run_ids, labels = (list(map(itemgetter(i), points))
                                                for i in range(1, 6))
    metric_codes, metric_names = _factorize(metrics)
    run_codes, run_values = _factorize(run_ids)  # None becomes code -1, i.e. missing
    # Label tuples are shared objects (one per step and label set): factorize by identity,
    # which is cheap, then look at one tuple per distinct object.
    lab_codes = pd.factorize(np.fromiter(map(id, labels), dtype=np.int64, count=n))[0]
    first = np.unique(lab_codes, return_index=True)[1]  # codes number first appearances
    dicts = [dict(labels[i]) for i in first]
    ts = pd.DatetimeIndex(np.fromiter(stamps, dtype=np.int64, count=n).view("datetime64[us]"))
    frame = pd.DataFrame({
        "metric": pd.Categorical.from_codes(metric_codes, categories=metric_names),
        "ts": ts.tz_localize("UTC"),
        "value": np.fromiter(values, dtype=np.float64, count=n),
        "run_id": pd.Categorical.from_codes(run_codes, categories=run_values),
    })
    keys = sorted({key for d in dicts for key in d})
    if _RESERVED.intersection(keys):  # a label named like a column: use the dict form
        frame["labels"] = [dicts[c] for c in lab_codes]
        return frame, []
    for key in keys:
        values_of = [d.get(key) for d in dicts]
        categories = list(dict.fromkeys(v for v in values_of if v is not None))
        position = {v: i for i, v in enumerate(categories)}
        per_set = np.array([position.get(v, -1) for v in values_of], dtype=np.int64)
        frame[key] = pd.Categorical.from_codes(per_set[lab_codes], categories=categories)
    return frame, keys
