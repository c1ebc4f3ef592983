"""A frame whose first run ends on SnapshotEnded is answered again (catalog.state_checked):
the state statement it had deferred must not ride along with the retry's first statement.
It did after drop_chunks of a copied day: the retry's state read carried it in a one-message
transaction, and the list of copies read next raised SnapshotEnded out of wh.frame."""

from __future__ import annotations

import numpy as np
import pandas as pd

from warehouse import jobs
from warehouse.jobs import compress

NOW = pd.Timestamp("2026-11-12T00:00:00Z")
DAY1 = pd.Timestamp("2026-11-01T00:00:00Z")


def test_frames_after_dropping_a_copied_day(wh):
    ts = pd.date_range(DAY1, periods=3 * 144, freq="10min")
    rng = np.random.default_rng(0)
    wh.write_points(pd.concat([pd.DataFrame({"metric": m, "host": h, "ts": ts,
                                             "value": rng.normal(50, 10, len(ts))})
                               for m in ("cpu", "mem") for h in "ab"], ignore_index=True),
                    label_columns=["host"])
    jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0)
    compress.set_policy(wh, "1d")
    assert jobs.run_job(wh, "compress", now=NOW, retries=0).status == "succeeded"
    inside = (DAY1 + pd.Timedelta(hours=3), DAY1 + pd.Timedelta(hours=5))
    assert len(wh.frame(["cpu", "mem"], *inside)) == 2 * 12  # remembers the copies
    wh.drop_chunks("points", DAY1 + pd.Timedelta(days=1), force=True)  # day 1 and its copy
    # a range the copies do not cover, then day 1 again: its remembered copy is gone
    assert len(wh.frame(["cpu", "mem"], DAY1, DAY1 + pd.Timedelta(days=5))) == 2 * 2 * 144
    assert wh.frame(["cpu", "mem"], *inside).empty
    later = (DAY1 + pd.Timedelta(days=1, hours=3), DAY1 + pd.Timedelta(days=1, hours=5))
    frame = wh.frame(["cpu", "mem"], *later)
    assert len(frame) == 2 * 12 and frame[["cpu", "mem"]].notna().all().all()
