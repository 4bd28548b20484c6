"""The MCP side: one low-level `mcp.server.Server` and one stateless JSON session manager for all workspaces.

The `/mcp/{workspace}` endpoint checks Origin (answering CORS for allowed browser origins), picks
the workspace from the CURRENT snapshot, checks the caller (inbound key or AuthBridge sign-in) and
stores a `CallScope` in the ASGI scope. The handlers read it back through `ctx.request`, so a call
uses the snapshot it started with even if a reload swaps a new one in meanwhile. The manager routes
initialize-era (2025-06-18, 2025-11-25) and sessionless 2026-07-28 requests by their
`MCP-Protocol-Version` header. Once a request is admitted, a plain `tools/call` is answered by the
fast path (fastpath.py) with the same bytes the SDK would send, without the SDK's per-request
machinery (tools/list too); everything else reaches the manager unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mcp_types
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Receive, Scope, Send

from castproxy import __version__
from castproxy.serve.calls import ToolCaller, error_result
from castproxy.serve.cors import preflight, with_cors
from castproxy.serve.fastpath import FastPath, enabled_by_environment
from castproxy.serve.inbound import key_accepted, unauthorized
from castproxy.serve.snapshot import Snapshot, WorkspaceRuntime

SCOPE_KEY = "castproxy.call"
log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallScope:
    workspace: WorkspaceRuntime
    grant_id: str | None


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


def json_error(status: int, error: str, message: str) -> JSONResponse:
    return JSONResponse({"error": error, "message": message}, status_code=status)


class McpEndpoint:
    """ASGI endpoint for `Route("/mcp/{workspace}")`: the gate in front of the session manager."""

    def __init__(
        self,
        manager: StreamableHTTPSessionManager,
        current: Callable[[], Snapshot],
        bridge: Callable[[], Any],
        *,
        fast_path: bool | None = None,
    ) -> None:
        """`fast_path` None means on unless CASTPROXY_FAST_PATH=off. It only ever answers tools/call and
        tools/list for a ProxyServer behind a stateless JSON manager; everything else goes to the manager."""
        self.manager = manager
        self.current = current
        self.bridge = bridge
        if fast_path is None:
            fast_path = enabled_by_environment()
        server = manager.app
        self.fast_path: FastPath | None = None
        if fast_path and manager.stateless and manager.json_response and isinstance(server, ProxyServer):
            self.fast_path = FastPath(server, server.caller, max_body_size=manager.max_request_body_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            if response is None and call is not None:  # admitted: every check above ran for both paths
                if self.fast_path is not None:
                    sdk_receive = await self.fast_path.serve(scope, receive, send, call.workspace, call.grant_id)
                    if sdk_receive is None:
                        return
                    receive = sdk_receive
                scope[SCOPE_KEY] = call
                await self.manager.handle_request(scope, receive, send)
                return
        await response(scope, receive, send)

    async def _admit(self, request: Request, snapshot: Snapshot) -> tuple[Response | None, CallScope | None]:
        name = request.path_params.get("workspace", "")
        workspace = snapshot.workspaces.get(name)
        if workspace is None:
            return json_error(404, "unknown_workspace", f"no workspace named '{name[:64]}'"), None
        if workspace.inbound_key_hashes and not key_accepted(request.headers, workspace.inbound_key_hashes):
            return unauthorized(name), None
        grant_id: str | None = None
        if workspace.sign_in:
            bridge = self.bridge()
            if bridge is None:
                return json_error(503, "sign_in_unavailable", "sign-in not available: this proxy has no "
                                  "authorization server (set server.secret_key)"), None
            try:
                outcome = await bridge.authenticate(request, name)
            except Exception as exc:  # e.g. the store is down: say so, without internals
                fields = {"workspace": name, "error_type": type(exc).__name__}
                log.error("sign-in check failed", extra={"fields": fields})
                return json_error(503, "sign_in_unavailable", "sign-in check failed; try again shortly"), None
            if isinstance(outcome, Response):
                return outcome, None
            grant_id = outcome
        return None, CallScope(workspace, grant_id)
