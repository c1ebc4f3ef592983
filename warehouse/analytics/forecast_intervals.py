"""Prediction intervals: analytic (normal or Student-t), or calibrated on the series'
own rolling-origin backtest errors (split-conformal, signed, scaled by the level).

Calibration (:func:`calibrated_bounds`): the chosen forecaster was backtested on up to
28 back-to-back windows of the horizon before the forecast origin. Its errors are
divided by a local scale, and the interval is the forecast plus the empirical lower and
upper quantiles of those scaled errors times the scale of each future step:

* **signed, not absolute** errors: real counts err upwards (bursts) far more than
  downwards, so a lower and an upper quantile (each at the split-conformal rank with
  the finite-sample correction of Vovk et al.) give a narrower interval at the same
  coverage than a symmetric one (measured: docs/analytics.md);
* **per third of the horizon** when there are >= 300 errors (errors grow with the lead
  time), pooled otherwise;
* **relative to the level** for series without negative values (counts, durations,
  bytes; a busy afternoon errs more than a quiet night): the scale of a step is its
  forecast plus the mean absolute backtest error, so that a forecast of 0 does not
  make the scale vanish (the locally weighted conformal of Lei et al. 2018);
* **relative to the recent error level**, half-way: each window's errors against the
  7 windows before it, the future against the last 7 (:func:`_recent_error_level`).

The analytic ETS intervals are kept instead when they covered the backtest points
within 2 points of nominal.
"""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = ["PastWindows", "calibrated_bounds", "normal_bounds", "pct"]

_COVERAGE_SLACK = 0.02  # analytic intervals kept when within this of nominal coverage
_MIN_PART_ERRORS = 50  # errors a horizon part needs for its own quantile
_PARTS_FROM = 300  # errors from which each third of the horizon has its own quantiles
_RECENT_WINDOWS = 7  # windows whose error level is "recent"
_RECENT_WEIGHT = 0.5  # how far the recent error level moves the scale (geometric)
_MIN_RECENT_LEVEL = 0.1  # of the whole record's error level: a floor for quiet spells


@dataclass
class PastWindows:
    """A forecaster's backtest on back-to-back windows of the horizon, oldest first."""

    errors: np.ndarray  # windows x horizon: actual - forecast, NaN where not observed
    forecasts: np.ndarray  # windows x horizon
    sds: np.ndarray  # windows x horizon: the forecaster's own (analytic) sd


def calibrated_bounds(mean: np.ndarray, var: np.ndarray, past: PastWindows,
                      levels: Sequence[float], analytic_ok: bool, nonnegative: bool
                      ) -> dict[str, np.ndarray]:
    """Bounds per level around ``mean`` from the backtest ``past``; the analytic ones
    (normal, variance ``var``) when ``analytic_ok`` and they covered the backtest."""
    e = past.errors
    if nonnegative:
        floor = float(np.nanmean(np.abs(e))) + 1e-12
        past_scale, scale = np.abs(past.forecasts) + floor, np.abs(mean) + floor
    else:
        past_scale, scale = np.ones_like(e), np.ones_like(mean)
    r, recent = _recent_error_level(e / past_scale)
    scale = scale * recent
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(e) / np.where(past.sds > 0, past.sds, np.nan)
    h = len(mean)
    parts = (np.array_split(np.arange(h), min(3, h)) if np.isfinite(e).sum() >= _PARTS_FROM
             else [np.arange(h)])
    out = {}
    for level in levels:
        q = stats.norm.ppf(0.5 + level / 2)
        covered = float(np.mean(z[np.isfinite(z)] <= q)) if np.isfinite(z).any() else 0.0
        if analytic_ok and abs(covered - level) <= _COVERAGE_SLACK:
            width = q * np.sqrt(np.maximum(var, 0))
            lo, hi = mean - width, mean + width
        else:
            lo, hi = np.empty(h), np.empty(h)
            for part in parts:
                a = r[:, part][np.isfinite(r[:, part])]  # interpolated slots carry no error
                if len(a) < _MIN_PART_ERRORS:  # too few in this part: pool the horizon
                    a = r[np.isfinite(r)]
                q_lo, q_hi = _signed_quantiles(a, level)
                lo[part] = mean[part] + q_lo * scale[part]
                hi[part] = mean[part] + q_hi * scale[part]
        out[f"lo_{pct(level)}"], out[f"hi_{pct(level)}"] = lo, hi
    return out


def _recent_error_level(r: np.ndarray) -> tuple[np.ndarray, float]:
    """Scaled errors ``r`` (windows x horizon, oldest first) relative to the error level
    of the ``_RECENT_WINDOWS`` windows before each, and the level of the newest ones.

    Errors come in regimes (a volatile week, a calm one): each window's errors are
    divided by the mean absolute error of the windows just before it, the future's
    scale is that of the last windows, both moved only half-way (geometrically) from
    the level of the whole record, which keeps one odd week from setting the width.
    The first windows, which have no such history, leave the calibration set."""
    k = _RECENT_WINDOWS
    if len(r) <= k + 3:  # too short a record to tell regimes apart
        return r, 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # windows with no observed slot
        whole = float(np.nanmean(np.abs(r)))
        before = np.array([np.nanmean(np.abs(r[w - k:w])) for w in range(k, len(r))])
        now = float(np.nanmean(np.abs(r[-k:])))
    if not whole > 0:
        return r, 1.0

    def level(v: np.ndarray | float) -> np.ndarray | float:
        return (np.maximum(v, _MIN_RECENT_LEVEL * whole) / whole) ** _RECENT_WEIGHT

    return r[k:] / level(before)[:, None], float(level(now))


def _signed_quantiles(r: np.ndarray, level: float) -> tuple[float, float]:
    """Lower and upper split-conformal quantiles of the scaled errors ``r`` for a central
    ``level``: ranks floor(a(k+1)) and ceil((1-a)(k+1)) of k, a = (1 - level) / 2.
    The forecast itself stays inside (a biased backtest must not push it out)."""
    k, a = len(r), (1 - level) / 2
    q_lo = float(np.quantile(r, max(0.0, (a * (k + 1) - 1) / k)))
    q_hi = float(np.quantile(r, min(1.0, (1 - a) * (k + 1) / k)))
    return min(q_lo, 0.0), max(q_hi, 0.0)


def normal_bounds(mean: np.ndarray, var: np.ndarray, levels: Sequence[float],
                  df: int | None = None) -> dict[str, np.ndarray]:
    """``lo_<pct>``/``hi_<pct>`` per level: mean -+ a normal (Student-t with ``df``)
    quantile times the sd."""
    sd = np.sqrt(np.maximum(np.asarray(var, dtype=float), 0.0))
    out = {}
    for level in levels:
        if not 0 < level < 1:
            raise ValueError(f"interval levels must be in (0, 1), got {level}")
        q = stats.t.ppf(0.5 + level / 2, df) if df else stats.norm.ppf(0.5 + level / 2)
        out[f"lo_{pct(level)}"] = mean - q * sd
        out[f"hi_{pct(level)}"] = mean + q * sd
    return out


def pct(level: float) -> str:
    """The column suffix of a level: 0.95 -> "95"."""
    return f"{level * 100:g}"
