"""Swagger 2.0 to OpenAPI 3.0, enough for compiling tools: servers, parameters, bodies, responses
(`definitions` is copied to the root, so `#/definitions/...` refs still resolve).
"""

from __future__ import annotations

from typing import Any

from castproxy.openapi.refs import RefResolver

__all__ = ["convert_swagger2"]

_METHODS = ("get", "put", "post", "delete", "options", "head", "patch")
_SCHEMA_KEYS = (
    "type", "format", "items", "enum", "default", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems", "multipleOf",
)
# collectionFormat -> (style, explode) for query parameters; path and header ones are always "simple".
_COLLECTION = {"csv": ("form", False), "ssv": ("spaceDelimited", False), "pipes": ("pipeDelimited", False),
               "multi": ("form", True), "tsv": ("form", False)}


def convert_swagger2(document: dict[str, Any]) -> dict[str, Any]:
    resolver = RefResolver(document)
    consumes = document.get("consumes") or ["application/json"]
    produces = document.get("produces") or ["application/json"]
    paths: dict[str, Any] = {}
    for path, item in (document.get("paths") or {}).items():
        item, _ = resolver.follow(item, f"path {path}")
        if not isinstance(item, dict):
            continue
        converted: dict[str, Any] = {}
        common = [resolver.follow(p, f"path {path}")[0] for p in item.get("parameters") or []]
        for method in _METHODS:
            op = item.get(method)
            if isinstance(op, dict):
                converted[method] = _operation(op, common, resolver, consumes, produces, f"{method.upper()} {path}")
        paths[path] = converted
    out: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": document.get("info") or {},
        "servers": _servers(document),
        "paths": paths,
    }
    if isinstance(document.get("definitions"), dict):
        out["definitions"] = document["definitions"]
    return out


def _servers(document: dict[str, Any]) -> list[dict[str, str]]:
    host = document.get("host")
    base_path = document.get("basePath") or ""
    if not isinstance(host, str) or not host:
        return [{"url": base_path}] if base_path else []
    schemes = document.get("schemes") or ["https"]
    return [{"url": f"{scheme}://{host}{base_path}"} for scheme in schemes if scheme in ("http", "https")]


def _operation(
    op: dict[str, Any], common: list[Any], resolver: RefResolver, consumes: list[str], produces: list[str], where: str
) -> dict[str, Any]:
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for param in [*common, *(resolver.follow(p, where)[0] for p in op.get("parameters") or [])]:
        if isinstance(param, dict) and isinstance(param.get("name"), str):
            params[(param["name"], str(param.get("in")))] = param
    op_consumes = op.get("consumes") or consumes
    out: dict[str, Any] = {key: op[key] for key in ("operationId", "summary", "description", "deprecated", "tags")
                           if key in op}
    parameters: list[dict[str, Any]] = []
    form: list[dict[str, Any]] = []
    for (_, location), param in params.items():
        if location == "body":
            out["requestBody"] = {
                "required": param.get("required") is True,
                "content": {media: {"schema": param.get("schema", {})} for media in op_consumes},
                **({"description": param["description"]} if "description" in param else {}),
            }
        elif location == "formData":
            form.append(param)
        else:
            parameters.append(_parameter(param, location))
    if parameters:
        out["parameters"] = parameters
    if form:
        out["requestBody"] = _form_body(form, op_consumes)
    out["responses"] = _responses(op.get("responses") or {}, resolver, op.get("produces") or produces, where)
    return out


def _schema_of(param: dict[str, Any]) -> dict[str, Any]:
    schema = {key: param[key] for key in _SCHEMA_KEYS if key in param}
    if schema.get("type") == "file":
        schema = {"type": "string", "format": "binary"}
    if isinstance(schema.get("items"), dict):
        schema["items"] = _schema_of(schema["items"])
    if param.get("x-nullable") is True:
        schema["nullable"] = True
    return schema


def _parameter(param: dict[str, Any], location: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": param["name"], "in": location, "schema": _schema_of(param)}
    for key in ("required", "description", "deprecated"):
        if key in param:
            out[key] = param[key]
    if param.get("type") == "array":
        style, explode = _COLLECTION.get(param.get("collectionFormat", "csv"), ("form", False))
        if location in ("query", "cookie"):
            out["style"], out["explode"] = style, explode
        else:
            out["style"], out["explode"] = "simple", False
    return out


def _form_body(form: list[dict[str, Any]], consumes: list[str]) -> dict[str, Any]:
    has_file = any(param.get("type") == "file" for param in form)
    media = "multipart/form-data" if has_file or "multipart/form-data" in consumes else (
        "application/x-www-form-urlencoded")
    properties = {}
    for param in form:
        field = _schema_of(param)
        if "description" in param:
            field["description"] = param["description"]
        properties[param["name"]] = field
    required = [param["name"] for param in form if param.get("required") is True]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    return {"required": bool(required), "content": {media: {"schema": schema}}}


def _responses(responses: dict[str, Any], resolver: RefResolver, produces: list[str], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for status, response in responses.items():
        response, _ = resolver.follow(response, where)
        if not isinstance(response, dict):
            continue
        converted: dict[str, Any] = {"description": response.get("description", "")}
        if "schema" in response:
            converted["content"] = {media: {"schema": response["schema"]} for media in produces}
        out[str(status)] = converted
    return out
