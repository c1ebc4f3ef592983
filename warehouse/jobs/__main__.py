"""``python -m warehouse.jobs ...``: the ``warehouse`` command (kept for the job fault
tests, which start it as a subprocess; ``python -m warehouse.cli`` is the same).

Run by module name so that the jobs area does not import the CLI (docs/architecture.md).
"""

from __future__ import annotations

import runpy

if __name__ == "__main__":
    runpy.run_module("warehouse.cli", run_name="__main__", alter_sys=True)
