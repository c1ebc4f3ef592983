"""Fixtures of the storage tests beyond tests/conftest.py's engines."""

from __future__ import annotations

import pytest

from warehouse.query import frame, frame_readings, frame_where


@pytest.fixture
def copies_used(monkeypatch) -> list:
    """Whether each frame's copy_read gave a statement (the frame read DuckDB's pivoted
    copy of compressed chunks, query/frame_readings.py)."""
    used = []
    real = frame_readings.copy_read

    def spy(*args):
        read = real(*args)
        used.append(read is not None)
        return read

    monkeypatch.setattr("warehouse.query.frame.copy_read", spy)
    return used


@pytest.fixture
def segments(monkeypatch) -> list:
    """Frames read points and PostgreSQL's segments, not the pivoted copies; the list holds
    a call per frame that ran segments_where_hits.sql (frame_where._decoded_range)."""
    monkeypatch.setattr(frame, "copy_read", lambda *args: None)
    calls = []
    decoded_range = frame_where._decoded_range

    def spy(*args):
        calls.append(args)
        return decoded_range(*args)

    monkeypatch.setattr(frame_where, "_decoded_range", spy)
    return calls
