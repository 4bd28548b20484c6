"""A raw asyncio HTTP/1.1 upstream that drops the connection after reading a request to /drop...

Everything else gets a small keep-alive JSON answer, so a connection can be pooled first and then
dropped. The server counts what it read, so a test sees exactly how often a request arrived.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Seen:
    method: str
    target: str
    body: bytes
    peer: int  # the client's port: equal for requests on one kept-alive connection


@dataclass
class DroppingUpstream:
    seen: list[Seen] = field(default_factory=list)
    url: str = ""
    _server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def count(self, method: str, target: str) -> int:
        return sum(1 for seen in self.seen if seen.method == method and seen.target == target)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")[1]
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request_line, *header_lines = head.decode("latin-1").split("\r\n")
                method, target, _ = request_line.split(" ", 2)
                length = 0
                for line in header_lines:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value)
                body = await reader.readexactly(length) if length else b""
                self.seen.append(Seen(method, target, body, peer))
                if target.startswith("/drop"):
                    writer.transport.abort()  # read in full, never answered
                    return
                answer = b'{"ok":true}'
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(answer)).encode() + b"\r\n\r\n" + answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
