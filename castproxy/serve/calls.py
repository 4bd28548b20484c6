"""One `tools/call` from start to end: validate, build the request, add credentials, send, map the result.

Every failure becomes an `isError` tool result with a safe message (never a JSON-RPC error, never a
stack trace), and each call ends with one structured log line and one metrics observation.
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import mcp_types

from castproxy.auth.credentials import SignInRequired
from castproxy.serve.logs import CALLS_LOGGER
from castproxy.serve.metrics import Metrics
from castproxy.serve.snapshot import CredentialsUnavailable, ToolRuntime, WorkspaceRuntime
from castproxy.upstream.exchange import UpstreamFailure
from castproxy.upstream.forwarder import Forwarder
from castproxy.upstream.request import ArgumentError, build_request
from castproxy.upstream.response import to_tool_result

call_log = logging.getLogger(CALLS_LOGGER)
log = logging.getLogger(__name__)

UNKNOWN_TOOL = "(unknown)"  # metrics label for names not in the workspace: callers cannot grow label sets


def error_result(message: str) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)


class ToolCaller:
    def __init__(self, forwarder: Forwarder, metrics: Metrics) -> None:
        self.forwarder = forwarder
        self.metrics = metrics

    async def call(
        self, workspace: WorkspaceRuntime, name: str, arguments: dict[str, Any], grant_id: str | None
    ) -> mcp_types.CallToolResult:
        started = time.perf_counter()
        status: int | None = None
        tool = workspace.tools.get(name)
        if tool is None:
            result = error_result(f"Unknown tool '{name[:64]}' in workspace '{workspace.name}'.")
            outcome = "unknown_tool"
        else:
            try:
                result, outcome, status = await self._call(workspace, tool, arguments, grant_id)
            except SignInRequired as exc:
                result = error_result(f"Sign-in required: {exc} Reconnect to sign in again.")
                outcome = "sign_in_required"
            except CredentialsUnavailable as exc:
                result, outcome = error_result(f"Tool '{name}' cannot run: {exc}."), "credentials_unavailable"
            except Exception as exc:
                # Operators get the exception type and frames; the client gets a fixed message.
                log.error(
                    "tool call failed inside the proxy",
                    extra={"fields": {"workspace": workspace.name, "tool": name, "error_type": type(exc).__name__,
                                      "frames": "".join(traceback.format_tb(exc.__traceback__))}},
                )
                result, outcome = error_result(f"Tool '{name}' failed inside the proxy; see the proxy log."), "error"
        seconds = time.perf_counter() - started
        self.metrics.record_call(workspace.name, name if tool else UNKNOWN_TOOL, outcome, seconds)
        call_log.info(
            "tool call",
            extra={"fields": {"workspace": workspace.name, "tool": name[:64], "upstream_status": status,
                              "duration_ms": round(seconds * 1000, 2), "outcome": outcome}},
        )
        return result

    async def _call(
        self, workspace: WorkspaceRuntime, tool: ToolRuntime, arguments: dict[str, Any], grant_id: str | None
    ) -> tuple[mcp_types.CallToolResult, str, int | None]:
        name = tool.definition.name
        problems = tool.validator.errors(arguments)
        if problems:
            return _invalid(name, problems), "invalid_arguments", None
        try:
            request = build_request(
                tool.definition,
                arguments,
                base_url=workspace.base_url,
                extra_headers=workspace.extra_headers,
                protected_headers=workspace.protected_headers,
            )
        except ArgumentError as exc:
            return _invalid(name, exc.messages), "invalid_arguments", None
        await workspace.credentials.apply(request.headers, grant_id)
        outcome = await self.forwarder.send(
            request, timeout=workspace.timeout, max_bytes=workspace.max_response_bytes
        )
        result = to_tool_result(outcome, max_bytes=workspace.max_response_bytes)
        if isinstance(outcome, UpstreamFailure):  # no HTTP answer at all: timeout, refused, TLS...
            return result, f"upstream_{outcome.kind}", None
        return result, "upstream_error" if result.is_error else "ok", outcome.status


def _invalid(tool: str, problems: list[str]) -> mcp_types.CallToolResult:
    lines = "\n".join(f"- {problem}" for problem in problems)
    return error_result(f"Invalid arguments for tool '{tool}':\n{lines}")
