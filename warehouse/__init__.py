"""Recipe Analytics Warehouse: a SQL-backed time-series warehouse for recipe executions."""

from __future__ import annotations

from warehouse.core import Warehouse
from warehouse.errors import (
    ReadOnlyError,
    UnknownNameError,
    ValidationError,
    WarehouseError,
)
from warehouse.ingest.writer import WriteResult

__all__ = [
    "ReadOnlyError",
    "UnknownNameError",
    "ValidationError",
    "Warehouse",
    "WarehouseError",
    "WriteResult",
]
__version__ = "0.1.0"
