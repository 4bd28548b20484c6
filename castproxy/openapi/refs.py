"""Following local `$ref` pointers inside one (bundled) document, with every failure named."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from castproxy.openapi.loader import SpecError

__all__ = ["RefResolver"]


class RefResolver:
    """Resolves `#/...` JSON pointers against the document root; results are memoised per ref."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._cache: dict[str, Any] = {}

    def resolve(self, ref: str, where: str) -> Any:
        found = self._cache.get(ref)
        if found is not None:
            return found
        if not ref.startswith("#"):
            raise SpecError(f"{where}: $ref {ref!r} points outside the document; castproxy does not fetch remote refs")
        node: Any = self.document
        for raw_token in ref[1:].split("/")[1:] if ref != "#" else []:
            token = unquote(raw_token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and token in node:
                node = node[token]
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                raise SpecError(f"{where}: $ref {ref!r} does not resolve (no {token!r} there)")
        self._cache[ref] = node
        return node

    def follow(self, node: Any, where: str) -> tuple[Any, str | None]:
        """A non-schema object (parameter, request body, response) with its ref chain followed.

        Returns the object and the last ref followed (None when `node` was not a ref)."""
        last: str | None = None
        seen: set[str] = set()
        while isinstance(node, dict) and isinstance(node.get("$ref"), str):
            ref = node["$ref"]
            if ref in seen:
                raise SpecError(f"{where}: $ref {ref!r} refers to itself")
            seen.add(ref)
            last = ref
            node = self.resolve(ref, where)
        return node, last
