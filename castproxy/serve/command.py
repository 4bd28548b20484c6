"""`castproxy serve`: load the config, print its problems or run the app under uvicorn (uvloop + httptools)."""

from __future__ import annotations

import argparse
import importlib.util
import logging
import sys

import uvicorn

from castproxy.config.loader import resolve_config_path
from castproxy.config.problems import ConfigError
from castproxy.serve.connections import ConnectionLimits, GuardedConfig
from castproxy.serve.logs import configure_logging

log = logging.getLogger(__name__)


def _fast(module: str, fallback: str) -> str:
    return module if importlib.util.find_spec(module) is not None else fallback


def serve(args: argparse.Namespace) -> int:
    from castproxy.serve.app import create_app

    configure_logging()
    path = resolve_config_path(args.config)
    if not path.exists():
        print(f"{path}: config file not found (use -c FILE or set CASTPROXY_CONFIG)", file=sys.stderr)
        return 1
    try:
        app = create_app(path, reload=not args.no_reload, host_override=args.host, port_override=args.port)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    server_settings = app.state.serve.snapshot.loaded.config.server
    limits = server_settings.connections
    config = GuardedConfig(  # uvicorn.Config plus header/body deadlines and a connection cap (connections.py)
        app,
        host=args.host or server_settings.host,
        port=args.port if args.port is not None else server_settings.port,
        loop=_fast("uvloop", "asyncio"),
        http=_fast("httptools", "h11"),
        lifespan="on",
        access_log=False,  # one structured line per tool call instead
        log_config=None,  # keep our JSON logging
        server_header=False,
        connection_limits=ConnectionLimits(
            limits.header_timeout, limits.body_timeout, limits.keep_alive, limits.max_open
        ),
    )
    uvicorn.Server(config).run()
    return 0
