"""One immutable compiled config: everything a tool call needs, built completely before it is served.

`build_snapshot` runs off the event loop (it may read files and fetch specs). It compiles every
workspace, builds one argument validator per tool (and an output validator per tool that publishes
an output schema), resolves static credentials, derives each workspace's request target (base URL,
pinned query, headers) and prebuilds the `tools/list` answer, or raises `ConfigError` naming
FILE:LINE:COL for every problem. The serving layer swaps a finished snapshot in with one
assignment; a call keeps the snapshot it started with.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import mcp_types

from castproxy.auth.credentials import UpstreamCredentials
from castproxy.auth.login import login_protected_headers
from castproxy.auth.static import static_credentials
from castproxy.catalog import meta
from castproxy.catalog.index import SearchIndex, index_for
from castproxy.config.model import LoginAuth, OAuth2Auth, Workspace
from castproxy.config.problems import ConfigError, Problem
from castproxy.gitops.drift import DriftReport, LockGuard
from castproxy.openapi.model import ToolDefinition
from castproxy.openapi.workspace import WorkspaceError, compile_workspace
from castproxy.serve.inbound import hash_key
from castproxy.serve.origins import OriginPolicy
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.output import OutputValidator
from castproxy.upstream.redact import configured_secrets, secret_forms
from castproxy.upstream.request import RequestTarget

if TYPE_CHECKING:
    from castproxy.config.loader import LoadedConfig


@dataclass(frozen=True, slots=True)
class ToolRuntime:
    definition: ToolDefinition
    validator: ArgumentValidator
    output: OutputValidator | None = None  # only for tools publishing an output schema (output_schema: true)


@dataclass(frozen=True, slots=True)
class WorkspaceRuntime:
    name: str
    tools: Mapping[str, ToolRuntime]
    listing: Mapping[str, Any]  # the wire form of tools/list, built once per snapshot
    base_url: str
    credentials: UpstreamCredentials
    timeout: float
    max_response_bytes: int
    extra_headers: Mapping[str, str]
    protected_headers: frozenset[str]
    inbound_key_hashes: tuple[bytes, ...] = ()  # sha256 digests of inbound.api_keys
    sign_in: bool = False  # oauth2 authorization_code: each caller authenticates through the AuthBridge
    oauth: OAuth2Auth | None = None
    login: LoginAuth | None = None  # auth.type login: a token from the upstream's login endpoint, via the AuthBridge
    search: SearchIndex | None = None  # discovery: search (then `listing` holds the three meta-tools)
    secrets: tuple[bytes, ...] = ()  # every secret in the config, as masked in tool results (upstream/redact.py)
    # Derived from base_url, extra_headers and protected_headers once, not on every call.
    target: RequestTarget = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", RequestTarget.of(self.base_url, self.extra_headers, self.protected_headers))


@dataclass(frozen=True, slots=True)
class Snapshot:
    loaded: LoadedConfig
    workspaces: Mapping[str, WorkspaceRuntime]
    origins: OriginPolicy
    loaded_at: float = field(default_factory=time.time)
    drift: DriftReport | None = None  # the workspaces against the lock file (None: no lock, or server.lock off)
    unavailable: Mapping[str, str] = field(default_factory=dict)  # refused workspace -> why (answered with 503)

    def oauth_workspaces(self) -> dict[str, OAuth2Auth]:
        return {name: ws.oauth for name, ws in self.workspaces.items() if ws.oauth is not None}

    def login_workspaces(self) -> dict[str, LoginAuth]:
        return {name: ws.login for name, ws in self.workspaces.items() if ws.login is not None}
    def oauth_base_urls(self) -> dict[str, str]:
        """The base URL of each oauth2 workspace: its upstream grants are bound to it (AuthBridge.update)."""
        return {name: ws.base_url for name, ws in self.workspaces.items() if ws.oauth is not None}


class CredentialsUnavailable(Exception):
    """An oauth2 workspace while the proxy has no OAuth support (no secret key, or the bridge is missing)."""


class BridgeCredentials:
    """Credentials of an oauth2 workspace, looked up in the AuthBridge at call time.

    The bridge keeps one UpstreamOAuth per workspace across reloads (tokens and refresh locks live
    there), so the snapshot holds this small pointer rather than the client itself.
    """

    protected_headers = frozenset({"authorization"})

    def __init__(self, bridge: Any, workspace: str, protected_headers: frozenset[str] | None = None) -> None:
        self._bridge = bridge
        self._workspace = workspace
        if protected_headers is not None:  # login workspaces may send their token in another header
            self.protected_headers = protected_headers

    async def apply(self, headers: dict[str, str], grant_id: str | None, *, refused: str | None = None) -> None:
        if self._bridge is None:
            raise CredentialsUnavailable("upstream OAuth is not available on this proxy (server.secret_key not set)")
        await self._bridge.credentials_for(self._workspace).apply(headers, grant_id, refused=refused)


def _listing(tools: tuple[ToolDefinition, ...]) -> dict[str, Any]:
    """The tools/list result in wire form (ttlMs 0, private: clients must not cache across reloads)."""
    result = mcp_types.ListToolsResult(
        tools=[
            mcp_types.Tool(
                name=tool.name,
                title=tool.title,
                description=tool.description,
                input_schema=tool.input_schema,
                output_schema=tool.output_schema,
                annotations=mcp_types.ToolAnnotations(**tool.annotations) if tool.annotations else None,
            )
            for tool in tools
        ]
    )
    return result.model_dump(by_alias=True, mode="json", exclude_none=True)


def _build_workspace(
    name: str, workspace: Workspace, compiled: Any, bridge: Any, secrets: tuple[bytes, ...] = ()
) -> WorkspaceRuntime:
    tools = {
        tool.name: ToolRuntime(
            tool,
            ArgumentValidator(tool.input_schema),
            OutputValidator(tool.output_schema) if tool.output_schema is not None else None,
        )
        for tool in compiled.tools
    }
    auth = workspace.auth
    oauth = auth if isinstance(auth, OAuth2Auth) else None
    login = auth if isinstance(auth, LoginAuth) else None
    credentials: UpstreamCredentials
    if isinstance(auth, OAuth2Auth):
        credentials = BridgeCredentials(bridge, name)
    elif isinstance(auth, LoginAuth):
        credentials = BridgeCredentials(bridge, name, login_protected_headers(auth))
    else:
        credentials = static_credentials(auth)
    keys = workspace.inbound.api_keys if workspace.inbound else []
    listing, search = _discovery(name, workspace, compiled)
    return WorkspaceRuntime(
        name=name,
        tools=MappingProxyType(tools),
        listing=MappingProxyType(listing),
        base_url=compiled.base_url,
        credentials=credentials,
        timeout=workspace.timeout,
        max_response_bytes=workspace.max_response_bytes,
        extra_headers=MappingProxyType(dict(workspace.headers)),
        protected_headers=frozenset(h.lower() for h in credentials.protected_headers),
        inbound_key_hashes=tuple(hash_key(key.get_secret_value()) for key in keys),
        sign_in=oauth is not None and oauth.grant == "authorization_code",
        oauth=oauth,
        login=login,
        search=search,
        secrets=secrets,
    )


# -- discovery: search (castproxy/catalog) ---------------------------------------------------------

def _discovery(name: str, workspace: Workspace, compiled: Any) -> tuple[dict[str, Any], SearchIndex | None]:
    """The tools/list answer and, in search mode, the operations' index (built here, off the event loop)."""
    if workspace.discovery != "search":
        return _listing(compiled.tools), None
    api = workspace.description or (compiled.spec.title if compiled.spec is not None else "") or name
    result = mcp_types.ListToolsResult(tools=meta.listing_tools(api, len(compiled.tools)))
    return result.model_dump(by_alias=True, mode="json", exclude_none=True), index_for(compiled.tools)


