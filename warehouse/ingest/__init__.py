"""Ingest: validate a batch, resolve series, write it all-or-nothing through the backend."""

from __future__ import annotations

from warehouse.ingest.writer import WriteResult

__all__ = ["WriteResult"]
