"""The config model (pydantic v2): the whole cast.yaml format of the product contract.

Secrets arrive resolved and are held as `SecretStr` (masked; only `.get_secret_value()` reveals them).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    StringConstraints,
    Tag,
    field_validator,
)

__all__ = [
    "ALL_OPERATIONS", "ANSWER_LOCATION_PATTERN", "HEADER_NAME_PATTERN", "SELECTOR_KEYS", "TOOL_NAME_PATTERN",
    "URL_PATTERN", "AccessRule", "AdminSettings", "ApiKeyAuth", "AuditSettings", "Auth", "BearerAuth", "Config",
    "ConnectionSettings", "ExcludeEntry", "HeadersAuth", "HttpUrlText", "IdentitySettings", "Inbound", "InboundKey",
    "LoginAuth", "NamedApiKey", "NoAuth", "OAuth2Auth", "RateLimit", "ServerSettings", "StoreSettings", "ToolEntry",
    "ToolSelection", "ToolSelector", "Workspace", "WorkspaceAudit", "parse_size",
]

SLUG_PATTERN = r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$"
TOOL_NAME_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"
HEADER_NAME_PATTERN = r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$"
URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
ANSWER_LOCATION_PATTERN = r"^(?:[^/].*|(?:/(?:[^~/]|~[01])*)+)$"

Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
HeaderName = Annotated[str, StringConstraints(pattern=HEADER_NAME_PATTERN)]
HttpUrlText = Annotated[str, StringConstraints(pattern=URL_PATTERN)]


class _Strict(BaseModel):
    # YAML reads `client_id: 12345` as a number; such values are meant as text.
    model_config = ConfigDict(extra="forbid", frozen=True, coerce_numbers_to_str=True)


class ConnectionSettings(_Strict):
    """How long a client may take to send a request, and how many connections may be open (slow clients)."""

    header_timeout: float = Field(
        10.0, gt=0, le=3600, description="Seconds (or '10s') to send the request line and headers; then 408."
    )
    body_timeout: float = Field(
        30.0, gt=0, le=3600, description="Seconds (or '30s') to send the request body once the headers are in."
    )
    keep_alive: float = Field(5.0, gt=0, le=3600, description="Seconds an idle kept-alive connection stays open.")
    max_open: int = Field(
        1000, ge=1, le=1_000_000, description="Open connections at most; one more is answered 503 and closed."
    )

    @field_validator("header_timeout", "body_timeout", "keep_alive", mode="before", json_schema_input_type=float | str)
    @classmethod
    def _durations(cls, value: object) -> object:
        return Workspace._parse_duration(value)

    @field_validator("max_open", mode="before")
    @classmethod
    def _no_boolean(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("a number of connections")
        return value


# ---- who may call what (issue 14: castproxy/access) ----------------------------------------------------
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(second|minute|hour)\s*$")
RateText = Annotated[str, StringConstraints(pattern=_RATE.pattern)]
_LIFETIME_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LONG_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
LongDurationText = Annotated[str, StringConstraints(pattern=_LONG_DURATION.pattern)]
KeyName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]


class IdentitySettings(_Strict):
    """The company's OpenID Connect provider (Okta, Entra ID, Google Workspace, Keycloak, ...)."""

    issuer: HttpUrlText = Field(
        description="The provider's issuer URL (its /.well-known/openid-configuration is read)."
    )
    client_id: str = Field(min_length=1, description="castproxy's client at the provider.")
    client_secret: SecretStr | None = Field(
        None, description="The client's secret (use ${env:NAME}); absent for a public client (PKCE only)."
    )
    scopes: list[str] = Field(
        default_factory=lambda: ["openid", "email", "profile"],
        description="Scopes asked for at sign-in; openid is always sent.",
    )
    groups_claim: str | None = Field(
        None, description="The ID token claim that lists the person's groups (e.g. groups, roles); absent: none read."
    )
    session_lifetime: float = Field(
        8 * 3600.0, ge=60, le=30 * 86400,
        description="How long one company sign-in in a browser serves further workspaces (seconds, or '8h').",
    )
    algorithms: list[str] = Field(
        default_factory=lambda: ["RS256", "PS256", "ES256", "EdDSA"],
        min_length=1,
        description="ID token signature algorithms accepted (asymmetric ones; 'none' and HMAC are never accepted).",
    )

    @field_validator("session_lifetime", mode="before", json_schema_input_type=float | LongDurationText)
    @classmethod
    def _lifetime(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("a duration like 3600, '30m', '8h' or '1d'")
        if isinstance(value, str):
            match = _LONG_DURATION.match(value)
            if not match:
                raise ValueError("a duration like 3600, '30m', '8h' or '1d'")
            return float(match.group(1)) * _LIFETIME_UNITS[match.group(2) or "s"]
        return value

    @field_validator("algorithms")
    @classmethod
    def _asymmetric(cls, value: list[str]) -> list[str]:
        allowed = {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
        wrong = [alg for alg in value if alg not in allowed]
        if wrong:
            raise ValueError(f"asymmetric JOSE algorithms only ({', '.join(sorted(allowed))}); not {', '.join(wrong)}")
        return value


class AccessRule(_Strict):
    """Who may: a caller matching any entry (an email, an email domain, a group, a subject)."""

    emails: list[str] = Field(default_factory=list, description="Email addresses (any case).")
    domains: list[str] = Field(default_factory=list, description="Email domains, e.g. corp.example (any case).")
    groups: list[str] = Field(
        default_factory=list, description="Groups from the identity provider's groups claim, or of named inbound keys."
    )
    subjects: list[str] = Field(default_factory=list, description="Subjects (`sub`) of the identity provider.")

    @field_validator("emails", "domains")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [item.strip().lower().lstrip("@") for item in value]


class RateLimit(_Strict):
    """Calls allowed per caller and for everyone together (N/second, N/minute or N/hour; N at once at most)."""

    per_caller: RateText | None = Field(
        None, description="Per caller (person, named key, or client): e.g. 10/minute."
    )
    total: RateText | None = Field(None, description="For all callers together: e.g. 1000/minute.")

    @field_validator("per_caller", "total", mode="before")
    @classmethod
    def _rate(cls, value: object) -> object:
        if value is None:
            return value
        match = _RATE.match(value) if isinstance(value, str) else None
        if match is None or int(match.group(1)) < 1:
            raise ValueError("a rate like 10/minute: N/second, N/minute or N/hour with N at least 1")
        return value


class NamedApiKey(_Strict):
    """An inbound key that is a caller of its own: policies and limits see its name and groups."""

    name: KeyName = Field(description="The caller's name in logs, limits and policies (e.g. ci-bot).")
    key: SecretStr = Field(description="The key; use ${env:NAME} or ${file:PATH}.")
    groups: list[str] = Field(default_factory=list, description="Groups the key belongs to, for `access` rules.")
    email: str | None = Field(None, description="An email address policies may match (optional).")


def _inbound_key_kind(value: object) -> str:
    return "named" if isinstance(value, dict | NamedApiKey) else "bare"


InboundKey = Annotated[
    Annotated[SecretStr, Tag("bare")] | Annotated[NamedApiKey, Tag("named")], Discriminator(_inbound_key_kind)
]


# ---- observability (issue 13): the audit trail and the admin page ------------------------------------
class AuditSettings(_Strict):
    """Where the audit trail goes: one JSON line per tool call, sign-in, revocation, reload..."""

    sink: Literal["stdout", "file", "off"] = Field(
        "stdout", description="stdout (one JSON line per record) | file (rotated by size) | off."
    )
    path: str | None = Field(None, description="sink file: the file to write, relative to this config file.")
    max_bytes: int = Field(
        100 * 2**20, ge=4096, description="sink file: size at which the file is rotated (bytes, or '100MiB')."
    )
    backups: int = Field(5, ge=0, le=1000, description="sink file: rotated files kept (FILE.1 ... FILE.N).")

    @field_validator("max_bytes", mode="before", json_schema_input_type=int | Annotated[str, StringConstraints(
        pattern=r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")])
    @classmethod
    def _parse_size(cls, value: object) -> object:
        return Workspace._parse_size(value)


class AdminSettings(_Strict):
    """The admin page at /admin: off unless this is set."""

    api_keys: list[SecretStr] = Field(
        min_length=1, description="Keys that sign in to /admin; use ${env:NAME} or ${file:PATH}."
    )


class WorkspaceAudit(_Strict):
    """What the audit trail records of this workspace's calls beyond the defaults."""

    argument_names: bool = Field(
        False, description="Record the names (never the values) of the arguments of each tool call."
    )


class ServerSettings(_Strict):
    """How the proxy listens and how clients reach it (env overrides: CASTPROXY_HOST, CASTPROXY_PORT, ...)."""

    public_url: HttpUrlText | None = Field(
        None, description="How MCP clients and browsers reach the proxy (default http://HOST:PORT)."
    )
    host: str = Field("127.0.0.1", description="Listen address.")
    port: int = Field(8080, ge=1, le=65535, description="Listen port.")
    secret_key: SecretStr | None = Field(
        None,
        description="At least 32 random characters; encryption keys are derived from it. "
        "Required once any workspace uses oauth2.",
    )
    previous_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Earlier secret keys, kept while rotating: records they encrypted stay readable; "
        "everything new is written with secret_key.",
    )
    allowed_origins: list[str] = Field(
        default_factory=list,
        description="Extra browser origins allowed to call /mcp (loopback and public_url always are).",
    )
    connections: ConnectionSettings = Field(
        default_factory=ConnectionSettings,
        description="Deadlines for slow clients and a cap on open connections.",
    )
    metrics_token: SecretStr | None = Field(
        None, description="When set, /metrics answers only `Authorization: Bearer TOKEN` (use ${env:NAME})."
    )
    identity: IdentitySettings | None = Field(
        None,
        description="Company sign-in (OpenID Connect): people sign in at this provider before any workspace's "
        "consent, and every workspace then needs a signed-in caller or an inbound key.",
    )

    @field_validator("port", mode="before")
    @classmethod
    def _no_boolean_port(cls, value: object) -> object:
        if isinstance(value, bool):  # pydantic would read `true` as port 1
            raise ValueError("a port number from 1 to 65535")
        return value

    # The reviewed tools (castproxy/gitops): what serve does when they drift.
    lock: Literal["warn", "enforce", "off"] = Field(
        "warn",
        description="When a workspace's tools differ from the lock file beside this config (cast.lock for "
        "cast.yaml): warn (log it, serve them) | enforce (keep serving the reviewed tools, else refuse "
        "the workspace) | off.",
    )

    # Observability (issue 13).
    audit: AuditSettings = Field(
        default_factory=AuditSettings, description="The audit trail: stdout (default), a rotated file, or off."
    )
    admin: AdminSettings | None = Field(
        None, description="The admin page at /admin (off unless set; needs secret_key for its session cookie)."
    )


class StoreSettings(_Strict):
    """Where pending sign-ins, registered clients and encrypted upstream tokens are kept."""

    backend: Literal["sqlite", "redis"] = Field("sqlite", description="sqlite (embedded) | redis (replicas).")
    path: str = Field("./.castproxy/state.db", description="SQLite file, relative to the config file.")
    url: SecretStr | None = Field(None, description="Redis URL, e.g. redis://127.0.0.1:6379/0.")
    # --- issue 12 (deployments): spec cache ---
    spec_cache: str | None = Field(
        None,
        description="Folder for the last good copy of each remote spec (default: spec-cache beside `path`); "
        "relative to the config file.",
    )


class NoAuth(_Strict):
    """No upstream credential."""

    type: Literal["none"] = Field(description="No credential is sent upstream.")


class BearerAuth(_Strict):
    """A fixed bearer token shared by every caller of the workspace."""

    type: Literal["bearer"] = Field(description="A fixed bearer token.")
    token: SecretStr = Field(description="Sent as `Authorization: Bearer TOKEN`.")


class ApiKeyAuth(_Strict):
    """A fixed API key sent in one header."""

    type: Literal["api_key"] = Field(description="A fixed API key in a header.")
    header: HeaderName = Field("X-Api-Key", description="Header that carries the key.")
    value: SecretStr = Field(description="The key; use ${env:NAME} or ${file:PATH}.")


class HeadersAuth(_Strict):
    """Fixed headers (treated as secrets) sent with every upstream call."""

    type: Literal["headers"] = Field(description="Fixed secret headers.")
    headers: dict[HeaderName, SecretStr] = Field(
        min_length=1, description="Header name -> value; values are secrets (use ${env:NAME} or ${file:PATH})."
    )


class OAuth2Auth(_Strict):
    """OAuth 2.0 at the upstream: each user signs in (authorization_code), or one service client."""

    type: Literal["oauth2"] = Field(description="OAuth 2.0 at the upstream.")
    provider: Literal["custom", "dcr"] = Field(
        "custom", description="custom: pre-registered client | dcr: register at the upstream."
    )
    grant: Literal["authorization_code", "client_credentials"] = Field(
        "authorization_code",
        description="authorization_code: each user signs in | client_credentials: one shared service token.",
    )
    issuer: HttpUrlText | None = Field(
        None, description="Upstream authorization server; its RFC 8414 metadata fills missing URLs."
    )
    authorization_url: HttpUrlText | None = Field(None, description="The upstream authorization endpoint.")
    token_url: HttpUrlText | None = Field(None, description="The upstream token endpoint.")
    registration_url: HttpUrlText | None = Field(None, description="dcr: the RFC 7591 registration endpoint.")
    revocation_url: HttpUrlText | None = Field(None, description="The upstream RFC 7009 revocation endpoint.")
    client_id: str | None = Field(None, description="custom: the client registered at the upstream.")
    client_secret: SecretStr | None = Field(None, description="custom: the client's secret; use ${env:NAME}.")
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] = Field(
        "client_secret_basic", description="How the client authenticates at the token endpoint."
    )
    scopes: list[str] = Field(default_factory=list, description="Scopes requested from the upstream.")
    pkce: bool = Field(True, description="Send an S256 code challenge.")
    state: bool = Field(True, description="Send and check a single-use state value.")
    audience: str | None = Field(None, description="Optional `resource`/`audience` sent to the upstream.")


# ---- auth type `login` (issue 16) ---------------------------------------------------------------------
# Where a value sits in a JSON answer: a top-level field name, or an RFC 6901 JSON pointer ("/data/token").
AnswerLocation = Annotated[str, StringConstraints(pattern=ANSWER_LOCATION_PATTERN)]
# The same text form as Workspace.timeout (defined further down, with the Workspace it belongs to).
LifetimeText = Annotated[str, StringConstraints(pattern=r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m)?\s*$")]


class LoginAuth(_Strict):
    """A login endpoint that trades credentials for a short-lived token (often a JWT), with optional refresh."""

    type: Literal["login"] = Field(description="Log in at the upstream's login endpoint and send the token it gives.")
    login_url: HttpUrlText = Field(description="The login endpoint (POST).")
    format: Literal["json", "form"] = Field(
        "json", description="Body of the login and refresh requests: json | form (application/x-www-form-urlencoded)."
    )
    credentials: dict[str, SecretStr] = Field(
        min_length=1,
        description="Body fields sent to login_url (e.g. username, password); values are secrets "
        "(use ${env:NAME} or ${file:PATH}).",
    )
    fields: dict[str, str] = Field(
        default_factory=dict, description="Extra non-secret body fields of the login request (e.g. grant_type)."
    )
    token_field: AnswerLocation | None = Field(
        None,
        description="Where the token is in the login answer: a field name or a JSON pointer (/data/token). "
        "Default: access_token, else token.",
    )
    expires_in_field: AnswerLocation = Field(
        "expires_in", description="Where the answer gives the token's lifetime in seconds (field or JSON pointer)."
    )
    token_lifetime: float | None = Field(
        None,
        ge=1,
        description="Lifetime to assume when the answer gives none and the token is not a JWT with `exp` "
        "(seconds, or '15m').",
    )
    refresh_url: HttpUrlText | None = Field(
        None, description="Optional refresh endpoint (POST); without it castproxy logs in again before expiry."
    )
    refresh_token_field: AnswerLocation = Field(
        "refresh_token", description="Where the login and refresh answers carry the refresh token."
    )
    refresh_send_as: Literal["body", "bearer"] = Field(
        "body", description="How the refresh token is sent to refresh_url: body (field refresh_body_field) | bearer."
    )
    refresh_body_field: str = Field(
        "refresh_token", min_length=1, description="refresh_send_as body: the body field carrying the refresh token."
    )
    send_as: Literal["bearer", "header"] = Field(
        "bearer", description="How the token is sent upstream: bearer (Authorization: Bearer TOKEN) | header."
    )
    header: HeaderName | None = Field(None, description="send_as header: the header that carries the token.")
    prefix: str = Field("", description="send_as header: text before the token (e.g. 'Token ').")

    @field_validator("token_lifetime", mode="before", json_schema_input_type=float | LifetimeText)
    @classmethod
    def _parse_lifetime(cls, value: object) -> object:
        return Workspace._parse_duration(value)

    @field_validator("prefix")
    @classmethod
    def _one_header_line(cls, value: str) -> str:
        if any(ord(char) < 32 or ord(char) == 127 for char in value):
            raise ValueError("text without control characters (it goes in a header)")
        return value


Auth = Annotated[
    NoAuth | BearerAuth | ApiKeyAuth | HeadersAuth | OAuth2Auth | LoginAuth,
    Field(discriminator="type"),
]


class Inbound(_Strict):
    """What callers of a shared-credential workspace must present."""

    api_keys: list[InboundKey] = Field(
        min_length=1,
        description="Keys callers send as `Authorization: Bearer KEY` or `X-API-Key: KEY`: a bare key, or "
        "{name, key, groups} for a key that is a named caller (access policies and limits apply to it).",
    )


# --- Which operations become tools (resolved against the spec by castproxy/catalog/select.py) ---------------------

ALL_OPERATIONS = "*"  # a tools entry, or the whole `tools` value: every operation of the spec
HTTP_METHODS = ("GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE")
SELECTOR_KEYS = ("tag", "path", "method")
HttpMethod = Literal["GET", "PUT", "POST", "DELETE", "OPTIONS", "HEAD", "PATCH", "TRACE"]
_MethodInAnyCase = Literal[HttpMethod, "get", "put", "post", "delete", "options", "head", "patch", "trace"]


class ToolSelection(_Strict):
    """One operation, optionally renamed or re-described."""

    operation: str = Field(description="operationId in the spec.")
    name: Annotated[str, StringConstraints(pattern=TOOL_NAME_PATTERN)] | None = Field(
        None, description="Tool name clients see (default: from the operationId); [A-Za-z0-9_.-]{1,64}."
    )
    description: str | None = Field(None, description="Tool description clients see (default: from the spec).")
    access: AccessRule | None = Field(None, description="Who may call this tool (default: whoever may connect).")
    rate_limit: RateLimit | None = Field(None, description="Limits on calls of this tool, on top of the workspace's.")


class ToolSelector(_Strict):
    """Every operation that matches all the criteria given (at least one): a tag, a path glob, a method."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1})

    tag: str | None = Field(None, description="An OpenAPI tag of the operation (any case).")
    path: str | None = Field(
        None, description="A path glob: `*` is one path segment (or part of one), `**` any number of segments, "
        "e.g. /repos/** or /users/*/repos.", json_schema_extra={"pattern": "^/"},
    )
    method: HttpMethod | None = Field(None, description="An HTTP method: GET, POST, PUT, PATCH, DELETE, ...")
    access: AccessRule | None = Field(
        None, description="Who may call the tools this selector picks (an operation's own entry wins)."
    )
    rate_limit: RateLimit | None = Field(
        None, description="Limits on calls of each tool this selector picks (an operation's own entry wins)."
    )

    @field_validator("method", mode="before", json_schema_input_type=_MethodInAnyCase | None)
    @classmethod
    def _method_in_any_case(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path_glob(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith("/"):
            raise ValueError("a path glob starting with '/', e.g. /repos/**")
        return value


def _tool_entry_kind(value: object) -> str:
    # Choose the member by shape, so a bad mapping reports the mapping's problem, not "should be a string".
    if isinstance(value, ToolSelector):
        return "selector"
    if isinstance(value, dict) and "operation" not in value and any(key in value for key in SELECTOR_KEYS):
        return "selector"
    return "selection" if isinstance(value, dict | ToolSelection) else "operation"


def _exclude_entry_kind(value: object) -> str:
    return "selector" if isinstance(value, dict | ToolSelector) else "operation"


ToolEntry = Annotated[
    Annotated[str, Tag("operation")] | Annotated[ToolSelection, Tag("selection")]
    | Annotated[ToolSelector, Tag("selector")],
    Discriminator(_tool_entry_kind),
]
ExcludeEntry = Annotated[
    Annotated[str, Tag("operation")] | Annotated[ToolSelector, Tag("selector")],
    Discriminator(_exclude_entry_kind),
]
Discovery = Literal["list", "search"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_SIZE = re.compile(r"^\s*(\d+)\s*(B|KB|KiB|MB|MiB|GB|GiB)?\s*$")
_SIZE_UNITS = {None: 1, "B": 1, "KB": 1000, "KiB": 1024, "MB": 10**6, "MiB": 2**20, "GB": 10**9, "GiB": 2**30}


def parse_size(text: str) -> int:
    """`'64KiB'` -> 65536 (units B, KB, KiB, MB, MiB, GB, GiB; none means bytes); ValueError otherwise."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError("a size like 1048576, '512KiB' or '1MiB'")
    return int(match.group(1)) * _SIZE_UNITS[match.group(2)]


DurationText = Annotated[str, StringConstraints(pattern=_DURATION.pattern)]
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_MAX_REFRESH = 7 * 24 * 3600


def _seconds(text: str) -> float:
    match = _DURATION.match(text)
    assert match is not None
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2) or "s"]
SizeText = Annotated[str, StringConstraints(pattern=_SIZE.pattern)]


class Workspace(_Strict):
    """One upstream API served as one MCP endpoint at /mcp/WORKSPACE."""

    description: str | None = Field(None, description="What the API is for (shown to MCP clients).")
    openapi: str = Field(description="URL of the OpenAPI document, or a path relative to this file.")
    base_url: HttpUrlText | None = Field(None, description="Upstream base URL (default: the spec's first server).")
    auth: Auth = Field(
        default_factory=lambda: NoAuth(type="none"), description="How the proxy authenticates to the upstream."
    )
    inbound: Inbound | None = Field(
        None, description="Keys callers must present (for workspaces whose upstream credential is shared)."
    )
    tools: list[ToolEntry] = Field(
        min_length=1,
        description="Operations to expose: operationIds (a mapping may rename one), selectors (tag, path glob, "
        "method), or '*' for all of them.",
    )
    exclude: list[ExcludeEntry] = Field(
        default_factory=list,
        description="Operations the selectors in `tools` must leave out: operationIds or selectors.",
    )
    discovery: Discovery = Field(
        "list", description="list: tools/list shows every tool | search: three meta-tools to search, describe and call."
    )
    timeout: float = Field(30.0, gt=0, le=3600, description="Seconds (or '500ms', '30s', '2m') per upstream call.")
    max_response_bytes: int = Field(2**20, ge=1024, description="Upstream body cap (bytes, or '1MiB').")
    output_schema: bool = Field(False, description="Publish output schemas from the spec's 2xx JSON response.")
    headers: dict[HeaderName, str] = Field(default_factory=dict, description="Extra non-secret upstream headers.")
    # Issue 10 (bounded tool schemas): the byte budget of each tool's input and output schema.
    max_schema_bytes: int = Field(
        32 * 1024, ge=1024, description="Largest tool schema, compact JSON (bytes, or '64KiB'); beyond it "
        "deep parts are collapsed into permissive schemas.",
    )
    audit: WorkspaceAudit | None = Field(
        None, description="Audit options of this workspace, e.g. {argument_names: true}."
    )
    # --- issue 12 (deployments): background spec refresh ---
    refresh: float | None = Field(
        None, ge=1, le=_MAX_REFRESH,
        description="Re-fetch a remote spec this often ('10m', '1h', or seconds) and serve it when it changed; "
        "default: only at start, on a config change or SIGHUP.",
    )

    @field_validator("refresh", mode="before", json_schema_input_type=float | DurationText | None)
    @classmethod
    def _parse_refresh(cls, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, bool) or (isinstance(value, str) and not _DURATION.match(value)):
            raise ValueError("a duration like '10m', '1h', '30s' or 600 (seconds)")
        seconds = _seconds(value) if isinstance(value, str) else value
        if isinstance(seconds, int | float) and not 1 <= seconds <= _MAX_REFRESH:
            raise ValueError("a duration from 1 second to 7 days, like '10m' or '1h'")
        return seconds
    access: AccessRule | None = Field(
        None, description="Who may connect (emails, domains, groups, subjects); absent: everyone who can sign in."
    )
    rate_limit: RateLimit | None = Field(None, description="Tool calls allowed per caller and in total.")

    @field_validator(
        "tools", mode="before", json_schema_input_type=Annotated[list[ToolEntry], Field(min_length=1)] | Literal["*"]
    )
    @classmethod
    def _all_operations_shorthand(cls, value: object) -> object:
        return [ALL_OPERATIONS] if value == ALL_OPERATIONS else value  # `tools: "*"` means `tools: ["*"]`

    @field_validator("exclude")
    @classmethod
    def _exclude_names_operations(cls, value: list[str | ToolSelector]) -> list[str | ToolSelector]:
        if ALL_OPERATIONS in value:
            raise ValueError("operationIds or selectors; '*' would exclude every operation")
        return value

    @field_validator("timeout", mode="before", json_schema_input_type=float | DurationText)
    @classmethod
    def _parse_duration(cls, value: object) -> object:
        if isinstance(value, bool):  # pydantic would read `true` as 1 second
            raise ValueError("a duration like 30, '30s', '500ms' or '2m'")
        if isinstance(value, str):
            match = _DURATION.match(value)
            if not match:
                raise ValueError("a duration like 30, '30s', '500ms' or '2m'")
            return _seconds(value)
        return value

    @field_validator("max_response_bytes", "max_schema_bytes", mode="before", json_schema_input_type=int | SizeText)
    @classmethod
    def _parse_size(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("a size like 1048576, '512KiB' or '1MiB'")
        if isinstance(value, str):
            return parse_size(value)
        return value


class Config(_Strict):
    """cast.yaml: which REST APIs become MCP servers, how they authenticate upstream, which tools they expose."""

    version: Literal[1] = Field(description="Config format version; always 1.")
    server: ServerSettings = Field(default_factory=ServerSettings, description="How the proxy listens and is reached.")
    store: StoreSettings = Field(default_factory=StoreSettings, description="Where sign-ins and tokens are kept.")
    workspaces: dict[Slug, Workspace] = Field(
        min_length=1, description="Workspace name (a URL slug) -> one upstream API served at /mcp/NAME."
    )

    @field_validator("version", mode="before")
    @classmethod
    def _version_as_text(cls, value: object) -> object:
        return 1 if value == "1" else value  # `version: "1"` means the same
