"""A fast path for stateless `tools/call` and `tools/list` in front of the MCP SDK's session manager.

It answers those requests with the bytes the SDK would write, and declines everything else (the caller
passes it to the SDK unchanged). `CASTPROXY_FAST_PATH=off` sends everything through the SDK.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Mapping
from typing import Any

import pydantic_core
from mcp.server import Server
from mcp.server.transport_security import DEFAULT_MAX_REQUEST_BODY_SIZE
from mcp.shared.exceptions import MCPError
from mcp.shared.inbound import ERROR_CODE_HTTP_STATUS, InboundModernRoute, classify_inbound_request
from mcp_types import DEFAULT_NEGOTIATED_VERSION, INTERNAL_ERROR, SERVER_INFO_META_KEY, ErrorData, JSONRPCError
from mcp_types import methods as spec_methods
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send

from castproxy.access.policy import NOBODY, Caller
from castproxy.serve.calls import ToolCaller
from castproxy.serve.inbound import listing_for
from castproxy.serve.snapshot import WorkspaceRuntime

__all__ = ["ENV_SWITCH", "FastPath", "enabled_by_environment", "replay"]

ENV_SWITCH = "CASTPROXY_FAST_PATH"
CALL = "tools/call"
LIST = "tools/list"
METHODS = frozenset({CALL, LIST})
log = logging.getLogger(__name__)

_JSON = b"application/json"
_ROUTING_HEADERS = (b"mcp-protocol-version", b"mcp-method", b"mcp-name")
_ENVELOPE_KEYS = frozenset({"jsonrpc", "id", "method", "params"})
_MODERN = frozenset(MODERN_PROTOCOL_VERSIONS)
_HANDSHAKE = frozenset(HANDSHAKE_PROTOCOL_VERSIONS)
_LISTING_CACHE_SIZE = 64  # (listing, version) pairs; a reload makes new listings, so old ones age out


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


def _envelope(decoded: Any) -> tuple[int | str, str, dict[str, Any] | None] | None:
    """(id, method, params) of a single well-formed request object for one of METHODS, else None.

    Narrower than the SDK's JSONRPCRequest model on purpose (no extra members, a strict int or
    string id): whatever is not certainly a valid request is left to the SDK.
    """
    if type(decoded) is not dict or not decoded.keys() <= _ENVELOPE_KEYS:
        return None
    request_id = decoded.get("id")
    method = decoded.get("method")
    params = decoded.get("params")
    if decoded.get("jsonrpc") != "2.0" or method not in METHODS or not (params is None or type(params) is dict):
        return None
    if type(request_id) is not int and type(request_id) is not str:  # bool and float ids: the SDK decides
        return None
    return request_id, method, params


def _encode(modern: bool, value: Any) -> bytes:
    """JSON as each SDK path writes it: the 2026-07-28 entry uses stdlib json (ASCII escapes), the
    initialize-era transport pydantic's encoder (UTF-8). Both are compact, so parts splice exactly."""
    if modern:
        return json.dumps(value, separators=(",", ":")).encode()
    return pydantic_core.to_json(value)


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out the messages already read, in order, then the connection's own."""
    pending = deque(messages)

    async def replay() -> Message:
        if pending:
            return pending.popleft()
        return await receive()

    return replay


