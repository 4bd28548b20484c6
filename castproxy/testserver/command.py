"""`castproxy testserver`: run the bundled test upstream in the foreground and print its banner (the credentials
and endpoints a user copies into cast.yaml, like the tutorial's; `castproxy demo` prints it too).
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from castproxy.testserver.app import TestServerCredentials, create_app
from castproxy.testserver.oauth import GRANT_TYPES, SCOPES
from castproxy.testserver.runner import bind_socket

__all__ = ["banner", "testserver"]

_LOOPBACK = ("127.0.0.1", "localhost", "::1", "0.0.0.0", "::")


def display_url(host: str, port: int) -> str:
    """The URL to show: `localhost` for loopback/any addresses, as in the tutorial."""
    if host in _LOOPBACK:
        return f"http://localhost:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def testserver(args: argparse.Namespace) -> int:
    if args.token_lifetime is not None and args.token_lifetime < 0:
        print("castproxy testserver: --token-lifetime must be >= 0 seconds", file=sys.stderr)
        return 2
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as exc:
        print(f"castproxy testserver: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}; "
              "choose another --port", file=sys.stderr)
        return 1
    # Listen before printing the banner: a client that reacts to it is queued, not refused.
    sock.listen(2048)
    app = create_app(
        args.mode,
        auto_approve=args.auto_approve,
        redirect_uris=args.redirect_uri,
        token_lifetime=args.token_lifetime,
    )
    print(banner(app.state.credentials, display_url(args.host, sock.getsockname()[1])), flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="info", access_log=True))
    server.run(sockets=[sock])
    return 0


def banner(credentials: TestServerCredentials, base_url: str) -> str:
    lines = [
        "",
        f"  castproxy test server · mode {credentials.mode}",
        f"  📄 OpenAPI spec    : {base_url}/openapi.json",
        f"  🌐 API base URL    : {base_url}",
    ]
    if credentials.mode == "apikey":
        lines += [
            "  🔑 API key (send it as the X-API-Key header):",
            f"       api_key       : {credentials.api_key}",
        ]
    if credentials.mode in ("oauth", "oauth-dcr"):
        lines += [
            "  🔑 Pre-registered OAuth client:",
            f"       client_id     : {credentials.client_id}",
            f"       client_secret : {credentials.client_secret}",
            f"       grant_types   : {', '.join(GRANT_TYPES)}",
            f"       scopes        : {' '.join(SCOPES)}",
            f"       redirect_uris : {', '.join(credentials.redirect_uris)}",
            f"  🌐 Token endpoint  : {base_url}/auth/token",
            f"  🌐 Auth endpoint   : {base_url}/auth/authorize",
            f"  🌐 Metadata        : {base_url}/.well-known/oauth-authorization-server",
        ]
        if credentials.mode == "oauth-dcr":
            lines.append(f"  🌐 Registration    : {base_url}/auth/clients")
        if credentials.auto_approve:
            lines.append("  ⚠  --auto-approve: sign-ins are approved without the approval page")
    if credentials.mode == "jwt":
        first, *others = credentials.usernames
        also = f"   (also {', '.join(others)}, same password)" if others else ""
        lines += [
            "  🔑 Log in with (JSON or form body, POST):",
            f"       username      : {first}{also}",
            f"       password      : {credentials.password}",
            f"       token         : HS256 JWT, lives {credentials.token_lifetime} s (its exp claim), Bearer",
            f"  🌐 Login endpoint  : {base_url}/auth/login",
            f"  🌐 Refresh         : {base_url}/auth/refresh   (body: refresh_token)",
            f"  🌐 Logout          : {base_url}/auth/logout    (Bearer token: ends its session)",
        ]
    lines.append("")
    return "\n".join(lines)
