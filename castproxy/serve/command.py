"""`castproxy serve`: load the config, print its problems or run the app under uvicorn (uvloop + httptools).

With `--workers N` (or CASTPROXY_WORKERS) above 1, serve/workers.py runs N processes on the port.
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
from castproxy.serve.logs import configure_logging
from castproxy.serve.workers import PortBusy, WorkerOptions, preflight, run_workers, workers_from

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
        workers = workers_from(getattr(args, "workers", None), os.environ)
    except ValueError as exc:
        print(f"castproxy serve: {exc}", file=sys.stderr)
        return 2
    if workers > 1:
        return _serve_workers(path, args, workers)
    try:
        app = create_app(path, reload=not args.no_reload, host_override=args.host, port_override=args.port)
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    server_settings = app.state.serve.snapshot.loaded.config.server
    config = uvicorn.Config(
        app,
        host=args.host or server_settings.host,
        port=args.port if args.port is not None else server_settings.port,
        loop=_fast("uvloop", "asyncio"),
        http=_fast("httptools", "h11"),
        lifespan="on",
        access_log=False,  # one structured line per tool call instead
        log_config=None,  # keep our JSON logging
        server_header=False,
    )
    uvicorn.Server(config).run()
    return 0


def _serve_workers(path: Path, args: argparse.Namespace, workers: int) -> int:
    options = WorkerOptions(path.absolute(), reload=not args.no_reload, host=args.host, port=args.port)
    try:
        host, port = preflight(options)  # --host/--port already applied, as for one process
    except ConfigError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    try:
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
        )
    except PortBusy as exc:
        print(f"castproxy serve: {exc} (choose another with --port)", file=sys.stderr)
        return 1
