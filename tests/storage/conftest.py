"""Fixtures of the storage tests beyond tests/conftest.py's engines."""

from __future__ import annotations

import pytest

from warehouse.query import frame_readings


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
