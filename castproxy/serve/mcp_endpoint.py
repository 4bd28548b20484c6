"""The `/mcp/{workspace}` endpoint and the one low-level MCP server and stateless JSON session manager behind it.

The endpoint checks Origin and the caller, picks the workspace from the current snapshot and hands the
request to the fast path or the SDK with a `CallScope` the handlers read back through `ctx.request`.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp_types import INVALID_REQUEST, UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from castproxy import __version__
from castproxy.access.policy import NOBODY, Caller
from castproxy.access.stepup import called_tool
from castproxy.auth.bridge import AuthBridge
from castproxy.auth.events import grant_ref
from castproxy.auth.server.limits import caller_key
from castproxy.observe.context import CURRENT, RequestInfo, key_id
from castproxy.observe.observer import Observer
from castproxy.serve.calls import ToolCaller, error_result
from castproxy.serve.cors import preflight, with_cors
from castproxy.serve.fastpath import FastPath, enabled_by_environment, replay
from castproxy.serve.inbound import key_caller, listing_for, matched_key, unauthorized
from castproxy.serve.snapshot import Snapshot, WorkspaceRuntime
from castproxy.store.guard import RETRY_AFTER, StoreUnavailable

__all__ = ["McpEndpoint", "build_server"]

SCOPE_KEY = "castproxy.call"
WORKSPACE_UNAVAILABLE = -32000  # JSON-RPC's implementation-defined server error range
log = logging.getLogger(__name__)
SUPPORTED_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class CallScope:
    workspace: WorkspaceRuntime
    grant_id: str | None
    caller: Caller = NOBODY  # who is calling (castproxy/access): policies and limits read it
    info: RequestInfo | None = None  # who calls, for the audit trail (castproxy/observe)


def _call_scope(ctx: ServerRequestContext[Any, Any]) -> CallScope:
    scope = getattr(ctx.request, "scope", None)
    call = scope.get(SCOPE_KEY) if scope is not None else None
    if not isinstance(call, CallScope):
        raise RuntimeError("MCP request reached the server without passing the /mcp endpoint")
    return call


class ProxyServer(Server[Any]):
    """castproxy's low-level MCP server; keeps its ToolCaller so the fast path can call tools directly."""

    def __init__(self, caller: ToolCaller) -> None:
        async def list_tools(ctx: ServerRequestContext[Any, Any], params: Any) -> dict[str, Any]:
            call = _call_scope(ctx)
            return dict(listing_for(call.workspace, call.caller))  # prebuilt per snapshot and policy group

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: mcp_types.CallToolRequestParams
        ) -> mcp_types.CallToolResult:
            try:
                call = _call_scope(ctx)
            except RuntimeError:
                return error_result("This endpoint is not bound to a workspace.")
            return await caller.call(call.workspace, params.name, params.arguments or {}, call.grant_id,
                                     who=call.caller)

        super().__init__(
            "castproxy",
            version=__version__,
            # The SDK types the answer ListToolsResult; a dict (our prebuilt wire form) goes out as it is.
            on_list_tools=list_tools,  # type: ignore[arg-type]
            on_call_tool=call_tool,
            # Our tools declare no `Mcp-Param-*` headers; answering None skips the SDK's per-call re-listing
            # of every tool that it would otherwise do to look the schema up (2026-07-28 tools/call).
            get_tool_input_schema=lambda name: None,
        )
        self.caller = caller
        # The SDK's default OpenTelemetry middleware opens a span per request: real CPU on the hot path.
        self.middleware = []


def build_server(caller: ToolCaller) -> ProxyServer:
    return ProxyServer(caller)


def json_error(status: int, error: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status, headers=headers)


def sign_in_unavailable(message: str, retry_after: int) -> JSONResponse:
    """503 for a sign-in that cannot be checked right now, with the Retry-After clients and load balancers read."""
    return json_error(503, "sign_in_unavailable", message, {"Retry-After": str(retry_after)})


def rpc_error(status: int, code: int, message: str, data: Any = None) -> JSONResponse:
    """A JSON-RPC error with no request id (the request was not read as one), as the SDK shapes its own."""
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return JSONResponse({"jsonrpc": "2.0", "id": None, "error": error}, status_code=status)


def _unsupported_version(version: str) -> JSONResponse:
    shown = version[:40]
    return rpc_error(
        400,
        UNSUPPORTED_PROTOCOL_VERSION,
        f"Unsupported MCP-Protocol-Version {shown!r}; supported: {', '.join(SUPPORTED_VERSIONS)}",
        {"supported": list(SUPPORTED_VERSIONS), "requested": shown},
    )


def _batch_refused() -> JSONResponse:
    message = "JSON-RPC batches are not supported: send one request or notification object per POST"
    return rpc_error(400, INVALID_REQUEST, message)