def _in_workspace(name: str, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return loc if loc[:1] == ("workspaces",) else ("workspaces", name, *loc)


def _rebuild(
    loaded: LoadedConfig,
    name: str,
    workspace: Workspace,
    bridge: Any,
    secrets: tuple[bytes, ...],
    document: dict[str, Any],
) -> WorkspaceRuntime:
    """The workspace built from a given spec document (the lock guard's reviewed copy)."""
    compiled = compile_workspace(workspace, loaded.base_dir, name=name, document=document)
    return _build_workspace(name, workspace, compiled, bridge, secrets)


def build_snapshot(
    loaded: LoadedConfig, *, bridge: Any = None, offline: bool = False, previous: Snapshot | None = None
) -> Snapshot:
    """Compile the whole config or raise ConfigError with every problem found (nothing half-built).

    `previous` is the snapshot being served, if any: under `server.lock: enforce` a workspace whose
    tools drifted from the lock keeps the previous snapshot's reviewed tools."""
    problems: list[Problem] = []
    workspaces: dict[str, WorkspaceRuntime] = {}
    guard = LockGuard.for_config(loaded)
    secrets = secret_forms(configured_secrets(loaded.config))
    for name, workspace in loaded.config.workspaces.items():
        try:
            compiled = compile_workspace(workspace, loaded.base_dir, offline=offline, name=name)
            runtime = _build_workspace(name, workspace, compiled, bridge, secrets)
            served: WorkspaceRuntime | None = runtime
            if guard is not None:  # the lock file's review (castproxy.gitops.drift) may hold the workspace back
                rebuild = functools.partial(_rebuild, loaded, name, workspace, bridge, secrets)
                served = guard.review(name, workspace, runtime, previous, rebuild)
            if served is not None:
                workspaces[name] = served
        except WorkspaceError as exc:
            problems.extend(loaded.problem(_in_workspace(name, loc), message) for loc, message in exc.problems)
        except ConfigError as exc:
            problems.extend(exc.problems)
        except Exception as exc:  # a part we call failed unexpectedly: still a rejected config, not a crash
            problems.append(loaded.problem(("workspaces", name), f"cannot build this workspace: {exc}"))
    if problems:
        raise ConfigError(problems)
    return Snapshot(
        loaded=loaded,
        workspaces=MappingProxyType(workspaces),
        origins=OriginPolicy.from_settings(loaded.public_url, loaded.config.server.allowed_origins),
        drift=guard.report() if guard is not None else None,
        unavailable=MappingProxyType(dict(guard.unavailable) if guard is not None else {}),
    )
