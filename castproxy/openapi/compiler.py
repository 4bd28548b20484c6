"""Compiling an OpenAPI document into MCP tool definitions: one tool per operation.

`compile_spec` is pure and cached by content hash; what a tool cannot represent is a warning naming it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from castproxy.openapi.budget import DEFAULT_MAX_SCHEMA_BYTES, MIN_SCHEMA_BYTES, SchemaFitter, format_bytes
from castproxy.openapi.loader import SpecError, gc_paused
from castproxy.openapi.model import (
    BodyPart,
    BodySpec,
    CompiledSpec,
    Operation,
    ParameterKind,
    ParameterLocation,
    ParameterSpec,
    ToolDefinition,
)
from castproxy.openapi.naming import argument_name, assign_names, operation_name
from castproxy.openapi.refs import RefResolver
from castproxy.openapi.schema import NODE_BUDGET, REQUEST, RESPONSE, SchemaConverter

__all__ = ["METHODS", "compile_spec"]

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCATIONS: tuple[ParameterLocation, ...] = ("path", "query", "header", "cookie")
MAX_DESCRIPTION = 1024
MAX_TITLE = 120
MAX_LISTED_COLLAPSES = 5
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"  # the `$schema` of every input schema
# Header parameters OpenAPI says to ignore: the request builder and auth own these.
_IGNORED_HEADERS = frozenset({"accept", "content-type", "authorization"})
# Headers that say who the client is to the upstream (its IP allow-lists, audit logs, rate limits):
# an argument must never set them, whatever the spec declares.
_FORWARDING_HEADERS = frozenset({
    "forwarded", "x-real-ip", "true-client-ip", "x-client-ip", "x-cluster-client-ip", "cf-connecting-ip",
    "fastly-client-ip", "x-originating-ip", "x-remote-ip", "x-remote-addr", "client-ip", "via",
})
_FORWARDING_PREFIXES = ("x-forwarded-", "x-original-forwarded-")
_PATH_PLACEHOLDER = re.compile(r"{([^{}]+)}")
_CACHE_SIZE = 16
_TOO_DEEP = "the document nests too deeply to compile (thousands of levels)"

# A parameter's property schema, its shape (for serialisation) and its `content` media type, if any.
_ParameterSchema = tuple[Any, ParameterKind, str | None]


@dataclasses.dataclass(frozen=True, slots=True)
class _RequestBody:
    """The media type picked from a requestBody, and what the body says about itself."""

    content_type: str
    media: dict[str, Any]
    required: bool
    description: str

    @property
    def base(self) -> str:
        return self.content_type.split(";")[0].strip().lower()

    @property
    def is_form(self) -> bool:
        return self.base == "application/x-www-form-urlencoded" or self.base.startswith("multipart/")


_cache: OrderedDict[tuple[str, bool, int], CompiledSpec] = OrderedDict()
_cache_lock = threading.Lock()


def compile_spec(
    document: dict[str, Any], *, output_schema: bool = False, max_schema_bytes: int = DEFAULT_MAX_SCHEMA_BYTES
) -> CompiledSpec:
    """One `ToolDefinition` per operation of an OpenAPI 3.x (or Swagger 2.0) document; every tool's
    input (and output) schema within `max_schema_bytes` of compact JSON."""
    try:
        digest = getattr(document, "digest", "") or _digest(document)
    except RecursionError:
        raise SpecError(_TOO_DEEP) from None
    max_schema_bytes = max(max_schema_bytes, MIN_SCHEMA_BYTES)
    key = (digest, output_schema, max_schema_bytes)
    with _cache_lock:
        cached = _cache.get(key)
        if cached is not None:
            _cache.move_to_end(key)
            return cached
    try:
        with gc_paused():
            compiled = _Compiler(document, output_schema=output_schema, max_schema_bytes=max_schema_bytes).run()
    except RecursionError:
        raise SpecError(_TOO_DEEP) from None
    with _cache_lock:
        _cache[key] = compiled
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return compiled


def _digest(document: dict[str, Any]) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class _UnnamedTool:
    """One operation on its way to a tool; the name is assigned once all operations are known."""

    __slots__ = ("label", "method", "operation_id", "path", "tool", "warnings")

    def __init__(self, method: str, path: str, operation_id: str | None) -> None:
        self.method = method
        self.path = path
        self.operation_id = operation_id
        self.warnings: list[str] = []
        self.tool: ToolDefinition | None = None
        where = f"{method} {path}"
        self.label = f"{operation_id} ({where})" if operation_id else where

    def warn(self, message: str) -> None:
        text = f"{self.label}: {message}"
        if text not in self.warnings:
            self.warnings.append(text)


class _Arguments:
    """The input schema's properties as parameters, then the body, claim them (names stay unique)."""

    __slots__ = ("properties", "required", "taken")

    def __init__(self) -> None:
        self.properties: dict[str, Any] = {}
        self.required: list[str] = []
        self.taken: set[str] = set()

    def claim(self, argument: str, location: str) -> str:
        """`argument`, or `LOCATION_argument` (then numbered) when another parameter has it already."""
        name = argument
        if name in self.taken:
            name = f"{location}_{argument}"[:64]
            counter = 2
            while name in self.taken:
                name = f"{location}_{argument}"[:60] + f"_{counter}"
                counter += 1
        self.taken.add(name)
        return name

    def add(self, argument: str, schema: Any, *, required: bool) -> None:
        self.taken.add(argument)
        self.properties[argument] = schema
        if required:
            self.required.append(argument)


