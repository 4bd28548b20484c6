"""Checks that span several fields, and the warnings `validate` prints.

They read the resolved plain data, not the model, so they run even when another part has a type error.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from castproxy.config.messages import Located
from castproxy.config.problems import Severity
from castproxy.config.source import Loc

__all__ = ["SecretOrigins", "check", "secret_paths"]

MIN_SECRET_KEY_LENGTH = 32
SECRET_KEY_HINT = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
_LITERAL_HINT = "use ${env:NAME} or ${file:PATH} so the secret stays out of the file (and out of git)"


@dataclass(frozen=True)
class Finding:
    located: Located
    severity: Severity = "error"


@dataclass
class SecretOrigins:
    """Where string values came from: `${...}` references, `:-default` fallbacks, env overrides."""

    referenced: set[Loc] = field(default_factory=set)
    defaults: dict[Loc, tuple[str, ...]] = field(default_factory=dict)
    environment: dict[Loc, str] = field(default_factory=dict)  # path -> CASTPROXY_* variable


def check(data: Any, origins: SecretOrigins, line_of: Callable[[Loc], int]) -> list[Finding]:
    if not isinstance(data, dict):
        return []
    findings: list[Finding] = []
    server = _mapping(data.get("server"))
    findings += _secret_key(server, origins)
    findings += _store(_mapping(data.get("store")))
    workspaces = _mapping(data.get("workspaces"))
    has_secret_key = isinstance(server.get("secret_key"), str) and bool(server["secret_key"])
    for name, workspace in workspaces.items():
        if not isinstance(workspace, dict):
            continue
        base: Loc = ("workspaces", name)
        auth = _mapping(workspace.get("auth"))
        if auth.get("type") == "oauth2":
            findings += _oauth2(base, auth, has_secret_key)
        elif auth.get("type") == "login":
            findings += _login(base, auth, has_secret_key)
        findings += _tool_names(base, workspace.get("tools"), line_of, origins)
        findings += _exposure(base, workspace, auth, server)
        findings += _base_url_userinfo(base, workspace.get("base_url"))
        findings += _refresh_of_a_file(base, workspace)
    findings += _public_url(server, workspaces)
    findings += _admin(server, has_secret_key)
    findings += _identity(server, workspaces, has_secret_key)
    findings += _literal_secrets(data, origins)
    return findings


def _refresh_of_a_file(base: Loc, workspace: dict[str, Any]) -> Iterator[Finding]:
    openapi = workspace.get("openapi")
    if workspace.get("refresh") is not None and isinstance(openapi, str) and not openapi.lower().startswith(
        ("http://", "https://")
    ):
        yield Finding(Located((*base, "refresh"), "`refresh` applies to a spec URL; a spec file is watched and "
                              "reloads when it changes, so remove `refresh` here", key=True), "warning")


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _secret_key(server: dict[str, Any], origins: SecretOrigins) -> Iterator[Finding]:
    key = server.get("secret_key")
    if isinstance(key, str) and len(key) < MIN_SECRET_KEY_LENGTH:
        source = origins.environment.get(("server", "secret_key"))
        named = f"`secret_key` (from {source})" if source else "`secret_key`"
        yield Finding(Located(("server", "secret_key"), f"{named} must be at least 32 characters; {SECRET_KEY_HINT}"))
    previous = server.get("previous_secret_keys")
    for index, old in enumerate(previous if isinstance(previous, list) else []):
        if isinstance(old, str) and len(old) < MIN_SECRET_KEY_LENGTH:
            yield Finding(Located(("server", "previous_secret_keys", index),
                                  "a previous secret key must be at least 32 characters, like `secret_key`"))


def _admin(server: dict[str, Any], has_secret_key: bool) -> Iterator[Finding]:
    """The admin page signs its session cookie with keys derived from the secret key; a file trail needs a path."""
    audit = _mapping(server.get("audit"))
    if audit.get("sink") == "file" and not audit.get("path"):
        yield Finding(Located(("server", "audit", "sink"), "the file sink needs `path`: the audit file to write "
                              "(e.g. path: ./audit/castproxy.jsonl)"))
    if isinstance(server.get("admin"), dict) and not has_secret_key:
        yield Finding(Located(("server", "admin"), "`server.admin` needs `server.secret_key` (the admin session "
                              "cookie is signed with a key derived from it; e.g. secret_key: "
                              "${env:CASTPROXY_SECRET_KEY})", key=True))


def _store(store: dict[str, Any]) -> Iterator[Finding]:
    if store.get("backend") == "redis" and not store.get("url"):
        yield Finding(Located(("store", "backend"), "store backend redis needs `url` (e.g. redis://127.0.0.1:6379/0)"))


def _oauth2(base: Loc, auth: dict[str, Any], has_secret_key: bool) -> Iterator[Finding]:
    at = (*base, "auth")
    if not has_secret_key:
        yield Finding(Located((*at, "type"), f"workspace '{base[1]}' uses oauth2, which needs `server.secret_key` "
                              "(at least 32 random characters, e.g. secret_key: ${env:CASTPROXY_SECRET_KEY})"))
    provider = auth.get("provider", "custom")
    grant = auth.get("grant", "authorization_code")
    discovered = bool(auth.get("issuer"))
    grant_at = (*at, "grant") if "grant" in auth else at
    if provider == "dcr":
        if not auth.get("registration_url") and not discovered:
            yield Finding(Located((*at, "provider"), "provider dcr needs `registration_url`, or `issuer` "
                                  "(whose metadata names the registration endpoint)"))
        return
    if provider != "custom" or grant not in ("authorization_code", "client_credentials"):
        return  # the model reports unknown values
    if not auth.get("client_id"):
        yield Finding(Located(at, "oauth2 provider custom needs `client_id` (the client registered at the upstream; "
                              "or use provider: dcr to register automatically)", key=True))
    if not auth.get("token_url") and not discovered:
        yield Finding(Located(grant_at, f"grant {grant} needs `token_url` (or `issuer`, whose metadata gives it)",
                              key=grant_at == at))
    if grant == "authorization_code" and not auth.get("authorization_url") and not discovered:
        yield Finding(Located(grant_at, "grant authorization_code needs `authorization_url` (or `issuer`, "
                              "whose metadata gives it)", key=grant_at == at))
    method = auth.get("token_endpoint_auth_method", "client_secret_basic")
    if not auth.get("client_secret") and (grant == "client_credentials" or method != "none"):
        hint = "" if grant == "client_credentials" else " (or token_endpoint_auth_method: none for a public client)"
        yield Finding(Located(at, f"oauth2 grant {grant} with a pre-registered client needs `client_secret`{hint}",
                              key=True))
    if grant == "authorization_code":
        for flag, what in (("pkce", "the PKCE code challenge"), ("state", "the state check against forged sign-ins")):
            if auth.get(flag) is False:
                yield Finding(Located((*at, flag), f"`{flag}: false` turns off {what}; keep it on unless the "
                                      "upstream cannot handle it"), "warning")


_REFRESH_KEYS = ("refresh_token_field", "refresh_send_as", "refresh_body_field")


def _login(base: Loc, auth: dict[str, Any], has_secret_key: bool) -> Iterator[Finding]:
    """`auth.type: login`: the secret key for the stored token, and the fields that only make sense together."""
    at = (*base, "auth")
    if not has_secret_key:
        yield Finding(Located((*at, "type"), f"workspace '{base[1]}' uses login, which needs `server.secret_key` "
                              "(castproxy keeps the token it gets encrypted; at least 32 random characters, "
                              "e.g. secret_key: ${env:CASTPROXY_SECRET_KEY})"))
    send_as = auth.get("send_as", "bearer")
    if send_as == "header" and not auth.get("header"):
        yield Finding(Located((*at, "send_as"), "`send_as: header` needs `header`: the header that carries the "
                              "token (e.g. header: X-Auth-Token)"))
    if send_as == "bearer":
        for key in ("header", "prefix"):
            if key in auth:
                message = (f"`{key}` conflicts with send_as bearer (the token goes in `Authorization: Bearer "
                           "TOKEN`): use `send_as: header`, or remove it") if "send_as" in auth else (
                           f"`{key}` needs `send_as: header` (without it the token goes in `Authorization: "
                           "Bearer TOKEN`)")
                yield Finding(Located((*at, key), message, key=True))
    if not auth.get("refresh_url"):
        for key in _REFRESH_KEYS:
            if key in auth:
                yield Finding(Located((*at, key), f"`{key}` has no effect without `refresh_url`: add the refresh "
                                      "endpoint, or remove it (castproxy then logs in again before the token "
                                      "expires)", key=True))
    elif auth.get("refresh_send_as") == "bearer" and "refresh_body_field" in auth:
        yield Finding(Located((*at, "refresh_body_field"), "`refresh_body_field` conflicts with refresh_send_as "
                              "bearer (the refresh token goes in the Authorization header, not the body)", key=True))
    credentials, extra = _mapping(auth.get("credentials")), _mapping(auth.get("fields"))
    for name in extra:
        if name in credentials:
            yield Finding(Located((*at, "fields", name), f"body field '{name}' is in both `credentials` and "
                                  "`fields`: keep it in one (secrets in `credentials`)", key=True))
    for key in ("login_url", "refresh_url"):
        url = auth.get(key)
        if isinstance(url, str) and url.startswith("http://") and not _is_loopback(_url_host(url)):
            what = "the credentials" if key == "login_url" else "the refresh token"
            yield Finding(Located((*at, key), f"`{key}` is plain http:// to a host that is not loopback: {what} "
                                  "would cross the network unencrypted; use https://"), "warning")


def _url_host(url: str) -> str:
    authority = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0].rsplit("@", 1)[-1]
    if authority.startswith("["):
        return authority.split("]", 1)[0] + "]"
    return authority.split(":", 1)[0]


def _tool_names(
    base: Loc, tools: Any, line_of: Callable[[Loc], int], origins: SecretOrigins
) -> Iterator[Finding]:
    if not isinstance(tools, list):
        return
    first_seen: dict[str, Loc] = {}
    for index, entry in enumerate(tools):
        path: Loc = (*base, "tools", index)
        if isinstance(entry, str) and entry != "*":  # "*" is a selector: it names no tool
            name = entry
        elif isinstance(entry, dict) and isinstance(entry.get("name") or entry.get("operation"), str):
            name = entry.get("name") or entry["operation"]
            if entry.get("name"):
                path = (*path, "name")
        else:
            continue
        if name in first_seen:
            shown = "this tool name" if path in origins.referenced else f"tool name '{name}'"
            yield Finding(Located(path, f"{shown} is used twice in workspace '{base[1]}' (first at line "
                                  f"{line_of(first_seen[name])}); tool names must be unique: rename one with `name:`"))
        else:
            first_seen[name] = path


def _is_loopback(host: Any) -> bool:
    if not isinstance(host, str):
        return True  # the model reports a bad host; don't pile a warning on top
    if host.strip("[]").lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _exposure(base: Loc, workspace: dict[str, Any], auth: dict[str, Any], server: dict[str, Any]) -> Iterator[Finding]:
    host = server.get("host", "127.0.0.1")
    per_user = auth.get("type") == "oauth2" and auth.get("grant", "authorization_code") == "authorization_code"
    if per_user or workspace.get("inbound") or server.get("identity") or _is_loopback(host):
        return
    kind = auth.get("type", "none")
    credential = "no upstream credential" if kind == "none" else f"a shared upstream credential ({kind})"
    yield Finding(Located(base, f"workspace '{base[1]}' uses {credential} and server.host {host} is not loopback: "
                          "anyone who reaches the proxy can call this API; add `inbound.api_keys`", key=True),
                  "warning")


def _base_url_userinfo(base: Loc, base_url: Any) -> Iterator[Finding]:
    """user:password@ in base_url would travel into `tools` output and binary tool results' URIs."""
    if isinstance(base_url, str) and "@" in base_url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]:
        yield Finding(Located((*base, "base_url"), "`base_url` must not contain user information (user:password@): "
                              "it would be shown in `tools` output and tool results; send the credential with "
                              "`auth` (e.g. type: headers, Authorization: Basic ...) instead"))


