"""Parse the times and intervals users type: ISO timestamps with offsets, '15m', '1h', '7d'."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pandas as pd

_UNITS_US = {
    "us": 1, "ms": 1_000, "s": 1_000_000, "m": 60_000_000, "min": 60_000_000,
    "h": 3_600_000_000, "d": 86_400_000_000, "w": 604_800_000_000,
}
_INTERVAL = re.compile(r"^\s*(\d+)\s*(us|ms|s|min|m|h|d|w)\s*$")


def interval_us(value: str | timedelta | pd.Timedelta | int) -> int:
    """µs in an interval given as '30s', '5m', '1h', '1d', '1w', a timedelta or µs."""
    if isinstance(value, (timedelta, pd.Timedelta)):
        us = int(pd.Timedelta(value) / pd.Timedelta(microseconds=1))
    elif isinstance(value, int) and not isinstance(value, bool):
        us = value
    elif isinstance(value, str) and (match := _INTERVAL.match(value)):
        us = int(match.group(1)) * _UNITS_US[match.group(2)]
    else:
        raise ValueError(
            f"interval {value!r} not understood; use a number and a unit "
            f"(us, ms, s, m, h, d, w) such as '15m' or '1d'"
        )
    if us <= 0:
        raise ValueError(f"interval {value!r} must be positive")
    return us


def aware_timestamp(value, name: str) -> pd.Timestamp | None:
    """A UTC Timestamp from a timezone-aware datetime or ISO text; naive values are refused."""
    if value is None:
        return None
    if isinstance(value, str):
        value = value.strip()
        if value.lower() == "now":
            return pd.Timestamp.now(tz="UTC")
        if match := re.match(r"^now\s*-\s*(.+)$", value, re.IGNORECASE):
            return pd.Timestamp.now(tz="UTC") - pd.Timedelta(microseconds=interval_us(match[1]))
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{name}: {value!r} is not a timestamp") from exc
    if ts.tzinfo is None:
        raise ValueError(f"{name}: {value!r} has no time zone; give one, e.g. "
                         f"'2026-11-25T00:00:00+00:00' or a timezone-aware datetime")
    return ts.tz_convert("UTC")


_EPOCH = pd.Timestamp(0, tz="UTC").as_unit("us")


def epoch_us(ts: datetime | pd.Timestamp) -> int:
    """µs since the Unix epoch of an aware timestamp, exact (``Timestamp.value`` is always
    ns; working in µs keeps the whole datetime range, not just 1677–2262)."""
    return (pd.Timestamp(ts).as_unit("us") - _EPOCH) // pd.Timedelta(microseconds=1)


def us_to_ts(us: int) -> pd.Timestamp:
    """A UTC timestamp from µs since the Unix epoch."""
    return pd.Timestamp(int(us), unit="us", tz="UTC")


def ts_to_us(ts) -> int:
    """µs since the Unix epoch of an aware timestamp (or a driver's datetime)."""
    stamp = pd.Timestamp(ts)
    if stamp.tzinfo is None:  # drivers hand back UTC; only the zone info can be missing
        stamp = stamp.tz_localize("UTC")
    return int(epoch_us(stamp))
