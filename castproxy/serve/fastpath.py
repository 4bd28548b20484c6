"""A fast path for stateless `tools/call` in front of the MCP SDK's session manager.

In stateless mode the SDK builds, per request, a transport, a background task, memory streams and a
JSON-RPC dispatcher (initialize-era protocol) or a dispatch context and connection (2026-07-28):
most of a tool call's CPU. This module answers the one hot request itself: a POST carrying a single
`tools/call` that the SDK would hand to our handler. It runs the same checks in the same terms
(Content-Type, Accept, protocol version header, the 2026-07-28 `_meta` envelope and routing headers,
the SDK's own surface validation of the params), calls the `ToolCaller` and writes the response
the SDK would write, byte for byte: result dumped by alias without None fields, sieved by the
protocol version's result model, stamped with `resultType`/`serverInfo` in the 2026-07-28 mode,
encoded with the same JSON encoder each mode's SDK path uses.

Anything else (initialize, ping, notifications, batches, malformed bodies, other methods, session
ids, GET/DELETE, failed checks) is declined: the caller passes it to the SDK unchanged, with the
request body replayed if it was already read, so every error answer still comes from the SDK.
`tests/serve/test_fastpath_equivalence.py` sends the same requests both ways and compares bytes.
Set `CASTPROXY_FAST_PATH=off` to send everything through the SDK.
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Mapping
from typing import Any

import mcp_types
import pydantic_core
from mcp.server import Server
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.inbound import InboundModernRoute, classify_inbound_request
from mcp_types import DEFAULT_NEGOTIATED_VERSION, INTERNAL_ERROR, SERVER_INFO_META_KEY, ErrorData, JSONRPCError
from mcp_types import methods as spec_methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from castproxy.serve.calls import ToolCaller
from castproxy.serve.snapshot import WorkspaceRuntime

ENV_SWITCH = "CASTPROXY_FAST_PATH"
METHOD = "tools/call"
log = logging.getLogger(__name__)

_JSON = b"application/json"
_ROUTING_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)
_HANDSHAKE = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)


def enabled_by_environment(environ: Mapping[str, str] = os.environ) -> bool:
    return environ.get(ENV_SWITCH, "on").strip().lower() not in ("off", "0", "false", "no")


def _accepts_json(accept: str) -> bool:
    """The SDK's Accept rule for a JSON-response endpoint: application/json, application/* or */*."""
    for media_type in accept.split(","):
        if media_type.split(";")[0].strip().lower() in ("application/json", "application/*", "*/*"):
            return True
    return False


def _is_json_content_type(content_type: str) -> bool:
    """Passes both SDK Content-Type checks: the prefix test (both modes) and the exact media type (2025 mode)."""
    if not content_type.lower().startswith("application/json"):
        return False
    return any(part.strip() == "application/json" for part in content_type.split(";")[0].split(","))


def _envelope(decoded: Any) -> tuple[int | str, dict[str, Any]] | None:
    """(id, params) of a single well-formed `tools/call` request object, else None.

    Narrower than the SDK's JSONRPCRequest model on purpose (no extra members, a strict int or
    string id, object params): whatever is not certainly a valid request is left to the SDK.
    """
    if type(decoded) is not dict or not decoded.keys() <= _ENVELOPE_KEYS:
        return None
    request_id = decoded.get("id")
    params = decoded.get("params")
    if decoded.get("jsonrpc") != "2.0" or decoded.get("method") != METHOD or type(params) is not dict:
        return None
    if type(request_id) is not int and type(request_id) is not str:  # bool and float ids: the SDK decides
        return None
    return request_id, params


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out the messages already read, in order, then the connection's own."""
    pending = deque(messages)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay


