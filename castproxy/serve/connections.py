"""Connection limits uvicorn lacks: a deadline to send the headers, one to send the body, a cap on open connections.

`GuardedConfig` is a `uvicorn.Config` that takes the limits and picks the guarded protocol class (408 past a
deadline, 503 past `max_open`).
Why it works this way: docs/architecture.md, "Module notes".
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["ConnectionLimits", "GuardedConfig"]

log = logging.getLogger(__name__)

def _answer(status: bytes, text: bytes) -> bytes:
    return (
        b"HTTP/1.1 " + status + b"\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: "
        + str(len(text)).encode() + b"\r\nconnection: close\r\n\r\n" + text
    )


TIMED_OUT = _answer(b"408 Request Timeout", b"the request was not sent in time\n")
TOO_MANY = _answer(b"503 Service Unavailable", b"too many open connections; retry shortly\n")


@dataclass(frozen=True)
class ConnectionLimits:
    """Seconds and counts; the defaults are what `server.connections` defaults to in cast.yaml."""

    header_timeout: float = 10.0
    body_timeout: float = 30.0
    keep_alive: float = 5.0
    max_open: int = 1000


class _Deadlines:
    """The timers shared by both protocol classes (mixed into uvicorn's own)."""

    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    connections: set[Any]
    cycle: Any
    _limits: ConnectionLimits
    _timer: asyncio.TimerHandle | None = None
    _waiting_for: str = ""  # "headers" | "body" | ""

    def _admitted(self) -> bool:
        """False (and the connection answered 503 and closed) beyond `max_open`; it counts itself."""
        if len(self.connections) > self._limits.max_open:
            self.transport.write(TOO_MANY)
            self.transport.close()
            return False
        return True

    def _wait_for(self, part: str) -> None:
        if self._waiting_for == part:
            return  # the deadline runs from the first byte of the part, not from the latest one
        self._stop_waiting()
        seconds = self._limits.header_timeout if part == "headers" else self._limits.body_timeout
        self._waiting_for = part
        self._timer = self.loop.call_later(seconds, self._too_slow)

    def _stop_waiting(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._waiting_for = None, ""

    def _too_slow(self) -> None:
        part, self._timer, self._waiting_for = self._waiting_for, None, ""
        if self.transport.is_closing():
            return
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(TIMED_OUT)
        log.debug("closed a connection whose request %s did not arrive in time", part)  # floods: no log flood
        self.transport.close()


def _limits_of(config: uvicorn.Config) -> ConnectionLimits:
    limits = getattr(config, "connection_limits", None)
    return limits if isinstance(limits, ConnectionLimits) else ConnectionLimits()


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # httptools is optional in uvicorn; uvicorn[standard] brings it
    HttpToolsProtocol = None  # type: ignore[assignment,misc]  # a class or None: mypy has no spelling for that

if HttpToolsProtocol is not None:

    class GuardedHttpTools(_Deadlines, HttpToolsProtocol):
        def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
            super().__init__(config, *args, **kwargs)
            self._limits = _limits_of(config)

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
            super().connection_made(transport)
            if self._admitted():
                self._wait_for("headers")

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_waiting()
            super().connection_lost(exc)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._wait_for("headers")

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            self._stop_waiting()
            self._wait_for("body")

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._stop_waiting()


class GuardedH11(_Deadlines, H11Protocol):
    def __init__(self, config: uvicorn.Config, *args: Any, **kwargs: Any) -> None:
        super().__init__(config, *args, **kwargs)
        self._limits = _limits_of(config)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]  # as uvicorn's own
        super().connection_made(transport)
        if self._admitted():
            self._wait_for("headers")

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_waiting()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            self._wait_for("headers")  # part of a request's head has arrived
        elif state is h11.SEND_BODY:
            self._wait_for("body")
        else:
            self._stop_waiting()


class GuardedConfig(uvicorn.Config):
    """`uvicorn.Config` plus `connection_limits`, serving HTTP with the guarded protocol classes."""

    def __init__(self, app: Any, *, connection_limits: ConnectionLimits | None = None, **kwargs: Any) -> None:
        limits = connection_limits or ConnectionLimits()
        http = kwargs.pop("http", "auto")
        use_httptools = http in ("auto", "httptools") and HttpToolsProtocol is not None
        kwargs["http"] = GuardedHttpTools if use_httptools else GuardedH11
        kwargs.setdefault("timeout_keep_alive", limits.keep_alive)
        super().__init__(app, **kwargs)
        self.connection_limits = limits
