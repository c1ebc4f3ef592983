"""Static checks of a dashboard's text: variable references and panel SQL.

The SQL check is an early, friendly refusal when a definition is saved; the guarantee is
``wh.sql``, which is read-only by construction on both engines (docs/views.md) and runs
every panel's SQL again at render time.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_REFERENCE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_EMBEDDED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Literals, quoted identifiers, dollar quotes and comments: removed before looking for words.
_LITERALS = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\$(\w*)\$.*?\$\1\$|--[^\n]*|/\*.*?\*/",
                       re.DOTALL)
_BIND = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")
_QUERY_STARTS = {"select", "with", "values", "from", "table", "("}
_WRITE_WORDS = {
    "insert", "update", "delete", "merge", "upsert", "drop", "create", "alter", "truncate",
    "copy", "attach", "detach", "grant", "revoke", "call", "do", "set", "reset", "load",
    "install", "pragma", "export", "import", "checkpoint", "vacuum", "analyze", "lock",
    "comment", "refresh", "listen", "notify", "prepare", "execute", "begin", "commit",
    "rollback", "savepoint", "into", "use",
}


def walk_references(value, path: str) -> Iterator[tuple[str, str]]:
    """(field path, variable name) of every ``"$name"`` and ``${name}`` inside ``value``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from walk_references(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from walk_references(item, f"{path}[{index}]")
    elif isinstance(value, str):
        whole = _REFERENCE.match(value)
        if whole:
            yield path, whole[1]
        for name in _EMBEDDED.findall(value):
            yield path, name


def reference(value) -> str | None:
    """The variable name if ``value`` is a whole ``"$name"`` reference, else None."""
    match = _REFERENCE.match(value) if isinstance(value, str) else None
    return match[1] if match else None


def embedded(text: str, values: dict) -> str:
    """``${name}`` in a title replaced by the variable's value (text, never SQL)."""
    return _EMBEDDED.sub(lambda m: "" if values.get(m[1]) is None else str(values[m[1]]), text)


def _code(sql: str) -> str:
    return _LITERALS.sub(" ", sql)


def sql_binds(sql: str) -> list[str]:
    """The ``:name`` binds of a statement, in order of first use (``::type`` casts skipped)."""
    seen: dict[str, None] = {}
    for name in _BIND.findall(_code(sql)):
        seen.setdefault(name, None)
    return list(seen)


def replace_binds(sql: str, replacement) -> str:
    """``sql`` with each ``:name`` bind outside literals and comments replaced by
    ``replacement(name)`` (used to write the same query for another client, e.g. Grafana)."""
    out, last = [], 0
    for literal in _LITERALS.finditer(sql):
        out.append(_BIND.sub(lambda m: replacement(m[1]), sql[last:literal.start()]))
        out.append(literal[0])
        last = literal.end()
    out.append(_BIND.sub(lambda m: replacement(m[1]), sql[last:]))
    return "".join(out)


def sql_write_reason(sql: str) -> str | None:
    """Why this text is not one read-only query, or None when it looks like one."""
    code = _code(sql).strip()
    body = code.rstrip().rstrip(";")
    if ";" in body:
        return "SQL must be one statement (found ';' before the end)"
    words = re.findall(r"[A-Za-z_]+|\(", body.lower())
    if not words:
        return "SQL is empty"
    if words[0] not in _QUERY_STARTS:
        return f"SQL must be a query (SELECT, WITH, VALUES); it starts with {words[0].upper()!r}"
    writes = sorted(set(words) & _WRITE_WORDS)
    if writes:
        return f"SQL that writes or changes state is refused: found {writes[0].upper()}"
    return None


__all__ = ["embedded", "reference", "replace_binds", "sql_binds", "sql_write_reason", "walk_references"]