class FastPath:
    """Answers plain stateless `tools/call` POSTs; `serve` returns what the SDK needs for everything else."""

    def __init__(self, server: Server[Any], caller: ToolCaller, *,
                 max_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE) -> None:
        self.server = server
        self.caller = caller
        self.max_body_size = max_body_size
        self.answered = 0  # requests answered here, not by the SDK (tests check the fast path really ran)
        # The SDK path would run middleware, cache hints or a schema lookup for Mcp-Param-* headers around the
        # handler; a server using any of those is served by the SDK only.
        self.usable = (
            not server.middleware
            and METHOD not in server.cache_hints
            and server.get_request_handler(METHOD) is not None
        )

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, workspace: WorkspaceRuntime, grant_id: str | None
    ) -> Receive | None:
        """None when the request was answered here; otherwise the `receive` the SDK must read the request from."""
        if not self.usable or scope["method"] != "POST":
            return receive
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if name not in headers:
                headers[name] = value
            elif name in _ROUTING_HEADERS:  # a duplicated routing header: the SDK's own rejection
                return receive
        version_header = headers.get(b"mcp-protocol-version")
        version = DEFAULT_NEGOTIATED_VERSION if version_header is None else version_header.decode("latin-1")
        modern = version in _MODERN
        if not (modern or version in _HANDSHAKE) or b"mcp-session-id" in headers:
            return receive
        if not _is_json_content_type(headers.get(b"content-type", b"").decode("latin-1")):
            return receive
        if not _accepts_json(headers.get(b"accept", b"").decode("latin-1")):
            return receive
        try:
            length = int(headers.get(b"content-length", b""))
        except ValueError:  # absent (chunked) or garbage: the SDK's body limit handles it
            return receive
        if not 0 < length <= self.max_body_size:
            return receive

        messages: list[Message] = []  # everything read, replayed to the SDK if the request is not ours
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":  # the client went away while sending
                return _replay(messages, receive)
            size += len(message.get("body", b""))
            if size > self.max_body_size:
                return _replay(messages, receive)
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        read = _replay([{"type": "http.request", "body": body, "more_body": False}], receive)

        call = self._parse(body, modern, version, headers)
        if call is None:
            return read
        request_id, name, arguments = call
        result = await self.caller.call(workspace, name, arguments, grant_id)
        try:
            wire: dict[str, Any] | ErrorData = self._wire_result(version, result)
        except ValidationError:
            log.exception("handler for %r returned an invalid result", METHOD)
            wire = ErrorData(code=INTERNAL_ERROR, message="Handler returned an invalid result")
        self.answered += 1
        await self._write(send, modern, request_id, wire)
        return None

    def _parse(
        self, body: bytes, modern: bool, version: str, headers: dict[bytes, bytes]
    ) -> tuple[int | str, str, dict[str, Any]] | None:
        """(id, tool name, arguments) of a request the SDK would hand to the tools/call handler, else None."""
        try:
            # Each mode's SDK path decodes with its own parser; they differ on edge input (encodings, NaN).
            decoded = json.loads(body) if modern else pydantic_core.from_json(body)
        except (ValueError, RecursionError):
            return None
        envelope = _envelope(decoded)
        if envelope is None:
            return None
        request_id, params = envelope
        if modern:
            routing = {name.decode(): headers[name].decode("latin-1") for name in _ROUTING_HEADERS if name in headers}
            verdict = classify_inbound_request(decoded, headers=routing)
            if not isinstance(verdict, InboundModernRoute):
                return None
            version = verdict.protocol_version
            if not self._no_param_headers_to_check(params, headers):
                return None
        try:
            spec_methods.validate_client_request(METHOD, version, params)
            typed = mcp_types.CallToolRequestParams.model_validate(params, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None
        return request_id, typed.name, typed.arguments or {}

    def _no_param_headers_to_check(self, params: dict[str, Any], headers: dict[bytes, bytes]) -> bool:
        """True when the SDK's `Mcp-Param-*` header validation (2026-07-28) has nothing to reject."""
        arguments = params.get("arguments")
        if not arguments and not any(name.startswith(b"mcp-param-") for name in headers):
            return True
        lookup = self.server.get_tool_input_schema
        name = params.get("name")
        if lookup is None or not isinstance(name, str):
            return False
        try:
            return lookup(name) is None  # no schema: no declared header, nothing to validate
        except Exception:
            return False

    def _wire_result(self, version: str, result: mcp_types.CallToolResult) -> dict[str, Any]:
        """The result as the SDK's ServerRunner shapes it for this protocol version."""
        dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        dumped = spec_methods.serialize_server_result(METHOD, version, dumped)
        if version in _MODERN:
            if dumped.get("resultType") is None:
                dumped["resultType"] = "complete"
            meta = dumped.get("_meta")
            if meta is None:
                dumped["_meta"] = {SERVER_INFO_META_KEY: self.server.server_info_stamp}
            elif isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None:
                dumped["_meta"] = {**meta, SERVER_INFO_META_KEY: self.server.server_info_stamp}
        return dumped

    @staticmethod
    async def _write(send: Send, modern: bool, request_id: int | str, wire: dict[str, Any] | ErrorData) -> None:
        if isinstance(wire, ErrorData):
            error = JSONRPCError(jsonrpc="2.0", id=request_id, error=wire)
            if modern:
                body = json.dumps(error.model_dump(mode="json", by_alias=True, exclude_none=True),
                                  separators=(",", ":")).encode()
            else:
                body = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
        elif modern:  # the 2026-07-28 entry: stdlib json, ASCII escapes
            body = json.dumps({"jsonrpc": "2.0", "id": request_id, "result": wire}, separators=(",", ":")).encode()
        else:  # the initialize-era transport: pydantic's JSON encoder, UTF-8
            body = pydantic_core.to_json({"jsonrpc": "2.0", "id": request_id, "result": wire})
        length = str(len(body)).encode()
        # Same header order as the Starlette responses each SDK path builds.
        headers = [(b"content-length", length), (b"content-type", _JSON)] if modern else \
            [(b"content-type", _JSON), (b"content-length", length)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})
