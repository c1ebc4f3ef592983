"""Which windows of regular segments a read decodes (query/archive_read._windows): one per
span of a tier plan's raw edges, so the segments between them are not decoded, except for
a read so small that planning a branch per edge costs more than decoding its middle."""

from __future__ import annotations

import pandas as pd

from warehouse.query.archive_read import _windows
from warehouse.timeparse import ts_to_us

START = pd.Timestamp("2016-01-01T05:13:27Z")


def _edges(hours: int) -> tuple[pd.Timestamp, list[tuple[int, int]]]:
    """A window of ``hours`` whose whole minutes a tier answers: raw edges before and after."""
    end = START + pd.Timedelta(hours=hours)
    return end, [(ts_to_us(START), ts_to_us(START.ceil("1min"))),
                 (ts_to_us(end.floor("1min")), ts_to_us(end))]


def test_one_series_hour_is_decoded_as_one_window() -> None:
    end, spans = _edges(1)
    assert _windows(START, end, spans, series=1) == [(START, end)]


def test_larger_reads_decode_only_their_edges() -> None:
    end, spans = _edges(12)
    assert len(_windows(START, end, spans, series=1)) == 2
    end, spans = _edges(1)
    assert len(_windows(START, end, spans, series=100)) == 2


def test_an_unbounded_read_keeps_its_spans() -> None:
    end, spans = _edges(1)
    assert len(_windows(None, end, spans, series=1)) == 2
