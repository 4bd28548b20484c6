"""Small stand-ins for parts that have not landed yet, built on the agreed signatures.

`install()` puts one into `sys.modules` only when the real module cannot be imported, so the serve
tests run against every real part that exists and switch to the others as they land.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import sys
import time
import types
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mcp_types


def _module(name: str) -> types.ModuleType | None:
    try:
        importlib.import_module(name)
        return None
    except ImportError:
        module = types.ModuleType(name)
        sys.modules[name] = module
        return module


# --- config loader -----------------------------------------------------------------------------

def _config_loader(module: types.ModuleType) -> None:
    from pydantic import ValidationError
    from ruamel.yaml import YAML

    from castproxy.config.model import Config
    from castproxy.config.problems import ConfigError, Problem

    ref = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")

    @dataclass(frozen=True)
    class LoadedConfig:
        config: Config
        path: Path
        base_dir: Path
        tree: Any = None
        warnings: list[Problem] = field(default_factory=list)
        public_url: str = ""

        def locate(self, loc: tuple[str | int, ...]) -> tuple[int, int]:
            node, best = self.tree, (1, 1)
            for key in loc:
                try:
                    lc = node.lc
                    if isinstance(key, int):
                        best = (lc.item(key)[0] + 1, lc.item(key)[1] + 1)
                    else:
                        best = (lc.key(key)[0] + 1, lc.key(key)[1] + 1)
                    node = node[key]
                except Exception:
                    break
            return best

        def problem(self, loc: tuple[str | int, ...], message: str, severity: str = "error") -> Problem:
            line, column = self.locate(loc)
            return Problem(str(self.path), line, column, message, severity)  # type: ignore[arg-type]

    def resolve(value: Any, environ: Mapping[str, str]) -> Any:
        if isinstance(value, str):
            return ref.sub(lambda m: environ.get(m.group(1), ""), value)
        if isinstance(value, dict):
            return {k: resolve(v, environ) for k, v in value.items()}
        if isinstance(value, list):
            return [resolve(v, environ) for v in value]
        return value

    def load_config(path: str | Path, environ: Mapping[str, str] | None = None) -> LoadedConfig:
        environ = os.environ if environ is None else environ
        path = Path(os.path.abspath(path))
        text = path.read_text()
        try:
            tree = YAML().load(text)
        except Exception as exc:
            mark = getattr(exc, "problem_mark", None)
            line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
            raise ConfigError([Problem(str(path), line, col, f"invalid YAML: {exc}")]) from None
        plain = resolve(json.loads(json.dumps(tree)), environ)
        server = plain.setdefault("server", {})
        if "CASTPROXY_HOST" in environ:
            server["host"] = environ["CASTPROXY_HOST"]
        if "CASTPROXY_PORT" in environ:
            server["port"] = int(environ["CASTPROXY_PORT"])
        shell = LoadedConfig(config=None, path=path, base_dir=path.parent, tree=tree)  # type: ignore[arg-type]
        try:
            config = Config.model_validate(plain)
        except ValidationError as exc:
            raise ConfigError([shell.problem(tuple(e["loc"]), e["msg"]) for e in exc.errors()]) from None
        public = config.server.public_url or f"http://{config.server.host}:{config.server.port}"
        return LoadedConfig(config, path, path.parent, tree, [], public.rstrip("/"))

    def resolve_config_path(option: str | None) -> Path:
        return Path(option or os.environ.get("CASTPROXY_CONFIG") or "cast.yaml")

    module.LoadedConfig = LoadedConfig
    module.load_config = load_config
    module.resolve_config_path = resolve_config_path
    module.UPSTREAM_CALLBACK_PATH = "/oauth/callback"


# --- workspace compiler: enough OpenAPI for the test upstream ----------------------------------

def _workspace(module: types.ModuleType) -> None:
    from castproxy.config.model import ToolSelection
    from castproxy.openapi.model import BodySpec, Operation, ParameterSpec, ToolDefinition

    class WorkspaceError(Exception):
        def __init__(self, problems: list[tuple[tuple[str | int, ...], str]]) -> None:
            super().__init__("; ".join(m for _, m in problems))
            self.problems = problems

    @dataclass(frozen=True)
    class WorkspaceTools:
        tools: tuple[ToolDefinition, ...]
        base_url: str
        warnings: tuple[str, ...] = ()

    def compile_operations(doc: dict[str, Any]) -> dict[str, ToolDefinition]:
        found: dict[str, ToolDefinition] = {}
        for path, item in doc.get("paths", {}).items():
            for method, op in item.items():
                properties: dict[str, Any] = {}
                required: list[str] = []
                params = []
                for p in op.get("parameters", []):
                    properties[p["name"]] = p.get("schema", {})
                    if p.get("required") or p["in"] == "path":
                        required.append(p["name"])
                    params.append(ParameterSpec(name=p["name"], location=p["in"], argument=p["name"],
                                                required=p["in"] == "path" or bool(p.get("required")),
                                                explode=p["in"] == "query"))
                body = None
                content = op.get("requestBody", {}).get("content", {})
                if "application/json" in content:
                    schema = content["application/json"]["schema"]
                    props = schema.get("properties", {})
                    properties.update(props)
                    required += schema.get("required", [])
                    body = BodySpec("application/json", True, properties=tuple((k, k) for k in props))
                input_schema = {"type": "object", "properties": properties, "required": required}
                found[op["operationId"]] = ToolDefinition(
                    name=op["operationId"], operation_id=op["operationId"], description=op.get("summary", ""),
                    input_schema=input_schema,
                    operation=Operation(method.upper(), path, tuple(params), body),
                )
        return found

    def compile_workspace(workspace: Any, base_dir: Path, *, offline: bool = False) -> WorkspaceTools:
        path = Path(base_dir) / workspace.openapi
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise WorkspaceError([(("openapi",), f"cannot load the spec: {exc}")]) from None
        operations = compile_operations(doc)
        tools, problems = [], []
        for index, entry in enumerate(workspace.tools):
            op_id = entry.operation if isinstance(entry, ToolSelection) else entry
            tool = operations.get(op_id)
            if tool is None:
                problems.append((("tools", index), f"unknown operationId '{op_id}'"))
                continue
            if isinstance(entry, ToolSelection):
                from dataclasses import replace

                tool = replace(tool, name=entry.name or tool.name, description=entry.description or tool.description)
            tools.append(tool)
        if problems:
            raise WorkspaceError(problems)
        base = workspace.base_url or doc.get("servers", [{}])[0].get("url", "")
        return WorkspaceTools(tuple(tools), base.rstrip("/"))

    module.WorkspaceError = WorkspaceError
    module.WorkspaceTools = WorkspaceTools
    module.compile_workspace = compile_workspace


# --- upstream: forwarder, response mapping, static credentials -------------------------------

def _forwarder(module: types.ModuleType) -> None:
    import aiohttp

    from castproxy.upstream.exchange import UpstreamFailure, UpstreamResponse

    class Forwarder:
        async def start(self) -> None:
            self.session = aiohttp.ClientSession(auto_decompress=True)

        async def close(self) -> None:
            await self.session.close()

        async def send(self, request: Any, *, timeout: float, max_bytes: int) -> Any:
            started = time.perf_counter()
            try:
                async with self.session.request(
                    request.method, request.url, headers=request.headers, data=request.body,
                    allow_redirects=False, timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response:
                    body = await response.content.read(max_bytes + 1)
                    return UpstreamResponse(
                        response.status, response.reason or "", {k.lower(): v for k, v in response.headers.items()},
                        body[:max_bytes], len(body) > max_bytes, request.url, time.perf_counter() - started,
                    )
            except TimeoutError:
                return UpstreamFailure("timeout", f"no answer within {timeout:g} s", time.perf_counter() - started)
            except aiohttp.ClientError as exc:
                return UpstreamFailure("connect", type(exc).__name__, time.perf_counter() - started)

    module.Forwarder = Forwarder


def _response(module: types.ModuleType) -> None:
    from castproxy.upstream.exchange import UpstreamResponse

    def to_tool_result(outcome: Any, *, max_bytes: int) -> mcp_types.CallToolResult:
        if not isinstance(outcome, UpstreamResponse):
            text = f"Upstream {outcome.kind}: {outcome.message}"
            return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=text)], is_error=True)
        text = outcome.body.decode(errors="replace")
        if outcome.status >= 400:
            message = f"Upstream answered HTTP {outcome.status} {outcome.reason}: {text[:200]}"
            return mcp_types.CallToolResult(content=[mcp_types.TextContent(type="text", text=message)], is_error=True)
        structured = None
        if outcome.content_type == "application/json":
            value = json.loads(text)
            structured = value if isinstance(value, dict) else {"result": value}
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text=text)], structured_content=structured
        )

    module.to_tool_result = to_tool_result


def _static(module: types.ModuleType) -> None:
    from castproxy.config.model import ApiKeyAuth, BearerAuth, HeadersAuth

    class StaticCredentials:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers
            self.protected_headers = frozenset(h.lower() for h in headers)

        async def apply(self, headers: dict[str, str], grant_id: str | None) -> None:
            headers.update(self.headers)

    def static_credentials(auth: Any) -> StaticCredentials:
        if isinstance(auth, BearerAuth):
            return StaticCredentials({"Authorization": f"Bearer {auth.token.get_secret_value()}"})
        if isinstance(auth, ApiKeyAuth):
            return StaticCredentials({auth.header: auth.value.get_secret_value()})
        if isinstance(auth, HeadersAuth):
            return StaticCredentials({k: v.get_secret_value() for k, v in auth.headers.items()})
        return StaticCredentials({})

    module.static_credentials = static_credentials


STANDINS = {
    "castproxy.config.loader": _config_loader,
    "castproxy.openapi.workspace": _workspace,
    "castproxy.upstream.forwarder": _forwarder,
    "castproxy.upstream.response": _response,
    "castproxy.auth.static": _static,
}


def install() -> list[str]:
    """Install a stand-in for each missing part; returns the names of those installed."""
    installed = []
    for name, fill in STANDINS.items():
        module = _module(name)
        if module is not None:
            fill(module)
            installed.append(name)
    return installed
