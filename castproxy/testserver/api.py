"""The test server's items/users REST API: the routes, their scopes, and JSON errors (request bodies are
validated against the bundled `openapi.json`, so document and behaviour cannot drift apart).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from castproxy.testserver.data import DataStore
from castproxy.testserver.gate import Caller, Gate

__all__ = ["OPERATION_SCOPES", "api_routes", "bundled_document"]

# operationId -> the OAuth scope it needs (also written into the OpenAPI document's `security`).
OPERATION_SCOPES = {
    "listItems": "read:items",
    "createItem": "write:items",
    "getItem": "read:items",
    "updateItem": "write:items",
    "deleteItem": "write:items",
    "searchItems": "read:items",
    "listUsers": "read:users",
    "getUser": "read:users",
    "getCurrentUser": "read:items",
}

Handler = Callable[[Request, Caller], Awaitable[Response]]


@cache
def bundled_document() -> dict[str, Any]:
    """The static part of the OpenAPI document (servers and security are added per mode and request)."""
    text = resources.files("castproxy.testserver").joinpath("openapi.json").read_text("utf-8")
    document: dict[str, Any] = json.loads(text)
    return document


@cache
def _validator(schema_name: str) -> Draft202012Validator:
    return Draft202012Validator(bundled_document()["components"]["schemas"][schema_name])


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": code, "message": message}, status_code=status)


class _BadRequest(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


def _int_param(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be an integer, got {raw!r}") from None
    if not low <= value <= high:
        raise _BadRequest(f"{name} must be between {low} and {high}, got {value}")
    return value


def _number_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise _BadRequest(f"{name} must be a number, got {raw!r}") from None


async def _json_body(request: Request, schema_name: str) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"null")
    except ValueError:
        raise _BadRequest("the body is not valid JSON") from None
    if body is None:
        raise _BadRequest("a JSON body is required")
    problem = next(iter(sorted(_validator(schema_name).iter_errors(body), key=lambda e: list(e.path))), None)
    if problem is not None:
        where = "/".join(str(part) for part in problem.path) or "body"
        raise _BadRequest(f"{where}: {problem.message}")
    assert isinstance(body, dict)  # ItemInput and ItemPatch are objects: validation refused anything else
    return body


def _matches(item: dict[str, Any], text: str | None) -> bool:
    if not text:
        return True
    text = text.lower()
    return text in item["name"].lower() or text in item["description"].lower()


class ItemsApi:
    """The handlers; each gets the caller that the mode's gate let through."""

    def __init__(self, data: DataStore) -> None:
        self.data = data

    async def list_items(self, request: Request, caller: Caller) -> Response:
        limit = _int_param(request, "limit", 20, 1, 100)
        offset = _int_param(request, "offset", 0, 0, 10**9)
        text, tag = request.query_params.get("q"), request.query_params.get("tag")
        found = [item for item in self.data.items.values() if _matches(item, text) and (not tag or tag in item["tags"])]
        return JSONResponse({"items": found[offset : offset + limit], "total": len(found)})

    async def search_items(self, request: Request, caller: Caller) -> Response:
        low, high = _number_param(request, "min_price"), _number_param(request, "max_price")
        tags = request.query_params.getlist("tags")
        sort = request.query_params.get("sort", "id")
        if sort not in ("id", "name", "price"):
            raise _BadRequest(f"sort must be one of id, name, price, got {sort!r}")
        found = [
            item
            for item in self.data.items.values()
            if _matches(item, request.query_params.get("q"))
            and (low is None or item["price"] >= low)
            and (high is None or item["price"] <= high)
            and all(tag in item["tags"] for tag in tags)
        ]
        found.sort(key=lambda item: item[sort])
        return JSONResponse({"items": found, "total": len(found)})

    async def create_item(self, request: Request, caller: Caller) -> Response:
        fields = await _json_body(request, "ItemInput")
        if caller.user_id is not None:
            fields.setdefault("owner_id", caller.user_id)
        if fields.get("owner_id", 1) not in self.data.users:
            raise _BadRequest(f"owner_id: no user {fields['owner_id']}")
        item, created = self.data.create_item(fields, request.headers.get("idempotency-key"))
        return JSONResponse(item, status_code=201 if created else 200)

    async def get_item(self, request: Request, caller: Caller) -> Response:
        item = self.data.items.get(request.path_params["id"])
        if item is None:
            return error(404, "NOT_FOUND", f"no item with id {request.path_params['id']}")
        return JSONResponse(item)

    async def update_item(self, request: Request, caller: Caller) -> Response:
        fields = await _json_body(request, "ItemPatch")
        item = self.data.update_item(request.path_params["id"], fields)
        if item is None:
            return error(404, "NOT_FOUND", f"no item with id {request.path_params['id']}")
        return JSONResponse(item)

    async def delete_item(self, request: Request, caller: Caller) -> Response:
        if not self.data.delete_item(request.path_params["id"]):
            return error(404, "NOT_FOUND", f"no item with id {request.path_params['id']}")
        return Response(status_code=204)

    async def list_users(self, request: Request, caller: Caller) -> Response:
        role = request.query_params.get("role")
        if role is not None and role not in ("admin", "member"):
            raise _BadRequest(f"role must be admin or member, got {role!r}")
        found = [user for user in self.data.users.values() if role is None or user["role"] == role]
        return JSONResponse({"users": found, "total": len(found)})

    async def get_user(self, request: Request, caller: Caller) -> Response:
        user = self.data.users.get(request.path_params["id"])
        if user is None:
            return error(404, "NOT_FOUND", f"no user with id {request.path_params['id']}")
        return JSONResponse(user)

    async def current_user(self, request: Request, caller: Caller) -> Response:
        user = self.data.users.get(caller.user_id) if caller.user_id is not None else None
        return JSONResponse(
            {"auth": caller.auth, "user": user, "client_id": caller.client_id, "scopes": sorted(caller.scopes)}
        )


def _guarded(gate: Gate, operation_id: str, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    scope = OPERATION_SCOPES[operation_id]

    async def endpoint(request: Request) -> Response:
        caller = gate.check(request, scope)
        if isinstance(caller, Response):
            return caller
        try:
            return await handler(request, caller)
        except _BadRequest as exc:
            return error(400, "VALIDATION_ERROR", exc.message)

    endpoint.__name__ = operation_id
    return endpoint


def api_routes(data: DataStore, gate: Gate) -> list[Route]:
    api = ItemsApi(data)
    table = [
        ("/api/items", "GET", "listItems", api.list_items),
        ("/api/items", "POST", "createItem", api.create_item),
        ("/api/items/{id:int}", "GET", "getItem", api.get_item),
        ("/api/items/{id:int}", "PATCH", "updateItem", api.update_item),
        ("/api/items/{id:int}", "DELETE", "deleteItem", api.delete_item),
        ("/api/search/items", "GET", "searchItems", api.search_items),
        ("/api/users", "GET", "listUsers", api.list_users),
        ("/api/users/{id:int}", "GET", "getUser", api.get_user),
        ("/api/me", "GET", "getCurrentUser", api.current_user),
    ]
    return [Route(path, _guarded(gate, op, handler), methods=[method]) for path, method, op, handler in table]