# Declared parameters by (name, location): the parameter object and the `$ref` it came from.
_Declared = dict[tuple[str, ParameterLocation], tuple[dict[str, Any], str | None]]


class _Compiler:
    def __init__(self, document: dict[str, Any], *, output_schema: bool, max_schema_bytes: int) -> None:
        if not isinstance(document, dict):
            raise SpecError("not an OpenAPI document (the top level is not a mapping)")
        if "openapi" not in document and str(document.get("swagger")) == "2.0":
            from castproxy.openapi.swagger import convert_swagger2

            document = convert_swagger2(document)
        version = str(document.get("openapi", ""))
        if not version.startswith("3."):
            found = document.get("openapi") or document.get("swagger")
            raise SpecError(f"OpenAPI version {found!r} is not supported (3.0, 3.1 and Swagger 2.0 are)"
                            if found else "not an OpenAPI document (no 'openapi' or 'swagger' version field)")
        self.document = document
        self.output_schema = output_schema
        self.resolver = RefResolver(document)
        self.schemas = SchemaConverter(self.resolver)
        self.max_schema_bytes = max_schema_bytes
        self.fit_input = SchemaFitter(self.schemas, REQUEST, max_schema_bytes)
        self.fit_output = SchemaFitter(self.schemas, RESPONSE, max_schema_bytes)
        self._params: dict[str, tuple[_ParameterSchema, tuple[str, ...]]] = {}
        self._specs: dict[tuple[Any, ...], ParameterSpec] = {}  # Graph repeats `{user-id}` in thousands

    def run(self) -> CompiledSpec:
        paths = self.document.get("paths") or {}
        if not isinstance(paths, dict):
            raise SpecError("'paths' must be a mapping")
        global_warnings: list[str] = []
        drafts: list[_UnnamedTool] = []
        for path, raw_item in paths.items():
            item, _ = self.resolver.follow(raw_item, f"path {path}")
            if not isinstance(item, dict):
                global_warnings.append(f"path {path}: not a path item object; left out")
                continue
            common = item.get("parameters") or []
            for method in METHODS:
                op = item.get(method)
                if op is None:
                    continue
                draft = _UnnamedTool(method.upper(), path, _operation_id(op))
                if not isinstance(op, dict):
                    global_warnings.append(f"{draft.label}: not an operation object; left out")
                    continue
                self._operation(draft, op, common, item)
                drafts.append(draft)
        names = assign_names([(operation_name(d.operation_id, d.method, d.path), d.operation_id, d.method, d.path)
                              for d in drafts])
        tools: list[ToolDefinition] = []
        warnings = list(global_warnings)
        for draft, name in zip(drafts, names, strict=True):
            assert draft.tool is not None
            tools.append(dataclasses.replace(draft.tool, name=name, warnings=tuple(draft.warnings)))
            warnings.extend(draft.warnings)
        return CompiledSpec(
            title=_title(self.document), servers=_servers(self.document), tools=tuple(tools), warnings=tuple(warnings)
        )

    # -- one operation ------------------------------------------------------------------------

    def _operation(self, draft: _UnnamedTool, op: dict[str, Any], common: Any, item: dict[str, Any]) -> None:
        self.schemas.where = draft.label
        self.schemas.budget = NODE_BUDGET
        warnings: list[str] = []
        arguments = _Arguments()
        parameters = self._parameters(draft, op, common, arguments, warnings)
        body = self._body(draft, op, arguments, warnings)
        if op.get("servers") or item.get("servers"):
            draft.warn("declares its own servers; calls go to the workspace's base URL")
        if op.get("callbacks"):
            draft.warn("callbacks are not represented (a tool call is one request)")

        # The dialect named explicitly (SEP-1613): 2020-12 is MCP's default, but clients that look for `$schema`
        # (the conformance suite among them) then know it without guessing.
        input_schema: dict[str, Any] = {
            "$schema": JSON_SCHEMA_DIALECT, "type": "object", "properties": arguments.properties}
        if arguments.required:
            input_schema["required"] = arguments.required
        input_schema["additionalProperties"] = False
        for message in warnings:
            draft.warn(message)
        input_schema = self._fit(draft, self.fit_input, input_schema, "input schema")
        output = self._output_schema(draft, op) if self.output_schema else None

        summary = _text(op.get("summary"))
        title = summary if summary and len(summary) <= MAX_TITLE else None
        description = _description(summary, _text(op.get("description")), op.get("deprecated") is True,
                                   draft.method, draft.path)
        operation = Operation(method=draft.method, path=draft.path, parameters=parameters, body=body)
        draft.tool = ToolDefinition(
            name="", operation_id=draft.operation_id, description=description, input_schema=input_schema,
            operation=operation, title=title, annotations=_annotations(draft.method, title), output_schema=output,
            tags=_tags(op.get("tags")), security_scopes=_security_scopes(self.document, op))

    def _fit(self, draft: _UnnamedTool, fitter: SchemaFitter, root: dict[str, Any], what: str) -> dict[str, Any]:
        schema, collapsed, warnings = fitter.fit(root)
        for message in warnings:
            draft.warn(message)
        if collapsed:
            shown = ", ".join(collapsed[:MAX_LISTED_COLLAPSES])
            if len(collapsed) > MAX_LISTED_COLLAPSES:
                shown += f" and {len(collapsed) - MAX_LISTED_COLLAPSES} more"
            draft.warn(f"{what} is over the {format_bytes(self.max_schema_bytes)} budget (max_schema_bytes); "
                       f"collapsed to permissive schemas: {shown}")
        return schema

    # -- parameters ---------------------------------------------------------------------------

    def _parameters(
        self, draft: _UnnamedTool, op: dict[str, Any], common: Any, arguments: _Arguments, warnings: list[str]
    ) -> tuple[ParameterSpec, ...]:
        declared = self._declared_parameters(draft, op, common)
        placeholders = _PATH_PLACEHOLDER.findall(draft.path)
        for name in placeholders:
            if (name, "path") not in declared:
                draft.warn(f"path parameter {{{name}}} is not declared; taken as a required string")
                declared[(name, "path")] = ({"name": name, "in": "path", "required": True,
                                             "schema": {"type": "string"}}, None)
        specs: list[ParameterSpec] = []
        for location in LOCATIONS:
            for (name, where), (param, ref) in declared.items():
                if where != location:
                    continue
                if location == "path" and name not in placeholders:
                    draft.warn(f"path parameter {name!r} does not appear in the path; left out")
                    continue
                specs.append(self._parameter(name, location, param, ref, arguments, warnings))
        return tuple(specs)

    def _declared_parameters(self, draft: _UnnamedTool, op: dict[str, Any], common: Any) -> _Declared:
        """The path item's and the operation's parameters (the operation's win), minus those left out."""
        declared: _Declared = {}
        for group in (common, op.get("parameters") or []):
            if not isinstance(group, list):
                draft.warn("'parameters' is not a list; left out")
                continue
            for raw in group:
                param, ref = self.resolver.follow(raw, draft.label)
                if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                    draft.warn("a parameter without a name; left out")
                    continue
                location, name = param.get("in"), param["name"]
                if location not in LOCATIONS:
                    draft.warn(f"parameter {name!r} is in {location!r} (not path, query, header or cookie); left out")
                elif location == "header" and name.lower() in _IGNORED_HEADERS:
                    draft.warn(f"header parameter {name!r} is set by castproxy, not by the caller; left out")
                elif location == "header" and _is_forwarding(name):
                    draft.warn(f"header parameter {name!r} would let a caller forge forwarding "
                               "information (client address, host or scheme) sent upstream; left out")
                else:
                    declared[(name, location)] = (param, ref)
        return declared

    def _parameter(
        self, name: str, location: ParameterLocation, param: dict[str, Any], ref: str | None, arguments: _Arguments,
        warnings: list[str],
    ) -> ParameterSpec:
        argument = arguments.claim(argument_name(name), location)
        schema, kind, content_type = self._parameter_schema(param, ref, warnings)
        if argument != name:
            schema = _with_description(schema, f"Sent as the {location} parameter `{name}`.", prepend=True)
        is_required = location == "path" or param.get("required") is True
        arguments.add(argument, schema, required=is_required)
        style = param.get("style")
        if not isinstance(style, str):
            style = "form" if location in ("query", "cookie") else "simple"
        explode = param.get("explode")
        exploded = explode if isinstance(explode, bool) else style == "form"
        reserved = param.get("allowReserved") is True
        fields = (name, location, argument, is_required, style, exploded, reserved, kind, content_type)
        parameter = self._specs.get(fields)
        if parameter is None:
            parameter = self._specs[fields] = ParameterSpec(
                name=name, location=location, argument=argument, required=is_required, style=style,
                explode=exploded, allow_reserved=reserved, kind=kind, content_type=content_type,
            )
        return parameter

    def _parameter_schema(self, param: dict[str, Any], ref: str | None, warnings: list[str]) -> _ParameterSchema:
        """The property schema of one parameter (memoised per `$ref`: GitHub reuses a few hundred)."""
        if ref is not None and ref in self._params:
            result, remembered = self._params[ref]
            warnings.extend(remembered)
            return result
        inner: list[str] = []
        content_type: str | None = None
        raw: Any = param.get("schema")
        if raw is None and isinstance(param.get("content"), dict) and param["content"]:
            content_type, media = next(iter(param["content"].items()))
            raw = media.get("schema", {}) if isinstance(media, dict) else {}
        if raw is None:
            inner.append(f"parameter {param['name']!r} has no schema; taken as a string")
            raw = {"type": "string"}
        schema = self.schemas.convert(raw, REQUEST, inner, origin=f"parameter {param['name']!r}")
        if schema is True:
            schema = {}
        elif schema is False:
            schema = {"not": {}}
        if content_type is not None and "json" in content_type:
            schema = _with_description(schema, f"Sent as {content_type} text.")
        description = _text(param.get("description"))
        if description:
            schema = _with_description(schema, description, replace=True)
        if param.get("deprecated") is True:
            schema = {**schema, "deprecated": True}
        if "example" in param and "examples" not in schema:
            schema = {**schema, "examples": [param["example"]]}
        result = (schema, _kind(self.schemas.definition(schema)), content_type)
        if ref is not None:
            self._params[ref] = (result, tuple(inner))
        warnings.extend(inner)
        return result

    # -- request body: opaque (text or bytes), spread into arguments, or one `body` argument --------

    def _body(
        self, draft: _UnnamedTool, op: dict[str, Any], arguments: _Arguments, warnings: list[str]
    ) -> BodySpec | None:
        raw = op.get("requestBody")
        if raw is None:
            return None
        body, _ = self.resolver.follow(raw, draft.label)
        if not isinstance(body, dict):
            draft.warn("requestBody is not an object; left out")
            return None
        content = body.get("content")
        if not isinstance(content, dict) or not content:
            draft.warn("requestBody has no content; left out")
            return None
        content_type, media = _pick_media(content)
        request = _RequestBody(content_type, media if isinstance(media, dict) else {}, body.get("required") is True,
                               _text(body.get("description")))
        if not request.is_form and not _is_json(request.base):
            return self._opaque_body(request, arguments, warnings)
        raw_schema = request.media.get("schema")
        if raw_schema is None:
            if request.is_form:
                draft.warn("form body has no schema; left out")
                return None
            raw_schema = {}
        schema = self.schemas.convert(raw_schema, REQUEST, warnings, origin="request body")
        shape = self.schemas.definition(schema, REQUEST, warnings)  # its properties may become the arguments
        parts: tuple[BodyPart, ...] = ()
        if request.is_form:
            shape, parts = self._form_fields(draft, shape, request, warnings)
            schema = shape
        spread = _spread_body(request, shape, parts, arguments)
        if spread is not None:
            return spread
        argument = arguments.claim("body", "request")
        note = request.description or f"The request body ({content_type})."
        arguments.add(argument, _with_description(schema if isinstance(schema, dict) else {}, note,
                                                  prepend=bool(request.description)), required=request.required)
        return BodySpec(content_type=content_type, required=request.required, argument=argument, parts=parts)

    def _opaque_body(self, request: _RequestBody, arguments: _Arguments, warnings: list[str]) -> BodySpec:
        """A body that is neither JSON nor a form: text, or bytes sent as base64 text."""
        content_type, base = request.content_type, request.base
        binary = not base.startswith("text/")
        if binary:
            schema: Any = {"type": "string", "contentEncoding": "base64",
                           "description": f"Request body ({content_type}), base64-encoded."}
            if base != "application/octet-stream" and base not in ("*/*", "application/*"):
                schema["contentMediaType"] = base
        else:
            raw_schema = request.media.get("schema")
            schema = self.schemas.convert(raw_schema, REQUEST, warnings, origin="request body") \
                if raw_schema is not None else {}
            if not isinstance(schema, dict) or not schema:
                schema = {"type": "string"}
            schema = _with_description(schema, f"Request body ({content_type}).")
        if request.description:
            schema = _with_description(schema, request.description, prepend=True)
        argument = arguments.claim("body", "request")
        arguments.add(argument, schema, required=request.required)
        return BodySpec(content_type=content_type, required=request.required, argument=argument, binary=binary)

    def _form_fields(
        self, draft: _UnnamedTool, shape: Any, request: _RequestBody, warnings: list[str]
    ) -> tuple[Any, tuple[BodyPart, ...]]:
        """Form and multipart fields: file fields become base64 text, as their schema says."""
        fields = _flat_properties(shape)
        if fields is None:
            draft.warn(f"{request.base} body is not an object with properties; sent as one value")
            return shape, ()
        encoding = _mapping(request.media.get("encoding"))
        multipart = request.base.startswith("multipart/")
        parts: list[BodyPart] = []
        replaced: dict[str, Any] = {}
        for name, prop in fields.items():
            field_encoding = _mapping(encoding.get(name))
            part_type = field_encoding.get("contentType")
            part_type = part_type if isinstance(part_type, str) else None
            binary = multipart and _is_file(self.schemas.definition(prop), part_type)
            if binary:
                file_schema = _with_description(
                    {"type": "string", "contentEncoding": "base64"},
                    "File contents, base64-encoded." + (f" {prop['description']}" if isinstance(prop, dict)
                                                         and isinstance(prop.get("description"), str) else ""),
                )
                item = self.schemas.definition(prop, REQUEST, warnings)
                if isinstance(item, dict) and item.get("type") == "array":
                    file_schema = {"type": "array", "items": file_schema, "description": file_schema["description"]}
                replaced[name] = file_schema
            style = field_encoding.get("style")
            explode = field_encoding.get("explode")
            parts.append(BodyPart(
                name=name, binary=binary, content_type=part_type, style=style if isinstance(style, str) else None,
                explode=explode if isinstance(explode, bool) else None,
            ))
        if replaced:
            shape = {**shape, "properties": {**shape["properties"], **replaced}}
        return shape, tuple(parts)

    def _output_schema(self, draft: _UnnamedTool, op: dict[str, Any]) -> dict[str, Any] | None:
        responses = op.get("responses")
        if not isinstance(responses, dict):
            return None
        for status in sorted(str(code) for code in responses):
            if not (status.startswith("2") and len(status) == 3):
                continue
            response, _ = self.resolver.follow(responses.get(status, responses.get(int(status) if status.isdigit()
                                                                                   else status)), draft.label)
            content = response.get("content") if isinstance(response, dict) else None
            if not isinstance(content, dict):
                continue
            for media_type, media in content.items():
                if not _is_json(media_type.split(";")[0].strip().lower()) or not isinstance(media, dict):
                    continue
                if "schema" not in media:
                    return None
                warnings: list[str] = []
                schema = self.schemas.convert(media["schema"], RESPONSE, warnings, origin=f"{status} response")
                root = _object_root(schema, functools.partial(self.schemas.definition, context=RESPONSE,
                                                              warnings=warnings))
                for message in warnings:
                    draft.warn(message)
                if root is None:
                    draft.warn(f"cannot tell whether the {status} response is an object; no output schema")
                    return None
                return self._fit(draft, self.fit_output, root, "output schema")
            return None
        return None