def _public_url(server: dict[str, Any], workspaces: Mapping[str, Any]) -> Iterator[Finding]:
    if server.get("public_url") or _is_loopback(server.get("host", "127.0.0.1")):
        return
    for workspace in workspaces.values():
        auth = _mapping(_mapping(workspace).get("auth"))
        if auth.get("type") == "oauth2" and auth.get("grant", "authorization_code") == "authorization_code":
            yield Finding(Located(("server",), "server.public_url is not set: sign-in redirects will use "
                                  "http://localhost; set it to the URL browsers use to reach the proxy", key=True),
                          "warning")
            return


def _secret_fields(data: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Every value that is a secret by position, with the label used in warnings."""
    server = _mapping(data.get("server"))
    if isinstance(server.get("secret_key"), str):
        yield ("server", "secret_key"), "`secret_key`"
    previous = server.get("previous_secret_keys")
    for index, old in enumerate(previous if isinstance(previous, list) else []):
        if isinstance(old, str):
            yield ("server", "previous_secret_keys", index), "a previous secret key"
    admin_keys = _mapping(server.get("admin")).get("api_keys")
    for index, value in enumerate(admin_keys if isinstance(admin_keys, list) else []):
        if isinstance(value, str):
            yield ("server", "admin", "api_keys", index), f"admin api key {index + 1}"
    for name, workspace in _mapping(data.get("workspaces")).items():
        auth = _mapping(_mapping(workspace).get("auth"))
        at: Loc = ("workspaces", name, "auth")
        for key in ("client_secret", "token", "value"):
            if isinstance(auth.get(key), str):
                yield (*at, key), f"`{key}`"
        if auth.get("type") == "headers":
            for header, value in _mapping(auth.get("headers")).items():
                if isinstance(value, str):
                    yield (*at, "headers", header), f"auth header '{header}'"
        if auth.get("type") == "login":
            for name, value in _mapping(auth.get("credentials")).items():
                if isinstance(value, str):
                    yield (*at, "credentials", name), f"login credential '{name}'"
        keys = _mapping(_mapping(workspace).get("inbound")).get("api_keys")
        for index, value in enumerate(keys if isinstance(keys, list) else []):
            if isinstance(value, str):
                yield ("workspaces", name, "inbound", "api_keys", index), f"inbound api key {index + 1}"
            elif isinstance(value, dict) and isinstance(value.get("key"), str):
                yield ("workspaces", name, "inbound", "api_keys", index, "key"), f"inbound api key {index + 1}"
    identity = _mapping(server.get("identity"))
    if isinstance(identity.get("client_secret"), str):
        yield ("server", "identity", "client_secret"), "the identity provider's `client_secret`"


def _literal_secrets(data: dict[str, Any], origins: SecretOrigins) -> Iterator[Finding]:
    for path, label in _secret_fields(data):
        if path in origins.environment:
            continue
        if path in origins.defaults:
            names = ", ".join(origins.defaults[path])
            yield Finding(Located(path, f"{label} uses the default written in the config because {names} is not "
                                  "set; set it outside the file in production"), "warning")
        elif path not in origins.referenced:
            extra = ("; a non-secret header belongs in the workspace's `headers`" if label.startswith("auth header")
                     else "; a non-secret body field belongs in `fields`" if label.startswith("login credential")
                     else "")
            yield Finding(Located(path, f"{label} is written literally in the config: {_LITERAL_HINT}{extra}"),
                          "warning")


def secret_paths(data: dict[str, Any]) -> set[Loc]:
    """Where secrets sit in `data` (what `load_config(need_secrets=False)` may leave unresolved)."""
    return {path for path, _ in _secret_fields(data)} | {("store", "url")}


def _identity(server: dict[str, Any], workspaces: Mapping[str, Any], has_secret_key: bool) -> Iterator[Finding]:
    """server.identity keeps browser sessions and castproxy tokens (secret key); named keys must differ by name."""
    if server.get("identity") and not has_secret_key:
        yield Finding(Located(("server", "identity"), "server.identity needs `server.secret_key` (sign-in sessions "
                              "and tokens are protected with it; at least 32 random characters)", key=True))
    for name, workspace in workspaces.items():
        keys = _mapping(_mapping(workspace).get("inbound")).get("api_keys")
        seen: set[str] = set()
        for index, value in enumerate(keys if isinstance(keys, list) else []):
            key_name = value.get("name") if isinstance(value, dict) else None
            if isinstance(key_name, str):
                if key_name in seen:
                    yield Finding(Located(("workspaces", name, "inbound", "api_keys", index, "name"),
                                          f"inbound key name {key_name!r} is used twice in this workspace"))
                seen.add(key_name)
        if (_mapping(workspace).get("access") or _tool_access(workspace)) and not server.get("identity") \
                and not seen:
            auth = _mapping(_mapping(workspace).get("auth"))
            if auth.get("type") != "oauth2":
                yield Finding(Located(("workspaces", name, "access") if _mapping(workspace).get("access")
                                      else ("workspaces", name, "tools"),
                                      "`access` rules need identified callers: set `server.identity` (company "
                                      "sign-in) or give this workspace named `inbound.api_keys`"), "warning")


def _tool_access(workspace: Any) -> bool:
    tools = _mapping(workspace).get("tools")
    return any(isinstance(entry, dict) and entry.get("access") for entry in (tools if isinstance(tools, list) else []))
