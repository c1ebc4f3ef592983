"""Storage backends: one module per engine behind the same small interface (see base.py)."""

from __future__ import annotations

from warehouse.backends.base import Backend, Capabilities, backend_for, open_backend

__all__ = ["Backend", "Capabilities", "backend_for", "open_backend"]
