"""The regular grid a forecast works on: one float per step, gaps handled.

Real series are unsorted, duplicated, jittered and gappy; the models need one value per
step. :func:`regularise_observed` averages the samples onto a grid of the (snapped)
median step and says which slots held a sample, so that validation and calibration
can skip the slots that were only interpolated.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["regularise", "regularise_observed", "to_series"]

# Median steps within 1% of one of these are snapped to it, so that jittered hourly
# samples give exactly 24 samples a day instead of 23.9.
_ROUND_STEPS = [pd.Timedelta(s) for s in (
    "1s", "5s", "10s", "15s", "30s", "1min", "2min", "5min", "10min", "15min", "20min",
    "30min", "1h", "2h", "3h", "4h", "6h", "8h", "12h", "1D", "7D")]
MIN_MODEL_POINTS = 10  # below: mean forecast with Student-t intervals (ETS needs >= 10)
_MAX_GAP = 6  # samples; longer gaps cut the history (see regularise)


def to_series(data: pd.DataFrame | pd.Series) -> pd.Series:
    """A float Series indexed by sorted, unique timestamps, NaNs dropped."""
    if isinstance(data, pd.DataFrame):
        missing = {"ts", "value"} - set(data.columns)
        if missing:
            raise ValueError(f"need columns ts and value; missing {sorted(missing)}")
        s = pd.Series(data["value"].to_numpy(), index=pd.DatetimeIndex(data["ts"]))
    else:
        s = pd.Series(data.to_numpy(), index=pd.DatetimeIndex(data.index))
    s = pd.to_numeric(s, errors="coerce").astype("float64")
    s = s[np.isfinite(s.to_numpy())]
    return s.groupby(level=0).mean().sort_index()


def regularise(s: pd.Series, step: pd.Timedelta | None
                ) -> tuple[pd.Series, pd.Timedelta]:
    """Average ``s`` onto a regular grid of ``step`` (default: snapped median step).

    Gaps of up to ``_MAX_GAP`` slots are interpolated linearly. Longer ones would
    invent whole cycles: the history is cut after the last one when a quarter of the
    slots (and >= ``MIN_MODEL_POINTS``) remain, else they are interpolated too.
    """
    grid, step, _ = regularise_observed(s, step)
    return grid, step


def regularise_observed(s: pd.Series, step: pd.Timedelta | None
                         ) -> tuple[pd.Series, pd.Timedelta, np.ndarray]:
    """:func:`regularise`, plus a mask of the grid slots that held a sample."""
    if s.empty:
        raise ValueError("no finite values")
    if step is None:
        if len(s) < 2:
            raise ValueError("cannot infer the step from one point; pass freq=")
        step = pd.Series(s.index).diff().median()
        near = min(_ROUND_STEPS, key=lambda r: abs(r - step))
        step = near if abs(near - step) <= 0.01 * near else step
    return onto_grid(s, step)


def onto_grid(s: pd.Series, step: pd.Timedelta
               ) -> tuple[pd.Series, pd.Timedelta, np.ndarray]:
    if step <= pd.Timedelta(0):
        raise ValueError(f"step must be positive, got {step}")
    pos = (s.index - s.index[0]) / step
    # the grid goes through the typical phase of the samples, not the first one's
    # jitter, so that forecasts land on 12:00, not 12:03:17.41
    t0 = s.index[0] + step * float(np.median(pos - np.rint(pos)))
    if step >= pd.Timedelta(minutes=1):
        t0 = t0.round("1s")
    slot = np.rint((s.index - t0) / step).astype(np.int64)
    vals = s.groupby(slot).mean()
    grid = vals.reindex(np.arange(int(slot[-1]) + 1))
    missing = grid.isna().to_numpy()
    if missing.any():
        edges = np.diff(np.r_[0, missing.astype(np.int8), 0])
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        long_ends = ends[(ends - starts) > _MAX_GAP]
        if len(long_ends) and len(grid) - long_ends[-1] >= max(
                MIN_MODEL_POINTS, len(grid) // 4):
            grid = grid.iloc[long_ends[-1]:]
    observed = grid.notna().to_numpy()
    if missing.any():
        grid = grid.interpolate(limit_area="inside")
    # via TimedeltaIndex: Timestamp + ndarray[timedelta64] goes through objects (~30 ms)
    grid.index = t0 + pd.TimedeltaIndex(step * grid.index.to_numpy())
    return grid, step, observed
