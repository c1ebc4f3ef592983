"""Imports run one way, down the layers of docs/architecture.md (read from its tables)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "warehouse"
ORDER = ("base", "store", "areas", "facade", "faces")


def _tables() -> tuple[dict[str, str], dict[str, set[str]], set[tuple[str, str]]]:
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    layer_of: dict[str, str] = {}
    area_edges: dict[str, set[str]] = {}
    upward: set[tuple[str, str]] = set()
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`warehouse.") and cells[1].startswith("`"):
            upward.add((cells[0].strip("`"), cells[1].strip("`")))
        elif len(cells) == 3 and cells[0] in ORDER:
            for module in re.findall(r"`([\w.]+)`", cells[1]):
                layer_of[module] = cells[0]
        elif len(cells) == 2 and cells[0].startswith("`warehouse."):
            area = cells[0].strip("`")
            area_edges[area] = set(re.findall(r"`([\w.]+)`", cells[1]))
    return layer_of, area_edges, upward


LAYER_OF, AREA_EDGES, UPWARD = _tables()


def _allowed_upward(module: str, target: str) -> bool:
    return any(module == m and (target == t or target.startswith(t + ".")) for m, t in UPWARD)


def _owner(module: str) -> str | None:
    """The most specific module named in the table that ``module`` belongs to."""
    best = None
    for name in LAYER_OF:
        if (module == name or module.startswith(name + ".")) and (
                best is None or len(name) > len(best)):
            best = name
    return best


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every warehouse import outside ``if TYPE_CHECKING:`` blocks."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found = []
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            # `from warehouse import analytics` imports the analytics package.
            target = next((n for n in reversed(names) if _owner(n)), node.module)
            if target.startswith("warehouse"):
                found.append((node.lineno, target))
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("warehouse")]
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_module_has_a_layer():
    missing = sorted({_module_name(p) for p in SOURCES if _owner(_module_name(p)) is None})
    assert not missing, f"modules missing from docs/architecture.md: {missing}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_run_down(path):
    here = _module_name(path)
    here_owner = _owner(here)
    problems = []
    for line, target in _imports(path):
        there_owner = _owner(target)
        if there_owner is None or there_owner == here_owner or _allowed_upward(here, target):
            continue
        here_layer, there_layer = LAYER_OF[here_owner], LAYER_OF[there_owner]
        if ORDER.index(there_layer) > ORDER.index(here_layer):
            problems.append(f"line {line}: {here_layer} {here} imports {there_layer} {target}")
        elif here_layer == there_layer == "areas" and there_owner not in AREA_EDGES.get(
                here_owner, set()):
            problems.append(f"line {line}: area {here_owner} imports area {there_owner}, "
                            f"not an edge of docs/architecture.md")
    assert not problems, "\n".join(problems)


def test_no_import_cycle_between_top_level_modules():
    graph: dict[str, set[str]] = {}
    for path in SOURCES:
        here = _owner(_module_name(path))
        for _, target in _imports(path):
            if _allowed_upward(_module_name(path), target):
                continue
            there = _owner(target)
            if there and there != here:
                graph.setdefault(here, set()).add(there)
    seen, stack = set(), []

    def visit(node):
        if node in stack:
            raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(node):] + [node]))
        if node in seen:
            return
        stack.append(node)
        for nxt in graph.get(node, ()):
            visit(nxt)
        stack.pop()
        seen.add(node)

    for node in list(graph):
        visit(node)
