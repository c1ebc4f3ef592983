"""Load parsed traces into a warehouse: ``warehouse import wfcommons|runs``.

Each file is validated whole (runs and steps) before anything of it is written; writes are
keyed by run id and (run id, step id), so importing the same file again changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path

from warehouse.errors import ValidationError
from warehouse.importers.runs_file import ImportFormatError
from warehouse.ingest.runs import prepare_runs, prepare_steps

PARSERS = {"wfcommons": "parse_wfformat", "runs": "parse_runs_file"}


def expand(paths: Iterable[str | Path], pattern: str = "*.json") -> list[Path]:
    """Files named directly, plus the files matching ``pattern`` inside named folders."""
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            files += sorted(path.glob(pattern))
        elif path.is_file():
            files.append(path)
        else:
            raise FileNotFoundError(f"{path}: no such file or folder")
    return files


def import_files(wh, kind: str, paths: Iterable[str | Path],
                 progress: Callable[[Path], None] | None = None) -> dict[str, int]:
    """Parse and write every file; returns counts of files, runs and steps written."""
    import warehouse.importers as importers

    if kind not in PARSERS:
        raise ValueError(f"unknown import kind {kind!r}; choose {', '.join(PARSERS)}")
    parse = getattr(importers, PARSERS[kind])
    files = expand(paths, "*.json" if kind == "wfcommons" else "*")
    totals = {"files": 0, "runs": 0, "steps": 0, "runs_written": 0, "steps_written": 0}
    for path in files:
        runs, steps = parse(path)
        try:  # both valid before either is written
            prepare_runs(runs), prepare_steps(steps)
        except ValidationError as exc:
            # What the parser let through but ingest refuses (a NUL in a task name): named
            # by file, like every other import error, not as an anonymous batch.
            raise ImportFormatError(path.name, exc.what, str(exc).split(" — ", 1)[-1]) from exc
        totals["runs_written"] += wh.write_runs(runs).written
        totals["steps_written"] += wh.write_steps(steps).written
        totals["files"] += 1
        totals["runs"] += len(runs)
        totals["steps"] += len(steps)
        if progress:
            progress(path)
    return totals
