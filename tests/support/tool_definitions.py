"""Hand-built ToolDefinitions for the upstream and security tests (the compiler is tested on its own)."""

from __future__ import annotations

from typing import Any

from castproxy.openapi.model import BodyPart, BodySpec, Operation, ParameterSpec, ToolDefinition


def tool(
    path: str,
    *params: ParameterSpec,
    method: str = "GET",
    body: BodySpec | None = None,
    schema: dict[str, Any] | None = None,
) -> ToolDefinition:
    return ToolDefinition(
        name="t",
        operation_id="t",
        description="test tool",
        input_schema=schema or {"type": "object"},
        operation=Operation(method=method, path=path, parameters=params, body=body),
    )


def path(name: str, argument: str | None = None, **kw: Any) -> ParameterSpec:
    return ParameterSpec(name=name, location="path", argument=argument or name, required=True, **kw)


def query(name: str, argument: str | None = None, **kw: Any) -> ParameterSpec:
    kw.setdefault("style", "form")
    kw.setdefault("explode", True)
    return ParameterSpec(name=name, location="query", argument=argument or name, **kw)


def header(name: str, argument: str | None = None, **kw: Any) -> ParameterSpec:
    return ParameterSpec(name=name, location="header", argument=argument or name, **kw)


def cookie(name: str, argument: str | None = None, **kw: Any) -> ParameterSpec:
    kw.setdefault("style", "form")
    kw.setdefault("explode", True)
    return ParameterSpec(name=name, location="cookie", argument=argument or name, **kw)


# The operation the forwarding-safety table attacks: every parameter location plus a JSON body.
ITEM_TOOL = tool(
    "/items/{id}",
    path("id"),
    query("q"),
    query("filter", allow_reserved=True),
    header("X-Trace", "trace"),
    header("Authorization", "authorization"),
    header("Host", "host_header"),
    header("Cookie", "cookie_header"),
    header("Content-Length", "length"),
    header("Transfer-Encoding", "te"),
    header("Proxy-Authorization", "proxy_auth"),
    header("X-Api-Key", "api_key_header"),
    header("X-Tenant", "tenant"),
    cookie("session"),
    method="POST",
    body=BodySpec(content_type="application/json", properties=(("name", "name"), ("tags", "tags"))),
)

FORM_TOOL = tool(
    "/forms", method="POST", body=BodySpec(content_type="application/x-www-form-urlencoded", argument="form")
)

MULTIPART_TOOL = tool(
    "/upload",
    method="POST",
    body=BodySpec(
        content_type="multipart/form-data",
        properties=(("file", "file"), ("note", "note"), ("meta", "meta")),
        parts=(BodyPart(name="file", binary=True, content_type="image/png"), BodyPart(name="note")),
    ),
)

MULTIPART_OBJECT_TOOL = tool(
    "/upload", method="POST", body=BodySpec(content_type="multipart/form-data", argument="fields")
)
