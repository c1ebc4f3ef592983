"""Pydantic's validation errors as one line each, naming the panel (by id) and the field:
``panel 'p95' field 'query.agg': unknown aggregate 'p96'; expected ...``."""

from __future__ import annotations

_NOUNS = {"agg": "aggregate", "kind": "query kind", "view": "view", "function":
          "analytics function", "fill": "fill", "reduce": "reducer", "schema_version":
          "schema_version", "orientation": "orientation"}


_TYPE_TAGS = {"str", "int", "float", "bool", "none", "constrained-str", "dict", "list"}


def _is_tag(part) -> bool:
    """Pydantic names the branch of a union in ``loc`` ('str', "list[literal[...]]")."""
    return isinstance(part, str) and ("[" in part or part in _TYPE_TAGS)


def _split(loc: tuple, document: dict, query_kinds) -> tuple[list, object, str | None]:
    """The field path without union branch tags, the input the union was given, and the
    first branch tag (None when the error is not inside a union)."""
    fields, value, tag = [], document, None
    for part in loc:
        if _is_tag(part):
            tag = tag or part
            continue
        if tag is None:
            if isinstance(value, dict) and part in value:
                value = value[part]
            elif isinstance(value, list) and isinstance(part, int) and part < len(value):
                value = value[part]
            elif not (fields[-1:] == ["query"] and part in query_kinds):
                value = None
        fields.append(part)
    return fields, value, tag


def _where(fields: list, document: dict, query_kinds) -> tuple[str, list[str]]:
    """['panels', 2, 'query', 'points', 'agg'] -> ("panel 'p95'", ['query', 'agg'])."""
    parts = list(fields)
    for collection, noun, key in (("panels", "panel", "id"), ("variables", "variable", "name")):
        if len(parts) >= 2 and parts[0] == collection and isinstance(parts[1], int):
            items = document.get(collection) or []
            item = items[parts[1]] if parts[1] < len(items) else None
            named = item.get(key) if isinstance(item, dict) else None
            who = f"{noun} {named!r}" if isinstance(named, str) else f"{noun} #{parts[1] + 1}"
            rest = parts[2:]
            if rest[:1] == ["query"] and len(rest) > 1 and rest[1] in query_kinds:
                rest = [rest[0], *rest[2:]]  # drop pydantic's discriminator tag
            return who, [str(p) for p in rest]
    return "", [str(p) for p in parts]


def describe(error: dict, document: dict, query_kinds=()) -> str | None:
    """One line for one pydantic error: which panel (by id) or variable, which field, what."""
    fields, union_input, tag = _split(error["loc"], document, query_kinds)
    if tag is not None and tag.startswith("list[") != isinstance(union_input, list):
        return None  # the branch of the union that the input was not meant for
    who, names = _where(fields, document, query_kinds)
    field = ".".join(names)
    message = error["msg"].removeprefix("Value error, ")
    kind = error["type"]
    last = next((n for n in reversed(names) if not n.isdigit()), "")
    if kind == "literal_error":
        noun = _NOUNS.get(last, last or "value")
        if last == "type":
            noun = "panel type" if who.startswith("panel") else "variable type"
        message = f"unknown {noun} {error['input']!r}; expected {error['ctx']['expected']}"
    elif kind == "union_tag_invalid":
        message = (f"unknown query kind {error['ctx']['tag']!r}; expected one of "
                   f"{', '.join(query_kinds)}")
    elif kind == "union_tag_not_found":
        message = f"a query needs a 'kind' ({', '.join(query_kinds)})"
    elif kind == "extra_forbidden":
        message = "unknown field"
    place = " ".join(p for p in (who, f"field {field!r}" if field else "") if p)
    return f"{place}: {message}" if place else message


__all__ = ["describe"]
