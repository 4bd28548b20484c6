"""One immutable compiled config: everything a tool call needs, built completely before it is served.

`build_snapshot` runs off the event loop and builds each workspace on its own: one that does not build
serves its cached spec, its previous version ("stale") or a 503 placeholder ("degraded").
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

import mcp_types

from castproxy.access.build import access_parts, hash_key, key_text
from castproxy.access.limits import WorkspaceLimits
from castproxy.access.policy import Caller, Rule, WorkspaceAccess
from castproxy.auth.bridge import AuthBridge
from castproxy.auth.credentials import UpstreamCredentials
from castproxy.auth.login import login_protected_headers
from castproxy.auth.static import static_credentials
from castproxy.catalog import meta
from castproxy.catalog.index import SearchIndex, index_for
from castproxy.config.model import IdentitySettings, LoginAuth, NoAuth, OAuth2Auth, Workspace
from castproxy.config.problems import ConfigError, Problem
from castproxy.gitops.drift import DriftReport, LockGuard
from castproxy.openapi.loader import SpecError, is_url
from castproxy.openapi.model import ToolDefinition
from castproxy.openapi.spec_cache import SpecFetcher
from castproxy.openapi.workspace import WorkspaceError, WorkspaceTools, compile_workspace
from castproxy.origins import OriginPolicy
from castproxy.serve import ServeError
from castproxy.serve.discovery import IssuerCheck
from castproxy.upstream.arguments import ArgumentValidator
from castproxy.upstream.output import OutputValidator
from castproxy.upstream.redact import configured_secrets, secret_forms
from castproxy.upstream.request import RequestTarget

if TYPE_CHECKING:
    from castproxy.config.loader import LoadedConfig

__all__ = [
    "CredentialsUnavailable", "Snapshot", "ToolRuntime", "WorkspaceRuntime", "WorkspaceStatus", "build_snapshot",
]


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
    unavailable: str | None = None  # a degraded workspace's placeholder: why it cannot serve (no tools)
    # Who may call what (castproxy/access, issue 14); None / empty when the workspace sets none of it.
    access: WorkspaceAccess | None = None
    limits: WorkspaceLimits | None = None
    key_callers: Mapping[bytes, Caller] = field(default_factory=dict)  # named inbound key digest -> its caller
    # Derived from base_url, extra_headers and protected_headers once, not on every call.
    target: RequestTarget = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "target", RequestTarget.of(self.base_url, self.extra_headers, self.protected_headers))


WorkspaceState = Literal["serving", "stale", "degraded"]


@dataclass(frozen=True, slots=True)
class WorkspaceStatus:
    """How one workspace of the config fares in this snapshot (for /readyz, the logs and the retries).

    serving: built from this config (its spec maybe from the disk cache: `cached_at`); stale: this
    config's version failed, the previous one keeps serving; degraded: nothing serves. `problems` say
    why (also for a serving workspace whose spec came from the cache)."""

    state: WorkspaceState
    config: Workspace  # the config this status is about (an edit of the workspace is a new attempt)
    problems: tuple[Problem, ...] = ()
    since: float = field(default_factory=time.time)  # when it entered this state
    spec_url: str | None = None  # the remote spec URL (None for a spec file)
    spec_digest: str | None = None  # digest of the remote bytes the serving version was built from
    cached_at: float | None = None  # the spec came from the disk cache, stored then

    @property
    def needs_retry(self) -> bool:
        """Not serving its config from a spec fetched now: retried in the background."""
        return self.state != "serving" or self.cached_at is not None


@dataclass(frozen=True, slots=True)
class Snapshot:
    loaded: LoadedConfig
    workspaces: Mapping[str, WorkspaceRuntime]  # a degraded workspace is a placeholder (`unavailable` set)
    origins: OriginPolicy
    loaded_at: float = field(default_factory=time.time)
    drift: DriftReport | None = None  # the workspaces against the lock file (None: no lock, or server.lock off)
    unavailable: Mapping[str, str] = field(default_factory=dict)  # refused by the lock -> why (answered with 503)
    status: Mapping[str, WorkspaceStatus] = field(default_factory=lambda: MappingProxyType({}))

    def oauth_workspaces(self) -> dict[str, OAuth2Auth]:
        return {name: ws.oauth for name, ws in self.workspaces.items() if ws.oauth is not None}

    def serving(self) -> list[str]:
        """Names of the workspaces that answer tool calls (serving or stale)."""
        return sorted(name for name, ws in self.workspaces.items() if ws.unavailable is None)

    def login_workspaces(self) -> dict[str, LoginAuth]:
        return {name: ws.login for name, ws in self.workspaces.items() if ws.login is not None}
    def identity_workspaces(self) -> list[str]:
        """Shared-credential workspaces whose callers sign in at castproxy (server.identity is set)."""
        return [name for name, ws in self.workspaces.items()
                if ws.sign_in and not (ws.oauth is not None and ws.oauth.grant == "authorization_code")]

    def connect_rules(self) -> dict[str, Rule | None]:
        return {name: ws.access.connect if ws.access else None for name, ws in self.workspaces.items()}

    def oauth_base_urls(self) -> dict[str, str]:
        """The base URL of each oauth2 workspace: its upstream grants are bound to it (AuthBridge.update)."""
        return {name: ws.base_url for name, ws in self.workspaces.items() if ws.oauth is not None}


class CredentialsUnavailable(ServeError):
    """An oauth2 workspace while the proxy has no OAuth support (no secret key, or the bridge is missing)."""


class BridgeCredentials:
    """Credentials of an oauth2 workspace, looked up in the AuthBridge at call time.

    The bridge keeps one UpstreamOAuth per workspace across reloads (tokens and refresh locks live
    there), so the snapshot holds this small pointer rather than the client itself.
    """

    protected_headers = frozenset({"authorization"})

    def __init__(
        self, bridge: AuthBridge | None, workspace: str, protected_headers: frozenset[str] | None = None
    ) -> None:
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
    name: str, workspace: Workspace, compiled: WorkspaceTools, bridge: AuthBridge | None,
    secrets: tuple[bytes, ...] = (), identity: IdentitySettings | None = None,
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
    policy = access_parts(workspace, compiled.picked, identity)
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
        inbound_key_hashes=tuple(hash_key(key_text(key)) for key in keys),
        sign_in=(oauth is not None and oauth.grant == "authorization_code") or identity is not None,
        oauth=oauth,
        login=login,
        search=search,
        secrets=secrets,
        **policy,
    )


# -- discovery: search (castproxy/catalog) ---------------------------------------------------------

def _discovery(name: str, workspace: Workspace, compiled: Any) -> tuple[dict[str, Any], SearchIndex | None]:
    """The tools/list answer and, in search mode, the operations' index (built here, off the event loop)."""
    if workspace.discovery != "search":
        return _listing(compiled.tools), None
    api = workspace.description or (compiled.spec.title if compiled.spec is not None else "") or name
    result = mcp_types.ListToolsResult(tools=meta.listing_tools(api, len(compiled.tools)))
    return result.model_dump(by_alias=True, mode="json", exclude_none=True), index_for(compiled.tools)