# -- helpers -----------------------------------------------------------------------------------


def _operation_id(op: Any) -> str | None:
    value = op.get("operationId") if isinstance(op, dict) else None
    return value.strip() or None if isinstance(value, str) else None


def _is_forwarding(header: str) -> bool:
    lower = header.strip().lower()
    return lower in _FORWARDING_HEADERS or lower.startswith(_FORWARDING_PREFIXES)


def _spread_body(
    request: _RequestBody, shape: Any, parts: tuple[BodyPart, ...], arguments: _Arguments
) -> BodySpec | None:
    """An object body whose properties become top-level arguments, when their names are free; else None."""
    flat = _flat_properties(shape)
    if flat is None:
        return None
    names = {argument_name(prop): prop for prop in flat}
    if len(names) != len(flat) or set(names) & arguments.taken:
        return None
    required_props = [p for p in shape.get("required", ()) if p in flat] if request.required else []
    for argument, prop in names.items():
        schema = flat[prop] if argument == prop else _with_description(
            flat[prop], f"Sent as the body property `{prop}`.", prepend=True)
        arguments.add(argument, schema, required=prop in required_props)
    return BodySpec(content_type=request.content_type, required=request.required,
                    properties=tuple(names.items()), parts=parts)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _with_description(schema: Any, text: str, *, prepend: bool = False, replace: bool = False) -> Any:
    """A copy of `schema` with `text` in its description (schemas may be shared, so never in place)."""
    if not isinstance(schema, dict):
        schema = {} if schema is True else {"not": {}}
    current = schema.get("description")
    if replace or not isinstance(current, str) or not current:
        merged = text
    elif prepend:
        merged = f"{text} {current}"
    else:
        merged = f"{current} {text}"
    return {**schema, "description": merged}


