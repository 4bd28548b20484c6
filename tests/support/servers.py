"""An ASGI app served by uvicorn in a background thread on a loopback socket (port 0 unless given one)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import uvicorn

from castproxy.testserver.runner import PromptServer
from support.net import free_socket


@dataclass
class Running:
    url: str
    server: PromptServer
    thread: threading.Thread

    def stop(self) -> None:
        self.server.stop_soon()
        self.thread.join(10)


def run(
    app: Any, sock: socket.socket | None = None, *, config_class: type[uvicorn.Config] = uvicorn.Config, **options: Any
) -> Running:
    """Serve `app` until `stop()`; `options` go to uvicorn.Config (e.g. the production loop="uvloop"), or to
    `config_class` (castproxy.serve.connections.GuardedConfig)."""
    sock = sock or free_socket()
    config = config_class(app, **{"lifespan": "on", "access_log": False, "log_config": None, **options})
    server = PromptServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.01)
    return Running(f"http://127.0.0.1:{sock.getsockname()[1]}", server, thread)
