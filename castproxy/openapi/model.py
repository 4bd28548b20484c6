"""What the compiler produces and the request builder consumes: immutable, JSON-free at call time."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = [
    "BodyPart", "BodySpec", "CompiledSpec", "Operation", "ParameterKind", "ParameterLocation", "ParameterSpec",
    "ToolDefinition"
]

ParameterLocation = Literal["path", "query", "header", "cookie"]
ParameterKind = Literal["primitive", "array", "object"]


@dataclass(frozen=True, slots=True)
class ParameterSpec:
    """One OpenAPI parameter and the tool argument that feeds it."""

    name: str  # name on the wire (path placeholder, query key, header or cookie name)
    location: ParameterLocation
    argument: str  # property name in the tool's input schema (differs from `name` on clashes)
    required: bool = False
    style: str = "simple"  # OpenAPI style; defaults: path/header "simple", query/cookie "form"
    explode: bool = False  # OpenAPI explode; default true for style "form"
    allow_reserved: bool = False
    kind: ParameterKind = "primitive"  # shape, for serialisation
    content_type: str | None = None  # set when the parameter uses `content` (value sent as JSON text)


@dataclass(frozen=True, slots=True)
class BodyPart:
    """One multipart/form field: `binary` parts arrive as base64 text in the argument."""

    name: str
    binary: bool = False
    content_type: str | None = None
    style: str | None = None  # the field's `encoding` style/explode, when the spec gives them
    explode: bool | None = None


@dataclass(frozen=True, slots=True)
class BodySpec:
    """The request body. Either the whole body is one argument (`argument` set), or it is an
    object whose properties are top-level arguments (`properties`: argument name -> body property)."""

    content_type: str  # application/json, application/x-www-form-urlencoded, multipart/form-data, ...
    required: bool = False
    argument: str | None = None
    properties: tuple[tuple[str, str], ...] = ()
    parts: tuple[BodyPart, ...] = ()  # multipart and form fields with encoding details
    binary: bool = False  # whole body is bytes (octet-stream etc.): the argument is base64 text


@dataclass(frozen=True, slots=True)
class Operation:
    method: str  # upper case
    path: str  # template relative to the base URL, e.g. "/api/items/{id}"
    parameters: tuple[ParameterSpec, ...] = ()
    body: BodySpec | None = None


@dataclass(frozen=True, slots=True)
class ToolDefinition:
    name: str  # [A-Za-z0-9_.-]{1,64}, unique per workspace
    operation_id: str | None  # the spec's operationId (None when the spec has none)
    description: str
    input_schema: dict[str, Any]  # JSON Schema 2020-12, type object
    operation: Operation
    title: str | None = None
    annotations: dict[str, Any] = field(default_factory=dict)  # MCP ToolAnnotations fields
    output_schema: dict[str, Any] | None = None
    warnings: tuple[str, ...] = ()  # what the compiler could not represent for this operation
    tags: tuple[str, ...] = ()  # the operation's OpenAPI tags (tools selectors and search read them)
    # The operation's OAuth scopes (`security`, oauth2/openIdConnect schemes): alternatives, each needing all its
    # scopes; () when it names none. castproxy/access enforces them for OAuth upstreams (issue 14).
    security_scopes: tuple[tuple[str, ...], ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledSpec:
    title: str
    servers: tuple[str, ...]  # server URLs from the spec, in order
    tools: tuple[ToolDefinition, ...]
    warnings: tuple[str, ...] = ()  # what the compiler could not represent, naming the operation