def _tags(value: Any) -> tuple[str, ...]:
    return tuple(tag for tag in value if isinstance(tag, str)) if isinstance(value, list) else ()


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _description(summary: str, description: str, deprecated: bool, method: str, path: str) -> str:
    if description and summary and description.startswith(summary.rstrip(".")):
        summary = ""
    text = "\n\n".join(part for part in (summary, description) if part) or f"{method} {path}"
    if deprecated:
        text = f"Deprecated. {text}"
    return _trim(text, MAX_DESCRIPTION)


def _trim(text: str, limit: int) -> str:
    """Cut at a paragraph, else a sentence, else a word boundary before `limit`."""
    if len(text) <= limit:
        return text
    window = text[: limit - 1]
    for boundary in ("\n\n", ". ", "\n", " "):
        cut = window.rfind(boundary)
        if cut >= limit // 2:
            return window[: cut + (1 if boundary == ". " else 0)].rstrip() + " …"
    return window.rstrip() + "…"


def _annotations(method: str, title: str | None) -> dict[str, Any]:
    annotations: dict[str, Any] = {"title": title} if title else {}
    read_only = method in ("GET", "HEAD", "OPTIONS")
    annotations["readOnlyHint"] = read_only
    if not read_only:
        annotations["destructiveHint"] = method == "DELETE"
    annotations["idempotentHint"] = method in ("GET", "HEAD", "OPTIONS", "PUT", "DELETE")
    annotations["openWorldHint"] = True
    return annotations


