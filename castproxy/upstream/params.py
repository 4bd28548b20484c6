"""OpenAPI parameter serialisation (style/explode) for path, query, header and cookie parameters.

Pure functions from one argument value to wire text. Path and query text is percent-encoded here,
so nothing a value contains can end a segment, start a query, or add a query parameter.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from castproxy.openapi.model import ParameterSpec

__all__ = ["cookie_items", "header_text", "path_text", "pieces", "query_pairs", "scalar_text"]

# With allowReserved a query value keeps RFC 3986 reserved characters, except the ones that
# would end this parameter or the URL ('&', '#') and '%' (a value cannot pre-encode itself).
RESERVED_KEPT = ":/?@!$'()*+,;=[]"
# Cookie values keep RFC 6265 cookie-octets; ';', ',', '"', '\\', space and controls are encoded.
COOKIE_SAFE = "!#$&'()*+-./:<=>?@[]^_`{|}~"


def scalar_text(value: Any) -> str:
    """How one primitive appears on the wire: JSON spelling for booleans and null, JSON for nested data."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return ""
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return json.dumps(value)  # JSON spelling (1e+20), never Python's nan/inf
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def pieces(value: Any) -> list[str]:
    """Every scalar text a value contributes (for safety checks on path values)."""
    if isinstance(value, list):
        return [scalar_text(item) for item in value]
    if isinstance(value, dict):
        return [text for key, item in value.items() for text in (str(key), scalar_text(item))]
    return [scalar_text(value)]


def _enc(text: str) -> str:
    if text.isalnum() and text.isascii():  # ids and plain words need no encoding: skip quote()'s cost
        return text
    return quote(text, safe="")


def _pairs(value: dict[str, Any]) -> list[tuple[str, str]]:
    return [(str(key), scalar_text(item)) for key, item in value.items()]


def path_text(spec: ParameterSpec, value: Any) -> str:
    """The text replacing `{name}` in the path template (simple, label or matrix style), encoded."""
    if spec.content_type is not None:
        value = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    style, explode = spec.style, spec.explode
    if style == "label":
        sep = "." if explode else ","
        if isinstance(value, list):
            return "." + sep.join(_enc(scalar_text(v)) for v in value)
        if isinstance(value, dict):
            inner = (
                [f"{_enc(k)}={_enc(v)}" for k, v in _pairs(value)]
                if explode
                else [_enc(t) for kv in _pairs(value) for t in kv]
            )
            return "." + sep.join(inner)
        return "." + _enc(scalar_text(value))
    if style == "matrix":
        name = _enc(spec.name)
        if isinstance(value, list):
            if explode:
                return "".join(f";{name}={_enc(scalar_text(v))}" for v in value)
            return f";{name}=" + ",".join(_enc(scalar_text(v)) for v in value)
        if isinstance(value, dict):
            if explode:
                return "".join(f";{_enc(k)}={_enc(v)}" for k, v in _pairs(value))
            return f";{name}=" + ",".join(_enc(t) for kv in _pairs(value) for t in kv)
        return f";{name}={_enc(scalar_text(value))}"
    # simple (the default for path)
    if isinstance(value, list):
        return ",".join(_enc(scalar_text(v)) for v in value)
    if isinstance(value, dict):
        if explode:
            return ",".join(f"{_enc(k)}={_enc(v)}" for k, v in _pairs(value))
        return ",".join(_enc(t) for kv in _pairs(value) for t in kv)
    return _enc(scalar_text(value))


def query_pairs(spec: ParameterSpec, value: Any) -> list[str]:
    """`key=value` items (already encoded) for one query parameter, by style and explode."""
    safe = RESERVED_KEPT if spec.allow_reserved else ""

    def enc(text: str) -> str:
        if text.isalnum() and text.isascii():
            return text
        return quote(text, safe=safe)

    name = _enc(spec.name)
    if spec.content_type is not None:
        return [f"{name}={enc(json.dumps(value, ensure_ascii=False, separators=(',', ':')))}"]
    style, explode = spec.style, spec.explode
    if isinstance(value, list):
        if not value:
            return []
        if explode:
            return [f"{name}={enc(scalar_text(v))}" for v in value]
        delimiter = {"spaceDelimited": "%20", "pipeDelimited": "%7C"}.get(style, ",")
        return [f"{name}=" + delimiter.join(enc(scalar_text(v)) for v in value)]
    if isinstance(value, dict):
        if not value:
            return []
        if style == "deepObject":
            return [f"{name}%5B{_enc(k)}%5D={enc(v)}" for k, v in _deep_pairs(value)]
        if explode:
            return [f"{_enc(k)}={enc(v)}" for k, v in _pairs(value)]
        delimiter = {"spaceDelimited": "%20", "pipeDelimited": "%7C"}.get(style, ",")
        return [f"{name}=" + delimiter.join(enc(t) for kv in _pairs(value) for t in kv)]
    return [f"{name}={enc(scalar_text(value))}"]


def _deep_pairs(value: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """deepObject keys: `a` → `name[a]`, nested `a.b` → `name[a][b]` (the inner brackets in the key)."""
    out: list[tuple[str, str]] = []
    for key, item in value.items():
        full = f"{prefix}][{key}" if prefix else str(key)
        if isinstance(item, dict):
            out.extend(_deep_pairs(item, full))
        elif isinstance(item, list):
            out.extend((full, scalar_text(v)) for v in item)
        else:
            out.append((full, scalar_text(item)))
    return out


def header_text(spec: ParameterSpec, value: Any) -> str:
    """Header value in the simple style (not percent-encoded; checked for control characters elsewhere)."""
    if spec.content_type is not None:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, list):
        return ",".join(scalar_text(v) for v in value)
    if isinstance(value, dict):
        if spec.explode:
            return ",".join(f"{k}={v}" for k, v in _pairs(value))
        return ",".join(t for kv in _pairs(value) for t in kv)
    return scalar_text(value)


def cookie_items(spec: ParameterSpec, value: Any) -> list[str]:
    """`name=value` cookie items (form style), values encoded outside RFC 6265 cookie-octets."""

    def enc(text: str) -> str:
        return quote(text, safe=COOKIE_SAFE)

    if spec.content_type is not None:
        return [f"{spec.name}={enc(json.dumps(value, ensure_ascii=False, separators=(',', ':')))}"]
    if isinstance(value, list):
        if spec.explode:
            return [f"{spec.name}={enc(scalar_text(v))}" for v in value]
        return [f"{spec.name}=" + ",".join(enc(scalar_text(v)) for v in value)]
    if isinstance(value, dict):
        if spec.explode:
            return [f"{k}={enc(v)}" for k, v in _pairs(value)]
        return [f"{spec.name}=" + ",".join(enc(t) for kv in _pairs(value) for t in kv)]
    return [f"{spec.name}={enc(scalar_text(value))}"]
