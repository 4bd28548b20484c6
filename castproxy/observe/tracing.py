"""OpenTelemetry traces: a server span per MCP request and a client span per upstream call, W3C traceparent out.

Off (nothing of the SDK imported) unless the OTEL_* environment asks for traces; spans follow the
OpenTelemetry MCP semantic conventions.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from starlette.types import Message, Receive, Scope, Send

from castproxy import __version__
from castproxy.upstream.model import UpstreamFailure, UpstreamRequest, UpstreamResponse

__all__ = ["Tracing", "from_environment", "wanted"]

log = logging.getLogger(__name__)

_CONTEXT_KEYS = ("traceparent", "tracestate", "baggage")
_TRUE = ("1", "true", "yes", "on")
Handler = Callable[[Scope, Receive, Send], Awaitable[None]]


def wanted(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the OTEL_* environment asks for traces."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return exporter != "none"
    return bool(environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"))


def from_environment(environ: Mapping[str, str] = os.environ, provider: Any = None) -> Tracing | None:
    """Tracing for this app: with `provider` (a TracerProvider, e.g. a test's) always; else per the environment."""
    if provider is None:
        if not wanted(environ):
            return None
        try:
            provider = _provider_from_environment(environ)
        except ImportError:
            log.error("OTEL_* asks for traces but the OpenTelemetry SDK is not installed: install castproxy[otel] "
                      "(pip install 'castproxy[otel]'); serving without traces")
            return None
    return Tracing(provider)


def _provider_from_environment(environ: Mapping[str, str]) -> Any:
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    attributes = {} if environ.get("OTEL_SERVICE_NAME") else {"service.name": "castproxy"}
    provider = TracerProvider(resource=Resource.create({**attributes, "service.version": __version__}))
    exporters = [name.strip().lower() for name in environ.get("OTEL_TRACES_EXPORTER", "otlp").split(",")]
    for name in exporters:
        if name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        elif name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name != "none":
            log.warning("unknown OTEL_TRACES_EXPORTER value ignored", extra={"fields": {"exporter": name[:40]}})
    return provider


def redacted_url(url: str) -> str:
    """The URL with query values replaced by REDACTED (semantic conventions' url.full redaction)."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    query = urlencode([(name, "REDACTED") for name, _ in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def _jsonrpc(body: bytes) -> dict[str, Any] | None:
    try:
        decoded = json.loads(body)
    except (ValueError, RecursionError):
        return None
    return decoded if isinstance(decoded, dict) else None


def replay(messages: list[Message], receive: Receive) -> Receive:
    """A receive that hands out the messages already read, then the connection's own."""
    pending = list(messages)

    async def replayed() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replayed


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class Tracing:
    """Opens the spans; holds the SDK's tracer (the SDK is imported only once this exists)."""

    def __init__(self, provider: Any) -> None:
        from opentelemetry import context, propagate, trace
        from opentelemetry.trace import SpanKind, Status, StatusCode

        self.provider = provider
        self._context = context
        self._propagate = propagate
        self._trace = trace
        self._kind = SpanKind
        self._status = Status
        self._code = StatusCode
        self.tracer = provider.get_tracer("castproxy", __version__)

    # --- the MCP request (server span) ------------------------------------------------------------------

    async def serve(self, scope: Scope, receive: Receive, send: Send, handle: Handler, *, max_body: int) -> None:
        """Run `handle` (the /mcp endpoint) inside the request's server span."""
        messages: list[Message] = []
        size = 0
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break
            size += len(message.get("body", b""))
            if size > max_body or not message.get("more_body", False):
                break
        body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")
        request = _jsonrpc(body) if size <= max_body else None

        params = request.get("params") if request is not None else None
        params = params if isinstance(params, dict) else {}
        meta = params.get("_meta")
        meta = meta if isinstance(meta, dict) else {}
        carrier_http = {key: value for key in _CONTEXT_KEYS if (value := _header(scope, key.encode())) is not None}
        carrier_meta = {key: value for key in _CONTEXT_KEYS if isinstance(value := meta.get(key), str)}
        http_context = self._propagate.extract(carrier_http) if carrier_http else None
        parent = self._propagate.extract(carrier_meta) if carrier_meta else http_context
        links = []
        if carrier_meta and http_context is not None:
            linked = self._trace.get_current_span(http_context).get_span_context()
            if linked.is_valid:
                links.append(self._trace.Link(linked))

        method = request.get("method") if request is not None else None
        method = method if isinstance(method, str) else None
        tool = params.get("name") if method == "tools/call" and isinstance(params.get("name"), str) else None
        attributes = self._request_attributes(scope, request, method, tool, meta)
        name = f"{method} {tool[:64]}" if method and tool else (method[:64] if method else "mcp " + scope["method"])
        span = self.tracer.start_span(name, context=parent, kind=self._kind.SERVER, attributes=attributes,
                                      links=links)
        answer: dict[str, Any] = {}

        async def observed_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"] = message["status"]
            elif message["type"] == "http.response.body" and "error" not in answer:
                chunk = message.get("body", b"")
                if b'"error"' in chunk[:200_000]:
                    answer["error"] = chunk
            await send(message)

        token = self._context.attach(self._trace.set_span_in_context(span, parent))
        try:
            await handle(scope, replay(messages, receive), observed_send)
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(self._status(self._code.ERROR))
            raise
        finally:
            self._context.detach(token)
            self._finish(span, answer)
            span.end()

    def _request_attributes(
        self, scope: Scope, request: dict[str, Any] | None, method: str | None, tool: str | None,
        meta: Mapping[str, Any],
    ) -> dict[str, Any]:
        attributes: dict[str, Any] = {
            "network.transport": "tcp",
            "network.protocol.name": "http",
            "network.protocol.version": str(scope.get("http_version", "1.1")),
            "url.path": scope.get("path", ""),
        }
        workspace = scope.get("path_params", {}).get("workspace") or scope.get("path", "").rsplit("/", 1)[-1]
        attributes["castproxy.workspace"] = str(workspace)[:64]
        if method:
            attributes["mcp.method.name"] = method[:64]
        if request is not None and isinstance(request.get("id"), int | str) and not isinstance(request["id"], bool):
            attributes["jsonrpc.request.id"] = str(request["id"])[:128]
        if tool:
            attributes["gen_ai.tool.name"] = tool[:64]
            attributes["gen_ai.operation.name"] = "execute_tool"
        version = _header(scope, b"mcp-protocol-version") or meta.get("io.modelcontextprotocol/protocolVersion")
        if method == "initialize" and request is not None:
            version = request.get("params", {}).get("protocolVersion", version)
        if isinstance(version, str):
            attributes["mcp.protocol.version"] = version[:40]
        session = _header(scope, b"mcp-session-id")
        if session:
            attributes["mcp.session.id"] = session[:128]
        client, server = scope.get("client"), scope.get("server")
        if client:
            attributes["client.address"], attributes["client.port"] = str(client[0]), int(client[1])
        if server:
            attributes["server.address"] = str(server[0])
            if server[1] is not None:
                attributes["server.port"] = int(server[1])
        return attributes

    def _finish(self, span: Any, answer: Mapping[str, Any]) -> None:
        """error.type and status from what was answered (tool errors were noted by `note_outcome`)."""
        status = answer.get("status")
        error: str | None = None
        if isinstance(status, int) and status >= 400:
            error = str(status)
        body = answer.get("error")
        if body is not None:
            decoded = _jsonrpc(body)
            rpc_error = decoded.get("error") if decoded is not None else None
            if isinstance(rpc_error, dict) and isinstance(rpc_error.get("code"), int):
                error = str(rpc_error["code"])
                span.set_attribute("rpc.response.status_code", error)
                message = rpc_error.get("message")
                if isinstance(message, str):
                    span.set_status(self._status(self._code.ERROR, message[:200]))
        if error is not None:
            span.set_attribute("error.type", error)
            if body is None:
                span.set_status(self._status(self._code.ERROR))
        elif isinstance(status, int):
            span.set_attribute("http.response.status_code", status)

    def note_outcome(self, outcome: str) -> None:
        """A tool call's outcome on the current server span (anything but ok is `error.type=tool_error`)."""
        span = self._trace.get_current_span()
        if not span.is_recording():
            return
        span.set_attribute("castproxy.outcome", outcome)
        if outcome != "ok":
            span.set_attribute("error.type", "tool_error")
            span.set_status(self._status(self._code.ERROR, outcome))

    # --- the upstream call (client span) ------------------------------------------------------------------

    async def send(
        self, send: Callable[..., Awaitable[UpstreamResponse | UpstreamFailure]], request: UpstreamRequest,
        timeout: float, max_bytes: int,
    ) -> UpstreamResponse | UpstreamFailure:
        parts = urlsplit(request.url)
        attributes: dict[str, Any] = {
            "http.request.method": request.method,
            "url.full": redacted_url(request.url),
            "server.address": parts.hostname or "",
            "server.port": parts.port or (443 if parts.scheme == "https" else 80),
        }
        with self.tracer.start_as_current_span(request.method, kind=self._kind.CLIENT, attributes=attributes,
                                               end_on_exit=True) as span:
            self._propagate.inject(request.headers)  # traceparent (and tracestate) to the upstream
            outcome = await send(request, timeout=timeout, max_bytes=max_bytes)
            if isinstance(outcome, UpstreamResponse):
                span.set_attribute("http.response.status_code", outcome.status)
                span.set_attribute("http.response.body.size", len(outcome.body))
                if outcome.status >= 400:
                    span.set_attribute("error.type", str(outcome.status))
                    span.set_status(self._status(self._code.ERROR))
            else:
                span.set_attribute("error.type", outcome.kind)
                span.set_status(self._status(self._code.ERROR, outcome.message[:200]))
            return outcome

    def shutdown(self) -> None:
        shutdown = getattr(self.provider, "shutdown", None)
        if callable(shutdown):
            shutdown()
