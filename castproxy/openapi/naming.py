"""Tool and argument names: sanitised to `[A-Za-z0-9_.-]{1,64}`, unique, and stable (a name depends only on
its own operation, so adding an unrelated operation renames nothing).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["argument_name", "assign_names", "operation_name", "sanitize"]

MAX_NAME = 64
_INVALID = re.compile(r"[^A-Za-z0-9_.-]+")


def short_hash(text: str, length: int = 8) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def sanitize(text: str, *, fallback: str = "op", limit: int = MAX_NAME) -> str:
    """`text` with each run of disallowed characters turned into `_`, cut to `limit` characters."""
    name = _INVALID.sub("_", text).strip("_") or fallback
    if len(name) > limit:
        name = f"{name[: limit - 9]}_{short_hash(text)}"
    return name


def operation_name(operation_id: str | None, method: str, path: str) -> str:
    if operation_id:
        return sanitize(operation_id)
    return sanitize(f"{method.lower()}_{sanitize(path, fallback='root')}")


def assign_names(candidates: list[tuple[str, str | None, str, str]]) -> list[str]:
    """Unique names for (base name, operationId, method, path) candidates, in the same order."""
    groups: dict[str, list[int]] = {}
    for index, (base, *_rest) in enumerate(candidates):
        groups.setdefault(base, []).append(index)
    names = [base for base, *_rest in candidates]
    for base, members in groups.items():
        if len(members) == 1:
            continue
        exact = [i for i in members if candidates[i][1] == base]
        keeper = exact[0] if len(exact) == 1 else None
        for index in members:
            if index != keeper:
                _, _, method, path = candidates[index]
                names[index] = _suffixed(base, f"{method.upper()} {path}", 8)
    # A suffixed name can only clash again in contrived specs; lengthen the hash until unique.
    seen: dict[str, int] = {}
    for index, name in enumerate(names):
        length = 8
        while name in seen:
            length += 4
            _, _, method, path = candidates[index]
            name = _suffixed(candidates[index][0], f"{method.upper()} {path}#{index}", min(length, 40))
        seen[name] = index
        names[index] = name
    return names


def _suffixed(base: str, key: str, length: int) -> str:
    suffix = "_" + short_hash(key, length)
    return base[: MAX_NAME - len(suffix)] + suffix


def argument_name(name: str) -> str:
    """A tool argument for a parameter or body property: the same allowed characters as tool names."""
    argument = _INVALID.sub("_", name) or "value"
    return argument if len(argument) <= MAX_NAME else f"{argument[: MAX_NAME - 9]}_{short_hash(name)}"
