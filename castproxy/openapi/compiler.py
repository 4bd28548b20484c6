"""Compiling an OpenAPI document into MCP tool definitions: one tool per operation.

`compile_spec` is pure and cached by the document's content hash, so a config reload that does not
change the spec costs nothing. What a tool cannot represent is a warning naming the operation.
"""

from __future__ import annotations

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
from castproxy.openapi.model import BodyPart, BodySpec, CompiledSpec, Operation, ParameterSpec, ToolDefinition
from castproxy.openapi.naming import argument_name, assign_names, operation_name
from castproxy.openapi.refs import RefResolver
from castproxy.openapi.schema import NODE_BUDGET, REQUEST, RESPONSE, SchemaConverter, Sink

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
LOCATIONS = ("path", "query", "header", "cookie")
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

_cache: OrderedDict[tuple[str, bool, int], CompiledSpec] = OrderedDict()
_cache_lock = threading.Lock()


def compile_spec(
    document: dict, *, output_schema: bool = False, max_schema_bytes: int = DEFAULT_MAX_SCHEMA_BYTES
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


def _digest(document: dict) -> str:
    text = json.dumps(document, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class _Draft:
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


class _Compiler:
    def __init__(self, document: dict, *, output_schema: bool, max_schema_bytes: int) -> None:
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
        self._params: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {}
        self._specs: dict[tuple[Any, ...], ParameterSpec] = {}  # Graph repeats `{user-id}` in thousands

    def run(self) -> CompiledSpec:
        paths = self.document.get("paths") or {}
        if not isinstance(paths, dict):
            raise SpecError("'paths' must be a mapping")
        global_warnings: list[str] = []
        drafts: list[_Draft] = []
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
                draft = _Draft(method.upper(), path, _operation_id(op))
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
            tool = draft.tool
            tools.append(ToolDefinition(
                name=name, operation_id=tool.operation_id, description=tool.description,
                input_schema=tool.input_schema, operation=tool.operation, title=tool.title,
                annotations=tool.annotations, output_schema=tool.output_schema, warnings=tuple(draft.warnings),
                tags=tool.tags, security_scopes=tool.security_scopes,
            ))
            warnings.extend(draft.warnings)
        return CompiledSpec(
            title=_title(self.document), servers=_servers(self.document), tools=tuple(tools), warnings=tuple(warnings)
        )

    # -- one operation ------------------------------------------------------------------------

    def _operation(self, draft: _Draft, op: dict[str, Any], common: Any, item: dict[str, Any]) -> None:
        self.schemas.where = draft.label
        self.schemas.budget = NODE_BUDGET
        sink = Sink()
        properties: dict[str, Any] = {}
        required: list[str] = []
        taken: set[str] = set()
        parameters = self._parameters(draft, op, common, properties, required, taken, sink)
        body = self._body(draft, op, properties, required, taken, sink)
        if op.get("servers") or item.get("servers"):
            draft.warn("declares its own servers; calls go to the workspace's base URL")
        if op.get("callbacks"):
            draft.warn("callbacks are not represented (a tool call is one request)")

        # The dialect named explicitly (SEP-1613): 2020-12 is MCP's default, but clients that look for `$schema`
        # (the conformance suite among them) then know it without guessing.
        input_schema: dict[str, Any] = {"$schema": JSON_SCHEMA_DIALECT, "type": "object", "properties": properties}
        if required:
            input_schema["required"] = required
        input_schema["additionalProperties"] = False
        for message in sink.warnings:
            draft.warn(message)
        input_schema = self._fit(draft, self.fit_input, input_schema, "input schema")
        output = self._output_schema(draft, op) if self.output_schema else None

        summary = _text(op.get("summary"))
        title = summary if summary and len(summary) <= MAX_TITLE else None
        annotations = _annotations(draft.method, title)
        draft.tool = ToolDefinition(
            name="",
            operation_id=draft.operation_id,
            description=_description(summary, _text(op.get("description")), op.get("deprecated") is True,
                                     draft.method, draft.path),
            input_schema=input_schema,
            operation=Operation(method=draft.method, path=draft.path, parameters=parameters, body=body),
            title=title,
            annotations=annotations,
            output_schema=output,
            tags=_tags(op.get("tags")),
            security_scopes=_security_scopes(self.document, op),
        )

    def _fit(self, draft: _Draft, fitter: SchemaFitter, root: dict[str, Any], what: str) -> dict[str, Any]:
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

    def _parameters(
        self, draft: _Draft, op: dict[str, Any], common: Any, properties: dict[str, Any], required: list[str],
        taken: set[str], sink: Sink,
    ) -> tuple[ParameterSpec, ...]:
        declared: dict[tuple[str, str], tuple[dict[str, Any], str | None]] = {}
        for group in (common, op.get("parameters") or []):
            if not isinstance(group, list):
                draft.warn("'parameters' is not a list; left out")
                continue
            for raw in group:
                param, ref = self.resolver.follow(raw, draft.label)
                if not isinstance(param, dict) or not isinstance(param.get("name"), str):
                    draft.warn("a parameter without a name; left out")
                    continue
                location = param.get("in")
                if location not in LOCATIONS:
                    draft.warn(f"parameter {param['name']!r} is in {location!r} (not path, query, header or cookie); "
                               "left out")
                    continue
                if location == "header" and param["name"].lower() in _IGNORED_HEADERS:
                    draft.warn(f"header parameter {param['name']!r} is set by castproxy, not by the caller; left out")
                    continue
                if location == "header" and _is_forwarding(param["name"]):
                    draft.warn(f"header parameter {param['name']!r} would let a caller forge forwarding "
                               "information (client address, host or scheme) sent upstream; left out")
                    continue
                declared[(param["name"], location)] = (param, ref)

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
                argument = _claim(argument_name(name), location, taken)
                schema, kind, content_type = self._parameter_schema(param, ref, sink)
                if argument != name:
                    schema = _describe(schema, f"Sent as the {location} parameter `{name}`.", prepend=True)
                properties[argument] = schema
                is_required = location == "path" or param.get("required") is True
                if is_required:
                    required.append(argument)
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
                specs.append(parameter)
        return tuple(specs)

    def _parameter_schema(self, param: dict[str, Any], ref: str | None, sink: Sink) -> tuple[Any, str, str | None]:
        """The property schema of one parameter (memoised per `$ref`: GitHub reuses a few hundred)."""
        if ref is not None and ref in self._params:
            schema_kind, warnings = self._params[ref]
            sink.warnings.extend(warnings)
            return schema_kind["schema"], schema_kind["kind"], schema_kind["content_type"]
        inner = Sink()
        content_type: str | None = None
        raw: Any = param.get("schema")
        if raw is None and isinstance(param.get("content"), dict) and param["content"]:
            content_type, media = next(iter(param["content"].items()))
            raw = media.get("schema", {}) if isinstance(media, dict) else {}
        if raw is None:
            inner.warnings.append(f"parameter {param['name']!r} has no schema; taken as a string")
            raw = {"type": "string"}
        schema = self.schemas.convert(raw, REQUEST, inner, origin=f"parameter {param['name']!r}")
        if schema is True:
            schema = {}
        elif schema is False:
            schema = {"not": {}}
        if content_type is not None and "json" in content_type:
            schema = _describe(schema, f"Sent as {content_type} text.")
        description = _text(param.get("description"))
        if description:
            schema = _describe(schema, description, replace=True)
        if param.get("deprecated") is True:
            schema = {**schema, "deprecated": True}
        if "example" in param and "examples" not in schema:
            schema = {**schema, "examples": [param["example"]]}
        kind = _kind(self.schemas.definition(schema))
        result = {"schema": schema, "kind": kind, "content_type": content_type}
        if ref is not None:
            self._params[ref] = (result, tuple(inner.warnings))
        sink.warnings.extend(inner.warnings)
        return schema, kind, content_type

    def _body(
        self, draft: _Draft, op: dict[str, Any], properties: dict[str, Any], required: list[str],
        taken: set[str], sink: Sink,
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
        media = media if isinstance(media, dict) else {}
        body_required = body.get("required") is True
        description = _text(body.get("description"))
        base = content_type.split(";")[0].strip().lower()
        is_form = base == "application/x-www-form-urlencoded" or base.startswith("multipart/")

        if not is_form and not _is_json(base):
            binary = not base.startswith("text/")
            raw_schema = media.get("schema")
            if binary:
                note = f"Request body ({content_type}), base64-encoded."
                schema: Any = {"type": "string", "contentEncoding": "base64", "description": note}
                if base != "application/octet-stream" and base not in ("*/*", "application/*"):
                    schema["contentMediaType"] = base
            else:
                schema = self.schemas.convert(raw_schema, REQUEST, sink, origin="request body") \
                    if raw_schema is not None else {}
                if not isinstance(schema, dict) or not schema:
                    schema = {"type": "string"}
                schema = _describe(schema, f"Request body ({content_type}).")
            if description:
                schema = _describe(schema, description, prepend=True)
            argument = _claim("body", "request", taken)
            properties[argument] = schema
            if body_required:
                required.append(argument)
            return BodySpec(content_type=content_type, required=body_required, argument=argument, binary=binary)

        raw_schema = media.get("schema")
        if raw_schema is None:
            if is_form:
                draft.warn("form body has no schema; left out")
                return None
            raw_schema = {}
        schema = self.schemas.convert(raw_schema, REQUEST, sink, origin="request body")
        shape = self.schemas.definition(schema, REQUEST, sink)  # its properties may become the arguments
        parts: tuple[BodyPart, ...] = ()
        if is_form:
            shape, parts = self._form_fields(draft, shape, media, base, sink)
        flat = _flat_properties(shape)
        if flat is not None:
            arguments = {argument_name(prop): prop for prop in flat}
            if len(arguments) == len(flat) and not (set(arguments) & taken):
                body_required_props = [p for p in shape.get("required", ()) if p in flat] if body_required else []
                mapping: list[tuple[str, str]] = []
                for argument, prop in arguments.items():
                    properties[argument] = flat[prop] if argument == prop else _describe(
                        flat[prop], f"Sent as the body property `{prop}`.", prepend=True)
                    taken.add(argument)
                    mapping.append((argument, prop))
                    if prop in body_required_props:
                        required.append(argument)
                return BodySpec(content_type=content_type, required=body_required,
                                properties=tuple(mapping), parts=parts)
            schema = shape if is_form else schema
        elif is_form and shape is not schema:
            schema = shape
        argument = _claim("body", "request", taken)
        note = description or f"The request body ({content_type})."
        properties[argument] = _describe(schema if isinstance(schema, dict) else {}, note, prepend=bool(description))
        if body_required:
            required.append(argument)
        return BodySpec(content_type=content_type, required=body_required, argument=argument, parts=parts)

    def _form_fields(
        self, draft: _Draft, shape: Any, media: dict[str, Any], base: str, sink: Sink
    ) -> tuple[Any, tuple[BodyPart, ...]]:
        """Form and multipart fields: file fields become base64 text, as their schema says."""
        fields = _flat_properties(shape)
        if fields is None:
            draft.warn(f"{base} body is not an object with properties; sent as one value")
            return shape, ()
        encoding = media.get("encoding") if isinstance(media.get("encoding"), dict) else {}
        multipart = base.startswith("multipart/")
        parts: list[BodyPart] = []
        replaced: dict[str, Any] = {}
        for name, prop in fields.items():
            field_encoding = encoding.get(name) if isinstance(encoding.get(name), dict) else {}
            part_type = field_encoding.get("contentType")
            part_type = part_type if isinstance(part_type, str) else None
            binary = multipart and _is_file(self.schemas.definition(prop), part_type)
            if binary:
                file_schema = _describe(
                    {"type": "string", "contentEncoding": "base64"},
                    "File contents, base64-encoded." + (f" {prop['description']}" if isinstance(prop, dict)
                                                         and isinstance(prop.get("description"), str) else ""),
                )
                item = self.schemas.definition(prop, REQUEST, sink)
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

    def _output_schema(self, draft: _Draft, op: dict[str, Any]) -> dict[str, Any] | None:
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
                sink = Sink()
                schema = self.schemas.convert(media["schema"], RESPONSE, sink, origin=f"{status} response")
                root = _object_root(schema, functools.partial(self.schemas.definition, context=RESPONSE, sink=sink))
                for message in sink.warnings:
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


def _claim(argument: str, location: str, taken: set[str]) -> str:
    """`argument`, or `LOCATION_argument` (then numbered) when another parameter has it already."""
    name = argument
    if name in taken:
        name = f"{location}_{argument}"[:64]
        counter = 2
        while name in taken:
            name = f"{location}_{argument}"[:60] + f"_{counter}"
            counter += 1
    taken.add(name)
    return name


def _describe(schema: Any, text: str, *, prepend: bool = False, replace: bool = False) -> Any:
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


def _kind(schema: Any) -> str:
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
    return schema["properties"]


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
    return bool(part_type) and not (part_type.startswith("text/") or "json" in part_type)


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
        variables = server.get("variables") if isinstance(server.get("variables"), dict) else {}
        for name, variable in variables.items():
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
