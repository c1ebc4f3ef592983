"""The newest point per series of a batch, which moves series_last forward."""

import numpy as np
import pandas as pd

from warehouse.ingest.keys import newest_rows


def newest(codes, ts):
    codes = np.asarray(codes)
    return newest_rows(codes, pd.DatetimeIndex(ts).as_unit("us").asi8, codes.max() + 1)


def test_newest_point_of_each_series_whatever_the_input_order():
    ts = pd.to_datetime(["2026-01-01 00:00:03", "2026-01-01 00:00:01", "2026-01-01 00:00:09",
                         "2026-01-01 00:00:05", "2026-01-01 00:00:02"], utc=True)
    # Series codes as prepare_points numbers them: in order of first appearance.
    assert newest([0, 1, 1, 0, 2], ts).tolist() == [3, 2, 4]


def test_newest_when_times_increase_per_series():
    ts = pd.to_datetime(["2026-01-01 00:00:01", "2026-01-01 00:00:01", "2026-01-01 00:00:02",
                         "2026-01-01 00:00:02"], utc=True)
    assert newest([0, 1, 0, 1], ts).tolist() == [2, 3]


def test_one_point_is_its_own_newest():
    assert newest([0], pd.to_datetime(["2026-01-01"], utc=True)).tolist() == [0]
