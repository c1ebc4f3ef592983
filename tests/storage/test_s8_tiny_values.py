"""Values closer to 0 than MIN_VALUE_MAGNITUDE (1e-150) are refused at ingest, naming the
row: on PostgreSQL their squares underflowed in the rollup refresh ("value out of range:
underflow"), which then failed on every run and, its watermark stuck, kept every later chunk
from being compressed. The smallest values allowed roll up and compress on both engines."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from test_readings_copy import compress_all

from warehouse import ValidationError, jobs

DAY = pd.Timestamp("2026-11-01T00:00:00Z")
NOW = pd.Timestamp("2026-11-12T00:00:00Z")


@pytest.mark.parametrize("value", [1e-200, -1e-151, 5e-324])
def test_values_too_close_to_zero_are_refused(wh, value):
    batch = pd.DataFrame({"metric": "cpu", "ts": [DAY, DAY + pd.Timedelta("1min")],
                          "value": [1.0, value]})
    with pytest.raises(ValidationError) as info:
        wh.write_points(batch)
    [problem] = info.value.problems
    assert (problem.row, problem.field) == (1, "value") and "1e-150" in problem.message
    with pytest.raises(ValidationError):
        wh.write_frame(pd.DataFrame({"ts": [DAY], "cpu": [value]}))


def test_the_smallest_values_allowed_roll_up_and_compress(wh):
    ts = pd.date_range(DAY, periods=2 * 96, freq="15min")
    values = np.where(np.arange(len(ts)) % 2, 1e-150, -2.5e-150)
    points = pd.DataFrame({"metric": "cpu", "ts": ts, "host": "a", "value": values})
    wh.write_points(points, label_columns=["host"])
    run = jobs.run_job(wh, "refresh_rollups", now=NOW, retries=0)
    assert run.status == "succeeded", run.error
    assert [r.refused for r in compress_all(wh)] == [None, None]
    got = wh.points("cpu", DAY, DAY + pd.Timedelta("2D"))
    assert got["value"].tolist() == values.tolist()
    hourly = wh.points("cpu", DAY, DAY + pd.Timedelta("2D"), every="1h", agg="sum")
    assert len(hourly) == 48 and np.allclose(hourly["value"], 2 * (1e-150 - 2.5e-150),
                                             rtol=1e-12, atol=0)
