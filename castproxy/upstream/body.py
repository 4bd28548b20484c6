"""Request bodies by content type: JSON, urlencoded form, multipart/form-data, text and raw bytes.

Binary values (octet-stream bodies, binary multipart parts) arrive as base64 text in the tool
arguments and are decoded here; undecodable base64 is an `ArgumentError` naming the argument.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
from typing import Any
from urllib.parse import quote_plus

from castproxy.openapi.model import BodyPart, BodySpec
from castproxy.upstream.model import ArgumentError
from castproxy.upstream.params import scalar_text

__all__ = ["encode_body"]

_WHITESPACE = re.compile(r"\s+")


def is_json_type(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _json_bytes(value: Any, argument: str) -> bytes:
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError):
        raise ArgumentError([f"argument '{argument}' cannot be sent as JSON"]) from None


def decode_base64(value: Any, argument: str) -> bytes:
    """Standard or URL-safe base64, with or without padding or line breaks."""
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    if not isinstance(value, str):
        raise ArgumentError([f"argument '{argument}' must be base64-encoded text"])
    text = _WHITESPACE.sub("", value)
    text += "=" * (-len(text) % 4)
    try:
        if "-" in text or "_" in text:
            return base64.b64decode(text, altchars=b"-_", validate=True)
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ArgumentError([f"argument '{argument}' is not valid base64"]) from None


def body_value(spec: BodySpec, arguments: dict[str, Any]) -> tuple[bool, Any]:
    """(present, value) of the body from the arguments: one whole-body argument, or assembled properties."""
    if spec.argument is not None:
        if spec.argument in arguments:
            return True, arguments[spec.argument]
        return False, None
    if spec.properties:
        # Only the mapped arguments enter the body: any other argument stays out of it.
        value = {prop: arguments[arg] for arg, prop in spec.properties if arg in arguments}
        return bool(value) or spec.required, value
    return spec.required, {}


def encode_body(spec: BodySpec, arguments: dict[str, Any]) -> tuple[bytes, str] | None:
    """(bytes, Content-Type) for the request, or None when the call sends no body."""
    present, value = body_value(spec, arguments)
    if not present:
        if spec.required:
            raise ArgumentError([f"missing required argument '{spec.argument or 'body'}'"])
        return None
    label = spec.argument or "body"
    names = {prop: arg for arg, prop in spec.properties}  # body property -> argument, for messages
    content_type = spec.content_type
    media = content_type.split(";", 1)[0].strip().lower()

    if spec.binary:
        return decode_base64(value, label), content_type
    if is_json_type(media):
        return _json_bytes(value, label), content_type
    if media == "application/x-www-form-urlencoded":
        return _form(value, label), content_type
    if media == "multipart/form-data":
        return _multipart(value, label, names, {part.name: part for part in spec.parts})
    if media.startswith("text/"):
        text = value if isinstance(value, str) else _json_bytes(value, label).decode()
        if "charset=" not in content_type.lower():
            content_type += "; charset=utf-8"
        return text.encode(), content_type
    if media == "application/octet-stream" or media.startswith(("image/", "audio/", "video/")):
        return decode_base64(value, label), content_type
    if isinstance(value, str):  # xml and other textual types given as text
        return value.encode(), content_type
    return _json_bytes(value, label), content_type


def _object(value: Any, label: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ArgumentError([f"argument '{label}' must be an object of form fields"])
    return value


def _form(value: Any, label: str) -> bytes:
    items: list[str] = []
    for key, item in _object(value, label).items():
        if item is None:
            continue
        for one in item if isinstance(item, list) else [item]:
            items.append(f"{quote_plus(str(key))}={quote_plus(scalar_text(one))}")
    return "&".join(items).encode()


def _quoted(name: str) -> str:
    """A multipart name or filename in quotes, escaped the way browsers do (WHATWG)."""
    return '"' + name.replace("\r", "%0D").replace("\n", "%0A").replace('"', "%22") + '"'


def _multipart(value: Any, label: str, names: dict[str, str], parts: dict[str, BodyPart]) -> tuple[bytes, str]:
    sections: list[tuple[str, bytes]] = []  # (headers text, content)
    for key, item in _object(value, label).items():
        if item is None:
            continue
        key = str(key)
        part = parts.get(key, BodyPart(name=key))
        argument = names.get(key) or (f"{label}.{key}" if label != "body" else key)
        for one in item if isinstance(item, list) else [item]:
            part_type: str | None
            if part.binary:
                content = decode_base64(one, argument)
                part_type = part.content_type or "application/octet-stream"
                disposition = f"form-data; name={_quoted(key)}; filename={_quoted(key)}"
            elif isinstance(one, dict | list):
                content = _json_bytes(one, argument)
                part_type = part.content_type or "application/json"
                disposition = f"form-data; name={_quoted(key)}"
            else:
                content = scalar_text(one).encode()
                part_type = part.content_type
                disposition = f"form-data; name={_quoted(key)}"
            headers = f"Content-Disposition: {disposition}\r\n"
            if part_type:
                headers += f"Content-Type: {part_type}\r\n"
            sections.append((headers, content))

    boundary = "castproxy-" + secrets.token_hex(16)
    while any(boundary.encode() in content for _, content in sections):
        boundary = "castproxy-" + secrets.token_hex(16)
    out = bytearray()
    for headers, content in sections:
        out += f"--{boundary}\r\n{headers}\r\n".encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"
