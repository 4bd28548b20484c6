"""Mapping an upstream outcome to an MCP tool result.

- 2xx JSON: `structuredContent` (an object; arrays and scalars wrapped as `{"result": ...}`) and the
  JSON text; other text: text; binary: an embedded resource with a base64 blob.
- A body cut at the cap says so in a note; a cut JSON body is shown as text (it no longer parses).
- 3xx (never followed), 4xx and 5xx: `isError` naming status and reason, with a short body excerpt.
- Timeouts and connection failures: `isError` with the forwarder's safe message. No stack traces.
"""

from __future__ import annotations

import base64
import json
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from mcp_types import BlobResourceContents, CallToolResult, EmbeddedResource, TextContent

from castproxy.upstream.model import UpstreamFailure, UpstreamResponse

__all__ = ["to_tool_result"]

ERROR_EXCERPT_CHARS = 500

_TEXT_TYPES = frozenset(
    {
        "application/xml",
        "application/javascript",
        "application/x-www-form-urlencoded",
        "application/x-yaml",
        "application/yaml",
        "application/x-ndjson",
        "application/graphql",
        "application/sql",
    }
)


def _is_json(media: str) -> bool:
    return media == "application/json" or media.endswith("+json") or media == "text/json"


def _is_text(media: str) -> bool:
    return media.startswith("text/") or media in _TEXT_TYPES or media.endswith("+xml")


def _charset(content_type: str) -> str:
    for param in content_type.split(";")[1:]:
        key, _, value = param.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip('"')
    return "utf-8"


def _decode(body: bytes, content_type: str) -> str:
    try:
        return body.decode(_charset(content_type), errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


def _reason(response: UpstreamResponse) -> str:
    if response.reason:
        return response.reason
    try:
        return HTTPStatus(response.status).phrase
    except ValueError:
        return ""


def _cut_note(response: UpstreamResponse, max_bytes: int) -> str:
    return (
        f"[response cut: the upstream sent more than {max_bytes} bytes (max_response_bytes); "
        f"only the first {len(response.body)} bytes are shown]"
    )


def _error(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], is_error=True)


def to_tool_result(outcome: UpstreamResponse | UpstreamFailure, *, max_bytes: int) -> CallToolResult:
    if isinstance(outcome, UpstreamFailure):
        return _error(f"Upstream request failed: {outcome.message}.")
    response = outcome
    status = response.status
    content_type = response.headers.get("content-type", "")
    media = response.content_type

    if not 200 <= status < 300:
        head = f"Upstream answered {status} {_reason(response)}".rstrip()
        if 300 <= status < 400:
            location = response.headers.get("location", "")
            head += " (redirects are not followed" + (f"; Location: {location[:200]}" if location else "") + ")"
        detail = _decode(response.body[: ERROR_EXCERPT_CHARS * 4], content_type).strip()
        if detail:
            cut = len(detail) > ERROR_EXCERPT_CHARS or response.truncated
            head += ": " + detail[:ERROR_EXCERPT_CHARS] + ("…" if cut else "")
        return _error(head)

    body = response.body
    if not body:
        return CallToolResult(
            content=[TextContent(text=f"Upstream answered {status} {_reason(response)} with no body.")]
        )

    if _is_json(media) and not response.truncated:
        text = _decode(body, content_type)
        try:
            data: Any = json.loads(text)
        except ValueError:
            data = _NOT_JSON
        if data is not _NOT_JSON:
            structured = data if isinstance(data, dict) else {"result": data}
            return CallToolResult(content=[TextContent(text=text)], structured_content=structured)
        return CallToolResult(content=[TextContent(text=text)])

    if _is_json(media) or _is_text(media) or (not media and _looks_like_text(body)):
        text = _decode(body, content_type)
        content: list[Any] = [TextContent(text=text)]
        if response.truncated:
            content.append(TextContent(text=_cut_note(response, max_bytes)))
        return CallToolResult(content=content)

    blob = base64.b64encode(body[:max_bytes]).decode("ascii")
    uri = _resource_uri(response.url)
    resource = BlobResourceContents(uri=uri, mime_type=media or "application/octet-stream", blob=blob)
    content = [EmbeddedResource(resource=resource)]
    if response.truncated:
        content.append(TextContent(text=_cut_note(response, max_bytes)))
    return CallToolResult(content=content)


_NOT_JSON = object()


def _resource_uri(url: str) -> str:
    """The upstream URL naming a binary result, without anything that may hold a credential
    (user:password@, the query string) or the fragment."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def _looks_like_text(body: bytes) -> bool:
    sample = body[:1024]
    if b"\x00" in sample:
        return False
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(sample) - 3  # a multi-byte character cut at the sample's end
    return True
