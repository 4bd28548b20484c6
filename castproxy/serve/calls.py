"""One `tools/call` from start to end: validate, build the request, add credentials, send, map the result.

An unknown tool is a JSON-RPC error, every other failure an `isError` result; each call ends in one
report to the Observer (`_record`). A 401 from an oauth2/login upstream renews the token and re-sends once.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import logging
import time
import traceback
from typing import Any

import anyio.to_thread
import mcp_types
from mcp.shared.exceptions import MCPError
from mcp_types import INVALID_PARAMS

from castproxy.access.limits import RateLimits
from castproxy.access.policy import NOBODY, Caller
from castproxy.auth.credentials import SignInRequired, bearer_token
from castproxy.auth.login import sent_token
from castproxy.auth.upstream_oauth import UpstreamAuthError
from castproxy.catalog import meta
from castproxy.catalog.index import SearchIndex
from castproxy.observe.metrics import UNKNOWN_TOOL
from castproxy.observe.observer import Observer
from castproxy.openapi.model import ToolDefinition
from castproxy.serve.logs import CALLS_LOGGER
from castproxy.serve.snapshot import CredentialsUnavailable, ToolRuntime, WorkspaceRuntime
from castproxy.store.guard import StoreUnavailable
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.forwarder import Forwarder
from castproxy.upstream.model import UpstreamFailure, UpstreamRequest, UpstreamResponse
from castproxy.upstream.redact import redact, secret_forms
from castproxy.upstream.request import ArgumentError
from castproxy.upstream.response import to_tool_result

__all__ = ["ToolCaller", "error_result"]

call_log = logging.getLogger(CALLS_LOGGER)
log = logging.getLogger(__name__)


def error_result(message: str) -> mcp_types.CallToolResult:
    return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)


class ToolCaller:
    def __init__(self, forwarder: Forwarder, observer: Observer, limits: RateLimits | None = None) -> None:
        self.forwarder = observer.forwarder(forwarder)  # notes each send's status and size for the audit record
        self.observer = observer
        self.metrics = observer.metrics
        self.limits = limits or RateLimits.in_memory()  # rate_limit counters (castproxy/access)

    async def call(
        self, workspace: WorkspaceRuntime, name: str, arguments: dict[str, Any], grant_id: str | None,
        who: Caller = NOBODY,
    ) -> mcp_types.CallToolResult:
        """The tool result; raises MCPError (-32602) for a name the workspace has no tool for."""
        started = time.perf_counter()
        if workspace.search is not None and name in meta.NAMES:
            return await self._meta(workspace, workspace.search, name, arguments, grant_id, started, who)
        return await self._operation(workspace, name, arguments, grant_id, started, who)

    async def _operation(
        self, workspace: WorkspaceRuntime, name: str, arguments: dict[str, Any], grant_id: str | None, started: float,
        who: Caller = NOBODY,
    ) -> mcp_types.CallToolResult:
        """The call of one of the workspace's operations, by its tool name."""
        self.observer.note_arguments(arguments)  # only their names are ever recorded, and only on opt-in
        status: int | None = None
        if workspace.unavailable is not None:  # a degraded workspace's placeholder (snapshot.py)
            self._record(workspace, name, "workspace_unavailable", None, started)
            return error_result(f"Workspace '{workspace.name}' is not available: {workspace.unavailable}. "
                                "castproxy retries it in the background; try again shortly.")
        tool = workspace.tools.get(name)
        if tool is None:
            self._record(workspace, name, "unknown_tool", None, started)
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown tool: {name[:64]}")
        if workspace.access is not None or workspace.limits is not None:  # who may call what (castproxy/access)
            refused = await self._refused(workspace, name, who, started)
            if refused is not None:
                return refused
        try:
            result, outcome, status = await self._call(workspace, tool, arguments, grant_id)
        except SignInRequired as exc:
            reason = str(exc).rstrip(". ")
            result = error_result(
                f"Sign-in required: {reason}. This sign-in has ended; reconnect the MCP client to sign in again."
            )
            outcome = "sign_in_required"
        except CredentialsUnavailable as exc:
            result, outcome = error_result(f"Tool '{name}' cannot run: {exc}."), "credentials_unavailable"
        except StoreUnavailable as exc:  # e.g. Redis down or paused while reading the caller's grant
            result, outcome = error_result(f"Tool '{name}' cannot run right now: {exc}."), "store_unavailable"
        except UpstreamAuthError as exc:  # the upstream's OAuth server failed; its message is safe to show
            result, outcome = error_result(f"Tool '{name}' cannot run: {exc}."), "upstream_auth_error"
        except Exception as exc:
            # Operators get the exception type and frames; the client gets a fixed message.
            log.error(
                "tool call failed inside the proxy",
                extra={"fields": {"workspace": workspace.name, "tool": name, "error_type": type(exc).__name__,
                                  "frames": "".join(traceback.format_tb(exc.__traceback__))}},
            )
            result, outcome = error_result(f"Tool '{name}' failed inside the proxy; see the proxy log."), "error"
        self._record(workspace, name, outcome, status, started, who)
        return result

    async def _refused(
        self, workspace: WorkspaceRuntime, name: str, who: Caller, started: float
    ) -> mcp_types.CallToolResult | None:
        """The isError result for a call the access policy or a rate limit refuses, else None."""
        if workspace.access is not None:
            reason = workspace.access.refusal(who, name)
            if reason is not None:
                self._record(workspace, name, "access_denied", None, started, who)
                return error_result(reason)
        if workspace.limits is not None:
            over = await self.limits.check(workspace.name, name, who, workspace.limits)
            if over is not None:
                self.metrics.record_rate_limited(workspace.name, over.scope)
                self._record(workspace, name, "rate_limited", None, started, who)
                return error_result(over.message(name))
        return None

    async def _meta(
        self, workspace: WorkspaceRuntime, index: SearchIndex, name: str, arguments: dict[str, Any],
        grant_id: str | None, started: float, who: Caller = NOBODY,
    ) -> mcp_types.CallToolResult:
        """A meta-tool of a `discovery: search` workspace (castproxy/catalog/meta.py). call_operation hands the
        named operation to `_operation`, so it is validated, sent, logged and measured like a direct call."""
        problems = _META_VALIDATORS[name].errors(arguments)
        if problems:
            self._record(workspace, name, "invalid_arguments", None, started)
            return _invalid(name, problems)
        # Searching a big catalog takes milliseconds of SQLite, which releases the GIL: a worker thread keeps
        # the event loop serving other requests meanwhile.
        hidden = workspace.access.hidden(who) if workspace.access is not None else frozenset()
        if name == meta.CALL:
            operation = arguments["name"]
            if operation in workspace.tools:  # even one named like a meta-tool: the operation is meant here
                return await self._operation(workspace, operation, arguments.get("arguments") or {}, grant_id,
                                             started, who)
            result = await anyio.to_thread.run_sync(meta.unknown_operation, operation, index)
            outcome = "unknown_operation"
        elif name == meta.DESCRIBE:
            tool = workspace.tools.get(arguments["name"])
            if tool is not None and tool.definition.name in hidden:
                assert workspace.access is not None
                reason = workspace.access.refusal(who, tool.definition.name) or ""
                result, outcome = error_result(reason), "access_denied"
            elif tool is None:
                result = await anyio.to_thread.run_sync(meta.unknown_operation, arguments["name"], index)
                outcome = "unknown_operation"
            else:
                result, outcome = meta.operation_details(tool.definition), "ok"
        else:
            limit = arguments.get("limit", meta.DEFAULT_LIMIT)
            result = await anyio.to_thread.run_sync(meta.search, index, _definitions(workspace, hidden),
                                                    arguments["query"], limit, len(hidden))
            outcome = "ok"
        self._record(workspace, name, outcome, None, started, who)
        return result

    def _record(
        self, workspace: WorkspaceRuntime, name: str, outcome: str, status: int | None, started: float,
        who: Caller = NOBODY,
    ) -> None:
        """The call's report to the Observer (audit record, metrics, stats) and its debug log line (names not in
        the workspace share one metrics label)."""
        seconds = time.perf_counter() - started
        label = UNKNOWN_TOOL if outcome in ("unknown_tool", "workspace_unavailable") else name
        self.observer.tool_call(workspace.name, name[:64], label, outcome, status, seconds, who)
        if call_log.isEnabledFor(logging.DEBUG):  # the audit trail is the per-call record; this line is for debugging
            fields = {"workspace": workspace.name, "tool": name[:64], "upstream_status": status,
                      "duration_ms": round(seconds * 1000, 2), "outcome": outcome}
            if who is not NOBODY:  # who called (castproxy/access): the person's subject, or the key's name
                fields["caller"] = who.subject or who.key_name or who.client_id or who.address
            call_log.debug("tool call", extra={"fields": fields})

    async def _call(
        self, workspace: WorkspaceRuntime, tool: ToolRuntime, arguments: dict[str, Any], grant_id: str | None
    ) -> tuple[mcp_types.CallToolResult, str, int | None]:
        name = tool.definition.name
        problems = tool.validator.errors(arguments)
        if problems:
            return _invalid(name, problems), "invalid_arguments", None
        try:
            request = workspace.target.build(tool.definition, arguments)
        except ArgumentError as exc:
            return _invalid(name, exc.messages), "invalid_arguments", None
        await workspace.credentials.apply(request.headers, grant_id)
        outcome = await self.forwarder.send(
            request, timeout=workspace.timeout, max_bytes=workspace.max_response_bytes
        )
        renewable = workspace.oauth is not None or workspace.login is not None
        if renewable and isinstance(outcome, UpstreamResponse) and outcome.status == 401:
            refused = outcome
            try:
                outcome = await self._resend_with_renewed_token(workspace, name, request, refused, grant_id)
            except UpstreamAuthError as exc:  # e.g. the token endpoint is down: say so next to the 401
                result = to_tool_result(_masked(workspace, request, refused), max_bytes=workspace.max_response_bytes)
                note = f"castproxy could not renew the refused upstream token ({exc}); try again shortly."
                result.content.append(mcp_types.TextContent(type="text", text=note))
                return result, "upstream_error", refused.status
        outcome = _masked(workspace, request, outcome)  # nothing the upstream echoed of our credentials goes on
        result = to_tool_result(outcome, max_bytes=workspace.max_response_bytes)
        if isinstance(outcome, UpstreamFailure):  # no HTTP answer at all: timeout, refused, TLS...
            return result, f"upstream_{outcome.kind}", None
        if tool.output is not None and result.structured_content is not None:
            mismatch = tool.output.mismatch(result.structured_content)
            if mismatch is not None:
                return _off_schema(name, mismatch, result), "output_schema_mismatch", outcome.status
        return result, "upstream_error" if result.is_error else "ok", outcome.status

    async def _resend_with_renewed_token(
        self,
        workspace: WorkspaceRuntime,
        name: str,
        request: UpstreamRequest,
        refused: UpstreamResponse,
        grant_id: str | None,
    ) -> UpstreamResponse | UpstreamFailure:
        """The answer to the same request sent once more with a renewed token, after the upstream's 401.

        Given the refused token, the credentials renew it (SignInRequired when the grant cannot be
        renewed: the caller's sign-in has ended; UpstreamAuthError when the upstream's token endpoint
        fails). Without a different token there is nothing to retry, and the 401 stands.
        """
        retry = UpstreamRequest(request.method, request.url, dict(request.headers), request.body)
        refused_token = _sent_token(workspace, request.headers)
        await workspace.credentials.apply(retry.headers, grant_id, refused=refused_token)
        if _sent_token(workspace, retry.headers) == refused_token:
            return refused
        log.info(
            "upstream refused the access token; renewed it and sending the call again",
            extra={"fields": {"workspace": workspace.name, "tool": name}},
        )
        answer = await self.forwarder.send(retry, timeout=workspace.timeout, max_bytes=workspace.max_response_bytes)
        return _masked(workspace, retry, answer)  # the renewed token is masked too