def _placeholder(name: str, workspace: Workspace, problems: tuple[Problem, ...]) -> WorkspaceRuntime:
    """A degraded workspace: no tools, nothing sent upstream; its inbound keys still gate the 503."""
    reason = problems[0].message if problems else "it could not be built"
    if len(problems) > 1:
        reason += f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''})"
    keys = workspace.inbound.api_keys if workspace.inbound else []
    return WorkspaceRuntime(
        name=name,
        tools=MappingProxyType({}),
        listing=MappingProxyType(_listing(())),
        base_url="",
        credentials=static_credentials(NoAuth(type="none")),
        timeout=workspace.timeout,
        max_response_bytes=workspace.max_response_bytes,
        extra_headers=MappingProxyType({}),
        protected_headers=frozenset(),
        inbound_key_hashes=tuple(hash_key(key_text(key)) for key in keys),
        unavailable=reason,
    )


def _in_workspace(name: str, loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    return loc if loc[:1] == ("workspaces",) else ("workspaces", name, *loc)


def _rebuild(
    loaded: LoadedConfig,
    name: str,
    workspace: Workspace,
    bridge: AuthBridge | None,
    secrets: tuple[bytes, ...],
    document: dict[str, Any],
) -> WorkspaceRuntime:
    """The workspace built from a given spec document (the lock guard's reviewed copy)."""
    compiled = compile_workspace(workspace, loaded.base_dir, name=name, document=document)
    return _build_workspace(name, workspace, compiled, bridge, secrets, loaded.config.server.identity)


Built = tuple[WorkspaceRuntime, WorkspaceStatus] | None  # None: refused by the lock (Snapshot.unavailable)


class _Builder:
    """One build: shared spec fetches and issuer lookups, the lock's review, the previous snapshot to fall back on."""

    def __init__(
        self,
        loaded: LoadedConfig,
        bridge: AuthBridge | None,
        offline: bool,
        previous: Snapshot | None,
        fetcher: SpecFetcher,
        guard: LockGuard | None,
    ) -> None:
        self.loaded = loaded
        self.bridge = bridge
        self.offline = offline
        self.previous = previous
        self.fetcher = fetcher
        self.guard = guard
        self.secrets = secret_forms(configured_secrets(loaded.config))
        self.issuers = IssuerCheck()

    def build(self, name: str, workspace: Workspace) -> Built:
        url = workspace.openapi if is_url(workspace.openapi) else None
        if url:
            with contextlib.suppress(SpecError):  # fetched once here; compiling reads the same result
                self.fetcher(url)
            same = self._unchanged(name, workspace, url)
            if same is not None:
                return same
        runtime, problems = self._attempt(name, workspace, self.fetcher)
        if runtime is not None:
            if url:
                self.fetcher.commit(url)
            return self._reviewed(name, workspace, runtime, self._serving(name, workspace, url))
        # This config's version does not build. Try, in order: the last good copy of the spec on disk,
        # the previous version of the workspace, nothing.
        copy = self.fetcher.cached_copy(url) if url else None
        if copy is not None:
            runtime, _ = self._attempt(name, workspace, lambda _: copy)
            if runtime is not None:
                cached = self.fetcher.cache.get(url) if self.fetcher.cache and url else None
                cached_at = cached.stored_at if cached else time.time()
                notes = (*problems, self._problem(name, ("openapi",), "serving the copy of the spec cached at "
                                                                      f"{_iso(cached_at)}"))
                digest = cached.digest if cached else None
                status = self._status("serving", name, workspace, notes, url, digest, cached_at)
                return self._reviewed(name, workspace, runtime, status)
        before = self.previous.workspaces.get(name) if self.previous is not None else None
        if before is not None and before.unavailable is None:
            old = self.previous.status.get(name) if self.previous is not None else None
            return before, self._status("stale", name, workspace, problems, url, old.spec_digest if old else None,
                                        old.cached_at if old else None)
        return _placeholder(name, workspace, problems), self._status("degraded", name, workspace, problems, url)

    def _serving(self, name: str, workspace: Workspace, url: str | None) -> WorkspaceStatus:
        outcome = self.fetcher.outcome(url) if url else None
        cached_at = outcome.cached_at if outcome is not None and outcome.source == "cache" else None
        notes = (self._problem(name, ("openapi",), f"{outcome.error}; serving the copy cached at "
                                                    f"{_iso(cached_at)}"),) if outcome and cached_at else ()
        return self._status("serving", name, workspace, notes, url, outcome.digest if outcome else None, cached_at)

    def _reviewed(self, name: str, workspace: Workspace, runtime: WorkspaceRuntime, status: WorkspaceStatus) -> Built:
        """What the lock file lets this workspace serve (the compiled tools, the reviewed ones, or nothing)."""
        if self.guard is None:
            return runtime, status
        rebuild = functools.partial(_rebuild, self.loaded, name, workspace, self.bridge, self.secrets)
        served = self.guard.review(name, workspace, runtime, self.previous, rebuild)
        return None if served is None else (served, status)

    def _unchanged(self, name: str, workspace: Workspace, url: str) -> tuple[WorkspaceRuntime, WorkspaceStatus] | None:
        """The previous runtime, when neither the workspace's config nor its spec bytes changed: a reload,
        retry or refresh then costs a conditional fetch, not a rebuild of every tool's validators. Not
        under a lock file, whose review of each build is what /readyz reports."""
        if self.previous is None or self.guard is not None:
            return None
        old, before = self.previous.status.get(name), self.previous.workspaces.get(name)
        outcome = self.fetcher.outcome(url)
        if (old is None or before is None or before.unavailable is not None or old.state != "serving"
                or old.config != workspace or outcome is None or outcome.digest != old.spec_digest):
            return None
        self.fetcher.commit(url)
        return before, self._serving(name, workspace, url)

    def _attempt(
        self, name: str, workspace: Workspace, fetcher: Callable[[str], bytes]
    ) -> tuple[WorkspaceRuntime | None, tuple[Problem, ...]]:
        loaded = self.loaded
        try:
            compiled: WorkspaceTools = compile_workspace(
                workspace, loaded.base_dir, offline=self.offline, name=name, fetcher=fetcher
            )
            if isinstance(workspace.auth, OAuth2Auth) and not self.offline:
                found = self.issuers.problems(workspace.auth, ("workspaces", name))
                if found:
                    return None, tuple(loaded.problem(loc, message) for loc, message in found)
            return _build_workspace(
                name, workspace, compiled, self.bridge, self.secrets, loaded.config.server.identity
            ), ()
        except WorkspaceError as exc:
            return None, tuple(loaded.problem(_in_workspace(name, loc), message) for loc, message in exc.problems)
        except ConfigError as exc:
            return None, tuple(exc.problems)
        except Exception as exc:  # a part we call failed unexpectedly: this workspace's problem, not a crash
            return None, (loaded.problem(("workspaces", name), f"cannot build this workspace: {exc}"),)

    def _problem(self, name: str, loc: tuple[str | int, ...], message: str) -> Problem:
        return self.loaded.problem(("workspaces", name, *loc), message)

    def _status(
        self,
        state: WorkspaceState,
        name: str,
        workspace: Workspace,
        problems: tuple[Problem, ...],
        url: str | None,
        digest: str | None = None,
        cached_at: float | None = None,
    ) -> WorkspaceStatus:
        old = self.previous.status.get(name) if self.previous is not None else None
        since = old.since if old is not None and old.state == state and state != "serving" else time.time()
        return WorkspaceStatus(state, workspace, problems, since, url, digest, cached_at)


def _iso(timestamp: float | None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp or 0))


