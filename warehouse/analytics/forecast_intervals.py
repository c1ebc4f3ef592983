"""Prediction intervals: analytic (normal or Student-t) and calibrated from backtest errors."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import stats

__all__ = ["conformal_bounds", "normal_bounds", "pct"]

_COVERAGE_SLACK = 0.02  # analytic intervals kept when within this of nominal coverage
_MIN_PART_ERRORS = 50  # errors a horizon part needs for its own quantile


def normal_bounds(mean: np.ndarray, var: np.ndarray, levels: Sequence[float],
            df: int | None = None) -> dict[str, np.ndarray]:
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
    return f"{level * 100:g}"


def conformal_bounds(mean: np.ndarray, var: np.ndarray, e: np.ndarray, z: np.ndarray,
               levels: Sequence[float], analytic_ok: bool,
               scale: tuple[np.ndarray, np.ndarray] | None = None
               ) -> dict[str, np.ndarray]:
    """Analytic intervals if they validated, else conformal quantiles of the
    validation errors (relative to ``scale`` = (validation level, future level), the
    locally weighted variant of Lei et al. 2018, when given)."""
    from scipy import stats

    h = len(mean)
    sd = np.sqrt(np.maximum(var, 0))
    out = {}
    # split the horizon in thirds: errors grow with the lead time
    n_err = int(np.isfinite(e).sum())
    thirds = np.array_split(np.arange(h), min(3, h)) if n_err >= 300 else [np.arange(h)]
    for level in levels:
        tag = f"{level * 100:g}"
        q = stats.norm.ppf(0.5 + level / 2)
        covered = float(np.mean(z[np.isfinite(z)] <= q)) if np.isfinite(z).any() else 0.0
        if analytic_ok and abs(covered - level) <= _COVERAGE_SLACK:
            width = q * sd
        else:
            width = np.empty(h)
            for part in thirds:
                a = np.abs(e[:, part])
                if scale is not None:
                    a = a / scale[0][:, part]
                a = a.ravel()
                a = a[np.isfinite(a)]  # interpolated slots carry no error
                if len(a) < _MIN_PART_ERRORS:  # too few in this part: pool the horizon
                    a = np.abs(e) / scale[0] if scale is not None else np.abs(e)
                    a = a[np.isfinite(a)]
                k = len(a)
                rank = min(1.0, level * (k + 1) / k)  # split-conformal finite-sample rank
                width[part] = np.quantile(a, rank)
                if scale is not None:
                    width[part] = width[part] * scale[1][part]
        out[f"lo_{tag}"] = mean - width
        out[f"hi_{tag}"] = mean + width
    return out
