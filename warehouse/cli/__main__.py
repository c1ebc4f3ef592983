"""``python -m warehouse.cli ...``: the same as the ``warehouse`` command."""

from __future__ import annotations

from warehouse.cli import main

if __name__ == "__main__":
    main(prog_name="warehouse")
