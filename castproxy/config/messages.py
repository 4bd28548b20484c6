"""pydantic validation errors -> a config path and a sentence a cast.yaml author understands.

A value is quoted only when it cannot be a secret (docs/architecture.md, "Config errors").
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from pydantic_core import ErrorDetails

from castproxy.config import model
from castproxy.config.source import Loc

__all__ = ["AUTH_TYPES", "Located", "explain_validation_error"]


AUTH_TYPES: dict[str, type[BaseModel]] = {
    "none": model.NoAuth,
    "bearer": model.BearerAuth,
    "api_key": model.ApiKeyAuth,
    "headers": model.HeadersAuth,
    "oauth2": model.OAuth2Auth,
    "login": model.LoginAuth,
}
TOOL_ENTRY_TAGS: frozenset[str | int] = frozenset({"operation", "selection", "selector"})
_ENTRY_SHAPES = ("an operationId, '*', a mapping with `operation` (and optional `name`, `description`), "
                 "or a selector with `tag`, `path` and/or `method`")


@dataclass(frozen=True)
class Located:
    """One problem found in the data: where (path; `key=True` points at the key itself) and what."""

    path: Loc
    message: str
    key: bool = False


def data_path(loc: Iterable[str | int], data: Any) -> tuple[Loc, bool]:
    """Follow a pydantic location through the data; returns the data path and whether it names a key."""
    path: list[str | int] = []
    node = data
    parts = list(loc)
    index = 0
    while index < len(parts):
        part = parts[index]
        index += 1
        if part == "[key]":
            return tuple(path), True
        in_mapping = isinstance(node, dict) and part in node
        in_list = isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        if in_mapping or in_list:
            node = node[part]
            path.append(part)
            tags = _union_tags(tuple(path))
            if index < len(parts) and parts[index] in tags:
                index += 1  # the union member's tag: not part of the data
        elif index == len(parts) and isinstance(part, str):
            path.append(part)  # a missing key: the position falls back to its parent
    return tuple(path), False


def _union_tags(path: Loc) -> frozenset[str | int]:
    match path:
        case ("workspaces", str(), "auth"):
            return frozenset(AUTH_TYPES)
        case ("workspaces", str(), "tools" | "exclude", int()):
            return TOOL_ENTRY_TAGS
    return frozenset()


def model_at(path: Loc, data: Any) -> type[BaseModel] | None:
    """The model class that validates the mapping at `path` (for "expected one of" lists)."""
    match path:
        case ():
            return model.Config
        case ("server",):
            return model.ServerSettings
        case ("store",):
            return model.StoreSettings
        case ("workspaces", str()):
            return model.Workspace
        case ("workspaces", str(), "inbound"):
            return model.Inbound
        case ("workspaces", str(), "tools", int()):
            entry = _get(data, path)
            is_selector = isinstance(entry, dict) and "operation" not in entry and any(
                key in entry for key in model.SELECTOR_KEYS)
            return model.ToolSelector if is_selector else model.ToolSelection
        case ("workspaces", str(), "exclude", int()):
            return model.ToolSelector
        case ("workspaces", str(), "auth"):
            auth = _get(data, path)
            return AUTH_TYPES.get(str(auth.get("type"))) if isinstance(auth, dict) else None
    return None


def where(path: Loc) -> str:
    """Where a key sits, as words: "at the top level", "in workspace 'api'", "in auth"."""
    match path:
        case ():
            return "at the top level"
        case ("workspaces", name):
            return f"in workspace '{name}'"
        case (*_, "tools" | "exclude" as field, int(index)):
            return f"in {field} entry {index + 1}"
        case (*_, str(last)):
            return f"in {last}"
    return "here"


def explain_validation_error(error: ErrorDetails, data: Any, *, may_show: Callable[[Loc], bool]) -> Located:
    """Turn one entry of `ValidationError.errors()` into a positioned, readable problem."""
    path, is_key = data_path(error["loc"], data)
    if is_key:
        return Located(path, _bad_key(path, str(path[-1]) if path else ""), key=True)
    field = next((part for part in reversed(path) if isinstance(part, str)), "value")
    return _placement_problem(error, path, field, data, may_show) or _value_problem(error, path, field, may_show)


def _placement_problem(
    error: ErrorDetails, path: Loc, field: str, data: Any, may_show: Callable[[Loc], bool]
) -> Located | None:
    """A key missing or unknown, an auth `type` missing or unknown, a tools/exclude entry of the wrong shape."""
    kind = error["type"]
    if kind == "missing":
        parent = path[:-1]
        hint = " (add `version: 1`)" if path == ("version",) else ""
        return Located(parent, f"missing required key '{field}' {where(parent)}{hint}", key=True)
    if kind == "extra_forbidden":
        return Located(path, _unknown_key(path, data), key=True)
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        types = ", ".join(AUTH_TYPES)
        if kind == "union_tag_not_found":
            return Located(path, f"`{field}` needs a `type`: one of {types}", key=True)
        tag = _quote((error.get("ctx") or {}).get("tag")) if may_show((*path, "type")) else "(from a ${...} reference)"
        return Located((*path, "type"), f"unknown {field} type {tag} (expected one of: {types})")
    if path[-2:-1] == ("tools",) and kind in ("string_type", "model_type", "model_attributes_type"):
        return Located(path, f"each tools entry must be {_ENTRY_SHAPES}")
    if path[-2:-1] == ("exclude",) and kind in ("string_type", "model_type", "model_attributes_type"):
        return Located(path, "each exclude entry must be an operationId, or a selector mapping with `tag`, `path` "
                       "and/or `method`")
    return None


def _value_problem(error: ErrorDetails, path: Loc, field: str, may_show: Callable[[Loc], bool]) -> Located:
    """A value of the wrong type, empty, not among the choices, of the wrong format or out of bounds."""
    kind, value, ctx = error["type"], error.get("input"), error.get("ctx") or {}
    name = f"each entry of `{field}`" if path and isinstance(path[-1], int) else f"`{field}`"
    if not may_show(path):
        shown = " (the value comes from a ${...} reference and is not shown)"
    else:
        shown = f" (got {_quote(value)})" if isinstance(value, str | int | float) else ""
    if kind in ("bool_type", "bool_parsing"):
        return Located(path, f"{name} must be true or false{shown}")
    if kind in ("int_type", "int_parsing", "int_from_float"):
        return Located(path, f"{name} must be a whole number{shown}")
    if kind in ("float_type", "float_parsing"):
        return Located(path, f"{name} must be a number{shown}")
    if kind == "string_type":
        return Located(path, f"{name} must be text")
    if kind == "list_type":
        if field in ("tools", "exclude"):
            got = "a mapping" if isinstance(value, dict) else "a single value" if value is not None else "empty"
            every = " or '*' for every operation" if field == "tools" else ""
            return Located(path, f"`{field}` must be a list of operationIds or selectors (one '- entry' per "
                           f"line){every}, not {got}")
        return Located(path, f"{name} must be a list (e.g. [a, b], or one '- item' per line)")
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        if not path:
            return Located(path, "the config must be a YAML mapping with `version: 1` and `workspaces:`")
        return Located(path, f"{name} must be a mapping (key: value lines indented below it)")
    if kind == "too_short":
        if field == "tools":
            return Located(path, "`tools` is empty: list at least one operationId or selector, or write "
                           "`tools: \"*\"` for every operation", key=True)
        if field == "workspaces":
            return Located(path, "`workspaces` is empty: define at least one workspace", key=True)
        return Located(path, f"{name} must not be empty", key=True)
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        if not options:
            return Located(path, f"{name} must be {ctx.get('expected')}{shown}")
        return Located(path, f"{name} must be one of: {', '.join(options)}{shown}")
    if kind == "string_pattern_mismatch":
        return Located(path, _pattern_message(ctx.get("pattern", ""), name, shown))
    if kind == "value_error":
        return Located(path, f"{name} must be {ctx.get('error')}{shown}")
    if kind in _BOUNDS:
        words, key = _BOUNDS[kind]
        bound = ctx.get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)  # "at least 1", not "at least 1.0", for a float field
        return Located(path, f"{name} must be {words} {bound}{shown}")
    return Located(path, f"{name}: {error['msg']}")


_BOUNDS = {"greater_than_equal": ("at least", "ge"), "less_than_equal": ("at most", "le"),
           "greater_than": ("greater than", "gt"), "less_than": ("less than", "lt")}


def _bad_key(path: Loc, key: str) -> str:
    if path[:1] == ("workspaces",) and len(path) == 2:
        message = f"workspace name '{key}' must be a URL slug: lower-case letters, digits and '-'"
        if re.fullmatch(r"[a-z0-9-]+", key):
            message += " (not at the start or end, at most 64 characters)"
        return message
    if "headers" in path[:-1]:
        return f"'{key}' is not a valid HTTP header name (letters, digits and !#$%&'*+.^_`|~-; no spaces or ':')"
    return f"key '{key}' is not allowed here"


def _unknown_key(path: Loc, data: Any) -> str:
    key = str(path[-1])
    parent = path[:-1]
    owner = model_at(parent, data)
    message = f"unknown key '{key}' {where(parent)}"
    if owner is None:
        return message
    allowed = list(owner.model_fields)
    message += f" (expected one of: {', '.join(allowed)})"
    if owner is model.ToolSelector and key in model.ToolSelection.model_fields:
        return message + f"; `{key}` applies to one operation: write it with `operation: OPERATION_ID`"
    if owner is model.ToolSelection and key in model.ToolSelector.model_fields:
        return message + "; a selector entry (tag, path, method) has no `operation`: write it as its own entry"
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    return message + (f"; did you mean '{close[0]}'?" if close else "")


def _pattern_message(pattern: str, name: str, shown: str) -> str:
    if pattern == model.URL_PATTERN:
        return f"{name} must be an http:// or https:// URL{shown}"
    if pattern == model.TOOL_NAME_PATTERN:
        return f"{name} must be 1 to 64 characters from A-Z, a-z, 0-9, '_', '.', '-'{shown}"
    if pattern == model.HEADER_NAME_PATTERN:
        return f"{name} must be a valid HTTP header name{shown}"
    if pattern == model.ANSWER_LOCATION_PATTERN:
        return f"{name} must be a field name or a JSON pointer such as /data/token (~0 for '~', ~1 for '/'){shown}"
    return f"{name} has the wrong format{shown}"


def _quote(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    # A FILE:LINE:COL problem is one line: control characters are shown escaped (\r, \n, \x00).
    text = "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(value))
    if len(text) > 60:
        text = text[:57] + "..."
    return f"'{text}'"


def _get(data: Any, path: Loc) -> Any:
    for part in path:
        if isinstance(data, dict) and isinstance(part, str):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data):
            data = data[part]
        else:
            return None
    return data
