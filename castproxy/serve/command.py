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
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import uvicorn

from castproxy.config.loader import LoadedConfig, resolve_config_path
from castproxy.config.model import ConnectionSettings
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
        return _refuse(held, [f"{path}: config file not found (use -c FILE or set CASTPROXY_CONFIG)"], 1)
    try:
        workers = workers_from(args.workers, os.environ)
    except ValueError as exc:
        return _refuse(held, [f"castproxy serve: {exc}"], 2)
    if workers > 1:
        return _serve_workers(path, args, workers, settings, held)
    from castproxy.serve.app import create_app  # here: a usage error, or the supervisor of workers, never needs it

    try:
        app = create_app(path, reload=not args.no_reload, host_override=args.host, port_override=args.port)
    except ConfigError as exc:
        return _refuse(held, exc.problems, 1)
    except BaseException:
        held.release()  # whatever was logged before it went wrong
        raise
    snapshot = app.state.serve.snapshot
    server_settings = snapshot.loaded.config.server
    host, port = server_settings.host, server_settings.port  # --host/--port already applied by the loader
    try:
        listener = bind_listener(host, port)
    except StartupError as exc:
        return _refuse(held, [f"castproxy serve: {exc}"], 1)
    counts = {name: len(workspace.tools) for name, workspace in snapshot.workspaces.items()
              if workspace.unavailable is None}  # a degraded one is "not served" (its reason is logged)
    _announce(snapshot.loaded, counts, args, settings, held)
    config = GuardedConfig(app, host=host, port=port, **_uvicorn_options(server_settings.connections))
    uvicorn.Server(config).run(sockets=[listener])
    return 0


def _serve_workers(path: Path, args: argparse.Namespace, workers: int, settings: LogSettings, held: HeldLogs) -> int:
    """The supervisor: check the config and the port here, then let each worker build and serve on its own."""
    options = WorkerOptions(path.absolute(), reload=not args.no_reload, host=args.host, port=args.port,
                            log_level=settings.level, log_format=settings.format)
    try:
        loaded = preflight(options)
    except ConfigError as exc:
        return _refuse(held, exc.problems, 1)
    server_settings = loaded.config.server
    host, port = server_settings.host, server_settings.port  # --host/--port already applied by the loader
    try:
        bind_listener(host, port).close()  # free now? (each worker then binds its own SO_REUSEPORT socket)
    except StartupError as exc:
        return _refuse(held, [f"castproxy serve: {exc}"], 1)
    _announce(loaded, None, args, settings, held, workers=workers)
    return run_workers(options, workers, host=host, port=port, **_uvicorn_options(server_settings.connections))


def _refuse(held: HeldLogs, lines: Iterable[object], code: int) -> int:
    """Why serve cannot start, on stderr after whatever was logged so far; returns the exit code."""
    held.release()
    for line in lines:
        print(line, file=sys.stderr)
    return code


def _announce(loaded: LoadedConfig, counts: dict[str, int] | None, args: argparse.Namespace, settings: LogSettings,
              held: HeldLogs, workers: int = 1) -> None:
    """The banner and any address warnings on stderr, then the held log records, then the warnings as logs."""
    host, port = loaded.config.server.host, loaded.config.server.port
    shown_host = f"[{host}]" if ":" in host else host
    print(banner(loaded, counts, f"http://{shown_host}:{port}", log_format=settings.format,
                 reload=not args.no_reload, workers=workers), file=sys.stderr)
    warnings = address_warnings(loaded, host_option=bool(args.host), port_option=args.port is not None,
                                environ=os.environ)
    for warning in warnings:
        print(f"  warning: {warning}", file=sys.stderr)
    sys.stderr.flush()
    held.release()
    for warning in warnings:
        log.warning("public_url does not match the listening address", extra={"fields": {"detail": warning}})


def _uvicorn_options(limits: ConnectionSettings) -> dict[str, Any]:
    """uvicorn.Config options for castproxy; GuardedConfig adds header/body deadlines and a connection cap."""
    return {
        "loop": _fast("uvloop", "asyncio"),
        "http": _fast("httptools", "h11"),
        "lifespan": "on",
        "access_log": False,  # each tool call has its audit record instead
        "log_config": None,  # keep our JSON logging
        "server_header": False,
        "connection_limits": ConnectionLimits(
            limits.header_timeout, limits.body_timeout, limits.keep_alive, limits.max_open
        ),
    }
