"""``python -m warehouse.jobs ...``: the warehouse CLI with the job commands registered,
whether or not warehouse/cli.py registers them itself (used by the fault tests)."""

from __future__ import annotations

from warehouse.cli import main
from warehouse.jobs.cli import register

register(main)

if __name__ == "__main__":
    main()
