"""Runs an ASGI app with uvicorn in a background thread on a free loopback port (tests and the demo)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

__all__ = ["PromptServer", "RunningServer", "bind_socket", "run_in_thread"]


class PromptServer(uvicorn.Server):
    """A uvicorn.Server that `stop_soon()` stops at once from another thread: uvicorn itself notices
    `should_exit` on its next 0.1 s tick, which every stop of a server in a thread used to wait for."""

    _loop: asyncio.AbstractEventLoop | None = None
    _wake: asyncio.Event | None = None

    async def main_loop(self) -> None:
        self._loop, self._wake = asyncio.get_running_loop(), asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # uvicorn's own loop, woken early by stop_soon()
            counter += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def stop_soon(self) -> None:
        self.should_exit = True
        if self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop is already closed: it has stopped
                self._loop.call_soon_threadsafe(self._wake.set)


@dataclass
class RunningServer:
    """A started server: `url` (no trailing slash) and `stop()`; also a context manager."""

    url: str
    _server: PromptServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def stop(self, timeout: float = 10.0) -> None:
        self._server.stop_soon()
        self._thread.join(timeout)

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening-ready TCP socket; raises OSError when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def run_in_thread(
    app: Any, *, host: str = "127.0.0.1", port: int = 0, log_level: str = "warning", startup_timeout: float = 15.0
) -> RunningServer:
    sock = bind_socket(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level=log_level, lifespan="auto", access_log=False)
    server = PromptServer(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn:{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError("the server thread stopped during start-up (see the log above)")
        if time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"the server did not start within {startup_timeout} s")
        time.sleep(0.01)
    url_host = f"[{host}]" if ":" in host else host
    return RunningServer(url=f"http://{url_host}:{bound_port}", _server=server, _thread=thread)