def _kind(schema: Any) -> ParameterKind:
    if not isinstance(schema, dict):
        return "primitive"
    kind = schema.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    if kind == "array":
        return "array"
    if kind == "object" or (kind is None and "properties" in schema):
        return "object"
    return "primitive"


def _is_json(media_type: str) -> bool:
    return media_type in ("application/json", "*/*", "application/*") or media_type.endswith("+json") or (
        media_type.startswith("application/") and "json" in media_type
    )


def _pick_media(content: dict[str, Any]) -> tuple[str, Any]:
    """JSON first, then form, multipart, text, anything else (in spec order within each)."""
    def rank(media_type: str) -> int:
        base = media_type.split(";")[0].strip().lower()
        if _is_json(base) and base not in ("*/*", "application/*"):
            return 0
        if base == "application/x-www-form-urlencoded":
            return 1
        if base.startswith("multipart/"):
            return 2
        if base in ("*/*", "application/*"):
            return 3
        if base.startswith("text/"):
            return 4
        return 5

    content_type = min(content, key=rank)
    return content_type, content[content_type]


def _flat_properties(schema: Any) -> dict[str, Any] | None:
    """The properties of a plain object schema that can become top-level arguments, else None."""
    if not isinstance(schema, dict) or not isinstance(schema.get("properties"), dict) or not schema["properties"]:
        return None
    if schema.get("type", "object") != "object":
        return None
    for key in ("allOf", "anyOf", "oneOf", "not", "if", "patternProperties", "$ref", "dependentSchemas"):
        if key in schema:
            return None
    if isinstance(schema.get("additionalProperties"), dict):
        return None
    properties: dict[str, Any] = schema["properties"]
    return properties


