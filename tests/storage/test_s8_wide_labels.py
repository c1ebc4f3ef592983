"""A wide frame may name label columns ``metric`` or ``value`` (it has no such columns of
its own, and a labels dict may use those names): the points are stored with them as labels
and read back by label on both engines, through points and frames."""

from __future__ import annotations

import pandas as pd

T0 = pd.Timestamp("2026-11-03T00:00:00Z")


def test_labels_named_metric_and_value_round_trip(wh):
    ts = pd.date_range(T0, periods=3, freq="1min")
    frame = pd.DataFrame({"ts": ts.repeat(2), "metric": ["disk", "net"] * 3,
                          "value": ["p95"] * 6, "io.bytes": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    result = wh.write_frame(frame, label_columns=["metric", "value"])
    assert (result.written, result.skipped) == (6, 0)
    disk = wh.points("io.bytes", labels={"metric": "disk"})
    assert disk["value"].tolist() == [1.0, 3.0, 5.0]
    assert {tuple(sorted(labels.items())) for labels in disk["labels"]} == {
        (("metric", "disk"), ("value", "p95"))}
    framed = wh.frame(["io.bytes"], labels={"value": "p95"}, by=["metric"], every="1h",
                      agg="sum")
    assert dict(zip(framed["metric"], framed["io.bytes"])) == {"disk": 9.0, "net": 12.0}
