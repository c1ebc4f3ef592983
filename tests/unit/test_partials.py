"""The frame's NumPy merge of per-series partials and its series filter, against SQL."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from warehouse.query.catalog import id_ranges
from warehouse.query.partials import merge_partials, passing


@pytest.mark.parametrize("ids", [
    [7], [], list(range(1, 1001)), [1, 2, 3, 10, 11, 40] + list(range(100, 164)) + [900],
    list(range(0, 2000, 2)), list(range(50, 82)) + list(range(5, 36)), [3, 3, 2, 1] * 20,
])
def test_id_ranges_keep_exactly_the_listed_ids(ids):
    con = duckdb.connect()
    kept = con.execute(f"SELECT series_id FROM range(-5, 2100) AS r(series_id) "
                       f"WHERE {id_ranges(ids)} ORDER BY 1").fetchnumpy()["series_id"]
    assert kept.tolist() == sorted(set(ids))


def test_long_runs_become_ranges_and_short_ones_stay_listed():
    sql = id_ranges(list(range(100, 164)) + [5, 9])
    assert sql == "(series_id BETWEEN 100 AND 163 OR series_id IN (5,9))"


def test_merge_follows_sql_null_rules():
    """Series 1 and 2 share group 0 and metric 0; series 3 is metric 1 of group 0 and has a
    NULL partial in the second bucket; series 4 is group 1 and metric 0."""
    rows = {"t": np.array([10, 10, 20, 20, 10, 20, 20]),
            "series_id": np.array([1, 2, 1, 3, 4, 4, 2]),
            "p": np.array([1.0, 5.0, 2.0, np.nan, 7.0, 8.0, -1.0]),
            "n": np.array([1, 2, 1, 0, 1, 1, 3])}
    ids, groups, metrics = np.array([4, 2, 1, 3]), np.array([1, 0, 0, 0]), np.array([0, 0, 0, 1])
    out = merge_partials("max", rows, ids, groups, metrics, 2)
    assert out["grp"].tolist() == [0, 0, 1, 1] and out["t"].tolist() == [10, 20, 10, 20]
    np.testing.assert_array_equal(out["v0"], [5.0, 2.0, 7.0, 8.0])
    np.testing.assert_array_equal(out["v1"], [np.nan, np.nan, np.nan, np.nan])
    mean = merge_partials("mean", rows, ids, groups, metrics, 2)
    np.testing.assert_allclose(mean["v0"], [6.0 / 3, 1.0 / 4, 7.0, 8.0])
    assert np.isnan(mean["v1"]).all()
    total = merge_partials("sum", rows, ids, groups, metrics, 2)
    np.testing.assert_array_equal(total["v0"], [6.0, 1.0, 7.0, 8.0])
    assert np.isnan(total["v1"]).all()


def test_a_missing_value_never_passes_a_filter():
    column = np.array([1.0, np.nan, 3.0])
    assert passing(">", column, 2.0).tolist() == [False, False, True]
    assert passing("<>", column, 1.0).tolist() == [False, False, True]