def _is_file(schema: Any, part_type: str | None) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("type") == "array":
        return _is_file(schema.get("items"), part_type)
    if schema.get("type") != "string":
        return False
    if schema.get("format") == "binary" or (schema.get("contentEncoding") == "base64" and "format" not in schema):
        return True
    if "contentMediaType" in schema and "contentEncoding" not in schema:
        return True
    return part_type is not None and part_type != "" and not (part_type.startswith("text/") or "json" in part_type)


def _object_root(schema: Any, definition: Callable[[Any], Any]) -> dict[str, Any] | None:
    """An output schema with `type: object` at the root, as MCP requires, describing exactly what the
    response mapper produces: objects as they are, arrays and scalars wrapped as `{"result": ...}`."""
    kinds = _value_kinds(schema, definition, 0)
    if kinds == {"object"}:
        return {**schema, "type": "object"}
    if kinds == {"other"}:
        return _wrapped(schema)
    if kinds != {"object", "other"}:
        return None
    shape = definition(schema)
    objects: list[Any] = []
    others: list[Any] = []
    if isinstance(shape.get("type"), list):
        objects.append({**shape, "type": "object"})
        others.append({"type": [kind for kind in shape["type"] if kind != "object"]})
    else:
        for branch in shape.get("anyOf") or shape.get("oneOf") or ():
            branch_kinds = _value_kinds(branch, definition, 1)
            if len(branch_kinds) != 1:
                return None
            (objects if branch_kinds == {"object"} else others).append(branch)
    if not objects or not others:
        return None
    other = others[0] if len(others) == 1 else {"anyOf": others}
    return {"type": "object", "anyOf": [*objects, _wrapped(other)]}


