"""What `castproxy serve` does around the app before it serves: log settings, the listening socket, the banner.

The socket is bound here, before uvicorn starts, so a busy port is one plain line and exit 1 (not a
logged errno after "serving"). The banner is a few lines for the person at the terminal: where each
workspace is served, the store, the callback to register. Address warnings say when `public_url`
advertises a port or host the proxy does not listen on (OAuth metadata and sign-in redirects are
built from public_url, so clients would be sent elsewhere).
"""

from __future__ import annotations

import errno
import ipaddress
import os
import socket
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from castproxy import __version__
from castproxy.config.loader import LoadedConfig
from castproxy.config.model import OAuth2Auth, StoreSettings, Workspace
from castproxy.config.problems import ConfigError
from castproxy.serve import ServeError
from castproxy.serve.logs import LOG_FORMATS, LogFormat, parse_level
from castproxy.store import Store, open_store
from castproxy.store.guard import GuardedStore

__all__ = [
    "LogSettings", "StartupError", "address_warnings", "banner", "bind_listener", "environ_with_overrides",
    "log_settings", "open_guarded_store",
]

LOG_FORMAT_ENV = "CASTPROXY_LOG_FORMAT"
LOG_LEVEL_ENV = "CASTPROXY_LOG_LEVEL"
BACKLOG = 2048  # uvicorn's default
_CHOOSE_PORT = "choose another with --port P, server.port in the config or CASTPROXY_PORT"


class StartupError(ServeError):
    """A reason `serve` cannot start, as one line for the terminal."""


@dataclass(frozen=True)
class LogSettings:
    level: int
    format: LogFormat


def log_settings(level: str | None, log_format: str | None, environ: Mapping[str, str]) -> LogSettings:
    """`--log-level`/`--log-format`, else CASTPROXY_LOG_LEVEL/CASTPROXY_LOG_FORMAT, else info and json."""
    level_text = level or environ.get(LOG_LEVEL_ENV) or "info"
    format_text = (log_format or environ.get(LOG_FORMAT_ENV) or "json").lower()
    try:
        number = parse_level(level_text)
    except ValueError as exc:
        source = "--log-level" if level else LOG_LEVEL_ENV
        raise StartupError(f"{source}: {exc}") from None
    if format_text not in LOG_FORMATS:
        raise StartupError(f"{LOG_FORMAT_ENV}: unknown log format {format_text!r}: use json or text")
    return LogSettings(number, "text" if format_text == "text" else "json")


def bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or StartupError saying why not and what to change."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror:
        raise StartupError(f"cannot listen on {host!r}: no such host name; set --host, server.host or "
                           "CASTPROXY_HOST (e.g. 127.0.0.1, or 0.0.0.0 for every interface)") from None
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(BACKLOG)  # claimed now: a second castproxy on this port fails here, not later
    except OSError as exc:
        sock.close()
        raise StartupError(_bind_failure(exc, host, port)) from None
    sock.set_inheritable(True)
    return sock


def _bind_failure(exc: OSError, host: str, port: int) -> str:
    where = f"port {port} on {host}"
    if exc.errno == errno.EADDRINUSE:
        return f"{where} is already in use (another castproxy or program listens there); {_CHOOSE_PORT}"
    if exc.errno == errno.EACCES:
        return f"not allowed to listen on {where} (ports below 1024 need extra privileges); {_CHOOSE_PORT}"
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot listen on {host}: this machine has no such address; set --host, server.host or "
                "CASTPROXY_HOST (e.g. 127.0.0.1, or 0.0.0.0 for every interface)")
    return f"cannot listen on {where}: {os.strerror(exc.errno) if exc.errno else exc}"


# ---- public_url against the listening address -------------------------------------------------------


def _is_loopback(host: str) -> bool:
    name = host.strip("[]").lower()
    if name in ("localhost", "localhost.localdomain") or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    return host.strip("[]") in ("", "0.0.0.0", "::")


def _source(cli_given: bool, option: str, variable: str, field: str, environ: Mapping[str, str]) -> str:
    if cli_given:
        return option
    return variable if environ.get(variable) else field


def address_warnings(
    loaded: LoadedConfig, *, host_option: bool, port_option: bool, environ: Mapping[str, str]
) -> list[str]:
    """Where the configured public_url disagrees with the address castproxy listens on."""
    server = loaded.config.server
    if not server.public_url:
        return []  # the default public URL follows host and port
    parts = urlsplit(loaded.public_url)
    public_host = parts.hostname or ""
    public_port = parts.port or (443 if parts.scheme == "https" else 80)
    url_source = "CASTPROXY_PUBLIC_URL" if environ.get("CASTPROXY_PUBLIC_URL") else "server.public_url"
    warnings = []
    port_source = _source(port_option, "--port", "CASTPROXY_PORT", "server.port", environ)
    # A port written in public_url, or a loopback URL (nothing can sit in between), must be the listening port.
    if (parts.port is not None or _is_loopback(public_host)) and public_port != server.port:
        warnings.append(
            f"castproxy listens on port {server.port} ({port_source}) but {url_source} is {loaded.public_url}: "
            f"OAuth metadata, WWW-Authenticate and sign-in redirects send clients to port {public_port}. Set "
            f"{url_source} to match (e.g. {parts.scheme}://{parts.netloc.rsplit(':', 1)[0]}:{server.port}), "
            f"or ignore this if a proxy forwards port {public_port} to castproxy"
        )
    host_source = _source(host_option, "--host", "CASTPROXY_HOST", "server.host", environ)
    if not _is_wildcard(server.host) and _is_loopback(server.host) != _is_loopback(public_host):
        if _is_loopback(server.host):
            reach = f"other machines cannot reach it at {public_host} unless a proxy on this machine forwards"
        else:
            reach = f"{public_host} (loopback) does not reach {server.host}"
        warnings.append(
            f"castproxy listens on {server.host} ({host_source}) but {url_source} is {loaded.public_url}: {reach}; "
            "listen on 0.0.0.0 (--host, server.host or CASTPROXY_HOST) or fix the public URL"
        )
    return warnings


