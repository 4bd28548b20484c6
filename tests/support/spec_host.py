"""A spec URL as an upstream serves it: ETag and Last-Modified, 304 to a matching conditional GET, a log of requests.

`SpecHost(document)` is the app; `serve_spec(host, port)` runs it with uvicorn on that loopback port
(a port chosen earlier, so a test can start the server where a config already points). Changing
`host.document` (or `host.raw`) changes what the URL serves, with a new validator.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from email.utils import formatdate
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from support.net import free_socket
from support.servers import Running, run


@dataclass
class Seen:
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int


@dataclass
class SpecHost:
    document: Any = None
    raw: bytes | None = None  # served instead of `document` when set (e.g. a broken spec)
    status: int = 200  # e.g. 500 to play a failing upstream
    seen: list[Seen] = field(default_factory=list)
    version: int = 1  # Last-Modified moves with every change (seconds since the epoch)
    etag: bool = True  # send an ETag (else only Last-Modified)

    def body(self) -> bytes:
        return self.raw if self.raw is not None else json.dumps(self.document).encode()

    def change(self, document: Any = None, *, raw: bytes | None = None) -> None:
        self.document, self.raw = document, raw
        self.version += 1

    @property
    def full_fetches(self) -> int:
        return sum(1 for seen in self.seen if seen.status == 200)

    @property
    def not_modified(self) -> int:
        return sum(1 for seen in self.seen if seen.status == 304)

    def app(self) -> Starlette:
        async def spec(request: Request) -> Response:
            body = self.body()
            etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            modified = formatdate(1_700_000_000 + self.version * 60, usegmt=True)
            asked_etag = request.headers.get("if-none-match")
            asked_since = request.headers.get("if-modified-since")
            status = self.status
            matches = (self.etag and asked_etag == etag) or (asked_etag is None and asked_since == modified)
            if status == 200 and matches:
                status = 304
            self.seen.append(Seen(request.url.path, asked_etag, asked_since, status))
            headers = {"ETag": etag, "Last-Modified": modified} if self.etag else {"Last-Modified": modified}
            if status == 304:
                return Response(status_code=304, headers=headers)
            if status != 200:
                return Response(b"upstream trouble", status_code=status)
            return Response(body, media_type="application/json", headers=headers)

        return Starlette(routes=[Route("/openapi.json", spec)])


def serve_spec(host: SpecHost, port: int = 0) -> Running:
    """Serve `host` on 127.0.0.1:`port` (0: any free port) until `.stop()`."""
    return run(host.app(), free_socket(port))
