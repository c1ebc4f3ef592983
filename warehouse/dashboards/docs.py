"""Write the dashboard JSON Schema into docs/dashboards.md (between the schema markers):
``python -m warehouse.dashboards.docs [PATH]``. A unit test fails when the docs are stale."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from warehouse.dashboards.definition import json_schema

BLOCK = re.compile(r"(<!-- schema:begin -->\n).*?(<!-- schema:end -->)", re.DOTALL)


def update(path: Path) -> bool:
    """Replace the schema block of ``path``; True if the file changed."""
    text = path.read_text(encoding="utf-8")
    schema = json.dumps(json_schema(), indent=2, ensure_ascii=False)
    new = BLOCK.sub(lambda m: f"{m[1]}```json\n{schema}\n```\n{m[2]}", text)
    if new != text:
        path.write_text(new, encoding="utf-8")
    return new != text


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/dashboards.md")
    print(f"{target}: {'updated' if update(target) else 'up to date'}")
