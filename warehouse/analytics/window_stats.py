"""Window statistics of the streaming detector (:mod:`warehouse.analytics.streaming`).

Each function computes, for the new positions of an array that starts with the
detector's stored history, a statistic of a window of earlier values — the same
numbers whether the points arrive one at a time (numpy on each window, O(window))
or in a batch (one pandas rolling pass), so chunking never changes a score.
"""
from __future__ import annotations

import base64

import numpy as np
import pandas as pd

_DIRECT_MAX = 8  # up to this many new points, windows are computed one by one


def window_stat(a: np.ndarray, start: int, window: int, how: str, past: bool,
                 min_count: int = 1) -> np.ndarray:
    """``how`` (median or max, NaNs ignored) of the ``window`` values before each
    position ``i >= start`` of ``a`` (``past``), or ending at ``i`` inclusive; NaN
    where fewer than ``min_count`` finite values. Few positions (a streaming update
    of one point): numpy on each window, O(window); many: a pandas rolling pass.
    Both give the same order statistics."""
    n = len(a) - start
    if n <= _DIRECT_MAX:
        out = np.full(n, np.nan)
        for k in range(n):
            i = start + k
            w = a[max(0, i - window):i] if past else a[max(0, i - window + 1):i + 1]
            w = w[np.isfinite(w)] if min_count > 1 or np.isnan(w).any() else w
            if len(w) >= min_count and len(w):
                out[k] = np.max(w) if how == "max" else np.median(w)
        return out
    lo = max(0, start - window)  # only the windows of the new positions are needed
    roll = pd.Series(a[lo:]).rolling(window, min_periods=min_count)
    res = roll.max() if how == "max" else roll.median()
    if past:
        res = res.shift(1)
    return res.to_numpy()[start - lo:]


_SCALE_STRIDE = 16  # the feature scales are medians of every 16th point (6x faster)


def strided_median(a: np.ndarray, start: int, g0: int, window: int,
                    min_count: int) -> np.ndarray:
    """Median of the points with global index divisible by ``_SCALE_STRIDE`` among
    the ``window`` before each position ``i >= start`` (``a[j]`` has global index
    ``g0 + j``); until the series is ``window`` long, of all points. A scale, not a
    threshold: 400 of 6,400 points estimate it well, and the subsample is fixed by
    global index, so chunking cannot change it."""
    early = min(len(a), max(start, window - g0))  # global index < window: full windows
    if early > start:  # short history: every point counts (a median of few is noisy)
        head = window_stat(a[:early], start, window, "median", True, min_count)
        if early == len(a):
            return head
        return np.concatenate([head, strided_median(a, early, g0, window, min_count)])
    k = _SCALE_STRIDE
    w, need = max(window // k, 1), max(-(-min_count // k), 1)
    sub_j = np.arange((-g0) % k, len(a), k)
    sub = a[sub_j]
    n = len(a) - start
    pos = np.searchsorted(sub_j, np.arange(start, len(a))) - 1  # last sub entry before i
    if n <= _DIRECT_MAX:
        out = np.full(n, np.nan)
        for t, q in enumerate(pos):
            win = sub[max(0, q - w + 1):q + 1]
            win = win[np.isfinite(win)]
            if q >= 0 and len(win) >= need:
                out[t] = np.median(win)
        return out
    lo = max(0, int(pos[0]) - w + 1) if len(pos) else 0
    med = pd.Series(sub[lo:]).rolling(w, min_periods=need).median().to_numpy()
    out = np.full(n, np.nan)
    ok = pos >= lo
    out[ok] = med[pos[ok] - lo]
    return out


def lag_spread(w: np.ndarray, lag: int) -> float:
    d = w[lag:] - w[:-lag]
    return float(np.median(np.abs(d - np.median(d)))) if len(d) else 0.0


def to_ns(ts) -> np.ndarray:
    s = pd.to_datetime(pd.Series(ts))
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        s = s.dt.tz_convert("UTC").dt.tz_localize(None)
    return s.to_numpy(dtype="datetime64[ns]").astype("int64")


def pack(a: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(a, dtype="<f8").tobytes()).decode("ascii")


def unpack(text: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").copy()
