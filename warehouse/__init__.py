"""Recipe Analytics Warehouse: a SQL-backed time-series warehouse for recipe executions.

``Warehouse`` and ``WriteResult`` are imported on first use (module ``__getattr__``), so
importing the package — as the ``warehouse`` command does for ``--help`` — loads neither
pandas nor SQLAlchemy. ``from warehouse import Warehouse`` works as before.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from warehouse.errors import (
    QueryTimeoutError,
    ReadOnlyError,
    ResultTooLargeError,
    RetentionPolicyError,
    TerminalError,
    TransientError,
    UnknownNameError,
    ValidationError,
    WarehouseError,
)

if TYPE_CHECKING:
    from warehouse.core import Warehouse
    from warehouse.ingest.writer import WriteResult

_LAZY = {"Warehouse": "warehouse.core", "WriteResult": "warehouse.ingest.writer"}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # once imported, a plain attribute
        return value
    raise AttributeError(f"module 'warehouse' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "QueryTimeoutError",
    "ReadOnlyError",
    "ResultTooLargeError",
    "RetentionPolicyError",
    "TerminalError",
    "TransientError",
    "UnknownNameError",
    "ValidationError",
    "Warehouse",
    "WarehouseError",
    "WriteResult",
]
__version__ = "0.1.0"