def _masked(
    workspace: WorkspaceRuntime, request: UpstreamRequest, outcome: UpstreamResponse | UpstreamFailure
) -> UpstreamResponse | UpstreamFailure:
    """`outcome` with the credentials sent in `request` (after any renewal, the latest ones) and the config's
    secrets masked."""
    sent = [value for header, value in request.headers.items() if header.lower() in workspace.protected_headers]
    secrets = workspace.secrets + secret_forms(sent) if sent else workspace.secrets
    return redact(outcome, secrets)


def _sent_token(workspace: WorkspaceRuntime, headers: dict[str, str]) -> str | None:
    """The upstream token a request carries: a Bearer token, or where a login workspace sends its token."""
    return sent_token(workspace.login, headers) if workspace.login is not None else bearer_token(headers)


_META_VALIDATORS = {
    meta.SEARCH: ArgumentValidator(meta.SEARCH_SCHEMA),
    meta.DESCRIBE: ArgumentValidator(meta.DESCRIBE_SCHEMA),
    meta.CALL: ArgumentValidator(meta.CALL_SCHEMA),
}


def _definitions(workspace: WorkspaceRuntime, hidden: frozenset[str] = frozenset()) -> meta.Lookup:
    def lookup(name: str) -> ToolDefinition | None:
        tool = workspace.tools.get(name)
        return tool.definition if tool is not None and name not in hidden else None

    return lookup


def _off_schema(tool: str, mismatch: str, result: mcp_types.CallToolResult) -> mcp_types.CallToolResult:
    """An isError result for a 2xx answer breaking the published output schema: clients reject such
    structuredContent, so the mismatch is named and the body goes back as text (error results are not validated)."""
    note = (f"The upstream's answer for tool '{tool}' does not match the tool's output schema ({mismatch}); "
            "the body follows as text.")
    content: list[Any] = [mcp_types.TextContent(type="text", text=note), *result.content]
    return mcp_types.CallToolResult(content=content, is_error=True)


def _invalid(tool: str, problems: list[str]) -> mcp_types.CallToolResult:
    lines = "\n".join(f"- {problem}" for problem in problems)
    return error_result(f"Invalid arguments for tool '{tool}':\n{lines}")
