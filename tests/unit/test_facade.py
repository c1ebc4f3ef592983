"""The facade is one API: every public Warehouse method exists on the remote client too, or
is named as needing the database itself (LOCAL_ONLY)."""

from __future__ import annotations

import inspect

from warehouse.client import LOCAL_ONLY, RemoteWarehouse
from warehouse.core import Warehouse


def _public(cls) -> set[str]:
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


def test_every_warehouse_method_is_remote_or_local_only():
    missing = _public(Warehouse) - _public(RemoteWarehouse) - LOCAL_ONLY
    assert not missing, f"Warehouse methods with no HTTP equivalent: {sorted(missing)}"


def test_local_only_names_are_warehouse_methods():
    assert LOCAL_ONLY <= _public(Warehouse)