def build_snapshot(
    loaded: LoadedConfig,
    *,
    bridge: AuthBridge | None = None,
    offline: bool = False,
    previous: Snapshot | None = None,
    fetcher: SpecFetcher | None = None,
    only: Collection[str] | None = None,
) -> Snapshot:
    """Compile the config's workspaces, each on its own (docs/architecture.md, "Module notes"); never half-built.

    Raises ConfigError only for what concerns the whole config (under `server.lock: enforce`, a lock
    that cannot be read). `previous` is the snapshot being served: the fallback for a workspace that
    does not build, and the lock guard's source of reviewed tools. With `only`, the other workspaces
    keep their runtime and status from `previous` (a retry or a spec refresh of some workspaces).
    `fetcher` gets remote specs (default: plain fetches, no cache)."""
    guard = LockGuard.for_config(loaded)
    builder = _Builder(loaded, bridge, offline, previous, fetcher or SpecFetcher(None), guard)
    workspaces: dict[str, WorkspaceRuntime] = {}
    status: dict[str, WorkspaceStatus] = {}
    refused: dict[str, str] = {}
    for name, workspace in loaded.config.workspaces.items():
        if only is not None and name not in only and previous is not None:
            if name in previous.status and name in previous.workspaces:
                workspaces[name], status[name] = previous.workspaces[name], previous.status[name]
                continue
            if name in previous.unavailable:
                refused[name] = previous.unavailable[name]
                continue
        built = builder.build(name, workspace)
        if built is None:
            refused[name] = guard.unavailable[name] if guard is not None else "refused"
            continue
        workspaces[name], status[name] = built
    drift = guard.report() if guard is not None else None
    if guard is not None and only is not None and previous is not None and previous.drift is not None:
        drift = previous.drift  # a partial build reviewed only some workspaces: keep the whole report
    return Snapshot(
        loaded=loaded,
        workspaces=MappingProxyType(workspaces),
        origins=OriginPolicy.from_settings(loaded.public_url, loaded.config.server.allowed_origins),
        drift=drift,
        unavailable=MappingProxyType(refused),
        status=MappingProxyType(status),
    )
