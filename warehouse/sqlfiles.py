"""Load SQL by name: ``sql/<dialect>/NAME.sql``, falling back to ``sql/common/NAME.sql``.

SQL files are executed whole (never split on ``;``: PL/pgSQL ``$$`` bodies contain them).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from warehouse.errors import UnknownNameError


def sql_root() -> Path:
    """The ``sql/`` folder: inside the installed package, else at the top of the source tree."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "sql", here.parent / "sql"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("the warehouse's sql/ folder is missing from this installation")


@cache
def load_sql(folders: str | tuple[str, ...], name: str) -> str:
    """Return the text of ``sql/<folder>/<name>.sql`` from the first folder that has it.

    ``folders`` is a backend's folder chain (``("timescaledb", "postgresql", "common")``) or
    a dialect name, which means ``(dialect, "common")``.
    """
    root = sql_root()
    chain = (folders, "common") if isinstance(folders, str) else folders
    for folder in chain:
        path = root / folder / f"{name}.sql"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    raise UnknownNameError(f"no SQL file {name!r} in {', '.join(chain)} under {root}")


@cache
def sql_fragment(folders: str | tuple[str, ...], name: str) -> str:
    """An SQL expression file (:func:`load_sql`) without its comment lines, on one line, to
    be placed inside a statement; it may be empty (nothing needed on that engine)."""
    return " ".join(line for line in load_sql(folders, name).splitlines()
                    if line.strip() and not line.lstrip().startswith("--"))
