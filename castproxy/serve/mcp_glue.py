"""The MCP side: one low-level `mcp.server.Server` and one stateless JSON session manager for all workspaces.

The `/mcp/{workspace}` endpoint checks Origin (answering CORS for allowed browser origins), picks
the workspace from the CURRENT snapshot, checks the caller (inbound key or AuthBridge sign-in) and
stores a `CallScope` in the ASGI scope. The handlers read it back through `ctx.request`, so a call
uses the snapshot it started with even if a reload swaps a new one in meanwhile. The manager routes
initialize-era (2025-06-18, 2025-11-25) and sessionless 2026-07-28 requests by their
`MCP-Protocol-Version` header. Once a request is admitted, a plain `tools/call` is answered by the
fast path (fastpath.py) with the same bytes the SDK would send, without the SDK's per-request
machinery (tools/list too); everything else reaches the manager unchanged.

Three answers are given here for both paths, in plainer terms than the SDK's: `GET` (our stateless JSON
mode has no server-to-client stream to open) gets 405 with `Allow: POST`, which the spec permits and
clients take as "no stream" (`DELETE`, with no session to end, the same); a JSON-RPC batch (an array
body, which Streamable HTTP does not accept) gets a short 400 JSON-RPC error rather than a validation
dump; an `MCP-Protocol-Version` header naming a version the SDK does not serve gets a 400 naming it and
the supported ones.

Each admitted request carries a `RequestInfo` (castproxy.observe.context): who calls (client, grant,
key id, address), for the audit record of whatever tool call it makes. With tracing on, the whole
request runs inside its server span (castproxy.observe.tracing); off, there is no tracing code here.
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
from starlette.types import Receive, Scope, Send

from castproxy import __version__
from castproxy.auth.events import grant_ref
from castproxy.observe.context import CURRENT, RequestInfo, key_id
from castproxy.observe.observer import Observer
from castproxy.serve.calls import ToolCaller, error_result
from castproxy.serve.cors import preflight, with_cors
from castproxy.serve.fastpath import FastPath, enabled_by_environment, replay
from castproxy.serve.inbound import matched_key, unauthorized
from castproxy.serve.snapshot import Snapshot, WorkspaceRuntime
from castproxy.store.guard import RETRY_AFTER, StoreUnavailable

SCOPE_KEY = "castproxy.call"
log = logging.getLogger(__name__)
SUPPORTED_VERSIONS = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
_WHITESPACE = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class CallScope:
    workspace: WorkspaceRuntime
    grant_id: str | None
    info: RequestInfo | None = None  # who calls, for the audit trail


def _call_scope(ctx: ServerRequestContext[Any, Any]) -> CallScope:
    request = ctx.request
    scope = getattr(request, "scope", None)
    if scope is None or SCOPE_KEY not in scope:
        raise RuntimeError("MCP request reached the server without passing the /mcp endpoint")
    return scope[SCOPE_KEY]


class ProxyServer(Server[Any]):
    """castproxy's low-level MCP server; keeps its ToolCaller so the fast path can call tools directly."""

    def __init__(self, caller: ToolCaller) -> None:
        async def list_tools(ctx: ServerRequestContext[Any, Any], params: Any) -> dict[str, Any]:
            return dict(_call_scope(ctx).workspace.listing)  # prebuilt once per snapshot, never per call

        async def call_tool(
            ctx: ServerRequestContext[Any, Any], params: mcp_types.CallToolRequestParams
        ) -> mcp_types.CallToolResult:
            try:
                call = _call_scope(ctx)
            except RuntimeError:
                return error_result("This endpoint is not bound to a workspace.")
            return await caller.call(call.workspace, params.name, params.arguments or {}, call.grant_id)

        super().__init__(
            "castproxy",
            version=__version__,
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
        bridge: Callable[[], Any],
        *,
        fast_path: bool | None = None,
        observer: Observer | None = None,
    ) -> None:
        """`fast_path` None means on unless CASTPROXY_FAST_PATH=off. It only ever answers tools/call and
        tools/list for a ProxyServer behind a stateless JSON manager; everything else goes to the manager."""
        self.manager = manager
        self.current = current
        self.bridge = bridge
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
            response: Response | None = json_error(
                403, "forbidden_origin", "this Origin may not call the proxy (add it to server.allowed_origins)"
            )
        elif origin is not None and request.method == "OPTIONS":
            response = preflight(origin, request.headers.get("access-control-request-headers"))
        else:
            if origin is not None:
                send = with_cors(send, origin)
            response, call = await self._admit(request, snapshot)
            if response is None and call is not None and self.stateless_json:
                response, receive = await self._refuse_plainly(scope, receive)
            if response is None and call is not None:  # admitted: every check above ran for both paths
                token = CURRENT.set(call.info)  # the SDK's handler tasks copy this context: they see it too
                try:
                    if self.fast_path is not None:
                        sdk_receive = await self.fast_path.serve(scope, receive, send, call.workspace, call.grant_id)
                        if sdk_receive is None:
                            return
                        receive = sdk_receive
                    scope[SCOPE_KEY] = call
                    await self.manager.handle_request(scope, receive, send)
                finally:
                    CURRENT.reset(token)
                return
        await response(scope, receive, send)

    async def _refuse_plainly(self, scope: Scope, receive: Receive) -> tuple[Response | None, Receive]:
        """The GET / unsupported version / batch answers (see the module docstring), else None and the
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

    async def _admit(self, request: Request, snapshot: Snapshot) -> tuple[Response | None, CallScope | None]:
        name = request.path_params.get("workspace", "")
        workspace = snapshot.workspaces.get(name)
        if workspace is None:
            reason = snapshot.unavailable.get(name)
            if reason is not None:  # e.g. its tools drifted from the lock under server.lock: enforce
                return json_error(503, "workspace_unavailable", reason), None
            return json_error(404, "unknown_workspace", f"no workspace named '{name[:64]}'"), None
        client = request.client
        info = RequestInfo(name, address=client.host if client is not None else None)
        if workspace.inbound_key_hashes:
            digest = matched_key(request.headers, workspace.inbound_key_hashes)
            if digest is None:
                return unauthorized(name), None
            info.key_id = key_id(digest)
        grant_id: str | None = None
        if workspace.sign_in:
            bridge = self.bridge()
            if bridge is None:
                return json_error(503, "sign_in_unavailable", "sign-in not available: this proxy has no "
                                  "authorization server (set server.secret_key)"), None  # a config matter: no retry
            try:
                outcome = await bridge.authenticate_caller(request, name)
            except StoreUnavailable as exc:  # the store is down or paused: the same answer for every caller
                return sign_in_unavailable(f"sign-in check failed: {exc}", exc.retry_after), None
            except Exception as exc:  # anything else: say so, without internals
                fields = {"workspace": name, "error_type": type(exc).__name__}
                log.error("sign-in check failed", extra={"fields": fields})
                seconds = math.ceil(RETRY_AFTER)
                return sign_in_unavailable(f"sign-in check failed; try again in {seconds} s", seconds), None
            if isinstance(outcome, Response):
                return outcome, None
            grant_id = outcome.grant_id
            info.client_id, info.grant, info.subject = outcome.client_id, grant_ref(grant_id), outcome.subject or None
            if self.observer is not None:
                self.observer.grant_used(grant_id)
        return None, CallScope(workspace, grant_id, info)
