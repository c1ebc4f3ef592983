"""Same answers through ``warehouse serve`` as through a direct connection: storage tests of
points, runs and the recorder run again with ``wh`` a RemoteWarehouse talking to a real
uvicorn server (in a thread) over a fresh DuckDB file or PostgreSQL database.

The tests are the storage suite's own functions, imported unchanged; only ``wh`` differs.
Left out: tests that reach under the facade (``wh.engine``, ``maintain``,
``set_chunk_interval``) or stop the database itself (the recorder's outage tests: the
server's own outage is tests/server/test_serve.py's kill -9 test).
"""

from __future__ import annotations

import pytest

from tests.server.conftest import ThreadServer
from tests.storage.test_points import (  # noqa: F401 - collected here with the remote wh
    test_any_timestamp_lands_in_a_chunk,
    test_bad_row_rejects_the_whole_batch,
    test_bucketed_aggregates_match_pandas,
    test_chunks_follow_the_interval_and_drop_whole_chunks,
    test_duplicates_inside_one_batch_keep_the_last,
    test_group_by_labels_and_gap_filling,
    test_label_filter_accepts_a_set_of_values,
    test_query_errors_are_clear,
    test_replaying_a_batch_changes_nothing,
    test_roundtrip_keeps_microseconds_and_values,
    test_run_id_and_arrow_and_records_inputs,
    test_weekly_buckets_start_on_monday_even_before_the_origin,
)
from tests.storage.test_query_newest import (  # noqa: F401
    test_bad_last_is_refused,
    test_last_buckets_equal_the_full_tail,
    test_last_with_fill_is_the_n_buckets_before_end,
    test_newest_points_per_series,
)
from tests.storage.test_recorder import (  # noqa: F401
    spill_dir,
    test_exception_is_recorded_and_reraised_unchanged,
    test_metrics_land_in_points_with_run_id_and_labels,
    test_nested_steps_have_parent_step_id,
    test_retries_are_attempts_of_the_same_step,
    test_three_line_example_records_run_steps_and_metrics,
)
from tests.storage.test_runs import (  # noqa: F401
    test_bad_runs_are_rejected_whole,
    test_replaying_runs_and_steps_changes_nothing,
    test_run_lifecycle_running_then_finished,
)
from warehouse import Warehouse
from warehouse.client import RemoteWarehouse
from warehouse.server.app import create_app


@pytest.fixture
def wh(database_url):
    """A RemoteWarehouse in front of a fresh warehouse served by uvicorn on a free port."""
    direct = Warehouse(database_url)
    try:
        with ThreadServer(create_app(direct)) as server:
            remote = Warehouse(server.url)  # the facade's own dispatch on http://
            assert isinstance(remote, RemoteWarehouse)
            with remote:
                yield remote
    finally:
        direct.close()


def test_drop_chunks_obeys_the_archive_policy_over_http(wh, tmp_path, monkeypatch):
    import pandas as pd

    from warehouse.errors import RetentionPolicyError

    monkeypatch.setenv("WAREHOUSE_ARCHIVE", str(tmp_path / "archive"))
    n = 3 * 288
    wh.write_points(pd.DataFrame({"metric": "cpu", "labels": [{"host": "a"}] * n,
                                  "ts": pd.date_range("2026-11-01", periods=n, freq="5min",
                                                      tz="UTC"), "value": 1.0}))
    wh.set_retention("points", "1d", archive=True)
    with pytest.raises(RetentionPolicyError) as refused:
        wh.drop_chunks("points", "2026-11-03T00:00:00Z")
    assert refused.value.table == "points" and len(refused.value.chunks) == 2
    assert wh.drop_chunks("points", "2026-11-03T00:00:00Z", force=True,
                          dry_run=True) == refused.value.chunks
    assert len(wh.points("cpu")) == n
    assert wh.drop_chunks("points", "2026-11-03T00:00:00Z", force=True) == refused.value.chunks
    assert len(wh.points("cpu")) == 288


def test_housekeeping_reads_through_the_client(wh):
    import pandas as pd

    wh.write_points(pd.DataFrame({"metric": "cpu", "ts": pd.date_range(
        "2026-11-01", periods=120, freq="1min", tz="UTC"), "value": 1.0}))
    run = wh.run_job("refresh_rollups", now="2026-11-02T00:00:00Z")
    assert run.status == "succeeded" and run.rows > 0
    state = wh.rollup_state()
    assert set(state["rollup"]) == {"points_1m", "points_1h", "points_1d"}
    assert int(state.loc[state["rollup"] == "points_1m", "rows"].iloc[0]) == 120
    assert wh.archive_manifest().empty
    assert "refresh_rollups" in set(wh.list_jobs()["job"])
    assert wh.job_runs("refresh_rollups")["status"].tolist() == ["succeeded"]
    with pytest.raises(AttributeError, match="no database engine"):
        wh.engine  # noqa: B018 - the attribute access is what is tested


def test_frame_and_several_metrics_over_http_equal_the_direct_answers(database_url):
    import numpy as np
    import pandas as pd
    from pandas.testing import assert_frame_equal

    direct = Warehouse(database_url)
    try:
        rng = np.random.default_rng(3)
        ticks = pd.date_range("2026-11-01", periods=600, freq="1min", tz="UTC")
        direct.write_points(pd.concat([pd.DataFrame({
            "metric": metric, "ts": ticks, "host": host, "value": rng.normal(50, 20, len(ticks))})
            for metric in ("cpu.user", "cpu.system") for host in ("a", "b")], ignore_index=True),
            label_columns=["host"])
        with ThreadServer(create_app(direct)) as server, RemoteWarehouse(server.url) as remote:
            asks = [
                ("frame", (["cpu.user", "cpu.system"],), {"every": "1h", "agg": "max"}),
                ("frame", (["cpu.user", "cpu.system"],), {"where": "cpu.user > 80",
                                                         "labels": {"host": "a"}}),
                ("frame", (["cpu.user", "cpu.system"],), {"every": "10m", "by": ["host"]}),
                ("points", (["cpu.user", "cpu.system"],), {"every": "1h", "by": []}),
                ("points", ("cpu.user",), {"with_labels": False, "last": 3}),
                ("points", ("cpu.user",), {"every": "1h", "with_labels": ["host"], "last": 2}),
            ]
            for method, args, kwargs in asks:
                here = getattr(direct, method)(*args, **kwargs).reset_index(drop=True)
                there = getattr(remote, method)(*args, **kwargs).reset_index(drop=True)
                assert not here.empty, (method, kwargs)
                assert list(there.columns) == list(here.columns), (method, kwargs)
                assert_frame_equal(there, here, check_dtype=False, obj=f"{method} {kwargs}")
            with pytest.raises(ValueError, match="where"):
                remote.frame(["cpu.user"], where="cpu.user > 1; DROP TABLE points")
    finally:
        direct.close()