def _wrapped(schema: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {"result": schema}, "required": ["result"]}


def _value_kinds(schema: Any, definition: Callable[[Any], Any], depth: int) -> set[str]:
    """Which JSON kinds a schema admits, as far as its `type`/`anyOf` say (empty: cannot tell)."""
    schema = definition(schema)
    if not isinstance(schema, dict) or depth > 8:
        return set()
    kind = schema.get("type")
    if isinstance(kind, str):
        return {"object" if kind == "object" else "other"}
    if isinstance(kind, list):
        return {"object" if k == "object" else "other" for k in kind}
    if "properties" in schema:
        return {"object"}
    for key in ("anyOf", "oneOf", "allOf"):
        if isinstance(schema.get(key), list):
            found: set[str] = set()
            for sub in schema[key]:
                sub_kinds = _value_kinds(sub, definition, depth + 1)
                if not sub_kinds and key != "allOf":
                    return set()
                found |= sub_kinds
            if key == "allOf" and len(found) > 1:
                return set()
            return found
    return set()


def _title(document: dict[str, Any]) -> str:
    info = document.get("info")
    title = info.get("title") if isinstance(info, dict) else None
    return title if isinstance(title, str) else ""


def _servers(document: dict[str, Any]) -> tuple[str, ...]:
    servers = document.get("servers")
    if not isinstance(servers, list):
        return ()
    urls: list[str] = []
    for server in servers:
        if not isinstance(server, dict) or not isinstance(server.get("url"), str):
            continue
        url = server["url"]
        for name, variable in _mapping(server.get("variables")).items():
            if isinstance(variable, dict) and "default" in variable:
                url = url.replace("{" + name + "}", str(variable["default"]))
        urls.append(url)
    return tuple(urls)


def _security_scopes(document: dict[str, Any], op: dict[str, Any]) -> tuple[tuple[str, ...], ...]:
    """The OAuth scopes of the operation's security requirement (its own, else the document's): one tuple per
    alternative. Schemes other than oauth2/openIdConnect count as needing no scope; () when no alternative
    names a scope (or one alternative is anonymous: `{}`)."""
    requirement = op.get("security", document.get("security"))
    schemes = ((document.get("components") or {}).get("securitySchemes") or {}) if isinstance(
        document.get("components"), dict) else {}
    if not isinstance(requirement, list) or not isinstance(schemes, dict):
        return ()
    alternatives: list[tuple[str, ...]] = []
    for alternative in requirement:
        if not isinstance(alternative, dict):
            return ()
        scopes: list[str] = []
        for scheme, names in alternative.items():
            kind = schemes.get(scheme, {}).get("type") if isinstance(schemes.get(scheme), dict) else None
            if kind in ("oauth2", "openIdConnect") and isinstance(names, list):
                scopes += [name for name in names if isinstance(name, str)]
        alternatives.append(tuple(dict.fromkeys(scopes)))
    return () if not alternatives or any(not alternative for alternative in alternatives) else tuple(alternatives)
