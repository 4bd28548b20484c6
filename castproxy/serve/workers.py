"""`serve --workers N`: N processes serve one port, each a complete castproxy that reloads on its own.

The supervisor (this process) checks the config, starts the workers (each with its own SO_REUSEPORT
listener), passes SIGHUP on, stops them on SIGTERM/SIGINT and replaces one that dies after start-up.
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from multiprocessing.process import BaseProcess
from pathlib import Path
from types import FrameType
from typing import Any

import uvicorn
from uvicorn.config import STARTUP_FAILURE

from castproxy.config.loader import LoadedConfig, load_config
from castproxy.config.problems import ConfigError
from castproxy.observe.metrics import shared_metrics, worker_exited
from castproxy.serve.connections import GuardedConfig
from castproxy.serve.logs import LogFormat, configure_logging
from castproxy.serve.startup import environ_with_overrides, open_guarded_store

__all__ = ["WorkerOptions", "preflight", "run_workers", "workers_from"]

log = logging.getLogger(__name__)

WORKERS_ENV = "CASTPROXY_WORKERS"
RESTART_PAUSE = 1.0  # seconds before a worker that died is replaced
STOP_GRACE = 30.0  # seconds a worker gets to finish its calls on SIGTERM before it is killed


@dataclass(frozen=True)
class WorkerOptions:
    """What each worker needs to build its app (pickled into the spawned process)."""

    config: Path
    reload: bool
    host: str | None
    port: int | None
    log_level: int = logging.INFO
    log_format: LogFormat = "json"


def workers_from(option: int | None, environ: Mapping[str, str]) -> int:
    """--workers, else $CASTPROXY_WORKERS, else 1; ValueError naming the variable when it is not a count."""
    if option is not None:
        return option
    text = environ.get(WORKERS_ENV, "").strip()
    if not text:
        return 1
    if not text.isdigit() or int(text) < 1:
        raise ValueError(f"{WORKERS_ENV} must be a whole number of processes, 1 or more (got {text[:20]!r})")
    return int(text)


def preflight(options: WorkerOptions) -> LoadedConfig:
    """The config as the workers will load it; ConfigError for a config invalid as a whole (or a store
    that cannot open), as a single process would give at start."""
    loaded = load_config(options.config, environ_with_overrides(options.host, options.port))
    asyncio.run(open_guarded_store(loaded).close())
    return loaded


def _listener(host: str, port: int) -> socket.socket:
    """This worker's own socket on the shared port (SO_REUSEPORT: the kernel balances across workers)."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(address)
    return sock


def worker_app(options: WorkerOptions) -> Any:
    """The app factory each worker's uvicorn calls."""
    from castproxy.serve.app import create_app

    try:
        return create_app(options.config, reload=options.reload, host_override=options.host,
                          port_override=options.port, worker=True)
    except ConfigError as exc:  # the file changed since the supervisor checked it
        for problem in exc.problems:
            log.error("config rejected at worker start", extra={"fields": {"problem": str(problem)}})
        sys.exit(STARTUP_FAILURE)  # the supervisor stops instead of restarting this worker forever


def _worker_main(options: WorkerOptions, host: str, port: int, settings: dict[str, Any]) -> None:
    """A worker process: its own SO_REUSEPORT listener, its own uvicorn server, its own app."""
    configure_logging(options.log_level, options.log_format)
    try:
        sock = _listener(host, port)
    except OSError as exc:
        log.error("worker cannot listen", extra={"fields": {"host": host, "port": port, "error": str(exc)}})
        sys.exit(STARTUP_FAILURE)
    # GuardedConfig: uvicorn.Config with serve's header/body deadlines and connection cap (connections.py).
    config = GuardedConfig(partial(worker_app, options), factory=True, host=host, port=port, **settings)
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    def __init__(self, options: WorkerOptions, count: int, host: str, port: int, settings: dict[str, Any]) -> None:
        self.options = options
        self.count = count
        self.host = host
        self.port = port
        self.settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._workers: list[BaseProcess] = []
        self._stop = threading.Event()
        self._failed = False

    def _spawn(self) -> BaseProcess:
        process = self._context.Process(
            target=_worker_main, args=(self.options, self.host, self.port, self.settings), name="castproxy-worker"
        )
        process.start()
        return process

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def _on_hup(self, signum: int, frame: FrameType | None) -> None:
        for process in self._workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGHUP)

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0, or 1 when workers cannot start."""
        previous = {sig: signal.signal(sig, self._on_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, self._on_hup)
        try:
            self._workers = [self._spawn() for _ in range(self.count)]
            log.info("workers started", extra={"fields": {"workers": [p.pid for p in self._workers],
                                                          "address": f"{self.host}:{self.port}"}})
            while not self._stop.wait(0.5):
                self._replace_dead()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if self._failed else 0

    def _replace_dead(self) -> None:
        for index, process in enumerate(self._workers):
            if process.is_alive():
                continue
            process.join()
            if process.pid is not None:
                worker_exited(process.pid)  # its live gauges stop counting
            if process.exitcode == STARTUP_FAILURE:
                log.error("a worker could not start; stopping", extra={"fields": {"pid": process.pid}})
                self._failed = True
                self._stop.set()
                return
            log.warning("worker died; starting another", extra={"fields": {"pid": process.pid,
                                                                            "exit_code": process.exitcode}})
            if self._stop.wait(RESTART_PAUSE):
                return
            self._workers[index] = self._spawn()

    def _stop_all(self) -> None:
        for process in self._workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for process in self._workers:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                process.kill()
                process.join()
        log.info("workers stopped")


def run_workers(options: WorkerOptions, workers: int, host: str, port: int, **settings: Any) -> int:
    """Serve host:port with `workers` processes until SIGTERM/SIGINT (the caller checked the port is free:
    with a plain bind, which fails even next to a SO_REUSEPORT listener, so a second castproxy never
    silently shares the port)."""
    with shared_metrics():  # the workers' metrics add up in one folder (prometheus_client multiprocess mode)
        return Supervisor(options, workers, host, port, settings).run()