class FastPath:
    """Answers plain stateless `tools/call` and `tools/list` POSTs; `serve` hands everything else back."""

    def __init__(self, server: Server[Any], caller: ToolCaller, *,
                 max_body_size: int = DEFAULT_MAX_REQUEST_BODY_SIZE) -> None:
        self.server = server
        self.caller = caller
        self.max_body_size = max_body_size
        self.answered = 0  # requests answered here, not by the SDK (tests check the fast path really ran)
        # The SDK deep-copies its serverInfo stamp per response so no caller can alias it; answers here are
        # encoded at once and never kept, so one copy serves them all.
        self._server_info = server.server_info_stamp
        # The encoded tools/list result per (listing, version): the listing is immutable per snapshot.
        self._listings: dict[tuple[int, str], tuple[Mapping[str, Any], bytes]] = {}
        # The SDK path would run middleware or cache hints around the handlers: a server using any of those
        # is served by the SDK only.
        self.usable = not server.middleware and all(
            method not in server.cache_hints and server.get_request_handler(method) is not None for method in METHODS
        )

    async def serve(
        self, scope: Scope, receive: Receive, send: Send, workspace: WorkspaceRuntime, grant_id: str | None,
        caller: Caller = NOBODY,
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
                return replay(messages, receive)
            size += len(message.get("body", b""))
            if size > self.max_body_size:
                return replay(messages, receive)
            if not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages)
        request = self._parse(body, modern, version, headers)
        if request is None:
            return replay([{"type": "http.request", "body": body, "more_body": False}], receive)

        request_id, method, params, version = request
        try:
            if method == CALL:  # ToolCaller turns every failure but an unknown tool into an isError result
                result = await self.caller.call(workspace, params.name, params.arguments or {}, grant_id, who=caller)
                answer: bytes | ErrorData = _encode(modern, self._wire_result(CALL, version, result))
            else:  # one listing per snapshot and policy group (castproxy/access), each encoded once
                answer = self._listing(listing_for(workspace, caller), version, modern)
        except MCPError as exc:  # the unknown tool's -32602, written as the SDK writes a handler's MCPError
            answer = exc.error
        except ValidationError:  # what the SDK says when a handler's result fails its protocol version's model
            log.exception("handler for %r returned an invalid result", method)
            answer = ErrorData(code=INTERNAL_ERROR, message="Handler returned an invalid result")
        self.answered += 1
        await self._write(send, modern, request_id, answer)
        return None

    def _parse(
        self, body: bytes, modern: bool, version: str, headers: dict[bytes, bytes]
    ) -> tuple[int | str, str, Any, str] | None:
        """(id, method, typed params, protocol version) of a request the SDK would hand to our handler, else None."""
        try:
            # Each mode's SDK path decodes with its own parser; they differ on edge input (encodings, NaN).
            decoded = json.loads(body) if modern else pydantic_core.from_json(body)
        except (ValueError, RecursionError):
            return None
        envelope = _envelope(decoded)
        if envelope is None:
            return None
        request_id, method, params = envelope
        if modern:
            routing = {name.decode(): headers[name].decode("latin-1") for name in _ROUTING_HEADERS if name in headers}
            verdict = classify_inbound_request(decoded, headers=routing)
            if not isinstance(verdict, InboundModernRoute):
                return None
            version = verdict.protocol_version
            if method == CALL and not self._no_param_headers_to_check(params or {}, headers):
                return None
        entry = self.server.get_request_handler(method)
        if entry is None:
            return None
        try:
            # The SDK's own checks, in its order: the protocol version's request model, then the handler's params.
            spec_methods.validate_client_request(method, version, params)
            typed = entry.params_type.model_validate({} if params is None else params, by_name=False)
        except (ValidationError, KeyError, ValueError):
            return None
        return request_id, method, typed, version

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
        except Exception:  # a server's own lookup failed: leave the request to the SDK, which reports it
            return False

    def _wire_result(self, method: str, version: str, result: Any) -> dict[str, Any]:
        """A handler's result as the SDK's ServerRunner shapes it for this protocol version."""
        if isinstance(result, dict):
            dumped = dict(result)
        else:
            dumped = result.model_dump(by_alias=True, mode="json", exclude_none=True)
        dumped = spec_methods.serialize_server_result(method, version, dumped)
        if version in _MODERN:
            if dumped.get("resultType") is None:
                dumped["resultType"] = "complete"
            meta = dumped.get("_meta")
            if meta is None:
                dumped["_meta"] = {SERVER_INFO_META_KEY: self._server_info}
            elif isinstance(meta, dict) and meta.get(SERVER_INFO_META_KEY) is None:
                dumped["_meta"] = {**meta, SERVER_INFO_META_KEY: self._server_info}
        return dumped

    def _listing(self, listing: Mapping[str, Any], version: str, modern: bool) -> bytes:
        """The encoded tools/list result, built once per snapshot listing and protocol version."""
        key = (id(listing), version)
        cached = self._listings.get(key)
        if cached is not None and cached[0] is listing:
            return cached[1]
        encoded = _encode(modern, self._wire_result(LIST, version, dict(listing)))
        if len(self._listings) >= _LISTING_CACHE_SIZE:
            self._listings.clear()
        self._listings[key] = (listing, encoded)  # holding the listing keeps its id from being reused
        return encoded

    @staticmethod
    async def _write(send: Send, modern: bool, request_id: int | str, answer: bytes | ErrorData) -> None:
        status = 200
        if isinstance(answer, ErrorData):
            if modern:  # the 2026-07-28 entry maps error codes to HTTP statuses (-32602: 400)
                status = ERROR_CODE_HTTP_STATUS.get(answer.code, 200)
            error = JSONRPCError(jsonrpc="2.0", id=request_id, error=answer)
            if modern:
                body = _encode(True, error.model_dump(mode="json", by_alias=True, exclude_none=True))
            else:
                body = error.model_dump_json(by_alias=True, exclude_unset=True).encode()
        else:
            body = b'{"jsonrpc":"2.0","id":' + _encode(modern, request_id) + b',"result":' + answer + b"}"
        length = str(len(body)).encode()
        # Same header order as the Starlette responses each SDK path builds.
        headers = [(b"content-length", length), (b"content-type", _JSON)] if modern else \
            [(b"content-type", _JSON), (b"content-length", length)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})
