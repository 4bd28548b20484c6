"""`castproxy serve`: load the config, print its problems or run the app under uvicorn (uvloop + httptools).

Log records are held back until the port is bound and the banner printed (serve/startup.py), so the
terminal shows the banner first and nothing says "serving" before the bind succeeded. With
`--workers N` (or CASTPROXY_WORKERS) above 1, serve/workers.py runs N processes on the port.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import sys
from pathlib import Path

import uvicorn

from castproxy.config.loader import resolve_config_path
from castproxy.config.problems import ConfigError
from castproxy.serve.connections import ConnectionLimits, GuardedConfig
from castproxy.serve.logs import HeldLogs, configure_logging
from castproxy.serve.startup import (
    LogSettings,
    StartupError,
    address_warnings,
    banner,
    bind_listener,
    log_settings,
)
from castproxy.serve.workers import WorkerOptions, preflight, run_workers, workers_from

__all__ = ["serve"]

log = logging.getLogger(__name__)


def _fast(module: str, fallback: str) -> str:
    return module if importlib.util.find_spec(module) is not None else fallback


def serve(args: argparse.Namespace) -> int:
    try:
        settings = log_settings(args.log_level, args.log_format, os.environ)
    except StartupError as exc:
        print(f"castproxy serve: {exc}", file=sys.stderr)
        return 2
    held = HeldLogs(configure_logging(settings.level, settings.format))
    path = resolve_config_path(args.config)
    if not path.exists():
        held.release()
        print(f"{path}: config file not found (use -c FILE or set CASTPROXY_CONFIG)", file=sys.stderr)
        return 1
    try:
        workers = workers_from(args.workers, os.environ)
    except ValueError as exc:
        held.release()
        print(f"castproxy serve: {exc}", file=sys.stderr)
        return 2
    if workers > 1:
        return _serve_workers(path, args, workers, settings, held)
    from castproxy.serve.app import create_app  # here: a usage error, or the supervisor of workers, never needs it

    try:
        app = create_app(path, reload=not args.no_reload, host_override=args.host, port_override=args.port)
    except ConfigError as exc:
        held.release()
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except BaseException:
        held.release()  # whatever was logged before it went wrong
        raise
    snapshot = app.state.serve.snapshot
    server_settings = snapshot.loaded.config.server
    host, port = server_settings.host, server_settings.port  # --host/--port already applied by the loader
    try:
        listener = bind_listener(host, port)
    except StartupError as exc:
        held.release()
        print(f"castproxy serve: {exc}", file=sys.stderr)
        return 1
    shown_host = f"[{host}]" if ":" in host else host
    counts = {name: len(workspace.tools) for name, workspace in snapshot.workspaces.items()
              if workspace.unavailable is None}  # a degraded one is "not served" (its reason is logged)
    print(banner(snapshot.loaded, counts, f"http://{shown_host}:{port}", log_format=settings.format,
                 reload=not args.no_reload), file=sys.stderr)
    warnings = address_warnings(snapshot.loaded, host_option=bool(args.host), port_option=args.port is not None,
                                environ=os.environ)
    for warning in warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    sys.stderr.flush()
    held.release()
    for warning in warnings:
        log.warning("public_url does not match the listening address", extra={"fields": {"detail": warning}})
    limits = server_settings.connections
    config = GuardedConfig(  # uvicorn.Config plus header/body deadlines and a connection cap (connections.py)
        app,
        host=host,
        port=port,
        loop=_fast("uvloop", "asyncio"),
        http=_fast("httptools", "h11"),
        lifespan="on",
        access_log=False,  # each tool call has its audit record instead
        log_config=None,  # keep our JSON logging
        server_header=False,
        connection_limits=ConnectionLimits(
            limits.header_timeout, limits.body_timeout, limits.keep_alive, limits.max_open
        ),
    )
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def _serve_workers(path: Path, args: argparse.Namespace, workers: int, settings: LogSettings, held: HeldLogs) -> int:
    """The supervisor: check the config and the port here, then let each worker build and serve on its own."""
    options = WorkerOptions(path.absolute(), reload=not args.no_reload, host=args.host, port=args.port,
                            log_level=settings.level, log_format=settings.format)
    try:
        loaded = preflight(options)
    except ConfigError as exc:
        held.release()
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    server_settings = loaded.config.server
    host, port = server_settings.host, server_settings.port  # --host/--port already applied by the loader
    try:
        bind_listener(host, port).close()  # free now? (each worker then binds its own SO_REUSEPORT socket)
    except StartupError as exc:
        held.release()
        print(f"castproxy serve: {exc}", file=sys.stderr)
        return 1
    shown_host = f"[{host}]" if ":" in host else host
    print(banner(loaded, None, f"http://{shown_host}:{port}", log_format=settings.format,
                 reload=not args.no_reload, workers=workers), file=sys.stderr)
    warnings = address_warnings(loaded, host_option=bool(args.host), port_option=args.port is not None,
                                environ=os.environ)
    for warning in warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    sys.stderr.flush()
    held.release()
    limits = server_settings.connections
    return run_workers(
        options,
        workers,
        host=host,
        port=port,
        loop=_fast("uvloop", "asyncio"),
        http=_fast("httptools", "h11"),
        lifespan="on",
        access_log=False,
        log_config=None,
        server_header=False,
        connection_limits=ConnectionLimits(
            limits.header_timeout, limits.body_timeout, limits.keep_alive, limits.max_open
        ),
    )