# ---- the banner -------------------------------------------------------------------------------------


def _auth_words(workspace: Workspace) -> str:
    auth = workspace.auth
    if isinstance(auth, OAuth2Auth):
        return "each user signs in (oauth2)" if auth.grant == "authorization_code" else "oauth2 service client"
    return "no upstream auth" if auth.type == "none" else f"upstream auth {auth.type}"


def _store_words(store: StoreSettings, loaded: LoadedConfig) -> str:
    if store.backend == "redis":
        url = urlsplit(store.url.get_secret_value() if store.url else "")
        where = f"{url.hostname or '?'}:{url.port or 6379}{url.path or ''}"  # never the password
        return f"redis at {where}"
    path = os.path.expanduser(store.path)
    return f"sqlite {path if os.path.isabs(path) else os.path.normpath(loaded.base_dir / path)}"


def banner(loaded: LoadedConfig, tool_counts: Mapping[str, int] | None, listening: str, *, log_format: str,
           reload: bool, workers: int = 1) -> str:
    """The few lines `serve` prints to stderr before its logs. `tool_counts` None: not known here (under
    --workers each worker builds the workspaces; /readyz then says how each one fares)."""
    public = loaded.public_url
    lines = [f"castproxy {__version__} serving {loaded.path}", f"  listening on    {listening}"
             + ("" if public == listening else f"   (public URL {public})")]
    names = sorted(loaded.config.workspaces)
    width = max((len(name) for name in names), default=0)
    for index, name in enumerate(names):
        workspace = loaded.config.workspaces[name]
        count = tool_counts.get(name) if tool_counts is not None else None
        tools = "not served" if count is None else f"{count} tool{'' if count == 1 else 's'}"
        what = _auth_words(workspace) if tool_counts is None else f"{tools}, {_auth_words(workspace)}"
        label = "  workspaces      " if index == 0 else " " * 18
        lines.append(f"{label}{name:<{width}}  {public}/mcp/{name}   ({what})")
    lines.append(f"  store           {_store_words(loaded.config.store, loaded)}")
    if any(isinstance(w.auth, OAuth2Auth) and w.auth.grant == "authorization_code"
           for w in loaded.config.workspaces.values()):
        lines.append(f"  OAuth callback  {loaded.callback_url}   (register it at the upstream OAuth servers)")
    lines.append(f"  health          {public}/healthz  {public}/readyz  {public}/metrics")
    other = "text" if log_format == "json" else "json"
    lines.append(f"  logs            {log_format} on stderr from here on (--log-format {other}; --log-level debug "
                 "adds a line per call)")
    audit = loaded.config.server.audit
    where = {"stdout": "stdout, a JSON line per call, sign-in and reload", "off": "off"}.get(audit.sink)
    lines.append(f"  audit trail     {where or f'file {audit.path}'}")
    if loaded.config.server.admin is not None:
        lines.append(f"  admin page      {public}/admin")
    lines.append("  reload          " + ("on: edits to the config, local specs and secret files, and SIGHUP"
                                      if reload else "off"))
    if workers > 1:
        lines.append(f"  workers         {workers} processes on this port, each loading the config and reloading on "
                     "its own")
    return "\n".join(lines)


def environ_with_overrides(host_override: str | None, port_override: int | None) -> Mapping[str, str]:
    """The environment with --host/--port applied as CASTPROXY_HOST/CASTPROXY_PORT."""
    # Command-line overrides go through the loader's env overrides, so public_url's default follows them.
    environ = dict(os.environ)
    if host_override:
        environ["CASTPROXY_HOST"] = host_override
    if port_override is not None:
        environ["CASTPROXY_PORT"] = str(port_override)
    return environ


def open_guarded_store(loaded: LoadedConfig, clock: Callable[[], float] = time.monotonic) -> Store:
    """The configured store, every operation time-bounded; ConfigError naming `store` if it cannot open."""
    settings = loaded.config.store
    try:
        store = open_store(settings, loaded.base_dir)
    except Exception as exc:  # whatever the backend raises (file, SQLite, Redis): a store setting to fix
        raise ConfigError([loaded.problem(("store",), f"cannot open the store: {exc}")]) from None
    # Every operation bounded: a down or paused store gives callers one clear retryable error.
    return GuardedStore(store, settings.backend, clock=clock)
