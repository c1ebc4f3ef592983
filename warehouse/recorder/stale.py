"""Stale runs: runs still marked ``running`` whose recorder stopped sending heartbeats.

A run that ends with an exception is recorded ``failed``; a process that dies (SIGKILL, OOM
killer, power loss) cannot record anything, so its run stays ``running`` and its
``last_seen_at`` stops moving. Such runs are the ones this finds.
"""

from __future__ import annotations

import pandas as pd

from warehouse.schema import RUN_COLUMNS
from warehouse.timeparse import aware_timestamp, interval_us


def stale_runs(wh, older_than="5m", *, now=None, recipe: str | None = None) -> pd.DataFrame:
    """Runs with status ``running`` not seen for longer than ``older_than`` ('5m', '1h', a
    timedelta): ``last_seen_at`` (or ``started_at`` when there was no heartbeat) before
    ``now - older_than``. ``now`` defaults to the current time. Oldest first; columns of
    ``runs`` plus ``silent_for`` (a Timedelta).

    Choose ``older_than`` well above the recorders' heartbeat interval (30 s by default).
    """
    now_ts = aware_timestamp(now, "now") if now is not None else pd.Timestamp.now(tz="UTC")
    cutoff = now_ts - pd.Timedelta(microseconds=interval_us(older_than))
    sql = (f"SELECT {', '.join(RUN_COLUMNS)} FROM runs WHERE status = 'running' "
           "AND COALESCE(last_seen_at, started_at) < :cutoff")
    params: dict = {"cutoff": cutoff.to_pydatetime()}
    if recipe is not None:
        sql += " AND recipe = :recipe"
        params["recipe"] = recipe
    sql += " ORDER BY COALESCE(last_seen_at, started_at), run_id"
    frame = wh.sql(sql, params)
    for name in ("started_at", "finished_at", "last_seen_at"):
        frame[name] = pd.to_datetime(frame[name], utc=True)
    frame["run_id"] = frame["run_id"].map(lambda v: None if pd.isna(v) else str(v))
    seen = frame["last_seen_at"].fillna(frame["started_at"])
    frame["silent_for"] = now_ts - seen
    return frame.reset_index(drop=True)
