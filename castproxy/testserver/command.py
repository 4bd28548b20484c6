"""`castproxy testserver`: run the bundled test upstream in the foreground and print its banner."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from castproxy.testserver.app import create_app
from castproxy.testserver.banner import banner
from castproxy.testserver.runner import bind_socket

__all__ = ["testserver"]

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