class McpEndpoint:
    """ASGI endpoint for `Route("/mcp/{workspace}")`: the gate in front of the session manager."""

    def __init__(
        self,
        manager: StreamableHTTPSessionManager,
        current: Callable[[], Snapshot],
        bridge: Callable[[], AuthBridge | None],
        *,
        fast_path: bool | None = None,
        retry_in: Callable[[str], float | None] = lambda name: None,
        observer: Observer | None = None,
    ) -> None:
        """`fast_path` None means on unless CASTPROXY_FAST_PATH=off. It only ever answers tools/call and
        tools/list for a ProxyServer behind a stateless JSON manager; everything else goes to the manager."""
        self.manager = manager
        self.current = current
        self.bridge = bridge
        self.retry_in = retry_in
        self.observer = observer
        self.tracing = observer.tracing if observer is not None else None
        if fast_path is None:
            fast_path = enabled_by_environment()
        server = manager.app
        self.stateless_json = manager.stateless and manager.json_response
        self.max_body_size = manager.max_request_body_size
        self.fast_path: FastPath | None = None
        if fast_path and self.stateless_json and isinstance(server, ProxyServer):
            self.fast_path = FastPath(server, server.caller, max_body_size=self.max_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.tracing is not None and scope["method"] == "POST":  # the request inside its server span
            await self.tracing.serve(scope, receive, send, self._handle, max_body=self.max_body_size)
            return
        await self._handle(scope, receive, send)

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        snapshot = self.current()  # held for the whole request: in-flight calls keep their config
        origin = request.headers.get("origin")
        if not snapshot.origins.allows(origin):
            response: Response = json_error(
                403, "forbidden_origin", "this Origin may not call the proxy (add it to server.allowed_origins)"
            )
        elif origin is not None and request.method == "OPTIONS":
            response = preflight(origin, request.headers.get("access-control-request-headers"))
        else:
            if origin is not None:
                send = with_cors(send, origin)
            admitted = await self._admit(request, snapshot)
            if isinstance(admitted, CallScope):
                await self._serve(admitted, scope, receive, send)
                return
            response = admitted
        await response(scope, receive, send)

    async def _serve(self, call: CallScope, scope: Scope, receive: Receive, send: Send) -> None:
        """An admitted request: a degraded workspace's answer, the plain refusals and the step-up check (for
        both paths), then the fast path or the SDK."""
        response: Response | None = None
        if call.workspace.unavailable is not None:
            response, receive = await self._unavailable(scope, receive, call.workspace)
        if response is None and self.stateless_json:
            response, receive = await self._refuse_plainly(scope, receive)
        if response is not None:
            await response(scope, receive, send)
            return
        token = CURRENT.set(call.info)  # the SDK's handler tasks copy this context: they see it too
        try:
            if call.workspace.access is not None and call.caller.scopes is not None:
                response, receive = await self._step_up(call, scope, receive)
                if response is not None:
                    await response(scope, receive, send)
                    return
            if self.fast_path is not None:
                sdk_receive = await self.fast_path.serve(scope, receive, send, call.workspace, call.grant_id,
                                                         call.caller)
                if sdk_receive is None:
                    return
                receive = sdk_receive
            scope[SCOPE_KEY] = call
            await self.manager.handle_request(scope, receive, send)
        finally:
            CURRENT.reset(token)

    async def _step_up(self, call: CallScope, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """403 insufficient_scope for a tools/call of a tool whose scopes the caller's token lacks (both paths)."""
        access = call.workspace.access
        assert access is not None
        lacking = access.lacking_scopes(call.caller.scopes)
        if not lacking or scope["method"] != "POST":
            return None, receive
        name, receive = await called_tool(receive, self.max_body_size, search=call.workspace.search is not None)
        bridge = self.bridge()
        if name is None or name not in lacking or bridge is None:
            return None, receive
        need = access.missing_scopes(call.caller, name)
        assert need is not None and call.caller.scopes is not None
        log.info("tool call needs more scope: asking the client to step up",
                 extra={"fields": {"workspace": call.workspace.name, "tool": name[:64], "caller": call.caller.label}})
        return bridge.insufficient_scope(call.workspace.name, need.challenge(call.caller.scopes), name), receive

    async def _refuse_plainly(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """The GET / unsupported version / batch answers (docs/architecture.md, "Module notes"), else None and the
        `receive` to read the request from (a batch is recognised from the first body chunk, replayed)."""
        if scope["method"] in ("GET", "DELETE"):  # DELETE too, so no 405 names GET as allowed (the SDK's would)
            return Response(status_code=405, headers={"Allow": "POST"}), receive
        if scope["method"] != "POST":
            return None, receive
        for name, value in scope["headers"]:
            if name == b"mcp-protocol-version":
                version = value.decode("latin-1")
                if version not in SUPPORTED_VERSIONS:
                    return _unsupported_version(version), receive
                break
        first = await receive()
        if first["type"] != "http.request" or not first.get("body", b"").lstrip(_WHITESPACE).startswith(b"["):
            return None, replay([first], receive)
        # Starts like an array: read it all (within the SDK's body limit) to be sure it is one.
        messages = [first]
        size = len(first.get("body", b""))
        while messages[-1]["type"] == "http.request" and messages[-1].get("more_body", False):
            message = await receive()
            messages.append(message)
            size += len(message.get("body", b""))
            if size > self.max_body_size:
                return None, replay(messages, receive)
        try:
            decoded = json.loads(b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request"))
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, list):
            return _batch_refused(), receive
        return None, replay(messages, receive)

    async def _unavailable(
        self, scope: Scope, receive: Receive, workspace: WorkspaceRuntime
    ) -> tuple[Response | None, Receive]:
        """A degraded workspace: 503 with the reason, except a tools/call, which goes on to get it as a tool result."""
        messages: list[Message] = []
        size = 0
        while scope["method"] == "POST":
            chunk = await receive()
            messages.append(chunk)
            size += len(chunk.get("body", b""))
            if chunk["type"] != "http.request" or not chunk.get("more_body", False) or size > self.max_body_size:
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        try:
            decoded = json.loads(body) if body and size <= self.max_body_size else None
        except (ValueError, RecursionError):
            decoded = None
        if isinstance(decoded, dict) and decoded.get("method") == "tools/call" and "id" in decoded:
            return None, replay(messages, receive)
        seconds = self.retry_in(workspace.name)
        retry_after = max(1, math.ceil(seconds)) if seconds is not None else 5
        message = (f"workspace '{workspace.name}' is not available: {workspace.unavailable}; castproxy retries it "
                   f"in the background (next attempt in about {retry_after} s)")
        details = {"error": "workspace_unavailable", "reason": workspace.unavailable, "retry_after": retry_after}
        headers = {"Retry-After": str(retry_after), "Cache-Control": "no-store"}
        if isinstance(decoded, dict) and decoded.get("jsonrpc") == "2.0":
            # A JSON-RPC error body: MCP clients show its message instead of a bare "HTTP 503".
            request_id = decoded.get("id") if isinstance(decoded.get("id"), int | str) else None
            error = {"code": WORKSPACE_UNAVAILABLE, "message": message, "data": details}
            response: Response = JSONResponse({"jsonrpc": "2.0", "id": request_id, "error": error},
                                              status_code=503, headers=headers)
        else:
            response = JSONResponse({**details, "message": message}, status_code=503, headers=headers)
        return response, replay(messages, receive)

    async def _admit(self, request: Request, snapshot: Snapshot) -> Response | CallScope:
        name = request.path_params.get("workspace", "")
        workspace = snapshot.workspaces.get(name)
        if workspace is None:
            reason = snapshot.unavailable.get(name)
            if reason is not None:  # e.g. its tools drifted from the lock under server.lock: enforce
                return json_error(503, "workspace_unavailable", reason)
            return json_error(404, "unknown_workspace", f"no workspace named '{name[:64]}'")
        client = request.client
        info = RequestInfo(name, address=client.host if client is not None else None)
        grant_id: str | None = None
        caller = NOBODY
        digest = matched_key(request.headers, workspace.inbound_key_hashes) if workspace.inbound_key_hashes else None
        by_key = digest is not None
        if digest is not None:  # an inbound key (with server.identity, the alternative to castproxy's sign-in)
            caller = key_caller(workspace, request.headers)
            info.key_id = key_id(digest)  # the audit trail prefers the key's name when it has one
        elif workspace.inbound_key_hashes and not workspace.sign_in:
            return unauthorized(name)
        if workspace.unavailable is not None:
            return CallScope(workspace, None, caller, info)  # nothing to sign in to: it answers its reason only
        if workspace.sign_in and not by_key:
            bridge = self.bridge()
            if bridge is None:
                return json_error(503, "sign_in_unavailable", "sign-in not available: this proxy has no "
                                  "authorization server (set server.secret_key)")  # a config matter: no retry
            try:
                outcome = await bridge.authenticate_caller(request, name)
            except StoreUnavailable as exc:  # the store is down or paused: the same answer for every caller
                return sign_in_unavailable(f"sign-in check failed: {exc}", exc.retry_after)
            except Exception as exc:  # anything else: say so, without internals
                fields = {"workspace": name, "error_type": type(exc).__name__}
                log.error("sign-in check failed", extra={"fields": fields})
                seconds = math.ceil(RETRY_AFTER)
                return sign_in_unavailable(f"sign-in check failed; try again in {seconds} s", seconds)
            if isinstance(outcome, Response):
                return outcome
            grant_id, caller = outcome
            info.grant = grant_ref(grant_id)
            if self.observer is not None:
                self.observer.grant_used(grant_id)
        elif not by_key and request.client is not None and workspace.limits is not None:  # limits count per address
            caller = Caller(address=caller_key(request.client.host))
        if workspace.access is not None and not workspace.access.may_connect(caller):
            log.warning("caller refused by the workspace's access policy",
                        extra={"fields": {"workspace": name, "caller": caller.label}})
            return json_error(403, "access_denied", f"{caller.label} may not use workspace '{name}': its access "
                              "policy allows other people or groups")
        info.client_id, info.subject = caller.client_id, caller.subject
        return CallScope(workspace, grant_id, caller, info)
