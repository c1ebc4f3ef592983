"""Which season a series has: daily, weekly or none (and its period in samples).

Measured on generated series in ``docs/analytics.md`` (season detection table).
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from warehouse.analytics.forecast_grid import regularise, to_series

__all__ = ["detect_seasonality", "resolve_season"]

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)
_SEASON_THRESHOLD = 0.2  # adjusted share of detrended variance the season must explain
_NESTED_GAIN = 0.05  # weekly must explain this much more than daily to be chosen
_SEASONS = ("daily", "weekly")


def detect_seasonality(values: pd.Series | pd.DataFrame, *,
                       threshold: float = _SEASON_THRESHOLD) -> dict[str, Any]:
    """Infer the sampling step and the season (daily, weekly or none) of a series.

    The series is regularised onto its median step; a candidate season (1 day or 7
    days, a whole number >= 2 of samples, at least two cycles observed) is scored by
    its *strength*: the adjusted R^2 of per-phase means on the detrended series (0 for
    noise whatever the length, 1 for a pure repeating pattern). Weekly is chosen over
    daily only when it explains clearly more, so hourly data with a daily cycle is
    daily and data with a weekday/weekend pattern is weekly (period 168 also
    carries the daily shape).

    Parameters
    ----------
    values : Series or DataFrame
        Series indexed by timestamps, or a DataFrame with ``ts`` and ``value``.
    threshold : float
        Minimum strength for a season.

    Returns
    -------
    dict
        ``step`` (Timedelta), ``season`` ("daily", "weekly" or "none"), ``period``
        (samples per season, None for none) and ``strength`` (of the chosen season,
        or the best candidate's when none qualifies; 0.0 without candidates).
    """
    y, step = regularise(to_series(values), None)
    season, period, strength = _detect(y.to_numpy(), step, threshold)
    return {"step": step, "season": season, "period": period, "strength": strength}


def resolve_season(y: np.ndarray, step: pd.Timedelta, season: str | int) -> int | None:
    if isinstance(season, (int, np.integer)) and not isinstance(season, bool):
        return int(season) if season >= 2 else None
    if season in _SEASONS:
        p = (DAY if season == "daily" else WEEK) / step
        return int(round(p)) if p >= 2 else None
    if season == "none":
        return None
    if season != "auto":
        raise ValueError(f"season must be 'auto', 'daily', 'weekly', 'none' or int: {season!r}")
    return _detect(y, step, _SEASON_THRESHOLD)[1]


def _detect(y: np.ndarray, step: pd.Timedelta, threshold: float
            ) -> tuple[str, int | None, float]:
    """(season, period, strength) of a regular array; see detect_seasonality."""
    cands = []
    for name in _SEASONS:
        p = (DAY if name == "daily" else WEEK) / step
        if p >= 2 and abs(p - round(p)) < 1e-9 and len(y) >= 2 * round(p):
            cands.append((name, int(round(p))))
    if not cands:
        return "none", None, 0.0
    strengths = _strengths(y, [p for _, p in cands])
    best: tuple[str, int | None, float] = ("none", None, max(strengths))
    for (name, p), s in zip(cands, strengths, strict=True):
        # periods ascend and nest (24 | 168): the longer one must add real variance
        if (s >= threshold and (best[1] is None or s >= best[2] + _NESTED_GAIN)
                and _repeats(y, p)):
            best = (name, p, s)
    return best


def _repeats(y: np.ndarray, p: int) -> bool:
    """Is a cycle ago a better guess than half a cycle ago (MAD of differences)?"""
    # Guards the strength against persistent noise: a random walk's detrended wander
    # can mimic a profile over few cycles (5-min, 10k points: "weekly"), but its lag-p
    # differences are wider than its lag-p/2 ones. Median-centred: a trend is ignored.
    def spread(lag: int) -> float:
        d = y[lag:] - y[:-lag]
        return float(np.median(np.abs(d - np.median(d))))

    return spread(p) <= 0.9 * spread(max(p // 2, 1))


def _strengths(y: np.ndarray, periods: list[int]) -> list[float]:
    """Adjusted R^2 of per-phase means of the detrended series, for each period."""
    lag = max(periods)
    if len(y) >= 3 * lag:
        # centred moving average over one (longest) cycle: removes level and trend
        # but no seasonal shape of that period or of its divisors
        off = lag // 2
        r = y[off:len(y) - off] - _centred_mean(y, lag)
    else:
        # too few cycles to spare one at each end: a straight-line detrend instead
        off = 0
        t = np.arange(len(y))
        r = y - np.polyval(np.polyfit(t, y, 1), t)
    m, ss_tot, out = len(r), float(np.sum((r - r.mean()) ** 2)), []
    for p in periods:
        phase = (np.arange(m) + off) % p
        means = np.bincount(phase, r, p) / np.maximum(np.bincount(phase, minlength=p), 1)
        ss_res = float(np.sum((r - means[phase]) ** 2))
        # adjusted so that white noise scores ~0 however few cycles there are
        ok = ss_tot > 0 and m > p
        out.append(max(0.0, 1 - (ss_res / (m - p)) / (ss_tot / (m - 1))) if ok else 0.0)
    return out


def _centred_mean(y: np.ndarray, lag: int) -> np.ndarray:
    """Centred moving average over ``lag`` samples (2 x lag for an even lag: the end
    points weigh half), for every sample with ``lag // 2`` on each side.

    By cumulative sums: O(n), where a convolution with the kernel is O(n * lag)
    (2.5 s for 30 days of 1-minute samples at the weekly lag of 10 080)."""
    span = lag + 1 - lag % 2
    x = y - y.mean()  # small partial sums keep the differences exact
    c = np.concatenate(([0.0], np.cumsum(x)))
    total = c[span:] - c[:-span]
    if lag % 2 == 0:
        total -= 0.5 * (x[:len(x) - span + 1] + x[span - 1:])
    return total / lag + y.mean()
