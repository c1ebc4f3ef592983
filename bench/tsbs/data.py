"""TSBS "devops cpu-only" data, generated with numpy one day at a time.

Follows TSBS (github.com/timescale/tsbs, pkg/data/usecases/devops/host.go and cpu.go):

- N hosts ``host_0 .. host_{N-1}``; each draws, once, a region (uniform over the nine TSBS
  regions), a datacenter of that region, a rack (0-99), os, arch, team, service (0-19),
  service_version (0-1) and service_environment, uniformly from TSBS's choices.
- every 10 s each host emits one ``cpu`` row with ten fields; each field is a random walk
  with N(0, 1) steps clamped to [0, 100], starting uniformly in [0, 100), written as an
  integer (TSBS's ``ToPointAllInt64`` truncates the walk's state).

Rows come in TSBS's order: by time, then host. Everything is deterministic for a seed, so
every system in a run loads exactly the same values (the generator is re-run per system
instead of holding all days in memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd

START = pd.Timestamp("2016-01-01T00:00:00Z")  # TSBS's default --timestamp-start
INTERVAL_S = 10  # TSBS's default --log-interval
ROWS_PER_DAY = 86_400 // INTERVAL_S

METRICS = ("usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
           "usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice")
TAGS = ("hostname", "region", "datacenter", "rack", "os", "arch", "team", "service",
        "service_version", "service_environment")

REGIONS = {
    "us-east-1": ("us-east-1a", "us-east-1b", "us-east-1c", "us-east-1e"),
    "us-west-1": ("us-west-1a", "us-west-1b"),
    "us-west-2": ("us-west-2a", "us-west-2b", "us-west-2c"),
    "eu-west-1": ("eu-west-1a", "eu-west-1b", "eu-west-1c"),
    "eu-central-1": ("eu-central-1a", "eu-central-1b"),
    "ap-southeast-1": ("ap-southeast-1a", "ap-southeast-1b"),
    "ap-southeast-2": ("ap-southeast-2a", "ap-southeast-2b"),
    "ap-northeast-1": ("ap-northeast-1a", "ap-northeast-1c"),
    "sa-east-1": ("sa-east-1a", "sa-east-1b", "sa-east-1c"),
}
OS_CHOICES = ("Ubuntu16.10", "Ubuntu16.04LTS", "Ubuntu15.10")
ARCH_CHOICES = ("x64", "x86")
TEAM_CHOICES = ("SF", "NYC", "LON", "CHI")
ENVIRONMENT_CHOICES = ("production", "staging", "test")


@dataclass(frozen=True)
class Dataset:
    """What to generate: ``hosts`` hosts for ``days`` days from :data:`START`."""

    hosts: int
    days: int
    seed: int = 0

    @property
    def start(self) -> pd.Timestamp:
        return START

    @property
    def end(self) -> pd.Timestamp:
        """End of the data (exclusive): the last reading is at ``end - 10 s``."""
        return START + pd.Timedelta(days=self.days)

    @property
    def rows(self) -> int:
        return self.hosts * self.days * ROWS_PER_DAY


def host_tags(hosts: int, seed: int = 0) -> pd.DataFrame:
    """The tags table: ``tags_id`` (1-based, as TSBS's loader numbers it) and the 10 tags."""
    rng = np.random.default_rng([seed, 1])
    names = list(REGIONS)
    region = rng.integers(len(names), size=hosts)
    # A datacenter is drawn within its region, so draw an index and reduce it per region.
    dc_draw = rng.integers(1 << 30, size=hosts)
    datacenter = [REGIONS[names[r]][d % len(REGIONS[names[r]])] for r, d in zip(region, dc_draw)]

    def pick(choices) -> list[str]:
        return [choices[i] for i in rng.integers(len(choices), size=hosts)]

    def number(limit: int) -> list[str]:
        return [str(i) for i in rng.integers(limit, size=hosts)]

    return pd.DataFrame({
        "tags_id": np.arange(1, hosts + 1, dtype="i4"),
        "hostname": [f"host_{i}" for i in range(hosts)],
        "region": [names[r] for r in region],
        "datacenter": datacenter,
        "rack": number(100),
        "os": pick(OS_CHOICES),
        "arch": pick(ARCH_CHOICES),
        "team": pick(TEAM_CHOICES),
        "service": number(20),
        "service_version": number(2),
        "service_environment": pick(ENVIRONMENT_CHOICES),
    })


def cpu_days(data: Dataset) -> Iterator[pd.DataFrame]:
    """One wide frame per day: ``time`` (UTC), ``tags_id`` and the 10 metrics (float64).

    The clamped walk is sequential in time but independent across the hosts × metrics
    series, so each step is one vectorised numpy operation over all series.
    """
    series = data.hosts * len(METRICS)
    rng = np.random.default_rng([data.seed, 2])
    state = rng.random(series) * 100.0
    times = pd.date_range(START, periods=ROWS_PER_DAY, freq=f"{INTERVAL_S}s", unit="us")
    for day in range(data.days):
        steps = rng.standard_normal((ROWS_PER_DAY, series))
        walk = np.empty_like(steps)
        for t in range(ROWS_PER_DAY):
            # TSBS emits the state, then ticks it.
            walk[t] = state
            np.add(state, steps[t], out=state)
            np.clip(state, 0.0, 100.0, out=state)
        np.trunc(walk, out=walk)
        # walk[t, h * 10 + m] -> rows ordered by (time, host), one column per metric.
        values = walk.reshape(ROWS_PER_DAY * data.hosts, len(METRICS))
        frame = pd.DataFrame(values, columns=list(METRICS))
        frame.insert(0, "tags_id", np.tile(np.arange(1, data.hosts + 1, dtype="i4"),
                                           ROWS_PER_DAY))
        frame.insert(0, "time", (times + pd.Timedelta(days=day)).repeat(data.hosts))
        yield frame


def warehouse_points(wide: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """The same readings in the warehouse's long shape: one row per metric value.

    Columns ``metric`` (``cpu.<field>``), ``ts``, ``value`` and the 10 tags as plain label
    columns (the fast ``label_columns`` path of ``write_points``). Rows are grouped by
    metric, and by time then host inside a metric, which is what ``melt`` of TSBS's rows
    gives. Repeated strings are pandas categoricals: the idiomatic dtype for tag columns,
    and it keeps a day of 100 hosts (8.6M rows) at a few hundred MB.
    """
    n = len(wide)
    host = wide["tags_id"].to_numpy() - 1
    columns = {
        "metric": pd.Categorical.from_codes(np.repeat(np.arange(len(METRICS)), n),
                                            categories=[f"cpu.{m}" for m in METRICS]),
        # Through naive datetime64: a tz-aware column's to_numpy() is Timestamp objects.
        "ts": pd.DatetimeIndex(np.tile(wide["time"].to_numpy(dtype="datetime64[us]"),
                                       len(METRICS)), tz="UTC"),
        "value": wide[list(METRICS)].to_numpy().T.ravel(),
    }
    for tag in TAGS:
        codes, uniques = pd.factorize(tags[tag])
        columns[tag] = pd.Categorical.from_codes(np.tile(codes[host], len(METRICS)), uniques)
    return pd.DataFrame(columns)


def warehouse_frame(wide: pd.DataFrame, tags: pd.DataFrame) -> pd.DataFrame:
    """TSBS's rows in the warehouse's wide shape (``Warehouse.write_frame``): ``ts``, the 10
    tags as plain label columns (categoricals, as in :func:`warehouse_points`) and one
    column per field named as its metric (``cpu.<field>``): a row per host and instant."""
    host = wide["tags_id"].to_numpy() - 1
    columns = {"ts": wide["time"]}
    for tag in TAGS:
        codes, uniques = pd.factorize(tags[tag])
        columns[tag] = pd.Categorical.from_codes(codes[host], uniques)
    for m in METRICS:
        columns[f"cpu.{m}"] = wide[m].to_numpy()
    return pd.DataFrame(columns)
